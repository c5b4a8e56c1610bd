//! The component kinds (`[[component]]`): names, ports, path rules (each reachable: not routed
//! twice, not under the ACME path, not shadowed by an earlier component's rule), check paths.

use std::collections::BTreeMap;

use super::values::{env_or_component_name, path_rule};
use super::{Checker, MAX_ITEMS};
use crate::topology::file::{RawComponent, RawTopology};
use crate::topology::Component;

/// The component kinds; `acme_path` is routed before any of them (when ACME is configured).
pub(super) fn components(
    c: &mut Checker<'_>,
    raw: &RawTopology,
    acme_path: Option<&str>,
) -> Vec<Component> {
    let mut out: Vec<Component> = Vec::new();
    if !c.bounded(&raw.components, None, "component") {
        return out;
    }
    let mut routes = Routes {
        acme_path,
        ..Routes::default()
    };
    for (i, rc) in raw.components.iter().enumerate() {
        let rc = rc.get_ref();
        let Some(name) = c.check(&rc.name, format_args!("component[{i}].name"), |s| {
            env_or_component_name(s)
        }) else {
            continue;
        };
        if out.iter().any(|o| o.name == name) {
            c.err(
                Some(rc.name.span()),
                format!("component.{name}.name"),
                format!("component {name:?} is declared twice"),
            );
            continue;
        }
        out.extend(component(c, &mut routes, rc, name));
    }
    out
}

/// The path rules accepted so far, across components.
#[derive(Default)]
pub(super) struct Routes<'a> {
    acme_path: Option<&'a str>,
    /// rule → the component it routes to.
    seen: BTreeMap<String, String>,
    /// Every accepted path rule in declaration order: the rendered use_backend rules keep it.
    routed: Vec<(String, String)>,
    /// The one component without paths.
    catch_all: Option<String>,
}

/// One component, named `name` (checked and unique); `None` when its port is invalid (reported
/// here; the envs using it are then not told again that it has no port).
pub(super) fn component(
    c: &mut Checker<'_>,
    routes: &mut Routes<'_>,
    rc: &RawComponent,
    name: String,
) -> Option<Component> {
    // Table-level errors point at the item's name line.
    let span = rc.name.span();
    let f = format!("component.{name}");
    let mut bad_port = false;
    let port = rc
        .port
        .as_ref()
        .and_then(|port| match u16::try_from(*port.get_ref()) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                c.err(
                    Some(port.span()),
                    format!("{f}.port"),
                    "must be a port number from 1 to 65535",
                );
                bad_port = true;
                None
            }
        });
    c.bounded(&rc.paths, Some(span.clone()), format_args!("{f}.paths"));
    let paths = component_paths(c, routes, rc, &name);
    if rc.paths.is_empty() {
        if let Some(other) = &routes.catch_all {
            c.err(
                Some(span.clone()),
                format!("{f}.paths"),
                format!("only one component may have no paths (the catch-all); {other:?} already has none"),
            );
        }
        routes.catch_all = Some(name.clone());
    }
    let check = rc.check.as_ref().and_then(|p| {
        c.check(p, format_args!("{f}.check"), |s| {
            path_rule(s).map(|_| s.to_string())
        })
    });
    if bad_port {
        return None;
    }
    Some(Component {
        name,
        paths,
        port,
        check,
        http_no_delay: rc.http_no_delay,
    })
}

/// The component's path rules that are valid and reachable: not routed already, not under the
/// ACME path, not shadowed by an earlier component's rule.
pub(super) fn component_paths(
    c: &mut Checker<'_>,
    routes: &mut Routes<'_>,
    rc: &RawComponent,
    name: &str,
) -> Vec<String> {
    let mut paths = Vec::new();
    for (j, p) in rc.paths.iter().enumerate().take(MAX_ITEMS) {
        let field = format!("component.{name}.paths[{j}]");
        let Some(rule) = c.check(p, field.clone(), |s| path_rule(s).map(|_| s.to_string())) else {
            continue;
        };
        if let Some(other) = routes.seen.insert(rule.clone(), name.to_string()) {
            c.err(
                Some(p.span()),
                field,
                format!("path {rule:?} is already routed to component {other:?}"),
            );
        } else if let Some(acme) = routes.acme_path.filter(|a| shadows(a, &rule)) {
            c.err(
                Some(p.span()),
                field,
                format!(
                    "path {rule:?} of component {name:?} is unreachable: the ACME \
                     challenges under {acme:?} are routed before every component"
                ),
            );
        } else if let Some((other, by)) = routes
            .routed
            .iter()
            .find(|(other, by)| *other != name && shadows(by, &rule))
        {
            c.err(
                Some(p.span()),
                field,
                format!(
                    "path {rule:?} of component {name:?} is unreachable: component \
                     {other:?}, declared earlier, routes {by:?}, which matches every \
                     request {rule:?} would; declare {name:?} first or drop the path"
                ),
            );
        } else {
            routes.routed.push((name.to_string(), rule.clone()));
            paths.push(rule);
        }
    }
    paths
}

/// Whether path rule `earlier` matches every request `later` matches, so a `use_backend` rule
/// for `later` placed after it never fires. A rule `/a` matches `/a` and `/a/…`; a rule `/a/`
/// matches `/a/…` (see the template's `path_beg`).
pub(super) fn shadows(earlier: &str, later: &str) -> bool {
    let dir = |p: &str| {
        if p.ends_with('/') {
            p.to_string()
        } else {
            format!("{p}/")
        }
    };
    let earlier_dir = dir(earlier);
    let covered = |path: &str| path == earlier || path.starts_with(&earlier_dir);
    // `later`'s exact match (when it has one) and its directory prefix must both be covered.
    let exact_covered = later.ends_with('/') || covered(later);
    exact_covered && dir(later).starts_with(&earlier_dir)
}
