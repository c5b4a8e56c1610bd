//! A color's pool changed at runtime: `add server`, `enable health`, `wait <ms>
//! srv-removable`, `del server`; a new env's backends on 3.4: `add backend … from`,
//! `publish backend`, and for a put-back `unpublish backend`, `del backend` (recorded on 2.6, 3.0, 3.2 and 3.4 by
//! grammar/capture_pools.py into `grammar/corpus-pools/<version>/`).
//!
//! Replies, all versions alike unless said:
//! - `add server` → `New server registered.` (info level, `[6]: ` with severity-output); its
//!   refusals (`'cookie' option is not accepted for dynamic server` on 2.6, `unable to use
//!   <b>/<s> for tracking as it is a dynamic server.`, a non-dynamic balance algorithm, …) are
//!   `[3]: …`;
//! - `enable health` → an empty line;
//! - `wait <ms> srv-removable` (3.0+; 2.6 answers `Unknown command`) → `Done.`, or `Failed.`
//!   (3.4 adds why: `Failed. No such server.`);
//! - `del server` → `Server deleted.` (2.6 ends it with one `\n`, 3.x with two);
//! - 3.4: `add backend` → `New backend registered.`, `publish backend` → `Backend
//!   published.` (again when already published), `unpublish backend` → `Backend
//!   unpublished.`, `del backend` → `Backend deleted.`; before 3.4 each is `Unknown command`.

use std::net::IpAddr;

use nom::bytes::complete::tag;
use nom::combinator::{all_consuming, opt};
use nom::sequence::{pair, terminated};
use nom::IResult;

use super::{Name, ReplyKind, RuntimeCommand};
use crate::runtime::parse::ParseError;
use crate::runtime::Error;

/// Longest keyword word `add server` is given (a cookie value is a server name).
const MAX_WORD: usize = 64;

/// Reads `<text>\n` or `<text>\n\n`, with or without an info-level `[6]: ` prefix.
fn fixed_reply(body: &[u8], text: &'static str, what: &'static str) -> Result<(), ParseError> {
    let rest = match crate::runtime::parse::outcome::severity_prefix(body) {
        Some((6, rest)) => rest,
        Some(_) => return Err(ParseError::new(what, 0, "unexpected severity")),
        None => body,
    };
    let parsed: IResult<&[u8], _> =
        all_consuming(terminated(tag(text), pair(tag("\n"), opt(tag("\n")))))(rest);
    parsed
        .map(|_| ())
        .map_err(|_| ParseError::new(what, 0, format!("expected `{text}`")))
}

/// `add server <b>/<s> <ip>:<port> <keywords…>`: a new server, created in maintenance with its
/// health checks off (HAProxy ignores `default-server` for it, so the keywords carry them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddServer {
    pub backend: Name,
    pub server: Name,
    pub addr: IpAddr,
    pub port: u16,
    /// The words after the address, as the config declares the server (`check cookie blue_3
    /// inter 2s fall 3 rise 2`).
    pub keywords: Vec<String>,
}

/// `add server` refusals sent without a `[N]: ` prefix (severity-output off).
const ADD_ERRORS: &[&str] = &[
    "'cookie' option is not accepted for dynamic server",
    "unable to use ",
    "unable to find required server",
    "Already exists a server with the same name in backend.",
    "Backend must use a dynamic load balancing",
    "Backend does not support dynamic servers",
    "unknown keyword",
    "character ",
    "config: ",
];

impl RuntimeCommand for AddServer {
    type Reply = ();

    fn line(&self) -> String {
        let addr = match self.addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let mut line = format!(
            "add server {}/{} {addr}:{}",
            self.backend.as_str(),
            self.server.as_str(),
            self.port
        );
        for w in &self.keywords {
            line.push(' ');
            line.push_str(w);
        }
        line
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        fixed_reply(body, "New server registered.", "add server")
    }

    fn errors(&self) -> &'static [&'static str] {
        ADD_ERRORS
    }

    fn check(&self) -> Result<(), Error> {
        if self.port == 0 {
            return Err(Error::InvalidArgument {
                what: "port",
                value: "0".to_string(),
                why: "must be between 1 and 65535",
            });
        }
        for w in &self.keywords {
            let ok = !w.is_empty()
                && w.len() <= MAX_WORD
                && w
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-/".contains(c));
            if !ok {
                return Err(Error::InvalidArgument {
                    what: "server keyword",
                    value: w.chars().take(80).collect(),
                    why: "must be 1 to 64 of A-Z a-z 0-9 _ . : - /",
                });
            }
        }
        Ok(())
    }
}

/// `enable health <b>/<s>`: starts the health checks of a server `add server` created.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnableHealth {
    pub backend: Name,
    pub server: Name,
}

impl RuntimeCommand for EnableHealth {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "enable health {}/{}",
            self.backend.as_str(),
            self.server.as_str()
        )
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Empty
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        super::empty_reply(body)
    }
}

/// `wait <ms> srv-removable <b>/<s>` (3.0+): waits until `del server` may remove the server
/// (in maintenance, no connection, empty queue), at most `ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WaitSrvRemovable {
    pub backend: Name,
    pub server: Name,
    /// 1 to 60,000 ms.
    pub ms: u32,
}

/// Ends a `wait` that ran out or cannot succeed; 3.4 adds why after it.
const WAIT_ERRORS: &[&str] = &["Failed."];

impl RuntimeCommand for WaitSrvRemovable {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "wait {} srv-removable {}/{}",
            self.ms,
            self.backend.as_str(),
            self.server.as_str()
        )
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        fixed_reply(body, "Done.", "wait srv-removable")
    }

    fn errors(&self) -> &'static [&'static str] {
        WAIT_ERRORS
    }

    fn check(&self) -> Result<(), Error> {
        if self.ms == 0 || self.ms > 60_000 {
            return Err(Error::InvalidArgument {
                what: "wait delay",
                value: self.ms.to_string(),
                why: "must be between 1 and 60000 ms",
            });
        }
        Ok(())
    }
}

/// `del server <b>/<s>`: removes a server in maintenance that nothing points to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DelServer {
    pub backend: Name,
    pub server: Name,
}

/// `del server` refusals sent without a `[N]: ` prefix.
const DEL_ERRORS: &[&str] = &[
    "Only servers in maintenance mode can be deleted.",
    "This server cannot be removed at runtime",
    "Server still has connections attached to it",
    "Server still has idle connections attached to it",
];

impl RuntimeCommand for DelServer {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "del server {}/{}",
            self.backend.as_str(),
            self.server.as_str()
        )
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        fixed_reply(body, "Server deleted.", "del server")
    }

    fn errors(&self) -> &'static [&'static str] {
        DEL_ERRORS
    }
}

/// `add backend <b> from <defaults>` (3.4+; older versions answer `Unknown command`): a new
/// backend with the named defaults section's settings, unpublished and without servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddBackend {
    pub backend: Name,
    /// The named `defaults` section it copies.
    pub from: Name,
}

/// `add backend` refusals sent without a `[N]: ` prefix (3.4.7).
const ADD_BACKEND_ERRORS: &[&str] = &[
    "Error during backend creation",
    "Cannot find default proxy",
    "Mode is required",
];

impl RuntimeCommand for AddBackend {
    type Reply = ();

    fn line(&self) -> String {
        format!(
            "add backend {} from {}",
            self.backend.as_str(),
            self.from.as_str()
        )
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        fixed_reply(body, "New backend registered.", "add backend")
    }

    fn errors(&self) -> &'static [&'static str] {
        ADD_BACKEND_ERRORS
    }
}

/// `publish backend <b>` / `unpublish backend <b>` (3.4+): lets `use_backend` rules pick the
/// backend, or stops them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublishBackend {
    pub backend: Name,
    pub publish: bool,
}

impl RuntimeCommand for PublishBackend {
    type Reply = ();

    fn line(&self) -> String {
        let verb = if self.publish { "publish" } else { "unpublish" };
        format!("{verb} backend {}", self.backend.as_str())
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        if self.publish {
            fixed_reply(body, "Backend published.", "publish backend")
        } else {
            fixed_reply(body, "Backend unpublished.", "unpublish backend")
        }
    }
}

/// `del backend <b>` (3.4+): removes an unpublished backend without servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DelBackend {
    pub backend: Name,
}

/// `del backend` refusals sent without a `[N]: ` prefix (3.4.7).
const DEL_BACKEND_ERRORS: &[&str] = &[
    "Only a backend without server can be deleted.",
    "Backend must be unpublished prior to its deletion.",
    "This backend cannot be removed at runtime",
];

impl RuntimeCommand for DelBackend {
    type Reply = ();

    fn line(&self) -> String {
        format!("del backend {}", self.backend.as_str())
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    /// 3.4.7 may put lines of its own before it (server state changes it logged, `Server
    /// deleted.`): the last line says.
    fn parse_reply(&self, body: &[u8]) -> Result<(), ParseError> {
        let rest = match crate::runtime::parse::outcome::severity_prefix(body) {
            Some((6, rest)) => rest,
            Some(_) => return Err(ParseError::new("del backend", 0, "unexpected severity")),
            None => body,
        };
        let text = std::str::from_utf8(rest)
            .map_err(|e| ParseError::new("del backend", e.valid_up_to(), "not UTF-8"))?;
        match text.strip_suffix("\n\n").and_then(|t| t.lines().last()) {
            Some("Backend deleted.") => Ok(()),
            _ => Err(ParseError::new(
                "del backend",
                0,
                "expected `Backend deleted.` last",
            )),
        }
    }

    fn errors(&self) -> &'static [&'static str] {
        DEL_BACKEND_ERRORS
    }
}

/// No operator line beyond those [`super::ReplyKind`] knows.
pub(crate) const RAW: &[super::RawReply] = &[];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::command::Wire;
    use crate::runtime::reply::Reply;

    fn name(what: &'static str, v: &str) -> Name {
        Name::new(what, v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn add() -> AddServer {
        AddServer {
            backend: name("backend", "be_app"),
            server: name("server", "blue_3"),
            addr: "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
            port: 18004,
            keywords: ["check", "inter", "2s", "fall", "3", "rise", "2"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn outcome<C: RuntimeCommand>(c: &C, body: &[u8]) -> Result<C::Reply, Error> {
        let wire = Wire::of(c).unwrap_or_else(|e| panic!("{e}"));
        Reply::new(&wire, bytes::Bytes::copy_from_slice(body)).parse_with(c)
    }

    /// Every recorded reply (grammar/capture_pools.py) parses as a success or is refused, as
    /// the case did on that version.
    #[test]
    fn recorded_replies_parse_or_are_refused() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus-pools");
        let (b, s) = (name("backend", "be_app"), name("server", "blue_3"));
        let enable = EnableHealth {
            backend: b.clone(),
            server: s.clone(),
        };
        let wait = WaitSrvRemovable {
            backend: b.clone(),
            server: s.clone(),
            ms: 100,
        };
        let del = DelServer {
            backend: b,
            server: s,
        };
        let mut seen = 0;
        for version in ["2.6", "3.0", "3.2", "3.4"] {
            for mode in ["oneshot", "oneshot-sev"] {
                let read = |case: &str| {
                    let path = root.join(version).join(format!("{case}.{mode}"));
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                };
                let mut check = |case: &str, got: Result<(), Error>, ok: bool| {
                    seen += 1;
                    match (ok, &got) {
                        (true, Ok(())) | (false, Err(Error::Refused { .. })) => {}
                        _ => panic!("{version} {case}.{mode}: {got:?}"),
                    }
                };
                let wait_ok = version != "2.6";
                check("add-server", outcome(&add(), &read("add-server")), true);
                let cookie = read("add-server-cookie");
                check("add-server-cookie", outcome(&add(), &cookie), wait_ok);
                for case in [
                    "add-server-exists",
                    "add-server-nosuch-backend",
                    "add-server-track-dynamic",
                    "add-server-static-rr",
                    "add-server-bad-keyword",
                ] {
                    check(case, outcome(&add(), &read(case)), false);
                }
                check("enable-health", outcome(&enable, &read("enable-health")), true);
                let nosuch = read("enable-health-nosuch");
                check("enable-health-nosuch", outcome(&enable, &nosuch), false);
                let done = read("wait-srv-removable");
                check("wait-srv-removable", outcome(&wait, &done), wait_ok);
                for case in ["wait-srv-removable-not-maint", "wait-srv-removable-nosuch"] {
                    check(case, outcome(&wait, &read(case)), false);
                }
                check("del-server", outcome(&del, &read("del-server")), true);
                let added = read("del-server-added");
                check("del-server-added", outcome(&del, &added), true);
                for case in [
                    "del-server-not-maint",
                    "del-server-tracked",
                    "del-server-nosuch",
                ] {
                    check(case, outcome(&del, &read(case)), false);
                }
            }
        }
        assert_eq!(seen, 4 * 2 * 17);
    }

    /// The new-backend commands' recorded replies: successes on 3.4, `Unknown command` (a
    /// refusal) before.
    #[test]
    fn recorded_backend_replies_parse_or_are_refused() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus-pools");
        let be = name("backend", "be_new");
        let add = AddBackend {
            backend: be.clone(),
            from: name("defaults", "vz_web"),
        };
        let publish = PublishBackend {
            backend: be.clone(),
            publish: true,
        };
        let unpublish = PublishBackend {
            publish: false,
            ..publish.clone()
        };
        let del = DelBackend { backend: be };
        let mut seen = 0;
        for version in ["2.6", "3.0", "3.2", "3.4"] {
            let new = version == "3.4";
            for mode in ["oneshot", "oneshot-sev"] {
                let mut check = |case: &str, got: Result<(), Error>, ok: bool| {
                    let path = root.join(version).join(format!("{case}.{mode}"));
                    assert!(path.exists(), "{}", path.display());
                    seen += 1;
                    match (ok, &got) {
                        (true, Ok(())) | (false, Err(Error::Refused { .. })) => {}
                        _ => panic!("{version} {case}.{mode}: {got:?}"),
                    }
                };
                let read = |case: &str| {
                    let path = root.join(version).join(format!("{case}.{mode}"));
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                };
                check("add-backend", outcome(&add, &read("add-backend")), new);
                for case in [
                    "add-backend-exists",
                    "add-backend-config-name",
                    "add-backend-nosuch-defaults",
                ] {
                    check(case, outcome(&add, &read(case)), false);
                }
                check("publish-backend", outcome(&publish, &read("publish-backend")), new);
                let again = read("publish-backend-again");
                check("publish-backend-again", outcome(&publish, &again), new);
                let nosuch = read("publish-backend-nosuch");
                check("publish-backend-nosuch", outcome(&publish, &nosuch), false);
                let un = read("unpublish-backend");
                check("unpublish-backend", outcome(&unpublish, &un), new);
                check("del-backend", outcome(&del, &read("del-backend")), new);
                let emptied = read("del-backend-emptied");
                check("del-backend-emptied", outcome(&del, &emptied), new);
                for case in [
                    "del-backend-published",
                    "del-backend-with-server",
                    "del-backend-nosuch",
                ] {
                    check(case, outcome(&del, &read(case)), false);
                }
            }
        }
        assert_eq!(seen, 4 * 2 * 13);
    }

    #[test]
    fn anything_else_is_not_a_success() {
        for body in [
            &b""[..],
            b"\n\n",
            b"New server registered\n",
            b"New server registered.\nmore\n",
            b"[4]: New server registered.\n",
            b"\xff\n",
        ] {
            assert!(
                fixed_reply(body, "New server registered.", "add server").is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn lines_and_checks() {
        assert_eq!(
            add().line(),
            "add server be_app/blue_3 127.0.0.1:18004 check inter 2s fall 3 rise 2"
        );
        let v6 = AddServer {
            addr: "::1".parse().unwrap_or_else(|e| panic!("{e}")),
            keywords: Vec::new(),
            ..add()
        };
        assert_eq!(v6.line(), "add server be_app/blue_3 [::1]:18004");
        for bad in ["", "a b", "a;b", "a\nb", "<<", "a\\b", &"x".repeat(65)] {
            let c = AddServer {
                keywords: vec![bad.to_string()],
                ..add()
            };
            assert!(crate::runtime::command::validate(&c).is_err(), "{bad:?}");
        }
        let zero = AddServer { port: 0, ..add() };
        assert!(crate::runtime::command::validate(&zero).is_err());
        for ms in [0, 60_001] {
            let w = WaitSrvRemovable {
                backend: name("backend", "b"),
                server: name("server", "s"),
                ms,
            };
            assert!(crate::runtime::command::validate(&w).is_err(), "{ms}");
        }
    }
}
