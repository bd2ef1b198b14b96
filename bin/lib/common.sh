# Shared shell helpers for ./pants, bin/buildkit, bin/rootfs and .ci/run. Source it; do not execute it.
# shellcheck shell=bash

REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CACHE_DIR=${MELANGE_BK_CACHE:-$REPO_ROOT/.cache}
APT_GET=(apt-get -o DPkg::Lock::Timeout="${MELANGE_BK_APT_LOCK_TIMEOUT:-600}" -o Acquire::Retries=3 -q)
EXTRA_SOURCES=/etc/apt/sources.list.d/melange-bk-extra-suites.sources
EXTRA_PIN=/etc/apt/preferences.d/melange-bk-extra-suites

# usage: the script's header comment (every comment line after the shebang, up to the first line of code), without
# its "# ". Each script's --help prints it, so the help text is the header and cannot drift from it.
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

# help_requested ARGS...: true when the first argument asks for help (-h, --help, help).
help_requested() { case "${1:-}" in -h|--help|help) return 0 ;; *) return 1 ;; esac; }

# with_lock NAME CMD...: run CMD holding an exclusive lock ($CACHE_DIR/.locks/NAME), so that several processes
# (parallel test processes, two terminals) that install the same thing take turns; the later ones find it ready.
with_lock() {
  local name=$1; shift
  mkdir -p "$CACHE_DIR/.locks"
  (
    flock 9 || die "cannot lock $CACHE_DIR/.locks/$name"
    "$@"
  ) 9>"$CACHE_DIR/.locks/$name"
}

die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
note() { echo "$(basename "$0"): $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $* (run as root or install sudo)"; fi
}

# The machine's own Debian mirror: the first URIs: line of a deb822 source that carries a Debian suite, or the
# first deb line of sources.list. Never hard-coded.
debian_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && [ "$f" != "$EXTRA_SOURCES" ] || continue
    # deb822: stanzas separated by blank lines; take the stanza whose Suites: names a plain Debian release.
    uri=$(awk 'BEGIN{RS=""} /\nSuites:[^\n]*(bookworm|bullseye|trixie)( |\n|$)/ && !/Suites:[^\n]*security/ {
                 if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { u=substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  if [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 ~ /bookworm/ && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  fi
  return 1
}

debian_keyring() {
  local f k
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && [ "$f" != "$EXTRA_SOURCES" ] || continue
    k=$(awk '/^Signed-By:/{print $2; exit}' "$f"); [ -n "$k" ] && { echo "$k"; return 0; }
  done
  echo /usr/share/keyrings/debian-archive-keyring.gpg
}

# Make bullseye (Python 3.9) and trixie (docker.io 26, Go) available at low priority: nothing is upgraded from
# them unless asked for by name with -t.
ensure_extra_suites() {
  if [ -f "$EXTRA_SOURCES" ] && [ -f "$EXTRA_PIN" ]; then return 0; fi
  local uri key
  uri=$(debian_mirror) || die "cannot find the Debian mirror in /etc/apt/sources.list{,.d}: add a bookworm source first"
  key=$(debian_keyring)
  note "adding Debian suites bullseye and trixie (low priority) from the machine's mirror"
  printf 'Types: deb\nURIs: %s\nSuites: bullseye trixie\nComponents: main\nSigned-By: %s\n' "$uri" "$key" \
    | as_root tee "$EXTRA_SOURCES" >/dev/null
  printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n\nPackage: *\nPin: release n=trixie\nPin-Priority: 90\n' \
    | as_root tee "$EXTRA_PIN" >/dev/null
  apt_update
}

apt_lock_message() {
  local holder
  holder=$(printf '%s\n' "$1" | grep -o 'held by process [0-9]* ([^)]*)' | head -1)
  echo "apt is locked${holder:+ ($holder)} after waiting ${MELANGE_BK_APT_LOCK_TIMEOUT:-600}s: let that apt/dpkg finish, then rerun"
}

apt_update() {
  local out
  if ! out=$(as_root "${APT_GET[@]}" update 2>&1); then
    case "$out" in
      *"Could not get lock"*|*"is held by process"*|*"Unable to lock"*) die "$(apt_lock_message "$out")" ;;
    esac
    echo "$out" | tail -5 >&2
    die "apt-get update failed (see above)"
  fi
}

# apt_install [-t SUITE] PKG...: installs missing packages, with an actionable error on a held lock.
apt_install() {
  local args=() pkgs=() missing=() p
  while [ $# -gt 0 ]; do case "$1" in -t) args+=(-t "$2"); shift 2 ;; *) pkgs+=("$1"); shift ;; esac; done
  for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "${p%%=*}" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ -n "$(ls /var/lib/apt/lists/*_Packages 2>/dev/null | head -1)" ] || apt_update
  note "installing ${missing[*]}"
  local out
  if ! out=$(DEBIAN_FRONTEND=noninteractive as_root "${APT_GET[@]}" install -y --no-install-recommends "${args[@]}" "${missing[@]}" 2>&1); then
    case "$out" in
      *"Could not get lock"*|*"is held by process"*|*"Unable to lock"*) die "$(apt_lock_message "$out")" ;;
      *"Unable to locate package"*|*"has no installation candidate"*) apt_update
        DEBIAN_FRONTEND=noninteractive as_root "${APT_GET[@]}" install -y --no-install-recommends "${args[@]}" "${missing[@]}" >/dev/null \
          || die "apt-get install ${missing[*]} failed" ; return 0 ;;
    esac
    echo "$out" | tail -5 >&2
    die "apt-get install ${missing[*]} failed (see above)"
  fi
}

# sha256 of a list of strings: cache keys.
key_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
