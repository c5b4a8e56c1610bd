#!/usr/bin/env python3
"""Records `show ssl cert` replies from real HAProxy 2.6, 3.0 and 3.2 into
grammar/corpus-ssl/<version>/ (Python 3.11 standard library only).

Each run starts one HAProxy per version in a temp dir, with one TLS frontend on
a free loopback port serving lab/ssl/site.pem (a self-signed test certificate,
test use only), then records over one-shot connections (read to EOF) on a plain
admin socket and on one with `severity-output number`. The binaries come from
VEZASOCK_HAPROXY_2_6 / _3_0 / _3_2 or the install script's paths.

    python3 grammar/capture_ssl.py
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("HOME", "/root")) / ".cache/vezasock/haproxy"
VERSIONS = {
    "2.6": os.environ.get("VEZASOCK_HAPROXY_2_6", "/usr/sbin/haproxy"),
    "3.0": os.environ.get("VEZASOCK_HAPROXY_3_0", str(CACHE / "3.0/usr/sbin/haproxy")),
    "3.2": os.environ.get("VEZASOCK_HAPROXY_3_2", str(CACHE / "3.2/usr/sbin/haproxy")),
}
CONFIG = """global
    stats socket {dir}/admin.sock mode 600 level admin
    stats socket {dir}/admin-sev.sock mode 600 level admin severity-output number

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
    ("show-ssl-cert.oneshot", "admin", "show ssl cert {dir}/site.pem"),
    ("show-ssl-cert.oneshot-sev", "admin-sev", "show ssl cert {dir}/site.pem"),
    ("show-ssl-cert-nosuch.oneshot", "admin", "show ssl cert {dir}/nosuch.pem"),
    ("show-ssl-cert-nosuch.oneshot-sev", "admin-sev", "show ssl cert {dir}/nosuch.pem"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_shot(path: str, line: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def record(version: str, binary: str) -> None:
    with tempfile.TemporaryDirectory(prefix="vezasock-ssl-") as tmp:
        shutil.copy(HERE / "lab/ssl/site.pem", f"{tmp}/site.pem")
        Path(f"{tmp}/haproxy.cfg").write_text(
            CONFIG.format(dir=tmp, port=free_port(), port2=free_port())
        )
        proc = subprocess.Popen([binary, "-f", f"{tmp}/haproxy.cfg"], start_new_session=True)
        try:
            deadline = time.monotonic() + 5
            while not Path(f"{tmp}/admin-sev.sock").exists():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{version}: HAProxy did not start")
                time.sleep(0.02)
            out = HERE / "corpus-ssl" / version
            out.mkdir(parents=True, exist_ok=True)
            for file, sock, line in CASES:
                reply = one_shot(f"{tmp}/{sock}.sock", line.format(dir=tmp))
                (out / file).write_bytes(reply)
                print(f"capture_ssl: {version} {file}: {len(reply)} bytes", file=sys.stderr)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)


def main() -> int:
    for version, binary in VERSIONS.items():
        record(version, binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
