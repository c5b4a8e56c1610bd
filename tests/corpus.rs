//! Runs the reply parsers over the corpus recorded from real HAProxy 2.6, 3.0 and 3.2
//! (`grammar/corpus/<version>/index.json`, schema in `grammar/README.md`).
//!
//! Every one-shot recording is checked: `data` must parse with the named parser and give sane
//! values, `error` must classify as an error, `empty` as empty, `info` as info. Prompt-mode
//! streams hold several framed replies and belong to the codec tests; they are counted here,
//! not parsed. A missing or empty version directory fails the test.

#[path = "support/versions.rs"]
mod versions;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use vezasock::runtime::command::cli::{parse_cli_level, CliLevel};
use vezasock::runtime::command::master::parse_reload;
use vezasock::runtime::command::raw::parse;
use vezasock::runtime::command::ReplyKind;
use vezasock::runtime::command::{info, maps, master, servers, stat};
use vezasock::runtime::parse::outcome::{classify, is_known_error, severity_prefix, Outcome};

use versions::RECORDED as VERSIONS;

/// One recording from an `index.json`.
#[derive(Clone)]
struct Entry {
    case: String,
    mode: String,
    file: String,
    parser: String,
    expect: String,
    body: Vec<u8>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus")
}

fn load(version: &str) -> Vec<Entry> {
    let dir = corpus_dir().join(version);
    let index = dir.join("index.json");
    let text = std::fs::read_to_string(&index)
        .unwrap_or_else(|e| panic!("corpus index {} is missing: {e}", index.display()));
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", index.display()));
    let items = json.as_array().expect("index.json is an array");
    assert!(!items.is_empty(), "{} has no entries", index.display());
    items
        .iter()
        .map(|item| {
            let s = |k: &str| {
                item.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{version}: entry without `{k}`: {item}"))
                    .to_owned()
            };
            let file = s("file");
            let body =
                std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{version}/{file}: {e}"));
            Entry {
                case: s("case"),
                mode: s("mode"),
                file,
                parser: s("parser"),
                expect: s("expect"),
                body,
            }
        })
        .collect()
}

fn kind_of(parser: &str) -> Option<ReplyKind> {
    Some(match parser {
        "info" => ReplyKind::Info,
        "stat" => ReplyKind::Stat,
        "servers_state" => ReplyKind::ServersState,
        "backends" => ReplyKind::Backends,
        "map_list" => ReplyKind::MapList,
        "map_entries" => ReplyKind::MapEntries,
        "get_map" => ReplyKind::GetMap,
        "prepare_map" => ReplyKind::PrepareMap,
        "weight" => ReplyKind::Weight,
        "servers_conn" => ReplyKind::ServersConn,
        "proc" => ReplyKind::Proc,
        "reload" => ReplyKind::Reload,
        "cli_level" => ReplyKind::CliLevel,
        _ => return None,
    })
}

/// Columns of `show stat` per version (`grammar/README.md` §2 and §4; 3.4: new columns from 3.3 on, read
/// by name like every other).
fn stat_width(version: &str) -> usize {
    match version {
        "2.6" => 128,
        "3.0" => 205,
        "3.2" => 207,
        _ => 213,
    }
}

/// Checks one `expect=data` recording with its typed parser; returns a short description.
fn check_data(version: &str, e: &Entry, known_backends: &BTreeSet<String>) {
    let at = format!("{version}/{}", e.file);
    let body = e.body.as_slice();
    match e.parser.as_str() {
        "info" if e.case.contains("typed") => {
            // `show info typed` is not the `Key: value` form; it is kept as text.
            assert!(matches!(classify(body), Outcome::Output(_)), "{at}");
            assert_eq!(
                vezasock::runtime::command::raw::for_command_line("show info typed"),
                ReplyKind::Text
            );
        }
        "info" => {
            let info = info::parse_info(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            // 3.4 adds `PatternsAdded`, `PatternsFreed` and `NbThreadGroups` at the end.
            let expected = match version {
                "2.6" => 69,
                "3.0" | "3.2" => 76,
                _ => 79,
            };
            assert_eq!(info.fields.len(), expected, "{at}: field count");
            let v = info.version().unwrap_or_default();
            assert!(v.starts_with(&format!("{version}.")), "{at}: version {v}");
            assert!(info.pid().is_some_and(|p| p > 0), "{at}: pid");
            assert!(info.uptime_sec().is_some(), "{at}: uptime");
            assert!(info.get("Build info").is_some() || version == "2.6" || info.node().is_some());
        }
        "stat" => {
            let table = stat::parse_stat(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            let names = table.columns.names();
            assert_eq!(names.len(), stat_width(version), "{at}: columns");
            for c in [
                "pxname",
                "svname",
                "status",
                "scur",
                "weight",
                "type",
                "check_status",
            ] {
                assert!(table.columns.position(c).is_some(), "{at}: no column {c}");
            }
            assert!(!table.rows.is_empty(), "{at}: no rows");
            for row in table.iter() {
                assert!(!row.pxname().unwrap_or_default().is_empty(), "{at}: pxname");
                assert!(row.kind().is_some(), "{at}: type of {:?}", row.svname());
                let status = row.status().unwrap_or_default();
                assert!(!status.is_empty(), "{at}: empty status");
            }
            // The lab's check text puts a comma and quotes in `last_chk` (CSV quoting case).
            if let Some(busy) = table.iter().find(|r| r.svname() == Some("busy")) {
                assert_eq!(busy.get("last_chk"), Some("Busy, \"really\" later"), "{at}");
            }
            if e.case.contains("maint") {
                assert!(
                    table.iter().any(|r| r.status() == Some("MAINT")),
                    "{at}: no MAINT"
                );
            }
            if e.case.contains("drain") {
                assert!(
                    table.iter().any(|r| r.status() == Some("DRAIN")),
                    "{at}: no DRAIN"
                );
            }
        }
        "servers_state" => {
            let state = servers::parse_servers_state(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(!state.rows.is_empty(), "{at}: no rows");
            for row in &state.rows {
                assert!(
                    known_backends.contains(&row.be_name),
                    "{at}: unknown backend {}",
                    row.be_name
                );
                assert!(row.check_status_name().is_some(), "{at}: check status");
            }
            // The text form parses back to the same rows, and prints the same lines.
            let again = servers::parse_servers_state(state.to_text().as_bytes())
                .unwrap_or_else(|e| panic!("{at}: to_text: {e}"));
            assert_eq!(again, state, "{at}: round trip");
            let recorded = String::from_utf8_lossy(body);
            for row in &state.rows {
                assert!(
                    recorded.contains(&format!("\n{}\n", row.to_line())),
                    "{at}: to_line"
                );
            }
            if e.case.contains("maint") {
                assert!(
                    state.rows.iter().any(|r| r.admin.is_maint()),
                    "{at}: no maint"
                );
            }
            if e.case.contains("drain") {
                assert!(
                    state.rows.iter().any(|r| r.admin.is_drain()),
                    "{at}: no drain"
                );
            }
        }
        "backends" => {
            let names = servers::parse_backends(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(
                names.iter().any(|n| n == "be_staging_api"),
                "{at}: {names:?}"
            );
        }
        "map_list" => {
            let maps = maps::parse_map_list(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(!maps.is_empty(), "{at}: no maps");
            for m in &maps {
                assert!(m.file.ends_with(".map"), "{at}: file {}", m.file);
                assert!(m.description.contains(&m.file), "{at}: {}", m.description);
                assert!(
                    m.curr_ver.is_some() && m.entry_cnt.is_some(),
                    "{at}: counters"
                );
            }
        }
        "map_entries" => {
            let entries = maps::parse_map_entries(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            for entry in &entries {
                assert!(entry.reference.starts_with("0x"), "{at}");
                assert!(!entry.key.is_empty(), "{at}");
            }
        }
        "get_map" => {
            let got = maps::parse_get_map(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(got.found, got.key.is_some(), "{at}: found vs key");
            assert_eq!(got.found, got.value.is_some(), "{at}: found vs value");
        }
        "weight" => {
            let w = servers::parse_weight(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(w.current <= 256 && w.initial <= 256, "{at}: {w:?}");
        }
        "servers_conn" => {
            let t = servers::parse_servers_conn(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(!t.rows.is_empty(), "{at}: no rows");
            assert!(t.columns.iter().any(|c| c == "used_cur"), "{at}");
            for row in &t.rows {
                assert!(
                    known_backends.contains(&row.backend),
                    "{at}: {}",
                    row.backend
                );
            }
        }
        "proc" => {
            let p = master::parse_proc(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(p.master.pid > 0, "{at}");
            assert!(p.master.version.starts_with(&format!("{version}.")), "{at}");
            assert!(
                !(p.workers.is_empty() && p.old_workers.is_empty()),
                "{at}: no worker at all"
            );
        }
        "reload" => {
            let r = parse_reload(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            let r = r.unwrap_or_else(|| panic!("{at}: a data reload has a report"));
            // The lab breaks the config for `master-reload-failed`: Success=0 and ALERT lines.
            let failed = e.case.contains("failed");
            assert_eq!(r.success, !failed, "{at}: Success=");
            if failed {
                assert!(
                    r.log.iter().any(|l| l.level.as_deref() == Some("ALERT")),
                    "{at}"
                );
            }
            assert!(
                !r.log.is_empty() && r.log.iter().all(|l| l.level.is_some()),
                "{at}"
            );
        }
        "cli_level" => {
            let level = parse_cli_level(body).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(level, CliLevel::Admin, "{at}");
        }
        _ => {
            // `parser: none` data (e.g. a `;` chain): plain output.
            assert!(matches!(classify(body), Outcome::Output(_)), "{at}");
        }
    }
}

#[test]
fn corpus_replies_parse() {
    for version in VERSIONS {
        let dir = corpus_dir().join(version);
        assert!(
            dir.is_dir(),
            "corpus directory {} is missing",
            dir.display()
        );
        let entries = load(version);
        // Backends named by `show backend` in this version, for the servers state check.
        let mut known_backends = BTreeSet::new();
        for e in entries
            .iter()
            .filter(|e| e.parser == "backends" && e.expect == "data")
        {
            if let Ok(names) = servers::parse_backends(&e.body) {
                known_backends.extend(names);
            }
        }
        assert!(
            !known_backends.is_empty(),
            "{version}: no `show backend` recording"
        );

        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &entries {
            let at = format!("{version}/{}", e.file);
            if e.mode == "prompt" || e.mode == "master-prompt" || e.expect == "stream" {
                *counts.entry("stream (codec)").or_default() += 1;
                continue;
            }
            // Whatever the recording, classifying it and every typed parser must not panic.
            let _ = classify(&e.body);
            if let Some(kind) = kind_of(&e.parser) {
                let _ = parse(kind, &e.body);
            }
            match e.expect.as_str() {
                "data" if e.case.contains("crlf") && matches!(version, "3.2" | "3.4") => {
                    // 3.2 and 3.4 answer a CRLF line with one extra empty reply (`…\n\n` + `\n`,
                    // `grammar/README.md` §1.1): two replies in one read, which the parser rejects. Without
                    // the stray `\n` it is an ordinary reply. vezasock never sends CRLF.
                    assert!(
                        e.body.ends_with(b"\n\n\n"),
                        "{at}: expected the stray `\\n`"
                    );
                    assert!(parse(ReplyKind::Weight, &e.body).is_err(), "{at}");
                    let first = &e.body[..e.body.len() - 1];
                    let stripped = Entry {
                        body: first.to_vec(),
                        ..e.clone()
                    };
                    check_data(version, &stripped, &known_backends);
                }
                "data" => check_data(version, e, &known_backends),
                "error" if e.parser == "reload" => {
                    let r = parse_reload(&e.body).unwrap_or_else(|err| panic!("{at}: {err}"));
                    let r = r.unwrap_or_else(|| panic!("{at}: no report"));
                    assert!(!r.success, "{at}: Success=0 expected");
                    assert!(
                        r.log.iter().any(|l| l.level.as_deref() == Some("ALERT")),
                        "{at}"
                    );
                }
                "error" => {
                    assert!(
                        classify(&e.body).is_error(),
                        "{at}: {:?}",
                        classify(&e.body)
                    );
                }
                "empty" => assert_eq!(classify(&e.body), Outcome::Empty, "{at}"),
                "info" => {
                    let outcome = classify(&e.body);
                    match severity_prefix(&e.body) {
                        // HAProxy tags `Unknown command` as info; we call it an error.
                        Some((_, rest)) if is_known_error(rest) => {
                            assert!(outcome.is_error(), "{at}: {outcome:?}")
                        }
                        Some(_) => assert!(matches!(outcome, Outcome::Info { .. }), "{at}"),
                        None => assert!(matches!(outcome, Outcome::Output(_)), "{at}"),
                    }
                    if let Some(kind) = kind_of(&e.parser) {
                        let parsed = parse(kind, &e.body);
                        assert!(parsed.is_ok(), "{at}: {parsed:?}");
                    }
                    if e.parser == "cli_level" && e.mode == "operator" {
                        assert_eq!(parse_cli_level(&e.body), Ok(CliLevel::Operator), "{at}");
                    }
                }
                "closed" => {
                    // 2.6 `reload` answers nothing: the caller confirms through `show proc`.
                    if e.parser == "reload" {
                        assert_eq!(parse_reload(&e.body), Ok(None), "{at}");
                    }
                }
                other => panic!("{at}: unknown expect {other:?}"),
            }
            *counts.entry(leak(&e.expect)).or_default() += 1;
        }
        let total: usize = counts.values().sum();
        println!("corpus {version}: {total} recordings {counts:?}");
        assert!(
            counts.get("data").copied().unwrap_or(0) > 20,
            "{version}: too few dumps"
        );
    }
}

/// Interns the few `expect` strings for the counts map.
fn leak(s: &str) -> &'static str {
    match s {
        "data" => "data",
        "error" => "error",
        "empty" => "empty",
        "info" => "info",
        "closed" => "closed",
        _ => "other",
    }
}
