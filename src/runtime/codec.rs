//! Framing: splits the byte stream of a runtime API connection into one reply per command.
//!
//! HAProxy's replies carry no length and no status, and an empty line is *not* a reliable end
//! of reply (2.6 sends some errors with a single `\n`, the master sends single-`\n` errors and
//! silent commands; `grammar/README.md` §1.2, §1.4). So the end of a reply is:
//! - [`Framing::OneShot`]: the end of the connection (worker one-shot, or master one-shot after
//!   the client half-closed);
//! - [`Framing::Prompt`]: the worker prompt `> ` right after a `\n` (the empty reply is `\n> `);
//! - [`Framing::MasterPrompt`]: a master prompt (`master> `, `1234> `, `master[ReloadFailed]> `,
//!   `master(xed)> `, `[0:00:01:02] master> `) at the start of the reply or right after a `\n`.
//!
//! The body of a [`Frame`] is the reply without its prompt: the same bytes a one-shot
//! connection would have returned (`100 (initial 100)\n\n`, or `\n` for an empty success).
//!
//! **Known limit of prompt framing.** A reply ends at the first `\n> ` (worker) or `\n<prompt>`
//! (master). A data line that itself starts with `> ` would end the reply early. None of the
//! replies of the typed commands can hold such a line: their lines start with a proxy, server
//! or map name, a number, `0x`, `#`, a `Key:` or an error text, and HAProxy names cannot hold
//! `>`. The risk is only for operator-typed lines (`vezasock exec`) whose output echoes
//! arbitrary text at the start of a line (e.g. 3.2 `echo` with a multi-line payload); use
//! one-shot mode for those.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::parse::outcome::{classify, is_known_error, severity_prefix};

/// The one bound on a reply, in every mode (one-shot, session, batch, `exec`): far above the
/// largest dump of a big edge (`show stat` of 10,000 servers is ~5 MB), far below what would
/// hurt the machine. docs/operating.md (`vezasock exec`) states it.
pub const MAX_REPLY: usize = 64 * 1024 * 1024;

/// How replies are delimited on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One reply, ended by the server closing the connection.
    OneShot,
    /// Worker interactive mode (after `prompt`): each reply ends with `> `.
    Prompt,
    /// Master CLI interactive mode: each reply ends with a master prompt.
    MasterPrompt,
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The reply without its prompt (and without payload `+ ` prompts).
    pub body: Bytes,
    /// The prompt that ended the reply, as received (`"> "`, `"master> "`, `"1234(e)> "`);
    /// `None` in one-shot mode.
    pub prompt: Option<String>,
}

impl Frame {
    /// True when the prompt says the master's last reload failed (`master[ReloadFailed]> `).
    pub fn reload_failed(&self) -> bool {
        self.prompt
            .as_deref()
            .is_some_and(|p| p.contains("[ReloadFailed]"))
    }
}

/// Why the codec could not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The pending reply grew past the configured bound.
    #[error("reply exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection ended inside a reply (`received` bytes of it had arrived).
    #[error("connection closed in the middle of a reply ({received} bytes received)")]
    Closed { received: usize },
    /// A command line that must not be sent as is (holds a line break).
    #[error("refusing to send a line holding {0}")]
    InvalidLine(&'static str),
    /// Reading or writing the socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The decoder (replies) and encoder (command lines) of one connection.
#[derive(Debug, Clone)]
pub struct ReplyCodec {
    framing: Framing,
    max_reply: usize,
    /// Bytes of the pending reply already scanned without finding its end, so a reply that
    /// arrives one byte at a time is scanned once, not once per byte.
    scanned: usize,
    /// One-shot: the single reply has been returned.
    finished: bool,
}

/// Result of looking for a prompt at one position.
enum PromptMatch {
    /// A prompt of this many bytes starts here.
    Found(usize),
    /// The bytes here could still become a prompt: wait for more.
    NeedMore,
    /// No prompt starts here.
    No,
}

impl ReplyCodec {
    /// A codec for `framing` with the default reply bound.
    pub fn new(framing: Framing) -> Self {
        Self::with_max_reply(framing, MAX_REPLY)
    }

    /// A codec for `framing` refusing replies longer than `max_reply` bytes.
    pub fn with_max_reply(framing: Framing, max_reply: usize) -> Self {
        ReplyCodec {
            framing,
            max_reply,
            scanned: 0,
            finished: false,
        }
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The reply bound in bytes.
    pub fn max_reply(&self) -> usize {
        self.max_reply
    }

    /// True when `buf`, in one-shot framing, is exactly the master's one-line answer to a bad
    /// `@` target (`Can't find the target PID matching the prefix '@99'\n`). Seen on 3.0 and
    /// 3.2: after it the master sometimes neither closes nor says more, even after the
    /// client's half-close, so the reader stops waiting for EOF soon after this line.
    pub fn lone_target_error(&self, buf: &[u8]) -> bool {
        const PREFIX: &[u8] = b"Can't find the target PID matching the prefix '";
        self.framing == Framing::OneShot
            && buf.starts_with(PREFIX)
            && buf.ends_with(b"'\n")
            && buf.iter().filter(|&&b| b == b'\n').count() == 1
    }

    /// Looks for the end of the first reply in `buf`: `(body_end, prompt_len)`.
    fn find_end(&self, buf: &[u8]) -> Option<(usize, usize)> {
        // Payload prompts `+ ` come first and are not part of the body.
        let start = payload_prompts_len(buf);
        match self.framing {
            Framing::OneShot => None,
            Framing::Prompt => {
                // A reply is at least `\n` before its prompt: look for `\n> ` from the start.
                let mut from = start.max(self.scanned);
                while let Some(pos) = memchr(b'\n', buf.get(from..)?) {
                    let nl = from + pos;
                    match worker_prompt(buf.get(nl + 1..)?) {
                        PromptMatch::Found(len) => return Some((nl + 1, len)),
                        PromptMatch::NeedMore => return None,
                        PromptMatch::No => from = nl + 1,
                    }
                }
                None
            }
            Framing::MasterPrompt => {
                // Silent master commands: the prompt right at the start of the reply.
                if self.scanned == 0 {
                    match master_prompt(buf.get(start..)?) {
                        PromptMatch::Found(len) => return Some((start, len)),
                        PromptMatch::NeedMore => return None,
                        PromptMatch::No => {}
                    }
                }
                let mut from = start.max(self.scanned);
                while let Some(pos) = memchr(b'\n', buf.get(from..)?) {
                    let nl = from + pos;
                    match master_prompt(buf.get(nl + 1..)?) {
                        PromptMatch::Found(len) => return Some((nl + 1, len)),
                        PromptMatch::NeedMore => return None,
                        PromptMatch::No => from = nl + 1,
                    }
                }
                None
            }
        }
    }

    /// Where scanning may resume next time: the last `\n` whose prompt is still undecided
    /// must be looked at again, so resume at it.
    fn resume_point(buf: &[u8]) -> usize {
        buf.iter().rposition(|&b| b == b'\n').unwrap_or(0)
    }
}

impl Decoder for ReplyCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if self.framing == Framing::OneShot {
            if buf.len() > self.max_reply {
                return Err(CodecError::TooLarge {
                    limit: self.max_reply,
                });
            }
            return Ok(None);
        }
        match self.find_end(buf) {
            Some((body_end, prompt_len)) => {
                if body_end > self.max_reply {
                    return Err(CodecError::TooLarge {
                        limit: self.max_reply,
                    });
                }
                let skip = payload_prompts_len(buf);
                let mut reply = buf.split_to(body_end + prompt_len);
                let prompt = reply.split_off(body_end);
                reply.advance(skip.min(reply.len()));
                self.scanned = 0;
                Ok(Some(Frame {
                    body: reply.freeze(),
                    prompt: Some(String::from_utf8_lossy(&prompt).into_owned()),
                }))
            }
            None => {
                if buf.len() > self.max_reply {
                    return Err(CodecError::TooLarge {
                        limit: self.max_reply,
                    });
                }
                self.scanned = Self::resume_point(buf);
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        match self.framing {
            Framing::OneShot => {
                if self.finished {
                    return Ok(None);
                }
                // EOF is the end of the one reply; an empty one is still a reply (the caller
                // decides whether 0 bytes means the server hung up). EOF alone does not prove
                // the reply whole: a worker that died, or a proxy in between, can close early.
                self.finished = true;
                if !one_shot_complete(buf) {
                    return Err(CodecError::Closed {
                        received: buf.len(),
                    });
                }
                let body = buf.split().freeze();
                Ok(Some(Frame { body, prompt: None }))
            }
            Framing::Prompt | Framing::MasterPrompt => {
                if buf.is_empty() {
                    Ok(None)
                } else if self.framing == Framing::MasterPrompt && classify(buf).is_error() {
                    // 2.6's master answers a bad `@` target with one error line and hangs up
                    // (`grammar/README.md` §1.4): that is HAProxy's answer, not a transport failure.
                    let body = buf.split().freeze();
                    Ok(Some(Frame { body, prompt: None }))
                } else {
                    // The server hung up inside a reply: what arrived is not a reply.
                    Err(CodecError::Closed {
                        received: buf.len(),
                    })
                }
            }
        }
    }
}

impl Encoder<&str> for ReplyCodec {
    type Error = CodecError;

    fn encode(&mut self, line: &str, dst: &mut BytesMut) -> Result<(), CodecError> {
        // The caller validated the line; a line break here would send a second command.
        if line.contains('\n') {
            return Err(CodecError::InvalidLine("a newline"));
        }
        if line.contains('\r') {
            return Err(CodecError::InvalidLine("a carriage return"));
        }
        dst.reserve(line.len() + 1);
        dst.extend_from_slice(line.as_bytes());
        // Exactly one LF, never CRLF: 3.2 answers an extra empty reply per CRLF line.
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}

/// True when a one-shot reply, read to EOF, ends the way HAProxy ends a whole reply, so a
/// connection closed in the middle of one is told apart from a finished answer
/// (`grammar/README.md` §1.2; every one-shot file of the corpus passes this):
/// - nothing at all (the caller decides what 0 bytes means), or `\n` (an empty success);
/// - `\n\n`: the last line, then the empty line that closes every non-empty reply;
/// - one line ending in a single `\n` that is one of HAProxy's known errors (2.6's weight
///   garbage error, the too-big-line errors, the master's bad `@` target), or 3.2's master
///   `prompt` usage text, the only replies sent without the closing empty line.
///
/// A reply cut just before its empty line is caught; one cut exactly after it cannot be told
/// apart by framing (the typed parsers still check what they read).
pub fn one_shot_complete(body: &[u8]) -> bool {
    if body.is_empty() || body == b"\n" || body.ends_with(b"\n\n") {
        return true;
    }
    let Some(text) = body.strip_suffix(b"\n") else {
        // Stopped inside a line.
        return false;
    };
    // The last reply of a `;` chain: after the last empty line, without empty successes.
    let last = text
        .windows(2)
        .rposition(|w| w == b"\n\n")
        .map_or(text, |at| text.get(at + 2..).unwrap_or_default());
    let start = last.iter().position(|&b| b != b'\n').unwrap_or(last.len());
    let last = last.get(start..).unwrap_or_default();
    let message = severity_prefix(last).map_or(last, |(_, rest)| rest);
    if message.starts_with(MASTER_PROMPT_USAGE) {
        return true;
    }
    !last.contains(&b'\n') && is_known_error(message)
}

/// 3.2's master answer to `prompt n`, `prompt help` or an unknown word: several lines, one
/// `\n` at the end (`grammar/README.md` §1.2).
const MASTER_PROMPT_USAGE: &[u8] = b"Usage: prompt ";

/// Length of the leading payload-continuation prompts (`+ ` repeated).
fn payload_prompts_len(buf: &[u8]) -> usize {
    let mut at = 0;
    while buf.get(at..at + 2) == Some(b"+ ") {
        at += 2;
    }
    at
}

/// The worker prompt: `> `, or 3.x `prompt timed`'s `[d:hh:mm:ss]> `.
fn worker_prompt(buf: &[u8]) -> PromptMatch {
    let mut at = 0;
    if buf.first() == Some(&b'[') {
        match timed_prefix(buf) {
            PromptMatch::Found(len) => at = len,
            other => return other,
        }
    }
    literal(buf, at, b"> ")
}

/// `[d:hh:mm:ss]` (digits and colons in brackets); the length includes the `]`.
fn timed_prefix(buf: &[u8]) -> PromptMatch {
    let mut at = 1;
    loop {
        match buf.get(at) {
            None => return PromptMatch::NeedMore,
            Some(b'0'..=b'9' | b':') if at < 24 => at += 1,
            Some(b']') if at > 1 => return PromptMatch::Found(at + 1),
            Some(_) => return PromptMatch::No,
        }
    }
}

/// `expected` at `buf[at..]`, with the prompt ending there.
fn literal(buf: &[u8], at: usize, expected: &[u8]) -> PromptMatch {
    let rest = buf.get(at..).unwrap_or_default();
    if rest.len() >= expected.len() {
        if rest.starts_with(expected) {
            PromptMatch::Found(at + expected.len())
        } else {
            PromptMatch::No
        }
    } else if expected.starts_with(rest) {
        PromptMatch::NeedMore
    } else {
        PromptMatch::No
    }
}

/// A master CLI prompt (HAProxy `pcli_prompt()`):
/// `[timed] ` ? (`master` `[ReloadFailed]`? | `<pid>`) (`(` mode flags `)`)? `> `.
fn master_prompt(buf: &[u8]) -> PromptMatch {
    let mut at = 0;
    if buf.first() == Some(&b'[') {
        match timed_prefix(buf) {
            PromptMatch::Found(len) => at = len,
            other => return other,
        }
        match literal(buf, at, b" ") {
            PromptMatch::Found(len) => at = len,
            other => return other,
        }
    }
    // The name: `master` or a worker PID.
    match buf.get(at) {
        None => return PromptMatch::NeedMore,
        Some(b'm') => {
            match literal(buf, at, b"master") {
                PromptMatch::Found(len) => at = len,
                other => return other,
            }
            // State in brackets, e.g. `[ReloadFailed]`.
            if buf.get(at) == Some(&b'[') {
                let mut end = at + 1;
                loop {
                    match buf.get(end) {
                        None => return PromptMatch::NeedMore,
                        Some(b) if b.is_ascii_alphabetic() && end - at < 32 => end += 1,
                        Some(b']') if end > at + 1 => break,
                        Some(_) => return PromptMatch::No,
                    }
                }
                at = end + 1;
            }
        }
        Some(b'0'..=b'9') => {
            let digits = buf
                .get(at..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 10 {
                return PromptMatch::No;
            }
            at += digits;
        }
        Some(_) => return PromptMatch::No,
    }
    // Mode flags, e.g. `(xed)`.
    match buf.get(at) {
        None => return PromptMatch::NeedMore,
        Some(b'(') => {
            let mut end = at + 1;
            loop {
                match buf.get(end) {
                    None => return PromptMatch::NeedMore,
                    Some(b'a'..=b'z') if end - at < 8 => end += 1,
                    Some(b')') if end > at + 1 => break,
                    Some(_) => return PromptMatch::No,
                }
            }
            at = end + 1;
        }
        Some(_) => {}
    }
    literal(buf, at, b"> ")
}

/// Position of the first `needle` byte.
fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, bytes: &[u8]) -> Vec<Frame> {
        let mut codec = ReplyCodec::new(framing);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            out.push(frame);
        }
        out
    }

    #[test]
    fn master_prompts() {
        let frames = decode_all(
            Framing::MasterPrompt,
            b"master> 1234> master(xed)> 1234(e)> [0:00:03:18] master> master[ReloadFailed]> ",
        );
        let prompts: Vec<_> = frames.iter().filter_map(|f| f.prompt.clone()).collect();
        assert_eq!(
            prompts,
            [
                "master> ",
                "1234> ",
                "master(xed)> ",
                "1234(e)> ",
                "[0:00:03:18] master> ",
                "master[ReloadFailed]> "
            ]
        );
        assert!(frames.iter().all(|f| f.body.is_empty()));
        assert!(frames[5].reload_failed());
    }

    #[test]
    fn worker_body_keeps_framing_newlines() {
        let frames = decode_all(Framing::Prompt, b"\n> 100 (initial 100)\n\n> ");
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0].body[..], b"\n");
        assert_eq!(&frames[1].body[..], b"100 (initial 100)\n\n");
    }
}
