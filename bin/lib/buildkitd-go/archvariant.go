// Package archvariant stands in for github.com/tonistiigi/go-archvariant, which Debian does not package.
// BuildKit only asks it for the amd64 micro-architecture level; we report the baseline.
package archvariant

func AMD64Variant() string { return "v1" }
