#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: switch
short_description: Flip an env of one HAProxy edge to a color (vezasock switch)
description:
  - Runs C(vezasock switch ENV COLOR --json) on the host, a gated, journalled and verified flip
    over HAProxy's runtime API, without a reload.
  - C(changed) is false when the env already serves the color.
  - A refusal (the target color is not healthy, the edge is held) fails the task with the tool's
    message; nothing changed. Exit 5 (applied but not verified or not recorded) fails the task
    with what is live and what is recorded in the result.
  - For several edges use M(vezasock.edge.fleet_switch), one transaction over every edge.
version_added: 0.1.0
author: vezasock authors (!UNKNOWN)
options:
  env:
    description: The env to flip, as the topology names it.
    type: str
    required: true
  color:
    description: The color to send the env's traffic to.
    type: str
    required: true
    choices: [blue, green]
  sha:
    description: The deployed commit, recorded in the history (C(--sha)).
    type: str
  wait_healthy:
    description: Wait up to this long for every server of the target color to be up, for example C(60s).
    type: str
  drain_old:
    description: After the flip, drain the old color and wait for its sessions (C(--drain-old)).
    type: bool
    default: false
  drain_timeout:
    description: How long O(drain_old) waits for the old color's sessions.
    type: str
  bake:
    description:
      - After the flip, watch the new color for this long and flip back when its error rate breaches
        O(max_error_rate) (exit 7, the task fails with the numbers).
    type: str
  max_error_rate:
    description: The 5xx share, in percent, that fails the bake.
    type: str
  min_requests:
    description: Fewer responses than this over the bake is inconclusive, never a breach.
    type: int
  preview_check:
    description: Before the gate, GET each path through the edge with a preview token for the target color.
    type: list
    elements: str
  preview_via:
    description: Where O(preview_check) reaches the edge's HTTP listener (ADDR:PORT).
    type: str
extends_documentation_fragment:
  - vezasock.edge.vezasock
  - vezasock.edge.vezasock.locking
attributes:
  check_mode:
    support: full
    description: Runs C(vezasock switch --dry-run), which reads and gates the flip and changes nothing.
  diff_mode:
    support: full
    description: The env's color before and after.
"""

EXAMPLES = r"""
- name: Switch staging to green once its servers are up, keeping the old color in drain
  vezasock.edge.switch:
    env: staging
    color: green
    sha: "{{ deploy_sha }}"
    wait_healthy: 60s
    drain_old: true
  become: true

- name: What would the switch do
  vezasock.edge.switch:
    env: prod
    color: blue
  check_mode: true
  diff: true
"""

RETURN = r"""
env:
  description: The env.
  returned: always
  type: str
from:
  description: The env's color before.
  returned: success
  type: str
to:
  description: The env's color after (or, in check mode, the color it would serve).
  returned: success
  type: str
noop:
  description: Whether the env already served the color.
  returned: success
  type: bool
report:
  description: vezasock's C(--json) report (README, "JSON output", C(switch)), also on a failure.
  returned: always
  type: dict
rc:
  description: vezasock's exit code.
  returned: always
  type: int
exit_meaning:
  description: What the exit code means (README, "Exit codes").
  returned: failure
  type: str
live:
  description: After exit 5, the color the runtime serves (C(status)).
  returned: failure
  type: str
recorded:
  description: After exit 5, the color the state file records (C(status)).
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vezasock.edge.plugins.module_utils.vezasock import (
    Vezasock,
    argument_spec,
    color_diff,
    flag,
)


def build(tool, p, check_mode):
    """The `vezasock switch` command line."""
    argv = tool.argv(["switch", p["env"], p["color"]], locking=True)
    for name in ("sha", "wait_healthy", "drain_timeout", "bake", "max_error_rate",
                 "min_requests", "preview_via"):
        flag(argv, name, p[name])
    flag(argv, "drain_old", p["drain_old"])
    if p["preview_check"]:
        flag(argv, "preview_check", ",".join(p["preview_check"]))
    flag(argv, "dry_run", check_mode)
    return argv


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            env=dict(type="str", required=True),
            color=dict(type="str", required=True, choices=["blue", "green"]),
            sha=dict(type="str"),
            wait_healthy=dict(type="str"),
            drain_old=dict(type="bool", default=False),
            drain_timeout=dict(type="str"),
            bake=dict(type="str"),
            max_error_rate=dict(type="str"),
            min_requests=dict(type="int"),
            preview_check=dict(type="list", elements="str"),
            preview_via=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    tool = Vezasock(module)
    argv = build(tool, p, module.check_mode)
    rc, data, _out, err = tool.run(argv)
    if rc != 0 or not isinstance(data, dict):
        extra = dict(env=p["env"])
        if rc == 5:
            extra.update(tool.env_sides(p["env"]))
        tool.fail(argv, rc, data, err, **extra)
    result = dict(
        changed=not data.get("noop", False),
        env=p["env"],
        rc=rc,
        report=data,
        noop=data.get("noop"),
        to=data.get("to"),
    )
    result["from"] = data.get("from")
    if module._diff:
        result["diff"] = color_diff(
            {p["env"]: data.get("from")}, {p["env"]: data.get("to")}, "active color"
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
