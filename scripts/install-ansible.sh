#!/usr/bin/env bash
# Installs the pinned ansible-core (ansible/requirements.txt) from PyPI into a private virtualenv,
# for the collection's tests (integration/ansible.rs: playbooks and `ansible-test sanity`).
# Nothing outside the virtualenv, ~/.cache/vezasock/ansible and ansible-test's cache is touched.
# Idempotent: a virtualenv built from the same requirements is kept (FORCE=1 rebuilds it).
# Called by scripts/install-haproxy.sh.
#
#   VEZASOCK_ANSIBLE_VENV   where (default ~/.cache/vezasock/ansible/venv, where the tests look)
#   VEZASOCK_PYTHON         the Python it is made with (default /usr/bin/python3: Debian's own)
#   VEZASOCK_ANSIBLE_DEBS   where python3-apt's .deb is fetched for the role's test (default
#                           ~/.cache/vezasock/ansible/debs, where the tests look)
#
# Prints, last, VEZASOCK_ANSIBLE=<the virtualenv's bin dir>.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VEZASOCK_ANSIBLE_VENV:-$HOME/.cache/vezasock/ansible/venv}
PY=${VEZASOCK_PYTHON:-/usr/bin/python3}
REQ=ansible/requirements.txt
log() { printf 'install-ansible: %s\n' "$*" >&2; }

want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -z "${FORCE:-}" ] && [ "$(cat "$VENV/.vezasock-requirements" 2>/dev/null)" = "$want" ] &&
  "$VENV/bin/ansible-playbook" --version >/dev/null 2>&1; then
  log "cached at $VENV ($("$VENV/bin/ansible-playbook" --version | head -1))"
else
  # A virtualenv's scripts name its own path: it is built where it stays, and only counts once
  # its stamp is written, last.
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  log "$PY -m venv $VENV; pip install -r $REQ"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  echo "$want" >"$VENV/.vezasock-requirements"
  log "$("$VENV/bin/ansible-playbook" --version | head -1)"
fi

# `ansible-test sanity` makes one virtualenv per test and bootstraps pip in it with a get-pip
# script it downloads from a host of Ansible's CI, which this machine cannot reach; it takes the
# script from its cache when there. The stand-in written there bootstraps pip with the Python's
# own ensurepip, then installs the same pinned packages from PyPI.
TEST_REQ=$(ls "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
PIPV=$(sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" "$TEST_REQ" | head -1)
[ -n "$PIPV" ] || { log "no pip version in $TEST_REQ"; exit 1; }
mkdir -p "$HOME/.ansible/test/cache"
cat >"$HOME/.ansible/test/cache/get_pip_${PIPV//./_}.py" <<'PY'
# Written by vezasock's scripts/install-ansible.sh in place of ansible-test's get-pip download:
# pip from ensurepip, then the requested packages (pip==X ...) from PyPI.
import ensurepip
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
ensurepip.bootstrap(upgrade=True)
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q"] + args)
PY
# The edge role's test (integration/ansible/role.rs) installs the package with
# ansible.builtin.apt, which needs python3-apt on the host. Its .deb (and those of its
# dependencies not installed here) are fetched, not installed: the test installs them in its
# throwaway root (integration/fixtures/overlay_root.sh), so the tests stay on loopback.
DEBS=${VEZASOCK_ANSIBLE_DEBS:-$HOME/.cache/vezasock/ansible/debs}
if /usr/bin/python3 -c 'import apt' 2>/dev/null; then
  log "python3-apt installed: nothing to fetch for the role's test"
elif ls "$DEBS"/python3-apt_*.deb >/dev/null 2>&1; then
  log "python3-apt cached in $DEBS"
else
  need=python3-apt
  for dep in python-apt-common distro-info-data; do
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'ok installed' || need="$need $dep"
  done
  mkdir -p "$DEBS"
  log "apt-get download $need (into $DEBS)"
  (cd "$DEBS" && apt-get download -q $need)
fi
echo "VEZASOCK_ANSIBLE=$VENV/bin"
