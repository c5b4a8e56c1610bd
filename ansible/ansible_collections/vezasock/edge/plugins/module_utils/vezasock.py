# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Shared by every vezasock.edge module: locate the binary, run it with --json, parse its
answer, and turn its exit code into Ansible's changed/failed/msg (the README's "Exit codes")."""

from __future__ import annotations

import json

# What each exit code means, as the README's "Exit codes" table says.
EXIT_MEANINGS = {
    0: "done",
    1: "refused",
    2: "bad input",
    3: "HAProxy unreachable",
    4: "locked",
    5: "applied but not verified or not recorded",
    6: "drift",
    7: "analysis failed, put back",
}

COMMON_OPTIONS = dict(
    binary=dict(type="str", default="vezasock"),
    config=dict(type="path"),
    who=dict(type="str"),
)

LOCK_OPTIONS = dict(
    no_wait=dict(type="bool", default=False),
    lock_timeout=dict(type="str"),
)


def argument_spec(locking=True, **options):
    """The module's own options plus the shared ones."""
    spec = dict(COMMON_OPTIONS)
    if locking:
        spec.update(LOCK_OPTIONS)
    spec.update(options)
    return spec


def flag(argv, name, value):
    """Appends `--name value` when value is set (a bool appends `--name` when true)."""
    if value is None or value is False:
        return
    argv.append("--" + name.replace("_", "-"))
    if value is not True:
        argv.append(str(value))


class Vezasock(object):
    """One module's calls of the vezasock binary."""

    def __init__(self, module):
        self.module = module
        binary = module.params["binary"]
        if "/" in binary:
            self.binary = binary
        else:
            self.binary = module.get_bin_path(binary, required=True)

    def argv(self, command, locking=False):
        """The binary, the command words, --config and (for a change) the lock flags."""
        p = self.module.params
        argv = [self.binary] + list(command)
        flag(argv, "config", p.get("config"))
        if locking:
            flag(argv, "no_wait", p.get("no_wait"))
            flag(argv, "lock_timeout", p.get("lock_timeout"))
        return argv

    def run(self, argv, json_output=True):
        """Runs argv (with --json); returns (rc, parsed JSON or None, stdout, stderr)."""
        if json_output:
            argv = argv + ["--json"]
        env = {"NO_COLOR": "1"}
        if self.module.params.get("who"):
            env["VEZASOCK_WHO"] = self.module.params["who"]
        rc, out, err = self.module.run_command(argv, environ_update=env)
        data = None
        if json_output and out.strip():
            try:
                data = json.loads(out)
            except ValueError:
                data = None
        return rc, data, out, err

    def fail(self, argv, rc, data, err, **result):
        """Fails the task with the tool's own message, its exit code and what it means."""
        message = None
        if isinstance(data, dict) and data.get("error"):
            message = data["error"]
        if not message:
            lines = [line for line in err.splitlines() if line.strip()]
            message = "\n".join(lines[-5:]) if lines else "no message"
        meaning = EXIT_MEANINGS.get(rc, "unknown exit code")
        result.update(
            msg="vezasock exit %d (%s): %s" % (rc, meaning, message),
            rc=rc,
            exit_meaning=meaning,
            cmd=argv,
            stderr=err,
            report=data,
        )
        self.module.fail_json(**result)

    def env_sides(self, env):
        """What is live and what is recorded for env (`status ENV --json`), for a result after
        exit 5; None for a side status could not read."""
        rc, data, _out, _err = self.run(self.argv(["status", env]))
        if not isinstance(data, dict):
            return dict(live=None, recorded=None, map_file=None)
        for e in data.get("envs") or []:
            if e.get("name") == env:
                sides = e.get("sides") or {}
                return dict(
                    live=sides.get("runtime"),
                    recorded=sides.get("state_file"),
                    map_file=sides.get("map_file"),
                )
        return dict(live=None, recorded=None, map_file=None)


def color_diff(before, after, header):
    """A diff of colors: {name: color} before and after, one line each."""
    def text(colors):
        return "".join("%s: %s\n" % (k, colors[k]) for k in sorted(colors))

    return dict(
        before=text(before),
        after=text(after),
        before_header=header,
        after_header=header,
    )
