//! HAProxy's own CPU time, read from /proc: what a request costs HAProxy itself. On this shared
//! 2-core machine the clients, the backends and other jobs move req/s by ±20 % between rounds;
//! the CPU HAProxy spends per request moves far less, so it is what tells two configs apart.

use std::collections::BTreeMap;
use std::io::Read;

/// Clock ticks per second of the utime/stime fields of /proc/<pid>/stat: USER_HZ, which Linux
/// fixes at 100 for what it reports to user space, whatever the kernel's own tick rate.
const TICKS_PER_SEC: f64 = 100.0;

/// /proc/<pid>/stat is one line of about 300 bytes; this bounds the read.
const STAT_MAX: u64 = 4096;

/// One process of a group: its pid and the fields of its /proc/<pid>/stat after the command
/// name (index 0 is the state, 2 the process group, 11 utime, 12 stime).
pub struct Stat {
    pub pid: u32,
    pub fields: Vec<String>,
}

/// Every process whose process group is `pgrp`.
pub fn group(pgrp: u32) -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(pgrp) {
            out.push(Stat { pid, fields });
        }
    }
    out
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut stat = String::new();
    file.take(STAT_MAX).read_to_string(&mut stat).ok()?;
    // The command name may hold spaces or parentheses: fields start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime, in ticks, of each process of group `pgrp`.
pub fn ticks(pgrp: u32) -> BTreeMap<u32, u64> {
    group(pgrp)
        .into_iter()
        .map(|s| {
            let field = |i: usize| {
                s.fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            (s.pid, field(11) + field(12))
        })
        .collect()
}

/// CPU seconds spent between two [`ticks`] snapshots by the processes in both (a worker that
/// a reload left behind and that exited meanwhile is not counted: its CPU is no longer there
/// to read, and it served none of the measured requests once the new worker took them).
pub fn spent(before: &BTreeMap<u32, u64>, after: &BTreeMap<u32, u64>) -> f64 {
    let ticks: u64 = after
        .iter()
        .filter_map(|(pid, t)| before.get(pid).map(|b| t.saturating_sub(*b)))
        .sum();
    ticks as f64 / TICKS_PER_SEC
}
