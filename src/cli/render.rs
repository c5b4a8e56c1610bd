//! `vezasock render`: print the rendered `haproxy.cfg`, or write it with its map files and
//! shape summary into a directory. Also [`load_and_render`], which `check` and `plan` share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::{parse_env_color, Checked};
// Kept at its old path for `demo::edge`, which builds the same flags.
pub use super::args::TopologyArgs;
use super::exit::Exit;
use super::output;
use crate::render::{self, maps, Rendered};
use crate::topology::{Color, Topology};

// Arguments of `vezasock render` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Write a preview bundle into DIR instead of printing the config: haproxy.cfg,
    /// haproxy.cfg.shape.json, hosts.map and active-color.map side by side (each atomically),
    /// and certs/00-default.pem, a self-signed placeholder, when the certs dir holds no
    /// certificate for the edge's domains.
    /// The config still reads its maps from the topology's maps dir, so the bundle is for
    /// review, not for starting HAProxy: `vezasock apply` installs the edge (on a new host it
    /// writes the checked config and maps in place and prints the start command).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Active color of an env, e.g. `--color staging=green` (repeatable). Default: the live
    /// active-color.map, then blue.
    #[arg(long = "color", value_name = "ENV=COLOR", value_parser = Checked(parse_env_color))]
    pub colors: Vec<(String, Color)>,
}

/// The live active colors from the map file on disk (empty when there is none yet), so that
/// re-rendering never flips an env. A map file that is not a regular file (or too large) is bad
/// input (exit 2); one that cannot be read or parsed is a refusal (exit 1).
pub fn live_colors(topo: &Topology) -> Result<BTreeMap<String, Color>, RenderFailure> {
    let path = topo.paths.active_color_map();
    match crate::files::read_bounded_text(&path, crate::files::limit::STATE) {
        Ok(text) => maps::parse_colors(&text)
            .map_err(|e| RenderFailure::new(Exit::Refused, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => {
            let exit = if crate::files::is_refused_read(&e) {
                Exit::BadInput
            } else {
                Exit::Refused
            };
            let message = format!("cannot read {}: {e}", path.display());
            Err(RenderFailure::new(exit, message))
        }
    }
}

/// Why [`load_and_render`] failed: the message and the exit code it means.
#[derive(Debug)]
pub struct RenderFailure {
    pub exit: Exit,
    pub message: String,
}

impl RenderFailure {
    fn new(exit: Exit, message: impl Into<String>) -> RenderFailure {
        RenderFailure {
            exit,
            message: message.into(),
        }
    }

    /// Prints the message for `command` and returns the exit code.
    pub fn report(&self, command: &str) -> ExitCode {
        eprintln!("vezasock {command}: {}", self.message);
        self.exit.into()
    }
}

/// Loads the topology and renders it with the live colors (plus `extra` overrides). A bad
/// topology or `--color` is bad input (exit 2); an unreadable map file or a render failure is
/// a refusal (exit 1).
pub fn load_and_render(
    args: &TopologyArgs,
    extra: &[(String, Color)],
) -> Result<(Topology, Rendered), RenderFailure> {
    let topo = args
        .load()
        .map_err(|e| RenderFailure::new(Exit::BadInput, e.to_string()))?;
    let mut colors = live_colors(&topo)?;
    for (env, color) in extra {
        if !topo.env(env).is_some_and(|e| e.colored) {
            return Err(RenderFailure::new(
                Exit::BadInput,
                format!("--color {env}={color}: no env {env:?} with colors in the topology"),
            ));
        }
        colors.insert(env.clone(), *color);
    }
    let rendered = render::render(&topo, &colors)
        .map_err(|e| RenderFailure::new(Exit::Refused, e.to_string()))?;
    Ok((topo, rendered))
}

/// Runs `vezasock render`.
pub fn run(args: &RenderArgs) -> ExitCode {
    let (topo, rendered) = match load_and_render(&args.topology, &args.colors) {
        Ok(r) => r,
        Err(failure) => return failure.report("render"),
    };
    match &args.out {
        None => {
            output::text(&rendered.config);
            Exit::Ok.into()
        }
        Some(dir) => match render::write::write_rendered(&rendered, dir) {
            Ok(paths) => {
                for p in paths {
                    output::line(&format!("wrote {}", p.display()));
                }
                placeholder(&topo, dir)
            }
            Err(e) => {
                eprintln!("vezasock render: cannot write into {}: {e}", dir.display());
                Exit::Refused.into()
            }
        },
    }
}

/// With no certificate for the edge's domains in the certs dir, the bundle also holds the
/// self-signed placeholder that `apply` would install (`certs/00-default.pem`).
fn placeholder(topo: &Topology, dir: &std::path::Path) -> ExitCode {
    let Some(tls) = topo
        .tls
        .as_ref()
        .filter(|_| crate::edge::cert::needs_placeholder(topo))
    else {
        return Exit::Ok.into();
    };
    let domains = crate::edge::cert::domain_set(topo);
    match crate::edge::cert::ensure_placeholder_in(&dir.join("certs"), &domains) {
        Ok(written) => {
            if let Some(p) = written {
                output::line(&format!(
                    "wrote {} (self-signed placeholder: {} holds no certificate for the edge's domains)",
                    p.display(),
                    tls.certs_dir.display()
                ));
            }
            Exit::Ok.into()
        }
        Err(e) => {
            eprintln!("vezasock render: {e}");
            Exit::Refused.into()
        }
    }
}
