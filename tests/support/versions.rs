//! The HAProxy versions the reply corpus is recorded from (`grammar/corpus*/<version>/`):
//! the tests that read it loop over this list, so a new version is one line here.

// Each test file that includes this uses part of it.
#![allow(dead_code)]

/// Every recorded version, oldest first.
pub const RECORDED: [&str; 4] = ["2.6", "3.0", "3.2", "3.4"];

/// True for versions that print one prompt per input line, not per `;` command (3.2 on).
pub fn one_prompt_per_line(version: &str) -> bool {
    matches!(version, "3.2" | "3.4")
}
