//! The fleet file: the edges one operation changes together (issue 14). Every edge shares the
//! topology's envs and colors; each has its own HAProxy, sockets, maps and state dir, given by
//! its own topology file (`config`), and is reached on this host (`local`, the default) or over
//! the system OpenSSH client (`ssh = "user@host"`), where `vezasock edge-agent` runs.
//!
//! ```toml
//! state_dir = "/var/lib/veza/fleet"      # the coordinator's fleet journal
//!
//! [[edge]]
//! name = "edge-a"
//! config = "/etc/vezasock/edge-a.toml"   # default: the command's --config (or the embedded edge)
//!
//! [[edge]]
//! name = "edge-b"
//! ssh = "deploy@edge-b.example"
//! ssh_options = ["-p", "2222"]
//! vezasock = "/usr/local/bin/vezasock"   # on the far side; default "vezasock"
//! config = "/etc/vezasock/topology.toml" # on the far side; default: its VEZASOCK_CONFIG / embedded
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The most edges a fleet names (each is one connection and, over ssh, one process).
pub const MAX_EDGES: usize = 64;

/// A checked fleet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// Where the coordinator keeps its fleet journal.
    pub state_dir: PathBuf,
    pub edges: Vec<FleetEdge>,
}

/// One edge of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetEdge {
    pub name: String,
    /// Its topology file (local: on this host; ssh: on the far side). `None`: the default.
    pub config: Option<PathBuf>,
    pub reach: Reach,
}

/// How the coordinator reaches an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// This host: the coordinator drives it in its own process.
    Local,
    /// `ssh [options] target -- vezasock edge-agent`.
    Ssh {
        target: String,
        options: Vec<String>,
        vezasock: String,
    },
}

/// A fleet file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read the fleet file {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the fleet file {file} is not valid TOML for a fleet: {message}")]
    Parse { file: String, message: String },
    #[error("the fleet file {file}: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    state_dir: Option<PathBuf>,
    #[serde(default, rename = "edge")]
    edges: Vec<RawEdge>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    name: String,
    config: Option<PathBuf>,
    ssh: Option<String>,
    #[serde(default)]
    ssh_options: Vec<String>,
    vezasock: Option<String>,
}

/// The default fleet state dir.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/veza/fleet";

impl Fleet {
    /// Reads and checks a fleet file.
    pub fn load(path: &Path) -> Result<Fleet, FleetError> {
        let file = path.display().to_string();
        let text = crate::files::read_bounded_text(path, crate::files::limit::CONFIG).map_err(
            |source| FleetError::Read {
                file: file.clone(),
                source,
            },
        )?;
        Fleet::from_toml(&text, &file)
    }

    /// Parses and checks fleet TOML (`file` names it in errors).
    pub fn from_toml(text: &str, file: &str) -> Result<Fleet, FleetError> {
        let raw: RawFleet = toml::from_str(text).map_err(|e| FleetError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| FleetError::Invalid {
            file: file.to_string(),
            message,
        };
        if raw.edges.is_empty() {
            return Err(invalid(
                "it names no edge (`[[edge]]` with a `name`)".into(),
            ));
        }
        if raw.edges.len() > MAX_EDGES {
            return Err(invalid(format!(
                "{} edges; at most {MAX_EDGES}",
                raw.edges.len()
            )));
        }
        let mut edges: Vec<FleetEdge> = Vec::with_capacity(raw.edges.len());
        for e in raw.edges {
            check_edge_name(&e.name).map_err(|why| invalid(format!("edge {:?}: {why}", e.name)))?;
            if edges.iter().any(|x| x.name == e.name) {
                return Err(invalid(format!("edge {:?} is named twice", e.name)));
            }
            let reach = match e.ssh {
                None => {
                    if !e.ssh_options.is_empty() || e.vezasock.is_some() {
                        return Err(invalid(format!(
                            "edge {:?}: ssh_options and vezasock need ssh = \"user@host\"",
                            e.name
                        )));
                    }
                    Reach::Local
                }
                Some(target) => {
                    check_ssh_target(&target).map_err(|why| {
                        invalid(format!("edge {:?}: ssh {target:?}: {why}", e.name))
                    })?;
                    for o in &e.ssh_options {
                        if o.is_empty() || o.contains(['\0', '\n']) {
                            return Err(invalid(format!(
                                "edge {:?}: ssh option {o:?} is empty or holds a NUL or newline",
                                e.name
                            )));
                        }
                    }
                    let vezasock = e.vezasock.unwrap_or_else(|| "vezasock".to_string());
                    check_remote_word(&vezasock).map_err(|why| {
                        invalid(format!("edge {:?}: vezasock {vezasock:?}: {why}", e.name))
                    })?;
                    if let Some(c) = &e.config {
                        check_remote_word(&c.to_string_lossy()).map_err(|why| {
                            invalid(format!("edge {:?}: config {}: {why}", e.name, c.display()))
                        })?;
                    }
                    Reach::Ssh {
                        target,
                        options: e.ssh_options,
                        vezasock,
                    }
                }
            };
            edges.push(FleetEdge {
                name: e.name,
                config: e.config,
                reach,
            });
        }
        Ok(Fleet {
            state_dir: raw
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            edges,
        })
    }
}

/// An edge's name as a flag gives it (`edge-agent --fleet-edge`), checked as the fleet file's.
pub fn edge_name(name: &str) -> Result<String, String> {
    check_edge_name(name)
        .map(|()| name.to_string())
        .map_err(str::to_string)
}

/// `[a-z0-9_-]{1,32}`: an edge name goes into messages, file names, JSON and the ssh command
/// line (`edge-agent --fleet-edge NAME`).
fn check_edge_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("use 1 to 32 of a-z 0-9 - _")
    }
}

/// `[user@]host`: no option-looking or shell-significant text (ssh would read `-oProxyCommand=…`
/// as an option).
fn check_ssh_target(target: &str) -> Result<(), &'static str> {
    if target.is_empty() || target.len() > 255 {
        return Err("empty or longer than 255");
    }
    if target.starts_with('-') {
        return Err("it starts with `-`");
    }
    let ok = target.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'-' | b'_' | b':' | b'[' | b']')
    });
    if ok {
        Ok(())
    } else {
        Err("use letters, digits and @ . - _ : [ ]")
    }
}

/// A word of the remote command line (ssh hands it to the far side's shell): no quoting needed.
fn check_remote_word(word: &str) -> Result<(), &'static str> {
    let ok = !word.is_empty()
        && !word.starts_with('-')
        && word.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_' | b'+' | b'=')
        });
    if ok {
        Ok(())
    } else {
        Err("use letters, digits and / . - _ + = (it goes into the remote command line)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_of_a_local_and_an_ssh_edge() {
        let f = Fleet::from_toml(
            r#"
state_dir = "/tmp/fleet"
[[edge]]
name = "a"
config = "/etc/a.toml"
[[edge]]
name = "b"
ssh = "deploy@127.0.0.1"
ssh_options = ["-p", "2222"]
"#,
            "f.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.edges.len(), 2);
        assert_eq!(f.edges[0].reach, Reach::Local);
        assert!(matches!(&f.edges[1].reach, Reach::Ssh { vezasock, .. } if vezasock == "vezasock"));
    }

    #[test]
    fn bad_fleets_are_refused_with_the_reason() {
        for (text, want) in [
            ("", "names no edge"),
            ("[[edge]]\nname = \"A\"", "a-z"),
            ("[[edge]]\nname = \"a\"\n[[edge]]\nname = \"a\"", "twice"),
            (
                "[[edge]]\nname = \"a\"\nssh = \"-oProxyCommand=x\"",
                "starts with",
            ),
            (
                "[[edge]]\nname = \"a\"\nssh = \"h\"\nvezasock = \"x; rm\"",
                "remote command",
            ),
            ("[[edge]]\nname = \"a\"\nssh_options = [\"-p\"]", "need ssh"),
            ("[[edge]]\nname = \"a\"\ntypo = 1", "unknown field"),
        ] {
            let err = Fleet::from_toml(text, "f").err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(want)),
                "{text:?}: {err:?}"
            );
        }
    }
}
