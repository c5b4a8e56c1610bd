#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: server
short_description: Drain, maintain or ready HAProxy servers, with a bounded wait (vezasock drain/maint/ready)
description:
  - Runs C(vezasock drain|maint|ready ... --json) on the host (or on every edge of a fleet with O(fleet)).
    Every change is written through to vezasock's admin file and HAProxy's server-state file.
  - With O(state=drain) and O(wait), waits until the drained servers' sessions reach zero, then applies
    O(then). A server already drained, already down or already ready returns at once; at the deadline the
    task fails naming the servers still busy (C(busy)), the servers left in drain.
  - C(changed) is false when every selected server already was in the state.
  - Taking every server of an env's live color out of rotation is refused unless O(force=true).
version_added: 0.1.0
author: vezasock authors (!UNKNOWN)
options:
  state:
    description: The admin state to put the servers in.
    type: str
    required: true
    choices: [drain, maint, ready]
  env:
    description: The env whose servers to change (with O(color), O(component), O(server) narrowing it).
    type: str
  color:
    description: Only this color's servers.
    type: str
    choices: [blue, green]
  component:
    description: Only this component's servers.
    type: str
  server:
    description: Only this server.
    type: str
  backend:
    description: Any backend by name instead of O(env), for example C(forgejo_backend).
    type: str
  wait:
    description: With O(state=drain), wait up to this long for the servers' sessions to reach zero, for example C(2m).
    type: str
  then:
    description: With O(wait), what to do once drained.
    type: str
    choices: [maint, kill, leave]
  force:
    description: Allow taking every server of an env's live color out of rotation.
    type: bool
    default: false
  kill_sessions:
    description: With O(state=maint), also end the servers' sessions.
    type: bool
    default: false
  fleet:
    description: A fleet file; the change is made on every edge or on none.
    type: path
extends_documentation_fragment:
  - vezasock.edge.vezasock
  - vezasock.edge.vezasock.locking
attributes:
  check_mode:
    support: none
    description: Not supported, vezasock has no dry run for server states; the task is skipped in check mode.
  diff_mode:
    support: none
    description: No diff, C(servers) lists each server's state before and after.
"""

EXAMPLES = r"""
- name: Drain the old color, wait for its sessions, then put it in maintenance
  vezasock.edge.server:
    state: drain
    env: staging
    color: blue
    wait: 2m
    then: maint
  become: true
"""

RETURN = r"""
servers:
  description: Every server changed, C(backend), C(server), C(before), C(after), C(sessions_killed).
  returned: success
  type: list
  elements: dict
busy:
  description: The servers still holding sessions at the O(wait) deadline.
  returned: when a wait ran out
  type: list
  elements: raw
report:
  description: vezasock's C(--json) report (README, "JSON output", C(drain), C(maint), C(ready) or C(maint fleet)).
  returned: always
  type: dict
rc:
  description: vezasock's exit code.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vezasock.edge.plugins.module_utils.vezasock import (
    Vezasock,
    argument_spec,
    flag,
)


def build(tool, p):
    """The `vezasock drain|maint|ready` command line."""
    words = [p["state"]]
    if p["fleet"]:
        words += ["--fleet", p["fleet"]]
    if p["env"]:
        words.append(p["env"])
        if p["color"]:
            words.append(p["color"])
    argv = tool.argv(words, locking=True)
    for name in ("component", "server", "backend", "wait", "then"):
        flag(argv, name, p[name])
    flag(argv, "force", p["force"])
    flag(argv, "kill_sessions", p["kill_sessions"])
    return argv


def servers_of(data):
    """Every server line of a single-edge report (the drain's and its `then`'s)."""
    parts = [data.get("drain"), data.get("then")] if "drain" in data else [data]
    found = []
    for part in parts:
        if isinstance(part, dict):
            found.extend(part.get("servers") or [])
    return found


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            state=dict(type="str", required=True, choices=["drain", "maint", "ready"]),
            env=dict(type="str"),
            color=dict(type="str", choices=["blue", "green"]),
            component=dict(type="str"),
            server=dict(type="str"),
            backend=dict(type="str"),
            wait=dict(type="str"),
            then=dict(type="str", choices=["maint", "kill", "leave"]),
            force=dict(type="bool", default=False),
            kill_sessions=dict(type="bool", default=False),
            fleet=dict(type="path"),
        ),
        required_one_of=[("env", "backend")],
        mutually_exclusive=[("env", "backend")],
        required_by=dict(then="wait"),
        supports_check_mode=False,
    )
    p = module.params
    if p["wait"] and p["state"] != "drain":
        module.fail_json(msg="wait is for state=drain only")
    tool = Vezasock(module)
    argv = build(tool, p)
    rc, data, _out, err = tool.run(argv)
    wait = data.get("wait") if isinstance(data, dict) else None
    busy = (wait or {}).get("busy") or []
    if rc != 0 or not isinstance(data, dict):
        tool.fail(argv, rc, data, err, busy=busy)
    if p["fleet"]:
        servers = []
        changed = any(e.get("result") != "unchanged" for e in data.get("edges") or [])
    else:
        servers = servers_of(data)
        changed = any(s.get("before") != s.get("after") for s in servers)
    module.exit_json(changed=changed, rc=rc, report=data, servers=servers, busy=busy)


if __name__ == "__main__":
    main()
