//! Faults under `--fleet`: a fleet switch, rollback or server change where one edge's admin
//! socket is behind the fault proxy (a reply cut or hung at a random byte), or its state dir
//! is full. A fleet file names an edge by its topology file (`config = …`; for the edge over
//! ssh, the file its edge-agent reads on the far side, which is this host in the lab), so the
//! step writes a copy of that edge's topology with `[paths] admin_socket` (or `state_dir`)
//! pointed at the proxy (or the small tmpfs), and a copy of the fleet file naming that copy;
//! the other edges stay as they are. The invariants after every step check the exits; this
//! runner checks that an exit 5 names the faulted edge.

use std::path::PathBuf;

use vezasock::topology::Color;

use super::faults::{AdminStates, FaultOp};
use super::{Chaos, Outcome};
use crate::support::faultproxy::{FaultAt, FaultProxy};
use crate::support::topology::to_toml;

/// What is wrong with the one edge during a fleet step.
#[derive(Debug, Clone, Copy)]
pub(super) enum EdgeFault {
    /// Its admin socket behind the fault proxy.
    Socket(FaultAt),
    /// Its state dir on a tmpfs with this many pages free.
    FullStateDir(u64),
}

impl Chaos {
    /// `OP ENV [COLOR] --fleet` with `fault` on edge `edge` (2: the one over ssh), then, for a
    /// server change, every edge's admin states compared (exit 1, 3 or 4) and `ready --fleet`.
    pub(super) fn fleet_fault(
        &self,
        edge: usize,
        words: &[&str],
        fault: EdgeFault,
        out: &mut Outcome,
    ) {
        let what = format!(
            "{} ({} on {fault:?})",
            words.join(" "),
            self.fleet.members[edge].name
        );
        let run = match fault {
            EdgeFault::Socket(at) => {
                let m = &self.fleet.members[edge];
                let path = self
                    .fleet
                    .dir
                    .path()
                    .join(format!("fleet-fault-{edge}.sock"));
                let proxy = FaultProxy::start(&path, &m.edge.topology.paths.admin_socket, at);
                let file =
                    self.faulted_fleet_file(edge, |t| t.paths.admin_socket = proxy.path.clone());
                let run = self.run(&self.fleet_args(&file, words), None);
                drop(proxy);
                Some(run)
            }
            EdgeFault::FullStateDir(free_pages) => self
                .on_full_state_dir(edge, free_pages, |small| {
                    let file =
                        self.faulted_fleet_file(edge, |t| t.paths.state_dir = small.to_path_buf());
                    self.run(&self.fleet_args(&file, words), None)
                })
                .map(|(run, left)| {
                    if !left.is_empty() {
                        self.fail_now(&format!(
                            "`{what}` exited {:?} and left temp files {left:?}:\n{}{}",
                            run.code, run.out, run.err
                        ));
                    }
                    run
                }),
        };
        let Some(run) = run else {
            return; // no tmpfs (not root): the SKIP line said it
        };
        let said = format!("{}{}", run.out, run.err);
        // Exit 5 names what is live and what is recorded: the edge that could not finish.
        let name = &self.fleet.members[edge].name;
        if run.code == Some(5) && !said.contains(name.as_str()) {
            self.fail_now(&format!("`{what}` exited 5 without naming {name}:\n{said}"));
        }
        out.runs.push((what, run.code, said));
    }

    /// A copy of edge `edge`'s topology changed by `change`, and a copy of the fleet file
    /// whose entry for that edge names the copy. Returns the fleet file's path.
    fn faulted_fleet_file(
        &self,
        edge: usize,
        change: impl FnOnce(&mut vezasock::topology::Topology),
    ) -> PathBuf {
        let m = &self.fleet.members[edge];
        let mut topo = m.edge.topology.clone();
        change(&mut topo);
        let dir = self.fleet.dir.path();
        let config = dir.join("fleet-fault-topology.toml");
        std::fs::write(&config, to_toml(&topo)).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&self.fleet.file).unwrap_or_else(|e| panic!("{e}"));
        let was = format!("config = {:?}", m.config.display().to_string());
        let now = format!("config = {:?}", config.display().to_string());
        assert!(text.contains(&was), "the fleet file has no {was}: {text}");
        let file = dir.join("fleet-fault.toml");
        std::fs::write(&file, text.replace(&was, &now)).unwrap_or_else(|e| panic!("{e}"));
        file
    }

    /// After a faulted fleet server change: an exit of 1, 3 or 4 left every edge's admin
    /// states as they were, then `ready --fleet` puts the color back in rotation.
    pub(super) fn end_fleet_servers_fault(
        &self,
        words: (&'static str, Color),
        op: FaultOp,
        before: &[AdminStates],
        out: &mut Outcome,
    ) {
        if !op.changes_servers() {
            return;
        }
        if let Some((what, Some(c @ (1 | 3 | 4)), said)) = out.runs.last() {
            for (i, was) in before.iter().enumerate() {
                let now = self.admin_states(i);
                if now != *was {
                    self.fail_now(&format!(
                        "`{what}` exited {c} (nothing changed) but {}'s admin states changed:\n\
                         {said}\nbefore: {was:#?}\nafter: {now:#?}",
                        self.fleet.members[i].name
                    ));
                }
            }
        }
        let (env, color) = words;
        let args = self.fleet_args(&self.fleet.file, &["ready", env, color.as_str()]);
        let run = self.run(&args, None);
        out.runs
            .push((args.join(" "), run.code, format!("{}{}", run.out, run.err)));
    }
}
