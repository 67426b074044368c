//! The PeerJS endpoint's shared state: the sans-IO
//! [`peerchat_peerjs::Server`] and the outgoing queue of each of its
//! connections, under one lock, and the task that wakes it at its
//! deadlines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use peerchat_peerjs::{Close, ConnId, Output, Params, PeerjsError, Server, Stats};
use peerchat_rooms::Backlog;
use tokio::sync::Notify;

use crate::state::{Outbound, Outbox, Queues, queue_close, queue_frame};

/// The PeerJS server and its connections.
#[derive(Debug)]
pub(crate) struct Peerjs {
    shared: Mutex<Shared>,
    /// Most bytes a connection's queue holds (`queue_limit` of
    /// [`Peerjs::new`]).
    queue_limit: usize,
    next_conn: AtomicU64,
    /// Notified when the server's next deadline moved earlier.
    timer: Notify,
    /// The metrics' count of clients cut off for not reading.
    slow_consumers: metrics::Counter,
}

#[derive(Debug)]
struct Shared {
    server: Server,
    conns: HashMap<ConnId, Arc<Outbox>>,
}

impl Peerjs {
    /// A PeerJS server with these settings. The server stops relaying
    /// signals to a connection whose queue holds `config.send_queue_bytes`;
    /// past `queue_limit` (its own frames, which are not refused) the
    /// client does not read and is cut off, as on `/ws`.
    pub(crate) fn new(
        config: peerchat_peerjs::Config,
        queue_limit: usize,
        slow_consumers: metrics::Counter,
    ) -> Self {
        Self {
            shared: Mutex::new(Shared {
                server: Server::new(config, rand::random()),
                conns: HashMap::new(),
            }),
            queue_limit,
            next_conn: AtomicU64::new(1),
            timer: Notify::new(),
            slow_consumers,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every mutation is complete before the lock is released, so a
        // panic elsewhere leaves the state consistent.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the server, delivers what it output, and wakes the
    /// timer task if the server now needs to be woken sooner.
    fn with_server(&self, f: impl FnOnce(&mut Server, &mut Vec<Output>)) {
        self.with_server_and_queues(|server, _, out| f(server, out));
    }

    /// [`Peerjs::with_server`], with a view of the connections' queues.
    fn with_server_and_queues(&self, f: impl FnOnce(&mut Server, &dyn Backlog, &mut Vec<Output>)) {
        let mut out = Vec::new();
        let mut guard = self.lock();
        let shared = &mut *guard;
        let before = shared.server.next_deadline();
        f(&mut shared.server, &Queues(&shared.conns), &mut out);
        let cut_off = shared.deliver(out);
        let after = shared.server.next_deadline();
        drop(guard);
        self.slow_consumers.increment(cut_off);
        if after.is_some_and(|after| before.is_none_or(|before| after < before)) {
            self.timer.notify_one();
        }
    }

    /// A WebSocket opened with these query parameters: registers it and
    /// returns its id and outgoing queue, which holds `OPEN` (and what
    /// waited for its id) or the refusal and the close.
    pub(crate) fn connect(&self, params: &Params) -> (ConnId, Arc<Outbox>) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::new(self.queue_limit));
        self.lock().conns.insert(conn, outbox.clone());
        let now = Instant::now();
        self.with_server(|server, out| server.open(conn, params, now, out));
        (conn, outbox)
    }

    /// A text frame arrived on `conn`.
    pub(crate) fn handle_text(&self, conn: ConnId, text: &str) {
        let now = Instant::now();
        self.with_server_and_queues(|server, queues, out| {
            server.handle_text(conn, text, queues, now, out);
        });
    }

    /// The transport refused a frame of `conn`'s itself.
    pub(crate) fn reject(&self, conn: ConnId, error: PeerjsError) {
        self.with_server(|server, out| server.reject(conn, error, out));
    }

    /// `conn`'s task ended.
    pub(crate) fn disconnect(&self, conn: ConnId) {
        let mut shared = self.lock();
        if let Some(outbox) = shared.conns.remove(&conn) {
            outbox.close();
        }
        shared.server.disconnect(conn);
    }

    /// A fresh id for `GET /peerjs/{key}/id`.
    pub(crate) fn generate_id(&self) -> String {
        self.lock().server.generate_id()
    }

    /// The registered ids, when discovery is on.
    pub(crate) fn discover(&self) -> Option<Vec<String>> {
        self.lock().server.discover()
    }

    /// Current counts.
    pub(crate) fn stats(&self) -> Stats {
        self.lock().server.stats()
    }

    /// Closes every connection: the server is shutting down.
    pub(crate) fn shutdown(&self) {
        self.with_server(|server, out| server.shutdown(out));
    }

    /// Wakes the server at each of its deadlines (expired queues, clients
    /// without heartbeat), for as long as the server runs.
    pub(crate) async fn drive_timers(self: Arc<Self>) {
        loop {
            // A notification that comes after this read is kept by the
            // Notify (`notify_one`), so none is missed.
            let next = self.lock().server.next_deadline();
            match next {
                None => self.timer.notified().await,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {
                            let now = Instant::now();
                            self.with_server(|server, out| server.handle_timeout(now, out));
                        }
                        () = self.timer.notified() => {}
                    }
                }
            }
        }
    }
}

/// The WebSocket close code for each reason the server closes a
/// connection.
pub(crate) fn close_code(reason: &Close) -> u16 {
    match reason {
        Close::Left => 1000,
        Close::ShuttingDown => 1001,
        Close::Error(PeerjsError::TooLarge { .. }) => 1009,
        _ => 1008,
    }
}

impl Shared {
    /// Queues the server's output on the connections. A connection whose
    /// queue is past its limit does not read: it is told so and closed
    /// (what waited for it is dropped; those last words go whatever their
    /// size). Returns how many were cut off.
    fn deliver(&mut self, mut out: Vec<Output>) -> u64 {
        let mut cut_off = 0;
        let mut more = Vec::new();
        while !out.is_empty() {
            for output in out.drain(..) {
                match output {
                    Output::Send { to, frame, from } => {
                        if !queue_frame(&self.conns, to, frame, from) {
                            cut_off += 1;
                            self.server.reject(to, PeerjsError::SlowConsumer, &mut more);
                        }
                    }
                    Output::Close { conn, reason } => {
                        tracing::debug!(
                            conn,
                            reason = reason.as_str(),
                            "closing a PeerJS connection"
                        );
                        let close = Outbound::Shut {
                            code: close_code(&reason),
                            reason: reason.as_str(),
                        };
                        queue_close(&mut self.conns, conn, close);
                    }
                }
            }
            std::mem::swap(&mut out, &mut more);
        }
        cut_off
    }
}
