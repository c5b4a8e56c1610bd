#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_switch
short_description: Flip an env on every edge of a fleet in one transaction (vezasock switch --fleet)
description:
  - Runs C(vezasock switch --fleet FILE ENV COLOR --json) once; vezasock prepares the flip on every
    edge of the fleet file, commits it on all of them within a fraction of a millisecond (the
    commit skew is in the result), verifies and records it. A refusal on any edge changes no edge.
  - Meant for C(run_once) (usually with C(delegate_to) the host that reaches every edge); render
    the fleet file from the inventory with the collection's C(vezasock.edge.fleet_file) role.
  - C(changed) is false when every edge already served the color.
version_added: 0.1.0
author: vezasock authors (!UNKNOWN)
options:
  fleet:
    description: The fleet file naming the edges (README, "Several edges").
    type: path
    required: true
  env:
    description: The env to flip.
    type: str
    required: true
  color:
    description: The color to send the env's traffic to on every edge.
    type: str
    required: true
    choices: [blue, green]
  sha:
    description: The deployed commit, recorded in every edge's history.
    type: str
  wait_healthy:
    description: Wait up to this long for the target color's servers to be up on every edge.
    type: str
  drain_old:
    description: Once the flip is recorded on every edge, drain the old color on every edge.
    type: bool
    default: false
  drain_timeout:
    description: How long O(drain_old) waits, on every edge at once.
    type: str
  expires:
    description: How long each edge's prepared transaction holds it if the coordinator dies.
    type: str
extends_documentation_fragment:
  - vezasock.edge.vezasock
  - vezasock.edge.vezasock.locking
attributes:
  check_mode:
    support: full
    description: Runs C(--dry-run), every edge read and gated at once, nothing locked or written.
  diff_mode:
    support: full
    description: Every edge's color for the env before and after.
"""

EXAMPLES = r"""
- name: Switch staging to green on every edge, one transaction
  vezasock.edge.fleet_switch:
    fleet: /etc/vezasock/fleet.toml
    env: staging
    color: green
    sha: "{{ deploy_sha }}"
    wait_healthy: 60s
  run_once: true
  become: true
"""

RETURN = r"""
edges:
  description: Every edge's report, C(edge), C(from), C(to), C(result) (C(switched), C(already), C(would switch), C(refused), ...), C(ms), C(detail).
  returned: always
  type: list
  elements: dict
commit_skew_ms:
  description: First to last commit answer across the edges, in milliseconds.
  returned: success
  type: float
transaction:
  description: The fleet transaction's id (empty in check mode).
  returned: success
  type: str
report:
  description: vezasock's C(--json) report (README, "JSON output", C(switch fleet)).
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
    color_diff,
    flag,
)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            fleet=dict(type="path", required=True),
            env=dict(type="str", required=True),
            color=dict(type="str", required=True, choices=["blue", "green"]),
            sha=dict(type="str"),
            wait_healthy=dict(type="str"),
            drain_old=dict(type="bool", default=False),
            drain_timeout=dict(type="str"),
            expires=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    tool = Vezasock(module)
    argv = tool.argv(["switch", "--fleet", p["fleet"], p["env"], p["color"]], locking=True)
    for name in ("sha", "wait_healthy", "drain_timeout", "expires"):
        flag(argv, name, p[name])
    flag(argv, "drain_old", p["drain_old"])
    flag(argv, "dry_run", module.check_mode)
    rc, data, _out, err = tool.run(argv)
    # On a failure the report is nested under `report`.
    report = data.get("report") if isinstance(data, dict) and "report" in data else data
    edges = (report or {}).get("edges") or [] if isinstance(report, dict) else []
    if rc != 0 or not isinstance(data, dict):
        tool.fail(argv, rc, data, err, edges=edges)
    moved = [e for e in edges if e.get("result") in ("switched", "would switch")]
    result = dict(
        changed=bool(moved),
        rc=rc,
        report=data,
        edges=edges,
        commit_skew_ms=data.get("commit_skew_ms"),
        transaction=data.get("transaction"),
    )
    if module._diff:
        before = dict((e.get("edge"), e.get("from")) for e in edges)
        after = dict((e.get("edge"), p["color"]) for e in edges)
        result["diff"] = color_diff(before, after, "%s active color per edge" % p["env"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
