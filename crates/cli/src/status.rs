//! What the front ends say about the connection to the server.
//!
//! The engine reports every attempt (connecting, then offline with the
//! time to the next try, again and again while the server is away). Said
//! each time, that would fill the conversation; instead the state and a
//! countdown belong in a status line, and the conversation is told once
//! when the server is lost (or cannot be reached at the start) and once
//! when it is back.

use std::time::{Duration, Instant};

use peerchat_client::engine::ServerState;

/// The connection to the server, as the user is told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStatus {
    state: ServerState,
    /// While offline: when the next attempt starts.
    retry_at: Option<Instant>,
    /// The loss was told, and the return is not yet.
    lost: bool,
    /// The server was reached at least once.
    reached: bool,
}

/// What to tell in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The server could not be reached at the start.
    Unreachable,
    /// The server was lost.
    Lost,
    /// The server was reached after failing at the start.
    Reached,
    /// The server is back after being lost.
    Back,
}

impl Change {
    /// Whether this says the server is away (rather than there).
    pub fn is_loss(self) -> bool {
        matches!(self, Self::Unreachable | Self::Lost)
    }

    /// The words.
    pub fn text(self) -> &'static str {
        match self {
            Self::Unreachable => "server unreachable; trying again until it answers",
            Self::Lost => {
                "server unreachable; members already connected can still chat; \
                 trying again until it answers"
            }
            Self::Reached => "connected to the server",
            Self::Back => "connected to the server again",
        }
    }
}

/// How serious the state is, for colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Online.
    Good,
    /// Connecting.
    Waiting,
    /// Unreachable.
    Bad,
}

impl Default for ServerStatus {
    fn default() -> Self {
        Self {
            state: ServerState::Connecting,
            retry_at: None,
            lost: false,
            reached: false,
        }
    }
}

impl ServerStatus {
    /// The state now.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Takes a state reported by the engine at `now`; returns what to
    /// tell in the conversation, if anything.
    pub fn update(
        &mut self,
        state: ServerState,
        retry_in_ms: Option<u64>,
        now: Instant,
    ) -> Option<Change> {
        self.state = state;
        self.retry_at = match state {
            ServerState::Offline => Some(now + Duration::from_millis(retry_in_ms.unwrap_or(0))),
            _ => None,
        };
        match state {
            ServerState::Offline if !self.lost => {
                self.lost = true;
                Some(if self.reached {
                    Change::Lost
                } else {
                    Change::Unreachable
                })
            }
            ServerState::Online => {
                let was_lost = std::mem::replace(&mut self.lost, false);
                let first = !std::mem::replace(&mut self.reached, true);
                match (was_lost, first) {
                    (false, _) => None,
                    (true, true) => Some(Change::Reached),
                    (true, false) => Some(Change::Back),
                }
            }
            _ => None,
        }
    }

    /// The status line's text at `now`, with a countdown to the next
    /// attempt while offline.
    pub fn label(&self, now: Instant) -> (String, Level) {
        match (self.state, self.retry_at) {
            (ServerState::Online, _) => ("online".to_owned(), Level::Good),
            (ServerState::Offline, Some(at)) => {
                let secs = at.saturating_duration_since(now).as_millis().div_ceil(1000);
                let when = if secs == 0 {
                    "retrying now".to_owned()
                } else {
                    format!("retrying in {secs}s")
                };
                (format!("server unreachable, {when}"), Level::Bad)
            }
            (ServerState::Offline, None) => ("server unreachable".to_owned(), Level::Bad),
            (ServerState::Connecting, _) if self.lost => {
                ("server unreachable, trying now…".to_owned(), Level::Bad)
            }
            (ServerState::Connecting, _) if self.reached => {
                ("reconnecting…".to_owned(), Level::Waiting)
            }
            (ServerState::Connecting, _) => ("connecting…".to_owned(), Level::Waiting),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_told_once_and_counted_down_in_the_label() {
        let t0 = Instant::now();
        let mut s = ServerStatus::default();
        assert_eq!(s.label(t0).0, "connecting…");
        let mut told = Vec::new();
        for (i, retry) in [1000u64, 2000, 4000].into_iter().enumerate() {
            let now = t0 + Duration::from_secs(i as u64 * 10);
            told.extend(s.update(ServerState::Connecting, None, now));
            assert_eq!(
                s.label(now).0,
                if i == 0 {
                    "connecting…"
                } else {
                    "server unreachable, trying now…"
                }
            );
            told.extend(s.update(ServerState::Offline, Some(retry), now));
        }
        assert_eq!(told, [Change::Unreachable]);
        let now = t0 + Duration::from_secs(20);
        assert_eq!(s.label(now).0, "server unreachable, retrying in 4s");
        assert_eq!(
            s.label(now + Duration::from_millis(3500)).0,
            "server unreachable, retrying in 1s"
        );
        assert_eq!(
            s.label(now + Duration::from_secs(5)).0,
            "server unreachable, retrying now"
        );
        assert_eq!(
            s.update(ServerState::Online, None, now),
            Some(Change::Reached)
        );
        assert_eq!(s.label(now), ("online".to_owned(), Level::Good));

        // Lost once reached, then back.
        assert_eq!(
            s.update(ServerState::Offline, Some(1000), now),
            Some(Change::Lost)
        );
        assert_eq!(s.update(ServerState::Connecting, None, now), None);
        assert_eq!(s.update(ServerState::Offline, Some(2000), now), None);
        assert_eq!(s.update(ServerState::Online, None, now), Some(Change::Back));
        // A plain reconnect that never went offline says nothing.
        assert_eq!(s.update(ServerState::Connecting, None, now), None);
        assert_eq!(s.label(now).0, "reconnecting…");
        assert_eq!(s.update(ServerState::Online, None, now), None);
    }

    #[test]
    fn reaching_the_server_at_once_says_nothing() {
        let now = Instant::now();
        let mut s = ServerStatus::default();
        assert_eq!(s.update(ServerState::Connecting, None, now), None);
        assert_eq!(s.update(ServerState::Online, None, now), None);
    }
}
