//! What a reply *is*, before any typed parsing: nothing, data, an info message or an error.
//!
//! HAProxy's runtime API has no status code. With `set severity-output number` (or `string`)
//! messages carry a `[N]: ` (or `[err]: `) prefix, while dumps and empty successes carry none.
//! Without it, the only way to spot an error is its text, so [`KNOWN_ERRORS`] lists every
//! error text seen on HAProxy 2.6, 3.0 and 3.2.

use serde::Serialize;

/// The kind of one reply body (prompt already removed by the codec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A bare `\n` (or nothing): the success answer of every mutating command.
    Empty,
    /// Data (a dump, `get weight`, …), with the final framing newline(s) removed.
    Output(String),
    /// A message with severity 4 to 7 (`[6]: New version created: 3`) that is not a known
    /// error text.
    Info {
        /// Syslog severity: 4 warning, 5 notice, 6 info, 7 debug.
        severity: u8,
        /// The message, prefix and final newline(s) removed.
        text: String,
    },
    /// HAProxy refused the command: severity 0 to 3, or a known error text (with no prefix,
    /// or at info level as HAProxy sends `Unknown command`).
    Error {
        /// Syslog severity (3 = err) when severity-output was on; `None` for a plain text.
        severity: Option<u8>,
        /// The message, prefix and final newline(s) removed.
        text: String,
    },
}

impl Outcome {
    /// True for [`Outcome::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::Error { .. })
    }
}

/// Error texts HAProxy answers without any prefix when severity-output is off.
///
/// A message at info level (`[6]: `) that starts with one of these is an error too: HAProxy
/// sends `Unknown command…` at severity 6 although the command did not run.
///
/// Source: `grammar/README.md` §3 (the error texts, recorded on every tested version) and §1.2
/// (the one-`\n` exceptions). A reply is an error when its
/// body *starts with* one of these, so the entries hold only the fixed part of each message.
pub const KNOWN_ERRORS: &[&str] = &[
    // Server and backend arguments.
    "Require 'backend/server'.",
    "No such backend.",
    "No such server.",
    "No such proxy.",
    "Can't find backend.",
    "'set server <srv> state' expects 'ready', 'drain' and 'maint'.",
    "usage: set server ",
    "Require <weight> or <weight%>.",
    "Absolute weight can only be between 0 and 256 inclusive.",
    // 2.6 sends this one with a single `\n` (no empty line).
    "Empty weight string empty or preceded by garbage",
    // Maps.
    "entry not found.",
    "key or pattern not found.",
    "'set map' expects three parameters",
    "'add map' expects three parameters",
    "Key not found.",
    "Unknown map identifier. Please use #<id> or <file>.",
    "Missing map identifier and/or key.",
    "Version number in the future, please use 'prepare map' before.",
    "Version number out of range.",
    "Missing version number.",
    // Privileges: no final dot.
    "Permission denied",
    // 2.6 `Unknown command, but maybe…` / `Unknown command. Please enter…`,
    // 3.x `Unknown command: 'foo', but maybe…`.
    "Unknown command",
    // Master CLI, bad `@`/`@@` target (one `\n`).
    "Can't find the target PID matching the prefix",
    // Line over tune.bufsize: 3.0 wording, then 3.2 wording (one `\n`, then close).
    "The command is too big for the buffer size.",
    "The command line is too big for the buffer size.",
    // 3.x `wait` errors ([3] under severity-output).
    "Invalid duration.",
    "Expects a duration in milliseconds.",
    "Missing server name (<backend>/<server>).",
    "Wait delay expired.",
];

/// Severity names of `set severity-output string`, indexed by syslog level.
const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Classifies one reply body. Never panics.
pub fn classify(body: &[u8]) -> Outcome {
    if body.iter().all(|&b| b == b'\n') {
        return Outcome::Empty;
    }
    if let Some((severity, rest)) = severity_prefix(body) {
        let text = text_of(rest);
        // HAProxy tags `Unknown command…` as info ([6]), yet the command did not run.
        return if severity <= 3 || is_known_error(rest) {
            Outcome::Error {
                severity: Some(severity),
                text,
            }
        } else {
            Outcome::Info { severity, text }
        };
    }
    if is_known_error(body) {
        return Outcome::Error {
            severity: None,
            text: text_of(body),
        };
    }
    Outcome::Output(text_of(body))
}

/// True when the body starts with one of [`KNOWN_ERRORS`].
pub fn is_known_error(body: &[u8]) -> bool {
    KNOWN_ERRORS
        .iter()
        .any(|known| body.starts_with(known.as_bytes()))
}

/// Reads a `[N]: ` or `[name]: ` severity prefix; returns the level and the rest of the body.
pub fn severity_prefix(body: &[u8]) -> Option<(u8, &[u8])> {
    let rest = body.strip_prefix(b"[")?;
    let close = rest.iter().position(|&b| b == b']')?;
    let (inside, after) = rest.split_at(close);
    let after = after.strip_prefix(b"]: ")?;
    let level = match inside {
        [d @ b'0'..=b'7'] => d - b'0',
        _ => {
            let name = std::str::from_utf8(inside).ok()?;
            let index = SEVERITY_NAMES.iter().position(|&n| n == name)?;
            u8::try_from(index).ok()?
        }
    };
    Some((level, after))
}

/// The body as text with the final framing newline(s) removed (invalid UTF-8 replaced).
fn text_of(body: &[u8]) -> String {
    let mut end = body.len();
    while end > 0 && body.get(end - 1) == Some(&b'\n') {
        end -= 1;
    }
    String::from_utf8_lossy(body.get(..end).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_prefixes() {
        assert_eq!(classify(b""), Outcome::Empty);
        assert_eq!(classify(b"\n"), Outcome::Empty);
        assert_eq!(
            classify(b"[3]: No such server.\n\n"),
            Outcome::Error {
                severity: Some(3),
                text: "No such server.".into()
            }
        );
        assert_eq!(
            classify(b"[info]: New version created: 4\n\n"),
            Outcome::Info {
                severity: 6,
                text: "New version created: 4".into()
            }
        );
        assert_eq!(
            classify(b"100 (initial 100)\n\n"),
            Outcome::Output("100 (initial 100)".into())
        );
    }
}
