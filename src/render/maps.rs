//! Reading HAProxy map files back (`key value` per line, `#` comments), as rendered by the
//! `hosts.map` and `active-color.map` templates, so a live map can be compared with a rendered
//! one. Never panics on any input.

use std::collections::BTreeMap;

use crate::topology::Color;

/// A map file line that is not `key value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct MapError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Parses a map file into key → value. Like HAProxy's lookup, the first entry of a key wins.
pub fn parse_map(text: &str) -> Result<BTreeMap<String, String>, MapError> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.splitn(2, char::is_whitespace);
        let key = words.next().unwrap_or("");
        let value = words.next().unwrap_or("").trim();
        if value.is_empty() {
            return Err(MapError {
                line: i + 1,
                message: format!("{key:?} has no value"),
            });
        }
        out.entry(key.to_string())
            .or_insert_with(|| value.to_string());
    }
    Ok(out)
}

/// Parses `active-color.map` into env → color.
pub fn parse_colors(text: &str) -> Result<BTreeMap<String, Color>, MapError> {
    let mut out = BTreeMap::new();
    for (env, value) in parse_map(text)? {
        let color = Color::parse(&value).ok_or_else(|| MapError {
            line: text
                .lines()
                .position(|l| l.trim_start().starts_with(env.as_str()))
                .map_or(0, |p| p + 1),
            message: format!("env {env:?} has color {value:?}; expected blue or green"),
        })?;
        out.insert(env, color);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let m = parse_map("# c\n\nveza.fr prod\nveza.fr staging\nwww.veza.fr  prod \n").ok();
        assert_eq!(
            m.as_ref()
                .and_then(|m| m.get("veza.fr"))
                .map(String::as_str),
            Some("prod")
        );
        assert_eq!(m.map(|m| m.len()), Some(2));
        assert_eq!(parse_map("a\n").err().map(|e| e.line), Some(1));
        assert!(parse_colors("staging green\nprod blue\n").is_ok());
        assert!(parse_colors("staging red\n").is_err());
    }
}
