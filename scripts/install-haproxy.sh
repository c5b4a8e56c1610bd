#!/usr/bin/env bash
# Installs the HAProxy versions vezasock is tested against, and the tools the tests use.
#
#   2.6  Debian bookworm's own package (apt-get install haproxy)       -> /usr/sbin/haproxy
#   3.0  trixie-security's 3.0.11-1+deb13u5 + trixie's libraries        -> $CACHE/3.0/usr/sbin/haproxy
#   3.2  Debian sid's .deb + its libraries, made standalone             -> $CACHE/3.2/usr/sbin/haproxy
#   3.4  experimental's 3.4.7-1 (LTS) + sid's libraries                 -> $CACHE/3.4/usr/sbin/haproxy
#
# "Standalone": every .deb is extracted into one folder and the binary's ELF interpreter and
# DT_RPATH point into it (patchelf --force-rpath, so transitive libraries resolve there too and
# master-worker re-exec keeps working). Nothing of the system's apt state is touched for 3.0-3.4:
# apt runs with a private sources list and lists dir. 3.0 and 3.4 are pinned to one Debian version
# (a cached build of another version is rebuilt); 3.2 is whatever sid has.
#
# Idempotent: an existing, working build in the cache is kept (FORCE=1 rebuilds it). The cache
# defaults to ~/.cache/vezasock/haproxy (VEZASOCK_HAPROXY_CACHE overrides it).
# Prints, last, the env lines the tests read (VEZASOCK_HAPROXY_2_6=…, VEZASOCK_SSHD=… etc.).
#
#   scripts/install-haproxy.sh            everything the tests need: 2.6, 3.0, 3.2, 3.4, socat, patchelf,
#                                         OpenSSH (sshd + client: the fleet tests' ssh edge), the
#                                         package tools (lintian, dpkg-dev, man-db: integration/
#                                         package.rs) and the pinned ansible-core in a private
#                                         virtualenv (scripts/install-ansible.sh; python3-venv),
#                                         Prometheus's promtool and node_exporter (Debian's
#                                         prometheus and prometheus-node-exporter: integration/
#                                         metrics.rs reads vezasock's metrics textfile with them)
#   scripts/install-haproxy.sh 3.2 ...    only these versions and the tools they need (what
#                                         `vezasock demo` runs, embedded, when it finds no HAProxy)
set -euo pipefail

if [ $# -eq 0 ]; then WANT="2.6 3.0 3.2 3.4"; TOOLS="socat patchelf"; SSH=1; PKG=1; else WANT="$*"; TOOLS=""; SSH=""; PKG=""; fi
for v in $WANT; do
  case "$v" in
    2.6) ;;
    3.0|3.2|3.4) case " $TOOLS " in *" patchelf "*) ;; *) TOOLS="$TOOLS patchelf" ;; esac ;;
    *) printf 'install-haproxy: unknown version %s (known: 2.6 3.0 3.2 3.4)\n' "$v" >&2; exit 2 ;;
  esac
done
wants() { case " $WANT " in *" $1 "*) return 0 ;; esac; return 1; }

CACHE=${VEZASOCK_HAPROXY_CACHE:-$HOME/.cache/vezasock/haproxy}
MIRROR=${VEZASOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${VEZASOCK_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Libraries haproxy 3.0.11 / 3.2.26 / 3.4.7 link against (dpkg -I haproxy_*.deb), plus the loader.
LIBS="libc6 libcrypt1 libjemalloc2 liblua5.4-0 libopentracing-c-wrapper0t64 libopentracing1
      libpcre2-8-0 libssl3t64 libstdc++6 libgcc-s1 zlib1g libzstd1 libsystemd0 libcap2
      liblz4-1 liblzma5 libgcrypt20 libgpg-error0"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

log() { printf 'install-haproxy: %s\n' "$*" >&2; }

# --- 2.6 and the tools ------------------------------------------------------------------------
need=""
for p in $TOOLS; do command -v "$p" >/dev/null 2>&1 || need="$need $p"; done
if wants 2.6 && { ! command -v haproxy >/dev/null 2>&1 || [ ! -e /usr/sbin/haproxy ]; }; then
  need="$need haproxy"
fi
# sshd lives in /usr/sbin, often not on a non-root PATH: test the file, not the command.
if [ -n "$SSH" ]; then
  [ -x /usr/sbin/sshd ] || need="$need openssh-server"
  { command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; } || need="$need openssh-client"
fi
# The package's tests (build, lint, install, man -l) and the ansible virtualenv; command -> package.
if [ -n "$PKG" ]; then
  command -v lintian >/dev/null 2>&1 || need="$need lintian"
  command -v dpkg-shlibdeps >/dev/null 2>&1 || need="$need dpkg-dev"
  command -v man >/dev/null 2>&1 || need="$need man-db"
  /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need="$need python3-venv"
  # The metrics textfile's tests: promtool checks it, node_exporter's textfile collector serves it.
  command -v promtool >/dev/null 2>&1 || need="$need prometheus"
  command -v prometheus-node-exporter >/dev/null 2>&1 || need="$need prometheus-node-exporter"
fi
if [ -n "$need" ]; then
  log "apt-get install$need"
  $SUDO apt-get update -qq
  # No init system in a container: the packages' services must not start (the tests start their own
  # haproxy and sshd on free ports). A policy-rc.d that denies every start, unless one is there.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  rc=0
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null || rc=$?
  if [ -n "$own_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  if [ "$rc" != 0 ]; then log "apt-get install$need failed (exit $rc)"; exit "$rc"; fi
fi
# The packaged service would hold ports and sockets the tests don't want; tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
  $SUDO systemctl stop haproxy || true
fi
# A system sshd already running is left alone (it may be how someone reached this machine): the
# tests' sshd uses its own port, pid file, keys and config and shares only /run/sshd with it.

# --- 3.0, 3.2 and 3.4 from newer suites ---------------------------------------------------------
works() { # $1 = root, $2 = wanted version ("" = any); true when the standalone binary is that
  # version and runs with only its own libraries
  local bin=$1/usr/sbin/haproxy L=$1/usr/lib/x86_64-linux-gnu
  [ -x "$bin" ] || return 1
  "$bin" -v >/dev/null 2>&1 || return 1
  if [ -n "$2" ] && ! "$bin" -v 2>/dev/null | head -1 | grep -qF "version $2 "; then return 1; fi
  ! "$L/ld-linux-x86-64.so.2" --list "$bin" 2>&1 | grep -v "$1" | grep -q '=>'
}

# $1 = label (3.0), $2 = haproxy's Debian version ("" = the suites' newest), then one
# "<mirror> <suite>" per source the packages come from. Libraries come from the first suite
# (apt's candidate: experimental is NotAutomatic, so only haproxy is taken from it, by version).
build() {
  local label=$1 version=$2 root=$CACHE/$1; shift 2
  if [ -z "${FORCE:-}" ] && works "$root" "$version"; then
    log "$label: cached at $root ($("$root/usr/sbin/haproxy" -v | head -1))"
    return
  fi
  local work; work=$(mktemp -d)
  mkdir -p "$work/lists/partial" "$work/debs"
  local src suites=""
  for src in "$@"; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $src main" >>"$work/sources.list"
    suites="$suites ${src#* }"
  done
  local apt=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
             -o "Dir::State::Lists=$work/lists" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  log "$label: apt-get update ($suites )"
  apt-get "${apt[@]}" update -qq >/dev/null
  local pkg=haproxy; [ -n "$version" ] && pkg="haproxy=$version"
  log "$label: downloading $pkg and its libraries from$suites"
  # shellcheck disable=SC2086 # one word per package
  if ! (cd "$work/debs" && apt-get "${apt[@]}" download -qq "$pkg" $LIBS >/dev/null); then
    log "$label: $pkg is not in$suites (Debian may have replaced it: update the version here)"
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$root.new" && mkdir -p "$root.new"
  for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$root.new"; done
  # The loader lives in /usr/lib64 on some layouts; keep one copy where the rpath points.
  local L=$root/usr/lib/x86_64-linux-gnu
  if [ ! -e "$root.new/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]; then
    cp -L "$root.new"/usr/lib64/ld-linux-x86-64.so.2 "$root.new/usr/lib/x86_64-linux-gnu/" 2>/dev/null ||
      cp -L "$root.new"/lib64/ld-linux-x86-64.so.2 "$root.new/usr/lib/x86_64-linux-gnu/"
  fi
  # Paths are patched to the final location, then the folder is moved there in one rename, so a
  # half-built tree is never where tests look.
  patchelf --set-interpreter "$L/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$L" \
    "$root.new/usr/sbin/haproxy"
  rm -rf "$root.old"; [ -e "$root" ] && mv "$root" "$root.old"
  mv "$root.new" "$root"; rm -rf "$root.old" "$work"
  if ! works "$root" "$version"; then
    log "$label: the extracted binary does not run standalone:"
    "$L/ld-linux-x86-64.so.2" --list "$root/usr/sbin/haproxy" >&2 || true
    exit 1
  fi
  log "$label: $("$root/usr/sbin/haproxy" -v | head -1)"
}

mkdir -p "$CACHE"
# trixie-security carries the CVE fixes users get; its libraries are trixie's.
if wants 3.0; then build 3.0 3.0.11-1+deb13u5 "$MIRROR trixie" "$SECURITY trixie-security"; fi
if wants 3.2; then build 3.2 "" "$MIRROR sid"; fi
# 3.4 (LTS) is only in experimental and needs sid's libraries (libssl3t64 >= 3.5.1).
if wants 3.4; then build 3.4 3.4.7-1 "$MIRROR sid" "$MIRROR experimental"; fi

if wants 2.6; then echo "VEZASOCK_HAPROXY_2_6=/usr/sbin/haproxy"; fi
if wants 3.0; then echo "VEZASOCK_HAPROXY_3_0=$CACHE/3.0/usr/sbin/haproxy"; fi
if wants 3.2; then echo "VEZASOCK_HAPROXY_3_2=$CACHE/3.2/usr/sbin/haproxy"; fi
if wants 3.4; then echo "VEZASOCK_HAPROXY_3_4=$CACHE/3.4/usr/sbin/haproxy"; fi
if [ -n "$SSH" ]; then echo "VEZASOCK_SSHD=/usr/sbin/sshd"; fi
if [ -n "$PKG" ]; then "$(dirname "$0")/install-ansible.sh"; fi
