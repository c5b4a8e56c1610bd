//! `vezasock render`: print the rendered `haproxy.cfg`, or write it with its map files and
//! shape summary into a directory. Also holds [`TopologyArgs`], the `--config` and path
//! override flags every topology-reading command shares.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::render::{self, maps, Rendered};
use crate::topology::{Color, LoadError, PathOverrides, ReloadMethod, Topology};

// Where the topology comes from, and overrides of its runtime paths (a plain comment: see
// `Command` in cli/mod.rs).
#[derive(Debug, Clone, Default, Args)]
pub struct TopologyArgs {
    /// Topology file (TOML). Without it, the embedded "veza" edge.
    #[arg(long, env = "VEZASOCK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The live HAProxy config file.
    #[arg(long, env = "VEZASOCK_HAPROXY_CONFIG", value_name = "FILE")]
    pub haproxy_config: Option<PathBuf>,
    /// Directory of hosts.map and active-color.map.
    #[arg(long, env = "VEZASOCK_MAPS_DIR", value_name = "DIR")]
    pub maps_dir: Option<PathBuf>,
    /// Stats socket at level admin.
    #[arg(long, env = "VEZASOCK_ADMIN_SOCKET", value_name = "PATH")]
    pub admin_socket: Option<PathBuf>,
    /// Stats socket at level operator (read-only status).
    #[arg(long, env = "VEZASOCK_OPERATOR_SOCKET", value_name = "PATH")]
    pub operator_socket: Option<PathBuf>,
    /// Master CLI socket.
    #[arg(long, env = "VEZASOCK_MASTER_SOCKET", value_name = "PATH")]
    pub master_socket: Option<PathBuf>,
    /// HAProxy server-state file.
    #[arg(long, env = "VEZASOCK_SERVER_STATE_FILE", value_name = "FILE")]
    pub server_state_file: Option<PathBuf>,
    /// vezasock's state directory.
    #[arg(long, env = "VEZASOCK_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The HAProxy binary.
    #[arg(long, env = "VEZASOCK_HAPROXY", value_name = "FILE")]
    pub haproxy: Option<PathBuf>,
    /// The HAProxy master's pid file.
    #[arg(long, env = "VEZASOCK_PID_FILE", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// How to reload: master-cli or signal.
    #[arg(long, env = "VEZASOCK_RELOAD_METHOD", value_name = "METHOD", value_parser = parse_reload_method)]
    pub reload_method: Option<ReloadMethod>,
}

fn parse_reload_method(s: &str) -> Result<ReloadMethod, String> {
    ReloadMethod::parse(s)
        .ok_or_else(|| format!("unknown reload method {s:?}; use master-cli or signal"))
}

impl TopologyArgs {
    /// The path overrides given on the command line or in the environment.
    pub fn overrides(&self) -> PathOverrides {
        PathOverrides {
            config: self.haproxy_config.clone(),
            maps_dir: self.maps_dir.clone(),
            admin_socket: self.admin_socket.clone(),
            operator_socket: self.operator_socket.clone(),
            master_socket: self.master_socket.clone(),
            server_state_file: self.server_state_file.clone(),
            state_dir: self.state_dir.clone(),
            haproxy: self.haproxy.clone(),
            pid_file: self.pid_file.clone(),
            reload_method: self.reload_method,
        }
    }

    /// Loads the topology (file or embedded default) and applies the overrides.
    pub fn load(&self) -> Result<Topology, LoadError> {
        let mut topo = match &self.config {
            Some(path) => Topology::load(path)?,
            None => Topology::embedded_default()?,
        };
        topo.override_paths(&self.overrides())?;
        Ok(topo)
    }
}

// Arguments of `vezasock render` (a plain comment: a doc comment would replace the subcommand's
// about text, which clap applies from the `Command` variant).
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Write a preview bundle into DIR instead of printing the config: haproxy.cfg,
    /// haproxy.cfg.shape.json, hosts.map and active-color.map side by side (each atomically).
    /// The config still reads its maps from the topology's maps dir, so the bundle is for
    /// review, not for starting HAProxy: `vezasock apply` installs the edge (on a new host it
    /// writes the checked config and maps in place and prints the start command).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Active color of an env, e.g. `--color staging=green` (repeatable). Default: the live
    /// active-color.map, then blue.
    #[arg(long = "color", value_name = "ENV=COLOR", value_parser = parse_env_color)]
    pub colors: Vec<(String, Color)>,
}

fn parse_env_color(s: &str) -> Result<(String, Color), String> {
    let (env, color) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not ENV=COLOR"))?;
    let color = Color::parse(color).ok_or_else(|| format!("{color:?} is not blue or green"))?;
    Ok((env.to_string(), color))
}

/// The live active colors from the map file on disk (empty when there is none yet), so that
/// re-rendering never flips an env.
pub fn live_colors(topo: &Topology) -> Result<BTreeMap<String, Color>, String> {
    let path = topo.paths.active_color_map();
    match std::fs::read_to_string(&path) {
        Ok(text) => maps::parse_colors(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Loads the topology and renders it with the live colors (plus `extra` overrides).
pub fn load_and_render(
    args: &TopologyArgs,
    extra: &[(String, Color)],
) -> Result<(Topology, Rendered), String> {
    let topo = args.load().map_err(|e| e.to_string())?;
    let mut colors = live_colors(&topo)?;
    for (env, color) in extra {
        if !topo.env(env).is_some_and(|e| e.colored) {
            return Err(format!(
                "--color {env}={color}: no env {env:?} with colors in the topology"
            ));
        }
        colors.insert(env.clone(), *color);
    }
    let rendered = render::render(&topo, &colors).map_err(|e| e.to_string())?;
    Ok((topo, rendered))
}

/// Runs `vezasock render`.
pub fn run(args: &RenderArgs) -> ExitCode {
    let (_, rendered) = match load_and_render(&args.topology, &args.colors) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vezasock render: {e}");
            return ExitCode::FAILURE;
        }
    };
    match &args.out {
        None => {
            print!("{}", rendered.config);
            ExitCode::SUCCESS
        }
        Some(dir) => match render::write::write_rendered(&rendered, dir) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vezasock render: cannot write into {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
    }
}
