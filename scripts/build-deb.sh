#!/usr/bin/env bash
# Builds the Debian package of vezasock (docs/packaging.md): a release build, staged into a tree
# and packed with plain `dpkg-deb --build` (no extra tool), a SHA256SUMS beside it.
#
#   scripts/build-deb.sh                      cargo build --release --locked, then the package
#   scripts/build-deb.sh --out DIR            where the .deb and SHA256SUMS go (default target/debian)
#   scripts/build-deb.sh --binary PATH        package this binary instead of building one (the
#                                             integration test packs the binary it tests)
#
# The package: /usr/bin/vezasock, its man pages (vezasock man --out), bash/zsh/fish completions at
# Debian's vendor paths, the example topology under /usr/share/doc/vezasock/examples/. No service,
# no maintainer script: installing it never touches HAProxy. Version: Cargo.toml's, Debian
# revision 1. Prints the path of the .deb last.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/debian
BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out DIR}; shift 2 ;;
    --binary) BIN=${2:?--binary PATH}; shift 2 ;;
    *) printf 'build-deb: unknown argument %s (known: --out DIR, --binary PATH)\n' "$1" >&2; exit 2 ;;
  esac
done
log() { printf 'build-deb: %s\n' "$*" >&2; }

# The version of the [package] section (the first `version =` line of Cargo.toml).
VERSION=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$VERSION" ] || { log "no version in Cargo.toml"; exit 1; }
DEBVER="$VERSION-1"
ARCH=$(dpkg --print-architecture)

if [ -z "$BIN" ]; then
  log "cargo build --release --locked"
  cargo build --release --locked
  BIN=target/release/vezasock
fi
[ -x "$BIN" ] || { log "$BIN is not an executable"; exit 1; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
DOC=$ROOT/usr/share/doc/vezasock
install -d "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/usr/share/man/man1" "$DOC/examples" \
  "$ROOT/usr/share/bash-completion/completions" "$ROOT/usr/share/zsh/vendor-completions" \
  "$ROOT/usr/share/fish/vendor_completions.d"

# The binary, stripped (Debian policy 10.1).
install -m 0755 "$BIN" "$ROOT/usr/bin/vezasock"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT/usr/bin/vezasock"
V=$ROOT/usr/bin/vezasock

# Man pages and completions, generated from the clap tree by the binary itself.
"$V" man --out "$ROOT/usr/share/man/man1" >&2
gzip -9n "$ROOT"/usr/share/man/man1/*.1
"$V" completions bash >"$ROOT/usr/share/bash-completion/completions/vezasock"
"$V" completions zsh >"$ROOT/usr/share/zsh/vendor-completions/_vezasock"
"$V" completions fish >"$ROOT/usr/share/fish/vendor_completions.d/vezasock.fish"

# The example topology (the embedded default) and the docs a user reads first.
install -m 0644 examples/veza.toml "$DOC/examples/veza.toml"
install -m 0644 docs/packaging.md "$DOC/packaging.md"
YEAR=$(git log -1 --format=%cd --date=format:%Y 2>/dev/null || date +%Y)
cat >"$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vezasock
Comment: The binary statically links Rust crates from crates.io, each under MIT, Apache-2.0
 or a compatible licence (Cargo.lock lists them).

Files: *
Copyright: $YEAR the vezasock authors
License: MIT or Apache-2.0

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 and associated documentation files (the "Software"), to deal in the Software without
 restriction, including without limitation the rights to use, copy, modify, merge, publish,
 distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 can be found in
 /usr/share/common-licenses/Apache-2.0.
EOF
# Lintian's one remaining tag, explained where lintian reads it.
install -d "$ROOT/usr/share/lintian/overrides"
printf '%s\n' '# Not an upload to the Debian archive: there is no ITP bug to close.' \
  'vezasock: initial-upload-closes-no-bugs' >"$ROOT/usr/share/lintian/overrides/vezasock"
# A Debian changelog whose date is the last commit's (the same tree gives the same package).
DATE=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf 'vezasock (%s) unstable; urgency=medium\n\n  * Package of vezasock %s.\n\n -- vezasock maintainers <maintainers@vezasock.invalid>  %s\n' \
  "$DEBVER" "$VERSION" "$DATE" | gzip -9n >"$DOC/changelog.Debian.gz"

# Depends: the shared libraries the binary links, as dpkg-shlibdeps reads them (it wants a
# debian/control in its working dir: a minimal one in the stage).
mkdir -p "$STAGE/src/debian"
printf 'Source: vezasock\n\nPackage: vezasock\nArchitecture: any\n' >"$STAGE/src/debian/control"
DEPENDS=$(cd "$STAGE/src" && dpkg-shlibdeps -O "$V" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || { log "dpkg-shlibdeps found no dependency of $BIN"; exit 1; }
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)

cat >"$ROOT/DEBIAN/control" <<CONTROL
Package: vezasock
Version: $DEBVER
Architecture: $ARCH
Maintainer: vezasock maintainers <maintainers@vezasock.invalid>
Installed-Size: $SIZE
Depends: $DEPENDS
Recommends: haproxy
Suggests: openssh-client
Section: net
Priority: optional
Description: blue/green flips of a shared HAProxy edge over its runtime API
 vezasock drives a shared HAProxy edge for blue/green deploys without
 reloads: it switches an environment's color through the runtime API
 (maps, server states, certificates), verifies and records every change,
 and coordinates the same flip across several edges in one transaction.
 .
 This package installs the command, its manual pages, shell completions
 and an example topology. It starts no service and never touches HAProxy
 when installed or removed.
CONTROL
(cd "$ROOT" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/md5sums"
find "$ROOT" -type d -exec chmod 0755 {} +

DEB=$OUT/vezasock_${DEBVER}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
(cd "$OUT" && sha256sum "$(basename "$DEB")" >SHA256SUMS)
log "built $(basename "$DEB") and SHA256SUMS in $OUT"
echo "$DEB"
