//! `vezasock demo --json`, the README's first command, on every HAProxy version: zero failed
//! requests, zero reloads, the same worker PID before and after.

use std::process::Command;

use crate::haproxy::{per_version, Haproxy};

per_version!(
    demo_flips_under_load_without_a_failed_request_or_a_reload,
    |v: &Haproxy| {
        let out = Command::new(env!("CARGO_BIN_EXE_vezasock"))
            .args([
                "demo",
                "--json",
                "--flips",
                "4",
                "--duration",
                // 4 flips spread over 6 s: a slow machine keeps >1 s of margin.
                "6s",
                "--clients",
                "2",
            ])
            .env("VEZASOCK_HAPROXY", &v.bin)
            .output()
            .unwrap_or_else(|e| panic!("{}: run vezasock demo: {e}", v.label));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: demo failed ({}):\n{stdout}\n{stderr}",
            v.label,
            out.status
        );
        let summary: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{stdout}", v.label));
        assert!(
            summary["haproxy"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("version {}.", v.label))),
            "{}: {summary}",
            v.label
        );
        assert_eq!(summary["failed_requests"], 0, "{}: {summary}", v.label);
        assert_eq!(summary["reloads"], 0, "{}: {summary}", v.label);
        assert_eq!(summary["flips"], 4, "{}: {summary}", v.label);
        assert!(
            summary["requests_sent"].as_u64().is_some_and(|n| n > 100),
            "{}: {summary}",
            v.label
        );
        assert_eq!(
            summary["worker_pid_before"], summary["worker_pid_after"],
            "{}: {summary}",
            v.label
        );
        eprintln!(
            "demo on {}: {} requests, p50 {} ms",
            v.label, summary["requests_sent"], summary["flip_latency"]["p50_ms"]
        );
    }
);
