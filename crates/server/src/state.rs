//! Shared server state: the hub (alone, or inside this server's place in a
//! cluster) and the outgoing queue of every connection.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use peerchat_cluster::{ClusterStats, Node};
use peerchat_protocol::signaling::ClientMessage;
use peerchat_protocol::{ErrorCode, ProtocolError};
use peerchat_rooms::{
    Backlog, ConnId, Departure, FRAME_OVERHEAD, Frame, Hub, Output, Queued, Stats, Tally,
    frame_cost,
};
use tokio::sync::Notify;

use crate::Config;
use crate::admission::Gate;
use crate::cluster::ClusterIo;
use crate::mailbox::SharedMailbox;
use crate::metrics::{ClusterCounts, Counts, Metrics, Transport};
use crate::peerjs::Peerjs;

/// What a connection's writer sends to its client.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text frame.
    Frame(Frame),
    /// A close frame with this reason, or a normal close (code 1000) when
    /// there is none; then the connection ends.
    Close(Option<ErrorCode>),
    /// A close frame of the PeerJS endpoint, with this code and reason;
    /// then the connection ends.
    Shut {
        /// The WebSocket close code.
        code: u16,
        /// The reason, a short name.
        reason: &'static str,
    },
}

/// A queued [`Outbound`], with what it counts for.
#[derive(Debug)]
struct Item {
    outbound: Outbound,
    /// Bytes, as [`frame_cost`] counts them.
    cost: usize,
    /// The sender of a relayed signal.
    from: Option<ConnId>,
}

/// A connection's queue of outgoing frames, bounded in bytes (uWebSockets'
/// `maxBackpressure`): filled with the hub's output (under the hub's
/// lock), drained by the connection's task. The hub decides what may be
/// queued from the counts it keeps ([`peerchat_rooms::Backlog`]); past the
/// hard limit the client is closed as a slow consumer. It holds no
/// allocation while empty, which is most of the time, so an idle
/// connection costs one small block here.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// Most bytes queued (see [`peerchat_rooms::HubConfig::queue_hard_limit`]).
    limit: usize,
    inner: Mutex<OutboxInner>,
}

#[derive(Debug, Default)]
struct OutboxInner {
    queue: VecDeque<Item>,
    /// Bytes queued.
    bytes: usize,
    /// Bytes queued from each sender's signals; a few entries at most.
    senders: Vec<(ConnId, usize)>,
    /// The connection's task, waiting for something to send.
    waker: Option<Waker>,
    /// The connection must end at once.
    killed: bool,
    /// The server forgot the connection: nothing more will be queued.
    closed: bool,
    /// The queue overflowed: only the hub's last words come now.
    overflowed: bool,
}

/// What a connection's task finds in its [`Outbox`].
#[derive(Debug)]
pub(crate) enum Next {
    /// Send this.
    Item(Outbound),
    /// Nothing yet; the task is woken when there is.
    Empty,
    /// Nothing more will come.
    Closed,
    /// End the connection at once.
    Killed,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            inner: Mutex::new(OutboxInner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OutboxInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What waits, in all and from `from`.
    pub(crate) fn queued(&self, from: ConnId) -> Queued {
        let inner = self.lock();
        Queued {
            total: inner.bytes,
            from_sender: inner
                .senders
                .iter()
                .find(|(s, _)| *s == from)
                .map_or(0, |(_, n)| *n),
        }
    }

    /// Queues `frame`, unless that would take the queue past its limit
    /// (and `force` is not set: the last words before a close).
    pub(crate) fn push(&self, outbound: Outbound, from: Option<ConnId>, force: bool) -> bool {
        let cost = match &outbound {
            Outbound::Frame(frame) => frame_cost(frame.len()),
            Outbound::Close(_) | Outbound::Shut { .. } => FRAME_OVERHEAD,
        };
        let mut inner = self.lock();
        if !(force || inner.overflowed) && inner.bytes + cost > self.limit {
            return false;
        }
        inner.bytes += cost;
        if let Some(from) = from {
            match inner.senders.iter_mut().find(|(s, _)| *s == from) {
                Some((_, n)) => *n += cost,
                None => inner.senders.push((from, cost)),
            }
        }
        inner.queue.push_back(Item {
            outbound,
            cost,
            from,
        });
        let waker = inner.waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// The queue overflowed: what waits is dropped, and the hub's last
    /// words (`slow_consumer`, then the close) go in whatever their size.
    pub(crate) fn overflowed(&self) {
        let mut inner = self.lock();
        inner.queue = VecDeque::new();
        inner.senders = Vec::new();
        inner.bytes = 0;
        inner.overflowed = true;
    }

    /// Nothing more will be queued.
    pub(crate) fn close(&self) {
        self.end(false);
    }

    fn end(&self, kill: bool) {
        let mut inner = self.lock();
        inner.killed |= kill;
        inner.closed = true;
        let waker = inner.waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The next thing to send; when there is none, `cx`'s task is woken
    /// once there is.
    pub(crate) fn poll_next(&self, cx: &Context<'_>) -> Next {
        let mut inner = self.lock();
        if inner.killed {
            return Next::Killed;
        }
        if let Some(item) = inner.queue.pop_front() {
            inner.bytes -= item.cost;
            if let Some(from) = item.from {
                if let Some(i) = inner.senders.iter().position(|(s, _)| *s == from) {
                    inner.senders[i].1 -= item.cost;
                    if inner.senders[i].1 == 0 {
                        inner.senders.swap_remove(i);
                    }
                }
            }
            return Next::Item(item.outbound);
        }
        if inner.queue.capacity() > 0 {
            // Give the memory back between bursts.
            inner.queue = VecDeque::new();
            inner.senders = Vec::new();
        }
        if inner.closed {
            return Next::Closed;
        }
        match &inner.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Next::Empty
    }

    /// Whether the connection must end at once.
    pub(crate) fn poll_killed(&self, cx: &Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.killed {
            return Poll::Ready(());
        }
        match &inner.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[derive(Debug)]
struct Shared {
    hub: Core,
    conns: HashMap<ConnId, Arc<Outbox>>,
    /// How each connection speaks to us, for the metrics.
    transports: HashMap<ConnId, Transport>,
}

/// What decides about rooms: the hub itself on a server alone, or this
/// server's place in a cluster (which holds a hub for the rooms it owns).
/// The connections see the same calls either way.
#[derive(Debug)]
// The hub of a server alone stays inline: its path takes no indirection
// more than before there were clusters; there is one `Core` per server.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Core {
    /// Alone, everything in memory.
    Alone(Hub),
    /// One of several servers sharing rooms through Redis.
    Cluster(Box<Node>),
}

impl Core {
    pub(crate) fn connect(&mut self, conn: ConnId, now: Instant) {
        match self {
            Self::Alone(hub) => hub.connect(conn, now),
            Self::Cluster(node) => node.connect(conn, now),
        }
    }

    pub(crate) fn is_joined(&self, conn: ConnId) -> bool {
        match self {
            Self::Alone(hub) => hub.is_joined(conn),
            Self::Cluster(node) => node.is_joined(conn),
        }
    }

    /// A text frame, parsed already (outside the lock) for the hub alone;
    /// a cluster's node looks at the text itself (most frames it only
    /// forwards). `queues`: what waits for each connection, for the
    /// push-back on signals.
    pub(crate) fn handle_message(
        &mut self,
        conn: ConnId,
        text: &str,
        message: Result<ClientMessage<'_>, ProtocolError>,
        now: Instant,
        queues: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        match self {
            Self::Alone(hub) => hub.handle_message(conn, text.len(), message, now, queues, out),
            Self::Cluster(node) => node.handle_text(conn, text, now, queues, out),
        }
    }

    pub(crate) fn reject(
        &mut self,
        conn: ConnId,
        code: ErrorCode,
        message: &str,
        out: &mut Vec<Output>,
    ) {
        match self {
            Self::Alone(hub) => hub.reject(conn, code, message, out),
            Self::Cluster(node) => node.reject(conn, code, message, out),
        }
    }

    pub(crate) fn join_deadline(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        match self {
            Self::Alone(hub) => hub.join_deadline(conn, out),
            Self::Cluster(node) => node.join_deadline(conn, Instant::now(), out),
        }
    }

    pub(crate) fn close(
        &mut self,
        conn: ConnId,
        reason: ErrorCode,
        message: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        match self {
            Self::Alone(hub) => hub.close(conn, reason, message, now, out),
            Self::Cluster(node) => node.close(conn, reason, message, now, out),
        }
    }

    pub(crate) fn disconnect(
        &mut self,
        conn: ConnId,
        how: Departure,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        match self {
            Self::Alone(hub) => hub.disconnect(conn, how, now, out),
            Self::Cluster(node) => node.disconnect(conn, how, now, out),
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self {
            Self::Alone(hub) => hub.next_deadline(),
            Self::Cluster(node) => Some(node.next_deadline()),
        }
    }

    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        queues: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        match self {
            Self::Alone(hub) => hub.handle_timeout(now, out),
            Self::Cluster(node) => node.handle_timeout(now, queues, out),
        }
    }

    pub(crate) fn shutdown(&mut self, out: &mut Vec<Output>) {
        match self {
            Self::Alone(hub) => hub.shutdown(out),
            Self::Cluster(node) => node.shutdown(Instant::now(), out),
        }
    }

    /// What the hub (of the rooms owned here, in a cluster) has done.
    fn tally(&self) -> &Tally {
        match self {
            Self::Alone(hub) => hub.tally(),
            Self::Cluster(node) => node.hub_tally(),
        }
    }

    fn stats(&self) -> Stats {
        match self {
            Self::Alone(hub) => hub.stats(),
            Self::Cluster(node) => {
                let stats = node.stats();
                Stats {
                    connections: stats.connections,
                    ..stats.hub
                }
            }
        }
    }
}

/// The server's state, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Config,
    gate: Gate,
    metrics: Metrics,
    poll: crate::poll::Sessions,
    mailbox: Option<Arc<SharedMailbox>>,
    /// The PeerJS endpoint, unless it is turned off.
    peerjs: Option<Arc<Peerjs>>,
    shared: Mutex<Shared>,
    next_conn: AtomicU64,
    /// Connection tasks still running.
    live: AtomicUsize,
    /// Notified whenever the last connection task ends.
    idle: Notify,
    /// Notified when the hub's next deadline moved earlier, to wake the
    /// timer task.
    timer: Notify,
    /// The link to Redis, when the server is one of a cluster.
    cluster: Option<ClusterIo>,
}

impl AppState {
    /// A fresh state with no rooms.
    pub fn new(config: Config) -> Self {
        let (hub, cluster) = match &config.cluster {
            None => (
                Core::Alone(Hub::new(config.hub.clone(), rand::random())),
                None,
            ),
            Some(settings) => {
                let (io, node) =
                    ClusterIo::new(settings, config.hub.clone(), config.mailbox.clone());
                (Core::Cluster(Box::new(node)), Some(io))
            }
        };
        let mailbox = config
            .mailbox
            .clone()
            .map(|c| Arc::new(SharedMailbox::new(c)));
        let metrics = Metrics::new();
        metrics.set_public(config.metrics_addr.is_none());
        if let Some(relay) = &config.relay_stats {
            metrics.set_relay(relay.clone());
        }
        let peerjs = config.peerjs.clone().map(|c| {
            let limit = config.hub.queue_hard_limit(config.max_message_size);
            Arc::new(Peerjs::new(c, limit, metrics.slow_consumers()))
        });
        Self(Arc::new(Inner {
            gate: Gate::new(&config),
            config,
            metrics,
            poll: crate::poll::Sessions::default(),
            mailbox,
            peerjs,
            shared: Mutex::new(Shared {
                hub,
                conns: HashMap::new(),
                transports: HashMap::new(),
            }),
            next_conn: AtomicU64::new(1),
            live: AtomicUsize::new(0),
            idle: Notify::new(),
            timer: Notify::new(),
            cluster,
        }))
    }

    /// The settings the server runs with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The connection caps and per-address limits.
    pub(crate) fn gate(&self) -> &Gate {
        &self.0.gate
    }

    /// The long-poll mailbox, unless it is turned off.
    pub(crate) fn mailbox(&self) -> Option<&Arc<SharedMailbox>> {
        self.0.mailbox.as_ref()
    }

    /// Requests waiting and texts queued in the mailbox, unless it is
    /// turned off: in a cluster, those of the ids this server owns.
    pub(crate) fn mailbox_counts(&self) -> Option<(usize, usize)> {
        let mailbox = self.mailbox()?;
        {
            let shared = self.lock();
            if let Core::Cluster(node) = &shared.hub {
                return node.mailbox_counts();
            }
        }
        // Not under the hub's lock: the mailbox has its own.
        Some(mailbox.counts())
    }

    /// The PeerJS endpoint, unless it is turned off.
    pub(crate) fn peerjs(&self) -> Option<&Arc<Peerjs>> {
        self.0.peerjs.as_ref()
    }

    /// A connection task that is not the hub's started: the server's
    /// shutdown waits for it too. Pair with [`AppState::leave`].
    pub(crate) fn enter(&self) {
        self.0.live.fetch_add(1, Ordering::SeqCst);
    }

    /// A connection of a transport that is not the hub's (the PeerJS
    /// endpoint's) started: counted in the metrics, and waited for at
    /// shutdown. Pair with [`AppState::leave_via`].
    pub(crate) fn enter_via(&self, transport: Transport) {
        self.0.metrics.connection_opened(transport);
        self.enter();
    }

    /// A connection counted by [`AppState::enter_via`] ended.
    pub(crate) fn leave_via(&self, transport: Transport) {
        self.0.metrics.connection_closed(transport);
        self.leave();
    }

    /// A connection task counted by [`AppState::enter`] ended.
    pub(crate) fn leave(&self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        self.lock().hub.stats()
    }

    /// The long-poll sessions.
    pub(crate) fn poll_sessions(&self) -> &crate::poll::Sessions {
        &self.0.poll
    }

    /// Ends long-poll sessions whose clients went quiet, once a second.
    pub(crate) async fn sweep_poll_sessions(self) {
        let mut tick = tokio::time::interval(crate::poll::SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let idle = self.0.config.idle_timeout;
            self.0.poll.sweep(&self, Instant::now(), idle);
        }
    }

    /// The server's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The metrics in Prometheus' text format, as of now.
    pub fn render_metrics(&self) -> String {
        let (stats, tally, cluster) = {
            let shared = self.lock();
            let cluster = match &shared.hub {
                Core::Alone(_) => None,
                Core::Cluster(node) => Some((node.stats(), *node.tally())),
            };
            (shared.hub.stats(), shared.hub.tally().clone(), cluster)
        };
        let mailbox = self.mailbox_counts();
        let cluster = cluster.map(|(stats, tally)| ClusterCounts {
            stats,
            tally,
            redis_up: self.cluster().is_some_and(ClusterIo::redis_up),
        });
        let peerjs = self.peerjs().map(|p| p.stats());
        self.0.metrics.render(&Counts {
            stats,
            tally: &tally,
            mailbox,
            cluster,
            peerjs,
        })
    }

    /// Counts a TLS certificate reload (or a failed one) in the metrics.
    pub fn count_tls_reload(&self, ok: bool) {
        self.0.metrics.tls_reload(ok);
    }

    /// Serves `/metrics` on the main port, or not.
    pub fn set_public_metrics(&self, public: bool) {
        self.0.metrics.set_public(public);
    }

    /// This server's place in its cluster, if it is one of several.
    pub fn cluster_stats(&self) -> Option<ClusterStats> {
        match &self.lock().hub {
            Core::Alone(_) => None,
            Core::Cluster(node) => Some(node.stats()),
        }
    }

    /// The link to Redis, if the server is one of a cluster.
    pub(crate) fn cluster(&self) -> Option<&ClusterIo> {
        self.0.cluster.as_ref()
    }

    /// Runs `f` on this server's place in the cluster (if it is in one),
    /// with a view of the connections' queues, delivers what it output, and
    /// passes on the Redis commands it queued.
    pub(crate) fn with_node(&self, f: impl FnOnce(&mut Node, &dyn Backlog, &mut Vec<Output>)) {
        self.with_hub_and_queues(|core, queues, out| {
            if let Core::Cluster(node) = core {
                f(node, queues, out);
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves the maps consistent (every
        // mutation is a single insert or remove), so carry on.
        self.0.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new WebSocket connection and returns its id and
    /// outgoing queue.
    pub(crate) fn connect(&self) -> (ConnId, Arc<Outbox>) {
        self.connect_via(Transport::WebSocket)
    }

    /// Registers a new connection speaking through `transport`.
    pub(crate) fn connect_via(&self, transport: Transport) -> (ConnId, Arc<Outbox>) {
        self.0.metrics.connection_opened(transport);
        let id = self.0.next_conn.fetch_add(1, Ordering::Relaxed);
        self.enter();
        let config = &self.0.config;
        let outbox = Arc::new(Outbox::new(
            config.hub.queue_hard_limit(config.max_message_size),
        ));
        let mut shared = self.lock();
        shared.hub.connect(id, Instant::now());
        shared.conns.insert(id, outbox.clone());
        shared.transports.insert(id, transport);
        (id, outbox)
    }

    /// Runs `f` on the hub and delivers what it outputs.
    pub(crate) fn with_hub(&self, f: impl FnOnce(&mut Core, &mut Vec<Output>)) {
        self.with_shared(|shared, out| f(&mut shared.hub, out));
    }

    /// Runs `f` on the hub, with a view of the connections' queues, and
    /// delivers what it outputs.
    pub(crate) fn with_hub_and_queues(
        &self,
        f: impl FnOnce(&mut Core, &dyn Backlog, &mut Vec<Output>),
    ) {
        self.with_shared(|shared, out| {
            let queues = Queues(&shared.conns);
            f(&mut shared.hub, &queues, out);
        });
    }

    /// Runs `f` on the shared state, delivers what the hub output, and wakes
    /// the timer task if the hub now needs to be woken sooner.
    fn with_shared(&self, f: impl FnOnce(&mut Shared, &mut Vec<Output>)) {
        let mut out = Vec::new();
        let mut shared = self.lock();
        let before = shared.hub.next_deadline();
        f(&mut shared, &mut out);
        let cut_off = shared.deliver(out);
        let after = shared.hub.next_deadline();
        if let (Core::Cluster(node), Some(io)) = (&mut shared.hub, &self.0.cluster) {
            while let Some(command) = node.poll_control() {
                io.submit(command);
            }
            if node.has_entries() {
                io.entries_waiting();
            }
            while let Some((req, result)) = node.poll_mailbox() {
                io.mailbox_done(req, Some(result));
            }
        }
        drop(shared);
        for _ in 0..cut_off {
            self.0.metrics.slow_consumer();
        }
        if after.is_some_and(|after| before.is_none_or(|before| after < before)) {
            self.0.timer.notify_one();
        }
    }

    /// A connection task ended: forget the connection, and tell the hub
    /// whether the client left or was lost. Called exactly once for each
    /// [`AppState::connect`].
    pub(crate) fn disconnect(&self, conn: ConnId, how: Departure) {
        let now = Instant::now();
        let mut transport = None;
        self.with_shared(|shared, out| {
            if let Some(outbox) = shared.conns.remove(&conn) {
                outbox.close();
            }
            transport = shared.transports.remove(&conn);
            shared.hub.disconnect(conn, how, now, out);
        });
        if let Some(transport) = transport {
            self.0.metrics.connection_closed(transport);
        }
        self.leave();
    }

    /// Wakes the hub whenever a deadline of its passes (a lost member's
    /// resume grace period ends). One task serves the whole server: it
    /// sleeps until the hub's next deadline, or until an earlier one
    /// appears; with no deadline it just waits.
    pub(crate) async fn drive_timers(self) {
        loop {
            // A notification that comes after this read is kept by the
            // Notify (`notify_one`), so none is missed.
            let next = self.lock().hub.next_deadline();
            match next {
                None => self.0.timer.notified().await,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {
                            self.with_hub_and_queues(|hub, queues, out| {
                                hub.handle_timeout(Instant::now(), queues, out);
                            });
                        }
                        () = self.0.timer.notified() => {}
                    }
                }
            }
        }
    }

    /// Tells every connection the server is shutting down.
    pub(crate) fn shutdown(&self) {
        self.with_hub(|hub, out| hub.shutdown(out));
        if let Some(peerjs) = self.peerjs() {
            peerjs.shutdown();
        }
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

/// The connections' queues, as the hub (and the PeerJS endpoint) sees
/// them.
pub(crate) struct Queues<'a>(pub(crate) &'a HashMap<ConnId, Arc<Outbox>>);

impl Backlog for Queues<'_> {
    fn queued(&self, to: ConnId, from: ConnId) -> Queued {
        self.0.get(&to).map(|o| o.queued(from)).unwrap_or_default()
    }
}

/// Queues `frame` for `to`, if it is still connected. False when `to`'s
/// queue is past its hard limit: the client does not read, what waited for
/// it is dropped ([`Outbox::overflowed`]), and the caller closes it as a
/// slow consumer (those last words go whatever their size).
pub(crate) fn queue_frame(
    conns: &HashMap<ConnId, Arc<Outbox>>,
    to: ConnId,
    frame: Frame,
    from: Option<ConnId>,
) -> bool {
    let Some(outbox) = conns.get(&to) else {
        return true;
    };
    if outbox.push(Outbound::Frame(frame), from, false) {
        return true;
    }
    tracing::info!(conn = to, "disconnecting a client too slow to read");
    outbox.overflowed();
    false
}

/// Queues the close of a connection the server has forgotten (whatever
/// its size) as the last thing it sends.
pub(crate) fn queue_close(conns: &mut HashMap<ConnId, Arc<Outbox>>, conn: ConnId, close: Outbound) {
    if let Some(outbox) = conns.remove(&conn) {
        outbox.push(close, None, true);
        outbox.close();
    }
}

impl Shared {
    /// Queues the hub's output on the connections. A connection whose queue
    /// is past its hard limit does not read: the hub closes it as a slow
    /// consumer (it is told so), and its room is told it left. Returns how
    /// many were cut off.
    fn deliver(&mut self, mut out: Vec<Output>) -> usize {
        let mut cut_off = 0;
        let mut more = Vec::new();
        while !out.is_empty() {
            for output in out.drain(..) {
                match output {
                    Output::Send { to, frame, from } => {
                        if !queue_frame(&self.conns, to, frame, from) {
                            cut_off += 1;
                            self.hub.close(
                                to,
                                ErrorCode::SlowConsumer,
                                "you did not read your messages: the server's queue for you is full",
                                Instant::now(),
                                &mut more,
                            );
                        }
                    }
                    Output::Close { conn, reason } => {
                        queue_close(&mut self.conns, conn, Outbound::Close(Some(reason)));
                    }
                    Output::CloseNormally { conn } => {
                        queue_close(&mut self.conns, conn, Outbound::Close(None));
                    }
                }
            }
            std::mem::swap(&mut out, &mut more);
        }
        cut_off
    }
}
