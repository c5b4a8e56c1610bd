# -*- coding: utf-8 -*-
# Copyright: the vezasock authors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import annotations


class ModuleDocFragment(object):
    # The options every vezasock.edge module takes.
    DOCUMENTATION = r"""
options:
  binary:
    description:
      - The vezasock binary, by name (looked up on C(PATH)) or by path.
      - The Debian package installs it as C(/usr/bin/vezasock).
    type: str
    default: vezasock
  config:
    description:
      - The edge's topology file (C(--config)).
      - Without it, vezasock reads C(VEZASOCK_CONFIG) or uses its embedded default edge.
    type: path
  who:
    description:
      - Who the change is recorded as in the history and journal (C(VEZASOCK_WHO)).
      - Without it, vezasock records the user running it.
    type: str
notes:
  - The task's result carries vezasock's own C(--json) report as documented in the project's
    README (section "JSON output"), and on a failure C(rc), C(exit_meaning) and the tool's message.
  - The user running the module needs the HAProxy socket and file permissions described in
    the project's docs/packaging.md (on Debian, root, so run the task with C(become=true)).
"""

    # The options of the modules that change the edge (they take its lock).
    LOCKING = r"""
options:
  no_wait:
    description:
      - Fail at once (exit 4) when another vezasock holds the edge lock or a prepared
        transaction holds the edge, instead of waiting.
    type: bool
    default: false
  lock_timeout:
    description:
      - How long to wait for the edge lock, for example C(30s) or C(2m).
    type: str
"""
