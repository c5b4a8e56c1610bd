//! The HAProxy version a session talks to, and what that version does differently.

use std::fmt;

/// An HAProxy version, from `show info` or `show proc` (`2.6.12-1+deb12u4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// As HAProxy prints it.
    pub raw: String,
}

impl Version {
    /// Reads the leading `major.minor[.patch]`; anything after (`-1+deb12u4`, `-dev5`) is kept
    /// only in `raw`.
    pub fn parse(raw: &str) -> Option<Version> {
        let numbers: Vec<&str> = raw
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .next()?
            .split('.')
            .collect();
        let number = |i: usize| -> Option<u32> { numbers.get(i)?.parse().ok() };
        Some(Version {
            major: number(0)?,
            minor: number(1)?,
            patch: number(2).unwrap_or(0),
            raw: raw.to_string(),
        })
    }

    /// True when this version is `major.minor` or newer.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Behaviour differences between HAProxy versions that the client relies on (`grammar/README.md`
/// §4, and the per-version notes of its §1 and §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Master `reload` answers `Success=0|1` plus the startup log (≥ 2.7); 2.6 answers
    /// nothing and must be confirmed through `show proc`.
    pub reload_reports_status: bool,
    /// In prompt mode a `;` chain gets one prompt after its last command (≥ 3.2).
    pub one_prompt_per_line: bool,
    /// An empty line answers the whole help text (< 3.0).
    pub empty_line_is_help: bool,
    /// The whole line, `;` chain included, must fit `tune.bufsize` (≥ 3.2).
    pub whole_line_bufsize: bool,
    /// Idle interactive sessions are closed after `stats timeout` (≥ 3.0).
    pub closes_idle_sessions: bool,
}

impl Capabilities {
    /// What `version` does.
    pub fn of(version: &Version) -> Capabilities {
        Capabilities {
            reload_reports_status: version.at_least(2, 7),
            one_prompt_per_line: version.at_least(3, 2),
            empty_line_is_help: !version.at_least(3, 0),
            whole_line_bufsize: version.at_least(3, 2),
            closes_idle_sessions: version.at_least(3, 0),
        }
    }
}
