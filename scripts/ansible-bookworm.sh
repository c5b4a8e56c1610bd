#!/usr/bin/env bash
# Debian bookworm's own ansible-core package (2.14), for running the collection's playbook tests
# with it by hand: its .deb and those of its Python dependencies this machine lacks are fetched
# (`apt-get download`) and unpacked (`dpkg -x`) under ~/.cache/vezasock/ansible/bookworm, never
# installed; bin/ there holds ansible-playbook, ansible-doc and python wrappers that run them with
# this machine's /usr/bin/python3. On a bookworm machine only (apt fetches its own release's).
#
#   VEZASOCK_ANSIBLE=$(scripts/ansible-bookworm.sh | sed -n 's/^VEZASOCK_ANSIBLE=//p') \
#     cargo test --test integration -- ansible:: --skip sanity
set -euo pipefail
log() { printf 'ansible-bookworm: %s\n' "$*" >&2; }
# shellcheck disable=SC1091
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || { log "not Debian bookworm (${VERSION_CODENAME:-?})"; exit 1; }

DIR=${VEZASOCK_ANSIBLE_BOOKWORM:-$HOME/.cache/vezasock/ansible/bookworm}
rm -rf "$DIR"
mkdir -p "$DIR/debs" "$DIR/root" "$DIR/bin"
need=ansible-core
for dep in python3-jinja2 python3-markupsafe python3-packaging python3-resolvelib python3-yaml \
  python3-cryptography; do
  dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'ok installed' || need="$need $dep"
done
log "apt-get download $need"
(cd "$DIR/debs" && apt-get download -q $need)
for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/root"; done
ln -sf /usr/bin/python3 "$DIR/bin/python"
for tool in ansible-playbook ansible-doc; do
  cat >"$DIR/bin/$tool" <<SH
#!/bin/sh
PYTHONPATH=$DIR/root/usr/lib/python3/dist-packages exec /usr/bin/python3 $DIR/root/usr/bin/$tool "\$@"
SH
  chmod +x "$DIR/bin/$tool"
done
log "$("$DIR/bin/ansible-playbook" --version | sed -n 1p)"
echo "VEZASOCK_ANSIBLE=$DIR/bin"
