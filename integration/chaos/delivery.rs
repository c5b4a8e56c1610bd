//! The progressive-delivery steps of the chaos run: a short `--bake` (sometimes with the new
//! color's api made to answer 500, so that it flips back: exit 7 only after a put-back), and a
//! short canary ended by `--abort` or `--promote` from another process, or left to finish.

use std::time::Duration;

use vezasock::topology::Color;

use super::{Chaos, Outcome};
use crate::support::run::{Vezasock, BOUND};

/// How a canary step ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum CanaryEnd {
    /// `canary ENV --abort` from another process.
    Abort,
    /// `canary ENV --promote` from another process.
    Promote,
    /// Left to run through its steps.
    Run,
}

impl Chaos {
    /// `switch ENV COLOR --bake 2s` on edge `edge`; with `fail`, COLOR's api answers 500 during
    /// it (only when COLOR is the idle color: the live one keeps serving).
    pub(super) fn bake(
        &mut self,
        edge: usize,
        env: &'static str,
        color: Color,
        fail: bool,
        out: &mut Outcome,
    ) {
        let live = self.sides(edge, env);
        let fail = fail && live == [Some(color.other()); 3];
        let label = format!("{} {}", self.fleet.label, self.fleet.members[edge].name);
        let backend = format!("be_{env}_api_{}", color.as_str());
        let fake = fail.then(|| {
            crate::preview::fail_api(&mut self.fleet.members[edge].edge, &backend, &label)
        });
        let args = self.edge_args(
            edge,
            &[
                "switch",
                env,
                color.as_str(),
                "--bake",
                "2s",
                "--max-error-rate",
                "5%",
                "--min-requests",
                "5",
            ],
        );
        let run = self.run(&args, None);
        if let Some((server, flag)) = fake {
            flag.store(false, std::sync::atomic::Ordering::Relaxed);
            let e = &mut self.fleet.members[edge].edge;
            // The fake's listener closes a moment after its flag: bind again until it has.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !e.set_backend_running(&server.backend, &server.server, true) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{label}: {backend} does not start again"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            crate::switch::wait_healthy(e, &label);
            // Its requests answered 500 by design: no promise of no failed request.
            out.unpromised = true;
        }
        let what = format!("{} (failing: {fail})", args.join(" "));
        out.runs
            .push((what.clone(), run.code, format!("{}{}", run.out, run.err)));
        // Exit 7 only after a put-back: the old color live and recorded again.
        if run.code == Some(7) && self.sides(edge, env) != live {
            self.fail_now(&format!(
                "`{what}` exited 7 but {env} is runtime/map/state {:?}, it was {live:?}:\n{}",
                self.sides(edge, env),
                run.err
            ));
        }
    }

    /// `canary ENV COLOR --steps 50,100 --interval 1s` on edge `edge` in the background, ended
    /// `after_ms` later as `end` says. Whatever its exit but 5, no canary entry of ENV is left
    /// in the preview map (runtime or file); exit 0 is recorded like a switch to COLOR (checked
    /// with the switches), exit 7 leaves the old color on every side.
    pub(super) fn canary(
        &self,
        edge: usize,
        env: &'static str,
        color: Color,
        end: CanaryEnd,
        after_ms: u64,
        out: &mut Outcome,
    ) {
        let live = self.sides(edge, env);
        let args = self.edge_args(
            edge,
            &[
                "canary",
                env,
                color.as_str(),
                "--steps",
                "50,100",
                "--interval",
                "1s",
                "--min-requests",
                "5",
            ],
        );
        let running = Vezasock::new(&args).who("chaos").spawn();
        std::thread::sleep(Duration::from_millis(after_ms));
        let control = match end {
            CanaryEnd::Abort => Some("--abort"),
            CanaryEnd::Promote => Some("--promote"),
            CanaryEnd::Run => None,
        };
        let control = control.map(|flag| {
            let args = self.edge_args(edge, &["canary", env, flag]);
            (args.join(" "), self.run(&args, None))
        });
        let run = running.finish(BOUND);
        let what = format!("{} (after {after_ms} ms: {end:?})", args.join(" "));
        out.runs
            .push((what.clone(), run.code, format!("{}{}", run.out, run.err)));
        if let Some((name, c)) = control {
            out.runs.push((name, c.code, format!("{}{}", c.out, c.err)));
        }
        if run.code != Some(5) {
            if let Some(entry) = self.canary_entry(edge, env) {
                self.fail_now(&format!(
                    "`{what}` exited {:?} and left the canary entry {entry:?}:\n{}",
                    run.code, run.err
                ));
            }
        }
        if run.code == Some(7) && self.sides(edge, env) != live {
            self.fail_now(&format!(
                "`{what}` exited 7 but {env} is runtime/map/state {:?}, it was {live:?}:\n{}",
                self.sides(edge, env),
                run.err
            ));
        }
    }

    /// ENV's canary entry (`<env> <color>:<percent>`) in edge `edge`'s preview map, in its
    /// running HAProxy or in the file.
    fn canary_entry(&self, edge: usize, env: &str) -> Option<String> {
        let map = self.fleet.members[edge]
            .edge
            .topology
            .paths
            .maps_dir
            .join("preview.map");
        let runtime = self.ask(edge, &format!("show map {}\n", map.display()));
        let file = std::fs::read_to_string(&map).unwrap_or_default();
        // Runtime lines are `<id> <key> <value>`; file lines `<key> <value>`.
        let from_runtime = runtime
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(env));
        let from_file = file
            .lines()
            .find(|l| l.split_whitespace().next() == Some(env));
        from_runtime
            .map(|l| format!("runtime: {l}"))
            .or_else(|| from_file.map(|l| format!("file: {l}")))
    }
}
