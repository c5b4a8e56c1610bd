#!/usr/bin/env python3
"""Records the replies of the pool-change commands (a server added to or removed from a
color's pool at runtime: `add server`, `enable health`, `wait <ms> srv-removable`, `del
server`; a new env's backend: `add backend … from`, `publish`/`unpublish backend`, `del
backend`) from real HAProxy 2.6, 3.0, 3.2 and 3.4 into grammar/corpus-pools/<version>/
(Python 3.11 standard library only).

Each case starts from a fresh HAProxy (so the cases do not depend on each other), runs its
unrecorded setup lines, then records the reply of its last line over a one-shot connection
(read to EOF), on a plain admin socket (`*.oneshot`) and on one with `severity-output number`
(`*.oneshot-sev`, what a vezasock session sees). The binaries come from
VEZASOCK_HAPROXY_2_6 / _3_0 / _3_2 / _3_4 or the install script's paths.

    python3 grammar/capture_pools.py [VERSION ...]     # default: every version
"""

import sys
import tempfile
from pathlib import Path

from capture_common import VERSIONS, one_shot, start, stop, wanted_versions

HERE = Path(__file__).resolve().parent

# Nothing needs to listen on these ports: the replies do not depend on the checks. be_track
# holds a backup that tracks be_app/blue_1, as a cross-color edge renders it.
CONFIG = """global
    stats socket {dir}/admin.sock mode 600 level admin
    stats socket {dir}/admin-sev.sock mode 600 level admin severity-output number

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    default-server inter 2s fall 3 rise 2

backend be_app
    balance roundrobin
    cookie vz insert indirect nocache httponly
    server blue_1 127.0.0.1:18001 check cookie blue_1
    server blue_2 127.0.0.1:18002 check cookie blue_2

backend be_track
    balance roundrobin
    server green_1 127.0.0.1:18003 check
    server blue_1 127.0.0.1:18001 backup track be_app/blue_1

backend be_static
    balance static-rr
    server s1 127.0.0.1:18005 check

# What a rendered edge ends with: a named defaults section no proxy uses, for `add backend`.
defaults vz_web
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    balance roundrobin
    option httpchk GET /
"""
ADD = "add server be_app/blue_3 127.0.0.1:18004 check inter 2s fall 3 rise 2"
ADD_BE = "add backend be_new from vz_web"
ADD_NEW = "add server be_new/blue_1 127.0.0.1:18007 check inter 2s fall 3 rise 2"
# (case, setup lines, recorded line)
CASES = [
    ("add-server", [], ADD),
    ("add-server-cookie", [], ADD.replace(" check", " check cookie blue_3")),
    ("add-server-exists", [], "add server be_app/blue_2 127.0.0.1:18004 check"),
    ("add-server-nosuch-backend", [], "add server be_nosuch/x 127.0.0.1:18004 check"),
    ("add-server-track-dynamic", [ADD], "add server be_track/blue_3 127.0.0.1:18004 backup track be_app/blue_3"),
    ("add-server-static-rr", [], "add server be_static/s2 127.0.0.1:18006 check"),
    ("add-server-bad-keyword", [], "add server be_app/x 127.0.0.1:18004 bogus"),
    ("enable-health", [ADD], "enable health be_app/blue_3"),
    ("enable-health-nosuch", [], "enable health be_app/nosuch"),
    ("wait-srv-removable", [ADD], "wait 100 srv-removable be_app/blue_3"),
    ("wait-srv-removable-not-maint", [], "wait 100 srv-removable be_app/blue_1"),
    ("wait-srv-removable-nosuch", [], "wait 100 srv-removable be_app/nosuch"),
    ("del-server", ["set server be_app/blue_2 state maint"], "del server be_app/blue_2"),
    ("del-server-added", [ADD], "del server be_app/blue_3"),
    ("del-server-not-maint", [], "del server be_app/blue_2"),
    ("del-server-tracked", ["set server be_app/blue_1 state maint"], "del server be_app/blue_1"),
    ("del-server-nosuch", [], "del server be_app/nosuch"),
    # A new env's backend (3.4; older versions answer `Unknown command`).
    ("add-backend", [], ADD_BE),
    ("add-backend-exists", [ADD_BE], ADD_BE),
    ("add-backend-config-name", [], "add backend be_app from vz_web"),
    ("add-backend-nosuch-defaults", [], "add backend be_new from vz_nosuch"),
    ("publish-backend", [ADD_BE], "publish backend be_new"),
    ("publish-backend-again", [ADD_BE, "publish backend be_new"], "publish backend be_new"),
    ("publish-backend-nosuch", [], "publish backend be_nosuch"),
    ("unpublish-backend", [ADD_BE, "publish backend be_new"], "unpublish backend be_new"),
    ("del-backend", [ADD_BE], "del backend be_new"),
    ("del-backend-emptied", [ADD_BE, ADD_NEW, "set server be_new/blue_1 state maint", "del server be_new/blue_1"], "del backend be_new"),
    ("del-backend-published", [ADD_BE, "publish backend be_new"], "del backend be_new"),
    ("del-backend-with-server", [ADD_BE, ADD_NEW], "del backend be_new"),
    ("del-backend-nosuch", [], "del backend be_nosuch"),
]
MODES = [("oneshot", "admin"), ("oneshot-sev", "admin-sev")]


def record(version: str, binary: str) -> None:
    out = HERE / "corpus-pools" / version
    out.mkdir(parents=True, exist_ok=True)
    for mode, sock in MODES:
        for case, setup, line in CASES:
            with tempfile.TemporaryDirectory(prefix="vezasock-pools-") as tmp:
                proc = start(binary, tmp, CONFIG.format(dir=tmp), version)
                try:
                    for s in setup:
                        one_shot(f"{tmp}/admin.sock", s)
                    reply = one_shot(f"{tmp}/{sock}.sock", line)
                finally:
                    stop(proc)
            (out / f"{case}.{mode}").write_bytes(reply)
            print(f"capture_pools: {version} {case}.{mode}: {reply!r}", file=sys.stderr)


def main() -> int:
    for version in wanted_versions(sys.argv[1:]):
        record(version, VERSIONS[version])
    return 0


if __name__ == "__main__":
    sys.exit(main())
