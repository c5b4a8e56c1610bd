//! A machine that stops for seconds (a paused or snapshotted VM, a host starved by other
//! work) fails a request's 5 s bound with no edge at fault: on 2026-12-07 three chaos runs on
//! one machine (two versions, different seeds) failed in the same second with a 5 s client
//! timeout, their steps taking 21–33 s instead of 1–2 s. The watchdog tells such a stall from
//! an edge that stops answering: a thread of the run's own process that wakes every 50 ms and
//! keeps the longest gap it saw since the step began. The load clients and the test backends
//! run in this process too, so a gap here stopped them as well; an edge (a separate HAProxy)
//! that hangs leaves the watchdog on time, and its timeouts still break the invariant.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A gap this long is a stall of the machine (a loaded 2-core machine schedules a waiting
/// thread within a few hundred ms).
pub(super) const STALL: Duration = Duration::from_secs(2);

pub(super) struct Watchdog {
    /// The longest gap (ms) between two wake-ups since the last [`Watchdog::restart`].
    worst_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    pub(super) fn start() -> Watchdog {
        let worst_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (worst, halt) = (worst_ms.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last = Instant::now();
            // Bounded: a chaos run of 10,000 steps takes hours, not days.
            let until = last + Duration::from_secs(7 * 24 * 3600);
            while !halt.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
                let now = Instant::now();
                let gap = now.duration_since(last).as_millis() as u64;
                worst.fetch_max(gap, Ordering::Relaxed);
                last = now;
            }
        });
        Watchdog { worst_ms, stop }
    }

    /// A new step begins: forget the gaps before it.
    pub(super) fn restart(&self) {
        self.worst_ms.store(0, Ordering::Relaxed);
    }

    /// The machine stalled during this step: the longest gap, when at least [`STALL`].
    pub(super) fn stalled(&self) -> Option<Duration> {
        let worst = Duration::from_millis(self.worst_ms.load(Ordering::Relaxed));
        (worst >= STALL).then_some(worst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A failure in words that is a client's timeout (the 5 s bound), not an answer.
pub(super) fn is_timeout(failure: &str) -> bool {
    failure.contains("(os error 11)")
        || failure.contains("timed out")
        || failure.contains("WouldBlock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_told_from_an_answer() {
        assert!(is_timeout(
            "keep-alive client 0: staging.veza.fr/api/x: Resource temporarily unavailable (os error 11)"
        ));
        assert!(!is_timeout(
            "keep-alive client 0: staging.veza.fr/api/x: HTTP 503"
        ));
        assert!(!is_timeout(
            "new-connection client 1: connection refused (os error 111)"
        ));
    }
}
