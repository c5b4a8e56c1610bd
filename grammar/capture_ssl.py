#!/usr/bin/env python3
"""Records `show ssl cert` replies, and the replies of the certificate writes
(`new`/`set`/`commit`/`abort ssl cert`, `add`/`del ssl crt-list`, `del ssl cert`,
files `*-write.oneshot`), from real HAProxy 2.6, 3.0, 3.2 and 3.4 into
grammar/corpus-ssl/<version>/ (Python 3.11 standard library only).

Each run starts one HAProxy per version in a temp dir, with one TLS frontend on
a free loopback port serving lab/ssl/site.pem (a self-signed test certificate,
test use only), then records over one-shot connections (read to EOF) on a plain
admin socket, on one with `severity-output number` and on an operator-level one
(where `cert list` reads). A last HAProxy without any certificate records the
list's bare `\n` (`show-ssl-cert-list-none`). The binaries come from
VEZASOCK_HAPROXY_2_6 / _3_0 / _3_2 / _3_4 or the install script's paths.

    python3 grammar/capture_ssl.py [VERSION ...]     # default: every version
"""

import shutil
import socket
import sys
import tempfile
from pathlib import Path

from capture_common import VERSIONS, one_shot, start, stop, wanted_versions

HERE = Path(__file__).resolve().parent

CONFIG = """global
    stats socket {dir}/admin.sock mode 600 level admin
    stats socket {dir}/admin-sev.sock mode 600 level admin severity-output number
    stats socket {dir}/operator.sock mode 600 level operator severity-output number

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe_tls
    bind 127.0.0.1:{port} ssl crt {dir}/site.pem
    default_backend be_app

backend be_app
    server blue 127.0.0.1:{port2}
"""
# (file, socket, line sent)
CASES = [
    ("show-ssl-cert-list.oneshot", "admin", "show ssl cert"),
    ("show-ssl-cert-list.oneshot-sev", "admin-sev", "show ssl cert"),
    ("show-ssl-cert-list.operator", "operator", "show ssl cert"),
    ("show-ssl-cert.oneshot", "admin", "show ssl cert {dir}/site.pem"),
    ("show-ssl-cert.oneshot-sev", "admin-sev", "show ssl cert {dir}/site.pem"),
    ("show-ssl-cert-nosuch.oneshot", "admin", "show ssl cert {dir}/nosuch.pem"),
    ("show-ssl-cert-nosuch.oneshot-sev", "admin-sev", "show ssl cert {dir}/nosuch.pem"),
]

# A third HAProxy serves no certificate at all (the same config without its TLS frontend).
NO_TLS = CONFIG.replace("    bind 127.0.0.1:{port} ssl crt {dir}/site.pem\n", "    bind 127.0.0.1:{port}\n")
NONE_CASES = [
    ("show-ssl-cert-list-none.oneshot", "admin", "show ssl cert"),
    ("show-ssl-cert-list-none.oneshot-sev", "admin-sev", "show ssl cert"),
]

# The writes run on a second HAProxy whose config adds a bind on a crt directory.
DIR_FRONTEND = """
frontend fe_dir
    bind 127.0.0.1:{port3} ssl crt {dir}/certs
    default_backend be_app
"""
# The writes, in order (each depends on the one before): a new certificate in the crt
# directory, then the refusals. `{pem}` is site.pem without empty lines (an empty line ends
# the payload); one_shot adds the final newline, so the payload ends with an empty line.
WRITES = [
    ("new-ssl-cert-write.oneshot", "new ssl cert {dir}/certs/new.pem"),
    ("set-ssl-cert-write.oneshot", "set ssl cert {dir}/certs/new.pem <<\n{pem}"),
    ("commit-ssl-cert-write.oneshot", "commit ssl cert {dir}/certs/new.pem"),
    ("add-ssl-crt-list-write.oneshot", "add ssl crt-list {dir}/certs {dir}/certs/new.pem"),
    ("set-ssl-cert-bad-write.oneshot", "set ssl cert {dir}/site.pem <<\nnot a certificate\n"),
    ("set-ssl-cert-again-write.oneshot", "set ssl cert {dir}/site.pem <<\n{pem}"),
    ("abort-ssl-cert-write.oneshot", "abort ssl cert {dir}/site.pem"),
    ("commit-ssl-cert-none-write.oneshot", "commit ssl cert {dir}/nosuch.pem"),
    ("del-ssl-crt-list-write.oneshot", "del ssl crt-list {dir}/certs {dir}/certs/new.pem"),
    ("del-ssl-cert-write.oneshot", "del ssl cert {dir}/certs/new.pem"),
    (
        "del-ssl-crt-list-default-write.oneshot",
        "del ssl crt-list {dir}/certs {dir}/certs/site.pem",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(version: str, binary: str) -> None:
    with tempfile.TemporaryDirectory(prefix="vezasock-ssl-") as tmp:
        shutil.copy(HERE / "lab/ssl/site.pem", f"{tmp}/site.pem")
        Path(f"{tmp}/certs").mkdir()
        shutil.copy(HERE / "lab/ssl/site.pem", f"{tmp}/certs/site.pem")
        pem = "".join(
            line for line in (HERE / "lab/ssl/site.pem").read_text().splitlines(True) if line.strip()
        )
        out = HERE / "corpus-ssl" / version
        out.mkdir(parents=True, exist_ok=True)
        config = CONFIG.format(dir=tmp, port=free_port(), port2=free_port())
        proc = start(binary, tmp, config, version)
        try:
            for file, sock, line in CASES:
                reply = one_shot(f"{tmp}/{sock}.sock", line.format(dir=tmp))
                (out / file).write_bytes(reply)
                print(f"capture_ssl: {version} {file}: {len(reply)} bytes", file=sys.stderr)
        finally:
            stop(proc)
        config += DIR_FRONTEND.format(dir=tmp, port3=free_port())
        proc = start(binary, tmp, config, version)
        try:
            for file, line in WRITES:
                reply = one_shot(f"{tmp}/admin.sock", line.format(dir=tmp, pem=pem))
                (out / file).write_bytes(reply)
                print(f"capture_ssl: {version} {file}: {len(reply)} bytes", file=sys.stderr)
        finally:
            stop(proc)
        proc = start(binary, tmp, NO_TLS.format(dir=tmp, port=free_port(), port2=free_port()), version)
        try:
            for file, sock, line in NONE_CASES:
                reply = one_shot(f"{tmp}/{sock}.sock", line)
                (out / file).write_bytes(reply)
                print(f"capture_ssl: {version} {file}: {len(reply)} bytes", file=sys.stderr)
        finally:
            stop(proc)


def main() -> int:
    for version in wanted_versions(sys.argv[1:]):
        record(version, VERSIONS[version])
    return 0


if __name__ == "__main__":
    sys.exit(main())
