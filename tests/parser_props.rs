//! Property tests: generated dumps parse back to what generated them, and no input panics.

use proptest::prelude::*;
use vezasock::runtime::command::info::parse_info;
use vezasock::runtime::command::maps::parse_map_entries;
use vezasock::runtime::command::raw::parse;
use vezasock::runtime::command::servers::{
    parse_servers_state, AdminFlags, OpState, ServerStateRow, ServersState,
};
use vezasock::runtime::command::stat::parse_stat;
use vezasock::runtime::command::ReplyKind;
use vezasock::runtime::parse::outcome::classify;

/// A CSV field as HAProxy would hold it: empty, plain, or with commas, quotes, spaces.
fn csv_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9_./:-]{1,12}",
        "[a-z ,\"]{1,12}",
        "[^\n]{0,10}",
        // HAProxy quotes a field holding a newline too; the parser accepts it inside quotes.
        "[a-z\n,\"]{1,6}",
    ]
}

/// HAProxy's CSV encoding: quote a field holding `,`, `"` or a line break, doubling quotes.
fn csv_encode(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn stat_dump() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
    (1usize..40).prop_flat_map(|width| {
        (
            prop::collection::vec("[a-z_]{1,10}", width),
            prop::collection::vec(prop::collection::vec(csv_field(), width), 0..12),
        )
    })
}

fn opt_word() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-z0-9._:]{1,12}")
}

prop_compose! {
    fn state_row()(
        be_id in any::<u32>(), be_name in "[a-z_][a-z0-9_.-]{0,15}",
        srv_id in any::<u32>(), srv_name in "[a-z_][a-z0-9_.-]{0,15}",
        srv_addr in opt_word(), op in 0u32..6, admin in 0u32..128,
        uweight in 0u32..257, iweight in 0u32..257, since in any::<i64>(),
        check_status in 0u32..25, check_result in 0u32..6, check_health in any::<u32>(),
        check_state in 0u32..32, agent_state in 0u32..32,
        bk_f_forced_id in 0u32..2, srv_f_forced_id in 0u32..2,
        fqdn in opt_word(), port in 0u32..65536, srvrecord in opt_word(),
        use_ssl in 0u32..2, check_port in 0u32..65536,
        check_addr in opt_word(), agent_addr in opt_word(), agent_port in 0u32..65536,
    ) -> ServerStateRow {
        ServerStateRow {
            be_id, be_name, srv_id, srv_name, srv_addr,
            op: OpState::from_code(op), admin: AdminFlags(admin),
            uweight, iweight, time_since_last_change: since,
            check_status, check_result, check_health, check_state, agent_state,
            bk_f_forced_id, srv_f_forced_id, fqdn, port, srvrecord, use_ssl,
            check_port, check_addr, agent_addr, agent_port,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn stat_csv_round_trips((columns, rows) in stat_dump()) {
        let mut body = format!("# {},\n", columns.join(","));
        for row in &rows {
            for field in row {
                body.push_str(&csv_encode(field));
                body.push(',');
            }
            body.push('\n');
        }
        body.push('\n');
        let table = parse_stat(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(table.columns.names(), columns.as_slice());
        prop_assert_eq!(table.rows.len(), rows.len());
        for (parsed, row) in table.rows.iter().zip(&rows) {
            let fields: Vec<&str> = parsed.fields().collect();
            prop_assert_eq!(fields, row.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    #[test]
    fn servers_state_round_trips(rows in prop::collection::vec(state_row(), 0..20)) {
        let state = ServersState { rows };
        let text = format!("{}\n", state.to_text());
        let parsed = parse_servers_state(text.as_bytes())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&parsed, &state);
        for (row, line) in parsed.rows.iter().zip(text.lines().skip(2)) {
            prop_assert_eq!(row.to_line(), line);
        }
    }

    #[test]
    fn map_entries_keep_spaces_in_values(
        entries in prop::collection::vec(
            ("[0-9a-f]{1,16}", "[^ \t\n]{1,12}", "[^\n]{0,20}"), 0..20),
    ) {
        let mut body = String::new();
        for (reference, key, value) in &entries {
            body.push_str(&format!("0x{reference} {key} {value}\n"));
        }
        body.push('\n');
        let parsed = parse_map_entries(body.as_bytes())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.len(), entries.len());
        for (p, (reference, key, value)) in parsed.iter().zip(&entries) {
            prop_assert_eq!(&p.reference, &format!("0x{reference}"));
            prop_assert_eq!(&p.key, key);
            prop_assert_eq!(&p.value, value);
        }
    }

    #[test]
    fn info_keys_with_spaces_values_with_colons(
        fields in prop::collection::vec(
            ("[A-Za-z_][A-Za-z0-9_ :.-]{0,15}".prop_filter("no `: ` in a key", |k| !k.contains(": ")),
             "[^\n]{0,30}"), 1..30),
    ) {
        let mut body = String::new();
        for (key, value) in &fields {
            body.push_str(&format!("{key}: {value}\n"));
        }
        body.push('\n');
        let info = parse_info(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&info.fields, &fields);
    }
}

/// Runs `cases` generated bodies through `classify` and every parser (none may panic) and
/// returns how many parses were accepted and how many refused, so a test can show that its
/// generator reaches both sides of the parsers.
fn parse_counts(strategy: impl Strategy<Value = Vec<u8>>, cases: u32) -> (u64, u64) {
    use std::cell::Cell;
    let (accepted, refused) = (Cell::new(0u64), Cell::new(0u64));
    // A fixed seed: the counts asserted below are the same on every run (the fuzz targets
    // explore further).
    let config = ProptestConfig::with_cases(cases);
    let rng = proptest::test_runner::TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(config, rng);
    runner
        .run(&strategy, |body| {
            let _ = classify(&body);
            for kind in ReplyKind::ALL {
                match parse(kind, &body) {
                    Ok(_) => accepted.set(accepted.get() + 1),
                    Err(_) => refused.set(refused.get() + 1),
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    (accepted.get(), refused.get())
}

#[test]
fn classify_and_parsers_never_panic() {
    let cases = 512;
    let (accepted, refused) = parse_counts(prop::collection::vec(any::<u8>(), 0..300), cases);
    eprintln!("random bytes: {accepted} parses accepted, {refused} refused");
    // Every case ran every parser once.
    assert_eq!(
        accepted + refused,
        u64::from(cases) * ReplyKind::ALL.len() as u64
    );
    // Random bytes are mostly refused; the `text` kind takes anything (one per case), and a
    // few bodies parse as another kind too.
    assert!(refused > accepted, "accepted {accepted}, refused {refused}");
    assert!(accepted > u64::from(cases), "accepted {accepted}");
}

#[test]
fn parsers_never_panic_on_near_misses() {
    let prefix = prop::sample::select(vec![
        "# pxname,svname,",
        "1\n# be_id ",
        "#<PID> ",
        "Success=1\n--\n",
        "# name\n",
        "# id (file) description\n",
        "0x1 ",
        "type=str, found=yes, key=\"",
        "[6]: ",
        "# bkname/svname ",
        "New version created: ",
    ]);
    let rest = "[a-z0-9 ,\"\n\\[\\]:=#()-]{0,80}";
    let bodies = (prefix, rest).prop_map(|(p, r)| format!("{p}{r}").into_bytes());
    let cases = 512;
    let (accepted, refused) = parse_counts(bodies, cases);
    eprintln!("near misses: {accepted} parses accepted, {refused} refused");
    assert_eq!(
        accepted + refused,
        u64::from(cases) * ReplyKind::ALL.len() as u64
    );
    // Near misses reach both sides of the parsers: some parse, most do not.
    assert!(refused > accepted, "accepted {accepted}, refused {refused}");
    assert!(accepted > u64::from(cases), "accepted {accepted}");
}
