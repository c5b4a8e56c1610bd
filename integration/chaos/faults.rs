//! The faults of the chaos run that sit between vezasock and an edge's files or socket: a
//! stats socket that hangs or cuts a reply (a fault proxy, `--admin-socket`), and a full
//! state dir (the state dir copied onto a small tmpfs filled to a few pages, `--state-dir`).
//! Both run a switch, a rollback or a server change (drain, maint, ready) on one edge; the invariants after every step check that
//! its exit code tells the truth, and these runners check that nothing is half-written.

use std::collections::BTreeMap;
use std::path::Path;

use vezasock::topology::Color;

use super::{Chaos, Outcome};
use crate::support::faultproxy::{FaultAt, FaultProxy};
use crate::support::tmpfs::Tmpfs;

impl Chaos {
    /// `switch ENV COLOR` (or `rollback ENV`) on edge `edge` through a fault proxy in front of
    /// its admin socket.
    pub(super) fn socket_fault(&self, edge: usize, flip: &[&str], at: FaultAt, out: &mut Outcome) {
        let m = &self.fleet.members[edge];
        let path = self.fleet.dir.path().join(format!("fault-{edge}.sock"));
        let proxy = FaultProxy::start(&path, &m.edge.topology.paths.admin_socket, at);
        let path = proxy.path.display().to_string();
        let mut args: Vec<&str> = flip.to_vec();
        args.extend(["--admin-socket", &path]);
        let args = self.edge_args(edge, &args);
        let run = self.run(&args, None);
        drop(proxy);
        out.runs.push((
            format!("{} ({at:?})", args.join(" ")),
            run.code,
            format!("{}{}", run.out, run.err),
        ));
    }

    /// `switch ENV COLOR` (or `rollback ENV`) on edge `edge` with its state dir on a tmpfs
    /// left with `free_pages` free pages. No temp file may be left, the journal holds whole
    /// lines (checked after every step).
    pub(super) fn full_state_dir(
        &self,
        edge: usize,
        flip: &[&str],
        free_pages: u64,
        out: &mut Outcome,
    ) {
        let ran = self.on_full_state_dir(edge, free_pages, |small| {
            let small = small.display().to_string();
            let mut args: Vec<&str> = flip.to_vec();
            args.extend(["--state-dir", &small]);
            let args = self.edge_args(edge, &args);
            (self.run(&args, None), args)
        });
        let Some(((run, args), left)) = ran else {
            return;
        };
        out.runs.push((
            format!("{} ({free_pages} page(s) free)", args.join(" ")),
            run.code,
            format!("{}{}", run.out, run.err),
        ));
        if !left.is_empty() {
            self.fail_now(&format!(
                "`{}` exited {:?} on a full state dir and left temp files {left:?}:\n{}{}",
                args.join(" "),
                run.code,
                run.out,
                run.err
            ));
        }
    }

    /// Runs `with` given a copy of edge `edge`'s state dir on a tmpfs left with `free_pages`
    /// free pages, then copies the state dir back. Returns its answer and the temp files it
    /// left; `None` (after a SKIP line) when no tmpfs can be mounted.
    pub(super) fn on_full_state_dir<T>(
        &self,
        edge: usize,
        free_pages: u64,
        with: impl FnOnce(&Path) -> T,
    ) -> Option<(T, Vec<String>)> {
        let state = self.fleet.members[edge]
            .edge
            .topology
            .paths
            .state_dir
            .clone();
        let small = self.fleet.dir.path().join("full-state");
        let size_kib = dir_bytes(&state) / 1024 + 256;
        let Some(tmpfs) = Tmpfs::mount(&small, size_kib) else {
            // Only root can mount; CI runs as root (the SKIP line says it on a dev machine).
            assert!(
                std::env::var("VEZASOCK_REQUIRE_ALL_VERSIONS").is_err(),
                "cannot mount a tmpfs (not root?)"
            );
            eprintln!("SKIP full-state-dir: cannot mount a tmpfs (not root?)");
            return None;
        };
        copy_contents(&state, &small);
        tmpfs
            .fill(free_pages * 4096)
            .unwrap_or_else(|e| panic!("filler: {e}"));
        let answer = with(&small);
        tmpfs.unfill();
        let left = temp_files(&small);
        copy_back(&small, &state);
        drop(tmpfs);
        Some((answer, left))
    }
}

/// What a socket fault or a full state dir hits: a flip (the map writers) or a server change
/// (the admin-state writers: `server-admin.json` and the server-state file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultOp {
    Switch,
    Rollback,
    Drain,
    Maint,
    Ready,
}

impl FaultOp {
    /// From one draw below 8: a switch half the time.
    pub(super) fn from_draw(n: usize) -> FaultOp {
        match n {
            0..=3 => FaultOp::Switch,
            4 => FaultOp::Rollback,
            5 => FaultOp::Drain,
            6 => FaultOp::Maint,
            _ => FaultOp::Ready,
        }
    }

    /// The command's words for `env` and `color`.
    pub(super) fn words(self, env: &'static str, color: Color) -> Vec<&'static str> {
        match self {
            FaultOp::Switch => vec!["switch", env, color.as_str()],
            FaultOp::Rollback => vec!["rollback", env],
            FaultOp::Drain => vec!["drain", env, color.as_str()],
            FaultOp::Maint => vec!["maint", env, color.as_str()],
            FaultOp::Ready => vec!["ready", env, color.as_str()],
        }
    }

    pub(super) fn changes_servers(self) -> bool {
        matches!(self, FaultOp::Drain | FaultOp::Maint | FaultOp::Ready)
    }
}

/// Every server's runtime admin state (`backend/server` → `srv_admin_state`) and the
/// recorded decisions file, on one edge.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AdminStates {
    runtime: BTreeMap<String, String>,
    decisions: Option<String>,
}

impl Chaos {
    pub(super) fn admin_states(&self, i: usize) -> AdminStates {
        let dump = self.ask(i, "show servers state\n");
        let mut runtime = BTreeMap::new();
        for line in dump.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 6 {
                runtime.insert(format!("{}/{}", f[1], f[3]), f[6].to_string());
            }
        }
        let state_dir = &self.fleet.members[i].edge.topology.paths.state_dir;
        AdminStates {
            runtime,
            decisions: std::fs::read_to_string(state_dir.join("server-admin.json")).ok(),
        }
    }

    /// After a faulted server change: an exit of 1, 3 or 4 left every admin state as it was
    /// (invariant 1 for the admin-state writers), then `ready` puts the color back in rotation
    /// so the next steps start from a known pool.
    pub(super) fn end_servers_fault(
        &self,
        edge: usize,
        env: &'static str,
        color: Color,
        op: FaultOp,
        before: &AdminStates,
        out: &mut Outcome,
    ) {
        if !op.changes_servers() {
            return;
        }
        if let Some((what, Some(c @ (1 | 3 | 4)), said)) = out.runs.last() {
            let after = self.admin_states(edge);
            if after != *before {
                self.fail_now(&format!(
                    "`{what}` exited {c} (nothing changed) but the admin states changed:\n{said}\n\
                     before: {before:#?}\nafter: {after:#?}"
                ));
            }
        }
        let args = self.edge_args(edge, &["ready", env, color.as_str()]);
        let run = self.run(&args, None);
        out.runs
            .push((args.join(" "), run.code, format!("{}{}", run.out, run.err)));
    }
}

/// The bytes of the regular files directly in `dir` (the state dir is flat).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// `cp -a FROM/. TO/`.
fn copy_contents(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// The state dir as the command left it on the tmpfs, back in place: what it removed is
/// removed, what it wrote is copied.
fn copy_back(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(to).into_iter().flatten().flatten() {
        if !from.join(entry.file_name()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    copy_contents(from, to);
}

/// vezasock's temp files (`.<name>.vezasock-tmp.<pid>.<n>`) in `dir`.
pub(super) fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".vezasock-tmp."))
        .collect()
}
