//! The envs (`[[env]]`): names, hosts, cookies, their components and each component's servers
//! (listed, or the default containers named from the env's prefix).

use std::collections::HashSet;
use std::fmt::Display;
use std::ops::Range;

use toml::Spanned;

use super::values::{address, container_prefix, cookie_name, env_or_component_name, host_name};
use super::{Checker, MAX_ENVS, MAX_ITEMS};
use crate::topology::file::{RawEnv, RawServers, RawTopology, SStr};
use crate::topology::{Address, Color, Component, Env, EnvComponent, Server, Servers};

pub(super) fn envs(
    c: &mut Checker<'_>,
    raw: &RawTopology,
    components: &[Component],
    base_cookie: &str,
    domain: &str,
) -> Vec<Env> {
    let mut out: Vec<Env> = Vec::new();
    if !c.bounded_to(&raw.envs, MAX_ENVS, None, "env") {
        return out;
    }
    let mut seen: HashSet<String> = HashSet::new();
    for (i, re) in raw.envs.iter().enumerate() {
        let re = re.get_ref();
        let Some(name) = c.check(&re.name, format_args!("env[{i}].name"), |s| {
            env_or_component_name(s)
        }) else {
            continue;
        };
        if !seen.insert(name.clone()) {
            c.err(
                Some(re.name.span()),
                format!("env.{name}.name"),
                format!("env {name:?} is declared twice"),
            );
            continue;
        }
        let known = Known {
            raw,
            components,
            domain,
        };
        out.extend(env(c, &known, re, name, base_cookie));
    }
    out
}

/// What an env is checked against: the file, its checked components and the container domain.
pub(super) struct Known<'a> {
    raw: &'a RawTopology,
    components: &'a [Component],
    domain: &'a str,
}

/// One env, named `name` (checked and unique); `None` when a value it needs is invalid (the
/// errors are in `c`).
pub(super) fn env(
    c: &mut Checker<'_>,
    known: &Known<'_>,
    re: &RawEnv,
    name: String,
    base_cookie: &str,
) -> Option<Env> {
    // Table-level errors point at the item's name line.
    let span = re.name.span();
    let f = format!("env.{name}");
    let prefix = match &re.prefix {
        Some(p) => c.check(p, format_args!("{f}.prefix"), container_prefix),
        None => Some(name.clone()),
    };
    if re.hosts.is_empty() {
        c.err(
            Some(span.clone()),
            format!("{f}.hosts"),
            "an env needs at least one public host",
        );
    }
    c.bounded(&re.hosts, Some(span.clone()), format_args!("{f}.hosts"));
    let hosts: Vec<String> = re
        .hosts
        .iter()
        .enumerate()
        .take(MAX_ITEMS)
        .filter_map(|(j, h)| c.check(h, format_args!("{f}.hosts[{j}]"), host_name))
        .collect();
    let cookie = env_cookie(c, re, &name, base_cookie);
    let colored = re.colors.unwrap_or(true);
    if re.components.is_empty() {
        c.err(
            Some(span.clone()),
            format!("{f}.components"),
            "an env needs at least one component",
        );
    }
    let components = env_components(c, known, re, &f, prefix.as_deref(), colored);
    stray_servers(c, known, re, &f);
    Some(Env {
        name,
        prefix: prefix?,
        hosts,
        cookie: cookie?,
        colored,
        components,
    })
}

/// The env's sticky cookie: its own `cookie`, or the edge's base cookie, suffixed `_<env>`.
pub(super) fn env_cookie(
    c: &mut Checker<'_>,
    re: &RawEnv,
    name: &str,
    base_cookie: &str,
) -> Option<String> {
    let field = format!("env.{name}.cookie");
    match &re.cookie {
        Some(k) => c.check(k, field, |s| {
            let full = format!("{s}_{name}");
            cookie_name(&full).map(|_| full)
        }),
        None => {
            let full = format!("{base_cookie}_{name}");
            match cookie_name(&full) {
                Ok(()) => Some(full),
                Err(m) => {
                    c.err(Some(re.name.span()), field, m);
                    None
                }
            }
        }
    }
}

/// The env's components with their servers (listed in `servers`, or the default containers
/// named from `prefix`).
pub(super) fn env_components(
    c: &mut Checker<'_>,
    known: &Known<'_>,
    re: &RawEnv,
    f: &str,
    prefix: Option<&str>,
    colored: bool,
) -> Vec<EnvComponent> {
    let span = re.name.span();
    let mut out: Vec<EnvComponent> = Vec::new();
    for (j, rc) in re.components.iter().enumerate().take(MAX_ITEMS) {
        if declared_but_invalid(known.raw, rc.get_ref(), known.components) {
            continue; // already reported where it is declared
        }
        let Some(comp) = c.check(rc, format_args!("{f}.components[{j}]"), |s| {
            known
                .components
                .iter()
                .find(|k| k.name == s)
                .cloned()
                .ok_or_else(|| unknown_component(s, known.components))
        }) else {
            continue;
        };
        if out.iter().any(|e| e.name == comp.name) {
            c.err(
                Some(rc.span()),
                format_args!("{f}.components[{j}]"),
                format!("component {:?} is listed twice", comp.name),
            );
            continue;
        }
        // The field name is only formatted when there is an error to report.
        let sf = format_args!("{f}.servers.{}", comp.name);
        let servers = match (re.servers.get(&comp.name), prefix) {
            (Some(rs), _) => explicit_servers(c, rs, &sf, colored),
            (None, Some(prefix)) => {
                default_servers(c, span.clone(), &sf, prefix, &comp, known.domain, colored)
            }
            (None, None) => None,
        };
        if let Some(servers) = servers {
            out.push(EnvComponent {
                name: comp.name.clone(),
                servers,
            });
        }
    }
    out
}

/// A `servers.<component>` table for a component the env does not list is an error.
pub(super) fn stray_servers(c: &mut Checker<'_>, known: &Known<'_>, re: &RawEnv, f: &str) {
    for (key, rs) in &re.servers {
        if declared_but_invalid(known.raw, key, known.components) {
            continue;
        }
        if !re.components.iter().any(|k| k.get_ref() == key) {
            let msg = if known.components.iter().any(|k| &k.name == key) {
                format!("component {key:?} is not in this env's components list")
            } else {
                unknown_component(key, known.components)
            };
            c.err(Some(rs.span()), format!("{f}.servers.{key}"), msg);
        }
    }
}

/// A component declared in the file but refused: its error is already reported, so uses of its
/// name are not reported again.
pub(super) fn declared_but_invalid(
    raw: &RawTopology,
    name: &str,
    components: &[Component],
) -> bool {
    raw.components
        .iter()
        .any(|k| k.get_ref().name.get_ref() == name)
        && !components.iter().any(|k| k.name == name)
}

pub(super) fn unknown_component(name: &str, components: &[Component]) -> String {
    let known: Vec<&str> = components.iter().map(|k| k.name.as_str()).collect();
    format!(
        "unknown component {name:?}; declared components: {}",
        known.join(", ")
    )
}

pub(super) fn explicit_servers(
    c: &mut Checker<'_>,
    rs: &Spanned<RawServers>,
    f: &dyn Display,
    colored: bool,
) -> Option<Servers> {
    let span = rs.span();
    let r = rs.get_ref();
    let list = |c: &mut Checker<'_>,
                items: &[SStr],
                field: &dyn Display,
                prefix: &str|
     -> Option<Vec<Server>> {
        if items.is_empty() {
            c.err(
                Some(span.clone()),
                field,
                "needs at least one server address",
            );
            return None;
        }
        if !c.bounded(items, Some(span.clone()), field) {
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (k, a) in items.iter().enumerate() {
            match c.check(a, format_args!("{field}[{k}]"), address) {
                Some(address) => out.push(Server {
                    name: format!("{prefix}_{}", k + 1),
                    address,
                }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    };
    if colored {
        if r.pool.is_some() {
            c.err(Some(span), format!("{f}.pool"), "this env has colors: give `blue` and `green`, not `pool` (or set `colors = false` on the env)");
            return None;
        }
        match (&r.blue, &r.green) {
            (Some(b), Some(g)) => {
                let blue = list(c, b, &format_args!("{f}.blue"), "blue");
                let green = list(c, g, &format_args!("{f}.green"), "green");
                Some(Servers::Colored {
                    blue: blue?,
                    green: green?,
                })
            }
            _ => {
                c.err(Some(span), f, "give both `blue` and `green` server lists");
                None
            }
        }
    } else {
        if r.blue.is_some() || r.green.is_some() {
            c.err(
                Some(span),
                f,
                "this env has `colors = false`: give `pool`, not `blue`/`green`",
            );
            return None;
        }
        match &r.pool {
            Some(p) => list(c, p, &format_args!("{f}.pool"), "srv").map(Servers::Pool),
            None => {
                c.err(Some(span), format!("{f}.pool"), "give a `pool` server list");
                None
            }
        }
    }
}

pub(super) fn default_servers(
    c: &mut Checker<'_>,
    span: Range<usize>,
    f: &dyn Display,
    prefix: &str,
    comp: &Component,
    domain: &str,
    colored: bool,
) -> Option<Servers> {
    let Some(port) = comp.port else {
        c.err(
            Some(span),
            f,
            format!(
                "component {:?} has no port, so its container-name servers have none: give the \
                 component a `port`, or list this env's servers for it",
                comp.name
            ),
        );
        return None;
    };
    let mk = |c: &mut Checker<'_>, label: String, name: &str| {
        // The container name becomes a DNS label: keep it within 63 characters.
        if label.len() > 63 {
            c.err(
                Some(span.clone()),
                f,
                format!(
                    "container name {label:?} is longer than 63 characters; shorten the prefix"
                ),
            );
        }
        Server {
            name: name.to_string(),
            address: Address {
                host: format!("{label}.{domain}"),
                port,
            },
        }
    };
    if colored {
        let blue = mk(
            c,
            format!("{prefix}-{}-{}", comp.name, Color::Blue),
            "blue_1",
        );
        let green = mk(
            c,
            format!("{prefix}-{}-{}", comp.name, Color::Green),
            "green_1",
        );
        Some(Servers::Colored {
            blue: vec![blue],
            green: vec![green],
        })
    } else {
        Some(Servers::Pool(vec![mk(
            c,
            format!("{prefix}-{}", comp.name),
            "srv_1",
        )]))
    }
}
