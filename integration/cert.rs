//! Certificates over the runtime API on every HAProxy version (2.6, 3.0, 3.2): a fresh edge
//! installed by `apply` starts on its self-signed placeholder and answers ACME http-01; `cert update` replaces it and
//! adds a new domain without a reload (same worker PID, a TLS connection opened before keeps
//! working, each SNI gets its serial); bad certificates are refused with nothing changed; a
//! reload and a restart serve what `cert update` installed. Certificates are made here with
//! rcgen; the TLS client is `openssl s_client` on loopback.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fresh::Started;
use crate::support::haproxy::{per_version, raw_one_shot, Haproxy};
use crate::support::run::{Run, Vezasock};

/// The shared fresh edge with TLS from `dir/certs` (absent), and what these tests read of it.
pub struct Fresh {
    pub edge: crate::support::fresh::Fresh,
    pub file: PathBuf,
    pub certs: PathBuf,
    pub http: u16,
    pub https: u16,
    pub admin: PathBuf,
}

/// The embedded edge on loopback with TLS from `dir/certs` (absent), not started.
pub fn fresh(v: &Haproxy, dir: &Path) -> Fresh {
    let certs = dir.join("certs");
    let edge = crate::support::fresh::fresh(v, dir, Some(&certs));
    Fresh {
        file: edge.file.clone(),
        http: edge.http.port(),
        https: edge.https.unwrap_or_else(|| panic!("no HTTPS port")),
        admin: edge.topology.paths.admin_socket.clone(),
        certs,
        edge,
    }
}

fn vezasock(fresh: &Fresh, args: &[&str]) -> Run {
    vezasock_env(fresh, args, &[])
}

/// [`vezasock`] with extra environment variables (e.g. `VEZASOCK_CRASH_AT`).
fn vezasock_env(fresh: &Fresh, args: &[&str], env: &[(&str, &str)]) -> Run {
    Vezasock::config(&fresh.file, args)
        .who("it-cert")
        .envs(env)
        .run()
}

pub fn worker_pid_of(admin: &Path) -> Option<u32> {
    let info = raw_one_shot(admin, "show info\n").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid: "))
        .and_then(|p| p.trim().parse().ok())
}

/// A TLS connection to `port` for `sni` (`openssl s_client`), opened now and kept open.
pub fn open_tls(port: u16, sni: &str) -> std::process::Child {
    let long = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", sni])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl s_client: {e}"));
    // The handshake is done before the caller changes anything.
    std::thread::sleep(Duration::from_millis(300));
    long
}

/// One request for `host` on a connection from [`open_tls`], then the connection closed: the
/// answer (its status line first when it carried the request).
pub fn request_on(mut long: std::process::Child, host: &str, label: &str) -> String {
    if let Some(stdin) = long.stdin.as_mut() {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stdin
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("{label}: old connection: {e}"));
    }
    drop(long.stdin.take());
    let mut answer = String::new();
    if let Some(out) = long.stdout.as_mut() {
        let _ = out.read_to_string(&mut answer);
    }
    let _ = long.wait();
    answer
}

/// The serial (upper-case hex, no leading zeros) a new TLS connection gets for `sni`.
pub fn served_serial(port: u16, sni: &str) -> String {
    served_serial_for(port, Some(sni))
}

/// [`served_serial`], or without SNI (`None`: the bind's default certificate).
pub(crate) fn served_serial_for(port: u16, sni: Option<&str>) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec!["s_client", "-connect", connect.as_str()];
    match sni {
        Some(name) => args.extend(["-servername", name]),
        None => args.push("-noservername"),
    }
    let mut client = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl s_client: {e}"));
    let mut pem = String::new();
    if let Some(out) = client.stdout.as_mut() {
        let _ = out.read_to_string(&mut pem);
    }
    let _ = client.wait();
    pem_serial(&pem)
}

/// The serial (upper-case hex, no leading zeros) of the first certificate in `pem` (`""`
/// when there is none), as `openssl x509` reads it.
pub(crate) fn pem_serial(pem: &str) -> String {
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl x509: {e}"));
    if let Some(mut input) = x509.stdin.take() {
        let _ = input.write_all(pem.as_bytes());
    }
    let out = x509.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let serial = text
        .trim()
        .strip_prefix("serial=")
        .unwrap_or("")
        .to_string();
    serial.trim_start_matches('0').to_ascii_uppercase()
}

/// A certificate for `names`, serial `serial`, valid from `from_days` to `to_days` around now,
/// as one PEM (chain + key); `other_key` pairs it with a key that is not its own.
pub fn make_cert(
    names: &[&str],
    serial: u64,
    from_days: i64,
    to_days: i64,
    other_key: bool,
) -> String {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap_or_else(|e| panic!("{e}"));
    params.serial_number = Some(rcgen::SerialNumber::from(serial));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from_days);
    params.not_after = now + time::Duration::days(to_days);
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
    let key_pem = if other_key {
        rcgen::KeyPair::generate()
            .unwrap_or_else(|e| panic!("{e}"))
            .serialize_pem()
    } else {
        key.serialize_pem()
    };
    format!("{}{}", cert.pem(), key_pem)
}

pub fn hex(serial: u64) -> String {
    format!("{serial:X}")
}

/// `apply` on a fresh edge (it writes the placeholder), then HAProxy started with the command
/// apply prints; returns it and that command.
pub fn install_and_start(fresh: &Fresh, label: &str) -> (Started, Vec<String>) {
    let run = vezasock(fresh, &["apply", "--json"]);
    assert_eq!(run.code, Some(0), "{label}: {run:?}");
    let json: serde_json::Value =
        serde_json::from_str(&run.out).unwrap_or_else(|e| panic!("{label}: {e}: {run:?}"));
    let start: Vec<String> = json["start_command"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: {json}"))
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect();
    let placeholder = fresh.certs.join("00-default.pem");
    assert!(placeholder.is_file(), "{label}: no placeholder: {run:?}");
    (fresh.edge.start(&start), start)
}

/// Stops HAProxy (waiting until its socket no longer answers) and starts it again.
fn restart(started: Started, start: &[String], fresh: &Fresh, label: &str) -> Started {
    drop(started);
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker_pid_of(&fresh.admin).is_some() {
        assert!(
            Instant::now() < deadline,
            "{label}: HAProxy still answers after kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fresh.edge.start(start)
}

/// The pid of a process that has exited (a dead writer's, for its temp files).
fn dead_pid() -> u32 {
    let mut child = Command::new("true")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = child.id();
    let _ = child.wait();
    pid
}

pub(crate) const PROD: &str = "veza.fr";
const FORGEJO: &str = "forgejo.talas.group";
pub(crate) const ALL: &[&str] = &[
    "staging.veza.fr",
    "veza.fr",
    "www.veza.fr",
    "talas.fr",
    "www.talas.fr",
];

per_version!(
    cert_update_replaces_and_adds_certificates_without_a_reload,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fresh = fresh(v, dir.path());
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap_or_else(|e| panic!("{e}"));

        // A fresh edge: apply installs a placeholder, and HAProxy starts on it.
        let (first, start) = install_and_start(&fresh, label);
        let mut started = Some(first);
        let list = vezasock(&fresh, &["cert", "list"]);
        assert_eq!(list.code, Some(0), "{label}: {list:?}");
        assert!(list.out.contains("PLACEHOLDER"), "{label}: {list:?}");
        // `status` marks it loudly too, in words and in JSON (a warning: not drift).
        let status = vezasock(&fresh, &["status"]);
        assert!(
            status
                .out
                .contains("warning: PLACEHOLDER certificate 00-default.pem"),
            "{label}: {status:?}"
        );
        let status = vezasock(&fresh, &["status", "--json"]);
        let json: serde_json::Value = serde_json::from_str(status.out.trim())
            .unwrap_or_else(|e| panic!("{label}: {e}: {status:?}"));
        let marked = json["certificates"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["placeholder"] == true));
        assert!(marked, "{label}: {json}");
        // On its placeholder the edge answers the ACME http-01 challenge on plain HTTP.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], fresh.http));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = vezasock::demo::http::get(
                addr,
                PROD,
                "/.well-known/acme-challenge/token",
                Duration::from_secs(5),
            );
            if got
                .as_ref()
                .is_ok_and(|a| a.status == 200 && a.body == "acme_backend")
            {
                break;
            }
            assert!(Instant::now() < deadline, "{label}: ACME path gave {got:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let placeholder_serial = served_serial(fresh.https, PROD);
        assert!(!placeholder_serial.is_empty(), "{label}: no TLS answer");
        let pid = worker_pid_of(&fresh.admin);

        // A TLS connection opened before the update.
        let long = open_tls(fresh.https, PROD);

        // The first real certificate replaces the placeholder, without a reload.
        let veza = input.join("veza.pem");
        std::fs::write(&veza, make_cert(ALL, 0xA1, -1, 60, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let run = vezasock(
            &fresh,
            &["cert", "update", veza.to_str().unwrap_or_default()],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(served_serial(fresh.https, PROD), hex(0xA1), "{label}");
        assert_eq!(
            served_serial(fresh.https, "staging.veza.fr"),
            hex(0xA1),
            "{label}"
        );
        assert_eq!(worker_pid_of(&fresh.admin), pid, "{label}: reloaded");
        assert_ne!(hex(0xA1), placeholder_serial);

        // The connection opened before the update still carries a request.
        let answer = request_on(long, PROD, label);
        assert!(
            answer.starts_with("HTTP/1.1 "),
            "{label}: old connection got {answer:?}"
        );

        // A renewal of the same file: set + commit.
        std::fs::write(&veza, make_cert(ALL, 0xA2, -1, 60, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let run = vezasock(
            &fresh,
            &[
                "cert",
                "update",
                "--json",
                veza.to_str().unwrap_or_default(),
            ],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(run.out.contains("\"added\": false"), "{label}: {run:?}");
        assert_eq!(served_serial(fresh.https, PROD), hex(0xA2), "{label}");

        // A new domain: new + set + commit + add ssl crt-list.
        let forgejo = input.join("forgejo.pem");
        std::fs::write(&forgejo, make_cert(&[FORGEJO], 0xB1, -1, 10, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let run = vezasock(
            &fresh,
            &[
                "cert",
                "update",
                "--json",
                forgejo.to_str().unwrap_or_default(),
            ],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert!(run.out.contains("\"added\": true"), "{label}: {run:?}");
        let json: serde_json::Value = serde_json::from_str(run.out.trim())
            .unwrap_or_else(|e| panic!("{label}: cert update --json: {e}: {run:?}"));
        let shapes = crate::cli_json::documented_shapes();
        crate::cli_json::agree(&shapes, "cert update", &json, "cert update --json", label);
        assert_eq!(served_serial(fresh.https, FORGEJO), hex(0xB1), "{label}");
        assert_eq!(served_serial(fresh.https, PROD), hex(0xA2), "{label}");
        assert_eq!(worker_pid_of(&fresh.admin), pid, "{label}: reloaded");

        // cert list: runtime = disk, and a loud warning for the 10-day certificate (exit 1).
        let list = vezasock(&fresh, &["cert", "list", "--json"]);
        assert_eq!(list.code, Some(1), "{label}: {list:?}");
        let json: serde_json::Value =
            serde_json::from_str(&list.out).unwrap_or_else(|e| panic!("{label}: {e}: {list:?}"));
        assert_eq!(json["agree"], true, "{label}: {json}");
        assert_eq!(
            json["expiring"],
            serde_json::json!(["forgejo.pem"]),
            "{label}: {json}"
        );
        let list = vezasock(&fresh, &["cert", "list", "--warn-days", "5"]);
        assert_eq!(list.code, Some(0), "{label}: {list:?}");
        assert!(!list.out.contains("PLACEHOLDER"), "{label}: {list:?}");

        // Applied at runtime but not written (the target is a directory): exit 5, never 1,
        // and `cert list` shows the drift.
        // A name no other file serves (HAProxy keeps the older certificate for a shared one).
        let talas = input.join("talas.pem");
        std::fs::write(&talas, make_cert(&["other.test"], 0xD1, -1, 60, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let blocker = fresh.certs.join("talas.pem");
        std::fs::create_dir_all(blocker.join("x")).unwrap_or_else(|e| panic!("{e}"));
        let run = vezasock(
            &fresh,
            &[
                "cert",
                "update",
                "--allow-other-domains",
                talas.to_str().unwrap_or_default(),
            ],
        );
        assert_eq!(run.code, Some(5), "{label}: {run:?}");
        assert!(run.err.contains("writing"), "{label}: {run:?}");
        assert_eq!(
            served_serial(fresh.https, "other.test"),
            hex(0xD1),
            "{label}"
        );
        let list = vezasock(&fresh, &["cert", "list", "--json", "--warn-days", "5"]);
        assert_eq!(list.code, Some(1), "{label}: {list:?}");
        let json: serde_json::Value =
            serde_json::from_str(&list.out).unwrap_or_else(|e| panic!("{label}: {e}: {list:?}"));
        assert_eq!(json["agree"], false, "{label}: {json}");
        std::fs::remove_dir_all(&blocker).unwrap_or_else(|e| panic!("{e}"));

        // Refused before anything changes.
        let on_disk = std::fs::read(fresh.certs.join("veza.pem")).unwrap_or_default();
        let bad = input.join("veza.pem");
        for (pem, want) in [
            ("not a certificate\n".to_string(), "holds no certificate"),
            (make_cert(ALL, 0xC1, -1, 60, true), "does not match"),
            (make_cert(ALL, 0xC2, -60, -1, false), "expired"),
            (make_cert(ALL, 0xC3, 2, 60, false), "not valid yet"),
            (
                make_cert(&["other.example"], 0xC4, -1, 60, false),
                "--allow-other-domains",
            ),
        ] {
            std::fs::write(&bad, &pem).unwrap_or_else(|e| panic!("{e}"));
            let run = vezasock(
                &fresh,
                &["cert", "update", bad.to_str().unwrap_or_default()],
            );
            assert_eq!(run.code, Some(2), "{label}: {want}: {run:?}");
            assert!(run.err.contains(want), "{label}: {want}: {run:?}");
            assert_eq!(
                std::fs::read(fresh.certs.join("veza.pem")).unwrap_or_default(),
                on_disk,
                "{label}: {want}: disk changed"
            );
            assert_eq!(
                served_serial(fresh.https, PROD),
                hex(0xA2),
                "{label}: {want}"
            );
        }

        // A reload, then a restart, serve what cert update installed.
        let master = started
            .as_ref()
            .map(Started::master_pid)
            .unwrap_or_default();
        let status = Command::new("kill")
            .args(["-USR2", &master.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while worker_pid_of(&fresh.admin) == pid {
            assert!(
                Instant::now() < deadline,
                "{label}: no new worker after SIGUSR2"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            served_serial(fresh.https, PROD),
            hex(0xA2),
            "{label}: after reload"
        );
        assert_eq!(
            served_serial(fresh.https, FORGEJO),
            hex(0xB1),
            "{label}: after reload"
        );
        let running = started
            .take()
            .unwrap_or_else(|| panic!("{label}: not started"));
        let _restarted = restart(running, &start, &fresh, label);
        assert_eq!(
            served_serial(fresh.https, PROD),
            hex(0xA2),
            "{label}: after restart"
        );
        assert_eq!(
            served_serial(fresh.https, FORGEJO),
            hex(0xB1),
            "{label}: after restart"
        );
        // No SNI: the default certificate (the placeholder slot) is the real one now.
        let list = vezasock(&fresh, &["cert", "list", "--json", "--warn-days", "5"]);
        assert_eq!(list.code, Some(0), "{label}: {list:?}");
    }
);

per_version!(
    check_passes_on_the_embedded_default_without_certs,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let certs = Path::new("/etc/haproxy/certs");
        let existed = certs.exists();
        let output = Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .arg("check")
            .env_remove("VEZASOCK_CONFIG")
            .env("VEZASOCK_HAPROXY", &v.bin)
            .env("VEZASOCK_STATE_DIR", dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let out = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{label}: {out}");
        if !existed {
            assert!(out.contains("placeholder"), "{label}: {out}");
            // A check never writes a live file.
            assert!(
                !certs.exists(),
                "{label}: check created {}",
                certs.display()
            );
        }
    }
);

per_version!(
    a_kill_at_each_cert_update_step_is_closed_by_apply,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fresh = fresh(v, dir.path());
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap_or_else(|e| panic!("{e}"));
        let (_started, _) = install_and_start(&fresh, label);
        // A dead writer's temp file in the certs dir: apply removes it.
        let leftover = fresh
            .certs
            .join(format!(".veza.pem.vezasock-tmp.{}.0", dead_pid()));
        std::fs::write(&leftover, "half").unwrap_or_else(|e| panic!("{e}"));
        // Every crash point of `cert update`, for a new file (added at runtime) and for a
        // renewal (the file and the default-certificate slot that follows it).
        let kills = [
            ("cert-after-intent", "veza.pem", &[PROD][..]),
            ("cert-after-runtime", "veza.pem", &[PROD][..]),
            ("cert-after-slot", "veza.pem", &[PROD][..]),
            ("cert-after-disk", "veza.pem", &[PROD][..]),
            ("cert-after-runtime", "veza.pem", &[PROD][..]),
            ("cert-after-slot", "veza.pem", &[PROD][..]),
            ("cert-after-disk", "veza.pem", &[PROD][..]),
            ("cert-after-runtime", "forgejo.pem", &[FORGEJO][..]),
        ];
        for (i, (step, file, names)) in kills.iter().enumerate() {
            let what = format!("{label} #{i} {step} {file}");
            let pem = input.join(file);
            std::fs::write(&pem, make_cert(names, 0xE0 + i as u64, -1, 60, false))
                .unwrap_or_else(|e| panic!("{e}"));
            let run = vezasock_env(
                &fresh,
                &["cert", "update", pem.to_str().unwrap_or_default()],
                &[("VEZASOCK_CRASH_AT", step)],
            );
            assert_eq!(run.code, None, "{what}: not killed: {run:?}");
            let run = vezasock(&fresh, &["apply"]);
            assert_eq!(run.code, Some(0), "{what}: apply: {run:?}");
            assert!(
                !leftover.exists(),
                "{what}: the dead writer's temp file is left"
            );
            let status = vezasock(&fresh, &["status", "--json"]);
            assert_eq!(status.code, Some(0), "{what}: status: {status:?}");
            // Served = disk for every file, and nothing served without a file.
            let list = vezasock(&fresh, &["cert", "list", "--json"]);
            assert_eq!(list.code, Some(0), "{what}: cert list: {list:?}");
            // The served certificate of the name is the one on disk.
            let on_disk = std::fs::read(fresh.certs.join("veza.pem"))
                .ok()
                .and_then(|b| vezasock::edge::cert::inspect(&b).ok())
                .map(|i| i.serial);
            if let Some(serial) = on_disk {
                assert_eq!(served_serial(fresh.https, PROD), serial, "{what}");
            }
            let json: serde_json::Value = serde_json::from_str(status.out.trim())
                .unwrap_or_else(|e| panic!("{what}: {e}: {status:?}"));
            assert_eq!(json["open_operations"], serde_json::json!([]), "{what}");
        }
    }
);

per_version!(
    a_new_certificate_never_becomes_the_no_sni_default,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fresh = fresh(v, dir.path());
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap_or_else(|e| panic!("{e}"));
        let (started, start) = install_and_start(&fresh, label);
        // The first real certificate takes the placeholder's slot: the no-SNI default.
        let veza = input.join("veza.pem");
        std::fs::write(&veza, make_cert(ALL, 0xA1, -1, 60, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let run = vezasock(
            &fresh,
            &["cert", "update", veza.to_str().unwrap_or_default()],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        let default = served_serial_for(fresh.https, None);
        assert_eq!(default, hex(0xA1), "{label}");
        // A new domain whose file sorts before 00-default.pem is refused, nothing changed.
        let early = input.join("0-forgejo.pem");
        std::fs::write(&early, make_cert(&[FORGEJO], 0xF1, -1, 60, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let run = vezasock(
            &fresh,
            &["cert", "update", early.to_str().unwrap_or_default()],
        );
        assert_eq!(run.code, Some(2), "{label}: {run:?}");
        assert!(run.err.contains("no SNI"), "{label}: {run:?}");
        assert!(!fresh.certs.join("0-forgejo.pem").exists(), "{label}");
        // Under a name after it, the new domain is served by SNI.
        let late = input.join("forgejo.pem");
        std::fs::write(&late, make_cert(&[FORGEJO], 0xF2, -1, 60, false))
            .unwrap_or_else(|e| panic!("{e}"));
        let run = vezasock(
            &fresh,
            &["cert", "update", late.to_str().unwrap_or_default()],
        );
        assert_eq!(run.code, Some(0), "{label}: {run:?}");
        assert_eq!(served_serial(fresh.https, FORGEJO), hex(0xF2), "{label}");
        // No SNI: the default is unchanged, now and after a restart.
        assert_eq!(served_serial_for(fresh.https, None), default, "{label}");
        let _restarted = restart(started, &start, &fresh, label);
        assert_eq!(
            served_serial_for(fresh.https, None),
            default,
            "{label}: after restart"
        );
        assert_eq!(served_serial(fresh.https, FORGEJO), hex(0xF2), "{label}");
    }
);

per_version!(
    names_haproxy_skips_or_the_disk_cannot_hold_are_refused,
    |v: &Haproxy| {
        let label = v.label;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fresh = fresh(v, dir.path());
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap_or_else(|e| panic!("{e}"));
        let (_started, _) = install_and_start(&fresh, label);
        let before = served_serial(fresh.https, PROD);
        let journal = std::fs::read(dir.path().join("state/journal.jsonl")).unwrap_or_default();
        let long = format!("{}.pem", "v".repeat(246));
        for (name, want) in [
            (".hidden.pem", "starts with a dot"),
            ("veza.key", "ends with .key"),
            (long.as_str(), "255-byte limit"),
        ] {
            let file = input.join(name);
            std::fs::write(&file, make_cert(ALL, 0x91, -1, 60, false))
                .unwrap_or_else(|e| panic!("{e}"));
            let run = vezasock(
                &fresh,
                &["cert", "update", file.to_str().unwrap_or_default()],
            );
            assert_eq!(run.code, Some(2), "{label} {want}: {run:?}");
            assert!(run.err.contains(want), "{label} {want}: {run:?}");
            assert!(!fresh.certs.join(name).exists(), "{label} {want}");
            assert_eq!(served_serial(fresh.https, PROD), before, "{label} {want}");
        }
        // Nothing journalled: refused before the lock.
        assert_eq!(
            std::fs::read(dir.path().join("state/journal.jsonl")).unwrap_or_default(),
            journal,
            "{label}"
        );
    }
);
