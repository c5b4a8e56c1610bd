#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: txn
short_description: One edge's half of a multi-edge transaction, for per-host plays (vezasock txn)
description:
  - O(state=prepared) runs C(vezasock txn prepare ENV COLOR --id ID), staging the flip on this edge
    (nothing live changes); O(state=committed) runs C(txn commit --id ID), committing, verifying and
    recording it; O(state=aborted) runs C(txn abort --id ID) (also when nothing is open, so a rescue
    may abort on every host).
  - B(Skew caveat.) With one task per host, Ansible commits on each host in turn, hundreds of
    milliseconds apart (200 to 325 ms measured on three hosts with ansible-core 2.19), so for that
    long some edges serve the new color and some the old. M(vezasock.edge.fleet_switch) commits every
    edge within a fraction of a millisecond; use this module only when the coordinator cannot reach
    the edges.
version_added: 0.1.0
author: vezasock authors (!UNKNOWN)
options:
  state:
    description: What the transaction should be on this edge.
    type: str
    required: true
    choices: [prepared, committed, aborted]
  id:
    description: The transaction id, 1 to 64 of C(A-Z a-z 0-9 _ . -), the same on every edge.
    type: str
    required: true
  env:
    description: The env to flip (O(state=prepared)).
    type: str
  color:
    description: The color to flip to (O(state=prepared)).
    type: str
    choices: [blue, green]
  sha:
    description: The deployed commit, recorded in the history (O(state=prepared)).
    type: str
  wait_healthy:
    description: Wait up to this long for the target color's servers to be up (O(state=prepared)).
    type: str
  expires:
    description: How long the prepared transaction holds the edge without a commit (O(state=prepared)).
    type: str
extends_documentation_fragment:
  - vezasock.edge.vezasock
  - vezasock.edge.vezasock.locking
attributes:
  check_mode:
    support: none
    description:
      - Not supported, the task is skipped in check mode.
      - M(vezasock.edge.fleet_switch) or M(vezasock.edge.switch) in check mode show what a flip would do.
  diff_mode:
    support: none
    description: No diff, the result says what happened.
"""

EXAMPLES = r"""
- hosts: edges
  any_errors_fatal: true
  become: true
  tasks:
    - name: Prepare on every edge; a refusal anywhere aborts everywhere
      block:
        - vezasock.edge.txn:
            state: prepared
            id: "{{ deploy_id }}"
            env: staging
            color: green
            expires: 5m
      rescue:
        - vezasock.edge.txn:
            state: aborted
            id: "{{ deploy_id }}"
          delegate_to: "{{ item }}"
          loop: "{{ ansible_play_hosts_all }}"
- hosts: edges
  become: true
  tasks:
    - vezasock.edge.txn:
        state: committed
        id: "{{ deploy_id }}"
"""

RETURN = r"""
result:
  description: vezasock's word for what happened (C(prepared), C(committed), C(aborted), C(undone), C(nothing), ...).
  returned: success
  type: str
report:
  description: vezasock's C(--json) report (README, "JSON output", C(txn prepare) / C(txn commit)).
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

VERB = dict(prepared="prepare", committed="commit", aborted="abort")


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            state=dict(type="str", required=True, choices=["prepared", "committed", "aborted"]),
            id=dict(type="str", required=True),
            env=dict(type="str"),
            color=dict(type="str", choices=["blue", "green"]),
            sha=dict(type="str"),
            wait_healthy=dict(type="str"),
            expires=dict(type="str"),
        ),
        required_if=[("state", "prepared", ("env", "color"))],
        supports_check_mode=False,
    )
    p = module.params
    tool = Vezasock(module)
    words = ["txn", VERB[p["state"]]]
    if p["state"] == "prepared":
        words += [p["env"], p["color"]]
    argv = tool.argv(words, locking=True)
    flag(argv, "id", p["id"])
    if p["state"] == "prepared":
        for name in ("sha", "wait_healthy", "expires"):
            flag(argv, name, p[name])
    rc, data, _out, err = tool.run(argv)
    if rc != 0 or not isinstance(data, dict):
        extra = {}
        if rc == 5 and p["env"]:
            extra.update(tool.env_sides(p["env"]))
        tool.fail(argv, rc, data, err, **extra)
    result = data.get("result")
    changed = result not in ("nothing",) and not data.get("noop", False)
    module.exit_json(changed=changed, rc=rc, report=data, result=result)


if __name__ == "__main__":
    main()
