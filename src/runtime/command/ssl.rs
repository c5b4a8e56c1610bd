//! `show ssl cert`: the certificates HAProxy loaded, and the details of one.
//!
//! Grammar (recorded on 2.6, 3.0 and 3.2 by `grammar/capture_ssl.py`, files in
//! `grammar/corpus-ssl/<version>/`):
//! - the list (`show ssl cert`): a `# filename` header, then one certificate name per line;
//!   during an uncommitted `set ssl cert` a `# transaction` section comes first and names
//!   the pending one as `*<name>`;
//! - one certificate (`show ssl cert <name>`): `Key: value` lines (`Filename`, `Status`,
//!   `Serial`, `notBefore`, `notAfter`, `Subject Alternative Name`, `Algorithm`,
//!   `SHA1 FingerPrint`, `Subject`, `Issuer`, `OCSP Response Key`, …; 3.2 adds `Crt filename`,
//!   `Key filename`, `OCSP filename`, `SCTL filename`). A value may be empty, and a chain
//!   repeats `Chain Subject` / `Chain Issuer`, so the fields are kept in order;
//! - an unknown name: `Can't display the certificate: Not found or the certificate is a
//!   bundle!` (`[3]: ` under severity-output).

use serde::Serialize;

use super::{check_payload_marker, to_json, RawReply, RuntimeCommand};
use crate::runtime::parse::{lines, non_empty, ParseError, ReplyKind};
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
    if section.is_none() {
        return Err(ParseError::new(WHAT_LIST, 0, "empty reply"));
    }
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
