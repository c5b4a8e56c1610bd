//! A color's pool grows or shrinks: servers added to or removed from a backend both configs
//! have, with nothing else of the shape changed ([`ShapeSummary::pool_changes`]). Each goes
//! over the runtime API (`add server` / `del server`) unless the running HAProxy refuses it;
//! then the whole change is a reload that `apply` takes only when asked (`--reload`), and the
//! plan says why for each server.
//!
//! What HAProxy refuses (recorded in `grammar/corpus-pools/`):
//! - `cookie` on an added server before 3.0 (`'cookie' option is not accepted for dynamic
//!   server`): every server of a backend with a sticky cookie has one;
//! - `track` of a server added at the same time (`unable to use … for tracking as it is a
//!   dynamic server`): a cross-color backup tracks its twin;
//! - `del server` of a server another one tracks (`This server cannot be removed at runtime
//!   due to other configuration elements pointing to it.`);
//! - a backend with a non-dynamic balance algorithm (`static-rr`, `hash-type map-based`).
//!
//! Added servers are given as IP and port only: a host name is resolved when HAProxy starts.
//!
//! A new backend (a new env or component) goes over the runtime on 3.4+ when a named
//! defaults section of the live config holds exactly its lines ([`backend_source`]); else
//! the whole change is a reload as before 3.4, with no flag needed, and the plan says why.

use crate::render::shape::{PoolChange, ShapeSummary};

/// Why an added server goes over the runtime.
pub const WHY_ADD: &str = "a server added to a pool: `add server` with the backend's settings, \
                           `enable health`, in rotation once its checks pass; then the config \
                           and the server-state file are rewritten for the next reload";
/// Why a removed server goes over the runtime.
pub const WHY_REMOVE: &str = "a server removed from a pool: drain (sessions end or the drain \
                              wait runs out), maint, `shutdown sessions`, `wait \
                              srv-removable` (3.0+), `del server`; then the config and the \
                              server-state file are rewritten";

/// Why a new backend goes over the runtime.
pub const WHY_ADD_BACKEND: &str = "a new env's or component's backend on HAProxy 3.4+: `add \
                                   backend … from` the named defaults section with its \
                                   settings, its servers added as to a pool, then `publish \
                                   backend`; the config is rewritten for the next reload";

/// The named defaults section a new backend copies over the runtime (`add backend <b> from
/// <it>`), or why it cannot be made without a reload. `options` are its lines other than
/// servers, `live` the live config's summary.
pub fn backend_source(
    options: &[String],
    live: &ShapeSummary,
    version: HaproxyVersion,
) -> Result<String, String> {
    match version {
        Some((major, minor)) if (major, minor) < (3, 4) => {
            return Err(format!(
                "HAProxy {major}.{minor} has no `add backend` (3.4 and later create a backend \
                 at runtime)"
            ))
        }
        None => {
            return Err(
                "HAProxy did not answer on the admin socket: `add backend` needs 3.4 or later"
                    .to_string(),
            )
        }
        Some(_) => {}
    }
    live.profile_for(options)
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "no named defaults section of the live config holds its settings (`{}`), and \
             `add backend` can only copy one: a sticky cookie (a color with two or more \
             servers), a component the live config does not know, or a config rendered \
             before vezasock wrote these sections",
                options.join("; ")
            )
        })
}

/// `major.minor` of the running HAProxy, `None` when it did not answer.
pub type HaproxyVersion = Option<(u32, u32)>;

/// Why the runtime API refuses `change` on `version`, or `None` when it takes it. `changes`
/// are all the pool changes of the plan, `live` the live config's summary.
pub fn refusal(
    change: &PoolChange,
    changes: &[PoolChange],
    live: &ShapeSummary,
    version: HaproxyVersion,
) -> Option<String> {
    let static_lb = live.backends.get(&change.backend).is_some_and(|b| {
        b.options
            .iter()
            .any(|o| o.starts_with("balance static-rr") || o.starts_with("hash-type map-based"))
    });
    if static_lb {
        return Some(
            "its backend balances with a non-dynamic algorithm: HAProxy takes no server at \
             runtime there"
                .to_string(),
        );
    }
    if change.added {
        added_refusal(change, changes, version)
    } else {
        removed_refusal(change, live)
    }
}

fn added_refusal(
    change: &PoolChange,
    changes: &[PoolChange],
    version: HaproxyVersion,
) -> Option<String> {
    if change.ip_port().is_none() {
        return Some(format!(
            "its address {} is not an IP and a port 1-65535: `add server` is given an IP \
             (HAProxy resolves names when it starts)",
            change.address
        ));
    }
    if let Some(target) = change.tracks() {
        let new = changes
            .iter()
            .any(|c| c.added && format!("{}/{}", c.backend, c.server) == target);
        if new {
            return Some(format!(
                "it tracks {target}, added at the same time: HAProxy lets a server added at \
                 runtime track only a server of the config (`unable to use {target} for \
                 tracking as it is a dynamic server`)"
            ));
        }
    }
    let cookie = change.options.split_whitespace().any(|w| w == "cookie");
    match version {
        _ if !cookie => None,
        Some((major, _)) if major >= 3 => None,
        Some((major, minor)) => Some(format!(
            "its backend has a sticky cookie and HAProxy {major}.{minor} refuses `cookie` on a \
             server added at runtime (`'cookie' option is not accepted for dynamic server`; \
             3.0 and later take it)"
        )),
        None => Some(
            "its backend has a sticky cookie, and HAProxy did not answer on the admin socket: \
             2.6 refuses `cookie` on a server added at runtime"
                .to_string(),
        ),
    }
}

fn removed_refusal(change: &PoolChange, live: &ShapeSummary) -> Option<String> {
    let me = format!("{}/{}", change.backend, change.server);
    for (backend, b) in &live.backends {
        for (server, s) in &b.servers {
            let mut words = s.options.split_whitespace();
            if words.any(|w| w == "track") && words.next() == Some(me.as_str()) {
                return Some(format!(
                    "{backend}/{server} tracks it: HAProxy refuses `del server` for a server \
                     another one points to"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "backend be_blue\n    balance roundrobin\n    cookie vz insert\n    \
                        server blue_1 10.0.0.1:80 check cookie blue_1\n    \
                        server blue_2 10.0.0.2:80 check cookie blue_2\n\
                        backend be_green\n    balance roundrobin\n    \
                        server green_1 10.0.1.1:80 check\n    \
                        server blue_1 10.0.0.1:80 backup track be_blue/blue_1\n\
                        backend be_static\n    balance static-rr\n    server s 10.0.2.1:80 check\n";

    fn change(
        backend: &str,
        server: &str,
        address: &str,
        options: &str,
        added: bool,
    ) -> PoolChange {
        PoolChange {
            backend: backend.into(),
            server: server.into(),
            address: address.into(),
            options: options.into(),
            added,
        }
    }

    #[test]
    fn what_haproxy_refuses_is_named_per_version() {
        let live = ShapeSummary::from_config(LIVE);
        let sticky = change(
            "be_blue",
            "blue_3",
            "10.0.0.3:80",
            "check cookie blue_3",
            true,
        );
        let all = [sticky.clone()];
        assert_eq!(refusal(&sticky, &all, &live, Some((3, 0))), None);
        assert_eq!(refusal(&sticky, &all, &live, Some((3, 4))), None);
        let old = refusal(&sticky, &all, &live, Some((2, 6))).unwrap_or_default();
        assert!(old.contains("HAProxy 2.6 refuses `cookie`"), "{old}");
        let unknown = refusal(&sticky, &all, &live, None).unwrap_or_default();
        assert!(unknown.contains("did not answer"), "{unknown}");
        // No cookie: every version takes it.
        let plain = change("be_green", "green_2", "10.0.1.2:80", "check", true);
        assert_eq!(
            refusal(&plain, std::slice::from_ref(&plain), &live, Some((2, 6))),
            None
        );
        assert_eq!(
            refusal(&plain, std::slice::from_ref(&plain), &live, None),
            None
        );
        // A name is not an IP.
        let named = change("be_green", "green_2", "api.lxd:80", "check", true);
        let why =
            refusal(&named, std::slice::from_ref(&named), &live, Some((3, 4))).unwrap_or_default();
        assert!(why.contains("not an IP"), "{why}");
        // A backup tracking its twin added at the same time (cross-color).
        let backup = change(
            "be_green",
            "blue_3",
            "10.0.0.3:80",
            "backup track be_blue/blue_3",
            true,
        );
        let both = [sticky.clone(), backup.clone()];
        let why = refusal(&backup, &both, &live, Some((3, 4))).unwrap_or_default();
        assert!(why.contains("tracks be_blue/blue_3"), "{why}");
        // Tracking a server of the config is fine.
        let static_track = change(
            "be_green",
            "x",
            "10.0.0.3:80",
            "backup track be_blue/blue_1",
            true,
        );
        assert_eq!(
            refusal(
                &static_track,
                std::slice::from_ref(&static_track),
                &live,
                Some((3, 0))
            ),
            None
        );
        // A tracked server cannot be deleted; an untracked one can, on every version.
        let tracked = change(
            "be_blue",
            "blue_1",
            "10.0.0.1:80",
            "check cookie blue_1",
            false,
        );
        let why = refusal(
            &tracked,
            std::slice::from_ref(&tracked),
            &live,
            Some((3, 4)),
        )
        .unwrap_or_default();
        assert!(why.contains("be_green/blue_1 tracks it"), "{why}");
        let free = change(
            "be_blue",
            "blue_2",
            "10.0.0.2:80",
            "check cookie blue_2",
            false,
        );
        assert_eq!(
            refusal(&free, std::slice::from_ref(&free), &live, Some((2, 6))),
            None
        );
        assert_eq!(
            refusal(&free, std::slice::from_ref(&free), &live, None),
            None
        );
        // A static algorithm takes nothing.
        let s = change("be_static", "s2", "10.0.2.2:80", "check", true);
        let why = refusal(&s, std::slice::from_ref(&s), &live, Some((3, 4))).unwrap_or_default();
        assert!(why.contains("non-dynamic"), "{why}");
    }
}
