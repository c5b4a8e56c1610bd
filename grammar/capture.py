#!/usr/bin/env python3
"""Record the byte-exact runtime API reply corpus from real HAProxy binaries.

For each HAProxy version this starts loopback HTTP backends and a master-worker
HAProxy in a temp dir (config from grammar/lab/haproxy.cfg.tmpl), waits for the
health checks to settle, sends every case of CASES over the stats sockets and
the master socket, and writes the bytes received, unchanged, to
grammar/corpus/<version>/<case>.<mode>, plus an index.json describing them
(schema in grammar/README.md).

    python3 grammar/capture.py [--version 2.6|3.0|3.2|3.4 ...] [--out grammar/corpus]

Python 3.11 standard library only. Everything it starts is stopped (by PID or
by the process group of the HAProxy it started) and the temp dir is deleted,
also when a case fails.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "lab" / "haproxy.cfg.tmpl"

VERSIONS = ("2.6", "3.0", "3.2", "3.4")
CACHE = Path(
    os.environ.get("VEZASOCK_HAPROXY_CACHE", Path.home() / ".cache/vezasock/haproxy")
)
DEFAULT_BINARIES = {
    "2.6": Path("/usr/sbin/haproxy"),
    "3.0": CACHE / "3.0/usr/sbin/haproxy",
    "3.2": CACHE / "3.2/usr/sbin/haproxy",
    "3.4": CACHE / "3.4/usr/sbin/haproxy",
}

# Read deadlines (seconds). HAProxy answers in well under a millisecond; these
# only bound the run when something hangs.
ONESHOT_DEADLINE = 5.0
TOO_LONG_DEADLINE = 3.0
PROMPT_DEADLINE = 8.0
RELOAD_DEADLINE = 15.0

MODE_SOCKET = {
    "oneshot": "admin",
    "oneshot-sev": "admin-sev",
    "operator": "operator",
    "prompt": "admin",
    "master-oneshot": "master",
    "master-prompt": "master",
}
BOTH = ("oneshot", "oneshot-sev")

# Texts HAProxy uses for refusals, for classifying replies without a `[N]: `
# prefix (research §5 and what the corpus showed).
KNOWN_ERRORS = (
    "Require 'backend/server'.",
    "No such backend.",
    "No such server.",
    "No such proxy.",
    "Can't find backend.",
    "'set server <srv> state' expects",
    "usage: set server",
    "Require <weight> or <weight%>.",
    "Absolute weight can only be",
    "Relative weight",
    "Empty weight string",
    "entry not found.",
    "key or pattern not found.",
    "'set map' expects",
    "'add map' expects",
    "Key not found.",
    "Unknown map identifier.",
    "Missing map identifier",
    "Version number in the future",
    "Version number out of range.",
    "Missing version number.",
    "Permission denied",
    "Unknown command",
    "The command is too big",
    "The command line is too big",
    "Can't find the target PID",
    "Missing argument",
)

MASTER_PROMPT = re.compile(rb"(?:master|\d+)(?:\[ReloadFailed\])?(?:\([a-z]+\))?> ")


def log(msg: str) -> None:
    print(f"capture: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Cases. `sent` and `setup`/`after` lines are templates filled from the run
# context: {dir} {map} {scratch} {hosts} {mapid} {ver} {wpid}.
# `setup` runs (unrecorded, one-shot on admin.sock) before each mode's
# recording; `after` runs once after all modes. Strings starting with "!" are
# actions of this script (write the broken config, wait for a reload, ...).
# --------------------------------------------------------------------------


def case(name, sent, parser="none", modes=BOTH, **kw):
    return dict(name=name, sent=sent, parser=parser, modes=modes, **kw)


def pipelined_set_map_lines() -> str:
    good = ["set map {map} staging blue\n"] * 50
    return "".join(good + ["set map {map} nosuchkey x\n"] + good)


TOO_LONG = "get map {map} " + "x" * (20_000 - len("get map {map} ") - 1) + "\n"

CASES = [
    # ---- dumps ----
    case("show-info", "show info\n", "info"),
    case(
        "show-info-typed",
        "show info typed\n",
        modes=("oneshot",),
        note="typed format <idx>.<Name>.<proc>:<tags>:<type>:<value>, not the `info` parser's",
    ),
    case("show-stat", "show stat\n", "stat"),
    case("show-stat-filtered", "show stat be_staging_api 4 -1\n", "stat"),
    case("show-stat-nosuch", "show stat nosuch 4 -1\n"),
    case("show-servers-state", "show servers state\n", "servers_state"),
    case("show-servers-state-one", "show servers state be_staging_api\n", "servers_state"),
    case("show-servers-state-nosuch", "show servers state nosuch\n"),
    case("show-backend", "show backend\n", "backends"),
    case("show-map-list", "show map\n", "map_list"),
    case("show-map-file", "show map {map}\n", "map_entries"),
    case("show-map-id", "show map #{mapid}\n", "map_entries"),
    case("show-servers-conn", "show servers conn\n", "servers_conn"),
    case("show-servers-conn-one", "show servers conn be_staging_api\n", "servers_conn"),
    # ---- maps ----
    case("get-map-found", "get map {map} staging\n", "get_map"),
    case("get-map-not-found", "get map {map} nosuchkey\n", "get_map"),
    case(
        "set-map",
        "set map {map} staging green\n",
        after=["set map {map} staging blue\n"],
    ),
    case("set-map-missing-key", "set map {map} nosuchkey x\n"),
    case("set-map-missing-args", "set map {map}\n"),
    case("add-map", "add map {map} newkey v\n", after=["del map {map} newkey\n"]),
    case("add-map-missing-value", "add map {map} k\n"),
    case(
        "add-map-payload",
        "add map {map} <<\nk1 v1\nk2 v2 with spaces\n\n",
        modes=("oneshot", "oneshot-sev", "prompt"),
        after=["del map {map} k1\n", "del map {map} k2\n"],
    ),
    case(
        "add-map-payload-per-line",
        "add map {map} <<\nk1 v1\nk2 v2 with spaces\n\n",
        modes=("prompt",),
        per_line=True,
        after=["del map {map} k1\n", "del map {map} k2\n"],
        note="one write per line, each after the previous prompt: "
        "3.2 prints `+ ` only while it waits for more payload",
    ),
    case(
        "show-map-after-payload",
        "show map {map}\n",
        "map_entries",
        modes=("oneshot",),
        setup=["add map {map} <<\nk1 v1\nk2 v2 with spaces\n\n"],
        after=["del map {map} k1\n", "del map {map} k2\n"],
        note="value `v2 with spaces` is the rest of the line",
    ),
    case("del-map", "del map {map} newkey\n", setup=["add map {map} newkey v\n"]),
    case("del-map-again", "del map {map} newkey\n", setup=["del map {map} newkey\n"]),
    case("clear-map", "clear map {scratch}\n", setup=["add map {scratch} s1 v1\n"]),
    case("map-unknown-file", "show map {dir}/nosuch.map\n"),
    case("set-map-unknown-file", "set map {dir}/nosuch.map staging blue\n"),
    case("get-map-missing-key", "get map {map}\n"),
    case("prepare-map", "prepare map {map}\n", "prepare_map"),
    case(
        "add-map-version",
        "add map @{ver} {map} staged v\n",
        setup=["prepare map {map}\n"],
    ),
    case("show-map-version", "show map @{ver} {map}\n", "map_entries"),
    case("show-map-list-pending-version", "show map\n", "map_list", modes=("oneshot",)),
    case(
        "commit-map-version",
        "commit map @{ver} {map}\n",
        # commit replaces the whole map, so the version gets the full content.
        setup=[
            "prepare map {map}\n",
            "add map @{ver} {map} staging blue\n",
            "add map @{ver} {map} prod green\n",
        ],
    ),
    case("commit-map-again", "commit map @{ver} {map}\n"),
    case("commit-map-future", "commit map @999 {map}\n"),
    case("commit-map-no-version", "commit map {map}\n"),
    case("add-map-future-version", "add map @999 {map} k v\n"),
    # ---- escaping ----
    case("set-map-escaped-space", "set map {map} staging a\\ b\n"),
    case(
        "show-map-after-escaped-set",
        "show map {map}\n",
        "map_entries",
        after=["set map {map} staging blue\n"],
        note="value `a b` (escaped space) is the rest of the line",
    ),
    case("add-map-escaped-semicolon", "add map {map} semi a\\;b\n"),
    case(
        "get-map-escaped-semicolon",
        "get map {map} semi\n",
        "get_map",
        after=["del map {map} semi\n"],
    ),
    case(
        "add-map-unescaped-spaces",
        "add map {map} k2 a b c\n",
        note="extra words are dropped silently: the value stored is `a`",
    ),
    case(
        "get-map-unescaped-spaces",
        "get map {map} k2\n",
        "get_map",
        after=["del map {map} k2\n"],
    ),
    # ---- servers ----
    case("set-server-state-drain", "set server be_staging_api/blue state drain\n"),
    case(
        "show-servers-state-after-drain",
        "show servers state be_staging_api\n",
        "servers_state",
        note="blue: srv_admin_state 8 (forced drain)",
    ),
    case("show-stat-after-drain", "show stat be_staging_api 4 -1\n", "stat", note="blue: DRAIN"),
    case("set-server-state-maint", "set server be_staging_api/blue state maint\n"),
    case(
        "show-servers-state-after-maint",
        "show servers state be_staging_api\n",
        "servers_state",
        note="blue: srv_admin_state 1 (forced maint)",
    ),
    case("show-stat-after-maint", "show stat be_staging_api 4 -1\n", "stat", note="blue: MAINT"),
    case(
        "set-server-state-ready",
        "set server be_staging_api/blue state ready\n",
        after=["!wait-up be_staging_api/blue"],
    ),
    case("set-server-state-bogus", "set server be_staging_api/blue state bogus\n"),
    case("set-server-nosuch-server", "set server be_staging_api/nosuch state ready\n"),
    case("set-server-nosuch-backend", "set server nosuch/blue state ready\n"),
    case("set-server-no-server", "set server be_staging_api\n"),
    case("set-server-no-subcommand", "set server be_staging_api/blue\n"),
    case("set-server-weight", "set server be_staging_api/blue weight 50\n"),
    case("get-weight", "get weight be_staging_api/blue\n", "weight"),
    case("get-weight-nosuch-server", "get weight be_staging_api/nosuch\n"),
    case("set-server-weight-too-big", "set server be_staging_api/blue weight 300\n"),
    case("set-server-weight-garbage", "set server be_staging_api/blue weight abc\n"),
    case(
        "set-server-weight-missing",
        "set server be_staging_api/blue weight\n",
        after=["set server be_staging_api/blue weight 100\n"],
    ),
    # ---- framing and the tokenizer ----
    case("unknown-command", "foo\n"),
    case("unknown-command-near", "show infoo\n"),
    case("empty-line", "\n"),
    case("get-weight-crlf", "get weight be_staging_api/blue\r\n", "weight"),
    case(
        "no-newline",
        "get weight be_staging_api/blue",
        "weight",
        shut_wr=True,
        note="no final \\n; the client half-closed after writing",
    ),
    case("chained-3", "get weight be_staging_api/blue;show backend;get map {map} prod\n",
         modes=("oneshot", "oneshot-sev", "prompt")),
    # ---- privilege levels ----
    case("show-cli-level", "show cli level\n", "cli_level",
         modes=("oneshot", "oneshot-sev", "operator")),
    case("operator-set-server-state", "set server be_staging_api/blue state drain\n",
         modes=("operator",)),
    case("operator-set-weight", "set weight be_staging_api/blue 100\n", modes=("operator",)),
    case("operator-set-map", "set map {map} staging blue\n", modes=("operator",)),
    # ---- prompt-mode streams ----
    case(
        "session",
        "get weight be_staging_api/blue\nget weight be_staging_api/nosuch\n"
        "set server be_staging_api/green state ready\nshow backend\n",
        modes=("prompt",),
        note="replies: weight, error, empty success, dump",
    ),
    case(
        "pipelined-set-map",
        pipelined_set_map_lines(),
        modes=("prompt",),
        note="101 lines in one write; line 51 (set map … nosuchkey x) fails",
    ),
    # ---- master CLI ----
    case("master-show-proc", "show proc\n", "proc", modes=("master-oneshot", "master-prompt")),
    case("master-at1-show-info", "@1 show info\n", "info", modes=("master-oneshot",)),
    case("master-at1-get-weight", "@1 get weight be_staging_api/blue\n", "weight",
         modes=("master-oneshot",)),
    case("master-atpid-show-backend", "@!{wpid} show backend\n", "backends",
         modes=("master-oneshot",)),
    case("master-at99", "@99 show info\n", modes=("master-oneshot", "master-prompt")),
    case("master-at1-then-command", "@1\nget weight be_staging_api/blue\n",
         modes=("master-prompt",)),
    case("master-unknown-command", "foo\n", modes=("master-oneshot",)),
    case("master-reload", "reload\n", "reload", modes=("master-oneshot",),
         after=["!wait-reload"]),
    case("master-show-proc-after-reload", "show proc\n", "proc", modes=("master-oneshot",)),
    case("master-reload-failed", "reload\n", "reload", modes=("master-oneshot",),
         setup=["!write-broken-config"], after=["!wait-reload"]),
    case("master-show-proc-after-failed-reload", "show proc\n", "proc",
         modes=("master-oneshot", "master-prompt")),
    case("master-reload-fixed", "reload\n", "reload", modes=("master-oneshot",),
         setup=["!write-good-config"], after=["!wait-reload"]),
    case("master-show-proc-after-reloads", "show proc\n", "proc", modes=("master-oneshot",)),
    # Last: on 2.6 this hangs the connection and may pin the worker.
    case("too-long", TOO_LONG, too_long=True),
]


# --------------------------------------------------------------------------
# Loopback HTTP backends
# --------------------------------------------------------------------------


def make_handler(body: str, status: int = 200, reason: str | None = None):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server naming)
            data = (body + "\n").encode()
            self.send_response(status, reason)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_HEAD = do_GET  # noqa: N815
        do_OPTIONS = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    return Handler


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """Health checks close connections abruptly; that is not worth a trace."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class Backends:
    """The lab's HTTP servers, each in a thread, plus one closed port."""

    def __init__(self) -> None:
        self.servers: list[QuietHTTPServer] = []
        self.ports: dict[str, int] = {}

    def start(self) -> None:
        specs = {
            "staging_blue_port": make_handler("staging blue"),
            "staging_green_port": make_handler("staging green"),
            "prod_blue_port": make_handler("prod blue"),
            # The reason phrase lands in last_chk: a comma and quotes.
            "busy_port": make_handler("busy", 503, 'Busy, "really" later'),
        }
        for key, handler in specs.items():
            srv = QuietHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self.servers.append(srv)
            self.ports[key] = srv.server_address[1]
        self.ports["closed_port"] = free_port()
        self.ports["fe_port"] = free_port()

    def stop(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Socket helpers: raw bytes in, raw bytes out
# --------------------------------------------------------------------------


def connect(path: str, retry_for: float = 0.0) -> socket.socket:
    """Connect to a unix socket; retry on refusal (2.6's master re-exec)."""
    deadline = time.monotonic() + retry_for
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (ConnectionRefusedError, FileNotFoundError):
            s.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def read_to_eof(s: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """Read until EOF or the deadline. Returns (bytes, got_eof)."""
    buf = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf), False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return bytes(buf), False
        except ConnectionResetError:
            return bytes(buf), True
        if not chunk:
            return bytes(buf), True
        buf += chunk


def read_until(s: socket.socket, buf: bytearray, start: int, done, deadline: float,
               quiet: float = 0.1, stall: float = 1.0) -> str:
    """Read into buf until the reply is complete. done(buf[start:]) says
    "done" (complete: wait `quiet` more so a late extra byte is still
    recorded), "maybe" (ends in a prompt but fewer than expected: give it
    `stall`) or "no". Returns "ok", "eof" or "timeout"."""
    while True:
        now = time.monotonic()
        if now >= deadline:
            return "timeout"
        seg = bytes(buf[start:])
        state = done(seg)
        wait = deadline - now
        if state == "done":
            wait = min(wait, quiet)
        elif state == "maybe":
            wait = min(wait, stall)
        s.settimeout(max(wait, 0.001))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if state in ("done", "maybe"):
                return "ok"
            continue
        except ConnectionResetError:
            return "eof"
        if not chunk:
            return "eof"
        buf += chunk


def worker_prompt_done(want: int):
    def done(seg: bytes) -> str:
        if not seg.endswith(b"> "):
            return "no"
        return "done" if seg.count(b"\n> ") >= want else "maybe"
    return done


def line_prompt_done(seg: bytes) -> str:
    return "done" if seg.endswith(b"> ") or seg.endswith(b"+ ") else "no"


def master_prompt_done(seg: bytes) -> str:
    return "done" if MASTER_PROMPT.search(seg) and re.search(
        MASTER_PROMPT.pattern + rb"$", seg) else "no"


def split_commands(line: str) -> int:
    """Number of `;`-separated commands in one line (`\\;` does not split)."""
    return len(re.split(r"(?<!\\);", line))


def prompt_lines(sent: str) -> list[str]:
    """The lines of `sent`, payload lines and the empty end line included."""
    return sent.split("\n")[:-1] if sent.endswith("\n") else sent.split("\n")


def expected_prompts(sent: str, version: str) -> int:
    """How many `> ` prompts the worker prints for `sent` in prompt mode."""
    count = 0
    in_payload = False
    for line in prompt_lines(sent):
        if in_payload:
            if line == "":
                in_payload = False
                count += 1
            continue
        if line.rstrip().endswith("<<"):
            in_payload = True
            continue
        # 3.2 and later print one prompt per line; older ones one per `;` command.
        count += 1 if version in ("3.2", "3.4") else split_commands(line)
    return count


# --------------------------------------------------------------------------
# The lab: one HAProxy master-worker instance
# --------------------------------------------------------------------------


class Lab:
    def __init__(self, version: str, binary: Path) -> None:
        self.version = version
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix=f"vezasock-capture-{version}-"))
        self.backends = Backends()
        self.proc: subprocess.Popen | None = None
        self.seen_pids: set[int] = set()
        self.ctx: dict[str, str] = {}

    # -- files --
    def render(self) -> str:
        tmpl = string.Template(TEMPLATE.read_text())
        return tmpl.substitute(dir=str(self.dir), **{k: str(v) for k, v in self.backends.ports.items()})

    def write_good_config(self) -> None:
        (self.dir / "haproxy.cfg").write_text(self.render())

    def write_broken_config(self) -> None:
        broken = self.render() + "\nbackend be_broken\n    this-keyword-does-not-exist\n"
        (self.dir / "haproxy.cfg").write_text(broken)

    def start(self) -> None:
        self.backends.start()
        (self.dir / "hosts.map").write_text(
            "staging.example.test be_staging_api\nprod.example.test be_prod_web\n")
        (self.dir / "active-color.map").write_text("staging blue\nprod green\n")
        (self.dir / "scratch.map").write_text("s0 v0\n")
        self.write_good_config()
        self.ctx.update(dir=str(self.dir), map=str(self.dir / "active-color.map"),
                        scratch=str(self.dir / "scratch.map"),
                        hosts=str(self.dir / "hosts.map"))
        logf = open(self.dir / "haproxy.log", "wb")
        # Own session, so the whole tree (master and workers) can be stopped
        # by this group id even if a worker is stuck.
        self.proc = subprocess.Popen(
            [str(self.binary), "-W", "-S", f"{self.dir}/master.sock,level,admin",
             "-f", str(self.dir / "haproxy.cfg")],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        logf.close()
        self.wait_sockets()
        self.wait_settled()
        self.refresh_context()

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            # Workers are in the same process group; make sure none is left.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"{self.version}: haproxy master {self.proc.pid} did not exit")
        for pid in self.seen_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.backends.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- unrecorded helpers --
    def sock(self, name: str) -> str:
        return str(self.dir / f"{name}.sock")

    def oneshot(self, name: str, data: bytes, shut_wr: bool = False,
                deadline: float = ONESHOT_DEADLINE, retry_for: float = 0.0) -> tuple[bytes, bool]:
        s = connect(self.sock(name), retry_for)
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
            return read_to_eof(s, time.monotonic() + deadline)
        finally:
            s.close()

    def master(self, data: bytes, deadline: float = ONESHOT_DEADLINE) -> bytes:
        return self.oneshot("master", data, shut_wr=True, deadline=deadline, retry_for=5.0)[0]

    def wait_sockets(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {(self.dir / 'haproxy.log').read_text()}")
            if all((self.dir / f"{n}.sock").exists() for n in
                   ("master", "admin", "admin-sev", "operator")):
                try:
                    self.oneshot("admin", b"show info\n")
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("haproxy sockets did not appear within 15 s")

    def stat_rows(self) -> dict[str, dict[str, str]]:
        out = self.oneshot("admin", b"show stat\n")[0].decode(errors="replace")
        lines = out.split("\n")
        header = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            if not line:
                continue
            # Good enough here: only the quoted last_chk holds commas, and the
            # fields looked at come before it.
            cells = line.split(",")
            row = dict(zip(header, cells))
            rows[f"{row.get('pxname')}/{row.get('svname')}"] = row
        return rows

    def wait_settled(self) -> None:
        want = {"be_staging_api/blue": "UP", "be_staging_api/green": "UP",
                "be_prod_web/blue": "UP", "be_prod_web/green": "DOWN",
                "be_csv_quoting/busy": "DOWN"}
        deadline = time.monotonic() + 30
        rows = {}
        while time.monotonic() < deadline:
            rows = self.stat_rows()
            if all(rows.get(k, {}).get("status") == v for k, v in want.items()):
                # Let the passing servers finish their first full check too.
                if all(rows[k].get("check_status", "").endswith("OK")
                       for k, v in want.items() if v == "UP"):
                    return
            time.sleep(0.2)
        got = {k: rows.get(k, {}).get("status") for k in want}
        raise RuntimeError(f"checks did not settle within 30 s: {got}")

    def wait_up(self, server: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.stat_rows().get(server, {}).get("status") == "UP":
                return
            time.sleep(0.1)
        log(f"{self.version}: {server} not UP again within 15 s")

    def show_proc(self) -> str:
        return self.master(b"show proc\n").decode(errors="replace")

    def master_reloads(self, text: str) -> int | None:
        m = re.search(r"^\d+\s+master\s+(\d+)", text, re.M)
        return int(m.group(1)) if m else None

    def refresh_context(self) -> None:
        proc = self.show_proc()
        workers = [int(m.group(1)) for m in re.finditer(r"^(\d+)\s+worker\s", proc, re.M)]
        self.seen_pids.update(workers)
        if workers:
            self.ctx["wpid"] = str(workers[0])
        reloads = self.master_reloads(proc)
        if reloads is not None:
            self.ctx["reloads"] = str(reloads)
        maps = self.oneshot("admin", b"show map\n")[0].decode(errors="replace")
        m = re.search(r"^(\d+) \(" + re.escape(self.ctx["map"]) + r"\)", maps, re.M)
        if m:
            self.ctx["mapid"] = m.group(1)

    def wait_reload(self) -> None:
        """Wait until the master counts one more reload (2.6 answers before
        reloading and refuses connections while it re-execs)."""
        before = int(self.ctx.get("reloads", "0"))
        deadline = time.monotonic() + RELOAD_DEADLINE
        while time.monotonic() < deadline:
            try:
                reloads = self.master_reloads(self.show_proc())
            except OSError:
                reloads = None
            if reloads is not None and reloads > before:
                break
            time.sleep(0.1)
        else:
            log(f"{self.version}: reload count did not move within {RELOAD_DEADLINE} s")
        time.sleep(0.3)
        self.wait_sockets()
        self.refresh_context()

    def run_action(self, line: str) -> None:
        if line == "!write-broken-config":
            self.write_broken_config()
        elif line == "!write-good-config":
            self.write_good_config()
        elif line == "!wait-reload":
            self.wait_reload()
        elif line.startswith("!wait-up "):
            self.wait_up(line.split(" ", 1)[1])
        else:
            raise ValueError(f"unknown action {line}")

    def run_unrecorded(self, line: str) -> None:
        if line.startswith("!"):
            self.run_action(line)
            return
        reply, _ = self.oneshot("admin", self.fill(line).encode())
        self.note_reply(reply)

    def fill(self, text: str) -> str:
        return text.format_map(self.ctx)

    def note_reply(self, reply: bytes) -> None:
        m = re.search(rb"New version created: (\d+)", reply)
        if m:
            self.ctx["ver"] = m.group(1).decode()

    # -- recorded modes --
    def record_prompt(self, sent: str, per_line: bool) -> tuple[bytes, list[str], str | None]:
        commands = ["prompt", "set severity-output number"] + prompt_lines(sent) + ["quit"]
        buf = bytearray()
        problem = None
        s = connect(self.sock("admin"))
        try:
            steps = [("prompt\n", worker_prompt_done(1)),
                     ("set severity-output number\n", worker_prompt_done(1))]
            if per_line:
                # One write per line, each waiting for its `> ` or payload `+ `.
                steps += [(line + "\n", line_prompt_done) for line in prompt_lines(sent)]
            else:
                steps.append((sent, worker_prompt_done(expected_prompts(sent, self.version))))
            for data, done in steps:
                start = len(buf)
                s.sendall(data.encode())
                got = read_until(s, buf, start, done, time.monotonic() + PROMPT_DEADLINE)
                if got == "eof":
                    problem = f"connection closed after {data[:40]!r}"
                    return bytes(buf), commands, problem
                if got == "timeout":
                    problem = f"no prompt within {PROMPT_DEADLINE:g} s after {data[:40]!r}"
            s.sendall(b"quit\n")
            rest, eof = read_to_eof(s, time.monotonic() + ONESHOT_DEADLINE)
            buf += rest
            if not eof:
                problem = "no EOF after quit"
        finally:
            s.close()
        return bytes(buf), commands, problem

    def record_master_prompt(self, sent: str) -> tuple[bytes, list[str], str | None]:
        lines = prompt_lines(sent)
        commands = ["prompt"] + lines + ["quit"]
        buf = bytearray()
        problem = None
        s = connect(self.sock("master"), retry_for=5.0)
        try:
            for line in ["prompt"] + lines:
                start = len(buf)
                try:
                    s.sendall((line + "\n").encode())
                except (BrokenPipeError, ConnectionResetError):
                    problem = f"write of {line!r} failed: the master had closed"
                    return bytes(buf), commands, problem
                got = read_until(s, buf, start, master_prompt_done,
                                 time.monotonic() + PROMPT_DEADLINE, quiet=0.15)
                if got == "timeout":
                    problem = f"no master prompt within {PROMPT_DEADLINE:g} s after {line!r}"
                if got == "eof":
                    rest, _ = read_to_eof(s, time.monotonic() + 0.5)
                    buf += rest
                    problem = f"master closed the connection after {line!r}"
                    return bytes(buf), commands, problem
            s.sendall(b"quit\n")
            rest, eof = read_to_eof(s, time.monotonic() + ONESHOT_DEADLINE)
            buf += rest
            if not eof:
                problem = "no EOF after quit"
        finally:
            s.close()
        return bytes(buf), commands, problem

    def record(self, c: dict, mode: str) -> tuple[bytes, dict]:
        sent = self.fill(c["sent"])
        extra: dict = {}
        notes: list[str] = []
        if mode in ("oneshot", "oneshot-sev", "operator"):
            deadline = TOO_LONG_DEADLINE if c.get("too_long") else ONESHOT_DEADLINE
            reply, eof = self.oneshot(MODE_SOCKET[mode], sent.encode(),
                                      shut_wr=c.get("shut_wr", False), deadline=deadline)
            if not eof:
                notes.append(f"no reply end: the connection was still open after {deadline:g} s "
                             f"({len(reply)} bytes received); the client closed it")
        elif mode == "master-oneshot":
            reply, eof = self.oneshot("master", sent.encode(), shut_wr=True,
                                      deadline=RELOAD_DEADLINE, retry_for=5.0)
            if not eof:
                notes.append("no EOF from the master within the deadline")
        elif mode == "prompt":
            reply, extra["commands"], problem = self.record_prompt(sent, c.get("per_line", False))
            if problem:
                notes.append(problem)
        elif mode == "master-prompt":
            reply, extra["commands"], problem = self.record_master_prompt(sent)
            if problem:
                notes.append(problem)
        else:
            raise ValueError(mode)
        self.note_reply(reply)
        entry = {"case": c["name"], "mode": mode, "socket": MODE_SOCKET[mode], "sent": sent,
                 "file": f"{c['name']}.{mode}", "parser": c["parser"],
                 "expect": classify(reply, mode)}
        entry.update(extra)
        auto = quirks(reply, mode)
        all_notes = ([c["note"]] if c.get("note") else []) + auto + notes
        if all_notes:
            entry["note"] = f"{self.version}: " + "; ".join(all_notes)
        return reply, entry


def classify(reply: bytes, mode: str) -> str:
    if mode in ("prompt", "master-prompt"):
        return "stream"
    if reply == b"":
        return "closed"
    if reply == b"\n":
        return "empty"
    m = re.match(rb"\[(\d)\]: ", reply)
    if m:
        return "error" if int(m.group(1)) <= 3 else "info"
    text = reply.decode(errors="replace")
    if any(text.startswith(e) for e in KNOWN_ERRORS):
        return "error"
    if text.startswith("New version created:"):
        return "info"
    return "data"


def quirks(reply: bytes, mode: str) -> list[str]:
    """Framing facts worth a note, derived from the bytes only."""
    out = []
    if mode in ("prompt", "master-prompt") or reply in (b"", b"\n"):
        return out
    if reply.endswith(b"\n\n\n"):
        out.append("reply ends with an extra empty line (\\n\\n\\n)")
    elif not reply.endswith(b"\n\n"):
        out.append("single \\n at the end, no empty line" if reply.endswith(b"\n")
                   else "reply does not end with \\n")
    if b"\r" in reply:
        out.append("reply holds \\r")
    if re.match(rb"\[6\]: Unknown command", reply):
        out.append("unknown command is tagged [6] (info), not [3]")
    if reply.startswith(b"Success=0"):
        out.append("Success=0: the reload failed, the old worker keeps serving")
    return out


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def binary_for(version: str) -> Path:
    env = os.environ.get("VEZASOCK_HAPROXY_" + version.replace(".", "_"))
    return Path(env) if env else DEFAULT_BINARIES[version]


def capture_version(version: str, out: Path) -> None:
    binary = binary_for(version)
    if not binary.exists():
        raise FileNotFoundError(f"HAProxy {version} not found at {binary}")
    started = time.monotonic()
    lab = Lab(version, binary)
    vdir = out / version
    entries: list[dict] = []
    files: dict[str, bytes] = {}
    try:
        lab.start()
        log(f"{version}: lab up in {lab.dir} after {time.monotonic() - started:.1f} s")
        for c in CASES:
            for mode in c["modes"]:
                for line in c.get("setup", []):
                    lab.run_unrecorded(line)
                reply, entry = lab.record(c, mode)
                files[entry["file"]] = reply
                entries.append(entry)
            for line in c.get("after", []):
                lab.run_unrecorded(line)
    finally:
        lab.stop()
    # Only replace the version's corpus once the whole run succeeded.
    if vdir.exists():
        shutil.rmtree(vdir)
    vdir.mkdir(parents=True)
    for name, data in files.items():
        (vdir / name).write_bytes(data)
    (vdir / "index.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    log(f"{version}: {len(entries)} recordings in {time.monotonic() - started:.1f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", action="append", choices=VERSIONS,
                    help="HAProxy version to record (repeatable; default: all)")
    ap.add_argument("--out", default=str(HERE / "corpus"), help="corpus root directory")
    args = ap.parse_args()
    versions = args.version or list(VERSIONS)
    failed = []
    for v in versions:
        try:
            capture_version(v, Path(args.out))
        except Exception as e:  # report and go on with the next version
            log(f"{v}: FAILED: {e!r}")
            failed.append(v)
    if failed:
        log(f"failed versions: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
