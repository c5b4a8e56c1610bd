//! One reply, matched to the command that asked for it: its bytes, what it is (empty, data,
//! info, error) and its typed value.

use bytes::Bytes;

use super::command::raw::{parse, Parsed};
use super::command::{ReplyKind, RuntimeCommand, Wire};
use super::parse::{classify, Outcome};
use super::Error;

/// One reply, matched to the command that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The command line as sent, without a master routing prefix.
    pub command: String,
    /// The reply body, prompt removed: the bytes a one-shot call would return.
    pub body: Bytes,
    /// Empty, data, info or error.
    pub outcome: Outcome,
    kind: ReplyKind,
    expects_empty: bool,
    /// The session turned `set severity-output number` on, so info messages carry a `[N]: `
    /// prefix that a one-shot call would not show.
    pub(crate) severity_added: bool,
}

impl Reply {
    pub(crate) fn new(command: &Wire, body: Bytes) -> Reply {
        let outcome = match classify(&body) {
            Outcome::Output(text) if command.errors.iter().any(|e| text.starts_with(e)) => {
                Outcome::Error {
                    severity: None,
                    text,
                }
            }
            // `set server … addr` refuses a bad address at warning level (`[4]: Invalid addr`).
            Outcome::Info { severity, text }
                if command.errors.iter().any(|e| text.starts_with(e)) =>
            {
                Outcome::Error {
                    severity: Some(severity),
                    text,
                }
            }
            other => other,
        };
        Reply {
            command: command.line.clone(),
            outcome,
            body,
            kind: command.kind,
            expects_empty: command.expects_empty,
            severity_added: false,
        }
    }

    /// The body as a one-shot call would have returned it: the `[N]: ` prefix that the
    /// session's own `set severity-output number` put before an info message (`show
    /// version` answers `[6]: 3.2.26-1` then) is removed. Otherwise the body as it came.
    pub fn output(&self) -> &[u8] {
        if self.severity_added {
            if let Some((_, rest)) = super::parse::outcome::severity_prefix(&self.body) {
                return rest;
            }
        }
        &self.body
    }

    /// Which reply this is.
    pub fn kind(&self) -> ReplyKind {
        self.kind
    }

    /// The body as text (invalid UTF-8 replaced), final newlines removed.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.trim_end_matches('\n').to_string()
    }

    /// The error HAProxy answered, if any: an error outcome, any text where an empty success
    /// was expected, or a `reload` that reports `Success=0`. `index` is the 1-based position
    /// in a batch.
    pub fn refusal(&self, index: Option<usize>) -> Option<Error> {
        let refused = |message: String| {
            Some(Error::Refused {
                command: self.command.clone(),
                index,
                message,
            })
        };
        match &self.outcome {
            Outcome::Error { text, .. } => return refused(text.clone()),
            Outcome::Output(text) if self.expects_empty => return refused(text.clone()),
            _ => {}
        }
        if self.kind == ReplyKind::Reload {
            if let Ok(Parsed::Reload(reload)) = parse(ReplyKind::Reload, &self.body) {
                if !reload.success {
                    let log: Vec<String> = reload
                        .log
                        .iter()
                        .map(|l| match &l.level {
                            Some(level) => format!("[{level}] {}", l.message),
                            None => l.message.clone(),
                        })
                        .collect();
                    return refused(format!("reload failed (Success=0): {}", log.join("\n")));
                }
            }
        }
        None
    }

    /// `Ok` unless HAProxy refused the command.
    pub fn check(&self) -> Result<(), Error> {
        match self.refusal(None) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The typed value of the reply. An error reply is [`Error::Refused`], a body that does not
    /// follow the grammar is [`Error::Parse`].
    pub fn parse(&self) -> Result<Parsed, Error> {
        self.check()?;
        parse(self.kind, self.output()).map_err(|source| Error::Parse {
            command: self.command.clone(),
            source,
        })
    }

    /// The typed value of the reply to `command` (the command it was sent for): an error
    /// reply is [`Error::Refused`], a body that does not follow the grammar [`Error::Parse`].
    pub fn parse_with<C: RuntimeCommand + ?Sized>(&self, command: &C) -> Result<C::Reply, Error> {
        self.check()?;
        command
            .parse_reply(self.output())
            .map_err(|source| Error::Parse {
                command: self.command.clone(),
                source,
            })
    }
}
