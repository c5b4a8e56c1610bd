//! Taking over an edge vezasock did not render (the seed's Ansible-rendered config, or any
//! hand-written one): which color each env keeps. Pure: the caller reads the flags, the state
//! files and `show servers state`; every rule here is unit-tested on values.
//!
//! The order, each decision saying where it came from (never a silent guess):
//! 1. `--color ENV=COLOR` (the operator said so);
//! 2. the env's state file (`active-color-<env>`, the seed's or vezasock's);
//! 3. the live runtime: the color whose servers are in rotation in the foreign config, when
//!    exactly one color is;
//! 4. else the env is undecided and the takeover is refused.
//!
//! A state file that names one color while the runtime serves only the other is undecided
//! too: taking over with either would change what some side believes, so the operator picks.

use serde::Serialize;

use crate::topology::Color;

/// A server the topology declares for one env and color.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownServer {
    pub color: Color,
    /// The host part of its address (`veza-staging-api-blue.lxd`, `127.0.0.1`).
    pub host: String,
    pub port: u16,
}

/// One row of the foreign config's `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveServer {
    pub backend: String,
    pub server: String,
    /// `srv_addr` (an IP once resolved).
    pub addr: Option<String>,
    /// `srv_fqdn`, when HAProxy kept the name it resolved.
    pub fqdn: Option<String>,
    pub port: u32,
    /// Neither in maintenance nor draining: it takes new sessions.
    pub in_rotation: bool,
}

impl KnownServer {
    /// Same address and port, or the live server is named after this one's host (the seed
    /// writes `server veza-api-blue veza-api-blue.lxd:8080`).
    fn matches(&self, live: &LiveServer) -> bool {
        let same_port = live.port == u32::from(self.port);
        let same_host = live.addr.as_deref() == Some(self.host.as_str())
            || live.fqdn.as_deref() == Some(self.host.as_str());
        let short = self.host.split('.').next().unwrap_or(&self.host);
        (same_port && same_host) || (!short.is_empty() && live.server == short && !is_ip(short))
    }
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok() || s.chars().all(|c| c.is_ascii_digit())
}

/// What the runtime shows for one env: the live servers in rotation of each color.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeSeen {
    /// `backend/server` of each in-rotation live server that is one of the env's blue servers.
    pub blue: Vec<String>,
    pub green: Vec<String>,
}

impl RuntimeSeen {
    /// Which of `known` (one env's servers) the live rows show in rotation, per color.
    pub fn of(known: &[KnownServer], live: &[LiveServer]) -> RuntimeSeen {
        let mut seen = RuntimeSeen::default();
        for row in live.iter().filter(|r| r.in_rotation) {
            for color in Color::ALL {
                if known.iter().any(|k| k.color == color && k.matches(row)) {
                    let name = format!("{}/{}", row.backend, row.server);
                    match color {
                        Color::Blue => seen.blue.push(name),
                        Color::Green => seen.green.push(name),
                    }
                }
            }
        }
        seen
    }

    /// The one color in rotation, if exactly one is.
    pub fn only(&self) -> Option<Color> {
        match (self.blue.is_empty(), self.green.is_empty()) {
            (false, true) => Some(Color::Blue),
            (true, false) => Some(Color::Green),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match (self.blue.is_empty(), self.green.is_empty()) {
            (true, true) => "the runtime shows none of its servers in rotation".to_string(),
            (false, false) => format!(
                "the runtime has both colors in rotation (blue: {}; green: {})",
                self.blue.join(", "),
                self.green.join(", ")
            ),
            (false, true) => format!("the runtime serves blue ({})", self.blue.join(", ")),
            (true, false) => format!("the runtime serves green ({})", self.green.join(", ")),
        }
    }
}

/// Everything known about one env's color before a takeover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFacts {
    pub env: String,
    /// `--color ENV=COLOR`.
    pub flag: Option<Color>,
    /// The state file's color and its path.
    pub state_file: Option<(Color, String)>,
    pub runtime: RuntimeSeen,
}

/// One env's color for the takeover, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColorDecision {
    pub env: String,
    pub color: Color,
    /// `flag`, `state-file` or `runtime`.
    pub source: &'static str,
    /// The same in words, with what the other sources said.
    pub detail: String,
}

/// Decides each env's color: the decisions, and one line per env that cannot be decided (when
/// there is any, the takeover is refused: it takes all envs or none).
pub fn decide(facts: &[EnvFacts]) -> (Vec<ColorDecision>, Vec<String>) {
    let mut decided = Vec::new();
    let mut undecided = Vec::new();
    for f in facts {
        let runtime = f.runtime.only();
        let d = |color, source, detail: String| ColorDecision {
            env: f.env.clone(),
            color,
            source,
            detail,
        };
        if let Some(color) = f.flag {
            decided.push(d(
                color,
                "flag",
                format!("--color {}={color}; {}", f.env, f.runtime.describe()),
            ));
            continue;
        }
        match (&f.state_file, runtime) {
            (Some((color, path)), Some(live)) if *color != live => undecided.push(format!(
                "{}: the state file {path} says {color} but {}; pass --color {}=blue|green",
                f.env,
                f.runtime.describe(),
                f.env
            )),
            (Some((color, path)), _) => decided.push(d(
                *color,
                "state-file",
                format!("{path} says {color}; {}", f.runtime.describe()),
            )),
            (None, Some(live)) => decided.push(d(
                live,
                "runtime",
                format!("no state file; {}", f.runtime.describe()),
            )),
            (None, None) => undecided.push(format!(
                "{}: no state file, and {}; pass --color {}=blue|green",
                f.env,
                f.runtime.describe(),
                f.env
            )),
        }
    }
    (decided, undecided)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<KnownServer> {
        vec![
            KnownServer {
                color: Color::Blue,
                host: "127.0.0.1".into(),
                port: 9001,
            },
            KnownServer {
                color: Color::Green,
                host: "veza-staging-api-green.lxd".into(),
                port: 8080,
            },
        ]
    }

    fn live(server: &str, addr: &str, port: u32, in_rotation: bool) -> LiveServer {
        LiveServer {
            backend: "staging_backend_api".into(),
            server: server.into(),
            addr: Some(addr.into()),
            fqdn: None,
            port,
            in_rotation,
        }
    }

    fn facts(state: Option<Color>, seen: RuntimeSeen, flag: Option<Color>) -> EnvFacts {
        EnvFacts {
            env: "staging".into(),
            flag,
            state_file: state.map(|c| (c, "/var/lib/veza/active-color-staging".into())),
            runtime: seen,
        }
    }

    #[test]
    fn live_servers_match_by_address_or_by_the_seed_name() {
        let rows = [
            live("s1", "127.0.0.1", 9001, true),
            live("veza-staging-api-green", "10.0.0.7", 8080, true),
            live("other", "127.0.0.1", 9002, true),
        ];
        let seen = RuntimeSeen::of(&known(), &rows);
        assert_eq!(seen.blue, vec!["staging_backend_api/s1"]);
        assert_eq!(
            seen.green,
            vec!["staging_backend_api/veza-staging-api-green"]
        );
        assert_eq!(seen.only(), None);
        let drained = [live("s1", "127.0.0.1", 9001, false)];
        assert_eq!(RuntimeSeen::of(&known(), &drained), RuntimeSeen::default());
    }

    #[test]
    fn the_order_is_flag_then_state_file_then_runtime() {
        let green = RuntimeSeen {
            green: vec!["b/s".into()],
            ..RuntimeSeen::default()
        };
        let (d, u) = decide(&[facts(None, green.clone(), Some(Color::Blue))]);
        assert!(u.is_empty());
        assert_eq!((d[0].color, d[0].source), (Color::Blue, "flag"));
        let (d, _) = decide(&[facts(Some(Color::Green), green.clone(), None)]);
        assert_eq!((d[0].color, d[0].source), (Color::Green, "state-file"));
        let (d, _) = decide(&[facts(Some(Color::Blue), RuntimeSeen::default(), None)]);
        assert_eq!((d[0].color, d[0].source), (Color::Blue, "state-file"));
        let (d, _) = decide(&[facts(None, green, None)]);
        assert_eq!((d[0].color, d[0].source), (Color::Green, "runtime"));
    }

    #[test]
    fn ambiguous_or_contradicted_colors_are_refused_with_the_flag_named() {
        let both = RuntimeSeen {
            blue: vec!["b/1".into()],
            green: vec!["b/2".into()],
        };
        let (d, u) = decide(&[facts(None, both, None)]);
        assert!(d.is_empty());
        assert!(
            u[0].contains("both colors") && u[0].contains("--color staging="),
            "{u:?}"
        );
        let (_, u) = decide(&[facts(None, RuntimeSeen::default(), None)]);
        assert!(u[0].contains("none of its servers"), "{u:?}");
        let green = RuntimeSeen {
            green: vec!["b/s".into()],
            ..RuntimeSeen::default()
        };
        let (d, u) = decide(&[facts(Some(Color::Blue), green, None)]);
        assert!(d.is_empty() && u[0].contains("says blue"), "{u:?}");
    }
}
