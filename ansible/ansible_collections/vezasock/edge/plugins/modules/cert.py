#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: cert
short_description: Update or list the certificates an HAProxy edge serves, without a reload (vezasock cert)
description:
  - O(state=updated) runs C(vezasock cert update FILE... --json), which sets each certificate at runtime,
    writes it into the certs dir and checks HAProxy serves its serial. C(changed) is false when HAProxy
    already served every file's serial.
  - O(state=listed) runs C(vezasock cert list --json); reads only, never C(changed). A certificate under
    O(warn_days) or served unlike its file (exit 1) is data in C(expiring) and C(agree), not a failure.
version_added: 0.1.0
author: vezasock authors (!UNKNOWN)
options:
  state:
    description: Update the certificates, or list them.
    type: str
    default: listed
    choices: [updated, listed]
  files:
    description: The PEM files (certificate and key) to install, each under its file name (O(state=updated)).
    type: list
    elements: path
  allow_other_domains:
    description: Allow a file whose domains differ from the certificate it replaces.
    type: bool
    default: false
  warn_days:
    description: A certificate with fewer days left is listed in C(expiring) (O(state=listed)).
    type: int
extends_documentation_fragment:
  - vezasock.edge.vezasock
  - vezasock.edge.vezasock.locking
attributes:
  check_mode:
    support: partial
    description: Check mode.
    details: O(state=listed) runs in check mode; O(state=updated) is skipped.
  diff_mode:
    support: none
    description: No diff, the result lists what was installed.
"""

EXAMPLES = r"""
- name: Install the renewed certificate
  vezasock.edge.cert:
    state: updated
    files: [/etc/haproxy/incoming/veza.fr.pem]
  become: true

- name: Certificates expiring within 20 days
  vezasock.edge.cert:
    warn_days: 20
  register: certs
  failed_when: certs.expiring | length > 0
"""

RETURN = r"""
certs:
  description: Per certificate, vezasock's entry (README, "JSON output" and C(cert list)).
  returned: always
  type: list
  elements: dict
expiring:
  description: With O(state=listed), the certificates under O(warn_days).
  returned: when listed
  type: list
  elements: raw
agree:
  description: With O(state=listed), whether every served certificate is its file's.
  returned: when listed
  type: bool
report:
  description: vezasock's C(--json) report.
  returned: always
  type: dict
rc:
  description: vezasock's exit code.
  returned: always
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vezasock.edge.plugins.module_utils.vezasock import (
    Vezasock,
    argument_spec,
    flag,
)


def listed(tool, warn_days):
    """`cert list --json`: (rc, data, argv, stderr)."""
    argv = tool.argv(["cert", "list"])
    flag(argv, "warn_days", warn_days)
    rc, data, _out, err = tool.run(argv)
    return rc, data, argv, err


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            state=dict(type="str", default="listed", choices=["updated", "listed"]),
            files=dict(type="list", elements="path"),
            allow_other_domains=dict(type="bool", default=False),
            warn_days=dict(type="int"),
        ),
        required_if=[("state", "updated", ("files",))],
        supports_check_mode=True,
    )
    p = module.params
    tool = Vezasock(module)
    rc, data, argv, err = listed(tool, p["warn_days"])
    if rc not in (0, 1) or not isinstance(data, dict):
        tool.fail(argv, rc, data, err)
    if p["state"] == "listed":
        # failed=False said: Ansible fails a result whose rc is not 0 unless it says otherwise.
        module.exit_json(
            changed=False, failed=False, rc=rc, report=data, certs=data.get("certs") or [],
            expiring=data.get("expiring") or [], agree=data.get("agree"),
        )
    if module.check_mode:
        module.exit_json(skipped=True, changed=False, msg="cert update does not run in check mode")
    served = dict((c.get("file"), c.get("runtime_serial")) for c in data.get("certs") or [])
    argv = tool.argv(["cert", "update"] + list(p["files"]), locking=True)
    flag(argv, "allow_other_domains", p["allow_other_domains"])
    rc, data, _out, err = tool.run(argv)
    if rc != 0 or not isinstance(data, dict):
        tool.fail(argv, rc, data, err)
    certs = data.get("certs") or []
    changed = any(served.get(os.path.basename(c.get("file") or "")) != c.get("serial") for c in certs)
    module.exit_json(changed=changed, rc=rc, report=data, certs=certs)


if __name__ == "__main__":
    main()
