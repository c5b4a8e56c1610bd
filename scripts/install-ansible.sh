#!/usr/bin/env bash
# Installs the pinned ansible-core (ansible/requirements.txt) from PyPI into a private virtualenv,
# for the collection's tests (integration/ansible.rs: playbooks and `ansible-test sanity`).
# Nothing outside the virtualenv is touched. Idempotent: a virtualenv built from the same
# requirements is kept (FORCE=1 rebuilds it). Called by scripts/install-haproxy.sh.
#
#   VEZASOCK_ANSIBLE_VENV   where (default ~/.cache/vezasock/ansible/venv, where the tests look)
#   VEZASOCK_PYTHON         the Python it is made with (default /usr/bin/python3: Debian's own)
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
echo "VEZASOCK_ANSIBLE=$VENV/bin"
