//! The faults of the chaos run that sit between vezasock and an edge's files or socket: a
//! stats socket that hangs or cuts a reply (a fault proxy, `--admin-socket`), and a full
//! state dir (the state dir copied onto a small tmpfs filled to a few pages, `--state-dir`).
//! Both run a switch or a rollback on one edge; the invariants after every step check that
//! its exit code tells the truth, and these runners check that nothing is half-written.

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
    /// left with `free_pages` free pages; the state dir is copied back after it. No temp file
    /// may be left, the journal holds whole lines (checked after every step).
    pub(super) fn full_state_dir(
        &self,
        edge: usize,
        flip: &[&str],
        free_pages: u64,
        out: &mut Outcome,
    ) {
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
            return;
        };
        copy_contents(&state, &small);
        tmpfs
            .fill(free_pages * 4096)
            .unwrap_or_else(|e| panic!("filler: {e}"));
        let small_text = small.display().to_string();
        let mut args: Vec<&str> = flip.to_vec();
        args.extend(["--state-dir", &small_text]);
        let args = self.edge_args(edge, &args);
        let run = self.run(&args, None);
        tmpfs.unfill();
        let left = temp_files(&small);
        copy_back(&small, &state);
        drop(tmpfs);
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
}

/// The words of a switch to `color`, or a rollback, of `env`.
pub(super) fn flip_words(env: &'static str, color: Color, rollback: bool) -> Vec<&'static str> {
    if rollback {
        vec!["rollback", env]
    } else {
        vec!["switch", env, color.as_str()]
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
