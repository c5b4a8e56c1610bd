//! Commands, both kinds. Typed runtime commands: the exact line of each, escaping, refusals,
//! and a property test that no key or value can produce a line HAProxy would read as anything
//! but the intended command. And the `vezasock` commands where no HAProxy is needed (the `cli`
//! section at the end): hostile flag values, closed pipes, exit codes of bad input, the
//! history cap.

use proptest::prelude::*;
use vezasock::runtime::command::cli::{SetSeverityOutput, ShowCliLevel};
use vezasock::runtime::command::info::ShowInfo;
use vezasock::runtime::command::maps::{
    AddMap, ClearMap, CommitMap, DelMap, GetMap, PrepareMap, SetMap, ShowMap, ShowMaps,
};
use vezasock::runtime::command::master::{Reload, ShowProc};
use vezasock::runtime::command::servers::{
    GetWeight, SetServerState, SetServerWeight, ShowBackend, ShowServersConn, ShowServersState,
    ShutdownSessionsServer,
};
use vezasock::runtime::command::stat::ShowStat;
use vezasock::runtime::command::{
    escape, validate, AdminState, MapKey, MapRef, MapValue, Name, RawLine, ReplyKind,
    RuntimeCommand, StatFilter, WeightChange as Weight, MAX_LINE,
};
use vezasock::runtime::Error;

/// A model of HAProxy's CLI tokenizer (`cli.c`): split the line into commands on unescaped
/// `;` (a backslash skips the next byte), each command into words on unescaped spaces and
/// tabs, then replace every `\x` by `x`.
fn haproxy_tokenize(line: &str) -> Vec<Vec<String>> {
    let bytes = line.as_bytes();
    let mut commands = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b';' => {
                commands.push(&bytes[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    commands.push(&bytes[start.min(bytes.len())..]);
    commands
        .into_iter()
        .map(|command| {
            let mut words = Vec::new();
            let mut word: Vec<u8> = Vec::new();
            let mut in_word = false;
            let mut j = 0;
            while j < command.len() {
                let b = command[j];
                match b {
                    b' ' | b'\t' => {
                        if in_word {
                            words.push(String::from_utf8_lossy(&word).into_owned());
                            word.clear();
                            in_word = false;
                        }
                        j += 1;
                    }
                    b'\\' => {
                        in_word = true;
                        if let Some(&next) = command.get(j + 1) {
                            word.push(next);
                        }
                        j += 2;
                    }
                    _ => {
                        in_word = true;
                        word.push(b);
                        j += 1;
                    }
                }
            }
            if in_word {
                words.push(String::from_utf8_lossy(&word).into_owned());
            }
            words
        })
        .collect()
}

fn words(list: &[&str]) -> Vec<Vec<String>> {
    vec![list.iter().map(|w| w.to_string()).collect()]
}

/// The line a typed command sends, after the checks run before sending.
fn line(command: impl RuntimeCommand) -> String {
    validate(&command).unwrap();
    command.line()
}

#[test]
fn exact_lines_of_every_command() {
    let cases: Vec<(String, &str)> = vec![
        (line(ShowInfo), "show info"),
        (line(ShowStat { filter: None }), "show stat"),
        (
            line(ShowStat {
                filter: Some(StatFilter::servers_of("be_app1").unwrap()),
            }),
            "show stat be_app1 4 -1",
        ),
        (
            line(ShowServersState::new(None).unwrap()),
            "show servers state",
        ),
        (
            line(ShowServersState::new(Some("be_app1")).unwrap()),
            "show servers state be_app1",
        ),
        (line(ShowBackend), "show backend"),
        (line(ShowMaps), "show map"),
        (
            line(ShowMap::new("/etc/haproxy/active-color.map", None).unwrap()),
            "show map /etc/haproxy/active-color.map",
        ),
        (
            line(ShowMap::new("/etc/haproxy/active-color.map", Some(4)).unwrap()),
            "show map @4 /etc/haproxy/active-color.map",
        ),
        (line(ShowMap::new("#4", None).unwrap()), "show map #4"),
        (
            line(GetMap::new("hosts.map", "staging.veza.fr").unwrap()),
            "get map hosts.map staging.veza.fr",
        ),
        (
            line(SetMap::new("colors.map", "staging", "green").unwrap()),
            "set map colors.map staging green",
        ),
        (
            line(AddMap::new("colors.map", None, "prod", "blue").unwrap()),
            "add map colors.map prod blue",
        ),
        (
            line(AddMap::new("colors.map", Some(7), "prod", "blue").unwrap()),
            "add map @7 colors.map prod blue",
        ),
        (
            line(DelMap::new("colors.map", "prod").unwrap()),
            "del map colors.map prod",
        ),
        (
            line(ClearMap::new("colors.map", None).unwrap()),
            "clear map colors.map",
        ),
        (
            line(ClearMap::new("colors.map", Some(3)).unwrap()),
            "clear map @3 colors.map",
        ),
        (
            line(PrepareMap::new("colors.map").unwrap()),
            "prepare map colors.map",
        ),
        (
            line(CommitMap::new("colors.map", 3).unwrap()),
            "commit map @3 colors.map",
        ),
        (
            line(SetServerState::new("be_app1", "blue", AdminState::Ready).unwrap()),
            "set server be_app1/blue state ready",
        ),
        (
            line(SetServerState::new("be_app1", "blue", AdminState::Drain).unwrap()),
            "set server be_app1/blue state drain",
        ),
        (
            line(SetServerState::new("be_app1", "blue", AdminState::Maint).unwrap()),
            "set server be_app1/blue state maint",
        ),
        (
            line(SetServerWeight::new("be_app1", "blue", Weight::Absolute(256)).unwrap()),
            "set server be_app1/blue weight 256",
        ),
        (
            line(SetServerWeight::new("be_app1", "blue", Weight::Percent(50)).unwrap()),
            "set server be_app1/blue weight 50%",
        ),
        (
            line(GetWeight::new("be_app1", "blue").unwrap()),
            "get weight be_app1/blue",
        ),
        (
            line(ShowServersConn::new(None).unwrap()),
            "show servers conn",
        ),
        (
            line(ShowServersConn::new(Some("be_app1")).unwrap()),
            "show servers conn be_app1",
        ),
        (
            line(ShutdownSessionsServer::new("be_app1", "blue").unwrap()),
            "shutdown sessions server be_app1/blue",
        ),
        (line(ShowCliLevel), "show cli level"),
        (line(SetSeverityOutput), "set severity-output number"),
        (line(ShowProc), "show proc"),
        (line(Reload), "reload"),
    ];
    for (sent, line) in cases {
        assert_eq!(sent, line);
    }
    // An operator's line is sent as typed, `;` chain included.
    let raw = RawLine::new("get weight a/b; show backend").unwrap();
    assert_eq!(raw.as_str(), "get weight a/b; show backend");
}

#[test]
fn reply_kinds_and_flags() {
    let set = SetMap::new("m", "k", "v").unwrap();
    assert_eq!(set.kind(), ReplyKind::Empty);
    assert!(!set.idempotent());
    assert_eq!(ShowInfo.kind(), ReplyKind::Info);
    assert!(ShowInfo.idempotent());
    assert_eq!(PrepareMap::new("m").unwrap().kind(), ReplyKind::PrepareMap);
    assert!(!PrepareMap::new("m").unwrap().idempotent());
    assert!(!Reload.idempotent());
    assert!(Reload.master());
    assert!(ShowProc.master());
    assert!(!ShowInfo.master());
    // Raw lines: kind from the text (never resent nor "expects empty": `command::raw`'s
    // unit test reads their wire form).
    let raw = RawLine::new("show servers state").unwrap();
    assert_eq!(raw.reply_kind(), ReplyKind::ServersState);
    assert!(RawLine::new("@!1234 show info")
        .unwrap()
        .is_master_command());
    assert_eq!(RawLine::new("a;b\\;c;d").unwrap().command_count(), 3);
}

#[test]
fn escapes_spaces_tabs_semicolons_and_backslashes() {
    assert_eq!(escape("a b\tc;d\\e"), "a\\ b\\\tc\\;d\\\\e");
    let cmd = SetMap::new("m", "k", "a b;c\\d\te").unwrap();
    assert_eq!(cmd.line(), "set map m k a\\ b\\;c\\\\d\\\te");
    assert_eq!(
        haproxy_tokenize(&cmd.line()),
        words(&["set", "map", "m", "k", "a b;c\\d\te"])
    );
    // HAProxy's tokenizer (`grammar/README.md` §1.1): `a\;b` stores `a;b`, `a\\b` stores `a\b`.
    assert_eq!(MapValue::new("a;b").unwrap().escaped(), "a\\;b");
    assert_eq!(MapValue::new("a\\b").unwrap().escaped(), "a\\\\b");
    // Quotes are not special for HAProxy, so they are sent as they are.
    assert_eq!(MapValue::new("\"x y\"").unwrap().escaped(), "\"x\\ y\"");
}

fn refused(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn refuses_what_cannot_be_sent_safely() {
    // Names: HAProxy's charset only.
    for bad in [
        "",
        "a b",
        "a/b",
        "a;b",
        "a\nb",
        "#x",
        "a\\b",
        "é",
        &"x".repeat(513),
    ] {
        refused(Name::new("backend", bad));
    }
    Name::new("backend", "be_app-1.v2:x").unwrap();
    // Map references.
    for bad in [
        "", "a b", "a;b", "a\\b", "@1", "#", "#x", "#1a", "a\nb", "a\tb", "<<m", "m<<",
    ] {
        refused(MapRef::new(bad));
    }
    MapRef::new("#12").unwrap();
    MapRef::new("/etc/haproxy/maps/hosts.map").unwrap();
    // Keys: no whitespace at all, no control characters, no leading '#', no payload marker.
    for bad in [
        "", "a b", "a\tb", "a\nb", "a\rb", "a\0b", "a\u{1}b", "a\u{7f}b", "#0x1234", "#k", "<<",
        "k<<", "a\u{a0}b",
    ] {
        refused(MapKey::new(bad));
    }
    assert_eq!(MapKey::new("a;b\\c").unwrap().escaped(), "a\\;b\\\\c");
    // Values: spaces and tabs are escaped, other control characters refused.
    for bad in ["", "a\nb", "a\rb", "a\0b", "a\u{1b}b", "<<EOF", "x <<"] {
        refused(MapValue::new(bad));
    }
    refused(MapValue::new(&" ".repeat(3501)));
    MapValue::new(&"v".repeat(7000)).unwrap();
    // Weights.
    refused(SetServerWeight::new("b", "s", Weight::Absolute(257)));
    // Raw lines.
    for bad in [
        "",
        "   ",
        "show info\nshow stat",
        "a\rb",
        "a\0b",
        "add map m <<",
    ] {
        refused(RawLine::new(bad));
    }
    refused(RawLine::new(&"x".repeat(MAX_LINE - 1)));
    RawLine::new(&"x".repeat(MAX_LINE - 2)).unwrap();
    RawLine::new("get weight a/b; show backend").unwrap();
}

#[test]
fn the_longest_typed_line_fits_the_buffer() {
    let map = format!("/{}", "m".repeat(4095));
    let key = "k".repeat(4096);
    let value = "v".repeat(7000);
    let cmd = AddMap::new(&map, Some(u32::MAX), &key, &value).unwrap();
    assert!(cmd.line().len() + 1 < MAX_LINE);
    validate(&cmd).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any key and value: refused, or one command that tokenizes back to the same words.
    #[test]
    fn any_key_value_is_refused_or_round_trips(key in any::<String>(), value in any::<String>()) {
        for (result, head) in [
            (SetMap::new("colors.map", &key, &value).map(|c| c.line()), &["set", "map", "colors.map"][..]),
            (AddMap::new("colors.map", Some(3), &key, &value).map(|c| c.line()), &["add", "map", "@3", "colors.map"][..]),
        ] {
            let Ok(line) = result else { continue };
            prop_assert!(line.len() + 1 < MAX_LINE);
            prop_assert!(!line.contains(['\n', '\r', '\0']));
            prop_assert!(!line.trim_end().ends_with("<<"));
            let parsed = haproxy_tokenize(&line);
            prop_assert_eq!(parsed.len(), 1, "{:?} is several commands", line);
            let mut expected: Vec<String> = head.iter().map(|w| w.to_string()).collect();
            expected.extend([key.clone(), value.clone()]);
            prop_assert_eq!(&parsed[0], &expected, "line {:?}", line);
        }
    }

    /// Strings made of the characters that matter most to the tokenizer.
    #[test]
    fn tricky_characters_are_refused_or_round_trip(
        key in "[a-z;\\\\# \t<>@]{1,12}",
        value in "[a-z;\\\\# \t<>@\"'\n]{1,24}",
    ) {
        if let Ok(cmd) = SetMap::new("m", &key, &value) {
            let parsed = haproxy_tokenize(&cmd.line());
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0], &vec!["set".to_string(), "map".into(), "m".into(), key.clone(), value.clone()]);
        }
        if let Ok(cmd) = DelMap::new("m", &key) {
            let parsed = haproxy_tokenize(&cmd.line());
            prop_assert_eq!(&parsed[0], &vec!["del".to_string(), "map".into(), "m".into(), key.clone()]);
        }
    }

    /// Names: accepted ones tokenize to themselves inside `backend/server`.
    #[test]
    fn any_name_is_refused_or_one_word(backend in any::<String>(), server in "[ -~]{0,10}") {
        if let Ok(cmd) = GetWeight::new(&backend, &server) {
            let parsed = haproxy_tokenize(&cmd.line());
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0], &vec!["get".to_string(), "weight".into(), format!("{backend}/{server}")]);
            prop_assert_eq!(backend.matches('/').count() + server.matches('/').count(), 0);
        }
    }
}

// ---- the `vezasock` binary, where no HAProxy is needed ----

mod cli {
    use std::path::{Path, PathBuf};
    use std::process::{Command as Process, Output, Stdio};

    /// A temp dir with every runtime path under it (nothing listens on the sockets).
    struct Dir {
        dir: tempfile::TempDir,
    }

    impl Dir {
        fn new() -> Dir {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
            std::fs::create_dir_all(dir.path().join("state"))
                .unwrap_or_else(|e| panic!("state dir: {e}"));
            Dir { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// `vezasock ARGS` with every path in this dir, stdout and stderr captured.
        fn command(&self, args: &[&str]) -> Process {
            let mut cmd = Process::new(env!("CARGO_BIN_EXE_vezasock"));
            cmd.args(args)
                .env_remove("VEZASOCK_CONFIG")
                .env_remove("RUST_LOG")
                .env("VEZASOCK_HAPROXY_CONFIG", self.path("haproxy.cfg"))
                .env("VEZASOCK_MAPS_DIR", self.path("maps"))
                .env("VEZASOCK_ADMIN_SOCKET", self.path("admin.sock"))
                .env("VEZASOCK_OPERATOR_SOCKET", self.path("operator.sock"))
                .env("VEZASOCK_MASTER_SOCKET", self.path("master.sock"))
                .env("VEZASOCK_SERVER_STATE_FILE", self.path("server-state"))
                .env("VEZASOCK_STATE_DIR", self.path("state"))
                .env("VEZASOCK_PID_FILE", self.path("haproxy.pid"))
                .stdin(Stdio::null());
            cmd
        }

        fn run(&self, args: &[&str]) -> Output {
            self.command(args)
                .output()
                .unwrap_or_else(|e| panic!("run vezasock: {e}"))
        }

        /// Runs with stdout a pipe whose reader is already gone, as `| head -1` leaves it once
        /// head has its line.
        fn run_closed_stdout(&self, args: &[&str]) -> Output {
            let mut child = self
                .command(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn vezasock: {e}"));
            drop(child.stdout.take());
            child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("wait vezasock: {e}"))
        }

        fn state_files(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.path("state"))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// Exit 2 with clap's message naming `flag`, and no panic.
    fn refused(out: &Output, flag: &str, what: &str) {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(
            err.contains(flag),
            "{what}: the message names {flag}: {err}"
        );
    }

    const HOSTILE_DURATIONS: [&str; 9] = [
        "inf",
        "nan",
        "-1s",
        "1e300",
        "1e19",
        "99999999999999999999",
        "18446744073709551616s",
        "8d",
        "",
    ];

    #[test]
    fn every_duration_flag_refuses_hostile_values_with_exit_2() {
        let dir = Dir::new();
        let cases: [(&[&str], &str); 7] = [
            (&["switch", "staging", "green"], "--wait-healthy"),
            (
                &["switch", "staging", "green", "--drain-old"],
                "--drain-timeout",
            ),
            (&["switch", "staging", "green"], "--lock-timeout"),
            (&["rollback", "staging"], "--wait-healthy"),
            (&["apply"], "--lock-timeout"),
            (&["drain", "staging"], "--wait"),
            (&["maint", "staging"], "--lock-timeout"),
        ];
        for (args, flag) in cases {
            for value in HOSTILE_DURATIONS {
                // `--flag=value`, so that `-1s` reaches the parser instead of reading as a flag.
                let pair = format!("{flag}={value}");
                let mut argv = args.to_vec();
                argv.push(&pair);
                let out = dir.run(&argv);
                refused(&out, flag, &format!("{argv:?}"));
            }
        }
        assert!(dir.state_files().is_empty(), "{:?}", dir.state_files());
    }

    /// `exec --timeout inf` panicked converting it to a Duration; `1e19` overflowed an Instant.
    #[test]
    fn exec_timeout_refuses_what_panicked_and_takes_durations() {
        let dir = Dir::new();
        let socket = dir.path("admin.sock").display().to_string();
        // exec's `--master` reads VEZASOCK_MASTER_SOCKET, and it excludes `--socket`.
        let exec = |timeout: &str| {
            dir.command(&["exec", "--socket", &socket, timeout, "--", "show info"])
                .env_remove("VEZASOCK_MASTER_SOCKET")
                .output()
                .unwrap_or_else(|e| panic!("run vezasock: {e}"))
        };
        for value in HOSTILE_DURATIONS {
            refused(&exec(&format!("--timeout={value}")), "--timeout", value);
        }
        // Accepted: nothing listens, so the connect fails (exit 3), without a panic.
        for value in ["10", "1.5", "500ms", "2m", "7d"] {
            let out = exec(&format!("--timeout={value}"));
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{value}: {err}");
            assert!(!err.contains("panicked"), "{value}: {err}");
        }
    }

    #[test]
    fn apply_lock_timeout_takes_a_duration_and_plain_seconds() {
        let dir = Dir::new();
        for value in ["30s", "2m", "45"] {
            let out = dir.run(&["apply", "--dry-run", "--lock-timeout", value]);
            let err = text(&out.stderr);
            // No HAProxy here: whatever apply then says, the flag itself was accepted.
            assert!(!err.contains("--lock-timeout"), "{value}: {err}");
            assert_ne!(out.status.code(), Some(2), "{value}: {err}");
        }
        let help = text(&dir.run(&["apply", "--help"]).stdout);
        assert!(help.contains("--lock-timeout <DURATION>"), "{help}");
        assert!(help.contains("at most 7d"), "{help}");
    }

    /// A webhook URL refused by `--notify-webhook` or `VEZASOCK_NOTIFY_WEBHOOK` is exit 2 naming
    /// the flag; no part of the URL is printed (its path is where a webhook's secret usually is).
    #[test]
    fn a_bad_webhook_url_is_refused_without_printing_any_of_it() {
        let dir = Dir::new();
        let secret = "s3cr3tT0kenXYZ";
        let urls = [
            format!("ftp://hooks.example.org/services/T0/B0/{secret}"),
            format!("https://hooks.example.org:0/services/T0/B0/{secret}"),
            format!("http://hooks.example.org:99999/{secret}"),
            format!("http://hooks.example.org:{secret}"),
            format!("http://user:{secret}@hooks.example.org/x"),
            format!("http://hooks.example.org/{secret} x"),
            format!("hooks.example.org/{secret}"),
        ];
        for url in &urls {
            let flag = dir.run(&["switch", "staging", "green", "--notify-webhook", url]);
            let env = dir
                .command(&["switch", "staging", "green"])
                .env("VEZASOCK_NOTIFY_WEBHOOK", url)
                .output()
                .unwrap_or_else(|e| panic!("run vezasock: {e}"));
            for (how, out) in [("flag", flag), ("env", env)] {
                refused(&out, "--notify-webhook", &format!("{how} {url}"));
                let err = text(&out.stderr);
                assert!(
                    !err.contains(secret) && !err.contains("hooks.example"),
                    "{how} {url}: printed: {err}"
                );
            }
        }
        assert!(dir.state_files().is_empty(), "{:?}", dir.state_files());
    }

    #[test]
    fn a_sha_beyond_the_bound_is_refused_before_anything_happens() {
        let dir = Dir::new();
        let long = "a".repeat(100_000);
        for (args, flag) in [
            (
                vec!["switch", "staging", "green", "--sha", long.as_str()],
                "--sha",
            ),
            (
                vec!["switch", "staging", "green", "--sha", "abc def"],
                "--sha",
            ),
            (vec!["switch", "staging", "green", "--sha", "-"], "--sha"),
            (vec!["rollback", "staging", "--to", long.as_str()], "--to"),
            (vec!["history", long.as_str()], "ENV"),
            (
                vec!["drain", "staging", "--server", long.as_str()],
                "--server",
            ),
            (vec!["status", "a;b"], "ENV"),
        ] {
            let out = dir.run(&args);
            refused(&out, flag, &format!("{flag} {}", args.len()));
            // The refusal quotes the start of the value, not 100 KB of it.
            assert!(out.stderr.len() < 1_000, "{} bytes", out.stderr.len());
        }
        assert!(dir.state_files().is_empty(), "{:?}", dir.state_files());
        let help = text(&dir.run(&["switch", "--help"]).stdout);
        assert!(help.contains("1 to 64 characters"), "{help}");
    }

    #[test]
    fn a_bad_topology_is_exit_2_on_every_command() {
        let dir = Dir::new();
        let bad = dir.path("bad.toml");
        std::fs::write(&bad, "name = \"t\"\n[[component]]\nname = \"a b\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path("missing.toml");
        for config in [&bad, &missing] {
            let config = config.display().to_string();
            for args in [
                vec!["render"],
                vec!["check"],
                vec!["plan"],
                vec!["plan", "--json"],
                vec!["apply"],
                vec!["status"],
                vec!["history", "staging"],
                vec!["switch", "staging", "green"],
                vec!["rollback", "staging"],
                vec!["drain", "staging"],
                vec!["maint", "staging"],
                vec!["ready", "staging"],
            ] {
                let mut argv = args.clone();
                argv.extend(["--config", config.as_str()]);
                let out = dir.run(&argv);
                let err = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{argv:?}: {err}");
                assert!(err.contains(&config), "{argv:?} names the file: {err}");
            }
        }
    }

    /// Runs `vezasock ARGS`, killing it if it has not ended within `limit` (a read that never
    /// ends must fail the test, not hang it).
    fn run_within(dir: &Dir, args: &[&str], limit: std::time::Duration) -> Option<Output> {
        let mut child = dir
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn vezasock: {e}"));
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                return child.wait_with_output().ok();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Names that are not a file to read: endless devices, a FIFO nobody writes, a directory.
    fn unreadable_names(dir: &Dir) -> Vec<PathBuf> {
        let fifo = dir.path("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        assert!(made.success(), "mkfifo");
        vec![
            PathBuf::from("/dev/zero"),
            PathBuf::from("/dev/urandom"),
            fifo,
            dir.path("state"),
        ]
    }

    /// Every file the operator names, and the state files vezasock reads, is refused with
    /// exit 2 and a message naming it when it is a device, a FIFO or a directory: nothing
    /// spins, blocks or fills memory. The time bound only stops a hang (5 s, far above the
    /// few milliseconds a refusal takes).
    #[test]
    fn a_name_that_is_not_a_regular_file_is_exit_2_on_every_file_flag() {
        let dir = Dir::new();
        let limit = std::time::Duration::from_secs(5);
        for name in unreadable_names(&dir) {
            let shown = name.display().to_string();
            let fleet = dir.path("fleet.toml");
            std::fs::write(
                &fleet,
                format!("[[edge]]\nname = \"a\"\nconfig = \"{shown}\"\n"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let fleet = fleet.display().to_string();
            let cases: Vec<Vec<&str>> = vec![
                vec!["render", "--config", &shown],
                vec!["status", "--config", &shown],
                vec!["switch", "staging", "green", "--config", &shown],
                vec!["status", "--fleet", &shown],
                vec!["switch", "staging", "green", "--fleet", &shown],
                vec!["status", "--fleet", &fleet],
                vec!["cert", "update", &shown],
            ];
            for args in cases {
                let out = run_within(&dir, &args, limit)
                    .unwrap_or_else(|| panic!("{args:?} did not end within {limit:?}"));
                let err = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
                assert!(err.contains(&shown), "{args:?} names {shown}: {err}");
                assert!(err.contains("not a regular file"), "{args:?}: {err}");
            }
        }
    }

    /// The state files and the map file vezasock reads are bounded the same way: a history or
    /// a map file replaced by a link to an endless device is exit 2, read never.
    #[test]
    fn a_state_file_that_is_not_a_regular_file_is_exit_2() {
        let dir = Dir::new();
        std::fs::create_dir_all(dir.path("maps")).unwrap_or_else(|e| panic!("{e}"));
        let limit = std::time::Duration::from_secs(5);
        let history = dir.path("state").join("active-color-staging.history");
        let map = dir.path("maps").join("active-color.map");
        for (file, args) in [
            (&history, vec!["history", "staging"]),
            (&map, vec!["render"]),
        ] {
            std::os::unix::fs::symlink("/dev/zero", file).unwrap_or_else(|e| panic!("{e}"));
            let out = run_within(&dir, &args, limit)
                .unwrap_or_else(|| panic!("{args:?} did not end within {limit:?}"));
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(&file.display().to_string()), "{args:?}: {err}");
            std::fs::remove_file(file).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// A topology file above the read bound is refused before it is parsed.
    #[test]
    fn a_topology_file_above_the_bound_is_exit_2() {
        let dir = Dir::new();
        let big = dir.path("big.toml");
        std::fs::write(&big, vec![b'#'; 2 << 20]).unwrap_or_else(|e| panic!("{e}"));
        let shown = big.display().to_string();
        let out = dir.run(&["render", "--config", &shown]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("larger than"), "{err}");
    }

    /// A maps dir HAProxy would read as two converter arguments is refused by check as by
    /// apply, before anything runs.
    #[test]
    fn check_and_apply_refuse_a_maps_dir_with_haproxy_syntax() {
        let dir = Dir::new();
        for command in ["check", "apply", "render", "switch"] {
            for bad in [
                "/etc/ha,proxy/maps",
                "/etc/haproxy/maps)",
                "/run/$USER/maps",
            ] {
                let mut args = vec![command];
                if command == "switch" {
                    args.extend(["staging", "green"]);
                }
                args.extend(["--maps-dir", bad]);
                let out = dir.run(&args);
                let err = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
                assert!(err.contains("paths.maps_dir"), "{args:?}: {err}");
            }
        }
    }

    #[test]
    fn render_to_a_closed_pipe_ends_quietly_with_exit_0() {
        let dir = Dir::new();
        let out = dir.run_closed_stdout(&["render"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.is_empty(), "a closed pipe is silent: {err}");
        for args in [
            &["completions", "bash"][..],
            &["man"],
            &["version"],
            &["plan"],
            &["history", "staging"],
        ] {
            let out = dir.run_closed_stdout(args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
        }
    }

    /// A history file of 100,000 lines (another tool wrote it): the 5 kept entries are shown,
    /// stderr says how many the file holds, and a closed pipe still ends with exit 0.
    fn write_history(dir: &Path, lines: usize) {
        let mut text = String::new();
        for i in 0..lines {
            let color = if i % 2 == 0 { "green" } else { "blue" };
            text.push_str(&format!("{color} sha{i:06} 2026-11-30T10:00:00Z ci\n"));
        }
        std::fs::write(dir.join("active-color-staging.history"), text)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn history_prints_at_most_the_kept_entries_and_says_when_the_file_holds_more() {
        let dir = Dir::new();
        write_history(&dir.path("state"), 100_000);
        let out = dir.run(&["history", "staging"]);
        let (stdout, err) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{err}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 6, "a header and 5 entries: {stdout}");
        assert!(lines[0].starts_with("COLOR  SHA"), "{stdout}");
        assert!(lines[0].contains("TIME"), "{stdout}");
        assert!(lines[1].contains("sha000000"), "newest first: {stdout}");
        assert!(lines[5].contains("sha000004"), "{stdout}");
        assert!(err.contains("holds 100000 entries"), "{err}");
        assert!(err.contains("showing the 5 newest"), "{err}");

        let out = dir.run(&["history", "staging", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
        let entries = v.as_array().cloned().unwrap_or_default();
        assert_eq!(entries.len(), 5, "{v}");
        assert_eq!(entries[0]["sha"], "sha000000", "{v}");
        assert_eq!(
            entries[0]["time"], "2026-11-30T10:00:00Z",
            "the key of docs/reference.md: {v}"
        );
        assert!(entries[0].get("when").is_none(), "{v}");
        assert!(text(&out.stderr).contains("holds 100000 entries"));

        let out = dir.run_closed_stdout(&["history", "staging"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(!text(&out.stderr).contains("panicked"));

        // Five or fewer: no note.
        write_history(&dir.path("state"), 3);
        let out = dir.run(&["history", "staging"]);
        assert_eq!(text(&out.stdout).lines().count(), 4);
        assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    }
}
