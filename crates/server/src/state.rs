//! Shared server state: the hub and the outgoing queue of every connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use peerchat_protocol::ErrorCode;
use peerchat_rooms::{ConnId, Frame, Hub, Output, Stats};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::Config;
use crate::mailbox::SharedMailbox;

/// What a connection's writer sends to its client.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text frame.
    Frame(Frame),
    /// A close frame with this reason; then the connection ends.
    Close(ErrorCode),
}

/// The receiving ends a connection task owns.
#[derive(Debug)]
pub(crate) struct ConnQueues {
    pub(crate) outbound: mpsc::Receiver<Outbound>,
    /// Fires when the connection must end at once (its queue overflowed).
    pub(crate) kill: oneshot::Receiver<()>,
}

#[derive(Debug)]
struct ConnHandle {
    outbound: mpsc::Sender<Outbound>,
    kill: oneshot::Sender<()>,
}

#[derive(Debug)]
struct Shared {
    hub: Hub,
    conns: HashMap<ConnId, ConnHandle>,
}

/// The server's state, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Config,
    mailbox: Option<Arc<SharedMailbox>>,
    shared: Mutex<Shared>,
    next_conn: AtomicU64,
    /// Connection tasks still running.
    live: AtomicUsize,
    /// Notified whenever the last connection task ends.
    idle: Notify,
}

impl AppState {
    /// A fresh state with no rooms.
    pub fn new(config: Config) -> Self {
        let hub = Hub::new(config.hub.clone(), rand::random());
        let mailbox = config
            .mailbox
            .clone()
            .map(|c| Arc::new(SharedMailbox::new(c)));
        Self(Arc::new(Inner {
            config,
            mailbox,
            shared: Mutex::new(Shared {
                hub,
                conns: HashMap::new(),
            }),
            next_conn: AtomicU64::new(1),
            live: AtomicUsize::new(0),
            idle: Notify::new(),
        }))
    }

    /// The settings the server runs with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The long-poll mailbox, unless it is turned off.
    pub(crate) fn mailbox(&self) -> Option<&Arc<SharedMailbox>> {
        self.0.mailbox.as_ref()
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        self.lock().hub.stats()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves the maps consistent (every
        // mutation is a single insert or remove), so carry on.
        self.0.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection and returns its id and queues.
    pub(crate) fn connect(&self) -> (ConnId, ConnQueues) {
        let id = self.0.next_conn.fetch_add(1, Ordering::Relaxed);
        self.0.live.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel(self.0.config.send_queue);
        let (kill_tx, kill_rx) = oneshot::channel();
        let mut shared = self.lock();
        shared.hub.connect(id, Instant::now());
        shared.conns.insert(
            id,
            ConnHandle {
                outbound: tx,
                kill: kill_tx,
            },
        );
        (
            id,
            ConnQueues {
                outbound: rx,
                kill: kill_rx,
            },
        )
    }

    /// Runs `f` on the hub and delivers what it outputs.
    pub(crate) fn with_hub(&self, f: impl FnOnce(&mut Hub, &mut Vec<Output>)) {
        let mut out = Vec::new();
        let mut shared = self.lock();
        f(&mut shared.hub, &mut out);
        shared.deliver(out);
    }

    /// A connection task ended: forget the connection and tell its room.
    /// Called exactly once for each [`AppState::connect`].
    pub(crate) fn disconnect(&self, conn: ConnId) {
        {
            let mut shared = self.lock();
            shared.conns.remove(&conn);
            let mut out = Vec::new();
            shared.hub.disconnect(conn, &mut out);
            shared.deliver(out);
        }
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }

    /// Tells every connection the server is shutting down.
    pub(crate) fn shutdown(&self) {
        self.with_hub(|hub, out| hub.shutdown(out));
    }

    /// Resolves once no connection task is running.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.0.idle.notified();
            if self.0.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Shared {
    /// Queues the hub's output on the connections. A connection whose queue
    /// is full is cut off at once, and its room is told it left.
    fn deliver(&mut self, mut out: Vec<Output>) {
        let mut more = Vec::new();
        while !out.is_empty() {
            for output in out.drain(..) {
                match output {
                    Output::Send { to, frame } => {
                        let Some(handle) = self.conns.get(&to) else {
                            continue;
                        };
                        if handle.outbound.try_send(Outbound::Frame(frame)).is_err() {
                            tracing::info!(conn = to, "disconnecting a client too slow to read");
                            if let Some(handle) = self.conns.remove(&to) {
                                let _ = handle.kill.send(());
                            }
                            self.hub.disconnect(to, &mut more);
                        }
                    }
                    Output::Close { conn, reason } => {
                        if let Some(handle) = self.conns.remove(&conn) {
                            if handle.outbound.try_send(Outbound::Close(reason)).is_err() {
                                let _ = handle.kill.send(());
                            }
                        }
                    }
                }
            }
            std::mem::swap(&mut out, &mut more);
        }
    }
}
