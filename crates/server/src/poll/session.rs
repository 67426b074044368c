//! Long-poll sessions: each one is a connection of the hub, like a
//! WebSocket, that speaks through HTTP requests. The table holds them by
//! token and ends those whose client went quiet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use peerchat_protocol::ErrorCode;
use peerchat_rooms::{ConnId, Departure};
use tokio::sync::Notify;

use crate::AppState;
use crate::admission::Pass;
use crate::state::Outbox;

/// A session's secret: 128 random bits, as 32 hex digits.
pub(crate) type Token = String;

/// What a session is doing, under its lock.
#[derive(Debug)]
pub(crate) struct Inner {
    /// When a request of the client last started or ended.
    pub(crate) last_seen: Instant,
    /// The receive request waiting now, by number: a newer one sends the
    /// older away.
    pub(crate) receiver: u64,
    /// Whether a receive request is waiting.
    pub(crate) receiving: bool,
    /// The batch handed out last, until the client acknowledges it: its
    /// number and body.
    pub(crate) unacked: Option<(u64, Bytes)>,
    /// The number of the next batch.
    pub(crate) next_batch: u64,
    /// The join deadline, until it has passed or the client joined.
    pub(crate) join_by: Option<Instant>,
    /// The session is over; receive requests get this once, then 404.
    pub(crate) closed: Option<Closed>,
}

/// How a session ended, as told to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The client left (a `leave` message).
    Left,
    /// The server closed it, for this reason.
    Reason(ErrorCode),
    /// The client went quiet, or was too slow to read.
    Lost,
}

/// One long-poll session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) conn: ConnId,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) inner: Mutex<Inner>,
    /// Wakes the waiting receive request when a newer one comes.
    pub(crate) superseded: Notify,
    /// Its place under the connection caps.
    _pass: Option<Pass>,
}

impl Session {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every open session.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<Token, Arc<Session>>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Token, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session: a new connection of the hub.
    pub(crate) fn open(&self, state: &AppState, pass: Option<Pass>) -> Token {
        let (conn, outbox) = state.connect_via(crate::metrics::Transport::Poll);
        let token = hex(&rand::random::<[u8; 16]>());
        let now = Instant::now();
        let session = Arc::new(Session {
            conn,
            outbox,
            inner: Mutex::new(Inner {
                last_seen: now,
                receiver: 0,
                receiving: false,
                unacked: None,
                next_batch: 1,
                join_by: Some(now + state.config().join_timeout),
                closed: None,
            }),
            superseded: Notify::new(),
            _pass: pass,
        });
        self.lock().insert(token.clone(), session);
        token
    }

    /// The session with this token, if it is open (or just closed, with
    /// its last words not yet read).
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Session>> {
        self.lock().get(token).cloned()
    }

    /// Ends `token`'s session as `how`, telling the hub.
    pub(crate) fn end(&self, state: &AppState, token: &str, how: Departure) {
        let Some(session) = self.lock().remove(token) else {
            return;
        };
        let mut inner = session.lock();
        if inner.closed.is_none() {
            inner.closed = Some(Closed::Lost);
        }
        drop(inner);
        state.disconnect(session.conn, how);
        session.superseded.notify_waiters();
    }

    /// Time passed: sessions whose client went quiet for `idle` are lost;
    /// those not joined by their deadline are told so; closed sessions
    /// whose client never came for the news are forgotten.
    pub(crate) fn sweep(&self, state: &AppState, now: Instant, idle: Duration) {
        let mut lost = Vec::new();
        let mut late = Vec::new();
        for (token, session) in self.lock().iter() {
            let mut inner = session.lock();
            let quiet = !inner.receiving && now.saturating_duration_since(inner.last_seen) >= idle;
            if quiet {
                lost.push(token.clone());
            } else if inner.join_by.is_some_and(|t| now >= t) {
                inner.join_by = None;
                late.push(session.conn);
            }
        }
        for token in lost {
            tracing::debug!("long-poll session lost: no request within --idle-timeout");
            self.end(state, &token, Departure::Lost);
        }
        for conn in late {
            state.with_hub(|hub, out| hub.join_deadline(conn, out));
        }
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The server is stopping, and the hub has queued every session's
    /// close: those with a receive request waiting hand it out now; the
    /// others end at once, so that the server need not wait for clients
    /// that may never come back for it.
    pub(crate) fn end_idle(&self, state: &AppState) {
        let idle: Vec<Token> = self
            .lock()
            .iter()
            .filter(|(_, s)| !s.lock().receiving)
            .map(|(t, _)| t.clone())
            .collect();
        for token in idle {
            self.end(state, &token, Departure::Lost);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
