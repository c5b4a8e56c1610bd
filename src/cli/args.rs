//! The arguments several commands share: where the topology comes from ([`TopologyArgs`]), the
//! edge lock flags ([`LockArgs`]), and the value parsers that bound every free-form value before
//! anything happens (durations, shas, names). A refused value is clap's usage error: exit 2.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::Args;

use crate::edge::deploy::switch::LockWait;
use crate::state::Wait;
use crate::topology::{Color, LoadError, PathOverrides, ReloadMethod, Topology};

// Where the topology comes from, and overrides of its runtime paths (a plain comment: see
// `Command` in cli/mod.rs).
#[derive(Debug, Clone, Default, Args)]
pub struct TopologyArgs {
    /// Topology file (TOML). Without it, the embedded "veza" edge.
    #[arg(long, env = "VEZASOCK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The live HAProxy config file.
    #[arg(long, env = "VEZASOCK_HAPROXY_CONFIG", value_name = "FILE")]
    pub haproxy_config: Option<PathBuf>,
    /// Directory of hosts.map and active-color.map.
    #[arg(long, env = "VEZASOCK_MAPS_DIR", value_name = "DIR")]
    pub maps_dir: Option<PathBuf>,
    /// Stats socket at level admin.
    #[arg(long, env = "VEZASOCK_ADMIN_SOCKET", value_name = "PATH")]
    pub admin_socket: Option<PathBuf>,
    /// Stats socket at level operator (read-only status).
    #[arg(long, env = "VEZASOCK_OPERATOR_SOCKET", value_name = "PATH")]
    pub operator_socket: Option<PathBuf>,
    /// Master CLI socket.
    #[arg(long, env = "VEZASOCK_MASTER_SOCKET", value_name = "PATH")]
    pub master_socket: Option<PathBuf>,
    /// HAProxy server-state file.
    #[arg(long, env = "VEZASOCK_SERVER_STATE_FILE", value_name = "FILE")]
    pub server_state_file: Option<PathBuf>,
    /// vezasock's state directory.
    #[arg(long, env = "VEZASOCK_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The HAProxy binary.
    #[arg(long, env = "VEZASOCK_HAPROXY", value_name = "FILE")]
    pub haproxy: Option<PathBuf>,
    /// The HAProxy master's pid file.
    #[arg(long, env = "VEZASOCK_PID_FILE", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// How to reload: master-cli or signal.
    #[arg(long, env = "VEZASOCK_RELOAD_METHOD", value_name = "METHOD", value_parser = Checked(parse_reload_method))]
    pub reload_method: Option<ReloadMethod>,
    /// Rewrite vezasock's own metrics (Prometheus text, for node_exporter's textfile collector)
    /// to FILE after each command; overrides the topology's `[metrics] textfile`.
    #[arg(long, env = "VEZASOCK_METRICS_TEXTFILE", value_name = "FILE.prom", value_parser = Checked(crate::topology::textfile_path))]
    pub metrics_textfile: Option<PathBuf>,
    /// POST one JSON event per milestone of each operation to URL (http:// or https://);
    /// overrides the topology's `[notify] webhook`.
    #[arg(long, env = "VEZASOCK_NOTIFY_WEBHOOK", value_name = "URL", value_parser = CheckedSecret(crate::topology::webhook_url), hide_env_values = true)]
    pub notify_webhook: Option<String>,
    /// Check an https:// webhook against the CA certificates (PEM) in FILE instead of the
    /// system's; overrides the topology's `[notify] ca_file`.
    #[arg(long, env = "VEZASOCK_NOTIFY_CA_FILE", value_name = "FILE", value_parser = Checked(crate::topology::ca_file_path))]
    pub notify_ca_file: Option<PathBuf>,
}

impl TopologyArgs {
    /// The path overrides given on the command line or in the environment.
    pub fn overrides(&self) -> PathOverrides {
        PathOverrides {
            config: self.haproxy_config.clone(),
            maps_dir: self.maps_dir.clone(),
            admin_socket: self.admin_socket.clone(),
            operator_socket: self.operator_socket.clone(),
            master_socket: self.master_socket.clone(),
            server_state_file: self.server_state_file.clone(),
            state_dir: self.state_dir.clone(),
            haproxy: self.haproxy.clone(),
            pid_file: self.pid_file.clone(),
            reload_method: self.reload_method,
        }
    }

    /// Loads the topology (file or embedded default) and applies the overrides.
    pub fn load(&self) -> Result<Topology, LoadError> {
        let mut topo = match &self.config {
            Some(path) => Topology::load(path)?,
            None => Topology::embedded_default()?,
        };
        topo.override_paths(&self.overrides())?;
        if let Some(file) = &self.metrics_textfile {
            topo.metrics_textfile = Some(file.clone());
        }
        self.override_notify(&mut topo);
        Ok(topo)
    }

    /// `--notify-webhook` / `--notify-ca-file` (or their variables) over the topology's
    /// `[notify]`: also for a fleet's edges with topology files of their own (`cli::fleet`).
    pub fn override_notify(&self, topo: &mut Topology) {
        if let Some(url) = &self.notify_webhook {
            topo.notify_webhook = Some(url.clone());
        }
        if let Some(file) = &self.notify_ca_file {
            topo.notify_ca_file = Some(file.clone());
        }
    }
}

// The per-edge lock flags of every command that changes the edge (a plain comment: see
// `Command` in cli/mod.rs).
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Fail at once (exit 4) when another vezasock holds the edge lock, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the edge lock (e.g. 30s, 2m; plain seconds too; at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = Checked(parse_duration))]
    pub lock_timeout: Duration,
}

impl LockArgs {
    /// The lock policy as the state layer takes it.
    pub fn wait(&self) -> Wait {
        if self.no_wait {
            Wait::No
        } else {
            Wait::up_to(self.lock_timeout)
        }
    }

    /// The lock policy as a switch request takes it.
    pub fn lock_wait(&self) -> LockWait {
        if self.no_wait {
            LockWait::No
        } else {
            LockWait::UpTo(self.lock_timeout)
        }
    }
}

/// A value parser from a checking function whose refusal quotes at most 40 characters of the
/// value: clap's own message would echo all of it, and a 100 KB `--sha` makes a 100 KB error.
#[derive(Clone, Copy)]
pub struct Checked<T>(pub fn(&str) -> Result<T, String>);

/// Like [`Checked`], for a value that may hold a secret (a webhook URL's path): its refusal
/// never quotes the value, not even its start.
#[derive(Clone, Copy)]
pub struct CheckedSecret<T>(pub fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        check_value(self.0, cmd, arg, value, false)
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for CheckedSecret<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        check_value(self.0, cmd, arg, value, true)
    }
}

/// Runs `check` on the value; a refusal quotes at most 40 characters of it, or none when
/// `secret`.
fn check_value<T>(
    check: fn(&str) -> Result<T, String>,
    cmd: &clap::Command,
    arg: Option<&clap::Arg>,
    value: &OsStr,
    secret: bool,
) -> Result<T, clap::Error> {
    let name = arg.map(|a| a.to_string()).unwrap_or_else(|| "VALUE".into());
    let fail = |why: String| {
        let raw = value.to_string_lossy();
        let message = if secret {
            format!("invalid value for '{name}' (not shown: it may hold a secret): {why}\n")
        } else if raw.chars().count() > 40 {
            let head: String = raw.chars().take(40).collect();
            format!(
                "invalid value '{head}… ({} bytes)' for '{name}': {why}\n",
                raw.len()
            )
        } else {
            format!("invalid value '{raw}' for '{name}': {why}\n")
        };
        clap::Error::raw(ErrorKind::ValueValidation, message).with_cmd(cmd)
    };
    let text = value
        .to_str()
        .ok_or_else(|| fail("not valid UTF-8".into()))?;
    check(text).map_err(fail)
}

/// The longest duration any flag takes: long enough for any wait an operator means, short
/// enough that no deadline computed from it can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `500ms`, `10s`, `2m`, `1h`, `1d`, or plain seconds (`1.5`); at most [`MAX_DURATION`].
///
/// Integer arithmetic only: `inf`, `nan` and exponents are not numbers here, so nothing can
/// reach `Duration::from_secs_f64` (which panics on them).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    // clap quotes the value before these messages, so they do not repeat it.
    let not_one = || {
        "not a duration: use a number and a unit (ms, s, m, h, d), e.g. 500ms, 10s, 2m".to_string()
    };
    let unit_ns: u128 = match unit {
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => return Err(not_one()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_only = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > 9 {
        return Err(not_one());
    }
    let too_long = || "too long: at most 7 days (7d)".to_string();
    // More digits than u128 holds is out of range anyway.
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let fraction_ns = if fraction.is_empty() {
        0
    } else {
        let scale = 10u128.pow(fraction.len() as u32);
        fraction.parse::<u128>().map_err(|_| not_one())? * unit_ns / scale
    };
    let total = whole
        .checked_mul(unit_ns)
        .and_then(|n| n.checked_add(fraction_ns))
        .ok_or_else(too_long)?;
    if total > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| too_long())
}

/// A duration as seconds, for a flag read as `f64` seconds (`exec --timeout`): the same
/// syntax and bound as [`parse_duration`], so the value is finite and at most 7 days.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    parse_duration(s).map(|d| d.as_secs_f64())
}

/// The longest sha `--sha` and `--to` take.
pub const MAX_SHA: usize = 64;

/// A deployed commit: 1 to 64 characters of `0-9A-Za-z._-`, starting with a letter or digit
/// (it is a word of a space-separated history line, where `-` alone means "no sha").
pub fn parse_sha(s: &str) -> Result<String, String> {
    bounded_word(s, MAX_SHA, "a sha")
}

/// The longest env, component, server or backend name a flag takes.
pub const MAX_NAME: usize = 64;

/// An env, component, server or backend name: 1 to 64 characters of `0-9A-Za-z._-`. Whether
/// it exists is the edge's question; this only keeps absurd values out of messages and files.
pub fn parse_name(s: &str) -> Result<String, String> {
    bounded_word(s, MAX_NAME, "a name")
}

fn bounded_word(s: &str, max: usize, what: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars().all(allowed)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "not {what}: use 1 to {max} characters of 0-9, A-Z, a-z, '.', '_', '-', starting with a letter or digit"
        ))
    }
}

/// `master-cli` or `signal`.
pub fn parse_reload_method(s: &str) -> Result<ReloadMethod, String> {
    ReloadMethod::parse(s).ok_or_else(|| "unknown reload method; use master-cli or signal".into())
}

/// `ENV=COLOR`, e.g. `staging=green`.
pub fn parse_env_color(s: &str) -> Result<(String, Color), String> {
    let (env, color) = s
        .split_once('=')
        .ok_or_else(|| "not ENV=COLOR (e.g. staging=green)".to_string())?;
    let env = parse_name(env)?;
    let color: Color = color
        .parse()
        .map_err(|_| format!("{color:?} is not a color: use blue or green"))?;
    Ok((env, color))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("168h"), Ok(MAX_DURATION));
    }

    /// The inputs that panicked `Duration::from_secs_f64` or an `Instant` addition, and their
    /// neighbours: each is a clear refusal.
    #[test]
    fn hostile_durations_are_refused() {
        for bad in [
            "",
            " ",
            "inf",
            "-inf",
            "nan",
            "NaN",
            "infinity",
            "1e300",
            "1e19",
            "1e3s",
            "-1s",
            "+1s",
            "10x",
            "s",
            ".5s",
            "5.s.",
            "1..2",
            "0x10",
            "1.0000000001s",
            "5 s",
            "١s",
        ] {
            assert!(parse_duration(bad).is_err(), "accepted {bad:?}");
        }
        for too_long in [
            "99999999999999999999",
            "999999999999999999999999999999999999999999999999",
            "7.000000001d",
            "604801",
            "10081m",
            "9999999h",
            "18446744073709551616ms",
        ] {
            let e = parse_duration(too_long).unwrap_err();
            assert!(e.contains("at most 7 days"), "{too_long}: {e}");
        }
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("10"), Ok(10.0));
        assert_eq!(parse_seconds("250ms"), Ok(0.25));
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("nan").is_err());
        assert!(parse_seconds("1e300").is_err());
    }

    #[test]
    fn shas_and_names_are_bounded() {
        assert_eq!(parse_sha("a1b2c3d"), Ok("a1b2c3d".to_string()));
        assert!(parse_sha(&"a".repeat(64)).is_ok());
        for bad in ["", "-", "-abc", "a b", "a;b", "a\nb", "é", "a/b"] {
            assert!(parse_sha(bad).is_err(), "accepted {bad:?}");
        }
        let e = parse_sha(&"a".repeat(100_000)).unwrap_err();
        assert!(e.contains("1 to 64"), "{e}");
        assert_eq!(
            parse_name("be_staging_api_blue"),
            Ok("be_staging_api_blue".into())
        );
        assert!(parse_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn env_colors() {
        assert_eq!(
            parse_env_color("staging=green"),
            Ok(("staging".to_string(), Color::Green))
        );
        assert!(parse_env_color("staging").is_err());
        assert!(parse_env_color("staging=red").is_err());
        assert!(parse_env_color("=blue").is_err());
    }
}
