//! The reply codec on hand-written streams, split at every byte boundary, and on the streams
//! recorded from real HAProxy in `grammar/corpus/` (when present).

#[path = "support/versions.rs"]
mod versions;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};
use vezasock::runtime::codec::{one_shot_complete, CodecError, Frame, Framing, ReplyCodec};

/// Decodes `chunks` fed one after the other, then EOF. Returns the frames and the EOF error.
fn decode_chunks(
    framing: Framing,
    max: usize,
    chunks: &[&[u8]],
) -> (Vec<Frame>, Option<CodecError>) {
    let mut codec = ReplyCodec::with_max_reply(framing, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    // At most a few EOF calls: each returns a frame or ends.
    for _ in 0..1000 {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
    panic!("decode_eof never ended");
}

/// (body, prompt) pairs, for readable assertions.
fn pairs(frames: &[Frame]) -> Vec<(String, Option<String>)> {
    frames
        .iter()
        .map(|f| {
            (
                String::from_utf8_lossy(&f.body).into_owned(),
                f.prompt.clone(),
            )
        })
        .collect()
}

/// Checks `stream` decodes to `expected` whole, split at every byte boundary, split at every
/// pair of boundaries (short streams), and fed one byte at a time.
fn check_every_split(framing: Framing, stream: &[u8], expected: &[(&str, Option<&str>)]) {
    let expected: Vec<(String, Option<String>)> = expected
        .iter()
        .map(|(b, p)| (b.to_string(), p.map(str::to_string)))
        .collect();
    let (frames, err) = decode_chunks(framing, 1 << 20, &[stream]);
    assert!(err.is_none(), "whole stream: {err:?}");
    assert_eq!(pairs(&frames), expected, "whole stream");
    for i in 0..=stream.len() {
        let (a, b) = stream.split_at(i);
        let (frames, err) = decode_chunks(framing, 1 << 20, &[a, b]);
        assert!(err.is_none(), "split at {i}: {err:?}");
        assert_eq!(pairs(&frames), expected, "split at {i}");
    }
    if stream.len() <= 120 {
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let chunks = [&stream[..i], &stream[i..j], &stream[j..]];
                let (frames, err) = decode_chunks(framing, 1 << 20, &chunks);
                assert!(err.is_none(), "split at {i},{j}: {err:?}");
                assert_eq!(pairs(&frames), expected, "split at {i},{j}");
            }
        }
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let (frames, err) = decode_chunks(framing, 1 << 20, &bytes);
    assert!(err.is_none(), "byte by byte: {err:?}");
    assert_eq!(pairs(&frames), expected, "byte by byte");
}

const P: Option<&str> = Some("> ");

#[test]
fn worker_session_in_prompt_mode_as_grammar_section_1_3() {
    // prompt, get weight (ok), get weight (no such server), set server state, quit.
    check_every_split(
        Framing::Prompt,
        b"\n> 100 (initial 100)\n\n> No such server.\n\n> \n> ",
        &[
            ("\n", P),
            ("100 (initial 100)\n\n", P),
            ("No such server.\n\n", P),
            ("\n", P),
        ],
    );
}

#[test]
fn worker_pipelined_with_severity_and_info() {
    check_every_split(
        Framing::Prompt,
        b"\n> [3]: No such server.\n\n> \n> 100 (initial 100)\n\n> [6]: New version created: 4\n\n> ",
        &[
            ("\n", P),
            ("[3]: No such server.\n\n", P),
            ("\n", P),
            ("100 (initial 100)\n\n", P),
            ("[6]: New version created: 4\n\n", P),
        ],
    );
}

#[test]
fn worker_single_newline_error_of_2_6() {
    // 2.6 `set server b/s weight abc`: one `\n`, no empty line, then the prompt.
    check_every_split(
        Framing::Prompt,
        b"Empty weight string empty or preceded by garbage\n> \n> ",
        &[
            ("Empty weight string empty or preceded by garbage\n", P),
            ("\n", P),
        ],
    );
}

#[test]
fn worker_payload_prompts_are_stripped() {
    // `add map F <<` + 2 payload lines + empty line: `+ + + \n> `.
    check_every_split(Framing::Prompt, b"+ + + \n> \n> ", &[("\n", P), ("\n", P)]);
}

#[test]
fn worker_multi_line_dump_and_3_2_chain() {
    let dump = b"# pxname,svname,status,\nbe_app1,blue,UP,\nbe_app1,BACKEND,UP,\n\n> ";
    check_every_split(
        Framing::Prompt,
        dump,
        &[(
            "# pxname,svname,status,\nbe_app1,blue,UP,\nbe_app1,BACKEND,UP,\n\n",
            P,
        )],
    );
    // 3.2: a `;` chain gets one prompt after its last command.
    check_every_split(
        Framing::Prompt,
        b"100 (initial 100)\n\n0 (initial 0)\n\n[3]: No such server.\n\n> ",
        &[(
            "100 (initial 100)\n\n0 (initial 0)\n\n[3]: No such server.\n\n",
            P,
        )],
    );
}

#[test]
fn worker_timed_prompt() {
    check_every_split(
        Framing::Prompt,
        b"\n[0:00:01:47]> 100 (initial 100)\n\n[0:00:01:48]> ",
        &[
            ("\n", Some("[0:00:01:47]> ")),
            ("100 (initial 100)\n\n", Some("[0:00:01:48]> ")),
        ],
    );
}

#[test]
fn worker_line_starting_with_bracket_or_gt_inside_a_line_is_data() {
    // `[3]:` after a `\n` (3.2 chain) and `>` in the middle of a line are not prompts.
    check_every_split(
        Framing::Prompt,
        b"key=\"a>b\" > x\n[3]: err\n\n> ",
        &[("key=\"a>b\" > x\n[3]: err\n\n", P)],
    );
}

const M: Option<&str> = Some("master> ");

#[test]
fn master_session_with_silent_commands_and_worker_bodies() {
    // prompt, @1 get weight, @1 (silent), get weight, @ (silent), bad @99, show proc, quit.
    let stream: &[u8] =
        b"master> 100 (initial 100)\n\nmaster> 5046> 100 (initial 100)\n\n5046> master> \
Can't find the target PID matching the prefix '@99'\nmaster> \
#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
5038            master          1 [failed: 0]   0d00h03m27s     3.0.11-1+deb13u4\n\
# workers\n\
16228           worker          0               0d00h00m02s     3.0.11-1+deb13u4\n\
# programs\n\nmaster> master> ";
    check_every_split(
        Framing::MasterPrompt,
        stream,
        &[
            ("", M),
            ("100 (initial 100)\n\n", M),
            ("", Some("5046> ")),
            ("100 (initial 100)\n\n", Some("5046> ")),
            ("", M),
            ("Can't find the target PID matching the prefix '@99'\n", M),
            (
                "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
5038            master          1 [failed: 0]   0d00h03m27s     3.0.11-1+deb13u4\n\
# workers\n\
16228           worker          0               0d00h00m02s     3.0.11-1+deb13u4\n\
# programs\n\n",
                M,
            ),
            ("", M),
        ],
    );
}

#[test]
fn master_reload_failed_modes_and_timed_prompts() {
    check_every_split(
        Framing::MasterPrompt,
        b"master[ReloadFailed]> master(e)> [3]: No such server.\n\nmaster(xed)> 5046(xed)> \n5046(xed)> [0:00:03:19] 5076> ",
        &[
            ("", Some("master[ReloadFailed]> ")),
            ("", Some("master(e)> ")),
            ("[3]: No such server.\n\n", Some("master(xed)> ")),
            ("", Some("5046(xed)> ")),
            ("\n", Some("5046(xed)> ")),
            ("", Some("[0:00:03:19] 5076> ")),
        ],
    );
}

#[test]
fn master_reload_log_lines_are_not_prompts() {
    check_every_split(
        Framing::MasterPrompt,
        b"Success=1\n--\n[NOTICE]   (5038) : New worker (16228) forked\n[NOTICE]   (5038) : Loading success.\n\nmaster> ",
        &[(
            "Success=1\n--\n[NOTICE]   (5038) : New worker (16228) forked\n[NOTICE]   (5038) : Loading success.\n\n",
            M,
        )],
    );
}

#[test]
fn one_shot_is_the_whole_stream_at_eof() {
    let stream = b"100 (initial 100)\n\n";
    for i in 0..=stream.len() {
        let (frames, err) = decode_chunks(Framing::OneShot, 1 << 20, &[&stream[..i], &stream[i..]]);
        assert!(err.is_none());
        assert_eq!(
            pairs(&frames),
            [("100 (initial 100)\n\n".to_string(), None)]
        );
    }
    // Empty EOF is a reply of 0 bytes; the caller decides it means "closed".
    let (frames, err) = decode_chunks(Framing::OneShot, 1 << 20, &[]);
    assert!(err.is_none());
    assert_eq!(pairs(&frames), [(String::new(), None)]);
}

#[test]
fn eof_inside_a_prompt_reply_is_closed_with_the_count() {
    let (frames, err) = decode_chunks(Framing::Prompt, 1 << 20, &[b"\n> 100 (initial"]);
    assert_eq!(frames.len(), 1);
    assert!(
        matches!(err, Some(CodecError::Closed { received: 12 })),
        "{err:?}"
    );
    // A prompt cut in half is not a reply either.
    let (frames, err) = decode_chunks(Framing::MasterPrompt, 1 << 20, &[b"master> 1\n\nmast"]);
    assert_eq!(frames.len(), 1);
    assert!(
        matches!(err, Some(CodecError::Closed { received: 7 })),
        "{err:?}"
    );
    // A clean EOF between replies is the end, not an error.
    let (frames, err) = decode_chunks(Framing::Prompt, 1 << 20, &[b"\n> \n> "]);
    assert_eq!(frames.len(), 2);
    assert!(err.is_none());
}

#[test]
fn max_reply_is_enforced_in_every_framing() {
    let big = vec![b'x'; 100];
    for framing in [Framing::OneShot, Framing::Prompt, Framing::MasterPrompt] {
        let (_, err) = decode_chunks(framing, 64, &[&big]);
        assert!(
            matches!(err, Some(CodecError::TooLarge { limit: 64 })),
            "{framing:?}: {err:?}"
        );
    }
    // A complete reply over the bound is refused too, even when it arrives in one read.
    let mut reply = vec![b'y'; 80];
    reply.extend_from_slice(b"\n\n> ");
    let (_, err) = decode_chunks(Framing::Prompt, 64, &[&reply]);
    assert!(matches!(err, Some(CodecError::TooLarge { .. })), "{err:?}");
    // Many small pipelined replies together larger than the bound are fine.
    let many = b"1\n\n> ".repeat(100);
    let (frames, err) = decode_chunks(Framing::Prompt, 64, &[&many]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 100);
}

#[test]
fn encoder_appends_exactly_one_lf() {
    let mut codec = ReplyCodec::new(Framing::Prompt);
    let mut dst = BytesMut::new();
    codec.encode("show info", &mut dst).unwrap();
    codec.encode("get weight be/s", &mut dst).unwrap();
    assert_eq!(&dst[..], b"show info\nget weight be/s\n");
    assert!(codec.encode("show info\nshow stat", &mut dst).is_err());
    assert!(codec.encode("show info\r", &mut dst).is_err());
}

#[test]
fn garbage_never_panics() {
    // Arbitrary bytes, including partial prompts and NULs, in every framing.
    let samples: [&[u8]; 6] = [
        b"\x00\xff\xfe> \n\n>",
        b"\n[\n[1\n[1]\n[1]>\n",
        b"master[\nmaster[X\nmaster(\nmaster(x\n12345678901234567890> \n",
        b"+ + +",
        b"> > > >",
        b"\n(((((",
    ];
    for framing in [Framing::OneShot, Framing::Prompt, Framing::MasterPrompt] {
        for s in samples {
            for i in 0..=s.len() {
                let _ = decode_chunks(framing, 1 << 10, &[&s[..i], &s[i..]]);
            }
        }
    }
}

/// Number of `;`-separated commands in a line (`\;` does not split).
fn split_commands(line: &str) -> usize {
    let mut count = 1;
    let mut bytes = line.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next();
            }
            b';' => count += 1,
            _ => {}
        }
    }
    count
}

/// Replies a worker in prompt mode sends for `lines`: one per `;` command before 3.2, one per
/// line on 3.2, one for a whole `<<` payload block (its empty end line gets the prompt).
fn expected_worker_replies(lines: &[&str], version: &str) -> usize {
    let mut count = 0;
    let mut in_payload = false;
    for line in lines {
        if in_payload {
            if line.is_empty() {
                in_payload = false;
                count += 1;
            }
            continue;
        }
        if line.trim_end().ends_with("<<") {
            in_payload = true;
            continue;
        }
        count += if versions::one_prompt_per_line(version) {
            1
        } else {
            split_commands(line)
        };
    }
    count
}

/// Recorded full streams: `grammar/corpus/<version>/index.json` entries with mode `prompt` or
/// `master-prompt` carry the `commands` sent (`prompt`, …, `quit`). Each must decode into
/// exactly the replies HAProxy sends for them: worker `quit` answers nothing, master `quit`
/// one more prompt, 3.2 one prompt per line, older versions one per `;` command.
#[test]
fn recorded_streams_have_one_reply_per_command() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus");
    let mut checked = 0;
    for version in versions::RECORDED {
        let dir = root.join(version);
        let index_path = dir.join("index.json");
        let Ok(text) = std::fs::read_to_string(&index_path) else {
            eprintln!("{} missing: not checked", index_path.display());
            continue;
        };
        let index: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", index_path.display()));
        let entries = index.as_array().cloned().unwrap_or_default();
        for entry in entries {
            let mode = entry.get("mode").and_then(|m| m.as_str()).unwrap_or("");
            let framing = match mode {
                "prompt" => Framing::Prompt,
                "master-prompt" => Framing::MasterPrompt,
                _ => continue,
            };
            let commands: Vec<&str> = entry
                .get("commands")
                .and_then(|c| c.as_array())
                .unwrap_or_else(|| panic!("{}: no commands in {entry}", index_path.display()))
                .iter()
                .filter_map(|c| c.as_str())
                .collect();
            let file = entry
                .get("file")
                .and_then(|f| f.as_str())
                .unwrap_or_default();
            let path = dir.join(file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(commands.first(), Some(&"prompt"), "{}", path.display());
            assert_eq!(commands.last(), Some(&"quit"), "{}", path.display());
            let inner = &commands[1..commands.len() - 1];
            let expected = match framing {
                // `prompt` answers `\n> `; `quit` answers nothing.
                Framing::Prompt => 1 + expected_worker_replies(inner, version),
                // `prompt` answers `master> `, each line one reply, `quit` one more prompt.
                _ => 1 + inner.len() + 1,
            };
            let (frames, err) = decode_chunks(framing, 64 << 20, &[&bytes]);
            // The same replies whatever the read boundaries.
            for i in 0..=bytes.len() {
                let (split, split_err) =
                    decode_chunks(framing, 64 << 20, &[&bytes[..i], &bytes[i..]]);
                assert_eq!(
                    pairs(&split),
                    pairs(&frames),
                    "{} split at {i}",
                    path.display()
                );
                assert_eq!(
                    split_err.is_some(),
                    err.is_some(),
                    "{} split at {i}",
                    path.display()
                );
            }
            let note = entry.get("note").and_then(|n| n.as_str()).unwrap_or("");
            match err {
                None if note.contains("closed") => {
                    // The master hung up mid-session (2.6 after a bad `@` target): its error
                    // line is the last reply, without a prompt, and fewer replies arrived.
                    let last = frames
                        .last()
                        .unwrap_or_else(|| panic!("{}", path.display()));
                    assert!(
                        last.prompt.is_none() && last.body.starts_with(b"Can't find the target"),
                        "{}: {:?}",
                        path.display(),
                        pairs(&frames)
                    );
                    assert!(frames.len() < expected, "{}", path.display());
                }
                None => assert_eq!(
                    frames.len(),
                    expected,
                    "{}: {} replies, expected {expected}",
                    path.display(),
                    frames.len()
                ),
                Some(e) => panic!("{}: {e}", path.display()),
            }
            checked += 1;
        }
    }
    eprintln!("checked {checked} recorded streams");
    assert!(
        checked > 0 || !root.exists(),
        "grammar/corpus exists but holds no prompt stream"
    );
}

/// Every one-shot recording of the corpus (worker and master) is a whole reply by
/// [`one_shot_complete`]; each of them cut short (inside its last line, or just before its
/// closing empty line) is not, and EOF after the cut bytes is a `Closed` error.
#[test]
fn recorded_one_shot_replies_are_complete_and_every_cut_is_not() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus");
    let (mut whole, mut cuts) = (0, 0);
    for version in versions::RECORDED {
        let dir = root.join(version);
        let text = std::fs::read_to_string(dir.join("index.json"))
            .unwrap_or_else(|e| panic!("{version}/index.json: {e}"));
        let index: serde_json::Value = serde_json::from_str(&text).unwrap();
        for entry in index.as_array().cloned().unwrap_or_default() {
            let mode = entry["mode"].as_str().unwrap_or("");
            if mode.contains("prompt") {
                continue;
            }
            let file = entry["file"].as_str().unwrap_or_default();
            let bytes = std::fs::read(dir.join(file)).unwrap();
            assert!(one_shot_complete(&bytes), "{version}/{file}: {bytes:?}");
            let (frames, err) = decode_chunks(Framing::OneShot, 64 << 20, &[&bytes]);
            assert!(err.is_none(), "{version}/{file}: {err:?}");
            assert_eq!(frames.len(), 1, "{version}/{file}");
            whole += 1;
            // Cut inside the last line (half of it gone), and cut before the empty line.
            let mut cut_points = Vec::new();
            if bytes.ends_with(b"\n\n") && bytes != b"\n\n" {
                // 3.2 adds an extra `\n` after a CRLF line: cut before all of them.
                let end = bytes.iter().rposition(|&b| b != b'\n').map_or(0, |i| i + 1);
                let body = &bytes[..end];
                let line_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let last_line = body.len() - line_start;
                if last_line > 1 {
                    cut_points.push(line_start + last_line / 2);
                }
                // A data reply without its empty line (errors are whole on one line).
                if entry["expect"].as_str() == Some("data") {
                    cut_points.push(end + 1);
                }
            }
            for at in cut_points {
                let cut = &bytes[..at];
                assert!(!one_shot_complete(cut), "{version}/{file} cut at {at}");
                let (frames, err) = decode_chunks(Framing::OneShot, 64 << 20, &[cut]);
                assert!(frames.is_empty(), "{version}/{file} cut at {at}");
                assert!(
                    matches!(err, Some(CodecError::Closed { received }) if received == at),
                    "{version}/{file} cut at {at}: {err:?}"
                );
                cuts += 1;
            }
        }
    }
    eprintln!("{whole} whole one-shot replies, {cuts} cuts refused");
    assert!(whole > 300 && cuts > 200, "{whole} whole, {cuts} cuts");
}

#[test]
fn one_shot_replies_without_their_empty_line_are_cut_except_haproxys_one_line_errors() {
    // Whole: empty success, a dump, a chain ending in an empty success, the one-line errors.
    for whole in [
        &b"\n"[..],
        b"100 (initial 100)\n\n",
        b"100 (initial 100)\n\n\n",
        b"Empty weight string empty or preceded by garbage\n",
        b"[3]: Empty weight string empty or preceded by garbage\n",
        b"100 (initial 100)\n\nEmpty weight string empty or preceded by garbage\n",
        b"\nEmpty weight string empty or preceded by garbage\n",
        b"Can't find the target PID matching the prefix '@99'\n",
        b"The command line is too big for the buffer size. Please change tune.bufsize.\n",
        b"Usage: prompt [help | i | p | timed]*\n  toggles between i<->p.\n",
    ] {
        assert!(
            one_shot_complete(whole),
            "{:?}",
            String::from_utf8_lossy(whole)
        );
    }
    // Cut: inside a line, after a data line, an error cut inside its text.
    for cut in [
        &b"100 (ini"[..],
        b"100 (initial 100)\n",
        b"# pxname,svname,\nbe,srv,\n",
        b"[3]: No such ser",
        b"100 (initial 100)\n\n100 (initial 100)\n",
        b"Version: 3.2.26-1\nRelease_date: 2025/01/01\n",
    ] {
        assert!(
            !one_shot_complete(cut),
            "{:?}",
            String::from_utf8_lossy(cut)
        );
        let (frames, err) = decode_chunks(Framing::OneShot, 1 << 20, &[cut]);
        assert!(frames.is_empty());
        assert!(
            matches!(err, Some(CodecError::Closed { received }) if received == cut.len()),
            "{err:?}"
        );
    }
}

/// The master's quirks live in the codec, so they are tested here on bytes: 2.6 closes right
/// after its one-line bad-target error (that line is a reply, not a cut), and a one-shot
/// answer that is exactly that line is recognised before EOF (3.0/3.2 may never close).
#[test]
fn master_bad_target_quirks() {
    let error = b"Can't find the target PID matching the prefix '@99'\n";
    let mut stream = b"master> ".to_vec();
    stream.extend_from_slice(error);
    let (frames, err) = decode_chunks(Framing::MasterPrompt, 1 << 20, &[&stream]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pairs(&frames),
        [
            (String::new(), Some("master> ".to_string())),
            (String::from_utf8_lossy(error).into_owned(), None)
        ]
    );
    // Anything else cut by the master's close is still a cut.
    let (_, err) = decode_chunks(Framing::MasterPrompt, 1 << 20, &[b"master> 100 (initial"]);
    assert!(
        matches!(err, Some(CodecError::Closed { received: 12 })),
        "{err:?}"
    );

    let one_shot = ReplyCodec::new(Framing::OneShot);
    assert!(one_shot.lone_target_error(error));
    for not_lone in [
        &b"Can't find the target PID matching the prefix '@99'"[..],
        b"Can't find the target PID matching the prefix '@99'\n100 (initial 100)\n\n",
        b"100 (initial 100)\n\n",
    ] {
        assert!(!one_shot.lone_target_error(not_lone), "{not_lone:?}");
    }
    assert!(!ReplyCodec::new(Framing::MasterPrompt).lone_target_error(error));
}
