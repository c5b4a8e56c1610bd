//! Part 7 (`VEZASOCK_BENCH_PARTS=paired`): `vezasock switch` against one bare `socat` `set map`,
//! interleaved flip by flip on one edge. Part 1 measures each method on its own edge one after
//! the other, so on this shared machine a busy minute lands on one method and not the other;
//! here each pair runs back to back (the order alternating), and the ratio is taken per pair.
//! Two pollers watch every flip: one keep-alive connection, and a new connection per request
//! (a user arriving after the flip).

use std::time::{Duration, Instant};

use vezasock::topology::Color;

use super::{baseline, ms, p50, p50_ratio, Bench, Method, Poller, SEE_LIMIT};

/// Reads one of a [`Sample`]'s times.
type Field = fn(&Sample) -> f64;

/// One flip: milliseconds from the command's start.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The command returned.
    pub command: f64,
    /// The keep-alive poller first saw the new color.
    pub keepalive: f64,
    /// A new connection first saw the new color.
    pub fresh: f64,
}

/// Pairs of flips: `vezasock[i]` and `socat[i]` (and `baseline[i]`, with a baseline binary)
/// ran back to back.
#[derive(Debug, Clone, Default)]
pub struct Paired {
    pub vezasock: Vec<Sample>,
    pub socat: Vec<Sample>,
    pub baseline: Vec<Sample>,
}

/// Runs `pairs` pairs of flips on `b`.
pub fn measure(b: &mut Bench, pairs: usize) -> Result<Paired, String> {
    let keepalive = Poller::spawn(b.local.http, false);
    let fresh = Poller::spawn(b.local.http, true);
    let mut out = Paired::default();
    let mut methods = vec![Method::Vezasock, Method::Socat];
    if baseline::program().is_some() {
        methods.push(Method::Baseline);
    }
    let result = (|| {
        for i in 0..pairs {
            // Rotate who goes first, so none always flips right after another.
            for k in 0..methods.len() {
                let method = methods[(i + k) % methods.len()];
                let sample = flip_once(b, method, &keepalive, &fresh)?;
                match method {
                    Method::Vezasock => out.vezasock.push(sample),
                    Method::Baseline => out.baseline.push(sample),
                    _ => out.socat.push(sample),
                }
            }
        }
        Ok::<(), String>(())
    })();
    keepalive.stop();
    fresh.stop();
    result.map(|()| out)
}

fn flip_once(
    b: &mut Bench,
    method: Method,
    keepalive: &Poller,
    fresh: &Poller,
) -> Result<Sample, String> {
    let to: Color = b.color.other();
    let start = Instant::now();
    for p in [keepalive, fresh] {
        p.ask
            .send((to, start))
            .map_err(|_| "a poller stopped".to_string())?;
    }
    b.flip(method, to)?;
    let command = ms(start.elapsed());
    let mut seen = [0.0; 2];
    for (i, p) in [keepalive, fresh].into_iter().enumerate() {
        let d = p
            .seen
            .recv_timeout(SEE_LIMIT + Duration::from_secs(5))
            .map_err(|_| "a poller did not answer".to_string())??;
        seen[i] = ms(d);
    }
    Ok(Sample {
        command,
        keepalive: seen[0],
        fresh: seen[1],
    })
}

impl Paired {
    /// Medians of one field: (vezasock, socat, p50 of the per-pair ratios vezasock ÷ socat).
    pub fn medians(&self, field: Field) -> (f64, f64, f64) {
        medians(&self.vezasock, &self.socat, field)
    }
}

/// Medians of one field of `a` and `b` and the p50 of the per-pair ratios a ÷ b.
fn medians(a: &[Sample], b: &[Sample], field: Field) -> (f64, f64, f64) {
    let v: Vec<f64> = a.iter().map(field).collect();
    let s: Vec<f64> = b.iter().map(field).collect();
    (p50(&v), p50(&s), p50_ratio(&v, &s))
}

/// The part's report: a table of medians and ratios, and the goal line.
pub fn report(s: &mut String, p: &Paired) {
    use std::fmt::Write as _;
    let _ = writeln!(s, "**7. vezasock switch vs one socat `set map`, paired**: {} pairs on one edge, back to back, the order alternating; ms from the command's start, p50. *Keep-alive*: first answer of the new color on a keep-alive connection; *new connection*: on a new connection per request; ratio: p50 of the per-pair ratios (vezasock ÷ socat).\n", p.vezasock.len());
    let _ = writeln!(
        s,
        "| | vezasock switch | socat set map | vezasock ÷ socat |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    let rows: [(&str, Field); 3] = [
        ("seen, keep-alive", |x| x.keepalive),
        ("seen, new connection", |x| x.fresh),
        ("command returned", |x| x.command),
    ];
    for (name, field) in rows {
        let (v, so, r) = p.medians(field);
        let _ = writeln!(s, "| {name} | {v:.2} | {so:.2} | {r:.2}× |");
    }
    let (_, _, r) = p.medians(|x| x.keepalive);
    let _ = writeln!(
        s,
        "\n- {} flip latency (keep-alive) of the switch no longer than socat's in the same run: {r:.2}×\n",
        if r <= 1.0 { "PASS" } else { "MISS" }
    );
    if p.baseline.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "Against the baseline binary (`VEZASOCK_BENCH_BASELINE`), flipped in the same rounds:\n"
    );
    let _ = writeln!(
        s,
        "| | this build | baseline | this ÷ baseline | baseline ÷ socat |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (name, field) in rows {
        let (v, b, r) = medians(&p.vezasock, &p.baseline, field);
        let (_, _, rb) = medians(&p.baseline, &p.socat, field);
        let _ = writeln!(s, "| {name} | {v:.2} | {b:.2} | {r:.2}× | {rb:.2}× |");
    }
    let (_, _, r) = medians(&p.vezasock, &p.baseline, |x| x.keepalive);
    let _ = writeln!(
        s,
        "\n- {} flip latency (keep-alive) no slower than the baseline's in the same rounds: {r:.2}×\n",
        if r <= 1.05 { "PASS" } else { "MISS" }
    );
}
