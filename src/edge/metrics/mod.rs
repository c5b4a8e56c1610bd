//! vezasock's own metrics: one Prometheus text file (`[metrics] textfile`,
//! `--metrics-textfile`) rewritten atomically after every command that changes the edge and
//! after `status`, for node_exporter's textfile collector (vezasock has no daemon to scrape).
//!
//! Everything is computed again each time from what is on disk and in the runtime, never
//! accumulated in memory: the counters are counted from the journal (so they survive restarts
//! and every process agrees), the colors, drift and canaries come from `status`, the
//! certificates' expiry from the certs dir. When HAProxy does not answer, the journal and disk
//! metrics are still written, with `vezasock_edge_up 0`. The list, with types and labels:
//! docs/observability.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub mod fleet;
pub mod tally;

use crate::edge::status::{status, StatusReport};
use crate::edge::{Edge, EdgeError};
pub use tally::Tally;

/// Everything one write reads, gathered before anything is formatted.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub edge: String,
    /// `None` when the runtime did not answer.
    pub status: Option<StatusReport>,
    /// The journal's counts (archive and live journal).
    pub tally: Tally,
    /// (file, notAfter in Unix seconds) of each parseable certificate in the certs dir.
    pub certificates: Vec<(String, i64)>,
    /// The last commit skew of each fleet switch that included the edge.
    pub fleets: Vec<fleet::FleetSkew>,
    /// Unix seconds of the write.
    pub now: i64,
}

/// Rewrites the edge's metrics textfile; does nothing without one configured. Returns the file
/// written.
pub async fn write(edge: &Edge) -> Result<Option<&Path>, EdgeError> {
    let Some(path) = edge.topology.metrics_textfile.as_deref() else {
        return Ok(None);
    };
    let snapshot = collect(edge).await?;
    crate::state::atomic::write_atomic(path, render(&snapshot).as_bytes())?;
    Ok(Some(path))
}

/// Reads the runtime (through `status`), the journal and the certs dir.
pub async fn collect(edge: &Edge) -> Result<Snapshot, EdgeError> {
    let status = status(edge, None).await.ok();
    let tally = tally::of_state(&edge.state)?;
    let certificates = match &edge.topology.tls {
        Some(tls) => crate::edge::cert::disk_certs(&tls.certs_dir)
            .into_iter()
            .filter_map(|(file, info)| info.ok().map(|i| (file, i.not_after)))
            .collect(),
        None => Vec::new(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Ok(Snapshot {
        edge: edge.topology.name.clone(),
        status,
        tally,
        certificates,
        fleets: fleet::read(&edge.state),
        now,
    })
}

/// One metric family being written: its HELP and TYPE lines before its first sample (a family
/// without samples writes nothing), then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    started: bool,
}

impl<'a> Family<'a> {
    fn new(
        out: &'a mut String,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
    ) -> Family<'a> {
        Family {
            out,
            name,
            kind,
            help,
            started: false,
        }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let name = self.name;
        if !self.started {
            let _ = writeln!(self.out, "# HELP {name} {}", self.help);
            let _ = writeln!(self.out, "# TYPE {name} {}", self.kind);
            self.started = true;
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole file.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let edge = s.edge.as_str();
    let mut f = Family::new(
        &mut out,
        "vezasock_edge_up",
        "gauge",
        "1 when HAProxy's runtime API answered the last write's status read, else 0.",
    );
    f.sample(
        &[("edge", edge)],
        if s.status.is_some() { 1.0 } else { 0.0 },
    );
    if let Some(status) = &s.status {
        render_status(&mut out, edge, status);
    }
    render_tally(&mut out, edge, &s.tally);
    let mut f = Family::new(
        &mut out,
        "vezasock_fleet_commit_skew_seconds",
        "gauge",
        "From the first to the last edge's commit of the last fleet switch of an env (seconds).",
    );
    for k in &s.fleets {
        let labels = [
            ("edge", edge),
            ("fleet", k.fleet.as_str()),
            ("env", k.env.as_str()),
        ];
        f.sample(&labels, k.commit_skew_seconds);
    }
    let mut f = Family::new(
        &mut out,
        "vezasock_certificate_expiry_timestamp_seconds",
        "gauge",
        "notAfter of each certificate file in the certs dir (Unix seconds).",
    );
    for (file, not_after) in &s.certificates {
        f.sample(&[("edge", edge), ("file", file)], *not_after as f64);
    }
    // Last, so a reader can tell a whole file by its last line.
    let mut f = Family::new(
        &mut out,
        "vezasock_metrics_write_timestamp_seconds",
        "gauge",
        "When vezasock last wrote this file (Unix seconds).",
    );
    f.sample(&[("edge", edge)], s.now as f64);
    out
}

/// The families `status` gives: colors, drift, canaries, open transaction.
fn render_status(out: &mut String, edge: &str, r: &StatusReport) {
    let colored: Vec<_> = r
        .envs
        .iter()
        .filter_map(|e| e.sides.map(|s| (e, s)))
        .collect();
    let mut f = Family::new(
        out,
        "vezasock_active_color_info",
        "gauge",
        "The color the runtime sends an env's users to (always 1; the color is a label).",
    );
    for (env, sides) in &colored {
        let color = sides.effective().runtime.as_str();
        f.sample(&[("edge", edge), ("env", &env.name), ("color", color)], 1.0);
    }
    let mut f = Family::new(
        out,
        "vezasock_drift",
        "gauge",
        "1 when this side (runtime, map_file, state_file) names another color than the other two.",
    );
    for (env, sides) in &colored {
        let e = sides.effective();
        let all = [
            ("runtime", e.runtime),
            ("map_file", e.map_file),
            ("state_file", e.state_file),
        ];
        for (side, color) in all {
            let agreeing = all.iter().filter(|(_, c)| *c == color).count();
            let odd = if agreeing == 1 { 1.0 } else { 0.0 };
            f.sample(&[("edge", edge), ("env", &env.name), ("side", side)], odd);
        }
    }
    render_canaries(out, edge, r);
    let mut f = Family::new(
        out,
        "vezasock_transaction_open",
        "gauge",
        "1 while a prepared multi-edge transaction holds the edge (vezasock txn).",
    );
    let open = if r.transaction.is_some() { 1.0 } else { 0.0 };
    f.sample(&[("edge", edge)], open);
}

/// Canary percent and whether its process runs, for every colored env (0 when none).
fn render_canaries(out: &mut String, edge: &str, r: &StatusReport) {
    let envs: Vec<&str> = r
        .envs
        .iter()
        .filter(|e| e.sides.is_some())
        .map(|e| e.name.as_str())
        .collect();
    let find = |env: &str| r.canaries.iter().find(|c| c.env == env);
    let mut f = Family::new(
        out,
        "vezasock_canary_percent",
        "gauge",
        "Share of an env's users a canary sends to its new color (0: no canary).",
    );
    for env in &envs {
        let percent = find(env).map_or(0.0, |c| f64::from(c.percent));
        f.sample(&[("edge", edge), ("env", env)], percent);
    }
    let mut f = Family::new(
        out,
        "vezasock_canary_running",
        "gauge",
        "1 while a canary process runs for the env (0: none, or its process is gone).",
    );
    for env in &envs {
        let running = find(env).is_some_and(|c| c.running);
        f.sample(
            &[("edge", edge), ("env", env)],
            if running { 1.0 } else { 0.0 },
        );
    }
}

/// The counters and last-switch gauges, from the journal's tally.
fn render_tally(out: &mut String, edge: &str, t: &Tally) {
    let mut f = Family::new(
        out,
        "vezasock_switches_total",
        "counter",
        "Switches and rollbacks (action: switch, rollback, bake_rollback) by how they ended (ok, failed, rolled_back, refused, unfinished), counted from the journal.",
    );
    for ((env, action, result), n) in &t.switches {
        let labels = [
            ("edge", edge),
            ("env", env.as_str()),
            ("action", action.as_str()),
            ("result", result.as_str()),
        ];
        f.sample(&labels, *n as f64);
    }
    let mut f = Family::new(
        out,
        "vezasock_canaries_total",
        "counter",
        "Canaries that ended, by how (promoted, aborted), counted from the journal.",
    );
    for ((env, result), n) in &t.canaries {
        f.sample(
            &[("edge", edge), ("env", env), ("result", result)],
            *n as f64,
        );
    }
    let mut f = Family::new(
        out,
        "vezasock_reloads_total",
        "counter",
        "Reloads vezasock ran, by how they ended, counted from the journal.",
    );
    for (result, n) in &t.reloads {
        f.sample(&[("edge", edge), ("result", result)], *n as f64);
    }
    render_last(out, edge, &t.last);
}

fn render_last(out: &mut String, edge: &str, last: &BTreeMap<String, (i64, i64)>) {
    let mut f = Family::new(
        out,
        "vezasock_last_switch_timestamp_seconds",
        "gauge",
        "When the env's last successful switch or rollback was recorded (Unix seconds).",
    );
    for (env, (at, _)) in last {
        f.sample(&[("edge", edge), ("env", env)], *at as f64);
    }
    let mut f = Family::new(
        out,
        "vezasock_last_switch_duration_seconds",
        "gauge",
        "How long the env's last successful switch or rollback took, intent to recorded (whole seconds).",
    );
    for (env, (_, took)) in last {
        f.sample(&[("edge", edge), ("env", env)], *took as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::time::parse_rfc3339_utc;
    use crate::state::{Action, JournalEntry, Phase};

    fn line(
        op: &str,
        action: Action,
        phase: Phase,
        ts: &str,
        before: &str,
        after: &str,
    ) -> JournalEntry {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        JournalEntry {
            ts: ts.to_string(),
            who: "ci".to_string(),
            pid: 1,
            op_id: op.to_string(),
            env: Some("staging".to_string()),
            action,
            phase,
            before: opt(before),
            after: opt(after),
            detail: None,
        }
    }

    fn journal() -> Vec<JournalEntry> {
        use Action::{Canary, Rollback, Switch};
        use Phase::{Done, Failed, Intent, Refused, RolledBack, Verified};
        let t = |s: u32| format!("2026-01-01T00:00:{s:02}Z");
        vec![
            line("a", Switch, Intent, &t(0), "blue", "green"),
            line("a", Switch, Done, &t(3), "blue", "green"),
            line("b", Switch, Intent, &t(10), "green", "blue"),
            line("b", Switch, Failed, &t(11), "green", "blue"),
            line("c", Rollback, Intent, &t(20), "green", "blue"),
            line("c", Rollback, Done, &t(22), "green", "blue"),
            line("d", Canary, Intent, &t(30), "", "green:10"),
            line("d", Canary, Done, &t(30), "", "green:10"),
            line("e", Canary, Intent, &t(31), "green:10", ""),
            line("e", Canary, Done, &t(31), "green:10", ""),
            line("f", Canary, Done, &t(40), "green:100", ""),
            line("g", Switch, Intent, &t(50), "blue", "green"),
            line("g", Switch, Verified, &t(51), "blue", "green"),
            line("h", Switch, Intent, &t(52), "blue", "green"),
            line("h", Switch, RolledBack, &t(53), "blue", "green"),
            // A gate's refusal: its one and only line.
            line("i", Switch, Refused, &t(54), "blue", "green"),
        ]
    }

    fn rendered() -> String {
        render(&Snapshot {
            edge: "veza".to_string(),
            status: None,
            tally: Tally::of(&journal()),
            certificates: vec![("a\"b.pem".to_string(), 1_900_000_000)],
            fleets: vec![fleet::FleetSkew {
                fleet: "prod".to_string(),
                env: "staging".to_string(),
                commit_skew_seconds: 0.0125,
                at: 1_800_000_000,
            }],
            now: 1_800_000_000,
        })
    }

    #[test]
    fn switches_are_counted_by_action_and_how_they_ended() {
        let text = rendered();
        for want in [
            r#"vezasock_switches_total{edge="veza",env="staging",action="switch",result="ok"} 1"#,
            r#"vezasock_switches_total{edge="veza",env="staging",action="switch",result="failed"} 1"#,
            r#"vezasock_switches_total{edge="veza",env="staging",action="switch",result="unfinished"} 1"#,
            r#"vezasock_switches_total{edge="veza",env="staging",action="switch",result="rolled_back"} 1"#,
            r#"vezasock_switches_total{edge="veza",env="staging",action="switch",result="refused"} 1"#,
            r#"vezasock_switches_total{edge="veza",env="staging",action="rollback",result="ok"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == want), "{want}\n{text}");
        }
    }

    #[test]
    fn a_canary_deleted_below_100_is_aborted_at_100_promoted_and_steps_are_not_counted() {
        let text = rendered();
        for want in [
            r#"vezasock_canaries_total{edge="veza",env="staging",result="aborted"} 1"#,
            r#"vezasock_canaries_total{edge="veza",env="staging",result="promoted"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == want), "{want}\n{text}");
        }
        assert_eq!(
            text.matches("vezasock_canaries_total{").count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn the_last_switch_is_the_last_one_that_ended_ok_with_its_duration() {
        let text = rendered();
        let at = parse_rfc3339_utc("2026-01-01T00:00:22Z").unwrap_or_default();
        let want =
            format!(r#"vezasock_last_switch_timestamp_seconds{{edge="veza",env="staging"}} {at}"#);
        assert!(text.lines().any(|l| l == want), "{want}\n{text}");
        let want = r#"vezasock_last_switch_duration_seconds{edge="veza",env="staging"} 2"#;
        assert!(text.lines().any(|l| l == want), "{want}\n{text}");
    }

    #[test]
    fn the_last_fleet_commit_skew_is_a_gauge_per_fleet_and_env() {
        let text = rendered();
        let want =
            r#"vezasock_fleet_commit_skew_seconds{edge="veza",fleet="prod",env="staging"} 0.0125"#;
        assert!(text.lines().any(|l| l == want), "{want}\n{text}");
    }

    #[test]
    fn label_values_are_escaped_and_an_unreachable_edge_says_so() {
        let text = rendered();
        assert!(text.contains(r#"file="a\"b.pem"} 1900000000"#), "{text}");
        assert!(text.contains("vezasock_edge_up{edge=\"veza\"} 0"), "{text}");
        // No status: no color families at all (a family without samples writes nothing).
        assert!(!text.contains("vezasock_active_color_info"), "{text}");
    }

    #[test]
    fn every_family_has_help_and_type_once_before_its_samples() {
        let text = rendered();
        let mut seen = Vec::new();
        let mut current = String::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap_or_default().to_string();
                assert!(!seen.contains(&current), "{current} twice\n{text}");
                seen.push(current.clone());
            } else if !l.starts_with('#') {
                assert!(
                    l.starts_with(&format!("{current}{{")),
                    "{l} outside its family"
                );
            }
        }
        assert!(seen.len() >= 6, "{seen:?}");
    }

    proptest::proptest! {
        /// Any journal (any op ids, phases, timestamps) renders without a panic, and every
        /// sample line is `name{labels} number`.
        #[test]
        fn any_journal_renders(
            ops in proptest::collection::vec((0u8..4, 0u8..10, 0u8..8, "\\PC{0,22}"), 0..40)
        ) {
            let actions = [Action::Switch, Action::Rollback, Action::Canary, Action::Reload, Action::Drain, Action::Apply, Action::Cert, Action::Maint, Action::Ready, Action::Preview];
            let phases = [Phase::Intent, Phase::DiskWritten, Phase::RuntimeApplied, Phase::Verified, Phase::Done, Phase::Failed, Phase::RolledBack, Phase::Refused];
            let journal: Vec<JournalEntry> = ops
                .iter()
                .map(|(op, a, p, ts)| line(&op.to_string(), actions[*a as usize], phases[*p as usize], ts, "green:100", ""))
                .collect();
            let text = render(&Snapshot { edge: "e\n".to_string(), tally: Tally::of(&journal), ..Snapshot::default() });
            for l in text.lines().filter(|l| !l.starts_with('#')) {
                let value = l.rsplit(' ').next().unwrap_or_default();
                proptest::prop_assert!(value.parse::<f64>().is_ok(), "{}", l);
                proptest::prop_assert!(l.contains("{edge=\"e\\n\""), "{}", l);
            }
        }
    }
}
