//! Prometheus metrics at `/metrics` (or on `--metrics-addr`), through the
//! `metrics` crate and its Prometheus exporter.
//!
//! Counting stays off the hot path: the hub keeps its own counts (a
//! [`Tally`]: plain additions under the lock it already holds), and so does
//! the relay (atomics); they are copied into the exporter only when
//! `/metrics` is read. What only the transports see (connections by
//! transport, slow consumers, mailbox waits) is counted through handles
//! registered once, at start: an atomic addition each.
//!
//! Names follow Prometheus' conventions (`_total` for counters, `_bytes`
//! and `_seconds` in base units); no label takes unbounded values (no room
//! or peer ids).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use peerchat_cluster::{ClusterStats, ClusterTally};
use peerchat_protocol::ErrorCode;
use peerchat_relay::{RelaySnapshot, RelayStats};
use peerchat_rooms::{Stats, Tally};

/// How a client speaks the signaling protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    /// A WebSocket at `/ws`.
    WebSocket,
    /// HTTP long polling at `/poll`.
    Poll,
    /// A WebSocket of the PeerJS endpoint, at `/peerjs/peerjs`.
    Peerjs,
}

impl Transport {
    const ALL: [Transport; 3] = [Transport::WebSocket, Transport::Poll, Transport::Peerjs];

    fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Poll => "poll",
            Transport::Peerjs => "peerjs",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a mailbox request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MailboxResult {
    /// A text was taken (get) or taken by a reader (set).
    Done,
    /// Nobody came in time.
    TimedOut,
    /// Refused (bad request, too large, queue full, busy).
    Refused,
}

impl MailboxResult {
    fn as_str(self) -> &'static str {
        match self {
            MailboxResult::Done => "done",
            MailboxResult::TimedOut => "timed_out",
            MailboxResult::Refused => "refused",
        }
    }
}

const META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Buckets of the latency histograms, in seconds.
const WAIT_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1200.0,
];

/// What the server's parts count themselves, read when `/metrics` is.
pub(crate) struct Counts<'a> {
    /// The hub's (of the rooms owned here, in a cluster).
    pub(crate) stats: Stats,
    pub(crate) tally: &'a Tally,
    /// The mailbox's waiting requests and queued texts, if it is on.
    pub(crate) mailbox: Option<(usize, usize)>,
    /// This server's place in its cluster, if it is in one.
    pub(crate) cluster: Option<ClusterCounts>,
    /// The PeerJS endpoint's, if it is on.
    pub(crate) peerjs: Option<peerchat_peerjs::Stats>,
}

/// A cluster node's counts and its link to Redis.
pub(crate) struct ClusterCounts {
    pub(crate) stats: ClusterStats,
    pub(crate) tally: ClusterTally,
    /// Whether Redis answered the last command.
    pub(crate) redis_up: bool,
}

/// The server's metrics.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    opened: [Counter; 3],
    open: [Gauge; 3],
    slow_consumers: Counter,
    mailbox_wait: Histogram,
    tls_reloads: [Counter; 2],
    relay: std::sync::OnceLock<Arc<RelayStats>>,
    /// Whether `/metrics` on the main port answers (not when served on
    /// `--metrics-addr`).
    public: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), WAIT_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(KeyName::from_const_str(name), unit, help.into());
        };
        for (name, unit, help) in DESCRIPTIONS {
            describe(name, *unit, help);
        }
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &META)
        };
        let gauge = |name: &'static str, labels: Vec<Label>| {
            recorder.register_gauge(&Key::from_parts(name, labels), &META)
        };
        let by_transport = |t: Transport| vec![Label::new("transport", t.as_str())];
        let opened =
            Transport::ALL.map(|t| counter("peerchat_connections_opened_total", by_transport(t)));
        let open = Transport::ALL.map(|t| gauge("peerchat_connections", by_transport(t)));
        let slow_consumers = counter("peerchat_slow_consumers_total", vec![]);
        let mailbox_wait = recorder.register_histogram(
            &Key::from_parts("peerchat_mailbox_wait_seconds", Vec::<Label>::new()),
            &META,
        );
        let tls_reloads = ["reloaded", "failed"]
            .map(|r| counter("peerchat_tls_reloads_total", vec![Label::new("result", r)]));
        gauge(
            "peerchat_build_info",
            vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
        )
        .set(1.0);
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        gauge("peerchat_start_time_seconds", vec![]).set(started.as_secs_f64());
        Self {
            recorder,
            handle,
            opened,
            open,
            slow_consumers,
            mailbox_wait,
            tls_reloads,
            relay: std::sync::OnceLock::new(),
            public: AtomicBool::new(true),
        }
    }

    /// A signaling connection opened.
    pub(crate) fn connection_opened(&self, transport: Transport) {
        self.opened[transport.index()].increment(1);
        self.open[transport.index()].increment(1.0);
    }

    /// A signaling connection closed.
    pub(crate) fn connection_closed(&self, transport: Transport) {
        self.open[transport.index()].decrement(1.0);
    }

    /// A client too slow to read was cut off.
    pub(crate) fn slow_consumer(&self) {
        self.slow_consumers.increment(1);
    }

    /// The count of clients cut off for not reading, for a transport that
    /// counts them itself (the PeerJS endpoint).
    pub(crate) fn slow_consumers(&self) -> Counter {
        self.slow_consumers.clone()
    }

    /// A mailbox request ended, after waiting `waited`.
    pub(crate) fn mailbox_request(
        &self,
        op: &'static str,
        result: MailboxResult,
        waited: Duration,
    ) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "peerchat_mailbox_requests_total",
                    vec![Label::new("op", op), Label::new("result", result.as_str())],
                ),
                &META,
            )
            .increment(1);
        if result != MailboxResult::Refused {
            self.mailbox_wait.record(waited.as_secs_f64());
        }
    }

    /// The TLS certificate was reloaded, or a reload failed.
    pub fn tls_reload(&self, ok: bool) {
        self.tls_reloads[usize::from(!ok)].increment(1);
    }

    /// Where the relay's counters are read from.
    pub(crate) fn set_relay(&self, stats: Arc<RelayStats>) {
        let _ = self.relay.set(stats);
    }

    /// Serve `/metrics` on the main port, or not (when it has a listener of
    /// its own).
    pub(crate) fn set_public(&self, public: bool) {
        self.public.store(public, Ordering::Relaxed);
    }

    pub(crate) fn public(&self) -> bool {
        self.public.load(Ordering::Relaxed)
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &META)
    }

    /// The text exposition, with the hub's and the relay's counts as of
    /// now (and the mailbox's, the cluster's and the PeerJS endpoint's, if
    /// any).
    pub(crate) fn render(&self, counts: &Counts<'_>) -> String {
        let Counts {
            stats,
            tally,
            mailbox,
            ..
        } = *counts;
        self.gauge("peerchat_rooms", vec![]).set(stats.rooms as f64);
        self.gauge("peerchat_members", vec![])
            .set(stats.members as f64);
        self.gauge("peerchat_members_away", vec![])
            .set(stats.away as f64);
        self.counter("peerchat_joins_total", vec![])
            .absolute(tally.joins);
        self.counter("peerchat_resumes_total", vec![])
            .absolute(tally.resumes);
        self.counter("peerchat_leaves_total", vec![])
            .absolute(tally.leaves);
        self.counter("peerchat_renames_total", vec![])
            .absolute(tally.renames);
        self.counter("peerchat_signals_relayed_total", vec![])
            .absolute(tally.signals);
        self.counter("peerchat_signals_relayed_bytes_total", vec![])
            .absolute(tally.signal_bytes);
        self.counter("peerchat_rate_limited_messages_total", vec![])
            .absolute(tally.rate_limited);
        for (code, n) in &tally.errors {
            self.counter(
                "peerchat_errors_total",
                vec![Label::new("code", code.as_str())],
            )
            .absolute(*n);
        }
        // Every code a client may see is listed, at zero until it is sent.
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::RoomFull,
            ErrorCode::SlowConsumer,
        ] {
            if !tally.errors.contains_key(&code) {
                self.counter(
                    "peerchat_errors_total",
                    vec![Label::new("code", code.as_str())],
                )
                .absolute(0);
            }
        }
        if let Some((waiting, queued)) = mailbox {
            self.gauge("peerchat_mailbox_waiting", vec![])
                .set(waiting as f64);
            self.gauge("peerchat_mailbox_queued", vec![])
                .set(queued as f64);
        }
        if let Some(cluster) = &counts.cluster {
            self.render_cluster(cluster);
        }
        if let Some(peerjs) = &counts.peerjs {
            self.gauge("peerchat_peerjs_clients", vec![])
                .set(peerjs.clients as f64);
            self.gauge("peerchat_peerjs_queued_messages", vec![])
                .set(peerjs.queued_messages as f64);
            self.gauge("peerchat_peerjs_queued_bytes", vec![])
                .set(peerjs.queued_bytes as f64);
        }
        if let Some(relay) = self.relay.get() {
            self.render_relay(&relay.snapshot());
        }
        self.handle.render()
    }

    fn render_cluster(&self, cluster: &ClusterCounts) {
        let ClusterCounts {
            stats,
            tally,
            redis_up,
        } = cluster;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        self.gauge("peerchat_cluster_redis_up", vec![])
            .set(flag(*redis_up));
        self.gauge("peerchat_cluster_serving", vec![])
            .set(flag(stats.serving));
        self.gauge("peerchat_cluster_peers", vec![])
            .set(stats.peers as f64);
        self.gauge("peerchat_cluster_rooms_owned", vec![])
            .set(stats.rooms_owned as f64);
        for (direction, frames, entries) in [
            ("out", tally.frames_out, tally.entries_out),
            ("in", tally.frames_in, tally.entries_in),
        ] {
            let label = || vec![Label::new("direction", direction)];
            self.counter("peerchat_cluster_frames_total", label())
                .absolute(frames);
            self.counter("peerchat_cluster_entries_total", label())
                .absolute(entries);
        }
        for (name, n) in [
            (
                "peerchat_cluster_clients_cut_off_total",
                tally.clients_cut_off,
            ),
            ("peerchat_cluster_lease_lapses_total", tally.lease_lapses),
            ("peerchat_cluster_restarts_total", tally.restarts),
            ("peerchat_cluster_rooms_lost_total", tally.rooms_lost),
            ("peerchat_cluster_peers_gone_total", tally.peers_gone),
            ("peerchat_cluster_link_resets_total", tally.link_resets),
        ] {
            self.counter(name, vec![]).absolute(n);
        }
    }

    fn render_relay(&self, relay: &RelaySnapshot) {
        self.gauge("peerchat_turn_allocations", vec![])
            .set(relay.allocations as f64);
        for (transport, n) in relay.allocated {
            self.counter(
                "peerchat_turn_allocations_total",
                vec![Label::new("transport", transport.as_str())],
            )
            .absolute(n);
        }
        for (reason, n) in [
            ("user_quota", relay.refused_user_quota),
            ("address_quota", relay.refused_address_quota),
            ("total_quota", relay.refused_total_quota),
        ] {
            self.counter(
                "peerchat_turn_allocations_refused_total",
                vec![Label::new("reason", reason)],
            )
            .absolute(n);
        }
        self.counter("peerchat_turn_permissions_refused_total", vec![])
            .absolute(relay.permissions_refused);
        for (direction, n) in [
            ("to_peer", relay.bytes_to_peers),
            ("from_peer", relay.bytes_from_peers),
        ] {
            self.counter(
                "peerchat_turn_relayed_bytes_total",
                vec![Label::new("direction", direction)],
            )
            .absolute(n);
        }
        self.counter("peerchat_turn_dropped_over_bandwidth_total", vec![])
            .absolute(relay.dropped_over_budget);
        self.counter("peerchat_turn_auth_failures_total", vec![])
            .absolute(relay.auth_failures);
    }
}

/// The `# HELP` of every metric.
const DESCRIPTIONS: &[(&str, Option<Unit>, &str)] = &[
    (
        "peerchat_build_info",
        None,
        "The running build: its version, as a label; always 1.",
    ),
    (
        "peerchat_start_time_seconds",
        Some(Unit::Seconds),
        "When the server started, in seconds since the Unix epoch.",
    ),
    (
        "peerchat_connections",
        None,
        "Signaling connections open now, by transport (websocket, poll, peerjs).",
    ),
    (
        "peerchat_connections_opened_total",
        None,
        "Signaling connections opened, by transport.",
    ),
    (
        "peerchat_rooms",
        None,
        "Rooms with at least one member (away members included).",
    ),
    ("peerchat_members", None, "Members connected to a room now."),
    (
        "peerchat_members_away",
        None,
        "Members whose connection was lost, kept for the resume grace period.",
    ),
    (
        "peerchat_joins_total",
        None,
        "Members that joined a room (resumes not counted).",
    ),
    (
        "peerchat_resumes_total",
        None,
        "Members that took their place back with their key.",
    ),
    (
        "peerchat_leaves_total",
        None,
        "Members that left a room, for any reason.",
    ),
    (
        "peerchat_renames_total",
        None,
        "Members that took a new nickname in their room.",
    ),
    (
        "peerchat_signals_relayed_total",
        None,
        "Signals relayed from one member to another.",
    ),
    (
        "peerchat_signals_relayed_bytes_total",
        Some(Unit::Bytes),
        "Bytes of the relayed signal frames.",
    ),
    (
        "peerchat_errors_total",
        None,
        "Error frames sent to clients, by code.",
    ),
    (
        "peerchat_rate_limited_messages_total",
        None,
        "Client messages dropped by the per-connection rate limit.",
    ),
    (
        "peerchat_slow_consumers_total",
        None,
        "Clients cut off because they did not read their messages.",
    ),
    (
        "peerchat_mailbox_waiting",
        None,
        "Mailbox requests waiting now.",
    ),
    (
        "peerchat_mailbox_queued",
        None,
        "Mailbox texts waiting to be read.",
    ),
    (
        "peerchat_mailbox_requests_total",
        None,
        "Mailbox requests, by operation (get, set) and result.",
    ),
    (
        "peerchat_mailbox_wait_seconds",
        Some(Unit::Seconds),
        "How long mailbox requests waited for their other side.",
    ),
    (
        "peerchat_peerjs_clients",
        None,
        "PeerJS ids registered now (each with one connection).",
    ),
    (
        "peerchat_peerjs_queued_messages",
        None,
        "PeerJS messages waiting for an id nobody holds yet.",
    ),
    (
        "peerchat_peerjs_queued_bytes",
        Some(Unit::Bytes),
        "What the waiting PeerJS messages cost, in bytes.",
    ),
    (
        "peerchat_cluster_redis_up",
        None,
        "1 when Redis answered this server's last command, else 0.",
    ),
    (
        "peerchat_cluster_serving",
        None,
        "1 when this server holds a lease it can act on (it serves its rooms), else 0.",
    ),
    (
        "peerchat_cluster_peers",
        None,
        "Other servers this one exchanges entries with.",
    ),
    (
        "peerchat_cluster_rooms_owned",
        None,
        "Rooms this server owns (runs the hub of).",
    ),
    (
        "peerchat_cluster_frames_total",
        None,
        "Frames exchanged with other servers, by direction (out: queued for them, in: received).",
    ),
    (
        "peerchat_cluster_entries_total",
        None,
        "Redis stream entries carrying those frames, by direction.",
    ),
    (
        "peerchat_cluster_clients_cut_off_total",
        None,
        "Clients closed because too much was waiting for their room's server.",
    ),
    (
        "peerchat_cluster_lease_lapses_total",
        None,
        "Times this server's lease may have run out and it stopped serving until renewed.",
    ),
    (
        "peerchat_cluster_restarts_total",
        None,
        "Times this server was declared gone and started over under a new id.",
    ),
    (
        "peerchat_cluster_rooms_lost_total",
        None,
        "Rooms found owned by another server and closed here.",
    ),
    (
        "peerchat_cluster_peers_gone_total",
        None,
        "Other servers seen gone.",
    ),
    (
        "peerchat_cluster_link_resets_total",
        None,
        "Links to another server reset because entries were lost.",
    ),
    (
        "peerchat_tls_reloads_total",
        None,
        "TLS certificate reloads, by result.",
    ),
    (
        "peerchat_turn_allocations",
        None,
        "TURN allocations open now.",
    ),
    (
        "peerchat_turn_allocations_total",
        None,
        "TURN allocations made, by the transport the client used.",
    ),
    (
        "peerchat_turn_allocations_refused_total",
        None,
        "TURN allocations refused, by quota.",
    ),
    (
        "peerchat_turn_permissions_refused_total",
        None,
        "TURN permissions and channel bindings refused for a non-public peer.",
    ),
    (
        "peerchat_turn_relayed_bytes_total",
        Some(Unit::Bytes),
        "Bytes relayed by TURN, by direction.",
    ),
    (
        "peerchat_turn_dropped_over_bandwidth_total",
        None,
        "Datagrams the relay dropped over an allocation's bandwidth.",
    ),
    (
        "peerchat_turn_auth_failures_total",
        None,
        "TURN requests whose credentials were refused.",
    ),
];
