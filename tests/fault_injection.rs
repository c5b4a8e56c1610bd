//! The client against a fake socket that misbehaves: cut replies, early closes, endless or
//! huge replies, garbage, slow drips, a refused command in the middle of a batch, idle
//! closes. Every test is bounded in time.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{body, Answer, FakeServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vezasock::runtime::command::info::ShowInfo;
use vezasock::runtime::command::maps::SetMap;
use vezasock::runtime::command::servers::GetWeight;
use vezasock::runtime::command::stat::ShowStat;
use vezasock::runtime::endpoint::Endpoint;
use vezasock::runtime::session::{one_shot, one_shot_with_limit, Batch, Session, Timeouts};
use vezasock::runtime::Error;

const SHORT: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    reply: Duration::from_millis(500),
};

/// Runs a test body under a hard limit.
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(10), body)
        .await
        .expect("test took longer than 10 s");
}

fn unix(server: &FakeServer) -> Endpoint {
    Endpoint::Unix(server.path.clone())
}

fn weight() -> GetWeight {
    GetWeight::new("be_app1", "blue").unwrap()
}

#[tokio::test]
async fn reply_cut_in_the_middle_then_close_is_closed() {
    bounded(async {
        // A raw handler: the fake HAProxy always finishes its replies.
        let server = FakeServer::start(Arc::new(|mut stream, _| {
            Box::pin(async move {
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    // Like HAProxy, answer every complete line in order (the client pipelines
                    // its handshake).
                    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        match &line[..] {
                            b"prompt\n" | b"set severity-output number\n" => {
                                let _ = stream.write_all(b"\n> ").await;
                            }
                            b"show info\n" => {
                                let mut out = support::SHOW_INFO.to_vec();
                                out.extend_from_slice(b"> ");
                                let _ = stream.write_all(&out).await;
                            }
                            b"get weight be_app1/blue\n" => {
                                let _ = stream.write_all(b"100 (ini").await;
                                return;
                            }
                            _ => {}
                        }
                    }
                }
            })
        }));
        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        let err = session.send(&weight()).await.unwrap_err();
        assert!(
            matches!(err, Error::Closed { received: 8, .. }),
            "got {err:?}"
        );
        assert!(err.is_connection_dropped());
    })
    .await;
}

#[tokio::test]
async fn close_before_any_reply_is_closed_with_nothing_received() {
    bounded(async {
        let server = FakeServer::haproxy(|_, _| Answer::HangUp);
        let err = one_shot(&unix(&server), &weight(), SHORT)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Closed { received: 0, .. }),
            "one-shot: {err:?}"
        );
        // A session whose server hangs up on `prompt`.
        let server = FakeServer::haproxy(|line, _| {
            if line == "prompt" {
                Answer::HangUp
            } else {
                body(b"\n")
            }
        });
        let err = Session::connect(&unix(&server), SHORT).await.unwrap_err();
        assert!(
            matches!(err, Error::Closed { received: 0, .. }),
            "session: {err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn never_ending_reply_times_out_within_the_deadline() {
    bounded(async {
        let server = FakeServer::start(Arc::new(|mut stream, _| {
            Box::pin(async move {
                let mut buf = [0u8; 256];
                let _ = stream.read(&mut buf).await;
                // A reply that never ends: a byte every 10 ms, no prompt, no close.
                for _ in 0..1000 {
                    if stream.write_all(b"x").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        }));
        let started = std::time::Instant::now();
        let err = one_shot(&unix(&server), &weight(), SHORT)
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(err.is_timeout(), "got {err:?}");
        assert!(elapsed >= SHORT.reply, "{elapsed:?}");
        assert!(
            elapsed < SHORT.reply + Duration::from_millis(400),
            "{elapsed:?}"
        );
        // A server that accepts and never answers.
        let silent = FakeServer::start(Arc::new(|stream, _| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                drop(stream);
            })
        }));
        let err = Session::connect(&unix(&silent), SHORT).await.unwrap_err();
        assert!(err.is_timeout(), "got {err:?}");
    })
    .await;
}

#[tokio::test]
async fn garbage_is_a_typed_error_never_a_panic() {
    bounded(async {
        // One-shot `show info` answered with bytes that are not `Key: value` lines.
        let server = FakeServer::haproxy(|line, _| match line {
            "show info" => body(b"\xff\xfe\x00garbage\x01\n\n"),
            _ => Answer::Default,
        });
        let err = one_shot(&unix(&server), &ShowInfo, SHORT)
            .await
            .unwrap()
            .parse()
            .unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "got {err:?}");

        // Something that is not HAProxy answers `prompt` with framed junk.
        let server = FakeServer::haproxy(|line, _| {
            if line == "prompt" {
                body(b"HTTP/1.1 400 Bad Request\n")
            } else {
                Answer::Default
            }
        });
        let err = Session::connect(&unix(&server), SHORT).await.unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "got {err:?}");

        // Pseudo-random garbage on a live session: an error of some kind, never a panic,
        // and the session recovers on the next command.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let garbage: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                (0..(i * 7 % 97 + 1))
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed & 0xff) as u8
                    })
                    .collect()
            })
            .collect();
        let garbage = Arc::new(garbage);
        let calls = Arc::new(AtomicUsize::new(0));
        let (g, c) = (garbage.clone(), calls.clone());
        let server = FakeServer::haproxy(move |line, _| {
            if line.starts_with("show servers state") {
                let i = c.fetch_add(1, Ordering::SeqCst) % g.len();
                let mut body = g[i].clone();
                // Keep it framed so it is delivered as one reply.
                body.extend_from_slice(b"\n\n");
                return Answer::Body(body);
            }
            Answer::Default
        });
        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        for _ in 0..garbage.len() {
            match session.show_servers_state(None).await {
                Err(Error::Parse { .. } | Error::Refused { .. } | Error::Protocol { .. }) => {}
                Err(other) => panic!("unexpected error kind: {other:?}"),
                // A garbage body that happens to hold the format version and nothing else.
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[tokio::test]
async fn reply_larger_than_max_reply_is_too_large() {
    bounded(async {
        let server = FakeServer::haproxy(|line, _| {
            if !line.starts_with("show stat") {
                return Answer::Default;
            }
            let mut body = b"# pxname,svname,\n".to_vec();
            body.extend(std::iter::repeat_n(b"be,srv,\n".as_slice(), 1000).flatten());
            body.extend_from_slice(b"\n");
            Answer::Body(body)
        });
        let err = one_shot_with_limit(&unix(&server), &ShowStat { filter: None }, SHORT, 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { limit: 1024, .. }),
            "one-shot: {err:?}"
        );
        let mut session = Session::connect_with_limit(&unix(&server), SHORT, 1024)
            .await
            .unwrap();
        let err = session.show_stat(None).await.unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { limit: 1024, .. }),
            "session: {err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn missing_socket_is_a_connect_error() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint::Unix(dir.path().join("nope.sock"));
        let err = one_shot(&endpoint, &weight(), SHORT).await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "got {err:?}");
        assert!(err.to_string().contains("nope.sock"), "{err}");
        let err = Session::connect(&endpoint, SHORT).await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "got {err:?}");
    })
    .await;
}

#[tokio::test]
async fn slow_drip_reply_still_decodes() {
    bounded(async {
        let server = FakeServer::start(Arc::new(|mut stream, _| {
            Box::pin(async move {
                let mut buf = [0u8; 256];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if seen.ends_with(b"\n") {
                        break;
                    }
                }
                for byte in b"100 (initial 100)\n\n" {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        }));
        let reply = one_shot(&unix(&server), &weight(), SHORT).await.unwrap();
        assert_eq!(&reply.body[..], b"100 (initial 100)\n\n");

        // Same on a session: every reply dripped byte by byte, prompt included.
        let server = FakeServer::start(Arc::new(|mut stream, _| {
            Box::pin(async move {
                let mut buf = [0u8; 256];
                let mut pending = Vec::new();
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        let reply: &[u8] = match &line[..] {
                            b"prompt\n" | b"set severity-output number\n" => b"\n> ",
                            b"show info\n" => b"Version: 3.2.26-1\n\n> ",
                            _ => b"100 (initial 100)\n\n> ",
                        };
                        for byte in reply {
                            if stream.write_all(&[*byte]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
            })
        }));
        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        assert_eq!(session.version().raw, "3.2.26-1");
        let weight = session.get_weight("be_app1", "blue").await.unwrap();
        assert_eq!((weight.current, weight.initial), (100, 100));
    })
    .await;
}

#[tokio::test]
async fn refused_reply_57_of_100_is_reported_and_the_session_stays_usable() {
    bounded(async {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let server = FakeServer::haproxy(move |line, _| {
            if line.starts_with("set map ") {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                return if n == 57 {
                    body(b"[3]: entry not found.\n\n")
                } else {
                    body(b"\n")
                };
            }
            if line.starts_with("get weight") {
                body(b"100 (initial 100)\n\n")
            } else {
                Answer::Default
            }
        });
        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        let commands: Vec<SetMap> = (0..100)
            .map(|i| SetMap::new("colors.map", &format!("env{i}"), "green").unwrap())
            .collect();
        let err = session.run_each(&commands).await.unwrap_err();
        match &err {
            Error::Refused {
                index,
                command,
                message,
            } => {
                assert_eq!(*index, Some(57));
                assert_eq!(command, "set map colors.map env56 green");
                assert_eq!(message, "entry not found.");
            }
            other => panic!("got {other:?}"),
        }
        assert_eq!(seen.load(Ordering::SeqCst), 100, "every command was sent");
        // Every reply was read, so the session is in step: the next reply is its own.
        let weight = session.get_weight("be_app1", "blue").await.unwrap();
        assert_eq!(weight.current, 100);
        // The non-failing variant reports every outcome.
        seen.store(0, Ordering::SeqCst);
        let mut batch = Batch::new();
        for command in commands {
            batch.push(command).unwrap();
        }
        let replies = session.run_batch_all(batch).await.unwrap();
        let refused: Vec<usize> = replies
            .replies()
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.refusal(Some(i + 1)).map(|_| i + 1))
            .collect();
        assert_eq!(refused, [57]);
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn idle_close_reconnects_before_sending_and_never_resends_a_write() {
    bounded(async {
        // The first connection is closed after one command (like 3.0's stats timeout).
        let server = FakeServer::haproxy(|line, conn| {
            if line.starts_with("get weight") {
                return body(b"100 (initial 100)\n\n");
            }
            if line.starts_with("set map ") {
                // Applied, then the connection dies before the answer.
                return if conn < 3 {
                    Answer::HangUp
                } else {
                    body(b"\n")
                };
            }
            Answer::Default
        });
        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        session.get_weight("be_app1", "blue").await.unwrap();
        // A write whose connection dies after it was sent: an error, not silently resent.
        let set = SetMap::new("colors.map", "staging", "green").unwrap();
        let err = session.send(&set).await.unwrap_err();
        assert!(err.is_connection_dropped(), "got {err:?}");
        let sent = |server: &FakeServer| {
            server
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("set map"))
                .count()
        };
        assert_eq!(sent(&server), 1, "the write went out exactly once");
        // The next (idempotent) command reconnects transparently.
        session.get_weight("be_app1", "blue").await.unwrap();
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
        // An idempotent read whose connection dies mid-command is retried once.
        let server = FakeServer::haproxy(|line, conn| {
            if line.starts_with("get weight") && conn == 0 {
                return Answer::HangUp;
            }
            if line.starts_with("get weight") {
                body(b"7 (initial 100)\n\n")
            } else {
                Answer::Default
            }
        });
        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        let weight = session.get_weight("be_app1", "blue").await.unwrap();
        assert_eq!(weight.current, 7);
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test]
async fn master_commands_get_the_target_prefix_and_one_shot_half_closes() {
    bounded(async {
        let server = FakeServer::master(|line, _| match line {
            "@1 get weight be_app1/blue" => body(b"100 (initial 100)\n\n"),
            "@!4242 get weight be_app1/blue" => body(b"5 (initial 100)\n\n"),
            "@1 set map colors.map k v" => body(b"No such server.\n\n"),
            _ => Answer::Default,
        });
        let endpoint: Endpoint = format!("master:{}", server.path.display()).parse().unwrap();
        let mut session = Session::connect(&endpoint, SHORT).await.unwrap();
        assert_eq!(
            session.get_weight("be_app1", "blue").await.unwrap().current,
            100
        );
        // No `set severity-output` through the master: errors are known texts.
        let err = session.set_map("colors.map", "k", "v").await.unwrap_err();
        assert!(err.is_refused(), "got {err:?}");
        let lines = server.lines.lock().unwrap().clone();
        assert!(
            !lines.iter().any(|l| l.contains("severity-output")),
            "{lines:?}"
        );
        assert_eq!(lines.first().map(String::as_str), Some("prompt"));

        let by_pid: Endpoint = format!("master:{}@!4242", server.path.display())
            .parse()
            .unwrap();
        let mut session = Session::connect(&by_pid, SHORT).await.unwrap();
        assert_eq!(
            session.get_weight("be_app1", "blue").await.unwrap().current,
            5
        );

        // One-shot through the master: the server answers only once the client half-closed.
        let half_closed = FakeServer::start(Arc::new(|mut stream, _| {
            Box::pin(async move {
                let request = support::read_to_eof(&mut stream, Duration::from_secs(2)).await;
                if request == b"@1 get weight be_app1/blue\n" {
                    let _ = stream.write_all(b"100 (initial 100)\n\n").await;
                }
            })
        }));
        let endpoint: Endpoint = format!("master:{}", half_closed.path.display())
            .parse()
            .unwrap();
        let reply = one_shot(&endpoint, &weight(), SHORT).await.unwrap();
        assert_eq!(reply.text(), "100 (initial 100)");
    })
    .await;
}

#[tokio::test]
async fn connection_closed_while_idle_is_reopened_before_a_write_is_sent() {
    bounded(async {
        let server = FakeServer::haproxy(|line, conn| {
            if line.starts_with("get weight") && conn == 0 {
                return Answer::BodyThenHangUp(b"100 (initial 100)\n\n".to_vec());
            }
            if line.starts_with("set map ") {
                return body(b"\n");
            }
            Answer::Default
        });
        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        session.get_weight("be_app1", "blue").await.unwrap();
        // Let the close reach the client, as an idle timeout would.
        tokio::time::sleep(Duration::from_millis(50)).await;
        session
            .set_map("colors.map", "staging", "green")
            .await
            .unwrap();
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
        let writes = server
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("set map"))
            .count();
        assert_eq!(writes, 1);
    })
    .await;
}

#[tokio::test]
async fn bad_master_target_is_refused_even_when_2_6_hangs_up() {
    bounded(async {
        // 2.6 interactive: the error line, no prompt, then the master closes.
        let server = FakeServer::master(|line, _| {
            if line.starts_with("@!99 ") {
                return Answer::RawThenHangUp(
                    b"Can't find the target PID matching the prefix '@!99'\n".to_vec(),
                );
            }
            Answer::Default
        });
        let endpoint: Endpoint = format!("master:{}@!99", server.path.display())
            .parse()
            .unwrap();
        let err = Session::connect(&endpoint, SHORT).await.unwrap_err();
        match &err {
            Error::Refused { message, .. } => {
                assert!(
                    message.starts_with("Can't find the target PID"),
                    "{message}"
                )
            }
            other => panic!("got {other:?}"),
        }
    })
    .await;
}

/// Runs `vezasock exec --socket <server> [extra…] -- <command>`: (exit code, stdout, stderr).
async fn exec_binary(server: &FakeServer, extra: &[&str], command: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
        .arg("exec")
        .arg("--socket")
        .arg(&server.path)
        .args(["--timeout", "2"])
        .args(extra)
        .arg("--")
        .arg(command)
        .env_remove("VEZASOCK_MASTER_SOCKET")
        .output()
        .await
        .expect("run vezasock");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn one_shot_reply_cut_in_the_middle_is_an_error_in_every_output_mode() {
    bounded(async {
        // Cut inside a line, and cut before the empty line that ends every dump.
        for cut in [&b"100 (ini"[..], b"100 (initial 100)\n"] {
            let server = FakeServer::haproxy(move |line, _| match line {
                "get weight be_app1/blue" => body(cut),
                _ => Answer::Default,
            });
            let err = one_shot(&unix(&server), &weight(), SHORT)
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Closed { received, .. } if received == cut.len()),
                "{cut:?}: {err:?}"
            );
            for json in [false, true] {
                let extra: &[&str] = if json { &["--json"] } else { &[] };
                let (code, stdout, stderr) =
                    exec_binary(&server, extra, "get weight be_app1/blue").await;
                assert_eq!(code, 3, "{cut:?} json={json}: {stdout} {stderr}");
                assert!(
                    stderr.contains("closed the connection in the middle of a reply"),
                    "{cut:?} json={json}: {stderr}"
                );
                assert!(
                    !stdout.contains("100 (ini"),
                    "{cut:?} json={json}: the cut bytes were printed: {stdout}"
                );
            }
        }
        // The whole reply from the same fake prints as it came and exits 0.
        let server = FakeServer::haproxy(|line, _| match line {
            "get weight be_app1/blue" => body(b"100 (initial 100)\n\n"),
            _ => Answer::Default,
        });
        let (code, stdout, stderr) = exec_binary(&server, &[], "get weight be_app1/blue").await;
        assert_eq!(
            (code, stdout.as_str()),
            (0, "100 (initial 100)\n\n"),
            "{stderr}"
        );
    })
    .await;
}

#[tokio::test]
async fn chain_strips_the_sessions_severity_prefix_in_text_and_json() {
    bounded(async {
        let server = FakeServer::haproxy(|line, _| match line {
            "show version" => body(b"[6]: 3.2.26-1\n\n"),
            "get weight be_app1/blue" => body(b"100 (initial 100)\n\n"),
            _ => Answer::Default,
        });
        let chain = "show version; get weight be_app1/blue";
        let (code, stdout, stderr) = exec_binary(&server, &[], chain).await;
        assert_eq!(
            (code, stdout.as_str()),
            (0, "3.2.26-1\n\n100 (initial 100)\n\n"),
            "{stderr}"
        );
        let (code, stdout, stderr) = exec_binary(&server, &["--json"], chain).await;
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(json[0]["reply"]["kind"], "text", "{stdout}");
        assert_eq!(json[0]["reply"]["value"], "3.2.26-1", "{stdout}");
        assert_eq!(json[1]["reply"]["value"]["current"], 100, "{stdout}");
    })
    .await;
}

#[tokio::test]
async fn exec_timeout_out_of_bounds_is_bad_input_not_a_panic() {
    bounded(async {
        let server = FakeServer::haproxy(|_, _| body(b"100 (initial 100)\n\n"));
        for bad in [
            "inf",
            "nan",
            "1e300",
            "99999999999999999999",
            "1e19",
            "0",
            "-1",
        ] {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vezasock"))
                .args(["exec", "--socket"])
                .arg(&server.path)
                .arg(format!("--timeout={bad}"))
                .args(["--", "get weight be_app1/blue"])
                .output()
                .await
                .expect("run vezasock");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "--timeout {bad}: {stderr}");
            assert!(stderr.contains("--timeout"), "--timeout {bad}: {stderr}");
            assert!(out.stdout.is_empty(), "--timeout {bad}");
        }
        let (code, stdout, stderr) = exec_binary(&server, &[], "get weight be_app1/blue").await;
        assert_eq!(
            (code, stdout.as_str()),
            (0, "100 (initial 100)\n\n"),
            "{stderr}"
        );
    })
    .await;
}

/// A typed command's own error text (`show ssl cert` of an unknown name, recorded without a
/// severity prefix on 3.2) is a refusal, in one-shot mode and in a typed batch; its whole
/// reply (recorded too) is its typed value.
#[tokio::test]
async fn typed_commands_use_their_own_error_texts_and_parsers() {
    use vezasock::runtime::command::info::ShowInfo;
    use vezasock::runtime::command::ssl::{CertRef, ShowSslCert};
    use vezasock::runtime::oneshot::one_shot_run;
    use vezasock::runtime::session::Batch;
    bounded(async {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus-ssl/3.2");
        let found = std::fs::read(dir.join("show-ssl-cert.oneshot")).unwrap();
        let nosuch = std::fs::read(dir.join("show-ssl-cert-nosuch.oneshot")).unwrap();
        let server = FakeServer::haproxy(move |line, _| match line {
            "show ssl cert /etc/haproxy/site.pem" => Answer::Body(found.clone()),
            "show ssl cert /nosuch.pem" => Answer::Body(nosuch.clone()),
            _ => Answer::Default,
        });
        let site = ShowSslCert {
            cert: CertRef::new("/etc/haproxy/site.pem").unwrap(),
        };
        let missing = ShowSslCert {
            cert: CertRef::new("/nosuch.pem").unwrap(),
        };
        let cert = one_shot_run(&unix(&server), &site, SHORT).await.unwrap();
        assert_eq!(cert.status(), Some("Used"));
        let err = one_shot_run(&unix(&server), &missing, SHORT)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Refused { message, .. } if message.starts_with("Can't display")),
            "{err:?}"
        );

        let mut session = Session::connect(&unix(&server), SHORT).await.unwrap();
        let mut batch = Batch::new();
        let info = batch.push(ShowInfo).unwrap();
        let cert = batch.push(site.clone()).unwrap();
        let replies = session.run_batch(batch).await.unwrap();
        assert_eq!(
            replies.take(&info).unwrap().version(),
            Some("3.0.11-1+deb13u4")
        );
        assert!(replies.take(&cert).unwrap().filename().is_some());
        let mut batch = Batch::new();
        batch.push(site).unwrap();
        batch.push(missing).unwrap();
        let err = session.run_batch(batch).await.unwrap_err();
        assert!(
            matches!(err, Error::Refused { index: Some(2), .. }),
            "{err:?}"
        );
        // The session is still in step.
        assert!(session.run(&ShowInfo).await.is_ok());
        // Arguments that would break the line are refused before anything is sent.
        assert!(CertRef::new("a b").is_err() && CertRef::new("a;b").is_err());
        assert!(CertRef::new("x<<").is_err() && CertRef::new("").is_err());
    })
    .await;
}
