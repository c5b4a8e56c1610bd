//! The narrow grammar of every value that reaches the rendered config (names, hosts,
//! addresses, cookies, paths, timeouts, file paths), so no input can add a line or a directive.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::topology::Address;

/// Describes a character that is not allowed, naming the invisible ones.
pub(super) fn bad_char(c: char) -> String {
    match c {
        '\n' => "a newline".to_string(),
        '\r' => "a carriage return".to_string(),
        '\t' => "a tab".to_string(),
        ' ' => "a space".to_string(),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("{c:?}"),
    }
}

pub(super) fn first_bad(s: &str, ok: impl Fn(char) -> bool) -> Result<(), String> {
    match s.chars().find(|&c| !ok(c)) {
        Some(c) => Err(format!(
            "contains {}, which is not allowed here",
            bad_char(c)
        )),
        None => Ok(()),
    }
}

/// Env and component names: they become parts of backend names (`be_<env>_<component>_<color>`)
/// and map values, so `_` (the separator) and anything outside `a-z0-9-` is refused.
pub(super) fn env_or_component_name(s: &str) -> Result<String, String> {
    // Bad characters first: "contains a newline" says more than "too long".
    first_bad(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .map_err(|m| format!("{m}; use a-z, 0-9 and '-' (it becomes part of backend names)"))?;
    if s.is_empty() || s.len() > 24 {
        return Err("must be 1 to 24 characters of a-z, 0-9 and '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(s.to_string())
}

/// An HAProxy identifier: `[A-Za-z0-9_.-]`, starting with a letter or digit.
pub(super) fn identifier(s: &str, max: usize) -> Result<(), String> {
    first_bad(s, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    })
    .map_err(|m| format!("{m}; an HAProxy name may only hold A-Z, a-z, 0-9, '_', '.', '-'"))?;
    if s.is_empty() || s.len() > max {
        return Err(format!(
            "must be 1 to {max} characters of A-Z, a-z, 0-9, '_', '.', '-'"
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    Ok(())
}

/// A container prefix: one DNS label.
pub(super) fn container_prefix(s: &str) -> Result<String, String> {
    first_bad(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .map_err(|m| format!("{m}; a container prefix is part of a DNS name (a-z, 0-9, '-')"))?;
    if s.is_empty() || s.len() > 40 {
        return Err("must be 1 to 40 characters of a-z, 0-9 and '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(s.to_string())
}

/// An RFC 1123 host name, returned lowercase (Host headers are compared lowercase).
pub(crate) fn host_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a host name must not be empty".into());
    }
    if s.len() > 253 {
        return Err("a host name is at most 253 characters (RFC 1123)".into());
    }
    first_bad(s, |c| c.is_ascii_alphanumeric() || c == '-' || c == '.').map_err(|m| {
        format!("{m}; a host name holds only letters, digits, '-' and '.' (RFC 1123)")
    })?;
    for label in s.split('.') {
        if label.is_empty() {
            return Err("has an empty label (two dots in a row, or a leading/trailing dot)".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "label {label:?} is longer than 63 characters (RFC 1123)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "label {label:?} starts or ends with '-' (RFC 1123)"
            ));
        }
    }
    Ok(s.to_ascii_lowercase())
}

/// A server address: `host:port`, the host an IPv4 address or an RFC 1123 name.
pub(crate) fn address(s: &str) -> Result<Address, String> {
    first_bad(s, |c| c.is_ascii_graphic())?;
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} is not host:port"));
    };
    if host.contains(':') || host.starts_with('[') {
        return Err("IPv6 server addresses are not supported; use IPv4 or a host name".into());
    }
    let port = parse_port(port)?;
    let host = if host.parse::<Ipv4Addr>().is_ok() {
        host.to_string()
    } else if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("{host:?} is not a valid IPv4 address"));
    } else {
        host_name(host)?
    };
    Ok(Address { host, port })
}

pub(super) fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 && s.chars().all(|c| c.is_ascii_digit()) => Ok(p),
        _ => Err(format!("port {s:?} must be a number from 1 to 65535")),
    }
}

/// A bind address: `:port`, `*:port` or `<ipv4>:port`.
pub(super) fn bind(s: &str) -> Result<String, String> {
    first_bad(s, |c| c.is_ascii_graphic())?;
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} is not [address]:port"));
    };
    parse_port(port)?;
    if !(host.is_empty() || host == "*" || host.parse::<Ipv4Addr>().is_ok()) {
        return Err(format!(
            "bind address {host:?} must be empty, '*' or an IPv4 address"
        ));
    }
    Ok(s.to_string())
}

/// A cookie name: an RFC 6265 token (visible ASCII without separators).
pub(super) fn cookie_name(s: &str) -> Result<(), String> {
    first_bad(s, |c| {
        c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c)
    })
    .map_err(|m| format!("{m}; a cookie name is an RFC 6265 token"))?;
    if s.is_empty() || s.len() > 64 {
        return Err("a cookie name must be 1 to 64 characters".into());
    }
    Ok(())
}

/// A path rule or check path: starts with `/`, URL path characters only.
pub(super) fn path_rule(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("a path must start with '/'".into());
    }
    if s.len() > 256 {
        return Err("a path is at most 256 characters".into());
    }
    // No whitespace, quotes, '#', ';', '\', '{', '}': each could end or comment out a config
    // word, or open an anonymous ACL.
    first_bad(s, |c| {
        c.is_ascii_alphanumeric() || "/-._~%!$&()*+,=:@".contains(c)
    })
    .map_err(|m| format!("{m} in a path rule"))
}

/// HAProxy's timers are signed 32-bit milliseconds: `haproxy -c` refuses more ("timer
/// overflow … maximum value is 2147483647 ms or ~24.8 days", 2.6 to 3.2).
const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// An HAProxy duration: digits and an optional unit (`us`, `ms`, `s`, `m`, `h`, `d`; none is
/// milliseconds), from 1 ms to HAProxy's ~24.8 days.
pub(super) fn timeout(s: &str) -> Result<String, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    let per_unit_us: u64 = match unit {
        "us" => 1,
        "" | "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return Err(format!("{s:?} is not a duration like 5s, 500ms, 1h")),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{s:?} is not a duration like 5s, 500ms, 1h"));
    }
    let micros = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit_us))
        // More digits than u64 holds is over the limit too.
        .unwrap_or(u64::MAX);
    // HAProxy rounds microseconds up to whole milliseconds.
    let ms = micros.div_ceil(1_000);
    if ms == 0 {
        return Err(format!(
            "{s:?} is zero: HAProxy reads a zero timeout as no timeout at all; give at least 1ms"
        ));
    }
    if ms > MAX_TIMEOUT_MS {
        return Err(format!(
            "{s:?} is longer than HAProxy's timers allow (2147483647 ms, about 24.8 days; e.g. 24d)"
        ));
    }
    Ok(s.to_string())
}

/// A filesystem path that reaches the config: absolute, no whitespace or config syntax.
///
/// Besides what ends a word or a line, refused: `$` (HAProxy expands environment variables in
/// its config, so it would bind or read another path than vezasock uses), `,` `(` `)` (a map
/// path is an argument of `map(…,…)`), `[` `]` `%` (sample-fetch and log-format syntax).
/// `[notify] ca_file` / `--notify-ca-file`: an absolute path, read when events are sent.
pub fn ca_file_path(s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') || s.len() > 1024 || s.chars().any(char::is_control) {
        return Err("must be an absolute path of at most 1024 characters".into());
    }
    Ok(PathBuf::from(s))
}

/// `[notify] webhook`: an `http://` or `https://` URL that [`crate::topology::webhook::Webhook`] parses.
pub fn webhook_url(s: &str) -> Result<String, String> {
    crate::topology::webhook::Webhook::parse(s).map(|_| s.to_string())
}

/// `[metrics] textfile` / `--metrics-textfile`: an absolute path ending in `.prom` (node_exporter's
/// textfile collector reads only those).
pub fn textfile_path(s: &str) -> Result<PathBuf, String> {
    let path = fs_path(s)?;
    if !s.ends_with(".prom") || s.ends_with("/.prom") {
        return Err(
            "must end in .prom (node_exporter's textfile collector reads only those)".into(),
        );
    }
    Ok(path)
}

pub(super) fn fs_path(s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if s.len() > 1024 {
        return Err("is longer than 1024 characters".into());
    }
    first_bad(s, |c| {
        !c.is_control() && !c.is_whitespace() && !"#\"'\\;{}$,()[]%`".contains(c)
    })
    .map_err(|m| format!("{m} in a path (HAProxy's config reads it as syntax)"))?;
    Ok(PathBuf::from(s))
}
