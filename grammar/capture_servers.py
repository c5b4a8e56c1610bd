#!/usr/bin/env python3
"""Records the replies of `set server <b>/<s> addr <ip> [port <port>]` (a moved server
applied at runtime) from real HAProxy 2.6, 3.0, 3.2 and 3.4 into
grammar/corpus-servers/<version>/ (Python 3.11 standard library only).

Each run starts one HAProxy per version in a temp dir with one backend whose server
`blue` sits on a fixed loopback port, then, for each case, puts the server back on its
configured address (unrecorded) and records the case's reply over a one-shot connection
(read to EOF), on a plain admin socket (`*.oneshot`) and on one with
`severity-output number` (`*.oneshot-sev`, what a vezasock session sees). Ports are fixed
so that the recorded bytes do not change from run to run. The binaries come from
VEZASOCK_HAPROXY_2_6 / _3_0 / _3_2 / _3_4 or the install script's paths.

    python3 grammar/capture_servers.py [VERSION ...]     # default: every version
"""

import sys
import tempfile
from pathlib import Path

from capture_common import VERSIONS, one_shot, start, stop, wanted_versions

HERE = Path(__file__).resolve().parent

# Nothing needs to listen on these ports: the replies do not depend on the checks.
CONFIG = """global
    stats socket {dir}/admin.sock mode 600 level admin
    stats socket {dir}/admin-sev.sock mode 600 level admin severity-output number

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

backend be_app
    server blue 127.0.0.1:18001 check inter 1s
    server named localhost:18003
"""
RESET = "set server be_app/blue addr 127.0.0.1 port 18001"
# (case, line sent)
CASES = [
    ("set-server-addr-port", "set server be_app/blue addr 127.0.0.1 port 18002"),
    ("set-server-addr-ip-and-port", "set server be_app/blue addr 127.0.0.2 port 18002"),
    ("set-server-addr-same", "set server be_app/blue addr 127.0.0.1 port 18001"),
    ("set-server-addr-no-port", "set server be_app/blue addr 127.0.0.2"),
    ("set-server-addr-ipv6", "set server be_app/blue addr ::1 port 18002"),
    ("set-server-addr-named-server", "set server be_app/named addr 127.0.0.1 port 18004"),
    ("set-server-addr-hostname", "set server be_app/blue addr localhost port 18002"),
    ("set-server-addr-bad-port", "set server be_app/blue addr 127.0.0.1 port 99999"),
    ("set-server-addr-missing", "set server be_app/blue addr"),
    ("set-server-addr-nosuch-server", "set server be_app/nosuch addr 127.0.0.1 port 18002"),
    ("set-server-addr-nosuch-backend", "set server nosuch/blue addr 127.0.0.1 port 18002"),
]
MODES = [("oneshot", "admin"), ("oneshot-sev", "admin-sev")]


def record(version: str, binary: str) -> None:
    with tempfile.TemporaryDirectory(prefix="vezasock-servers-") as tmp:
        out = HERE / "corpus-servers" / version
        out.mkdir(parents=True, exist_ok=True)
        proc = start(binary, tmp, CONFIG.format(dir=tmp), version)
        try:
            for mode, sock in MODES:
                for case, line in CASES:
                    one_shot(f"{tmp}/admin.sock", RESET)
                    one_shot(f"{tmp}/admin.sock", "set server be_app/named addr 127.0.0.1 port 18003")
                    reply = one_shot(f"{tmp}/{sock}.sock", line)
                    (out / f"{case}.{mode}").write_bytes(reply)
                    print(f"capture_servers: {version} {case}.{mode}: {reply!r}", file=sys.stderr)
        finally:
            stop(proc)


def main() -> int:
    for version in wanted_versions(sys.argv[1:]):
        record(version, VERSIONS[version])
    return 0


if __name__ == "__main__":
    sys.exit(main())
