//! Typed commands: the exact line of each, escaping, refusals, and a property test that no
//! key or value can produce a line HAProxy would read as anything but the intended command.

use proptest::prelude::*;
use vezasock::runtime::command::{
    escape, AdminState, Command, MapKey, MapRef, MapValue, Name, RawLine, StatFilter,
    WeightChange as Weight, MAX_LINE,
};
use vezasock::runtime::parse::ReplyKind;
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

#[test]
fn exact_lines_of_every_command() {
    let cases: Vec<(Command, &str)> = vec![
        (Command::ShowInfo, "show info"),
        (Command::ShowStat { filter: None }, "show stat"),
        (
            Command::ShowStat {
                filter: Some(StatFilter::servers_of("be_app1").unwrap()),
            },
            "show stat be_app1 4 -1",
        ),
        (
            Command::show_servers_state(None).unwrap(),
            "show servers state",
        ),
        (
            Command::show_servers_state(Some("be_app1")).unwrap(),
            "show servers state be_app1",
        ),
        (Command::ShowBackend, "show backend"),
        (Command::ShowMaps, "show map"),
        (
            Command::show_map("/etc/haproxy/active-color.map", None).unwrap(),
            "show map /etc/haproxy/active-color.map",
        ),
        (
            Command::show_map("/etc/haproxy/active-color.map", Some(4)).unwrap(),
            "show map @4 /etc/haproxy/active-color.map",
        ),
        (Command::show_map("#4", None).unwrap(), "show map #4"),
        (
            Command::get_map("hosts.map", "staging.veza.fr").unwrap(),
            "get map hosts.map staging.veza.fr",
        ),
        (
            Command::set_map("colors.map", "staging", "green").unwrap(),
            "set map colors.map staging green",
        ),
        (
            Command::add_map("colors.map", None, "prod", "blue").unwrap(),
            "add map colors.map prod blue",
        ),
        (
            Command::add_map("colors.map", Some(7), "prod", "blue").unwrap(),
            "add map @7 colors.map prod blue",
        ),
        (
            Command::del_map("colors.map", "prod").unwrap(),
            "del map colors.map prod",
        ),
        (
            Command::clear_map("colors.map", None).unwrap(),
            "clear map colors.map",
        ),
        (
            Command::clear_map("colors.map", Some(3)).unwrap(),
            "clear map @3 colors.map",
        ),
        (
            Command::prepare_map("colors.map").unwrap(),
            "prepare map colors.map",
        ),
        (
            Command::commit_map("colors.map", 3).unwrap(),
            "commit map @3 colors.map",
        ),
        (
            Command::set_server_state("be_app1", "blue", AdminState::Ready).unwrap(),
            "set server be_app1/blue state ready",
        ),
        (
            Command::set_server_state("be_app1", "blue", AdminState::Drain).unwrap(),
            "set server be_app1/blue state drain",
        ),
        (
            Command::set_server_state("be_app1", "blue", AdminState::Maint).unwrap(),
            "set server be_app1/blue state maint",
        ),
        (
            Command::set_server_weight("be_app1", "blue", Weight::Absolute(256)).unwrap(),
            "set server be_app1/blue weight 256",
        ),
        (
            Command::set_server_weight("be_app1", "blue", Weight::Percent(50)).unwrap(),
            "set server be_app1/blue weight 50%",
        ),
        (
            Command::get_weight("be_app1", "blue").unwrap(),
            "get weight be_app1/blue",
        ),
        (
            Command::show_servers_conn(None).unwrap(),
            "show servers conn",
        ),
        (
            Command::show_servers_conn(Some("be_app1")).unwrap(),
            "show servers conn be_app1",
        ),
        (
            Command::shutdown_sessions_server("be_app1", "blue").unwrap(),
            "shutdown sessions server be_app1/blue",
        ),
        (Command::ShowCliLevel, "show cli level"),
        (Command::SetSeverityOutput, "set severity-output number"),
        (Command::ShowProc, "show proc"),
        (Command::Reload, "reload"),
        (
            Command::raw("get weight a/b; show backend").unwrap(),
            "get weight a/b; show backend",
        ),
    ];
    for (command, line) in cases {
        assert_eq!(command.line(), line);
        assert_eq!(command.to_string(), line);
        command.validate().unwrap();
    }
}

#[test]
fn reply_kinds_and_flags() {
    let set = Command::set_map("m", "k", "v").unwrap();
    assert_eq!(set.reply_kind(), ReplyKind::Empty);
    assert!(set.expects_empty());
    assert!(!set.is_idempotent());
    assert_eq!(Command::ShowInfo.reply_kind(), ReplyKind::Info);
    assert!(Command::ShowInfo.is_idempotent());
    assert!(!Command::ShowInfo.expects_empty());
    assert_eq!(
        Command::prepare_map("m").unwrap().reply_kind(),
        ReplyKind::PrepareMap
    );
    assert!(!Command::prepare_map("m").unwrap().is_idempotent());
    assert!(!Command::Reload.is_idempotent());
    assert!(Command::Reload.is_master_command());
    assert!(Command::ShowProc.is_master_command());
    assert!(!Command::ShowInfo.is_master_command());
    // Raw lines: kind from the text, never assumed safe to resend, never "expects empty".
    let raw = Command::raw("show servers state").unwrap();
    assert_eq!(raw.reply_kind(), ReplyKind::ServersState);
    assert!(!raw.is_idempotent());
    assert!(!Command::raw("set map m k v").unwrap().expects_empty());
    assert!(Command::raw("@!1234 show info")
        .unwrap()
        .is_master_command());
    assert_eq!(Command::raw("a;b\\;c;d").unwrap().command_count(), 3);
}

#[test]
fn escapes_spaces_tabs_semicolons_and_backslashes() {
    assert_eq!(escape("a b\tc;d\\e"), "a\\ b\\\tc\\;d\\\\e");
    let cmd = Command::set_map("m", "k", "a b;c\\d\te").unwrap();
    assert_eq!(cmd.line(), "set map m k a\\ b\\;c\\\\d\\\te");
    assert_eq!(
        haproxy_tokenize(&cmd.line()),
        words(&["set", "map", "m", "k", "a b;c\\d\te"])
    );
    // The research's examples: `a\;b` stores `a;b`, `a\\b` stores `a\b`.
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
    refused(Command::set_server_weight("b", "s", Weight::Absolute(257)));
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
    let cmd = Command::add_map(&map, Some(u32::MAX), &key, &value).unwrap();
    assert!(cmd.line().len() + 1 < MAX_LINE);
    cmd.validate().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any key and value: refused, or one command that tokenizes back to the same words.
    #[test]
    fn any_key_value_is_refused_or_round_trips(key in any::<String>(), value in any::<String>()) {
        for result in [
            Command::set_map("colors.map", &key, &value),
            Command::add_map("colors.map", Some(3), &key, &value),
        ] {
            let Ok(cmd) = result else { continue };
            let line = cmd.line();
            prop_assert!(line.len() + 1 < MAX_LINE);
            prop_assert!(!line.contains(['\n', '\r', '\0']));
            prop_assert!(!line.trim_end().ends_with("<<"));
            let parsed = haproxy_tokenize(&line);
            prop_assert_eq!(parsed.len(), 1, "{:?} is several commands", line);
            let expected: Vec<String> = match &cmd {
                Command::SetMap { .. } => vec!["set".into(), "map".into(), "colors.map".into(), key.clone(), value.clone()],
                _ => vec!["add".into(), "map".into(), "@3".into(), "colors.map".into(), key.clone(), value.clone()],
            };
            prop_assert_eq!(&parsed[0], &expected, "line {:?}", line);
        }
    }

    /// Strings made of the characters that matter most to the tokenizer.
    #[test]
    fn tricky_characters_are_refused_or_round_trip(
        key in "[a-z;\\\\# \t<>@]{1,12}",
        value in "[a-z;\\\\# \t<>@\"'\n]{1,24}",
    ) {
        if let Ok(cmd) = Command::set_map("m", &key, &value) {
            let parsed = haproxy_tokenize(&cmd.line());
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0], &vec!["set".to_string(), "map".into(), "m".into(), key.clone(), value.clone()]);
        }
        if let Ok(cmd) = Command::del_map("m", &key) {
            let parsed = haproxy_tokenize(&cmd.line());
            prop_assert_eq!(&parsed[0], &vec!["del".to_string(), "map".into(), "m".into(), key.clone()]);
        }
    }

    /// Names: accepted ones tokenize to themselves inside `backend/server`.
    #[test]
    fn any_name_is_refused_or_one_word(backend in any::<String>(), server in "[ -~]{0,10}") {
        if let Ok(cmd) = Command::get_weight(&backend, &server) {
            let parsed = haproxy_tokenize(&cmd.line());
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0], &vec!["get".to_string(), "weight".into(), format!("{backend}/{server}")]);
            prop_assert_eq!(backend.matches('/').count() + server.matches('/').count(), 0);
        }
    }
}
