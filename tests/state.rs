//! Hermetic tests of `vezasock::state`: atomic files, the per-edge lock (with a holder killed
//! by SIGKILL), colors and history in the seed's format, the journal (torn lines, open
//! operations) and the server-state write-through. Everything runs in temp dirs.
//!
//! Tests that need a second process re-run this test binary on an ignored helper test
//! ([`child_process`]), selected by the `VEZASOCK_STATE_CHILD` environment variable.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vezasock::state::atomic::{leftovers, read_optional, read_optional_string, write_atomic};
use vezasock::state::colors::HISTORY_LEN;
use vezasock::state::journal::{
    open_operations_in, parse_journal, JOURNAL_ARCHIVE_FILE, JOURNAL_ROTATING_FILE,
    JOURNAL_TORN_FILE, ROTATE_BYTES,
};
use vezasock::state::server_states::{
    drop_server_lines, drop_servers_from_state_file, save_server_state_file,
};
use vezasock::state::{
    Action, AdminDecision, EdgeLock, Error, Holder, Operation, Phase, StateDir, Wait,
};
use vezasock::topology::Color;

const CHILD_MODE: &str = "VEZASOCK_STATE_CHILD";
const CHILD_DIR: &str = "VEZASOCK_STATE_CHILD_DIR";

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Starts this test binary again, running only the `child_process` helper in `mode`.
fn spawn_child(mode: &str, dir: &Path) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env(CHILD_DIR, dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the child test process")
}

/// Waits (bounded) until `path` exists.
fn wait_for_file(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The helper process for the tests that need one. Does nothing unless started by
/// [`spawn_child`].
#[test]
#[ignore = "helper process started by other tests (lock and crash tests)"]
fn child_process() {
    let (Ok(mode), Ok(dir)) = (std::env::var(CHILD_MODE), std::env::var(CHILD_DIR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    match mode.as_str() {
        // Take the edge lock, say so, and hold it until killed (at most 30 s).
        "hold-lock" => {
            let state = StateDir::single(&dir);
            let _lock = EdgeLock::acquire(&state, Wait::No, Holder::current()).expect("lock");
            std::fs::write(dir.join("child-ready"), b"").expect("ready marker");
            while Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
        // Rewrite one file with two big contents in turn until killed (at most 30 s).
        "rewrite" => {
            let target = dir.join("big.map");
            let (a, b) = (big('a'), big('b'));
            let mut n = 0u64;
            while Instant::now() < deadline {
                write_atomic(&target, if n % 2 == 0 { &a } else { &b }).expect("write");
                if n == 0 {
                    std::fs::write(dir.join("child-ready"), b"").expect("ready marker");
                }
                n += 1;
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn big(c: char) -> Vec<u8> {
    let line = format!("{}\n", c.to_string().repeat(63));
    line.repeat(4096).into_bytes()
}

// ---------------------------------------------------------------------------------------------
// atomic files

#[test]
fn atomic_write_replaces_and_read_optional_sees_missing() {
    let dir = temp();
    let path = dir.path().join("active-color.map");
    assert_eq!(read_optional(&path).unwrap(), None);
    write_atomic(&path, b"staging blue\n").unwrap();
    assert_eq!(
        read_optional_string(&path).unwrap().as_deref(),
        Some("staging blue\n")
    );
    write_atomic(&path, b"staging green\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"staging green\n");
    assert!(
        leftovers(&path).is_empty(),
        "a successful write leaves no temp file"
    );
}

#[test]
fn atomic_write_keeps_the_permissions_of_the_target() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp();
    let path = dir.path().join("hosts.map");
    std::fs::write(&path, b"old\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&path, b"new\n").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn a_leftover_temp_file_is_ignored_by_readers_and_cleaned_by_the_next_write() {
    let dir = temp();
    let path = dir.path().join("active-color-staging");
    write_atomic(&path, b"blue\n").unwrap();

    // A writer that died before its rename: a pid that no longer runs.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let leftover = dir
        .path()
        .join(format!(".active-color-staging.vezasock-tmp.{dead_pid}.0"));
    std::fs::write(&leftover, b"gre").unwrap();
    // One from a live process (this one) must not be touched.
    let live = dir.path().join(format!(
        ".active-color-staging.vezasock-tmp.{}.999999",
        std::process::id()
    ));
    std::fs::write(&live, b"").unwrap();

    let state = StateDir::single(dir.path());
    assert_eq!(state.active_color("staging").unwrap(), Color::Blue);
    let mut expected = vec![leftover.clone(), live.clone()];
    expected.sort();
    assert_eq!(leftovers(&path), expected);

    write_atomic(&path, b"green\n").unwrap();
    assert_eq!(state.active_color("staging").unwrap(), Color::Green);
    assert!(
        !leftover.exists(),
        "the dead writer's temp file was cleaned"
    );
    assert!(live.exists(), "a live writer's temp file was left alone");
}

#[test]
fn a_writer_killed_mid_rewrite_never_leaves_a_torn_file() {
    let dir = temp();
    let target = dir.path().join("big.map");
    let (a, b) = (big('a'), big('b'));
    for round in 0..3 {
        let _ = std::fs::remove_file(dir.path().join("child-ready"));
        let mut child = spawn_child("rewrite", dir.path());
        wait_for_file(&dir.path().join("child-ready"), Duration::from_secs(20));
        thread::sleep(Duration::from_millis(50 + 37 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let content = std::fs::read(&target).unwrap();
        assert!(
            content == a || content == b,
            "round {round}: torn file of {} bytes",
            content.len()
        );
    }
    // Whatever temp file the last kill left is cleaned by the next write.
    write_atomic(&target, b"x\n").unwrap();
    assert!(leftovers(&target).is_empty(), "{:?}", leftovers(&target));
}

// ---------------------------------------------------------------------------------------------
// lock

fn holder(command: &str) -> Holder {
    Holder {
        command: command.to_string(),
        ..Holder::current()
    }
}

#[test]
fn a_second_acquire_without_waiting_fails_and_names_the_holder() {
    let dir = temp();
    let state = StateDir::single(dir.path().join("state"));
    let first = EdgeLock::acquire(&state, Wait::No, holder("vezasock switch staging green"))
        .expect("first acquire");
    assert_eq!(first.holder().command, "vezasock switch staging green");

    let err = EdgeLock::acquire(&state, Wait::No, holder("vezasock switch prod blue"))
        .expect_err("second acquire must fail");
    match &err {
        Error::Locked {
            holder: Some(h),
            waited: None,
            ..
        } => {
            assert_eq!(h.pid, std::process::id());
            assert_eq!(h.command, "vezasock switch staging green");
        }
        other => panic!("expected Locked with a holder, got {other:?}"),
    }
    assert!(err.is_locked());
    let message = err.to_string();
    assert!(
        message.contains(&format!("pid {}", std::process::id()))
            && message.contains("vezasock switch staging green")
            && message.contains("vezasock.lock"),
        "{message}"
    );

    drop(first);
    assert!(
        !state.holder_file().exists(),
        "the holder file goes with the lock"
    );
    EdgeLock::acquire(&state, Wait::No, holder("again")).expect("free after drop");
}

#[test]
fn waiting_with_a_deadline_gets_the_lock_once_the_holder_drops_it() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let first = EdgeLock::acquire(&state, Wait::No, holder("first")).unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        drop(first);
    });
    let started = Instant::now();
    let second = EdgeLock::acquire(
        &state,
        Wait::up_to(Duration::from_secs(10)),
        holder("second"),
    )
    .expect("acquired after the first was dropped");
    let waited = started.elapsed();
    releaser.join().unwrap();
    assert!(
        waited >= Duration::from_millis(250),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(second.holder().command, "second");
}

#[test]
fn waiting_gives_up_at_the_deadline() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let _first = EdgeLock::acquire(&state, Wait::No, holder("first")).unwrap();
    let started = Instant::now();
    let err = EdgeLock::acquire(
        &state,
        Wait::up_to(Duration::from_millis(300)),
        holder("second"),
    )
    .expect_err("still held");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    match err {
        Error::Locked {
            waited: Some(w),
            holder: Some(h),
            ..
        } => {
            assert!(w >= Duration::from_millis(300));
            assert_eq!(h.command, "first");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_lock_held_by_a_process_killed_with_sigkill_is_released() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let mut child = spawn_child("hold-lock", dir.path());
    wait_for_file(&dir.path().join("child-ready"), Duration::from_secs(20));

    let err = EdgeLock::acquire(&state, Wait::No, holder("parent")).expect_err("child holds it");
    match &err {
        Error::Locked {
            holder: Some(h), ..
        } => assert_eq!(h.pid, child.id()),
        other => panic!("expected the child as holder, got {other:?}"),
    }

    child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    child.wait().unwrap();
    // The kernel dropped the flock; the child's holder file is still there but stale.
    assert!(state.holder_file().exists());
    let lock = EdgeLock::acquire(
        &state,
        Wait::up_to(Duration::from_secs(5)),
        holder("parent"),
    )
    .expect("released by the kernel when the holder died");
    assert_eq!(lock.holder().pid, std::process::id());
}

#[test]
fn a_lock_held_by_util_linux_flock_is_seen_and_released_when_killed() {
    // Another implementation of flock(2) on the same file: proves the lock is the kernel's
    // flock, compatible with `flock(1)` in a seed shell script.
    let Ok(status) = Command::new("flock").arg("--version").output() else {
        eprintln!("skipped: util-linux `flock` is not installed");
        return;
    };
    assert!(status.status.success());
    let dir = temp();
    let state = StateDir::single(dir.path());
    state.ensure().unwrap();
    // Its own process group, so that killing the group also kills `sleep`, which inherits the
    // locked descriptor.
    let mut child = Command::new("flock")
        .arg(state.lock_file())
        .args(["sleep", "30"])
        .process_group(0)
        .spawn()
        .unwrap();
    let group = rustix::process::Pid::from_raw(child.id() as i32).expect("a child pid");
    // Bounded wait until flock(1) holds it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match EdgeLock::acquire(&state, Wait::No, holder("probe")) {
            Err(Error::Locked { holder, .. }) => {
                assert_eq!(holder, None, "flock(1) writes no holder file");
                break;
            }
            Ok(lock) => {
                drop(lock);
                assert!(Instant::now() < deadline, "flock(1) never took the lock");
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
    rustix::process::kill_process_group(group, rustix::process::Signal::KILL).unwrap();
    child.wait().unwrap();
    // `sleep` may take a moment to die after flock(1) was reaped.
    EdgeLock::acquire(&state, Wait::up_to(Duration::from_secs(5)), holder("after"))
        .expect("released when the holders were killed");
}

// ---------------------------------------------------------------------------------------------
// colors and history

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn a_missing_color_file_means_blue() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    assert_eq!(state.recorded_color("staging").unwrap(), None);
    assert_eq!(state.active_color("staging").unwrap(), Color::Blue);
    assert!(state.history("staging").unwrap().is_empty());
}

#[test]
fn a_garbage_color_file_is_an_error_naming_the_file() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let path = dir.path().join("active-color-prod");
    std::fs::write(&path, b"purple\n").unwrap();
    let err = state
        .active_color("prod")
        .expect_err("purple is not a color");
    assert!(matches!(err, Error::BadColorFile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("purple"),
        "{message}"
    );
    // Two lines are garbage too.
    std::fs::write(&path, b"blue\ngreen\n").unwrap();
    assert!(state.active_color("prod").is_err());
    // A hand-written file without its newline is fine.
    std::fs::write(&path, b"green").unwrap();
    assert_eq!(state.active_color("prod").unwrap(), Color::Green);
}

#[test]
fn record_switch_writes_the_seed_files_and_keeps_five_newest_first() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    for i in 0..7u64 {
        let color = if i % 2 == 0 {
            Color::Green
        } else {
            Color::Blue
        };
        let sha = format!("sha{i}");
        state
            .record_switch(
                "staging",
                color,
                Some(&sha),
                "ci deploy",
                at(1_714_566_896 + i),
            )
            .unwrap();
    }
    // The color file is one line, as the seed wrote it.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("active-color-staging")).unwrap(),
        "green\n"
    );
    let text = std::fs::read_to_string(dir.path().join("active-color-staging.history")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), HISTORY_LEN);
    assert_eq!(lines[0], "green sha6 2024-05-01T12:35:02Z ci deploy");
    assert_eq!(lines[4], "green sha2 2024-05-01T12:34:58Z ci deploy");
    // The seed's `head -1 | cut -d' ' -f1`.
    assert_eq!(lines[0].split(' ').next(), Some("green"));

    let history = state.history("staging").unwrap();
    let shas: Vec<&str> = history.iter().filter_map(|e| e.sha.as_deref()).collect();
    assert_eq!(shas, ["sha6", "sha5", "sha4", "sha3", "sha2"]);
    assert_eq!(history[0].who.as_deref(), Some("ci deploy"));
    assert_eq!(history[0].when.as_deref(), Some("2024-05-01T12:35:02Z"));
    // The other env is untouched.
    assert_eq!(state.recorded_color("prod").unwrap(), None);
    assert!(state.history("prod").unwrap().is_empty());
}

#[test]
fn history_accepts_old_color_only_lines_and_unknown_sha() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    std::fs::write(
        dir.path().join("active-color-prod.history"),
        b"green\n\nblue\n",
    )
    .unwrap();
    let history = state.history("prod").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0].color,
            &history[0].sha,
            &history[0].when,
            &history[0].who
        ),
        (Color::Green, &None, &None, &None)
    );

    state
        .record_switch("prod", Color::Blue, None, "alice", at(0))
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("active-color-prod.history")).unwrap();
    assert_eq!(
        text,
        "blue - 1970-01-01T00:00:00Z alice\ngreen - - -\nblue - - -\n"
    );
    let history = state.history("prod").unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].sha, None);
    assert_eq!(history[1].color, Color::Green);
}

#[test]
fn a_bad_history_line_is_an_error_naming_the_file_and_line() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let path = dir.path().join("active-color-staging.history");
    std::fs::write(&path, b"green abc 2024-05-01T12:34:56Z ci\nmauve x\n").unwrap();
    let err = state.history("staging").expect_err("mauve");
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}:2", path.display())) && message.contains("mauve"),
        "{message}"
    );
    // record_switch refuses to rewrite (and lose) a history it cannot read.
    assert!(state
        .record_switch("staging", Color::Blue, None, "ci", at(0))
        .is_err());
    assert_eq!(state.recorded_color("staging").unwrap(), None);
}

#[test]
fn names_and_values_that_would_escape_or_break_a_line_are_refused() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    for env in ["", "../etc", "a/b", "..", ".hidden", "st aging", "x\ny"] {
        assert!(
            matches!(state.active_color(env), Err(Error::BadName { .. })),
            "{env:?}"
        );
        assert!(state
            .record_switch(env, Color::Green, None, "ci", at(0))
            .is_err());
    }
    assert!(matches!(
        state.record_switch("staging", Color::Green, Some("ab cd"), "ci", at(0)),
        Err(Error::BadValue { .. })
    ));
    assert!(matches!(
        state.record_switch("staging", Color::Green, None, "ci\nblue", at(0)),
        Err(Error::BadValue { .. })
    ));
    assert!(StateDir::for_edge(dir.path(), "../x").is_err());
    let edge = StateDir::for_edge(dir.path(), "edge-2").unwrap();
    assert_eq!(edge.path(), dir.path().join("edges").join("edge-2"));
    assert_eq!(edge.edge(), "edge-2");
    // Nothing was written by the refusals.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn switches_racing_under_the_lock_lose_no_history_line() {
    let dir = temp();
    let root = dir.path().to_path_buf();
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let root = root.clone();
            thread::spawn(move || {
                let state = StateDir::single(&root);
                for i in 0..2 {
                    let _lock = EdgeLock::acquire(
                        &state,
                        Wait::up_to(Duration::from_secs(20)),
                        holder(&format!("worker {w}")),
                    )
                    .expect("lock");
                    let current = state.active_color("staging").expect("color");
                    let sha = format!("w{w}-{i}");
                    state
                        .record_switch(
                            "staging",
                            current.other(),
                            Some(&sha),
                            "ci",
                            SystemTime::now(),
                        )
                        .expect("record");
                    thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let state = StateDir::single(&root);
    let mut shas: Vec<String> = state
        .history("staging")
        .unwrap()
        .into_iter()
        .filter_map(|e| e.sha)
        .collect();
    shas.sort();
    assert_eq!(shas, ["w0-0", "w0-1", "w1-0", "w1-1"]);
    // Four flips from blue: back to blue, and each line alternates.
    let history = state.history("staging").unwrap();
    assert_eq!(state.active_color("staging").unwrap(), Color::Blue);
    for pair in history.windows(2) {
        assert_ne!(pair[0].color, pair[1].color);
    }
}

// ---------------------------------------------------------------------------------------------
// journal

#[test]
fn journal_round_trips_entries_in_order() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let op = Operation::new(
        Action::Switch,
        Some("staging"),
        Some("blue"),
        Some("green"),
        "ci",
    );
    for phase in [Phase::Intent, Phase::DiskWritten, Phase::Done] {
        state.journal_record(&op, phase, None).unwrap();
    }
    let read = state.journal_read().unwrap();
    assert!(read.skipped.is_empty());
    let phases: Vec<Phase> = read.entries.iter().map(|e| e.phase).collect();
    assert_eq!(phases, [Phase::Intent, Phase::DiskWritten, Phase::Done]);
    assert!(read.entries.iter().all(|e| e.op_id == op.op_id
        && e.pid == std::process::id()
        && e.env.as_deref() == Some("staging")));
    // The words on disk are the documented ones.
    let text = std::fs::read_to_string(state.journal_file()).unwrap();
    assert!(text.contains(r#""action":"switch""#), "{text}");
    assert!(text.contains(r#""phase":"disk-written""#), "{text}");
    assert_eq!(text.lines().count(), 3);
    assert!(state.last_open_operation("staging").unwrap().is_none());
}

#[test]
fn a_torn_last_journal_line_is_skipped_and_reported() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let op = Operation::new(
        Action::Drain,
        Some("prod"),
        Some("ready"),
        Some("drain"),
        "bob",
    );
    state.journal_record(&op, Phase::Intent, None).unwrap();
    // A writer killed mid-append: half a line, no newline.
    let mut bytes = std::fs::read(state.journal_file()).unwrap();
    bytes.extend_from_slice(br#"{"ts":"2024-05-01T12:34:56Z","who":"ci","pid":7,"op_"#);
    std::fs::write(state.journal_file(), &bytes).unwrap();

    let read = state.journal_read().expect("a torn line is not a failure");
    assert_eq!(read.entries.len(), 1);
    assert_eq!(read.skipped.len(), 1);
    assert!(read.skipped[0].torn);
    assert_eq!(read.skipped[0].line, 2);

    // The next append ends the torn line first, so its own entry stays readable.
    state
        .journal_record(&op, Phase::Done, Some("drained"))
        .unwrap();
    let read = state.journal_read().unwrap();
    let phases: Vec<Phase> = read.entries.iter().map(|e| e.phase).collect();
    assert_eq!(phases, [Phase::Intent, Phase::Done]);
    assert_eq!(read.skipped.len(), 1);
    assert!(!read.skipped[0].torn);
    assert_eq!(read.skipped[0].line, 2);
    assert_eq!(read.entries[1].detail.as_deref(), Some("drained"));
}

#[test]
fn a_torn_line_is_kept_apart_by_the_rotation_not_archived() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    record_a_finished_switch(&state, "prod");
    // Cut from outside: half a line, no newline; the next append ends it.
    let mut bytes = std::fs::read(state.journal_file()).unwrap();
    bytes.extend_from_slice(br#"{"ts":"2024-05-01T12:34:56Z","who":"ci","pid":7,"op_"#);
    std::fs::write(state.journal_file(), &bytes).unwrap();
    let written = 3 + fill_journal_until_it_rotates(&state);
    let archive = parse_journal(&std::fs::read(state.path().join(JOURNAL_ARCHIVE_FILE)).unwrap());
    assert!(archive.skipped.is_empty(), "{:?}", archive.skipped);
    assert_eq!(archive.entries.len(), written);
    assert_eq!(state.journal_torn_lines().unwrap(), 1);
    let apart: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(state.path().join(JOURNAL_TORN_FILE))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(apart["line"], 4);
    assert_eq!(apart["from"], "journal.jsonl");
    assert_eq!(
        apart["text"],
        r#"{"ts":"2024-05-01T12:34:56Z","who":"ci","pid":7,"op_"#
    );
}

#[test]
fn parse_journal_never_fails_on_garbage() {
    for bytes in [
        &b""[..],
        b"\n\n",
        b"not json\n",
        b"\xff\xfe\n{",
        b"{\"ts\":1}\n",
        b"{}",
    ] {
        let read = parse_journal(bytes);
        assert!(read.entries.is_empty(), "{bytes:?}");
    }
    assert_eq!(parse_journal(b"{}").skipped.len(), 1);
    assert!(parse_journal(b"{}").skipped[0].torn);
}

#[test]
fn last_open_operation_finds_an_interrupted_switch() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    // An older switch of staging that finished.
    let done = Operation::new(
        Action::Switch,
        Some("staging"),
        Some("green"),
        Some("blue"),
        "ci",
    );
    for phase in [
        Phase::Intent,
        Phase::DiskWritten,
        Phase::RuntimeApplied,
        Phase::Verified,
        Phase::Done,
    ] {
        state.journal_record(&done, phase, None).unwrap();
    }
    // The interrupted one: killed after writing the map file.
    let crashed = record_an_interrupted_switch(&state, "staging");
    // A later, finished operation on another env does not hide it.
    let prod = Operation::new(
        Action::Switch,
        Some("prod"),
        Some("blue"),
        Some("green"),
        "ci",
    );
    state.journal_record(&prod, Phase::Intent, None).unwrap();
    state
        .journal_record(&prod, Phase::Failed, Some("server DOWN"))
        .unwrap();

    let open = state
        .last_open_operation("staging")
        .unwrap()
        .expect("the crashed switch is open");
    assert_eq!(open.op_id, crashed.op_id);
    assert_eq!(open.last_phase, Phase::DiskWritten);
    let said = open.to_string();
    assert!(
        said.starts_with("switch staging blue→green interrupted after disk-written"),
        "{said}"
    );
    assert!(state.last_open_operation("prod").unwrap().is_none());
    assert_eq!(state.open_operations().unwrap().len(), 1);

    // The repair closes it.
    state
        .journal_record(&crashed, Phase::Done, Some("repaired by apply"))
        .unwrap();
    assert!(state.last_open_operation("staging").unwrap().is_none());
}

#[test]
fn concurrent_appends_each_stay_one_whole_line() {
    let dir = temp();
    let root = dir.path().to_path_buf();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let root = root.clone();
            thread::spawn(move || {
                let state = StateDir::single(&root);
                let op = Operation::new(Action::Maint, None, None, None, &format!("writer {w}"));
                let detail = "x".repeat(3000);
                for _ in 0..25 {
                    state
                        .journal_record(&op, Phase::Intent, Some(&detail))
                        .expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let read = StateDir::single(&root).journal_read().unwrap();
    assert!(read.skipped.is_empty(), "{:?}", read.skipped.first());
    assert_eq!(read.entries.len(), 100);
}

fn archive_entries(state: &StateDir) -> usize {
    match read_optional(&state.path().join(JOURNAL_ARCHIVE_FILE)).unwrap() {
        None => 0,
        Some(bytes) => parse_journal(&bytes).entries.len(),
    }
}

/// Journals a switch of `env` blue→green killed after writing the map file (intent,
/// disk-written, no end).
fn record_an_interrupted_switch(state: &StateDir, env: &str) -> Operation {
    let op = Operation::new(Action::Switch, Some(env), Some("blue"), Some("green"), "ci");
    state.journal_record(&op, Phase::Intent, None).unwrap();
    state.journal_record(&op, Phase::DiskWritten, None).unwrap();
    op
}

/// Journals a switch of `env` from intent to done; returns the number of lines written.
fn record_a_finished_switch(state: &StateDir, env: &str) -> usize {
    let op = Operation::new(Action::Switch, Some(env), Some("blue"), Some("green"), "ci");
    let phases = [Phase::Intent, Phase::DiskWritten, Phase::Done];
    for phase in phases {
        state.journal_record(&op, phase, None).unwrap();
    }
    phases.len()
}

/// Appends whole switches (intent, disk-written, done) until the archive has grown.
fn fill_journal_until_it_rotates(state: &StateDir) -> usize {
    let before = archive_entries(state);
    let mut written = 0;
    loop {
        written += record_a_finished_switch(state, "prod");
        if archive_entries(state) > before {
            return written;
        }
        assert!(written < 10_000, "the journal never rotated");
    }
}

#[test]
fn a_long_journal_moves_to_the_archive_whole_once_no_operation_is_open() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let first = fill_journal_until_it_rotates(&state);
    // Every line is in the archive, none left in the live journal: nothing lost or doubled.
    assert_eq!(archive_entries(&state), first);
    let archive = state.path().join(JOURNAL_ARCHIVE_FILE);
    assert!(std::fs::metadata(&archive).unwrap().len() > ROTATE_BYTES);
    assert!(parse_journal(&std::fs::read(&archive).unwrap())
        .skipped
        .is_empty());
    assert!(!state.journal_file().exists());
    assert!(!state.path().join(JOURNAL_ROTATING_FILE).exists());
    // The next operation starts a short journal; the next rotation appends after the first.
    let op = Operation::new(Action::Ready, Some("prod"), None, None, "ops");
    state.journal_record(&op, Phase::Intent, None).unwrap();
    assert_eq!(state.journal_read().unwrap().entries.len(), 1);
    assert_eq!(state.open_operations().unwrap().len(), 1);
    state.journal_record(&op, Phase::Done, None).unwrap();
    let second = fill_journal_until_it_rotates(&state);
    assert_eq!(archive_entries(&state), first + 2 + second);
}

/// The live journal's size in bytes.
fn journal_len(state: &StateDir) -> u64 {
    std::fs::metadata(state.journal_file()).map_or(0, |m| m.len())
}

#[test]
fn a_long_journal_with_an_interrupted_operation_stays_bounded_and_keeps_it_live() {
    // Issue 19, item 4: this test asserted that the journal was never archived while an
    // operation was open (it grew without bound). Now the open operation's lines are carried
    // over to the new live journal, and only the ended operations' lines are archived.
    let dir = temp();
    let state = StateDir::single(dir.path());
    let crashed = record_an_interrupted_switch(&state, "staging");
    let started = state
        .last_open_operation("staging")
        .unwrap()
        .unwrap()
        .started;
    let mut written = 0;
    for _ in 0..4 * (ROTATE_BYTES as usize / 600) {
        written += record_a_finished_switch(&state, "prod");
        assert!(
            journal_len(&state) <= ROTATE_BYTES + 1024,
            "{}",
            journal_len(&state)
        );
    }
    let live = state.journal_read().unwrap().entries.len();
    // Nothing lost or doubled: every finished line is archived or still live.
    assert_eq!(archive_entries(&state) + live, written + 2);
    assert!(archive_entries(&state) > 0);
    let open = state
        .last_open_operation("staging")
        .unwrap()
        .expect("still open, in the live journal");
    assert_eq!(open.op_id, crashed.op_id);
    assert_eq!(open.started, started);
    assert_eq!(open.last_phase, Phase::DiskWritten);
    // No line of the open operation went to the archive.
    let archived = parse_journal(&std::fs::read(state.path().join(JOURNAL_ARCHIVE_FILE)).unwrap());
    assert!(!archived.entries.iter().any(|e| e.op_id == crashed.op_id));
    // Once repaired, its lines go with the next rotation.
    state
        .journal_record(&crashed, Phase::Done, Some("repaired"))
        .unwrap();
    fill_journal_until_it_rotates(&state);
    let archived = parse_journal(&std::fs::read(state.path().join(JOURNAL_ARCHIVE_FILE)).unwrap());
    let phases: Vec<Phase> = archived
        .entries
        .iter()
        .filter(|e| e.op_id == crashed.op_id)
        .map(|e| e.phase)
        .collect();
    assert_eq!(phases, [Phase::Intent, Phase::DiskWritten, Phase::Done]);
    assert!(state.open_operations().unwrap().is_empty());
}

#[test]
fn a_rotation_cut_after_its_copy_is_finished_once_and_keeps_the_open_operation() {
    // Killed after copying the journal to the rotating file, before replacing the live one:
    // the next rotation archives the ended lines once and carries the open ones.
    let dir = temp();
    let state = StateDir::single(dir.path());
    let crashed = record_an_interrupted_switch(&state, "staging");
    let mut written = 0;
    while journal_len(&state) < ROTATE_BYTES / 2 {
        written += record_a_finished_switch(&state, "prod");
    }
    let rotating = state.path().join(JOURNAL_ROTATING_FILE);
    std::fs::copy(state.journal_file(), &rotating).unwrap();
    written += fill_journal_until_it_rotates(&state);
    assert!(!rotating.exists());
    let live = state.journal_read().unwrap().entries.len();
    assert_eq!(archive_entries(&state) + live, written + 2);
    let open = state.open_operations().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].op_id, crashed.op_id);
}

#[test]
fn a_line_that_is_not_a_journal_entry_is_kept_apart_not_archived() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    record_a_finished_switch(&state, "prod");
    let mut bytes = std::fs::read(state.journal_file()).unwrap();
    bytes.extend_from_slice(b"hand edit: not json\n");
    std::fs::write(state.journal_file(), &bytes).unwrap();
    let written = 3 + fill_journal_until_it_rotates(&state);
    let archive = parse_journal(&std::fs::read(state.path().join(JOURNAL_ARCHIVE_FILE)).unwrap());
    assert!(archive.skipped.is_empty(), "{:?}", archive.skipped);
    assert_eq!(archive.entries.len(), written);
    assert_eq!(state.journal_torn_lines().unwrap(), 1);
    let text = std::fs::read_to_string(state.path().join(JOURNAL_TORN_FILE)).unwrap();
    assert!(text.contains("hand edit: not json"), "{text}");
}

#[test]
fn a_rotation_cut_short_is_finished_by_the_next_without_doubling_lines() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    let rotating = state.path().join(JOURNAL_ROTATING_FILE);
    let archive = state.path().join(JOURNAL_ARCHIVE_FILE);
    let first = fill_journal_until_it_rotates(&state);
    // Killed after appending to the archive, before removing the rotating file: the same
    // bytes are in both.
    let archived = std::fs::read(&archive).unwrap();
    std::fs::write(&rotating, &archived).unwrap();
    let second = fill_journal_until_it_rotates(&state);
    assert_eq!(archive_entries(&state), first + second);
    assert!(!rotating.exists());
    // Killed right after the rename (a torn last line too): the lines are appended once.
    let op = Operation::new(Action::Maint, Some("prod"), None, None, "ops");
    let mut bytes = serde_json::to_vec(&op.entry(Phase::Done, None)).unwrap();
    bytes.extend_from_slice(b"\n{\"ts\":\"torn");
    std::fs::write(&rotating, &bytes).unwrap();
    let third = fill_journal_until_it_rotates(&state);
    let read = parse_journal(&std::fs::read(&archive).unwrap());
    assert_eq!(read.entries.len(), first + second + 1 + third);
    // Issue 19, item 7: the torn line used to be archived (this said "only the torn line" of
    // one skipped); it is kept apart in journal.torn.jsonl now, the archive holds whole lines.
    assert!(read.skipped.is_empty(), "{:?}", read.skipped);
    assert_eq!(state.journal_torn_lines().unwrap(), 1);
    assert!(!rotating.exists());
}

#[test]
fn open_operations_read_from_bytes_match_the_full_parse() {
    // Finished, interrupted, repaired, garbage, blank and torn lines, escaped strings.
    let dir = temp();
    let state = StateDir::single(dir.path());
    let a = Operation::new(
        Action::Switch,
        Some("staging"),
        Some("blue"),
        Some("green"),
        "c\"i\"",
    );
    let b = Operation::new(
        Action::Drain,
        Some("prod"),
        Some("ready"),
        Some("drain"),
        "bob",
    );
    let c = Operation::new(Action::Apply, None, None, None, "ops");
    state
        .journal_record(&a, Phase::Intent, Some("tab\there \u{e9}"))
        .unwrap();
    state.journal_record(&b, Phase::Intent, None).unwrap();
    state.journal_record(&c, Phase::Intent, None).unwrap();
    state.journal_record(&a, Phase::Done, None).unwrap();
    state
        .journal_record(&c, Phase::RuntimeApplied, Some("x"))
        .unwrap();
    let mut bytes = std::fs::read(state.journal_file()).unwrap();
    bytes.extend_from_slice(b"\nnot json\n{\"op_id\":\"zz\",\"phase\":\"intent\"}\n   \n");
    bytes.extend_from_slice(br#"{"ts":"2024-05-01T12:34:56Z","who":"ci","pid":7,"op_"#);
    let full = vezasock::state::journal::open_operations(&parse_journal(&bytes).entries);
    let fast = open_operations_in(&bytes);
    assert_eq!(fast, full);
    let ids: Vec<&str> = fast.iter().map(|op| op.op_id.as_str()).collect();
    assert_eq!(ids, [b.op_id.as_str(), c.op_id.as_str()]);
    assert_eq!(fast[1].last_phase, Phase::RuntimeApplied);
    assert_eq!(fast[1].last_detail.as_deref(), Some("x"));
    assert!(open_operations_in(b"").is_empty());
    assert!(open_operations_in(b"\xff\n{").is_empty());
}

// ---------------------------------------------------------------------------------------------
// server states

fn recorded_dump() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/corpus/3.2/show-servers-state.oneshot");
    std::fs::read_to_string(path).expect("recorded show servers state (3.2)")
}

#[test]
fn dropping_servers_keeps_the_header_lines_and_the_other_rows() {
    let dump = recorded_dump();
    let (text, dropped) = drop_server_lines(
        &dump,
        &[
            ("be_staging_api", "green"),
            ("be_prod_web", "blue"),
            ("nosuch", "x"),
        ],
    );
    assert_eq!(dropped, 2);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1");
    assert!(lines[1].starts_with("# be_id be_name srv_id srv_name"));
    assert_eq!(dump.lines().count() - 2, lines.len());
    assert!(text.contains("3 be_staging_api 1 blue "));
    assert!(!text.contains("3 be_staging_api 2 green "));
    assert!(!text.contains("4 be_prod_web 1 blue "));
    assert!(text.contains("4 be_prod_web 2 green "));
    // A server name equal to a backend's is matched by column, not by substring.
    let (_, none) = drop_server_lines(&dump, &[("blue", "be_staging_api")]);
    assert_eq!(none, 0);
}

#[test]
fn the_server_state_file_is_saved_and_pruned_atomically() {
    let dir = temp();
    let path = dir.path().join("server-state");
    let dump = recorded_dump();
    save_server_state_file(&path, &dump).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), dump);

    // An error reply is refused and the file is kept.
    let err = save_server_state_file(&path, "Can't find backend.\n").expect_err("not a dump");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(save_server_state_file(&path, "").is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), dump);

    assert_eq!(
        drop_servers_from_state_file(&path, &[("be_csv_quoting", "busy")]).unwrap(),
        1
    );
    let pruned = std::fs::read_to_string(&path).unwrap();
    assert!(!pruned.contains("be_csv_quoting"));
    assert!(pruned.starts_with("1\n# be_id "));
    assert_eq!(
        drop_servers_from_state_file(&dir.path().join("missing"), &[("a", "b")]).unwrap(),
        0
    );
}

#[test]
fn server_admin_decisions_are_written_through_and_read_back() {
    let dir = temp();
    let state = StateDir::single(dir.path());
    assert!(state.server_admin().unwrap().is_empty());
    state
        .set_server_admin(&[
            ("be_staging_api", "blue", AdminDecision::Drain),
            ("forgejo_backend", "forgejo", AdminDecision::Maint),
        ])
        .unwrap();
    assert_eq!(
        state.server_admin_of("be_staging_api", "blue").unwrap(),
        Some(AdminDecision::Drain)
    );
    state
        .set_server_admin(&[("be_staging_api", "blue", AdminDecision::Ready)])
        .unwrap();
    let all = state.server_admin().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["be_staging_api/blue"], AdminDecision::Ready);
    assert_eq!(all["forgejo_backend/forgejo"], AdminDecision::Maint);
    let json = std::fs::read_to_string(state.server_admin_file()).unwrap();
    assert!(
        json.contains(r#""forgejo_backend/forgejo": "maint""#),
        "{json}"
    );

    state
        .forget_server_admin(&[("forgejo_backend", "forgejo")])
        .unwrap();
    assert_eq!(state.server_admin().unwrap().len(), 1);

    assert!(matches!(
        state.set_server_admin(&[("a/b", "c", AdminDecision::Maint)]),
        Err(Error::BadName { .. })
    ));
    std::fs::write(state.server_admin_file(), b"{not json").unwrap();
    let err = state.server_admin().expect_err("bad json");
    assert!(err.to_string().contains("server-admin.json"), "{err}");
}

#[test]
fn waiting_for_the_lock_asynchronously_lets_the_runtime_run_other_tasks() {
    // One thread only: if the async wait blocked it, the task that releases the lock could
    // never run, and the wait would run out.
    let dir = temp();
    let state = StateDir::single(dir.path());
    let held = EdgeLock::acquire(&state, Wait::No, Holder::current()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let got = rt.block_on(async {
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(held);
        });
        let got = EdgeLock::acquire_async(
            &state,
            Wait::up_to(Duration::from_secs(5)),
            Holder::current(),
        )
        .await;
        let _ = release.await;
        got
    });
    assert!(got.is_ok(), "{got:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // And it still gives up when the lock stays held.
    let _held = got.unwrap();
    let again = rt.block_on(EdgeLock::acquire_async(
        &state,
        Wait::up_to(Duration::from_millis(300)),
        Holder::current(),
    ));
    assert!(again.as_ref().is_err_and(|e| e.is_locked()), "{again:?}");
}
