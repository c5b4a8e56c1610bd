//! A fake HAProxy socket for hermetic client tests: a unix socket in a temp dir whose
//! behaviour per connection is a closure. Dropping the server stops it.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// What the fake HAProxy answers to one line.
pub enum Answer {
    /// This body (the fake adds the prompt in interactive mode).
    Body(Vec<u8>),
    /// The built-in answer for `prompt`, `set severity-output number`, `show info`; hang up
    /// on anything else.
    Default,
    /// Close the connection without answering.
    HangUp,
    /// Answer, then close (like 3.0 closing an idle session after `stats timeout`).
    BodyThenHangUp(Vec<u8>),
    /// Send these bytes with no prompt, then close (2.6's master after a bad `@` target).
    RawThenHangUp(Vec<u8>),
}

/// Shorthand for `Answer::Body`.
pub fn body(bytes: &[u8]) -> Answer {
    Answer::Body(bytes.to_vec())
}

/// What one connection does: gets the stream and the 0-based connection number.
pub type Handler =
    Arc<dyn Fn(UnixStream, usize) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A fake socket server.
pub struct FakeServer {
    pub path: PathBuf,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Every line received, on every connection, in order.
    pub lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Starts a server running `handler` on each connection.
    pub fn start(handler: Handler) -> FakeServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).expect("bind fake socket");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handler(stream, n));
            }
        });
        FakeServer {
            path,
            connections,
            lines: Arc::new(Mutex::new(Vec::new())),
            _dir: dir,
            task,
        }
    }

    /// A fake stats socket speaking the real framing: one-shot (answer one line, close) until
    /// `prompt`, then `> ` after every reply. `answer(line, connection)` decides each reply.
    pub fn haproxy<F>(answer: F) -> FakeServer
    where
        F: Fn(&str, usize) -> Answer + Send + Sync + 'static,
    {
        Self::haproxy_with(answer, "> ", true)
    }

    /// A fake master socket: `master> ` prompts and no leading `\n` on `prompt`.
    pub fn master<F>(answer: F) -> FakeServer
    where
        F: Fn(&str, usize) -> Answer + Send + Sync + 'static,
    {
        Self::haproxy_with(answer, "master> ", false)
    }

    fn haproxy_with<F>(answer: F, prompt: &'static str, worker: bool) -> FakeServer
    where
        F: Fn(&str, usize) -> Answer + Send + Sync + 'static,
    {
        let answer = Arc::new(answer);
        let lines: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let handler: Handler = Arc::new(move |stream, n| {
            let answer = answer.clone();
            let seen = seen.clone();
            Box::pin(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut interactive = false;
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let text = line.trim_end_matches('\n').to_string();
                    seen.lock().expect("lines").push(text.clone());
                    let body = match answer(&text, n) {
                        Answer::Body(body) => body,
                        Answer::Default => match default_answer(&text, worker) {
                            Some(body) => body,
                            None => return,
                        },
                        Answer::HangUp => return,
                        Answer::BodyThenHangUp(mut body) => {
                            if interactive {
                                body.extend_from_slice(prompt.as_bytes());
                            }
                            let _ = write.write_all(&body).await;
                            return;
                        }
                        Answer::RawThenHangUp(bytes) => {
                            let _ = write.write_all(&bytes).await;
                            return;
                        }
                    };
                    if text == "prompt" {
                        interactive = true;
                    }
                    let mut out = body;
                    if interactive {
                        out.extend_from_slice(prompt.as_bytes());
                    }
                    if write.write_all(&out).await.is_err() {
                        return;
                    }
                    if !interactive && worker {
                        return;
                    }
                }
            })
        });
        let mut server = FakeServer::start(handler);
        server.lines = lines;
        server
    }
}

/// Answers of a healthy 3.0 for the session handshake.
fn default_answer(line: &str, worker: bool) -> Option<Vec<u8>> {
    // Through the master: `@1 show info`, `@!4242 show info`.
    let line = match line.split_once(' ') {
        Some((target, rest)) if target.starts_with('@') => rest,
        _ => line,
    };
    match line {
        "prompt" if worker => Some(b"\n".to_vec()),
        "prompt" => Some(Vec::new()),
        "set severity-output number" => Some(b"\n".to_vec()),
        "show info" => Some(SHOW_INFO.to_vec()),
        _ => None,
    }
}

/// A short `show info` reply.
pub const SHOW_INFO: &[u8] =
    b"Name: HAProxy\nVersion: 3.0.11-1+deb13u4\nRelease_date: 2025/01/01\nPid: 4242\n\n";

/// Reads everything until the client half-closes (or `limit` passes).
pub async fn read_to_eof(stream: &mut UnixStream, limit: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut buf)).await;
    buf
}
