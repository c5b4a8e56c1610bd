//! `cert update --fleet` and `cert list --fleet` (issue 22): certificates on every edge or on
//! none, with HAProxy's own two-phase certificate transaction. The coordinator's side; each
//! edge's is [`super::cert_agent`].
//!
//! | phase | every edge | a failure |
//! |---|---|---|
//! | begin (parallel) | files checked, lock, certs dir takes a write, intent journalled | every begun edge ends: nothing changed (the failing edge's exit code) |
//! | stage, per file (parallel) | `new ssl cert` for a new file, `set ssl cert` | every staged edge aborts (`abort ssl cert`): the file is served nowhere (first file: nothing changed, that edge's exit code; a later one: the earlier files stay installed everywhere, exit 5) |
//! | commit, per file (parallel, back to back) | `commit ssl cert` (+ `add ssl crt-list`) | exit 5 naming the edges that serve the new certificate (finished there) and the ones that do not |
//! | finish, per file (parallel) | slot and file written, `show ssl cert` read back | exit 5 naming the edge |
//! | done (parallel) | journalled, lock released | exit 5 naming the edge |
//!
//! HAProxy holds one certificate transaction at a time, so files go one after the other, each
//! through stage, commit and finish on every edge.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use super::member::{Member, STEP_SLACK};
use super::protocol::{CertAnswer, Request, Response, MAX_LINE};
use crate::edge::cert::{CertReport, SentFile, Updated};
use crate::edge::flip::{ms, LockWait};
use crate::edge::{EdgeError, ErrorKind};

/// `cert update --fleet` options.
#[derive(Debug, Clone)]
pub struct FleetCertOptions {
    pub allow_other_domains: bool,
    pub lock_wait: LockWait,
    pub who: String,
}

/// What `cert update --fleet` did on every edge.
#[derive(Debug, Clone, Serialize)]
pub struct FleetCertReport {
    pub transaction: String,
    /// The files, in the order installed.
    pub files: Vec<String>,
    pub edges: Vec<CertEdgeOutcome>,
    /// From the first to the last edge's `commit ssl cert` answer (the longest over the files),
    /// in milliseconds.
    pub commit_skew_ms: f64,
    pub total_ms: f64,
}

/// One edge's line of a fleet certificate update.
#[derive(Debug, Clone, Serialize)]
pub struct CertEdgeOutcome {
    pub edge: String,
    /// `installed`; before any commit `refused`, `aborted`, `not reached`; after one `NEW
    /// LIVE`, `OLD KEPT`, `UNKNOWN` (a commit with no answer), `failed`.
    pub result: String,
    pub detail: String,
    /// The certificates installed on this edge (written and read back).
    pub certs: Vec<Updated>,
}

/// A failed fleet certificate update: the error and every edge's line.
pub type CertFailure = Box<(EdgeError, FleetCertReport)>;

fn fresh_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("fleet-cert-{nanos:x}-{}", std::process::id())
}

/// The files read (bounded), each under its file name.
fn read_files(files: &[PathBuf]) -> Result<Vec<SentFile>, EdgeError> {
    if files.is_empty() {
        return Err(EdgeError::BadInput("no certificate file given".to_string()));
    }
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let bad = |why: String| EdgeError::BadInput(format!("{}: {why}", file.display()));
        let bytes = crate::files::read_bounded(file, crate::files::limit::PEM)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        let pem = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8 text".to_string()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| bad("has no file name".to_string()))?;
        out.push(SentFile { name, pem });
    }
    Ok(out)
}

/// `cert update --fleet FILE…`: every file on every edge, or on none (see the module's table).
pub async fn update(
    members: &mut [Member],
    files: &[PathBuf],
    options: &FleetCertOptions,
) -> Result<FleetCertReport, CertFailure> {
    let started = Instant::now();
    let mut run = Run {
        report: FleetCertReport {
            transaction: fresh_id(),
            files: Vec::new(),
            edges: members
                .iter()
                .map(|m| CertEdgeOutcome {
                    edge: m.name().to_string(),
                    result: "not reached".to_string(),
                    detail: String::new(),
                    certs: Vec::new(),
                })
                .collect(),
            commit_skew_ms: 0.0,
            total_ms: 0.0,
        },
        members,
        started,
    };
    let sent = match read_files(files) {
        Ok(sent) => sent,
        Err(e) => return Err(run.fail(e)),
    };
    run.report.files = sent.iter().map(|f| f.name.clone()).collect();
    run.begin(sent, options).await?;
    super::pause_point("cert-after-begin").await;
    for i in 0..run.report.files.len() {
        run.stage(i).await?;
        super::pause_point("cert-after-stage").await;
        run.commit(i).await?;
        run.finish(i).await?;
    }
    run.done().await
}

/// One fleet certificate update in progress.
struct Run<'a> {
    members: &'a mut [Member],
    report: FleetCertReport,
    started: Instant,
}

impl Run<'_> {
    /// `request` to the edges `which`, in parallel, each answer within `limit`, each with
    /// the time it answered.
    async fn ask(
        &mut self,
        which: &[usize],
        request: &Request,
        limit: Duration,
    ) -> Vec<(usize, Result<Response, EdgeError>, Instant)> {
        join_all(
            self.members
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| which.contains(i))
                .map(|(i, m)| async move {
                    let r = m.ask(request, limit).await;
                    (i, r, Instant::now())
                }),
        )
        .await
    }

    /// Every edge whose line says `result`.
    fn with(&self, result: &str) -> Vec<usize> {
        (0..self.report.edges.len())
            .filter(|i| self.report.edges[*i].result == result)
            .collect()
    }

    fn set(&mut self, i: usize, result: &str, detail: String) {
        let e = &mut self.report.edges[i];
        e.result = result.to_string();
        e.detail = detail;
    }

    /// The failure with every edge's line.
    fn fail(&mut self, error: EdgeError) -> CertFailure {
        self.report.total_ms = ms(self.started.elapsed());
        Box::new((error, self.report.clone()))
    }

    /// Begin on every edge; a refusal anywhere ends every begun edge: nothing changed.
    async fn begin(
        &mut self,
        files: Vec<SentFile>,
        options: &FleetCertOptions,
    ) -> Result<(), CertFailure> {
        let (lock_wait_ms, wait) = match options.lock_wait {
            LockWait::No => (None, Duration::ZERO),
            LockWait::UpTo(d) => (Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)), d),
        };
        let request = Request::CertBegin {
            txn: self.report.transaction.clone(),
            files,
            allow_other_domains: options.allow_other_domains,
            lock_wait_ms,
            who: options.who.clone(),
        };
        if serde_json::to_vec(&request).map_or(usize::MAX, |l| l.len()) >= MAX_LINE {
            let why = format!(
                "the certificates are more than {} KiB together: the fleet sends them in one \
                 request; update them in several runs",
                MAX_LINE / 1024
            );
            return Err(self.fail(EdgeError::BadInput(why)));
        }
        let all: Vec<usize> = (0..self.members.len()).collect();
        let answers = self.ask(&all, &request, wait + STEP_SLACK).await;
        let mut refused = None;
        for (i, r, _) in answers {
            match r {
                Ok(r) => self.set(i, "begun", r.detail),
                Err(e) => {
                    self.set(i, "refused", e.to_string());
                    refused.get_or_insert((i, e));
                }
            }
        }
        let Some((i, error)) = refused else {
            return Ok(());
        };
        let name = self.report.edges[i].edge.clone();
        self.end_all(None, &format!("edge {name} refused the update"))
            .await;
        let message = format!(
            "cert update --fleet refused by edge {name} before anything changed: {error}; \
             nothing changed on any edge"
        );
        Err(self.refused(&name, message, &error))
    }

    /// A refusal before any commit: the deciding edge's kind, nothing changed anywhere.
    fn refused(&mut self, edge: &str, message: String, error: &EdgeError) -> CertFailure {
        let e = EdgeError::Remote {
            edge: edge.to_string(),
            message: format!("{message}{}", self.lines()),
            kind: error.kind(),
            stop: None,
        };
        self.fail(e)
    }

    /// Every edge's line, for a message.
    fn lines(&self) -> String {
        self.report
            .edges
            .iter()
            .map(|e| format!("\n  {}: {}: {}", e.edge, e.result, e.detail))
            .collect()
    }

    /// Ends the update on every edge still in it (`begun` or `staged`): `cert-abort` (a staged
    /// file aborted there).
    async fn end_all(&mut self, file: Option<&str>, why: &str) {
        let mut which = self.with("begun");
        which.extend(self.with("staged"));
        let request = Request::CertAbort {
            why: why.to_string(),
        };
        for (i, r, _) in self.ask(&which, &request, STEP_SLACK).await {
            let staged = self.report.edges[i].result == "staged";
            match (r, staged, file) {
                (Ok(r), true, Some(f)) => self.set(i, "aborted", format!("{f}: {}", r.detail)),
                (Ok(r), _, _) => self.set(i, "aborted", r.detail),
                (Err(e), _, _) => self.set(
                    i,
                    "abort failed",
                    format!(
                        "{e}; its session ends with the connection (a staged file is then \
                         aborted)"
                    ),
                ),
            }
        }
    }

    /// File `i` staged on every edge; a refusal anywhere aborts every staged edge.
    async fn stage(&mut self, i: usize) -> Result<(), CertFailure> {
        let file = self.report.files[i].clone();
        let which = self.with("begun");
        let answers = self
            .ask(&which, &Request::CertStage { index: i }, STEP_SLACK)
            .await;
        let mut refused = None;
        for (j, r, _) in answers {
            match r {
                Ok(r) => self.set(j, "staged", r.detail),
                Err(e) => {
                    self.set(j, "refused", format!("{file}: {e}"));
                    refused.get_or_insert((j, e));
                }
            }
        }
        let Some((j, error)) = refused else {
            return Ok(());
        };
        let name = self.report.edges[j].edge.clone();
        let why = format!("edge {name} refused {file}");
        self.end_all(Some(&file), &why).await;
        if i == 0 {
            let message = format!(
                "cert update --fleet refused: edge {name} refused to stage {file} ({error}); \
                 every staged edge aborted it: no edge serves it, nothing written on any edge"
            );
            return Err(self.refused(&name, message, &error));
        }
        let done = self.report.files[..i].join(", ");
        let message = format!(
            "cert update --fleet stopped at {file}: edge {name} refused to stage it ({error}); \
             no edge serves {file}, but {done} (before it) is installed on every edge"
        );
        Err(self.unfinished(&name, message))
    }

    /// An edge's failure after something changed: exit 5 naming it, with every edge's line.
    fn unfinished(&mut self, edge: &str, message: String) -> CertFailure {
        let e = EdgeError::Remote {
            edge: edge.to_string(),
            message: format!(
                "{message}; `vezasock cert list --fleet …` shows what each edge serves, `vezasock \
                 cert update --fleet …` again installs it everywhere{}",
                self.lines()
            ),
            kind: ErrorKind::Unfinished,
            stop: None,
        };
        self.fail(e)
    }

    /// File `i` committed on every staged edge, back to back. A failure anywhere: the edges
    /// that committed finish it (file written, so disk and runtime agree there) and end.
    async fn commit(&mut self, i: usize) -> Result<(), CertFailure> {
        let file = self.report.files[i].clone();
        let which = self.with("staged");
        let answers = self.ask(&which, &Request::CertCommit, STEP_SLACK).await;
        let times: Vec<Instant> = answers.iter().map(|(_, _, t)| *t).collect();
        if let (Some(a), Some(b)) = (times.iter().min(), times.iter().max()) {
            self.report.commit_skew_ms = self.report.commit_skew_ms.max(ms(*b - *a));
        }
        let mut failed = None;
        for (j, r, _) in answers {
            match r {
                Ok(r) => self.set(j, "committed", r.detail),
                Err(e) => {
                    // A commit that got no answer may have landed.
                    let said_no = matches!(e.kind(), ErrorKind::HaproxySaidNo | ErrorKind::Refused);
                    let result = if said_no { "OLD KEPT" } else { "UNKNOWN" };
                    self.set(j, result, format!("{file}: commit failed: {e}"));
                    failed.get_or_insert((j, e));
                }
            }
        }
        let Some((j, error)) = failed else {
            return Ok(());
        };
        let name = self.report.edges[j].edge.clone();
        let live = self.with("committed");
        if live.is_empty() && self.with("UNKNOWN").is_empty() && i == 0 {
            let message = format!(
                "cert update --fleet refused: edge {name} refused to commit {file} ({error}); no \
                 edge serves it, nothing written on any edge"
            );
            return Err(self.refused(&name, message, &error));
        }
        self.finish_committed(&file, &live).await;
        let mut message = format!(
            "cert update --fleet stopped at {file}: its commit failed on edge {name} ({error}); \
             {file} is NEW LIVE on {}; the old certificate is kept on {}",
            self.names("NEW LIVE"),
            self.names("OLD KEPT"),
        );
        if !self.with("UNKNOWN").is_empty() {
            let unknown = self.names("UNKNOWN");
            message.push_str(&format!(
                "; not known on {unknown} (its commit got no answer)"
            ));
        }
        Err(self.unfinished(&name, message))
    }

    /// The edges whose line says `result`, by name (`no edge` for none).
    fn names(&self, result: &str) -> String {
        let names: Vec<&str> = self
            .with(result)
            .into_iter()
            .map(|k| self.report.edges[k].edge.as_str())
            .collect();
        if names.is_empty() {
            "no edge".to_string()
        } else {
            names.join(", ")
        }
    }

    /// After a failed commit elsewhere: each edge in `live` writes `file` and reads it back,
    /// then ends.
    async fn finish_committed(&mut self, file: &str, live: &[usize]) {
        for (k, r, _) in self.ask(live, &Request::CertFinish, STEP_SLACK).await {
            match r {
                Ok(r) => {
                    self.installed(k, r);
                    self.set(
                        k,
                        "NEW LIVE",
                        format!("{file} served, written and read back"),
                    );
                }
                Err(e) => self.set(k, "NEW LIVE", format!("{file} served, NOT written: {e}")),
            }
        }
        let ended = self.with("NEW LIVE");
        let request = Request::CertAbort {
            why: format!("the commit of {file} failed on another edge"),
        };
        let _ = self.ask(&ended, &request, STEP_SLACK).await;
    }

    fn installed(&mut self, j: usize, r: Response) {
        if let Some(CertAnswer::Installed(u)) = r.cert {
            self.report.edges[j].certs.push(u);
        }
    }

    /// File `i` written and read back on every edge.
    async fn finish(&mut self, i: usize) -> Result<(), CertFailure> {
        let file = self.report.files[i].clone();
        let which = self.with("committed");
        let mut failed = None;
        for (j, r, _) in self.ask(&which, &Request::CertFinish, STEP_SLACK).await {
            match r {
                Ok(r) => {
                    self.installed(j, r);
                    self.set(j, "begun", format!("{file} installed"));
                }
                Err(e) => {
                    self.set(j, "failed", format!("{file} served, not verified: {e}"));
                    failed.get_or_insert((j, e));
                }
            }
        }
        let Some((j, error)) = failed else {
            return Ok(());
        };
        let name = self.report.edges[j].edge.clone();
        self.end_all(None, &format!("{file} failed on edge {name}"))
            .await;
        let message = format!(
            "cert update --fleet: {file} is served by every edge but was not written or read \
             back on edge {name} ({error})"
        );
        Err(self.unfinished(&name, message))
    }

    /// Every edge ends the update (journalled done, lock released).
    async fn done(mut self) -> Result<FleetCertReport, CertFailure> {
        let which = self.with("begun");
        let mut failed = None;
        for (j, r, _) in self.ask(&which, &Request::CertDone, STEP_SLACK).await {
            match r {
                Ok(_) => {
                    let files: Vec<String> = self.report.edges[j]
                        .certs
                        .iter()
                        .map(|u| format!("{} serial {}", u.file, u.serial))
                        .collect();
                    self.set(j, "installed", files.join(", "));
                }
                Err(e) => {
                    self.set(j, "failed", format!("installed, not recorded: {e}"));
                    failed.get_or_insert(j);
                }
            }
        }
        self.report.total_ms = ms(self.started.elapsed());
        let Some(j) = failed else {
            return Ok(self.report);
        };
        let name = self.report.edges[j].edge.clone();
        let message = format!(
            "cert update --fleet: every file is served and written on every edge, but edge \
             {name} did not record the end of the update"
        );
        Err(self.unfinished(&name, message))
    }
}

/// One edge's certificates in `cert list --fleet`.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeCerts {
    pub edge: String,
    pub report: Option<CertReport>,
    pub error: Option<String>,
}

/// One file across the fleet: the serial each reached edge serves.
#[derive(Debug, Clone, Serialize)]
pub struct FileAcross {
    pub file: String,
    pub serials: Vec<ServedBy>,
    /// Every reached edge serves the same serial.
    pub agree: bool,
}

/// The serial one edge serves for a file (`None`: not served there).
#[derive(Debug, Clone, Serialize)]
pub struct ServedBy {
    pub edge: String,
    pub serial: Option<String>,
}

/// `cert list --fleet`: each edge's certificates, each file's served serials side by side.
#[derive(Debug, Clone, Serialize)]
pub struct FleetCertList {
    pub edges: Vec<EdgeCerts>,
    pub files: Vec<FileAcross>,
    /// `DRIFT across edges on FILE: edge-a=A2 edge-b=A1`, one line per file the edges serve
    /// differently.
    pub drift: Vec<String>,
}

/// Every edge's `cert list` in parallel, compared file by file.
pub async fn list(members: &mut [Member]) -> FleetCertList {
    let answers = join_all(members.iter_mut().map(|m| async move {
        let r = m.ask(&Request::CertList, STEP_SLACK).await;
        (m.name().to_string(), r)
    }))
    .await;
    let edges: Vec<EdgeCerts> = answers
        .into_iter()
        .map(|(edge, r)| match r.map(|r| r.cert) {
            Ok(Some(CertAnswer::List(report))) => EdgeCerts {
                edge,
                report: Some(report),
                error: None,
            },
            Ok(_) => EdgeCerts {
                edge,
                report: None,
                error: Some("no certificate list in its answer".to_string()),
            },
            Err(e) => EdgeCerts {
                edge,
                report: None,
                error: Some(e.to_string()),
            },
        })
        .collect();
    let files = across(&edges);
    let drift = files
        .iter()
        .filter(|f| !f.agree)
        .map(|f| {
            let each: Vec<String> = f
                .serials
                .iter()
                .map(|s| format!("{}={}", s.edge, s.serial.as_deref().unwrap_or("none")))
                .collect();
            format!("DRIFT across edges on {}: {}", f.file, each.join(" "))
        })
        .collect();
    FleetCertList {
        edges,
        files,
        drift,
    }
}

/// Each file any reached edge has, with the serial every reached edge serves for it.
fn across(edges: &[EdgeCerts]) -> Vec<FileAcross> {
    let reached: Vec<(&str, &CertReport)> = edges
        .iter()
        .filter_map(|e| e.report.as_ref().map(|r| (e.edge.as_str(), r)))
        .collect();
    let mut names: Vec<&str> = reached
        .iter()
        .flat_map(|(_, r)| r.certs.iter().map(|c| c.file.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|file| {
            let serials: Vec<ServedBy> = reached
                .iter()
                .map(|(edge, r)| ServedBy {
                    edge: edge.to_string(),
                    serial: r
                        .certs
                        .iter()
                        .find(|c| c.file == file)
                        .and_then(|c| c.runtime_serial.clone()),
                })
                .collect();
            let agree = serials.windows(2).all(|w| w[0].serial == w[1].serial);
            FileAcross {
                file: file.to_string(),
                serials,
                agree,
            }
        })
        .collect()
}
