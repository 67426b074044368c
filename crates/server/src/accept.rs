//! What the accept loop does when `accept` fails, and the file descriptor
//! limit the server needs.
//!
//! Out of file descriptors (EMFILE, ENFILE) or memory, `accept` fails at
//! once for as long as a connection waits in the backlog: retrying at
//! once spins a core and writes a log line each time. Like axum's own
//! `serve`, the loop waits a second before accepting again; and it logs
//! the first failure of a run and then one summary a minute at most.

use std::io;
use std::time::{Duration, Instant};

/// How long the accept loop waits after a failure that says the process
/// or the system is out of a resource.
pub(crate) const BACKOFF: Duration = Duration::from_secs(1);

/// How often a run of failures is logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Failed accepts, for the loop's backoff and its log.
#[derive(Debug, Default)]
pub(crate) struct AcceptErrors {
    /// When a failure was last logged.
    logged: Option<Instant>,
    /// Failures since then, not logged.
    unlogged: u64,
}

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AfterError {
    /// Wait this long before accepting again.
    pub(crate) wait: Duration,
    /// Log this many failures now (this one included), if any.
    pub(crate) log: Option<u64>,
}

impl AcceptErrors {
    pub(crate) fn on_error(&mut self, err: &io::Error, now: Instant) -> AfterError {
        // Errors about one connection that never was (the client reset it
        // in the backlog, say): the next accept is fine.
        let per_connection = matches!(
            err.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::Interrupted
        );
        let wait = if per_connection {
            Duration::ZERO
        } else {
            BACKOFF
        };
        self.unlogged += 1;
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        let log = due.then(|| {
            self.logged = Some(now);
            std::mem::take(&mut self.unlogged)
        });
        AfterError { wait, log }
    }
}

/// The file descriptors a server with these caps may need: one per
/// connection and per relay allocation, and some to spare (the listener,
/// the relay's socket, log files, the runtime's own).
pub fn descriptors_needed(max_connections: usize, relay_allocations: usize) -> u64 {
    (max_connections + relay_allocations + 64) as u64
}

/// The limit on open files is too low for the caps.
#[derive(Debug, thiserror::Error)]
#[error(
    "--max-connections {max_connections} needs about {needed} open files, but this process may open only {limit}: raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) or lower --max-connections"
)]
pub struct FdLimitTooLow {
    /// The connection cap asked for.
    pub max_connections: usize,
    /// What it needs.
    pub needed: u64,
    /// What the process may open.
    pub limit: u64,
}

/// Raises this process's limit on open files (`RLIMIT_NOFILE`) to its
/// hard limit, and checks that `needed` descriptors fit. Returns the
/// limit in force.
pub fn raise_fd_limit(max_connections: usize, needed: u64) -> Result<u64, FdLimitTooLow> {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        // Not a platform with the limit (or not allowed to read it): go on.
        Err(_) => return Ok(u64::MAX),
    };
    if limit < needed {
        return Err(FdLimitTooLow {
            max_connections,
            needed,
            limit,
        });
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_waits_and_logs_once_a_minute() {
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(24);
        let start = Instant::now();
        let first = errors.on_error(&emfile, start);
        assert_eq!(
            first,
            AfterError {
                wait: BACKOFF,
                log: Some(1)
            }
        );
        let mut logged = 0;
        for s in 1..=120 {
            let after = errors.on_error(&emfile, start + Duration::from_secs(s));
            assert_eq!(after.wait, BACKOFF);
            logged += after.log.map_or(0, |n| {
                assert_eq!(n, 60);
                1
            });
        }
        assert_eq!(logged, 2);
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.on_error(&reset, start).wait, Duration::ZERO);
    }
}
