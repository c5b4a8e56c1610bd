//! The topology-change step of the chaos run: prod web blue's pool on one edge grows or
//! shrinks by one server in its topology file (between 1 and 3 servers), and `apply` carries it
//! out. 1 → 2 servers and back give the backend its sticky cookie or take it away (the reload
//! path); 2 ↔ 3 is the runtime path (on 2.6 the addition is refused at runtime: `apply
//! --reload`). After `apply` exits 0 the running backend holds exactly the file's servers;
//! the runtime path never reloads; a failed `apply` leaves the file as it was before.

use vezasock::topology::Topology;

use super::{Chaos, Outcome};
use crate::pools::{prod_web_blue, server, BACKEND};
use crate::support::faultproxy::{FaultAt, FaultProxy};
use crate::support::run::Run;

impl Chaos {
    /// One server more (`grow`, when fewer than 3) or fewer (when more than 1) in edge
    /// `edge`'s prod web blue, then `plan --json` and `apply`.
    /// With `master`, the master socket is behind the fault proxy for the first `apply`
    /// (`--master-socket`): when it does not exit 0, HAProxy must still serve (checked after
    /// every step) and the next `apply`, without the proxy, must converge.
    pub(super) fn pool(
        &mut self,
        edge: usize,
        grow: bool,
        master: Option<FaultAt>,
        out: &mut Outcome,
    ) {
        let file = self.fleet.members[edge].config.clone();
        let before = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
        let mut topo = Topology::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let servers = prod_web_blue(&mut topo);
        let grow = (grow && servers.len() < 3) || servers.len() == 1;
        if grow {
            self.pool_count += 1;
            let (backend, mut s) = server(self.pool_count);
            // A file names its servers by position (`blue_<n>`), not by what it was given.
            s.name = format!("blue_{}", servers.len() + 1);
            servers.push(s);
            self.pool_backends.push(backend);
        } else {
            servers.pop();
        }
        let want: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
        crate::moved_server::write_topology(&file, &topo);
        let plan = self.run(&self.edge_args(edge, &["plan", "--json"]), None);
        let json: serde_json::Value = serde_json::from_str(&plan.out).unwrap_or_default();
        let reload = json["plan"] != "runtime";
        let refused = json["refused_at_runtime"]
            .as_array()
            .is_some_and(|r| !r.is_empty());
        let mut words = vec!["apply", "--lock-timeout", "5s"];
        if refused {
            words.push("--reload");
        }
        let pid = self.worker_pids()[edge];
        let (run, args) = self.apply_through(edge, &words, master);
        let what = format!(
            "{} (prod web blue: {want:?}, plan {}, master {master:?})",
            args.join(" "),
            json["plan"]
        );
        out.runs
            .push((what.clone(), run.code, format!("{}{}", run.out, run.err)));
        if reload {
            out.reloaded.push(edge);
            // A reload by hand makes no promise of no failed request; nor does this one.
            out.unpromised = true;
        } else if self.worker_pids()[edge] != pid {
            self.fail_now(&format!("`{what}` took the runtime path but reloaded"));
        }
        if run.code != Some(0) && master.is_some() {
            // 1, 3 or 4 say nothing changed: not even a reload the faulted reply hid.
            let now = self.worker_pids()[edge];
            if matches!(run.code, Some(1 | 3 | 4)) && now != pid {
                self.fail_now(&format!(
                    "`{what}` exited {:?} (nothing changed) but the worker changed ({pid} → \
                     {now}):\n{}{}",
                    run.code, run.out, run.err
                ));
            }
            // The next `apply` converges: the file is kept, the fault gone.
            let (again, args) = self.apply_through(edge, &words, None);
            let said = format!("{}{}", again.out, again.err);
            out.runs.push((args.join(" "), again.code, said.clone()));
            if again.code != Some(0) {
                self.fail_now(&format!(
                    "`{what}` exited {:?} through a faulted master socket, and the next apply \
                     exited {:?}:\n{said}",
                    run.code, again.code
                ));
            }
        } else if run.code != Some(0) {
            std::fs::write(&file, before).unwrap_or_else(|e| panic!("{e}"));
            return;
        }
        let live = self.backend_servers(edge);
        if live != want {
            self.fail_now(&format!(
                "`{what}` exited 0 but {BACKEND} runs {live:?}:\n{}",
                run.out
            ));
        }
    }

    /// `apply WORDS` on edge `edge`, with its master socket behind a fault proxy when `master`
    /// is given.
    fn apply_through(
        &self,
        edge: usize,
        words: &[&str],
        master: Option<FaultAt>,
    ) -> (Run, Vec<String>) {
        let Some(at) = master else {
            let args = self.edge_args(edge, words);
            return (self.run(&args, None), args);
        };
        let m = &self.fleet.members[edge];
        let path = self
            .fleet
            .dir
            .path()
            .join(format!("master-fault-{edge}.sock"));
        let proxy = FaultProxy::start(&path, &m.edge.topology.paths.master_socket, at);
        let proxy_path = proxy.path.display().to_string();
        let mut words = words.to_vec();
        words.extend(["--master-socket", &proxy_path]);
        let args = self.edge_args(edge, &words);
        let run = self.run(&args, None);
        drop(proxy);
        (run, args)
    }

    /// The servers of prod web blue in edge `edge`'s running HAProxy, in order.
    fn backend_servers(&self, edge: usize) -> Vec<String> {
        let dump = self.ask(edge, &format!("show servers state {BACKEND}\n"));
        dump.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect()
    }
}
