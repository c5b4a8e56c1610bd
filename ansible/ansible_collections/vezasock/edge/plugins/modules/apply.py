#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: apply
short_description: Bring an HAProxy edge to its topology and recorded colors (vezasock apply)
description:
  - Runs C(vezasock apply --json) on the host, which ends an open transaction, repairs drift after a
    crash, edits maps or moves servers at runtime when that is enough, and reloads only when the
    config's shape changed; on an edge vezasock did not render, it takes it over.
  - C(changed) is false when the plan is C(nothing) and nothing was repaired.
version_added: 0.1.0
author: vezasock authors (!UNKNOWN)
options:
  colors:
    description: Colors to start from on a first install or takeover, as C(ENV=COLOR) (C(--color)).
    type: list
    elements: str
  seed_state:
    description: A directory of the seed's state files to read the colors from (C(--seed-state)).
    type: path
extends_documentation_fragment:
  - vezasock.edge.vezasock
  - vezasock.edge.vezasock.locking
attributes:
  check_mode:
    support: full
    description: Runs C(vezasock apply --dry-run), which plans and changes nothing.
  diff_mode:
    support: full
    description: The plan, one line per change or step.
"""

EXAMPLES = r"""
- name: Apply the topology after the role changed it
  vezasock.edge.apply:
    config: /etc/vezasock/topology.toml
  become: true
"""

RETURN = r"""
plan:
  description: The plan (C(nothing), C(runtime), C(reload) or C(takeover)) with its steps and changes.
  returned: success
  type: dict
report:
  description: vezasock's C(--json) report (README, "JSON output", C(apply)).
  returned: always
  type: dict
rc:
  description: vezasock's exit code.
  returned: always
  type: int
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vezasock.edge.plugins.module_utils.vezasock import (
    Vezasock,
    argument_spec,
    flag,
)


def plan_lines(plan):
    """The plan as diff lines: one per change (`change via reason`) and per step."""
    lines = ["plan: %s\n" % plan.get("plan")]
    for c in plan.get("changes") or []:
        lines.append("%s (via %s): %s\n" % (c.get("change"), c.get("via"), c.get("reason")))
    for s in plan.get("steps") or []:
        lines.append("step %s\n" % json.dumps(s, sort_keys=True))
    for r in plan.get("reasons") or []:
        lines.append("reason: %s\n" % r)
    return "".join(lines)


def repaired(repair):
    """Whether apply's crash repair fixed drift or closed an operation (the report is always
    there, with the colors everything agrees with)."""
    if not isinstance(repair, dict):
        return False
    return bool(repair.get("fixed") or repair.get("closed"))


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            colors=dict(type="list", elements="str"),
            seed_state=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    tool = Vezasock(module)
    argv = tool.argv(["apply"], locking=True)
    flag(argv, "seed_state", p["seed_state"])
    for c in p["colors"] or []:
        flag(argv, "color", c)
    flag(argv, "dry_run", module.check_mode)
    rc, data, _out, err = tool.run(argv)
    if rc != 0 or not isinstance(data, dict):
        tool.fail(argv, rc, data, err)
    if "installed" in data:
        plan = dict(plan="install")
        changed = bool(data.get("installed"))
    else:
        plan = data.get("plan") or {}
        changed = plan.get("plan") != "nothing" or repaired(data.get("repair"))
    result = dict(changed=changed, rc=rc, report=data, plan=plan)
    if module._diff:
        result["diff"] = dict(before="", after=plan_lines(plan) if changed else "",
                              after_header="vezasock apply plan")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
