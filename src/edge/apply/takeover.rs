//! Taking over an edge vezasock did not render (see the module doc of `apply/mod.rs`): the
//! plan, the facts it is decided from, and the takeover itself through the reload path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::reload::{self};
use crate::edge::{Edge, EdgeError};
use crate::plan::takeover::{EnvFacts, KnownServer, LiveServer, RuntimeSeen};
use crate::plan::{LiveView, Plan};
use crate::render::{render, shape, Rendered};
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{EdgeLock, Holder, Phase};
use crate::topology::{Color, Servers};

use super::{operation, read_text, ApplyOptions, ApplyReport, TakeoverOptions, TakeoverReport};

/// The takeover plan (see the module doc): why, each env's color and its source, what cannot
/// be decided, and the steps apply runs. Reads the state files and `show servers state`.
pub async fn takeover_plan(edge: &Edge, takeover: &TakeoverOptions) -> Result<Plan, EdgeError> {
    let facts = takeover_facts(edge, takeover).await?;
    let (colors, undecided) = crate::plan::takeover::decide(&facts);
    let paths = &edge.topology.paths;
    let why = match read_text(&paths.config) {
        Ok(Some(_)) => format!(
            "{} has no `{}` first line",
            paths.config.display(),
            shape::FINGERPRINT_PREFIX.trim_end()
        ),
        _ => format!(
            "there is no config at {}, but HAProxy answers on {}",
            paths.config.display(),
            paths.admin_socket.display()
        ),
    };
    let reasons = vec![
        format!("takeover of a config vezasock did not render: {why}"),
        "its maps and backends are not vezasock's: the runtime answers `Unknown map \
         identifier` / `Can't find backend` for them (planning facts, not failures)"
            .to_string(),
    ];
    let mut steps = Vec::new();
    if let Some(dir) = &takeover.seed_state {
        steps.push(format!(
            "import the seed's state files from {} (active-color-<env>, .history) into {}",
            dir.display(),
            edge.state.path().display()
        ));
    }
    steps.extend([
        format!(
            "record each env's color in {}/active-color-<env> (a history line when the history's newest line names another color)",
            edge.state.path().display()
        ),
        format!(
            "render vezasock's config with those colors, write its maps into {}, `haproxy -c` on the exact bytes",
            paths.maps_dir.display()
        ),
        format!(
            "back up {} (.vezasock-backup) and swap in the rendered config",
            paths.config.display()
        ),
        format!(
            "one confirmed reload ({}), verified on the new worker (backends, maps, server states); on failure the backups are restored and HAProxy reloaded back",
            paths.reload_method
        ),
    ]);
    Ok(Plan::Takeover {
        reasons,
        colors,
        undecided,
        steps,
    })
}

/// The facts of every colored env: flag, state file (the seed's dir when named), and which
/// of its servers the foreign runtime has in rotation.
pub(super) async fn takeover_facts(
    edge: &Edge,
    takeover: &TakeoverOptions,
) -> Result<Vec<EnvFacts>, EdgeError> {
    for name in takeover.colors.keys() {
        if !edge.env(name)?.colored {
            return Err(EdgeError::BadInput(format!(
                "--color {name}=…: env {name} has no colors"
            )));
        }
    }
    let seed = match &takeover.seed_state {
        Some(dir) => crate::state::StateDir::single(dir.clone()),
        None => edge.state.clone(),
    };
    let mut session = edge.admin_session().await?;
    let rows = session.show_servers_state(None).await?;
    drop(session);
    let live: Vec<LiveServer> = rows
        .rows
        .iter()
        .map(|r| LiveServer {
            backend: r.be_name.clone(),
            server: r.srv_name.clone(),
            addr: r.srv_addr.clone(),
            fqdn: r.fqdn.clone(),
            port: r.port,
            in_rotation: !r.admin.is_maint() && !r.admin.is_drain(),
        })
        .collect();
    let mut facts = Vec::new();
    for env in edge.topology.envs.iter().filter(|e| e.colored) {
        let mut known = Vec::new();
        for c in &env.components {
            if let Servers::Colored { blue, green } = &c.servers {
                for (color, servers) in [(Color::Blue, blue), (Color::Green, green)] {
                    known.extend(servers.iter().map(|s| KnownServer {
                        color,
                        host: s.address.host.clone(),
                        port: s.address.port,
                    }));
                }
            }
        }
        let state_file = match seed.recorded_color(&env.name)? {
            Some(color) => Some((color, seed.color_file(&env.name)?.display().to_string())),
            None => None,
        };
        facts.push(EnvFacts {
            env: env.name.clone(),
            flag: takeover.colors.get(&env.name).copied(),
            state_file,
            runtime: RuntimeSeen::of(&known, &live),
        });
    }
    Ok(facts)
}

/// Takes the foreign edge over (see the module doc). Refused with nothing changed when a color
/// cannot be decided or `haproxy -c` refuses the candidate; a failed reload is rescued (exit 5)
/// and the state files are put back too.
pub(super) async fn take_over(
    edge: &Edge,
    options: ApplyOptions,
    takeover: &TakeoverOptions,
    live: &LiveView,
) -> Result<ApplyReport, EdgeError> {
    let lock = if options.dry_run {
        None
    } else {
        Some(EdgeLock::acquire_async(&edge.state, options.wait, Holder::current()).await?)
    };
    let p = takeover_plan(edge, takeover).await?;
    let Plan::Takeover {
        colors, undecided, ..
    } = &p
    else {
        return Err(EdgeError::Refused("takeover: no takeover plan".to_string()));
    };
    let chosen: BTreeMap<String, Color> = colors.iter().map(|d| (d.env.clone(), d.color)).collect();
    let rendered =
        render(&edge.topology, &chosen).map_err(|e| EdgeError::BadInput(e.to_string()))?;
    let mut report = ApplyReport {
        desired_fingerprint: rendered.fingerprint.clone(),
        live_fingerprint: live.fingerprint.clone(),
        plan: p.clone(),
        dry_run: options.dry_run,
        files_written: Vec::new(),
        runtime_changes: Vec::new(),
        reload: None,
        repair: None,
        takeover: None,
    };
    if options.dry_run {
        return Ok(report);
    }
    if !undecided.is_empty() {
        return Err(EdgeError::Refused(format!(
            "takeover refused, nothing changed: the active color of {} cannot be decided:\n  {}",
            undecided.len(),
            undecided.join("\n  ")
        )));
    }
    for dir in [
        &edge.topology.paths.maps_dir,
        &edge.topology.paths.state_dir,
    ] {
        crate::files::remove_dead_leftovers(dir);
    }
    let op = operation(live, &rendered);
    let words: Vec<String> = colors
        .iter()
        .map(|d| format!("{} {} ({})", d.env, d.color, d.source))
        .collect();
    edge.state.journal_record(
        &op,
        Phase::Intent,
        Some(&format!("takeover: {}", words.join(", "))),
    )?;
    let mut created = Vec::new();
    let mut old = Vec::new();
    let result = async {
        let (files, recorded) =
            prepare_takeover(edge, takeover, &rendered, &mut old, &mut created)?;
        let outcome = reload::reload(edge, &rendered).await?;
        Ok::<_, EdgeError>((files, recorded, outcome))
    }
    .await;
    match result {
        Ok((files, recorded, outcome)) => {
            edge.state.journal_record(&op, Phase::Done, None)?;
            report.files_written = files;
            report.reload = Some(outcome);
            report.takeover = Some(TakeoverReport {
                colors: colors.clone(),
                recorded,
            });
            drop(lock);
            Ok(report)
        }
        Err(e) => {
            // Back to the files as they were (the reload path restored its own).
            crate::edge::apply::install::restore(&old);
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            let phase = match &e {
                EdgeError::NotVerified(_) => Phase::RolledBack,
                _ => Phase::Failed,
            };
            let _ = edge.state.journal_record(&op, phase, Some(&e.to_string()));
            Err(e)
        }
    }
}

/// Before the reload: the maps in `maps_dir` (`haproxy -c` opens them), the imported
/// history and each env's color, every file's old bytes in `old` and new dirs in `created`.
/// The foreign config reads none of these files, so nothing live changes here.
pub(super) fn prepare_takeover(
    edge: &Edge,
    takeover: &TakeoverOptions,
    rendered: &Rendered,
    old: &mut Vec<(PathBuf, Option<Vec<u8>>)>,
    created: &mut Vec<PathBuf>,
) -> Result<(Vec<PathBuf>, Vec<String>), EdgeError> {
    let paths = &edge.topology.paths;
    crate::edge::apply::install::create_dirs(&paths.maps_dir, created)?;
    if let Some(dir) = paths.server_state_file.parent() {
        crate::edge::apply::install::create_dirs(dir, created)?;
    }
    let mut written = Vec::new();
    for (path, text) in [
        (paths.hosts_map(), &rendered.hosts_map),
        (paths.active_color_map(), &rendered.active_color_map),
    ] {
        old.push((path.clone(), read_optional(&path)?));
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    // The config names the preview map too (HAProxy 2.6 cannot start without the file): made
    // here, with the others, so that a refused takeover removes it again.
    let preview = paths.preview_map();
    if read_optional(&preview)?.is_none() {
        old.push((preview.clone(), None));
        write_atomic(&preview, crate::render::PREVIEW_MAP_HEADER.as_bytes())?;
        written.push(preview);
    }
    let seed = takeover
        .seed_state
        .as_ref()
        .map(|d| crate::state::StateDir::single(d.clone()))
        .filter(|s| s.path() != edge.state.path());
    let mut recorded = Vec::new();
    for (env, color) in &rendered.colors {
        let color_file = edge.state.color_file(env)?;
        let history_file = edge.state.history_file(env)?;
        old.push((color_file.clone(), read_optional(&color_file)?));
        old.push((history_file.clone(), read_optional(&history_file)?));
        let mut history = edge.state.history(env)?;
        if let Some(seed) = &seed {
            let imported = seed.history(env)?;
            if !imported.is_empty() {
                edge.state.write_history_entries(env, &imported)?;
                recorded.push(format!(
                    "{env}: imported {} history line(s) from {}",
                    imported.len(),
                    seed.history_file(env)?.display()
                ));
                history = imported;
            }
        }
        if history.first().map(|h| h.color) == Some(*color) {
            edge.state.write_active_color(env, *color)?;
            recorded.push(format!("{env}: {} says {color}", color_file.display()));
        } else {
            let entry = crate::state::HistoryEntry::now(
                *color,
                None,
                &crate::state::who(),
                std::time::SystemTime::now(),
            )?;
            edge.state.record_entry(env, &history, entry, || {})?;
            recorded.push(format!(
                "{env}: {} says {color}, history line added (the color at takeover)",
                color_file.display()
            ));
        }
        written.push(color_file);
    }
    Ok((written, recorded))
}
