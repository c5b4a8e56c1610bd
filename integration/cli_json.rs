//! Every `vezasock` command that takes `--json`, run against a real edge on each HAProxy
//! version, its output checked key by key against docs/reference.md (the contract external
//! tests read): the shapes listed under "JSON output" are parsed from that file itself, so the
//! docs and the binary cannot drift apart without this test failing. Also `status` into a
//! closed pipe, and `check` on the live map paths.

use std::collections::BTreeMap;
use std::process::Stdio;

use serde_json::Value;
use vezasock::demo::LocalEdge;

use crate::support::haproxy;
use crate::support::run::{vezasock, Run, Vezasock, BOUND};
use crate::switch::healthy_edge;

/// A documented JSON shape: `{a, b[], c{…}, d[{…}]}`, or `[{…}]` for an array of objects; `k?`
/// is a key printed only when it applies. A `…` in an object means "and more keys" (none is
/// used today: every shape is exact).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Any value (a key with nothing after it).
    Any,
    /// An array (`k[]`): its items are not described.
    Array,
    Object {
        /// Each key's shape, and whether it may be left out.
        keys: BTreeMap<String, (Shape, bool)>,
        open: bool,
    },
    ArrayOf(Box<Shape>),
}

/// Parses the notation of docs/reference.md.
fn parse_shape(text: &str) -> Result<Shape, String> {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut at = 0;
    let shape = value(&chars, &mut at)?;
    if at != chars.len() {
        return Err(format!("trailing text at {at} in {text:?}"));
    }
    Ok(shape)
}

fn value(c: &[char], at: &mut usize) -> Result<Shape, String> {
    match c.get(*at) {
        Some('{') => object(c, at),
        Some('[') => {
            *at += 1;
            if c.get(*at) == Some(&']') {
                *at += 1;
                return Ok(Shape::Array);
            }
            let inner = value(c, at)?;
            expect(c, at, ']')?;
            Ok(Shape::ArrayOf(Box::new(inner)))
        }
        other => Err(format!("unexpected {other:?} at {at}")),
    }
}

fn expect(c: &[char], at: &mut usize, want: char) -> Result<(), String> {
    if c.get(*at) == Some(&want) {
        *at += 1;
        Ok(())
    } else {
        Err(format!("expected {want:?} at {at}, found {:?}", c.get(*at)))
    }
}

fn object(c: &[char], at: &mut usize) -> Result<Shape, String> {
    expect(c, at, '{')?;
    let mut keys = BTreeMap::new();
    let mut open = false;
    loop {
        if c.get(*at) == Some(&'…') {
            *at += 1;
            open = true;
        } else {
            let start = *at;
            while c
                .get(*at)
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
            {
                *at += 1;
            }
            let name: String = c[start..*at].iter().collect();
            if name.is_empty() {
                return Err(format!("a key expected at {start}"));
            }
            let optional = c.get(*at) == Some(&'?');
            if optional {
                *at += 1;
            }
            let shape = match c.get(*at) {
                Some('[') | Some('{') => value(c, at)?,
                _ => Shape::Any,
            };
            keys.insert(name, (shape, optional));
        }
        match c.get(*at) {
            Some(',') => *at += 1,
            Some('}') => {
                *at += 1;
                return Ok(Shape::Object { keys, open });
            }
            other => return Err(format!("expected ',' or '}}' at {at}, found {other:?}")),
        }
    }
}

/// The differences between `value` and `shape`, each as `path: what`.
fn mismatches(shape: &Shape, value: &Value, path: &str, out: &mut Vec<String>) {
    match (shape, value) {
        (Shape::Any, _) | (_, Value::Null) => {}
        (Shape::Array, Value::Array(_)) => {}
        (Shape::ArrayOf(inner), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                mismatches(inner, item, &format!("{path}[{i}]"), out);
            }
        }
        (Shape::Object { keys, open }, Value::Object(map)) => {
            for (k, (inner, optional)) in keys {
                match map.get(k) {
                    None if *optional => {}
                    None => out.push(format!("{path}.{k}: documented, not printed")),
                    Some(v) => mismatches(inner, v, &format!("{path}.{k}"), out),
                }
            }
            if !open {
                for k in map.keys().filter(|k| !keys.contains_key(*k)) {
                    out.push(format!("{path}.{k}: printed, not documented"));
                }
            }
        }
        (shape, value) => out.push(format!("{path}: documented as {shape:?}, printed {value}")),
    }
}

/// The shapes of the "JSON output" list in docs/reference.md: `- `NAME`: `SHAPE`` (an item may wrap onto
/// indented lines), keyed by NAME (e.g. `switch`, `switch failure`).
pub fn documented_shapes() -> BTreeMap<String, Shape> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let section = doc
        .split("**JSON output.**")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").take(2).nth(1))
        .unwrap_or_else(|| panic!("{path} has no JSON output list"));
    let mut items: Vec<String> = Vec::new();
    for line in section.lines() {
        if let Some(item) = line.strip_prefix("- ") {
            items.push(item.to_string());
        } else if let Some(last) = items.last_mut() {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    let mut shapes = BTreeMap::new();
    for item in items {
        let parts: Vec<&str> = item.split('`').collect();
        // ["", NAME, ": ", SHAPE, rest…]; an item described in words (`demo`) has no shape.
        if parts.len() < 4 {
            continue;
        }
        let shape = parse_shape(parts[3])
            .unwrap_or_else(|e| panic!("docs/reference.md shape of {}: {e}", parts[1]));
        shapes.insert(parts[1].to_string(), shape);
    }
    shapes
}

/// `a[0].b[12]: …` → `a[].b[]: …`.
fn without_indices(text: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for ch in text.chars() {
        match ch {
            '[' => {
                in_index = true;
                out.push(ch);
            }
            ']' => {
                in_index = false;
                out.push(ch);
            }
            c if in_index && c.is_ascii_digit() => {}
            c => out.push(c),
        }
    }
    out
}

/// Fails unless `value` has exactly the keys docs/reference.md documents for `name`.
pub fn agree(shapes: &BTreeMap<String, Shape>, name: &str, value: &Value, what: &str, label: &str) {
    let shape = shapes
        .get(name)
        .unwrap_or_else(|| panic!("docs/reference.md documents no JSON for `{name}`"));
    let mut out = Vec::new();
    mismatches(shape, value, name, &mut out);
    // One line per key, not per array item.
    let mut out: Vec<String> = out.iter().map(|m| without_indices(m)).collect();
    out.dedup();
    assert!(
        out.is_empty(),
        "{label}: `vezasock {what}` and docs/reference.md disagree:\n  {}\noutput: {value}",
        out.join("\n  ")
    );
}

fn json_of(run: &Run, what: &str) -> Value {
    serde_json::from_str(run.out.trim())
        .unwrap_or_else(|e| panic!("{what}: not one JSON value ({e}): {run:?}"))
}

/// Runs `args` and checks its JSON against the documented `name` shape; returns the JSON.
fn check(
    edge: &LocalEdge,
    shapes: &BTreeMap<String, Shape>,
    name: &str,
    args: &[&str],
    code: i32,
    label: &str,
) -> Value {
    let run = vezasock(edge, args);
    assert_eq!(run.code, Some(code), "{label}: {args:?}: {run:?}");
    let value = json_of(&run, &format!("{label}: {args:?}"));
    agree(shapes, name, &value, &args.join(" "), label);
    value
}

fn every_json_output_matches_the_reference(v: &haproxy::Haproxy) {
    let label = v.label;
    let shapes = documented_shapes();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let edge = healthy_edge(v, dir.path());
    let mut seen: Vec<&str> = Vec::new();
    let mut run = |name: &'static str, args: &[&str], code: i32| {
        seen.push(name);
        check(&edge, &shapes, name, args, code, label)
    };

    run("status", &["status", "--json"], 0);
    run("status", &["status", "staging", "--json"], 0);
    let flip = run(
        "switch",
        &["switch", "staging", "green", "--sha", "abc1234", "--json"],
        0,
    );
    assert_eq!(flip["ok"], true, "{label}: {flip}");
    run("switch", &["switch", "staging", "green", "--json"], 0);
    run(
        "switch",
        &["switch", "staging", "blue", "--dry-run", "--json"],
        0,
    );
    let refused = run(
        "switch failure",
        &["switch", "nowhere", "green", "--json"],
        2,
    );
    assert_eq!(refused["ok"], false, "{label}: {refused}");
    assert_eq!(refused["exit"], 2, "{label}: {refused}");
    let history = run("history", &["history", "staging", "--json"], 0);
    assert_eq!(history[0]["sha"], "abc1234", "{label}: {history}");
    assert_eq!(history[0]["color"], "green", "{label}: {history}");
    run(
        "switch",
        &["switch", "staging", "blue", "--sha", "def5678", "--json"],
        0,
    );
    let back = run("rollback", &["rollback", "staging", "--json"], 0);
    assert_eq!(back["to"], "green", "{label}: {back}");
    // Green is live again: blue is the color an operator drains.
    run("drain", &["drain", "staging", "blue", "--json"], 0);
    run(
        "drain",
        &[
            "drain", "staging", "blue", "--wait", "5s", "--then", "maint", "--json",
        ],
        0,
    );
    run("maint", &["maint", "staging", "blue", "--json"], 0);
    run("ready", &["ready", "staging", "blue", "--json"], 0);
    run(
        "ready",
        &["ready", "--backend", "forgejo_backend", "--json"],
        0,
    );
    run("preview", &["preview", "staging", "green", "--json"], 0);
    run(
        "txn prepare",
        &[
            "txn", "prepare", "staging", "green", "--id", "cj-1", "--json",
        ],
        0,
    );
    run(
        "txn commit",
        &["txn", "commit", "--id", "cj-1", "--json"],
        0,
    );
    // A fleet of this one edge (its paths come from the environment, as for every run here).
    let fleet = dir.path().join("fleet.toml");
    let fleet_state = dir.path().join("fleet-state");
    std::fs::write(
        &fleet,
        format!("state_dir = {fleet_state:?}\n[[edge]]\nname = \"solo\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let fleet = fleet.display().to_string();
    run(
        "switch fleet",
        &[
            "switch",
            "--fleet",
            &fleet,
            "staging",
            "blue",
            "--dry-run",
            "--json",
        ],
        0,
    );
    run(
        "switch fleet",
        &["switch", "--fleet", &fleet, "staging", "blue", "--json"],
        0,
    );
    // Green live again, as the canary below expects (blue drained, then back to ready below).
    run(
        "switch fleet",
        &[
            "switch",
            "--fleet",
            &fleet,
            "staging",
            "green",
            "--drain-old",
            "--drain-timeout",
            "5s",
            "--json",
        ],
        0,
    );
    run("status fleet", &["status", "--fleet", &fleet, "--json"], 0);
    run(
        "preview fleet",
        &["preview", "--fleet", &fleet, "staging", "blue", "--json"],
        0,
    );
    run(
        "preview fleet",
        &[
            "preview", "--fleet", &fleet, "staging", "--revoke", "--json",
        ],
        0,
    );
    run(
        "maint fleet",
        &[
            "drain", "--fleet", &fleet, "staging", "blue", "--wait", "5s", "--json",
        ],
        0,
    );
    run(
        "maint fleet",
        &["maint", "--fleet", &fleet, "staging", "blue", "--json"],
        0,
    );
    run(
        "maint fleet",
        &["ready", "--fleet", &fleet, "staging", "blue", "--json"],
        0,
    );
    run("plan", &["plan", "--json"], 0);
    run("apply", &["apply", "--dry-run", "--json"], 0);
    run_failures(&edge, &shapes, label);
    seen.push("failure");
    // exec takes its socket from its flags only (the edge's variables name a master socket).
    let admin = edge.topology.paths.admin_socket.display().to_string();
    let exec = |name: &str, line: &str| {
        let run = run_alone(&["exec", "--socket", &admin, "--json", "--", line]);
        assert_eq!(run.code, Some(0), "{label}: exec {line}: {run:?}");
        let value = json_of(&run, line);
        agree(
            &shapes,
            name,
            &value,
            &format!("exec --json -- {line}"),
            label,
        );
        value
    };
    let one = exec("exec", "show info");
    assert_eq!(one["reply"]["kind"], "info", "{label}: {one}");
    let chain = exec("exec chain", "show version; show servers state");
    assert_eq!(chain.as_array().map(Vec::len), Some(2), "{label}: {chain}");
    seen.extend(["exec", "exec chain"]);
    run_canary(&edge, &shapes, label);
    seen.extend(["canary", "canary failure", "canary control"]);
    // Blue is live after the canary: a fleet canary of one step (100 %) ends as a fleet switch.
    let fleet_canary = check(
        &edge,
        &shapes,
        "canary fleet",
        &[
            "canary", "--fleet", &fleet, "staging", "green", "--steps", "100", "--json",
        ],
        0,
        label,
    );
    assert_eq!(
        fleet_canary["switch"]["to"], "green",
        "{label}: {fleet_canary}"
    );
    seen.push("canary fleet");
    run_install(v, &shapes);
    seen.push("apply install");
    // Every documented shape was exercised (demo's runs its own edge: integration/demo.rs;
    // cert update's needs a TLS edge: integration/cert.rs checks it, and
    // integration/fleet_cert.rs the fleet's).
    let documented: Vec<&String> = shapes
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "demo" | "cert update" | "cert update fleet" | "cert list fleet"
            )
        })
        .collect();
    for name in documented {
        assert!(
            seen.contains(&name.as_str()),
            "{label}: documented shape `{name}` not run"
        );
    }
}

/// The failure JSON of the commands that print through the finishing point (src/cli/finish.rs)
/// and had none before it: an unknown env, the edge lock held, unreadable live files, HAProxy
/// unreachable. Each is `{ok: false, error, exit}` with the command's exit code, and the message
/// on stderr too.
fn run_failures(edge: &LocalEdge, shapes: &BTreeMap<String, Shape>, label: &str) {
    let failed = |args: &[&str], code: i32| {
        let run = vezasock(edge, args);
        assert_eq!(run.code, Some(code), "{label}: {args:?}: {run:?}");
        let value = json_of(&run, &format!("{label}: {args:?}"));
        agree(shapes, "failure", &value, &args.join(" "), label);
        assert_eq!(value["ok"], false, "{label}: {args:?}: {value}");
        assert_eq!(value["exit"], code, "{label}: {args:?}: {value}");
        let said = format!("vezasock {}: ", args[0]);
        assert!(run.err.contains(&said), "{label}: {args:?}: {run:?}");
    };
    for command in ["drain", "maint", "ready"] {
        failed(&[command, "nowhere", "--json"], 2);
    }
    failed(&["history", "nowhere", "--json"], 2);
    failed(&["preview", "nowhere", "green", "--json"], 2);
    failed(&["canary", "nowhere", "--promote", "--json"], 2);

    let paths = &edge.topology.paths;
    let state = vezasock::state::StateDir::single(paths.state_dir.clone());
    let held = vezasock::state::EdgeLock::acquire(
        &state,
        vezasock::state::Wait::No,
        vezasock::state::Holder::current(),
    )
    .unwrap_or_else(|e| panic!("{label}: lock: {e}"));
    failed(&["apply", "--no-wait", "--json"], 4);
    failed(&["maint", "staging", "blue", "--no-wait", "--json"], 4);
    failed(&["canary", "staging", "--abort", "--no-wait", "--json"], 4);
    drop(held);

    let summary = vezasock::render::shape::summary_path(&paths.config);
    let kept = std::fs::read(&summary).unwrap_or_else(|e| panic!("{label}: {e}"));
    std::fs::write(&summary, "not a summary").unwrap_or_else(|e| panic!("{label}: {e}"));
    let plan = vezasock(edge, &["plan", "--json"]);
    std::fs::write(&summary, kept).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(plan.code, Some(1), "{label}: plan: {plan:?}");
    let value = json_of(&plan, &format!("{label}: plan"));
    agree(shapes, "failure", &value, "plan --json", label);
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a shape summary")),
        "{label}: plan: {value}"
    );

    // exec takes its socket from its flags only: a socket nobody listens on.
    let gone = paths.state_dir.join("nobody.sock").display().to_string();
    let run = run_alone(&["exec", "--socket", &gone, "--json", "--", "show info"]);
    assert_eq!(run.code, Some(3), "{label}: exec: {run:?}");
    let value = json_of(&run, &format!("{label}: exec"));
    agree(shapes, "failure", &value, "exec --json", label);
    assert_eq!(value["ok"], false, "{label}: exec: {value}");
}

/// The canary's JSON, from real runs: a canary stopped by `--promote` from another shell (its
/// step `promoted`, ending as a switch back to blue), `status` while it runs (`canaries[]`), the
/// control outputs, and a failure (a canary to the live color). Green is live when it starts.
fn run_canary(edge: &LocalEdge, shapes: &BTreeMap<String, Shape>, label: &str) {
    let child = Vezasock::edge(
        edge,
        &[
            "canary",
            "staging",
            "blue",
            "--steps",
            "50,100",
            "--interval",
            "60s",
            "--sha",
            "c1",
            "--json",
        ],
    )
    .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let status = check(edge, shapes, "status", &["status", "--json"], 0, label);
        if status["canaries"].as_array().is_some_and(|c| !c.is_empty()) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{label}: no canary in status: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        status["canaries"],
        serde_json::json!([{"env": "staging", "color": "blue", "percent": 50, "running": true}]),
        "{label}: {status}"
    );
    let promote = check(
        edge,
        shapes,
        "canary control",
        &["canary", "staging", "--promote", "--json"],
        0,
        label,
    );
    assert_eq!(promote["changed"], true, "{label}: {promote}");
    let run = child.finish(BOUND);
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    let report = json_of(&run, "canary --json");
    agree(shapes, "canary", &report, "canary --json", label);
    assert_eq!(report["ok"], true, "{label}: {report}");
    assert_eq!(
        report["steps"][0]["verdict"], "promoted",
        "{label}: {report}"
    );
    assert_eq!(report["switch"]["to"], "blue", "{label}: {report}");
    assert_eq!(report["switch"]["sha"], "c1", "{label}: {report}");
    let abort = check(
        edge,
        shapes,
        "canary control",
        &["canary", "staging", "--abort", "--json"],
        0,
        label,
    );
    assert_eq!(abort["changed"], false, "{label}: {abort}");
    // Blue is live now: a canary to blue is refused before anything moves.
    let failed = check(
        edge,
        shapes,
        "canary failure",
        &["canary", "staging", "blue", "--json"],
        1,
        label,
    );
    assert_eq!(failed["ok"], false, "{label}: {failed}");
    assert_eq!(failed["exit"], 1, "{label}: {failed}");
}

/// A small edge with every path under `dir` and no TLS, so `haproxy -c` passes on any host.
fn fresh_topology(v: &haproxy::Haproxy, dir: &std::path::Path) -> String {
    let d = dir.display();
    let topology = format!(
        "name = \"fresh\"\n[listen]\nhttp = \"127.0.0.1:{port}\"\n[paths]\n\
         config = \"{d}/haproxy.cfg\"\nmaps_dir = \"{d}/maps\"\nadmin_socket = \"{d}/admin.sock\"\n\
         operator_socket = \"{d}/operator.sock\"\nmaster_socket = \"{d}/master.sock\"\n\
         server_state_file = \"{d}/server-state\"\nstate_dir = \"{d}/state\"\n\
         haproxy = \"{bin}\"\npid_file = \"{d}/haproxy.pid\"\n\n\
         [[component]]\nname = \"web\"\n\n\
         [[env]]\nname = \"staging\"\nhosts = [\"staging.example\"]\ncomponents = [\"web\"]\n\
         [env.servers.web]\nblue = [\"127.0.0.1:9\"]\ngreen = [\"127.0.0.1:10\"]\n",
        port = crate::support::ports::free_port(),
        bin = v.bin.display(),
    );
    let file = dir.join("fresh.toml");
    std::fs::write(&file, topology).unwrap_or_else(|e| panic!("{e}"));
    file.display().to_string()
}

/// `apply --json` on a new host (no HAProxy running, no config yet) prints the install report.
fn run_install(v: &haproxy::Haproxy, shapes: &BTreeMap<String, Shape>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = fresh_topology(v, dir.path());
    let run = run_alone(&["apply", "--json", "--config", &file]);
    assert_eq!(run.code, Some(0), "{}: {run:?}", v.label);
    let value = json_of(&run, "apply install");
    assert_eq!(value["installed"], true, "{}: {value}", v.label);
    agree(
        shapes,
        "apply install",
        &value,
        "apply --json (install)",
        v.label,
    );
}

/// `check` reads the map files where the live config reads them once they exist (the config
/// checked is the one apply installs); before that it says it used scratch copies.
fn check_uses_the_live_maps_once_they_exist(v: &haproxy::Haproxy) {
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = fresh_topology(v, dir.path());
    let before = run_alone(&["check", "--config", &file]);
    assert_eq!(before.code, Some(0), "{label}: {before:?}");
    assert!(
        before.out.contains("holds no map files yet"),
        "{label}: {before:?}"
    );
    let maps = dir.path().join("maps");
    let wrote = run_alone(&[
        "render",
        "--config",
        &file,
        "--out",
        &maps.display().to_string(),
    ]);
    assert_eq!(wrote.code, Some(0), "{label}: {wrote:?}");
    let after = run_alone(&["check", "--config", &file]);
    assert_eq!(after.code, Some(0), "{label}: {after:?}");
    assert!(
        !after.out.contains("holds no map files"),
        "{label}: {after:?}"
    );
    assert!(
        after.out.contains("the candidate config is valid"),
        "{label}: {after:?}"
    );
}

/// `vezasock ARGS` with none of the variables that point it at an edge: only its flags count.
fn run_alone(args: &[&str]) -> Run {
    Vezasock::new(args).run()
}

/// `vezasock status | head -1`: the reader leaves after one line; status still ends normally.
fn status_into_a_closed_pipe_exits_0(v: &haproxy::Haproxy) {
    let label = v.label;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let edge = healthy_edge(v, dir.path());
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["history", "staging"],
    ] {
        let mut child = Vezasock::edge(&edge, args)
            .into_command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: spawn: {e}"));
        drop(child.stdout.take());
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{label}: wait: {e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{label}: {args:?}: {err}");
        assert!(
            err.is_empty(),
            "{label}: {args:?}: a closed pipe is silent: {err}"
        );
    }
}

// One test per HAProxy version each (`name::v3_4`), so a failure on one version hides no other.
crate::support::haproxy::per_version!(
    every_json_output_matches_the_reference,
    |v: &haproxy::Haproxy| { every_json_output_matches_the_reference(v) }
);
crate::support::haproxy::per_version!(status_into_a_closed_pipe_exits_0, |v: &haproxy::Haproxy| {
    status_into_a_closed_pipe_exits_0(v)
});
crate::support::haproxy::per_version!(
    check_uses_the_live_maps_once_they_exist,
    |v: &haproxy::Haproxy| { check_uses_the_live_maps_once_they_exist(v) }
);

#[test]
fn the_reference_notation_parses_and_checks_both_ways() {
    let shape = parse_shape("{a, b[], c{d, e}, f[{g}], o?{p}}").unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let good = serde_json::json!({"a": 1, "b": [1], "c": {"d": 1, "e": null}, "f": [{"g": 1}]});
    mismatches(&shape, &good, "x", &mut out);
    assert!(out.is_empty(), "{out:?}");
    let bad = serde_json::json!({"a": 1, "b": [], "c": {"d": 1, "z": 2}, "f": [{"h": 1}], "y": 0, "o": {"q": 1}});
    mismatches(&shape, &bad, "x", &mut out);
    assert_eq!(
        out,
        [
            "x.c.e: documented, not printed",
            "x.c.z: printed, not documented",
            "x.f[0].g: documented, not printed",
            "x.f[0].h: printed, not documented",
            "x.o.p: documented, not printed",
            "x.o.q: printed, not documented",
            "x.y: printed, not documented",
        ]
    );
    assert!(parse_shape("{a, b").is_err());
    assert!(documented_shapes().contains_key("switch"));
}
