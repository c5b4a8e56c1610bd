//! The validated arguments of typed commands: names in HAProxy's charset, map references,
//! escaped map keys and values, and operator-typed lines (see the module doc of
//! [`super`] for the tokenizer rules they follow).

use crate::runtime::Error;

/// Bound on a line including its `\n` (HAProxy's default `tune.bufsize`, 16,384 bytes).
/// Lines must be strictly shorter.
pub const MAX_LINE: usize = 16_384;

/// Bound on a backend, server or proxy name.
pub const MAX_NAME: usize = 512;
/// Bound on a map reference (a file path; PATH_MAX on Linux).
pub const MAX_MAP: usize = 4_096;
/// Bound on an escaped map key.
pub const MAX_KEY: usize = 4_096;
/// Bound on an escaped map value. With the other bounds, the longest typed line
/// (`add map @<u32> <map> <key> <value>`) stays below [`MAX_LINE`].
pub const MAX_VALUE: usize = 7_000;

/// A backend, server or proxy name, in HAProxy's charset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(pub(crate) String);

impl Name {
    /// Validates a name.
    pub fn new(what: &'static str, value: &str) -> Result<Name, Error> {
        let bad = |why| Error::InvalidArgument {
            what,
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty"));
        }
        if value.len() > MAX_NAME {
            return Err(bad("is longer than 512 bytes"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-'))
        {
            return Err(bad(
                "may only hold letters, digits, '.', ':', '_' and '-' (HAProxy's name charset)",
            ));
        }
        Ok(Name(value.to_string()))
    }

    /// The name as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map reference: the map file name as written in the config, or `#<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRef(String);

impl MapRef {
    /// Validates a map reference.
    pub fn new(value: &str) -> Result<MapRef, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "map",
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty"));
        }
        if value.len() > MAX_MAP {
            return Err(bad("is longer than 4096 bytes"));
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("holds whitespace or a control character"));
        }
        if value.contains(';') || value.contains('\\') {
            return Err(bad("holds ';' or '\\'"));
        }
        if value.starts_with('@') {
            return Err(bad("starts with '@', which HAProxy reads as a map version"));
        }
        if let Some(id) = value.strip_prefix('#') {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("a '#' reference must be '#<id>' with a numeric id"));
            }
        }
        check_payload_marker("map", value)?;
        Ok(MapRef(value.to_string()))
    }

    /// The reference as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map key, escaped for the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapKey {
    raw: String,
    escaped: String,
}

impl MapKey {
    /// Validates and escapes a map key.
    pub fn new(value: &str) -> Result<MapKey, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "map key",
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty"));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(bad(
                "holds whitespace, which `show map` cannot print unambiguously",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(bad("holds a control character"));
        }
        if value.starts_with('#') {
            return Err(bad(
                "starts with '#' (an entry reference for HAProxy, a comment in map files)",
            ));
        }
        check_payload_marker("map key", value)?;
        let escaped = escape(value);
        if escaped.len() > MAX_KEY {
            return Err(bad("is longer than 4096 bytes once escaped"));
        }
        Ok(MapKey {
            raw: value.to_string(),
            escaped,
        })
    }

    /// The key as stored in the map.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The key as sent on the line.
    pub fn escaped(&self) -> &str {
        &self.escaped
    }
}

/// A map value, escaped for the CLI (spaces and tabs allowed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapValue {
    raw: String,
    escaped: String,
}

impl MapValue {
    /// Validates and escapes a map value.
    pub fn new(value: &str) -> Result<MapValue, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "map value",
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty (HAProxy would read a missing argument)"));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("holds a control character"));
        }
        check_payload_marker("map value", value)?;
        let escaped = escape(value);
        if escaped.len() > MAX_VALUE {
            return Err(bad("is longer than 7000 bytes once escaped"));
        }
        Ok(MapValue {
            raw: value.to_string(),
            escaped,
        })
    }

    /// The value as stored in the map.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The value as sent on the line.
    pub fn escaped(&self) -> &str {
        &self.escaped
    }
}

/// Backslash before space, tab, `;` and `\` (HAProxy unescapes `\x` to `x` inside a word).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if matches!(c, ' ' | '\t' | ';' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Refuses an argument that would switch the CLI to payload mode.
pub(crate) fn check_payload_marker(what: &'static str, value: &str) -> Result<(), Error> {
    if value.starts_with("<<") || value.ends_with("<<") {
        return Err(Error::InvalidArgument {
            what,
            value: value.to_string(),
            why: "starts or ends with '<<', which HAProxy reads as a payload marker",
        });
    }
    Ok(())
}

/// The `;`-separated commands of `line`, as HAProxy splits them (a backslash makes the next
/// byte literal, so `\;` does not split).
pub(crate) fn split_commands(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            Some(b';') => {
                parts.push(line.get(start..i).unwrap_or_default());
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    parts.push(line.get(start.min(bytes.len())..).unwrap_or_default());
    parts
}
