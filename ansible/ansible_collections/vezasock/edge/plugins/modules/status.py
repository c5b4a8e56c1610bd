#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: status
short_description: Read an edge's colors, servers, drift and problems as facts (vezasock status)
description:
  - Runs C(vezasock status [ENV] --json) (or C(status --fleet FILE --json)); reads only, never C(changed).
  - Drift (exit 6) is data, not a failure, so a play decides with C(failed_when), for example
    C(failed_when=result.drift). Any other non-zero exit (HAProxy unreachable, bad input) fails.
version_added: 0.1.0
author: vezasock authors (!UNKNOWN)
options:
  env:
    description: Only this env.
    type: str
  fleet:
    description: A fleet file; every edge's status side by side.
    type: path
  fail_on_drift:
    description: Fail the task on drift (exit 6) instead of returning it as data.
    type: bool
    default: false
extends_documentation_fragment:
  - vezasock.edge.vezasock
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Reads only, nothing to diff.
"""

EXAMPLES = r"""
- name: Fail unless staging is live and recorded on green
  vezasock.edge.status:
    env: staging
  register: edge
  failed_when: edge.drift or edge.live.staging != 'green'
  become: true
"""

RETURN = r"""
drift:
  description: Whether vezasock saw drift or a problem (exit 6).
  returned: always
  type: bool
live:
  description: Per env, the color the runtime serves.
  returned: always
  type: dict
recorded:
  description: Per env, the color the state file records.
  returned: always
  type: dict
problems:
  description: vezasock's problems (drift, interrupted operations, open transactions).
  returned: always
  type: list
  elements: raw
report:
  description: vezasock's C(--json) report (README, "JSON output", C(status) or C(status fleet)).
  returned: always
  type: dict
rc:
  description: vezasock's exit code (0, or 6 on drift).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vezasock.edge.plugins.module_utils.vezasock import (
    Vezasock,
    argument_spec,
)


def colors(data, side):
    """{env: color} from a single edge's report, `side` one of runtime or state_file."""
    return dict(
        (e.get("name"), (e.get("sides") or {}).get(side)) for e in data.get("envs") or []
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            locking=False,
            env=dict(type="str"),
            fleet=dict(type="path"),
            fail_on_drift=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    tool = Vezasock(module)
    words = ["status"]
    if p["fleet"]:
        words += ["--fleet", p["fleet"]]
    if p["env"]:
        words.append(p["env"])
    argv = tool.argv(words)
    rc, data, _out, err = tool.run(argv)
    if rc not in (0, 6) or not isinstance(data, dict) or (rc == 6 and p["fail_on_drift"]):
        tool.fail(argv, rc, data, err)
    if p["fleet"]:
        live = {}
        recorded = {}
        problems = list(data.get("drift") or []) + list(data.get("open_transactions") or [])
    else:
        live = colors(data, "runtime")
        recorded = colors(data, "state_file")
        problems = data.get("problems") or []
    # failed=False said: Ansible fails a result whose rc is not 0 unless it says otherwise.
    module.exit_json(
        changed=False, failed=False, rc=rc, drift=rc == 6, live=live, recorded=recorded,
        problems=problems, report=data,
    )


if __name__ == "__main__":
    main()
