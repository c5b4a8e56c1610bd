//! Runtime client benchmark (not a test): time per command against the same real HAProxy,
//! for each installed version, measured in one run:
//!
//! - (a) 1000 one-shot connections (`session::one_shot`),
//! - (b) 1000 request/response round trips on one `Session`,
//! - (c) one pipelined `Session::run_each` of 1000, every reply matched and checked,
//! - (d) the raw floor: the same 1000 lines in one write by a minimal client that only counts
//!   prompts and checks nothing,
//! - and, for scale, one `socat` process per command (20 calls) when socat is installed.
//!
//! The goal is (c) within 1.5x of (d). Run: `cargo bench --bench client`
//! (`VEZASOCK_BENCH_ROUNDS=N` changes the number of rounds; the median is printed).

#[path = "../integration/support/mod.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod support;

use support::haproxy;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use vezasock::runtime::command::maps::SetMap;
use vezasock::runtime::command::RuntimeCommand;
use vezasock::runtime::endpoint::Endpoint;
use vezasock::runtime::session::{one_shot, Session, Timeouts};

const N: usize = 1000;

const CONFIG: &str = "global
    stats socket {dir}/admin.sock mode 600 level admin
    stats timeout 2m

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend fe_main
    bind 127.0.0.1:{port}
    http-request set-var(txn.color) str(staging),map({dir}/active-color.map,blue)
    default_backend be_app

backend be_app
    server blue 127.0.0.1:9
";

fn commands(map: &str) -> Vec<SetMap> {
    (0..N)
        .map(|i| {
            let color = if i % 2 == 0 { "green" } else { "blue" };
            SetMap::new(map, "staging", color).expect("valid set map")
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The floor: `prompt` + 1000 lines in one write, read until 1001 prompts came back.
fn raw_floor(sock: &Path, lines: &str) -> Duration {
    let start = Instant::now();
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(lines.as_bytes()).expect("write");
    let mut buf = vec![0u8; 1 << 16];
    let (mut prompts, mut last) = (0usize, 0u8);
    while prompts < N + 1 {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "HAProxy closed early");
        for &b in &buf[..n] {
            if last == b'>' && b == b' ' {
                prompts += 1;
            }
            last = b;
        }
    }
    start.elapsed()
}

fn per_cmd(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let rounds: usize = std::env::var("VEZASOCK_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        reply: Duration::from_secs(30),
    };
    println!("## runtime client: µs per `set map` command (median of {rounds} rounds of {N})\n");
    println!("| HAProxy | (a) one-shot | (b) round trips | (c) pipelined batch, checked | (d) raw floor | (c)/(d) | socat per call |");
    println!("|---|---|---|---|---|---|---|");
    for v in haproxy::versions() {
        let config = CONFIG.replace("{port}", &support::ports::free_port().to_string());
        let fx = haproxy::Fixture::start_with_files(
            &v,
            &config,
            &[("active-color.map", "staging blue\n")],
        );
        let map = fx.path("active-color.map").display().to_string();
        let endpoint = Endpoint::Unix(fx.admin_sock());
        let cmds = commands(&map);
        let mut raw = String::from("prompt\n");
        for c in &cmds {
            raw.push_str(&c.line());
            raw.push('\n');
        }
        let (mut a, mut b, mut c, mut d) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let start = Instant::now();
            rt.block_on(async {
                for cmd in &cmds {
                    one_shot(&endpoint, cmd, timeouts)
                        .await
                        .expect("one-shot set map");
                }
            });
            a.push(per_cmd(start.elapsed(), N));

            let mut session = rt
                .block_on(Session::connect(&endpoint, timeouts))
                .expect("session");
            let start = Instant::now();
            rt.block_on(async {
                for cmd in &cmds {
                    session.send(cmd).await.expect("round trip set map");
                }
            });
            b.push(per_cmd(start.elapsed(), N));

            let start = Instant::now();
            let replies = rt.block_on(session.run_each(&cmds)).expect("batch");
            c.push(per_cmd(start.elapsed(), N));
            assert_eq!(replies.len(), N);

            d.push(per_cmd(raw_floor(&fx.admin_sock(), &raw), N));
        }
        let socat = socat_per_call(&fx.admin_sock(), &cmds[0].line());
        let (a, b, c, d) = (median(a), median(b), median(c), median(d));
        println!(
            "| {} | {a:.1} | {b:.1} | {c:.2} | {d:.2} | {:.2}x | {} |",
            v.label,
            c / d,
            socat
                .map(|s| format!("{s:.0}"))
                .unwrap_or_else(|| "socat not installed".into())
        );
    }
    println!(
        "\nGoal: (c)/(d) <= 1.5. Machine: {} cores.",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
}

/// µs per call of `echo <line> | socat stdio unix-connect:<sock>`, 20 calls.
fn socat_per_call(sock: &Path, line: &str) -> Option<f64> {
    let calls = 20;
    let start = Instant::now();
    for _ in 0..calls {
        let mut child = Process::new("socat")
            .arg("stdio")
            .arg(format!("unix-connect:{}", sock.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()?
            .write_all(format!("{line}\n").as_bytes())
            .ok()?;
        child.wait().ok()?;
    }
    Some(per_cmd(start.elapsed(), calls))
}
