"""What the one-shot capture scripts (capture_ssl.py, capture_servers.py) share: the HAProxy
binaries per version, a one-shot exchange read to EOF, and starting / stopping one HAProxy in a
temp dir (Python 3.11 standard library only)."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

CACHE = Path(os.environ.get("HOME", "/root")) / ".cache/vezasock/haproxy"
VERSIONS = {
    "2.6": os.environ.get("VEZASOCK_HAPROXY_2_6", "/usr/sbin/haproxy"),
    "3.0": os.environ.get("VEZASOCK_HAPROXY_3_0", str(CACHE / "3.0/usr/sbin/haproxy")),
    "3.2": os.environ.get("VEZASOCK_HAPROXY_3_2", str(CACHE / "3.2/usr/sbin/haproxy")),
    "3.4": os.environ.get("VEZASOCK_HAPROXY_3_4", str(CACHE / "3.4/usr/sbin/haproxy")),
}


def wanted_versions(args: list[str]) -> list[str]:
    """The versions named on the command line (all of them when none is) (an unknown one exits with its name)."""
    for v in args:
        if v not in VERSIONS:
            raise SystemExit(f"unknown version {v} (known: {' '.join(VERSIONS)})")
    return args or list(VERSIONS)


def one_shot(path: str, line: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def start(binary: str, tmp: str, config: str, version: str) -> subprocess.Popen:
    """HAProxy on `config` in `tmp`, once its `admin-sev.sock` is there."""
    Path(f"{tmp}/admin-sev.sock").unlink(missing_ok=True)
    Path(f"{tmp}/haproxy.cfg").write_text(config)
    proc = subprocess.Popen([binary, "-f", f"{tmp}/haproxy.cfg"], start_new_session=True)
    deadline = time.monotonic() + 5
    while not Path(f"{tmp}/admin-sev.sock").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            raise RuntimeError(f"{version}: HAProxy did not start")
        time.sleep(0.02)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=5)
