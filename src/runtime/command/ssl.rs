//! `show ssl cert`: the certificates HAProxy loaded, and the details of one.
//!
//! Grammar (recorded on 2.6, 3.0, 3.2 and 3.4 by `grammar/capture_ssl.py`, files in
//! `grammar/corpus-ssl/<version>/`):
//! - the list (`show ssl cert`): a `# filename` header, then one certificate name per line;
//!   during an uncommitted `set ssl cert` a `# transaction` section comes first and names
//!   the pending one as `*<name>`. HAProxy without any certificate answers a bare `\n`: an
//!   empty list;
//! - one certificate (`show ssl cert <name>`): `Key: value` lines (`Filename`, `Status`,
//!   `Serial`, `notBefore`, `notAfter`, `Subject Alternative Name`, `Algorithm`,
//!   `SHA1 FingerPrint`, `Subject`, `Issuer`, `OCSP Response Key`, …; 3.2 adds `Crt filename`,
//!   `Key filename`, `OCSP filename`, `SCTL filename`). A value may be empty, and a chain
//!   repeats `Chain Subject` / `Chain Issuer`, so the fields are kept in order;
//! - an unknown name: `Can't display the certificate: Not found or the certificate is a
//!   bundle!` (`[3]: ` under severity-output).
//!
//! The writes ([`SslWrite`]: `new ssl cert`, `set ssl cert <name> <<` + PEM payload, `commit
//! ssl cert`, `abort ssl cert`, `add ssl crt-list`, `del ssl crt-list`, `del ssl cert`) answer
//! a success sentence or an error sentence, both without a severity prefix and with no status
//! (seen on 2.6, 3.0 and 3.2, `grammar/corpus-ssl/<version>/*-write.oneshot`): each write
//! knows its success sentence and anything else is [`Error::Refused`]. They go over their own
//! one-shot connection because `set ssl cert` carries a multi-line payload, ended by an empty
//! line, which the line codec rightly refuses to send: `SslWrite::send`, in
//! [`crate::runtime::oneshot`] with the other one-shot calls (the transport sits above the
//! commands).

use serde::Serialize;

use super::{check_payload_marker, to_json, RawReply, ReplyKind, RuntimeCommand, MAX_LINE};
use crate::runtime::parse::{lines, non_empty, ParseError};
use crate::runtime::version::Version;
use crate::runtime::Error;

const WHAT_LIST: &str = "show ssl cert";
const WHAT_ONE: &str = "show ssl cert <name>";

/// Both forms typed by an operator (`vezasock exec --json -- show ssl cert …`).
pub(crate) const RAW: &[RawReply] = &[
    RawReply {
        words: &["show", "ssl", "cert"],
        extra_words: 0,
        kind: "ssl_cert_list",
        parse: |body| to_json(WHAT_LIST, parse_ssl_cert_list(body)),
        errors: &[],
    },
    RawReply {
        words: &["show", "ssl", "cert"],
        extra_words: 1,
        kind: "ssl_cert",
        parse: |body| to_json(WHAT_ONE, parse_ssl_cert(body)),
        errors: NOT_FOUND,
    },
];

/// `show ssl cert <unknown>`.
const NOT_FOUND: &[&str] = &["Can't display the certificate"];

/// A certificate as HAProxy names it: the path from the config (`crt`, a crt-list) or a
/// `*<name>` for the pending version of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertRef(String);

impl CertRef {
    /// Validates a certificate name: one word, no control character, `;` or `\`.
    pub fn new(value: &str) -> Result<CertRef, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "certificate",
            value: value.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(bad("is empty"));
        }
        if value.len() > super::MAX_MAP {
            return Err(bad("is longer than 4096 bytes"));
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("holds whitespace or a control character"));
        }
        if value.contains(';') || value.contains('\\') {
            return Err(bad("holds ';' or '\\'"));
        }
        check_payload_marker("certificate", value)?;
        Ok(CertRef(value.to_string()))
    }

    /// The name as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The certificates HAProxy holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SslCertList {
    /// Committed certificates, in HAProxy's order.
    pub certs: Vec<String>,
    /// Certificates of an uncommitted `set ssl cert` transaction (without the `*`).
    pub transaction: Vec<String>,
}

/// One `Key: value` line of a certificate's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SslCertField {
    pub key: String,
    pub value: String,
}

/// The details of one certificate, every field in HAProxy's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SslCert {
    pub fields: Vec<SslCertField>,
}

impl SslCert {
    /// The first value of `key` (`"Serial"`, `"notAfter"`, …).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.value.as_str())
    }

    /// `Filename`.
    pub fn filename(&self) -> Option<&str> {
        self.get("Filename")
    }

    /// `Status`: `Used`, `Unused`, `Empty`, …
    pub fn status(&self) -> Option<&str> {
        self.get("Status")
    }

    /// `notAfter`, as HAProxy prints it (`Nov  7 09:37:07 2126 GMT`).
    pub fn not_after(&self) -> Option<&str> {
        self.get("notAfter")
    }

    /// The `Subject Alternative Name` entries (`DNS:edge.vezasock.test`, …).
    pub fn alt_names(&self) -> Vec<&str> {
        self.get("Subject Alternative Name")
            .map(|v| v.split(", ").filter(|n| !n.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// Parses the `show ssl cert` list.
pub fn parse_ssl_cert_list(body: &[u8]) -> Result<SslCertList, ParseError> {
    let mut list = SslCertList {
        certs: Vec::new(),
        transaction: Vec::new(),
    };
    let mut section = None;
    for line in lines(WHAT_LIST, body)? {
        non_empty(WHAT_LIST, &line)?;
        let text = line.str(WHAT_LIST)?;
        match text {
            "# filename" => section = Some(false),
            "# transaction" => section = Some(true),
            name => match section {
                Some(false) => list.certs.push(name.to_string()),
                Some(true) => list
                    .transaction
                    .push(name.strip_prefix('*').unwrap_or(name).to_string()),
                None => {
                    return Err(ParseError::new(
                        WHAT_LIST,
                        line.offset,
                        "expected the `# filename` header",
                    ))
                }
            },
        }
    }
    // No header at all: HAProxy holds no certificate and answers a bare `\n` (every version,
    // corpus-ssl `show-ssl-cert-list-none`). Any other line without a header failed above.
    Ok(list)
}

/// Parses the details of one certificate.
pub fn parse_ssl_cert(body: &[u8]) -> Result<SslCert, ParseError> {
    let mut fields = Vec::new();
    for line in lines(WHAT_ONE, body)? {
        non_empty(WHAT_ONE, &line)?;
        let text = line.str(WHAT_ONE)?;
        let (key, value) = text
            .split_once(':')
            .ok_or_else(|| ParseError::new(WHAT_ONE, line.offset, "expected `Key: value`"))?;
        fields.push(SslCertField {
            key: key.to_string(),
            value: value.strip_prefix(' ').unwrap_or(value).to_string(),
        });
    }
    if fields.first().map(|f| f.key.as_str()) != Some("Filename") {
        return Err(ParseError::new(WHAT_ONE, 0, "expected `Filename: …` first"));
    }
    Ok(SslCert { fields })
}

/// `show ssl cert`: every certificate HAProxy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShowSslCerts;

impl RuntimeCommand for ShowSslCerts {
    type Reply = SslCertList;

    fn line(&self) -> String {
        "show ssl cert".to_string()
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<SslCertList, ParseError> {
        parse_ssl_cert_list(body)
    }
}

/// `show ssl cert <name>`: one certificate's details.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShowSslCert {
    pub cert: CertRef,
}

impl RuntimeCommand for ShowSslCert {
    type Reply = SslCert;

    fn line(&self) -> String {
        format!("show ssl cert {}", self.cert.as_str())
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn kind(&self) -> ReplyKind {
        ReplyKind::Text
    }

    fn parse_reply(&self, body: &[u8]) -> Result<SslCert, ParseError> {
        parse_ssl_cert(body)
    }

    fn errors(&self) -> &'static [&'static str] {
        NOT_FOUND
    }
}

/// The largest `set ssl cert` payload sent to HAProxy before 3.4, which reads the command and
/// its payload into one buffer of `tune.bufsize` (16 KiB; 2.6 took a 14.6 KB one and answered
/// nothing at all to a 17 KB one): 15 KiB leaves room for the command line.
pub const MAX_PAYLOAD: usize = MAX_LINE - 1024;

/// The largest payload sent to HAProxy 3.4 and later, which reads the payload apart from the
/// line, up to `tune.cli.max-payload-size` (128 KiB by default, the empty line ending it
/// included: 3.4.7 took 131,070 bytes and refused 132,000): 127 KiB leaves a margin.
pub const MAX_PAYLOAD_3_4: usize = 127 * 1024;

/// The largest `set ssl cert` payload `version` takes (see [`MAX_PAYLOAD`], [`MAX_PAYLOAD_3_4`]).
pub fn max_payload(version: &Version) -> usize {
    if version.at_least(3, 4) {
        MAX_PAYLOAD_3_4
    } else {
        MAX_PAYLOAD
    }
}

/// Why `payload` does not fit `version`'s payload buffer, or `None` when it fits.
pub fn payload_too_big(payload: &CertPayload, version: &Version) -> Option<String> {
    let limit = max_payload(version);
    (payload.as_str().len() >= limit).then(|| {
        format!(
            "is {} bytes as a payload: HAProxy {version} takes less than {} KiB{}",
            payload.as_str().len(),
            limit / 1024,
            if version.at_least(3, 4) {
                " (tune.cli.max-payload-size)"
            } else {
                " (the command and its payload share one 16 KiB buffer before 3.4)"
            }
        )
    })
}

/// A certificate chain and key for `set ssl cert`, as payload lines: `\r` removed, empty lines
/// dropped (an empty line ends HAProxy's payload), no other control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload(String);

impl CertPayload {
    /// Checks and normalises a PEM text.
    pub fn new(pem: &str) -> Result<CertPayload, Error> {
        let bad = |why| Error::InvalidArgument {
            what: "certificate payload",
            value: pem.chars().take(40).collect(),
            why,
        };
        let mut out = String::with_capacity(pem.len());
        for line in pem.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(bad("holds a control character"));
            }
            out.push_str(line);
            out.push('\n');
        }
        if out.is_empty() {
            return Err(bad("is empty"));
        }
        // The bound of the most generous version; each version's own is checked against the
        // session's version before anything is sent ([`payload_too_big`]).
        if out.len() >= MAX_PAYLOAD_3_4 {
            return Err(bad(
                "is 127 KiB or longer: larger than any HAProxy's payload limit",
            ));
        }
        Ok(CertPayload(out))
    }

    /// The payload lines, each ending in `\n`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A certificate write over the runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslWrite {
    /// `new ssl cert <name>`: an empty certificate store for a name the config does not have.
    New(CertRef),
    /// `set ssl cert <name> <<`: a transaction holding the new chain and key.
    Set(CertRef, CertPayload),
    /// `commit ssl cert <name>`: every bind using it serves the new one to new connections.
    Commit(CertRef),
    /// `abort ssl cert <name>`: drops the transaction.
    Abort(CertRef),
    /// `add ssl crt-list <list> <name>`: a committed certificate joins a crt-list or a `crt`
    /// directory, so its names are served by SNI.
    AddCrtList { list: CertRef, cert: CertRef },
    /// `del ssl crt-list <list> <name>`.
    DelCrtList { list: CertRef, cert: CertRef },
    /// `del ssl cert <name>`: an unused certificate.
    DelCert(CertRef),
}

/// The last part of a certificate's path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl SslWrite {
    /// The bytes sent: the line, and for `set` the payload and the empty line ending it.
    pub fn text(&self) -> String {
        match self {
            SslWrite::New(c) => format!("new ssl cert {}\n", c.as_str()),
            SslWrite::Set(c, p) => format!("set ssl cert {} <<\n{}\n", c.as_str(), p.as_str()),
            SslWrite::Commit(c) => format!("commit ssl cert {}\n", c.as_str()),
            SslWrite::Abort(c) => format!("abort ssl cert {}\n", c.as_str()),
            SslWrite::AddCrtList { list, cert } => {
                format!("add ssl crt-list {} {}\n", list.as_str(), cert.as_str())
            }
            SslWrite::DelCrtList { list, cert } => {
                format!("del ssl crt-list {} {}\n", list.as_str(), cert.as_str())
            }
            SslWrite::DelCert(c) => format!("del ssl cert {}\n", c.as_str()),
        }
    }

    /// The command as a person would read it (no payload).
    pub fn line(&self) -> String {
        let text = self.text();
        text.lines().next().unwrap_or_default().to_string()
    }

    /// Reads the reply: the success sentence, or [`Error::Refused`] with HAProxy's words.
    pub fn check_reply(&self, body: &[u8]) -> Result<(), Error> {
        let text = String::from_utf8_lossy(body);
        let first = text.lines().next().unwrap_or_default();
        let ok = match self {
            SslWrite::New(_) => first.starts_with("New empty certificate store"),
            // The sentence must name this certificate: with another certificate's transaction
            // open, 2.6 puts the payload into that one ("Transaction updated for certificate
            // <the other>!"; 3.x refuses).
            // (Compared by file name: the certificates of one edge share its certs dir.)
            SslWrite::Set(cert, _) => ["Transaction created for certificate ", "Transaction updated for certificate "]
                .iter()
                .filter_map(|p| first.strip_prefix(p))
                .any(|named| file_name(named.trim_end().trim_end_matches('!')) == file_name(cert.as_str())),
            SslWrite::Abort(_) => first.starts_with("Transaction aborted for certificate"),
            // 2.6 prints progress dots after `Committing <name>`; the verdict is its own line.
            SslWrite::Commit(_) | SslWrite::AddCrtList { .. } => {
                first.starts_with(if matches!(self, SslWrite::Commit(_)) {
                    "Committing "
                } else {
                    "Inserting certificate "
                }) && text.lines().any(|l| l.trim_end_matches('.') == "Success!")
            }
            SslWrite::DelCrtList { .. } => first.starts_with("Entry ") && first.contains(" deleted in crtlist "),
            SslWrite::DelCert(_) => first.starts_with("Certificate ") && first.ends_with(" deleted!"),
        };
        if ok {
            return Ok(());
        }
        let mut message: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if matches!(self, SslWrite::Set(..)) && first.starts_with("Transaction updated for certificate ") {
            message.push(
                "(another certificate's transaction was open: HAProxy put this payload into it; \
                 `abort ssl cert` that certificate before anyone commits it)",
            );
        }
        Err(Error::Refused {
            command: self.line(),
            index: None,
            message: if message.is_empty() {
                "an empty answer".to_string()
            } else {
                message.join(" ")
            },
        })
    }
}
