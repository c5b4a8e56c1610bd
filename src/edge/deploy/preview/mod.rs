//! `vezasock preview ENV COLOR`: a token that sends the requests carrying it to COLOR of ENV
//! through the real edge, while every other request follows the active color.
//!
//! Mechanism: the frontend builds `<env>:<token>` from the `x-vezasock-preview` header (or the
//! `vezasock_preview` cookie) and looks it up in `preview.map`; a hit overrides `txn.color` for
//! that request only. One token per env: a new preview replaces the old one, `--revoke` and every
//! switch remove it. Each change is journalled (`preview`), written through to `preview.map`
//! (atomically, before the runtime, as a flip does) and applied with `del map` / `add map`: no
//! reload. The map file keeps the tokens across a reload or restart; `render` never writes over it.
//!
//! A token moves no user traffic: a failure after the disk write puts the file back and is
//! reported with its own exit code; a token the runtime may hold without the file is removed by
//! the next preview or revoke of that env (they delete the env's runtime keys too).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod tls;

use crate::edge::flip::LockWait;
use crate::edge::{Edge, EdgeError};
use crate::render::maps::parse_map;
use crate::render::{PREVIEW_COOKIE, PREVIEW_HEADER, PREVIEW_MAP_HEADER};
use crate::runtime::command::maps::{AddMap, DelMap, ShowMap};
use crate::runtime::session::Batch;
use crate::runtime::session::Session;
use crate::state::atomic::{read_optional, write_atomic};
use crate::state::{Action, EdgeLock, Holder, Operation, Phase};
use crate::topology::{Color, Env};

/// How long one `--preview-check` request may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `--preview-check` path accepted.
pub const PATH_MAX: usize = 1024;

/// What a preview (or a revoke) did.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewReport {
    pub env: String,
    /// The color the token reaches (`None`: revoked).
    pub color: Option<Color>,
    pub token: Option<String>,
    pub header: &'static str,
    pub cookie: &'static str,
    /// A ready command line that sends one request with the token.
    pub curl: Option<String>,
    /// Tokens of this env removed (the replaced or revoked one).
    pub revoked: usize,
}

/// Gives `env` a fresh preview token for `color` (replacing its old one), or with `None`
/// revokes it. Takes the edge lock.
pub async fn preview(
    edge: &Edge,
    env: &str,
    color: Option<Color>,
    lock_wait: LockWait,
    who: &str,
) -> Result<PreviewReport, EdgeError> {
    preview_with(edge, env, color, None, lock_wait, who).await
}

/// [`preview`] with the token given (`preview --fleet`: one token on every edge); `None`: a
/// fresh one.
pub async fn preview_with(
    edge: &Edge,
    env: &str,
    color: Option<Color>,
    token: Option<&str>,
    lock_wait: LockWait,
    who: &str,
) -> Result<PreviewReport, EdgeError> {
    let env = edge.colored_env(env)?;
    if let Some(t) = token {
        check_token(t)?;
    }
    let _lock = EdgeLock::acquire_async(&edge.state, lock_wait.wait(), Holder::current()).await?;
    let mut session = edge.admin_session().await?;
    let (token, revoked) = set_with(edge, &mut session, env, color, token, who).await?;
    let curl = token.as_ref().map(|t| curl_line(edge, env, t));
    Ok(PreviewReport {
        env: env.name.clone(),
        color,
        token,
        header: PREVIEW_HEADER,
        cookie: PREVIEW_COOKIE,
        curl,
        revoked,
    })
}

/// The preview change itself, the edge lock held by the caller: journal intent → map file →
/// runtime (`del map` the env's old keys, `add map` the new one) → journal done. Returns the new
/// token and how many old ones were removed.
pub(crate) async fn set_locked(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    color: Option<Color>,
    who: &str,
) -> Result<(Option<String>, usize), EdgeError> {
    set_with(edge, session, env, color, None, who).await
}

/// [`set_locked`] with the token given (`None`: a fresh one).
async fn set_with(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    color: Option<Color>,
    given: Option<&str>,
    who: &str,
) -> Result<(Option<String>, usize), EdgeError> {
    let map = map_ref(edge);
    let path = edge.topology.paths.preview_map();
    let old_bytes = read_optional(&path)?;
    let mut file = parse_file(edge, old_bytes.as_deref())?;
    let prefix = format!("{}:", env.name);
    let runtime_keys = runtime_keys(session, &map, &prefix).await?;
    let file_old = file.keys().filter(|k| k.starts_with(&prefix)).count();
    file.retain(|k, _| !k.starts_with(&prefix));
    let revoked = runtime_keys.len().max(file_old);
    if color.is_none() && revoked == 0 {
        return Ok((None, 0));
    }
    let token = match given {
        Some(t) => color.map(|_| t.to_string()),
        None => color.map(|_| fresh_token()).transpose()?,
    };
    let op = Operation::new(
        Action::Preview,
        Some(&env.name),
        None,
        color.map(Color::as_str),
        who,
    );
    let detail = match color {
        Some(c) => format!("new token for {c}; {revoked} old removed"),
        None => format!("revoke: {revoked} removed"),
    };
    edge.state
        .journal_record(&op, Phase::Intent, Some(&detail))?;
    if let (Some(t), Some(c)) = (&token, color) {
        file.insert(format!("{prefix}{t}"), c.as_str().to_string());
    }
    if let Err(e) = write_atomic(&path, render_file(&file).as_bytes()) {
        let _ = edge.state.journal_record(
            &op,
            Phase::Failed,
            Some(&format!("map file not written: {e}")),
        );
        return Err(e.into());
    }
    // The file is written: a journal that cannot say so (a full disk) must not leave it ahead
    // of the runtime behind an exit that says nothing changed (the flip's rule, flip/mod.rs).
    if let Err(e) = edge.state.journal_record(&op, Phase::DiskWritten, None) {
        let restored = put_back(&path, old_bytes.as_deref());
        let _ = edge.state.journal_record(
            &op,
            Phase::Failed,
            Some(&format!("disk not journalled: {e}; {restored}")),
        );
        return Err(e.into());
    }
    let mut commands = Batch::new();
    for key in &runtime_keys {
        commands.push(DelMap::new(&map, key)?)?;
    }
    if let (Some(t), Some(c)) = (&token, color) {
        commands.push(AddMap::new(
            &map,
            None,
            &format!("{prefix}{t}"),
            c.as_str(),
        )?)?;
    }
    if let Err(e) = session.run_batch(commands).await {
        let restored = put_back(&path, old_bytes.as_deref());
        let _ = edge.state.journal_record(
            &op,
            Phase::Failed,
            Some(&format!("runtime not changed: {e}; {restored}")),
        );
        return Err(e.into());
    }
    if let Err(e) = edge.state.journal_record(&op, Phase::Done, None) {
        return Err(EdgeError::NotVerified(format!(
            "the preview change is live and written to {}, but its journal line was not: {e}",
            path.display()
        )));
    }
    Ok((token, revoked))
}

/// After a switch: revokes `env`'s token when the map file lists one (the file is written
/// through, so it is the cheap check that spares the switch a runtime round trip otherwise).
pub(crate) async fn revoke_after_switch(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    who: &str,
) -> Result<usize, EdgeError> {
    let path = edge.topology.paths.preview_map();
    let prefix = format!("{}:", env.name);
    let file = parse_file(edge, read_optional(&path)?.as_deref())?;
    if !file.keys().any(|k| k.starts_with(&prefix)) {
        return Ok(0);
    }
    set_locked(edge, session, env, None, who)
        .await
        .map(|(_, n)| n)
}

/// `--preview-check`: a token for `target`, one GET per path through the edge with it, then the
/// token revoked. Refuses (nothing changed for users) unless every answer is 2xx or 3xx; the
/// edge's own redirect to HTTPS is followed over TLS, never counted ([`probe`]).
pub(crate) async fn check(
    edge: &Edge,
    session: &mut Session,
    env: &Env,
    target: Color,
    paths: &[String],
    via: Option<SocketAddr>,
    who: &str,
) -> Result<String, EdgeError> {
    for p in paths {
        check_path(p)?;
    }
    let (token, _) = set_locked(edge, session, env, Some(target), who).await?;
    let token = token.unwrap_or_default();
    let mut answers = Vec::new();
    let mut failed = Vec::new();
    for p in paths {
        match probe(edge, via, env, &token, p).await {
            Ok(a) if (200..400).contains(&a.status) => {
                answers.push(format!("{p} {}", a.status_words()));
            }
            Ok(a) => failed.push(format!("GET {p} answered {}", a.status_words())),
            Err(e) => failed.push(format!("GET {p} failed: {e}")),
        }
    }
    let revoked = set_locked(edge, session, env, None, who).await;
    if !failed.is_empty() {
        return Err(EdgeError::Refused(format!(
            "preview check of {} {target} through the edge: {}; nothing was switched \
             (fix {target}, or check it with `vezasock preview {} {target}`)",
            env.name,
            failed.join(", "),
            env.name
        )));
    }
    revoked?;
    Ok(format!(
        "{} through the edge with a preview token for {target} (revoked)",
        answers.join(", ")
    ))
}

/// A `--preview-check` path: starts with `/`, at most [`PATH_MAX`] bytes, no whitespace or
/// control characters.
pub fn check_path(path: &str) -> Result<(), EdgeError> {
    let ok = path.starts_with('/')
        && path.len() <= PATH_MAX
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        return Ok(());
    }
    let shown: String = path.chars().take(80).collect();
    Err(EdgeError::BadInput(format!(
        "--preview-check {shown:?}: a path starts with `/`, has no spaces or control characters \
         and at most {PATH_MAX} bytes"
    )))
}

/// What one request through the edge got.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    /// The `location` header of a 3xx.
    location: Option<String>,
    /// Sent over TLS (after the edge's own redirect to HTTPS).
    tls: bool,
}

impl Answer {
    /// `200`, or `200 (https)` when it came over TLS.
    fn status_words(&self) -> String {
        let over = if self.tls { " (https)" } else { "" };
        format!("{}{over}", self.status)
    }
}

/// One GET through the edge's HTTP listener with the token. When the edge answers with its own
/// redirect to HTTPS (`[tls] redirect`), that 301 is the edge's, not the color's: the request
/// is sent again over TLS to `listen.https`, and that answer counts.
async fn probe(
    edge: &Edge,
    via: Option<SocketAddr>,
    env: &Env,
    token: &str,
    path: &str,
) -> Result<Answer, String> {
    let addr = via
        .or_else(|| http_addr(&edge.topology.listen.http))
        .ok_or_else(|| {
            format!(
                "cannot connect to listen.http {:?} (--preview-via ADDR says where)",
                edge.topology.listen.http
            )
        })?;
    let host = env
        .hosts
        .first()
        .cloned()
        .unwrap_or_else(|| env.name.clone());
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {host}\r\n{PREVIEW_HEADER}: {token}\r\n\
         user-agent: vezasock-preview-check\r\nconnection: close\r\n\r\n"
    );
    let plain = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        exchange(stream, &request).await
    };
    let answer = bounded(plain).await?;
    let Some(tls) = edge_redirect(edge, &host, path, &answer) else {
        return Ok(answer);
    };
    let addr = http_addr(&edge.topology.listen.https).ok_or_else(|| {
        format!(
            "the edge redirected to HTTPS and listen.https {:?} is not an address to connect to",
            edge.topology.listen.https
        )
    })?;
    let secure = async {
        let stream = tls::connect(addr, &host, &tls.certs_dir).await?;
        exchange(stream, &request).await
    };
    let mut answer = bounded(secure).await?;
    answer.tls = true;
    Ok(answer)
}

/// `exchange` within [`CHECK_TIMEOUT`].
async fn bounded(
    exchange: impl std::future::Future<Output = Result<Answer, String>>,
) -> Result<Answer, String> {
    tokio::time::timeout(CHECK_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {CHECK_TIMEOUT:?}"))?
}

/// The edge's TLS settings when `answer` is the edge's own `redirect scheme https` of this
/// request (the rendered config sends every plain-HTTP request there when `[tls] redirect` is
/// on): a 3xx to `https://HOST PATH`. Such a redirect never reached the color.
fn edge_redirect<'a>(
    edge: &'a Edge,
    host: &str,
    path: &str,
    answer: &Answer,
) -> Option<&'a crate::topology::Tls> {
    let tls = edge.topology.tls.as_ref().filter(|t| t.redirect)?;
    let to_https = format!("https://{host}{path}");
    let redirected = (300..400).contains(&answer.status)
        && !answer.tls
        && answer.location.as_deref() == Some(to_https.as_str());
    redirected.then_some(tls)
}

/// Sends `request` and reads the answer's head (at most 8 KiB).
async fn exchange<S>(mut stream: S, request: &str) -> Result<Answer, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = match stream.read(&mut buf).await {
            Ok(n) => n,
            // A TLS peer may close without close_notify once it has answered.
            Err(_) if !head.is_empty() => 0,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status = status_of(&head).ok_or_else(|| "no HTTP status line in the answer".to_string())?;
    Ok(Answer {
        status,
        location: header_of(&head, "location"),
        tls: false,
    })
}

/// The status code of `HTTP/1.x NNN …`.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

/// The value of header `name` (lower case) in an answer's head.
fn header_of(head: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// Where to reach the HTTP bind from this host: a wildcard address becomes loopback.
fn http_addr(bind: &str) -> Option<SocketAddr> {
    let (host, port) = bind.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" | "*" | "0.0.0.0" | "::" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h.parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// `curl -H 'x-vezasock-preview: TOKEN' http://HOST/`.
fn curl_line(edge: &Edge, env: &Env, token: &str) -> String {
    let host = env
        .hosts
        .first()
        .cloned()
        .unwrap_or_else(|| env.name.clone());
    let scheme = if edge.topology.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("curl -H '{PREVIEW_HEADER}: {token}' {scheme}://{host}/")
}

/// The map reference HAProxy knows the preview map by: its path as written in the config.
pub(crate) fn map_ref(edge: &Edge) -> String {
    edge.topology
        .paths
        .preview_map()
        .to_string_lossy()
        .into_owned()
}

pub(crate) fn parse_file(
    edge: &Edge,
    bytes: Option<&[u8]>,
) -> Result<BTreeMap<String, String>, EdgeError> {
    let Some(bytes) = bytes else {
        return Ok(BTreeMap::new());
    };
    parse_map(&String::from_utf8_lossy(bytes)).map_err(|e| {
        EdgeError::BadInput(format!(
            "{}: {e}; fix the file (an empty file revokes every preview)",
            edge.topology.paths.preview_map().display()
        ))
    })
}

pub(crate) fn render_file(entries: &BTreeMap<String, String>) -> String {
    let mut text = PREVIEW_MAP_HEADER.to_string();
    for (k, v) in entries {
        text.push_str(&format!("{k} {v}\n"));
    }
    text
}

/// The runtime preview map's keys that start with `prefix`. A config without the preview map
/// (rendered before it existed) is refused with the fix.
async fn runtime_keys(
    session: &mut Session,
    map: &str,
    prefix: &str,
) -> Result<Vec<String>, EdgeError> {
    let replies = session
        .run_each(&[ShowMap::new(map, None)?])
        .await
        .map_err(|e| match e {
            crate::runtime::Error::Refused { .. } => EdgeError::Refused(format!(
                "the running HAProxy has no preview map ({e}); `vezasock apply` installs a \
                 config that has one"
            )),
            other => other.into(),
        })?;
    let mut keys = Vec::new();
    for entries in replies {
        keys.extend(
            entries
                .into_iter()
                .map(|e| e.key)
                .filter(|k| k.starts_with(prefix)),
        );
    }
    Ok(keys)
}

/// A token given by a fleet coordinator: 32 hex digits, as [`fresh_token`] makes them (it
/// goes into a map key: nothing else is accepted).
pub fn check_token(token: &str) -> Result<(), EdgeError> {
    if token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(());
    }
    Err(EdgeError::BadInput(
        "a preview token is 32 hex digits".to_string(),
    ))
}

/// 128 random bits as 32 hex digits, from the kernel's generator.
pub fn fresh_token() -> Result<String, EdgeError> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| EdgeError::Refused(format!("cannot read /dev/urandom for a token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn put_back(path: &std::path::Path, old: Option<&[u8]>) -> String {
    let result = match old {
        Some(bytes) => write_atomic(path, bytes).map_err(|e| e.to_string()),
        None => write_atomic(path, PREVIEW_MAP_HEADER.as_bytes()).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => "preview map file restored".to_string(),
        Err(e) => format!("the preview map file was NOT restored: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_and_binds() {
        assert_eq!(status_of(b"HTTP/1.1 302 Found\r\n"), Some(302));
        assert_eq!(status_of(b"HTTP/1.0 500\r\n"), Some(500));
        assert_eq!(status_of(b"garbage 200\r\n"), None);
        assert_eq!(status_of(b""), None);
        assert_eq!(
            http_addr(":8080"),
            Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert_eq!(
            http_addr("127.0.0.1:81"),
            Some(SocketAddr::from(([127, 0, 0, 1], 81)))
        );
        assert_eq!(http_addr("nonsense"), None);
        assert!(check_path("/health").is_ok());
        assert!(check_path("health").is_err());
        assert!(check_path("/a b").is_err());
        assert!(check_path(&format!("/{}", "a".repeat(PATH_MAX))).is_err());
    }

    #[test]
    fn answer_heads() {
        let head = b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\n\
                     Location: https://staging.veza.fr/api/health\r\n\r\n";
        assert_eq!(status_of(head), Some(301));
        assert_eq!(
            header_of(head, "location").as_deref(),
            Some("https://staging.veza.fr/api/health")
        );
        assert_eq!(header_of(head, "x-missing"), None);
        assert_eq!(header_of(b"HTTP/1.1 200 OK\r\n\r\n", "location"), None);
    }

    #[test]
    fn only_the_edges_own_redirect_to_https_is_followed() {
        let topology = crate::topology::Topology::embedded_default()
            .unwrap_or_else(|e| panic!("embedded default: {e}"));
        assert!(topology.tls.as_ref().is_some_and(|t| t.redirect));
        let edge = Edge::new(topology.clone());
        let (host, path) = ("staging.veza.fr", "/api/health");
        let answer = |status: u16, location: &str, tls: bool| Answer {
            status,
            location: Some(location.to_string()),
            tls,
        };
        let own = answer(301, "https://staging.veza.fr/api/health", false);
        assert!(edge_redirect(&edge, host, path, &own).is_some());
        // The color's own redirects are its answers.
        for other in [
            answer(302, "/login", false),
            answer(301, "https://staging.veza.fr/elsewhere", false),
            answer(200, "https://staging.veza.fr/api/health", false),
            answer(301, "https://staging.veza.fr/api/health", true),
        ] {
            assert!(
                edge_redirect(&edge, host, path, &other).is_none(),
                "{other:?}"
            );
        }
        // Without `[tls] redirect` the edge redirects nothing.
        let mut plain = topology;
        if let Some(tls) = plain.tls.as_mut() {
            tls.redirect = false;
        }
        assert!(edge_redirect(&Edge::new(plain), host, path, &own).is_none());
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let (a, b) = (fresh_token().ok(), fresh_token().ok());
        assert_eq!(a.as_ref().map(String::len), Some(32));
        assert_ne!(a, b);
        assert!(a.is_some_and(|t| t.chars().all(|c| c.is_ascii_hexdigit())));
    }
}
