//! Parser throughput on a big edge: `show stat` and `show servers state` with 10,000 servers.
//!
//! A plain timed `main` (harness = false): it prints MB/s for our `show stat` parser and for the
//! `csv` crate reading the same bytes into `StringRecord`s, and the ratio, then MB/s for
//! `show servers state`. The `show stat` header and a server row come from the recorded 3.0
//! corpus when present (205 columns), else a 128-column header is built.
//!
//! Run: `cargo bench --bench parse`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use vezasock::runtime::command::servers::{parse_servers_state, COLUMNS};
use vezasock::runtime::command::stat::parse_stat;

const SERVERS: usize = 10_000;
const ITERATIONS: usize = 15;

/// The header line and one server row of a real 3.0 dump, if the corpus is there.
fn corpus_header_and_row() -> Option<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/grammar/corpus/3.0/show-stat.oneshot"
    );
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header = lines.next()?.to_owned();
    // A server row: not FRONTEND/BACKEND and without quotes (the quoted case is added below).
    let row = lines
        .find(|l| {
            let svname = l.split(',').nth(1).unwrap_or("");
            !l.is_empty() && !l.contains('"') && svname != "FRONTEND" && svname != "BACKEND"
        })?
        .to_owned();
    Some((header, row))
}

/// A built header with the 2.6 width (128 columns) and a plausible server row.
fn built_header_and_row() -> (String, String) {
    let mut names = vec!["pxname".to_owned(), "svname".to_owned()];
    names.extend((2..128).map(|i| format!("field{i}")));
    let header = format!("# {},", names.join(","));
    let mut fields = vec!["be_x".to_owned(), "srv".to_owned()];
    fields.extend((2..128).map(|i| {
        if i % 3 == 0 {
            String::new()
        } else {
            format!("{}", i * 7)
        }
    }));
    (header, format!("{},", fields.join(",")))
}

/// `show stat` with SERVERS server rows: names varied, one row in 50 with a quoted check text.
fn stat_dump() -> (Vec<u8>, usize, &'static str) {
    let (header, row, source) = match corpus_header_and_row() {
        Some((h, r)) => (h, r, "3.0 corpus header"),
        None => {
            let (h, r) = built_header_and_row();
            (h, r, "built 128-column header")
        }
    };
    let columns = header.matches(',').count();
    let tail: Vec<&str> = row.splitn(3, ',').collect();
    let rest = tail.get(2).copied().unwrap_or("");
    let mut out = String::with_capacity((row.len() + 16) * SERVERS + header.len());
    out.push_str(&header);
    out.push('\n');
    for i in 0..SERVERS {
        let backend = i / 20;
        let line = format!("be_env{backend}_api,srv{i},{rest}");
        if i % 50 == 0 {
            // Replace the first empty field with a quoted one, as a failing check would.
            out.push_str(&line.replacen(",,", ",\"Busy, \"\"really\"\" later\",", 1));
        } else {
            out.push_str(&line);
        }
        out.push('\n');
    }
    out.push('\n');
    (out.into_bytes(), columns, source)
}

fn servers_state_dump() -> Vec<u8> {
    let mut out = format!("1\n# {}\n", COLUMNS.join(" "));
    for i in 0..SERVERS {
        let backend = i / 20;
        out.push_str(&format!(
            "{} be_env{backend}_api {} srv{i} 10.0.{}.{} 2 {} 100 100 {} 6 3 4 6 0 0 0 - {} - 0 0 - - 0\n",
            backend + 3,
            i % 20 + 1,
            i / 250,
            i % 250,
            if i % 10 == 0 { 8 } else { 0 },
            i * 3,
            8000 + i % 1000,
        ));
    }
    out.push('\n');
    out.into_bytes()
}

/// Best time of ITERATIONS runs (the least disturbed by the other jobs on the machine).
fn best_of(mut run: impl FnMut()) -> Duration {
    run(); // warm up
    (0..ITERATIONS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64().max(1e-9)
}

fn main() {
    let (stat, columns, source) = stat_dump();
    let table = match parse_stat(&stat) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("generated show stat does not parse: {e}");
            std::process::exit(1);
        }
    };
    assert_eq!(table.rows.len(), SERVERS);
    println!(
        "show stat: {SERVERS} servers, {columns} columns ({source}), {:.1} MB",
        stat.len() as f64 / 1e6
    );

    let ours = best_of(|| {
        let t = parse_stat(black_box(&stat)).ok();
        black_box(t);
    });
    let csv_time = best_of(|| {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(black_box(stat.as_slice()));
        let mut records = Vec::with_capacity(SERVERS + 1);
        for record in reader.records() {
            match record {
                Ok(r) => records.push(r),
                Err(e) => {
                    eprintln!("csv crate: {e}");
                    std::process::exit(1);
                }
            }
        }
        black_box(records);
    });
    let ours_mb = mb_per_s(stat.len(), ours);
    let csv_mb = mb_per_s(stat.len(), csv_time);
    println!("  vezasock parse_stat      {ours_mb:8.1} MB/s  ({ours:?} per dump)");
    println!("  csv crate StringRecords  {csv_mb:8.1} MB/s  ({csv_time:?} per dump)");
    println!("  ratio vezasock / csv     {:8.2}", ours_mb / csv_mb);

    let state = servers_state_dump();
    match parse_servers_state(&state) {
        Ok(s) => assert_eq!(s.rows.len(), SERVERS),
        Err(e) => {
            eprintln!("generated servers state does not parse: {e}");
            std::process::exit(1);
        }
    }
    let state_time = best_of(|| {
        let s = parse_servers_state(black_box(&state)).ok();
        black_box(s);
    });
    println!(
        "show servers state: {SERVERS} servers, {:.1} MB: {:8.1} MB/s  ({state_time:?} per dump)",
        state.len() as f64 / 1e6,
        mb_per_s(state.len(), state_time)
    );
}
