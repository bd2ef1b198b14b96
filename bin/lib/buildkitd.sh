# A standalone buildkitd + buildctl for bin/buildkit --daemon=buildkitd. Source it after common.sh.
# shellcheck shell=bash
#
# Built from Debian trixie's Go source packages (golang-github-docker-docker-dev carries the BuildKit v0.13 tree
# that Debian's docker.io 26.1 is built from, with Debian's backports) with trixie's Go 1.24 in GOPATH mode:
# nothing is fetched but Debian packages, which are only unpacked (dpkg -x), never installed. Three Go packages
# that Debian lacks are replaced by the small stand-ins in bin/lib/buildkitd-go/; the gha/s3/azblob remote caches
# and the fuse-overlayfs snapshotter are left out; the TLS listener offers h2 by ALPN (upstream fix, BuildKit
# v0.17), without which gRPC's C core (Python's grpcio) refuses it. The build lives in
#   $CACHE_DIR/buildkit-src/<key>/bin/{buildkitd,buildctl}
# where <key> hashes the exact Debian package versions and this recipe: a new Debian upload means a new build.

BUILDKITD_SRC_DIR=$CACHE_DIR/buildkit-src
BUILDKITD_RECIPE=2   # bump when the build below changes
BUILDKITD_GO_ROOTS="golang-1.24-go golang-github-docker-docker-dev golang-github-coreos-go-systemd-dev
  golang-github-gofrs-flock-dev golang-github-google-shlex-dev golang-github-agext-levenshtein-dev
  golang-github-mitchellh-hashstructure-v2-dev golang-github-pkg-profile-dev
  golang-github-spdx-tools-golang-dev golang-github-containerd-stargz-snapshotter-dev
  golang-github-containerd-nydus-snapshotter-dev"

# The Go packages the build needs, as "name version" lines: the closure of the roots as trixie would install it.
# apt's simulation takes ~10 s: its answer is remembered per state of the apt lists.
buildkitd_go_packages() {
  local lists memo
  lists=$(key_of "$BUILDKITD_GO_ROOTS" "$(stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null)")
  memo=$BUILDKITD_SRC_DIR/.packages-$lists
  if [ -s "$memo" ]; then cat "$memo"; return 0; fi
  local out
  # shellcheck disable=SC2086
  out=$(LC_ALL=C apt-get -q -s install -t trixie --no-install-recommends $BUILDKITD_GO_ROOTS 2>/dev/null \
    | awk '/^Inst golang-/ { v=$3; if (v ~ /^\[/) v=$4; gsub(/[()]/, "", v); print $2, v }' | sort -u)
  if [ -n "$out" ]; then
    mkdir -p "$BUILDKITD_SRC_DIR" && rm -f "$BUILDKITD_SRC_DIR"/.packages-* && printf '%s\n' "$out" > "$memo"
  fi
  printf '%s\n' "$out"
}

# Print the build directory for the current Debian versions (building it first if needed).
buildkitd_build() {
  ensure_extra_suites
  apt_install runc              # bookworm's runc: trixie's needs a newer glibc
  local pkgs
  pkgs=$(buildkitd_go_packages)
  if ! printf '%s\n' "$pkgs" | grep -q '^golang-github-docker-docker-dev 26\.'; then
    apt_update
    pkgs=$(buildkitd_go_packages)
  fi
  printf '%s\n' "$pkgs" | grep -q '^golang-github-docker-docker-dev 26\.' \
    || die "Debian trixie's golang-github-docker-docker-dev 26.x is not available from the apt sources (apt-get update?)"
  local stubs=$REPO_ROOT/bin/lib/buildkitd-go key out
  # The key: the recipe's number (bump it when the build steps change), the package versions, the stand-ins and
  # the source patch; editing comments here does not rebuild.
  key=$(key_of "recipe $BUILDKITD_RECIPE" "$pkgs" "$({ cat "$stubs"/*.go; declare -f buildkitd_patch_source; } | sha256sum)")
  out=$BUILDKITD_SRC_DIR/$key
  if [ -f "$out/.complete" ]; then echo "$out"; return 0; fi
  mkdir -p "$BUILDKITD_SRC_DIR"
  exec 8>"$BUILDKITD_SRC_DIR/.build.lock"; flock 8
  if [ -f "$out/.complete" ]; then exec 8>&-; echo "$out"; return 0; fi
  local t0=$SECONDS
  note "building buildkitd + buildctl from Debian trixie's Go sources into $out (once; about 2-5 minutes)"
  rm -rf "$out"
  mkdir -p "$out/debs" "$out/root" "$out/bin"
  printf '%s\n' "$pkgs" > "$out/packages"
  if ! (cd "$out/debs" && awk '{print $1 "=" $2}' "$out/packages" | xargs "${APT_GET[@]}" download >"$out/apt.log" 2>&1); then
    grep -E '^E:' "$out/apt.log" >&2 || tail -3 "$out/apt.log" >&2
    die "could not download the Go source packages from Debian trixie (apt mirror reachable? run: apt-get update)"
  fi
  local d
  for d in "$out"/debs/*.deb; do dpkg -x "$d" "$out/root"; done
  rm -rf "$out/debs"

  # GOPATH overlay (first in GOPATH): the stand-ins, go-systemd's /v22 import path, a patched cmd/buildkitd.
  local gc=$out/root/usr/share/gocode/src ov=$out/overlay/src
  mkdir -p "$ov/github.com/package-url/packageurl-go" "$ov/github.com/tonistiigi/go-archvariant" \
    "$ov/github.com/tonistiigi/vt100" "$ov/github.com/moby/buildkit/cmd" "$ov/github.com/coreos/go-systemd"
  ln -sfn "$gc/github.com/coreos/go-systemd" "$ov/github.com/coreos/go-systemd/v22"
  cp "$stubs/packageurl.go" "$ov/github.com/package-url/packageurl-go/"
  cp "$stubs/archvariant.go" "$ov/github.com/tonistiigi/go-archvariant/"
  cp "$stubs/vt100.go" "$ov/github.com/tonistiigi/vt100/"
  cp -r "$gc/github.com/moby/buildkit/cmd/buildkitd" "$ov/github.com/moby/buildkit/cmd/"
  buildkitd_patch_source "$ov/github.com/moby/buildkit/cmd/buildkitd" || die "patching cmd/buildkitd failed"

  local ver ldf
  ver="v0.13-debian-$(awk '$1=="golang-github-docker-docker-dev"{print $2}' "$out/packages")"
  ldf="-X github.com/moby/buildkit/version.Version=$ver -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
  if ! (
    export GOROOT=$out/root/usr/lib/go-1.24 GOPATH=$out/overlay:$out/root/usr/share/gocode GO111MODULE=off \
      CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GOCACHE=$out/gocache GOTELEMETRY=off \
      XDG_CONFIG_HOME=$out/xdg-config
    "$GOROOT/bin/go" build -trimpath -ldflags "$ldf" -o "$out/bin/buildkitd" github.com/moby/buildkit/cmd/buildkitd &&
      "$GOROOT/bin/go" build -trimpath -ldflags "$ldf" -o "$out/bin/buildctl" github.com/moby/buildkit/cmd/buildctl
  ) >"$out/build.log" 2>&1; then
    tail -n 20 "$out/build.log" >&2
    die "building buildkitd failed (log: $out/build.log)"
  fi
  # Keep the binaries and the record of what they were built from; the sources and Go's cache are large.
  rm -rf "$out/root" "$out/overlay" "$out/gocache" "$out/xdg-config"
  echo "$((SECONDS - t0))" > "$out/build-seconds"
  touch "$out/.complete"
  local old   # earlier builds (other Debian versions or recipes); a running buildkitd keeps its deleted binary
  for old in "$BUILDKITD_SRC_DIR"/*/; do [ "${old%/}" = "$out" ] || rm -rf "${old%/}"; done
  exec 8>&-
  note "built buildkitd $ver in $((SECONDS - t0))s"
  echo "$out"
}

# Remove what Debian does not package from a copy of cmd/buildkitd; fails when the source looks unexpected.
buildkitd_patch_source() {
  python3 - "$1" <<'PY'
import os, re, sys

def patch(path, edits):
    with open(path) as f:
        text = f.read()
    for kind, old, new in edits:
        if kind == "str":
            if old not in text:
                sys.exit(f"{path}: expected text not found: {old!r}")
            text = text.replace(old, new)
        else:
            text, n = re.subn(old, new, text, flags=re.S)
            if n == 0:
                sys.exit(f"{path}: expected pattern not found: {old!r}")
    with open(path, "w") as f:
        f.write(text)

d = sys.argv[1]
patch(os.path.join(d, "main.go"), [
    # Backport of moby/buildkit#5413 (BuildKit v0.17): offer HTTP/2 by ALPN on the TLS listener. gRPC's C core
    # (Python's grpcio) refuses a TLS peer that selected no ALPN protocol ("missing selected ALPN property").
    ("str", "\ttlsConf := &tls.Config{\n\t\tCertificates: []tls.Certificate{certificate},\n\t}\n",
     "\ttlsConf := &tls.Config{\n\t\tCertificates: []tls.Certificate{certificate},\n\t\tNextProtos:   []string{\"h2\"},\n\t}\n"),
    ("str", '\t"github.com/moby/buildkit/cache/remotecache/azblob"\n', ""),
    ("str", '\t"github.com/moby/buildkit/cache/remotecache/gha"\n', ""),
    ("str", '\ts3remotecache "github.com/moby/buildkit/cache/remotecache/s3"\n', ""),
    ("re", r'\n\t\t"(gha|s3|azblob)":\s+\w+\.ResolveCache\w+Func\(\),', ""),
])
oci = os.path.join(d, "main_oci_worker.go")
patch(oci, [
    ("str", '\tfuseoverlayfs "github.com/containerd/fuse-overlayfs-snapshotter"\n', ""),
    ("str", "fuseoverlayfs.Supported(commonRoot)", 'errors.New("fuse-overlayfs support not compiled in")'),
    ("re", r'\tcase "fuse-overlayfs":\n.*?\n\t\t}\n', ""),
])
with open(oci) as f:
    if "fuseoverlayfs" in f.read():
        sys.exit(f"{oci}: fuse-overlayfs is still referenced")
PY
}
