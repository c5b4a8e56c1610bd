//! `vezasock status [ENV]`: what the edge is doing, read through the admin socket by a
//! [`crate::runtime::session::ReadSession`], which sends reads only: HAProxy 3.4 answers map reads (`show map`) at level
//! admin only, and 3.2 logs a warning for each one at a lower level.
//!
//! Per env: the active color as the runtime, the map file and the state file see it, with a
//! loud DRIFT when they disagree and any interrupted journal operation; the last switch; per
//! component and color, every server's admin state (and the one recorded on disk), operational
//! state, check, sessions and weight. External backends too. The failover policy. HAProxy's
//! version, worker pid, uptime and reloads (master `show proc`, when the master socket answers).
//!
//! It stays fast on a big edge: one pipelined batch (`show info`, `show stat -1 4 -1` (server rows only), `show servers
//! state`, `show map`) on one session, plus one master `show proc`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::cert::CertEntry;
use super::{Edge, EdgeError};
use crate::edge::active_color::{entry_color, map_file_colors, map_ref, Sides};
use crate::runtime::command::info::{Info, ShowInfo};
use crate::runtime::command::maps::{MapEntry, ShowMap};
use crate::runtime::command::servers::{OpState, ServerStateRow, ServersState, ShowServersState};
use crate::runtime::command::stat::{ShowStat, StatRowView, StatTable};
use crate::runtime::command::StatFilter;
use crate::runtime::session::{Batch, ReadSession, Slot, Timeouts};
use crate::state::{AdminDecision, OpenOperation};
use crate::topology::{Color, Failover};

mod report;

pub use self::report::{
    BackendStatus, ComponentStatus, EnvStatus, HaproxyStatus, MasterStatus, ServerStatus,
    StatusReport,
};

/// Days left under which `status` warns about a certificate (`cert list --warn-days` sets it
/// for `cert list`).
pub const CERT_WARN_DAYS: i64 = 14;

/// The certificate part of `status`: entries, warnings, and problems (a served certificate
/// that is not the one on disk is drift). A failure to read them is a warning, not a failure
/// of `status`.
async fn certificates(edge: &Edge, problems: &mut Vec<String>) -> (Vec<CertEntry>, Vec<String>) {
    let mut warnings = Vec::new();
    let report = match super::cert::report(edge).await {
        Ok(report) => report,
        Err(e) => {
            warnings.push(format!("certificates not read: {e}"));
            return (Vec::new(), warnings);
        }
    };
    for c in &report.certs {
        if c.placeholder {
            warnings.push(format!(
                "PLACEHOLDER certificate {}: a self-signed stand-in so that HAProxy starts; \
                 install the real one with `vezasock cert update FILE`",
                c.file
            ));
        }
        if let Some(why) = &c.error {
            warnings.push(format!("certificate {} is unusable: {why}", c.file));
        }
        match (&c.disk_serial, &c.runtime_serial) {
            (Some(disk), Some(served)) if !c.agree => problems.push(format!(
                "CERT DRIFT {}: HAProxy serves serial {served}, the file holds {disk}; \
                 `vezasock cert update` the file to serve it",
                c.file
            )),
            _ if !c.agree => warnings.push(format!(
                "certificate {}: disk and runtime differ (disk serial {}, served {})",
                c.file,
                c.disk_serial.as_deref().unwrap_or("none"),
                c.runtime_serial.as_deref().unwrap_or("none")
            )),
            _ => {}
        }
    }
    for c in report.expiring(CERT_WARN_DAYS) {
        warnings.push(format!(
            "CERTIFICATE EXPIRES SOON {}: {} day(s) left (notAfter {})",
            c.file,
            c.days_left.unwrap_or(0),
            c.not_after.as_deref().unwrap_or("?")
        ));
    }
    (report.certs, warnings)
}

impl StatusReport {
    /// True when there is drift or an interrupted operation (exit 6).
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// Reads the status of the edge (all envs, or only `only_env`).
pub async fn status(edge: &Edge, only_env: Option<&str>) -> Result<StatusReport, EdgeError> {
    if let Some(why) = foreign_config(edge) {
        return Ok(foreign_report(edge, why).await);
    }
    let mut session = edge.read_session().await?;
    let dumped = match read_dumps(edge, &mut session, only_env).await? {
        Ok(dumped) => dumped,
        Err(why) => return Ok(foreign_report(edge, why).await),
    };
    if dumped.stats.is_empty() {
        return Err(EdgeError::NotVerified(
            "`show stat` answered nothing".to_string(),
        ));
    }
    let haproxy = haproxy_status(edge, &session, dumped.info.as_ref()).await;
    let index = Index::new(&dumped, edge.state.server_admin()?);

    let mut problems = missing_backends(edge, only_env, &index);
    let transaction = match edge.state.open_transaction() {
        Ok(txn) => txn,
        Err(e) => {
            problems.push(format!("the transaction file is not readable: {e}"));
            None
        }
    };
    let open = open_operations(edge, transaction.as_ref())?;
    let file = map_file_colors(edge);
    let mut envs = Vec::new();
    for env in &edge.topology.envs {
        if only_env.is_some_and(|n| n != env.name) {
            continue;
        }
        envs.push(env_status(edge, env, &index, &file, &open, &mut problems)?);
    }
    let mut externals = Vec::new();
    if only_env.is_none() {
        for ext in &edge.topology.externals {
            let b = index.backend(&ext.backend_name(), None, true);
            problems.extend(admin_drift(&b));
            externals.push(b);
        }
    }
    let open_operations: Vec<OpenOperation> =
        open.into_iter().filter(|o| o.env.is_none()).collect();
    if only_env.is_none() {
        for op in &open_operations {
            problems.push(format!("INTERRUPTED {op}; run `vezasock apply`"));
        }
    }
    let (certificates, mut warnings) = certificates(edge, &mut problems).await;
    let canaries = canaries(edge, &mut problems, &mut warnings);
    warnings.extend(journal_warnings(edge));
    if let Some(txn) = &transaction {
        problems.push(transaction_line(txn));
    }
    Ok(StatusReport {
        edge: edge.topology.name.clone(),
        failover: edge.topology.failover.as_str(),
        failover_meaning: failover_meaning(edge.topology.failover).to_string(),
        haproxy,
        envs,
        externals,
        open_operations,
        problems,
        certificates,
        canaries,
        transaction,
        warnings,
    })
}

/// The runtime dumps in one batch: the whole edge, or one env's backends. `Ok(Err(why))`: the
/// runtime has no active-color map, so it runs a config vezasock did not render.
async fn read_dumps(
    edge: &Edge,
    session: &mut ReadSession,
    only_env: Option<&str>,
) -> Result<Result<Dumped, String>, EdgeError> {
    let map = map_ref(edge);
    let dumped = match only_env {
        // One env: only its backends' rows, so `status prod` costs the same on a 500-env edge
        // as on a small one. A backend the running config does not have yet (a shape change
        // not applied) is refused by HAProxy: then read the whole edge, where it is just absent.
        Some(name) => {
            let env = edge.env(name)?;
            let mut commands = Dumps::new(&map)?;
            for backend in env.backends() {
                commands.push(
                    StatFilter::servers_of(&backend)?,
                    ShowServersState::new(Some(&backend))?,
                )?;
            }
            match commands.read(session).await {
                Err(e) if e.is_refused() => whole_edge(&map)?.read(session).await?,
                other => other?,
            }
        }
        None => match whole_edge(&map)?.read(session).await {
            Err(e) if is_unknown_map(&e) => {
                return Ok(Err(format!("the runtime has no map {map} ({e})")));
            }
            other => other?,
        },
    };
    Ok(Ok(dumped))
}

/// The running HAProxy: version, worker, and what its master says (or why it did not answer).
async fn haproxy_status(edge: &Edge, session: &ReadSession, info: Option<&Info>) -> HaproxyStatus {
    let (master, master_error) = match crate::runtime::master::show_proc(
        &edge.master(),
        Timeouts {
            connect: Duration::from_millis(500),
            reply: Duration::from_secs(2),
        },
    )
    .await
    {
        Ok(list) => (
            Some(MasterStatus {
                pid: list.master.pid,
                reloads: list.master.reloads,
                failed_reloads: list.master.failed_reloads,
                uptime: list.master.uptime.clone(),
                workers: list.workers.iter().map(|p| p.pid).collect(),
                old_workers: list.old_workers.iter().map(|p| p.pid).collect(),
            }),
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    HaproxyStatus {
        version: session.version().to_string(),
        worker_pid: info.and_then(Info::pid),
        uptime_s: info.and_then(Info::uptime_sec),
        master,
        master_error,
    }
}

/// The dumps indexed once, so the report costs one pass over them, not one per backend (3,000
/// servers made the per-backend scans quadratic: 700 ms at 500 envs).
struct Index<'a> {
    rows_by_backend: HashMap<&'a str, Vec<StatRowView<'a>>>,
    first_entry: HashMap<&'a str, &'a MapEntry>,
    state_of: HashMap<(&'a str, &'a str), &'a ServerStateRow>,
    /// The admin states vezasock recorded (`server-admin.json`).
    recorded: BTreeMap<String, AdminDecision>,
}

impl<'a> Index<'a> {
    fn new(dumped: &'a Dumped, recorded: BTreeMap<String, AdminDecision>) -> Index<'a> {
        let mut first_entry = HashMap::with_capacity(dumped.entries.len());
        for e in &dumped.entries {
            first_entry.entry(e.key.as_str()).or_insert(e);
        }
        Index {
            rows_by_backend: stat_rows_by_backend(&dumped.stats),
            first_entry,
            state_of: states_by_server(&dumped.states),
            recorded,
        }
    }

    /// One backend's servers: admin and operational state, recorded admin state, sessions.
    fn backend(&self, backend: &str, color: Option<Color>, live: bool) -> BackendStatus {
        let mut servers = Vec::new();
        for row in self.rows_by_backend.get(backend).into_iter().flatten() {
            let Some(name) = row.svname() else { continue };
            if name == "FRONTEND" || name == "BACKEND" {
                continue;
            }
            let st = self.state_of.get(&(backend, name)).copied();
            let admin = match st {
                Some(s) if s.admin.is_maint() => "maint",
                Some(s) if s.admin.is_drain() => "drain",
                Some(_) => "ready",
                None => "?",
            };
            let rec = self.recorded.get(&format!("{backend}/{name}")).copied();
            let op = match st.map(|s| s.op) {
                Some(OpState::Running) => "up".to_string(),
                Some(OpState::Stopped) => "down".to_string(),
                Some(OpState::Starting) => "starting".to_string(),
                Some(OpState::Stopping) => "stopping".to_string(),
                Some(OpState::Unknown(n)) => format!("state {n}"),
                None => "?".to_string(),
            };
            servers.push(ServerStatus {
                server: name.to_string(),
                admin: admin.to_string(),
                recorded: rec,
                admin_drift: rec.is_some_and(|r| r.as_str() != admin),
                op,
                status: row.status().unwrap_or("").to_string(),
                check: row
                    .check_status()
                    .unwrap_or("")
                    .trim_start_matches("* ")
                    .to_string(),
                sessions: row.scur().unwrap_or(0),
                weight: row.weight().unwrap_or(0),
                backup: row.get("bck") == Some("1"),
            });
        }
        BackendStatus {
            backend: backend.to_string(),
            color,
            live,
            servers,
        }
    }
}

/// Backends the topology names but the runtime does not have: an edge running another config
/// (or a shape change not applied). Said loudly instead of listing placeholders.
fn missing_backends(edge: &Edge, only_env: Option<&str>, index: &Index<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    for env in edge.topology.envs.iter().filter(|e| e.colored) {
        if only_env.is_some_and(|o| o != env.name) {
            continue;
        }
        let missing: Vec<String> = env
            .backends()
            .filter(|b| !index.rows_by_backend.contains_key(b.as_str()))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "NOT VEZASOCK'S SHAPE {}: the runtime has no backend {} (it runs another config: `vezasock plan` says what apply would do)",
                env.name,
                missing.join(", ")
            ));
        }
    }
    problems
}

/// The journal's open operations that are interrupted. A canary that still runs (its lock
/// held) holds its operation open on purpose: not an interruption, whether or not its first
/// percent is on disk yet. Nor is the operation a prepared, unexpired transaction continues: it
/// waits for its commit or abort.
fn open_operations(
    edge: &Edge,
    transaction: Option<&crate::state::Transaction>,
) -> Result<Vec<OpenOperation>, EdgeError> {
    let waiting = transaction
        .filter(|t| t.state == crate::state::TxnState::Prepared && !t.is_expired(SystemTime::now()))
        .map(|t| t.op_id.clone());
    Ok(edge
        .state
        .open_operations()?
        .into_iter()
        .filter(|o| {
            !(o.action == crate::state::Action::Canary
                && o.env
                    .as_deref()
                    .is_some_and(|e| crate::edge::deploy::canary::is_running(edge, e)))
        })
        .filter(|o| waiting.as_deref() != Some(o.op_id.as_str()))
        .collect())
}

/// One env: its three sides and their drift, its interrupted operations, its backends.
fn env_status(
    edge: &Edge,
    env: &crate::topology::Env,
    index: &Index<'_>,
    file: &Result<Option<BTreeMap<String, Color>>, EdgeError>,
    open: &[OpenOperation],
    problems: &mut Vec<String>,
) -> Result<EnvStatus, EdgeError> {
    let mut sides = None;
    let mut live = None;
    let mut drift = false;
    if env.colored {
        let file_color = match file {
            Ok(f) => f.as_ref().and_then(|f| f.get(&env.name).copied()),
            Err(e) => {
                problems.push(format!("{}: {e}", env.name));
                None
            }
        };
        let s = Sides {
            runtime: entry_color(&env.name, index.first_entry.get(env.name.as_str()).copied())?,
            map_file: file_color,
            state_file: edge.state.recorded_color(&env.name)?,
        };
        live = Some(s.effective().runtime);
        drift = s.drift();
        if drift {
            problems.push(format!("DRIFT {}: {}", env.name, explain(&s)));
        }
        sides = Some(s);
    }
    let interrupted: Vec<OpenOperation> = open
        .iter()
        .filter(|o| o.env.as_deref() == Some(env.name.as_str()))
        .cloned()
        .collect();
    for op in &interrupted {
        problems.push(format!(
            "INTERRUPTED {op}; run `vezasock apply` or switch again"
        ));
    }
    let mut components = Vec::new();
    for comp in &env.components {
        let backends: Vec<BackendStatus> = if env.colored {
            Color::ALL
                .iter()
                .map(|c| {
                    index.backend(
                        &env.backend_name(&comp.name, *c),
                        Some(*c),
                        live == Some(*c),
                    )
                })
                .collect()
        } else {
            vec![index.backend(&env.backend_name(&comp.name, Color::Blue), None, true)]
        };
        for b in &backends {
            problems.extend(admin_drift(b));
        }
        components.push(ComponentStatus {
            name: comp.name.clone(),
            backends,
        });
    }
    Ok(EnvStatus {
        name: env.name.clone(),
        colored: env.colored,
        sides,
        live,
        drift,
        interrupted,
        last_switch: edge.state.history(&env.name)?.into_iter().next(),
        components,
    })
}

/// A server whose admin state is not the one vezasock recorded.
fn admin_drift(b: &BackendStatus) -> Vec<String> {
    b.servers
        .iter()
        .filter(|s| s.admin_drift)
        .map(|s| {
            format!(
                "DRIFT {}/{}: HAProxy has it {} but {} was recorded",
                b.backend,
                s.server,
                s.admin,
                s.recorded.map_or("-", AdminDecision::as_str)
            )
        })
        .collect()
}

/// The canaries in progress; one whose process is gone is an interrupted operation (exit 6,
/// `apply` repairs it), one still running a warning.
fn canaries(
    edge: &Edge,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<crate::edge::deploy::canary::InProgress> {
    let canaries = match crate::edge::deploy::canary::in_progress(edge) {
        Ok(canaries) => canaries,
        Err(e) => {
            warnings.push(format!("canaries not read: {e}"));
            Vec::new()
        }
    };
    for c in &canaries {
        let to = if c.running {
            &mut *warnings
        } else {
            &mut *problems
        };
        to.push(c.status_line());
    }
    canaries
}

/// What the failover policy means for an operator.
fn failover_meaning(failover: Failover) -> &'static str {
    match failover {
        Failover::None => "when every server of an env's live color is down, that env answers 503: the other color never serves silently",
        Failover::CrossColor => "when every server of an env's live color is down, the OTHER color serves as backup (possibly older code)",
    }
}

/// Lines of the journal that are not whole entries (from outside: a power cut, a hand edit):
/// those still in the live journal, and those kept apart in `journal.torn.jsonl`.
fn journal_warnings(edge: &Edge) -> Vec<String> {
    let mut warnings = Vec::new();
    match edge.state.journal_read() {
        Ok(read) => {
            for s in &read.skipped {
                warnings.push(format!(
                    "journal line {} is not a journal entry ({}); the journal's next rotation moves it to {}",
                    s.line,
                    s.why,
                    crate::state::journal::JOURNAL_TORN_FILE
                ));
            }
        }
        Err(e) => warnings.push(format!("journal not read: {e}")),
    }
    match edge.state.journal_torn_lines() {
        Ok(0) => {}
        Ok(n) => warnings.push(format!(
            "{n} journal line(s) kept apart in {}: a torn last line or a line that is not a \
             journal entry, from outside (a power cut, a hand edit); read them, then remove \
             the file",
            edge.state
                .path()
                .join(crate::state::journal::JOURNAL_TORN_FILE)
                .display()
        )),
        Err(e) => warnings.push(format!("torn journal lines not read: {e}")),
    }
    warnings
}

/// The open transaction, as status says it: a prepared one is healthy and waits (until its
/// expiry, an absolute time); one whose commit started was interrupted.
fn transaction_line(txn: &crate::state::Transaction) -> String {
    let id = &txn.id;
    let until = crate::state::time::rfc3339_utc(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(txn.expires_at),
    );
    let ends = format!(
        "`vezasock txn commit --id {id}` or `vezasock txn abort --id {id}` ends it, `vezasock apply` aborts it at once"
    );
    match txn.state {
        crate::state::TxnState::Prepared if !txn.is_expired(SystemTime::now()) => format!(
            "OPEN {txn} (prepared, expires at {until}: it holds the edge; nothing live changed yet); {ends}"
        ),
        crate::state::TxnState::Prepared => format!(
            "OPEN {txn} (prepared, expired at {until}: the next change aborts it); {ends}"
        ),
        crate::state::TxnState::Committing => format!(
            "OPEN {txn} (INTERRUPTED during its commit: the map file, maybe the runtime, hold {to}); \
             `vezasock txn abort --id {id}` or `vezasock apply` puts the edge back",
            to = txn.to
        ),
    }
}

/// `Some(why)` when the live config on disk exists and was not rendered by vezasock (no shape
/// line): the runtime then holds none of vezasock's maps or backends.
fn foreign_config(edge: &Edge) -> Option<String> {
    let config = &edge.topology.paths.config;
    let text = crate::files::read_bounded_text(config, crate::files::limit::STATE).ok()?;
    if crate::render::shape::declared_fingerprint(&text).is_some() {
        return None;
    }
    Some(format!(
        "{} has no `{}` first line: vezasock did not render it",
        config.display(),
        crate::render::shape::FINGERPRINT_PREFIX.trim_end()
    ))
}

fn is_unknown_map(e: &crate::runtime::Error) -> bool {
    matches!(e, crate::runtime::Error::Refused { message, .. } if message.contains("Unknown map identifier"))
}

/// The report of an edge that is not vezasock's: no env or server table (it would only show
/// placeholders), one loud problem (exit 6) naming the takeover commands. HAProxy's version and
/// worker come from whichever socket answers `show info` (a foreign config may have no
/// operator socket).
async fn foreign_report(edge: &Edge, why: String) -> StatusReport {
    let mut version = "unknown".to_string();
    let mut worker_pid = None;
    let mut uptime_s = None;
    for endpoint in [edge.operator(), edge.admin()] {
        if let Ok(mut session) =
            crate::runtime::session::Session::connect(&endpoint, edge.timeouts).await
        {
            version = session.version().to_string();
            if let Ok(info) = session.show_info().await {
                worker_pid = info.pid();
                uptime_s = info.uptime_sec();
            }
            break;
        }
    }
    StatusReport {
        edge: edge.topology.name.clone(),
        failover: edge.topology.failover.as_str(),
        failover_meaning: "not in effect: the running config is not vezasock's".to_string(),
        haproxy: HaproxyStatus {
            version,
            worker_pid,
            uptime_s,
            master: None,
            master_error: Some("not read: the edge is not vezasock's".to_string()),
        },
        envs: Vec::new(),
        externals: Vec::new(),
        open_operations: Vec::new(),
        problems: vec![format!(
            "NOT VEZASOCK'S EDGE: {why}. `vezasock plan` shows the takeover, `vezasock apply` takes it over (one checked, verified reload)"
        )],
        certificates: Vec::new(),
        canaries: Vec::new(),
        transaction: None,
        warnings: Vec::new(),
    }
}

/// The dumps of the whole edge. `show stat` gives only server rows: the backend and frontend
/// rows would double it.
fn whole_edge(map: &str) -> Result<Dumps, EdgeError> {
    let mut commands = Dumps::new(map)?;
    commands.push(StatFilter::all_servers(), ShowServersState::new(None)?)?;
    Ok(commands)
}

/// The reads of one status, one pipelined batch: `show info`, `show map <file>`, then a
/// `show stat` and a `show servers state` per [`Dumps::push`], in that order.
struct Dumps {
    batch: Batch,
    info: Slot<ShowInfo>,
    map: Slot<ShowMap>,
    stats: Vec<Slot<ShowStat>>,
    states: Vec<Slot<ShowServersState>>,
}

/// What the [`Dumps`] read.
struct Dumped {
    info: Option<Info>,
    stats: Vec<StatTable>,
    states: ServersState,
    entries: Vec<MapEntry>,
}

impl Dumps {
    /// `show info` and `show map <map>`.
    fn new(map: &str) -> Result<Dumps, EdgeError> {
        let mut batch = Batch::new();
        let info = batch.push(ShowInfo)?;
        let map = batch.push(ShowMap::new(map, None)?)?;
        Ok(Dumps {
            batch,
            info,
            map,
            stats: Vec::new(),
            states: Vec::new(),
        })
    }

    /// `show stat <filter>` then `show servers state [<backend>]`.
    fn push(
        &mut self,
        filter: StatFilter,
        states: ShowServersState,
    ) -> Result<(), crate::runtime::Error> {
        let filter = Some(filter);
        self.stats.push(self.batch.push(ShowStat { filter })?);
        self.states.push(self.batch.push(states)?);
        Ok(())
    }

    /// Sends them; a refusal or a reply off its grammar is the runtime's error.
    async fn read(self, session: &mut ReadSession) -> Result<Dumped, crate::runtime::Error> {
        let replies = session.run_batch(self.batch).await?;
        let mut states = ServersState { rows: Vec::new() };
        for slot in &self.states {
            states.rows.extend(replies.take(slot)?.rows);
        }
        Ok(Dumped {
            info: Some(replies.take(&self.info)?),
            stats: self
                .stats
                .iter()
                .map(|slot| replies.take(slot))
                .collect::<Result<_, _>>()?,
            states,
            entries: replies.take(&self.map)?,
        })
    }
}

/// The `show stat` rows of each backend (by `pxname`), in dump order, over every dump.
fn stat_rows_by_backend(stats: &[StatTable]) -> HashMap<&str, Vec<StatRowView<'_>>> {
    let mut by: HashMap<&str, Vec<StatRowView<'_>>> = HashMap::new();
    for row in stats.iter().flat_map(StatTable::iter) {
        if let Some(backend) = row.pxname() {
            by.entry(backend).or_default().push(row);
        }
    }
    by
}

/// The `show servers state` row of each `backend/server`; the first one wins, as
/// [`ServersState::find`] has it.
fn states_by_server(states: &ServersState) -> HashMap<(&str, &str), &ServerStateRow> {
    let mut by = HashMap::with_capacity(states.rows.len());
    for row in &states.rows {
        by.entry((row.be_name.as_str(), row.srv_name.as_str()))
            .or_insert(row);
    }
    by
}

/// Which side is ahead: `runtime and map file say green, state file says blue (the last
/// verified switch): an interrupted switch to green`.
fn explain(s: &Sides) -> String {
    let e = s.effective();
    let (r, m, f) = (e.runtime, e.map_file, e.state_file);
    let mut by: BTreeMap<Color, Vec<&str>> = BTreeMap::new();
    by.entry(e.runtime).or_default().push("runtime");
    by.entry(e.map_file).or_default().push("map file");
    by.entry(e.state_file).or_default().push("state file");
    let said: Vec<String> = by
        .iter()
        .map(|(c, who)| {
            format!(
                "{} say{} {c}",
                who.join(" and "),
                if who.len() == 1 { "s" } else { "" }
            )
        })
        .collect();
    let ahead = if r != f && m != f {
        format!("; runtime and map file are ahead of the last verified switch ({f}): an interrupted switch to {r}")
    } else if m != f && r == f {
        format!("; only the map file is ahead ({m}): an interrupted switch, never applied to the runtime")
    } else if r != f && m == f {
        format!(
            "; only the runtime differs ({r}): changed behind vezasock's back, or a failed restore"
        )
    } else {
        String::new()
    };
    format!("{}{ahead}", said.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_which_side_is_ahead() {
        let s = |runtime, map_file, state_file| Sides {
            runtime,
            map_file,
            state_file,
        };
        let (b, g) = (Some(Color::Blue), Some(Color::Green));
        assert!(explain(&s(g, g, b)).contains("an interrupted switch to green"));
        assert!(explain(&s(b, g, b)).contains("only the map file is ahead"));
        assert!(explain(&s(g, b, b)).contains("only the runtime differs"));
        // Missing entries and files read as blue, as HAProxy and the seed do.
        assert!(!s(None, b, None).drift());
        assert!(s(None, g, None).drift());
    }
}
