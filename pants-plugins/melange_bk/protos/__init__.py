"""Protobuf/gRPC modules for the subset of BuildKit and fsutil APIs we use (generated; see bin/gen-protos)."""
