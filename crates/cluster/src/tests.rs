//! Tests without sockets: the wire format, the link's ordering, and whole
//! clusters of nodes sharing a simulated Redis (the same rules as the Lua
//! scripts the server runs) under simulated time, with faults.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peerchat_protocol::ErrorCode;
use peerchat_rooms::{Backlog, ConnId, Departure, Frame, HubConfig, Output, Queued, frame_cost};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::link::{Delivery, Inbound, MAX_HELD};
use crate::wire::{Entry, Message, WireError};
use crate::{BeatResult, ClaimResult, ClusterConfig, Command, Node, NodeId};

const MS: Duration = Duration::from_millis(1);
const ROOM: &str = "cluster-room-aaaaaaaaaaaa";
const ROOM2: &str = "cluster-room-bbbbbbbbbbbb";

// ---------------------------------------------------------------------------
// The wire format.

fn frame(text: &str) -> Frame {
    Frame::from_utf8(Bytes::copy_from_slice(text.as_bytes())).unwrap()
}

fn arb_message() -> impl Strategy<Value = Message> {
    let conn = any::<u64>();
    let text = ".{0,40}";
    prop_oneof![
        (conn, text).prop_map(|(conn, t)| Message::Text {
            conn,
            text: Bytes::from(t)
        }),
        (conn, any::<bool>()).prop_map(|(conn, left)| Message::Gone {
            conn,
            how: if left {
                Departure::Left
            } else {
                Departure::Lost
            }
        }),
        (conn, text, prop::option::of(any::<u64>())).prop_map(|(conn, t, from)| {
            Message::Send {
                conn,
                frame: frame(&t),
                from,
            }
        }),
        (conn, any::<u64>()).prop_map(|(conn, from)| Message::Refused { conn, from }),
        (
            conn,
            prop::sample::select(vec![
                ErrorCode::Replaced,
                ErrorCode::JoinTimeout,
                ErrorCode::ShuttingDown,
                ErrorCode::SlowConsumer,
                ErrorCode::TooLarge,
            ])
        )
            .prop_map(|(conn, reason)| Message::Close { conn, reason }),
        conn.prop_map(|conn| Message::CloseNormally { conn }),
        conn.prop_map(|conn| Message::Joined { conn }),
        (conn, any::<u64>()).prop_map(|(conn, o)| Message::Redirect {
            conn,
            owner: NodeId(o)
        }),
        (conn, "[a-z]{1,20}", 0u64..100_000, prop::option::of(text)).prop_map(
            |(req, id, ms, t)| {
                Message::MailboxOp {
                    req,
                    id: Bytes::from(id),
                    wait: Duration::from_millis(ms),
                    text: t.map(Bytes::from),
                }
            }
        ),
        (conn, text).prop_map(|(req, t)| Message::MailboxDone {
            req,
            result: Ok(peerchat_mailbox::Resolution::Text(Bytes::from(t)))
        }),
        conn.prop_map(|req| Message::MailboxDone {
            req,
            result: Err(peerchat_mailbox::MailboxError::TooLarge { max: 7 })
        }),
        conn.prop_map(|req| Message::MailboxCancel { req }),
        (conn, any::<u64>()).prop_map(|(req, o)| Message::MailboxRedirect {
            req,
            owner: NodeId(o)
        }),
    ]
}

proptest! {
    #[test]
    fn entries_read_back_as_written(
        from in any::<u64>(),
        seq in any::<u64>(),
        messages in prop::collection::vec(arb_message(), 1..8),
    ) {
        let entry = Entry { from: NodeId(from), seq, messages };
        let bytes = entry.encode();
        prop_assert_eq!(Entry::decode(bytes).unwrap(), entry);
    }

    #[test]
    fn damaged_entries_are_refused_without_panicking(
        messages in prop::collection::vec(arb_message(), 1..4),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = Entry { from: NodeId(1), seq: 1, messages }.encode();
        let cut = cut.index(bytes.len());
        prop_assert!(Entry::decode(bytes.slice(..cut)).is_err());
        let mut flipped = bytes.to_vec();
        let at = flip.index(flipped.len());
        flipped[at] ^= 0xff;
        let _ = Entry::decode(Bytes::from(flipped));
        let _ = Entry::decode(Bytes::from(noise));
    }
}

#[test]
fn an_entry_of_another_version_is_refused() {
    let mut bytes = Entry {
        from: NodeId(1),
        seq: 1,
        messages: vec![Message::Joined { conn: 1 }],
    }
    .encode()
    .to_vec();
    bytes[0] = 2;
    assert_eq!(
        Entry::decode(Bytes::from(bytes)),
        Err(WireError::Version(2))
    );
}

// ---------------------------------------------------------------------------
// The link: duplicates dropped, order restored, gaps declared.

fn entries(out: &[Delivery<u64>]) -> Vec<u64> {
    out.iter()
        .filter_map(|d| match d {
            Delivery::Entry(n) => Some(*n),
            Delivery::Gap { .. } => None,
        })
        .collect()
}

#[test]
fn a_link_drops_duplicates_and_restores_order() {
    let now = Instant::now();
    let mut link = Inbound::new(Duration::from_secs(1));
    let mut out = Vec::new();
    for seq in [1, 1, 3, 2, 2, 3, 4] {
        link.receive(seq, seq, now, &mut out);
    }
    assert_eq!(entries(&out), vec![1, 2, 3, 4]);
    assert_eq!(link.next_deadline(), None);
}

#[test]
fn a_link_declares_a_gap_once_the_wait_is_over() {
    let now = Instant::now();
    let wait = Duration::from_secs(1);
    let mut link = Inbound::new(wait);
    let mut out = Vec::new();
    link.receive(1, 1, now, &mut out);
    link.receive(4, 4, now, &mut out);
    link.receive(5, 5, now + MS, &mut out);
    assert_eq!(link.next_deadline(), Some(now + wait));
    link.handle_timeout(now + wait - MS, &mut out);
    assert_eq!(entries(&out), vec![1]);
    link.handle_timeout(now + wait, &mut out);
    assert_eq!(
        out,
        vec![
            Delivery::Entry(1),
            Delivery::Gap { from: 2, to: 4 },
            Delivery::Entry(4),
            Delivery::Entry(5)
        ]
    );
    // The lost ones, arriving late, are dropped.
    link.receive(2, 2, now + wait, &mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(link.expected(), 6);
}

#[test]
fn a_link_holds_a_bounded_number_of_entries() {
    let now = Instant::now();
    let mut link = Inbound::new(Duration::from_secs(1));
    let mut out = Vec::new();
    for seq in 2..=(MAX_HELD as u64 + 2) {
        link.receive(seq, seq, now, &mut out);
    }
    assert_eq!(out[0], Delivery::Gap { from: 1, to: 2 });
    assert_eq!(entries(&out).len(), MAX_HELD + 1);
    assert_eq!(link.held(), 0);
}

proptest! {
    /// Whatever the network does to entries 1..=n (repeats, reorders within
    /// the wait, loses some), each arrives at most once, in increasing
    /// order; every entry that arrived is let through unless a gap was
    /// declared past it first; and the gaps cover exactly the entries
    /// never let through.
    #[test]
    fn a_link_lets_each_entry_through_once_in_order(
        n in 1u64..60,
        lost in prop::collection::hash_set(1u64..60, 0..10),
        copies in prop::collection::vec(1usize..3, 60),
        delays in prop::collection::vec(0u64..1500, 60),
    ) {
        let start = Instant::now();
        let wait = Duration::from_millis(1000);
        let mut arrivals: Vec<(u64, u64)> = Vec::new();
        for seq in 1..=n {
            if lost.contains(&seq) {
                continue;
            }
            for c in 0..copies[seq as usize - 1] {
                arrivals.push((seq * 10 + delays[(seq as usize + c) % 60], seq));
            }
        }
        arrivals.sort();
        let mut link = Inbound::new(wait);
        let mut out = Vec::new();
        for (at, seq) in &arrivals {
            let now = start + Duration::from_millis(*at);
            link.handle_timeout(now, &mut out);
            link.receive(*seq, *seq, now, &mut out);
        }
        link.handle_timeout(start + Duration::from_secs(3600), &mut out);
        let mut next = 1;
        let mut seen = HashSet::new();
        for d in &out {
            match d {
                Delivery::Entry(seq) => {
                    prop_assert_eq!(*seq, next);
                    prop_assert!(seen.insert(*seq));
                    next += 1;
                }
                Delivery::Gap { from, to } => {
                    prop_assert_eq!(*from, next);
                    prop_assert!(to > from);
                    next = *to;
                }
            }
        }
        // Everything after the last arrival is accounted for.
        let last_arrived = arrivals.iter().map(|(_, s)| *s).max().unwrap_or(0);
        prop_assert_eq!(next, last_arrived + 1);
        // An entry that arrived is skipped only when it came more than the
        // wait after an entry ahead of it.
        for seq in 1..=last_arrived {
            if lost.contains(&seq) || seen.contains(&seq) {
                continue;
            }
            let came = arrivals.iter().filter(|(_, s)| *s == seq).map(|(a, _)| *a).min().unwrap();
            let ahead = arrivals.iter().filter(|(_, s)| *s > seq).map(|(a, _)| *a).min().unwrap();
            prop_assert!(came >= ahead + 1000, "entry {} came at {} ms, the first ahead at {} ms", seq, came, ahead);
        }
        prop_assert_eq!(link.held(), 0);
    }
}

// ---------------------------------------------------------------------------
// Whole clusters.

/// Redis as the server's scripts use it (see `crates/server/src/cluster.rs`):
/// a hash of leases by node, room owners, one inbox per node, and the clock
/// of the last script run, so that time Redis was away for does not count
/// against anyone's lease.
#[derive(Debug, Default)]
struct SimRedis {
    /// Lease expiry (ms on Redis's clock) per node.
    nodes: BTreeMap<NodeId, u64>,
    rooms: HashMap<Arc<str>, NodeId>,
    inboxes: HashMap<NodeId, VecDeque<Bytes>>,
    last_touch: Option<u64>,
}

impl SimRedis {
    fn touch(&mut self, now: u64, quiet: u64) {
        if let Some(last) = self.last_touch {
            let gap = now.saturating_sub(last);
            if gap > quiet {
                for expiry in self.nodes.values_mut() {
                    *expiry += gap;
                }
            }
        }
        self.last_touch = Some(now);
    }

    fn declare_dead(&mut self, node: NodeId) {
        self.nodes.remove(&node);
        self.inboxes.remove(&node);
    }

    fn beat(
        &mut self,
        node: NodeId,
        register: bool,
        now: u64,
        lease: u64,
        quiet: u64,
    ) -> BeatResult {
        self.touch(now, quiet);
        if register {
            self.inboxes.entry(node).or_default();
        } else if !self.nodes.contains_key(&node) {
            return BeatResult::Dead;
        }
        self.nodes.insert(node, now + lease);
        let expired: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, e)| **e <= now)
            .map(|(n, _)| *n)
            .collect();
        for n in expired {
            self.declare_dead(n);
        }
        BeatResult::Alive(self.nodes.keys().copied().collect())
    }

    fn claim(&mut self, node: NodeId, room: &Arc<str>, now: u64, quiet: u64) -> ClaimResult {
        self.touch(now, quiet);
        if let Some(owner) = self.rooms.get(room).copied() {
            if owner == node {
                return ClaimResult::Owner(node);
            }
            match self.nodes.get(&owner) {
                Some(e) if *e > now => return ClaimResult::Owner(owner),
                Some(_) => self.declare_dead(owner),
                None => {}
            }
        }
        if self.nodes.get(&node).is_none_or(|e| *e <= now) {
            return ClaimResult::NotValid;
        }
        self.rooms.insert(room.clone(), node);
        ClaimResult::Owner(node)
    }
}

#[derive(Debug, Default)]
struct ClientLog {
    /// What the client read.
    frames: Vec<Value>,
    closed: Option<Option<ErrorCode>>,
    /// Members this connection knows of, from its `joined` and since.
    known: HashSet<String>,
    /// The client does not read: what it is sent waits in its queue at
    /// the server (as the transport's `Outbox` holds it).
    stalled: bool,
    /// Its queue: each frame's cost, the sender of a relayed signal, and
    /// the frame.
    queue: VecDeque<(usize, Option<ConnId>, Value)>,
}

impl ClientLog {
    fn queued(&self) -> usize {
        self.queue.iter().map(|(cost, _, _)| cost).sum()
    }
}

/// The clients' queues at node `.1`, as its transport tells its node.
struct SimQueues<'a>(&'a BTreeMap<(usize, ConnId), ClientLog>, usize);

impl Backlog for SimQueues<'_> {
    fn queued(&self, to: ConnId, from: ConnId) -> Queued {
        let Some(log) = self.0.get(&(self.1, to)) else {
            return Queued::default();
        };
        Queued {
            total: log.queued(),
            from_sender: log
                .queue
                .iter()
                .filter(|(_, f, _)| *f == Some(from))
                .map(|(cost, _, _)| cost)
                .sum(),
        }
    }
}

/// The most a message may be, for the queues' hard limit.
const MAX_MESSAGE: usize = 65_536;

struct SimNode {
    node: Node,
    alive: bool,
    /// Cut off from Redis: its commands fail, its inbox is not read.
    cut: bool,
    next_conn: ConnId,
}

/// Nodes, their clients and Redis, under simulated time.
struct Sim {
    start: Instant,
    now: Instant,
    config: ClusterConfig,
    hub: HubConfig,
    redis: SimRedis,
    /// Commands sent while Redis is paused, run when it resumes.
    paused: Option<VecDeque<(usize, Command)>>,
    nodes: Vec<SimNode>,
    clients: BTreeMap<(usize, ConnId), ClientLog>,
    /// Every `peer_left` any client got, as (receiving client, id).
    violations: Vec<String>,
    /// Inbox entries delivered twice when set.
    duplicate: bool,
    /// Clients read nothing for now (see [`Sim::burst`]).
    reads_held: bool,
}

const LEASE: Duration = Duration::from_millis(3000);
const GRACE: Duration = Duration::from_secs(20);

impl Sim {
    fn new(n: usize) -> Self {
        Self::with_hub(
            n,
            HubConfig {
                room_capacity: 4,
                resume_grace: GRACE,
                ..HubConfig::default()
            },
        )
    }

    fn with_hub(n: usize, hub: HubConfig) -> Self {
        Self::build(n, hub, Self::config())
    }

    fn config() -> ClusterConfig {
        ClusterConfig {
            lease: LEASE,
            beat: Duration::from_millis(500),
            ..ClusterConfig::default()
        }
    }

    fn build(n: usize, hub: HubConfig, config: ClusterConfig) -> Self {
        let start = Instant::now();
        let mut sim = Self {
            start,
            now: start,
            config,
            hub,
            redis: SimRedis::default(),
            paused: None,
            nodes: Vec::new(),
            clients: BTreeMap::new(),
            violations: Vec::new(),
            duplicate: false,
            reads_held: false,
        };
        for i in 0..n {
            sim.add_node(i as u64 + 1);
        }
        sim.run(Duration::from_millis(10));
        sim
    }

    fn add_node(&mut self, seed: u64) -> usize {
        let node = Node::new(self.config.clone(), self.hub.clone(), seed, self.now);
        self.nodes.push(SimNode {
            node,
            alive: true,
            cut: false,
            next_conn: 1,
        });
        self.nodes.len() - 1
    }

    fn ms(&self) -> u64 {
        self.now.duration_since(self.start).as_millis() as u64 + 1_000_000
    }

    /// Runs commands and delivers entries until nothing moves.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                if !self.nodes[i].alive {
                    continue;
                }
                while let Some(command) = self.nodes[i].node.poll_command() {
                    busy = true;
                    if self.nodes[i].cut {
                        self.fail(i, command);
                        continue;
                    }
                    match &mut self.paused {
                        Some(queue) => queue.push_back((i, command)),
                        None => self.execute(i, command),
                    }
                }
            }
            if self.paused.is_none() {
                for i in 0..self.nodes.len() {
                    if !self.nodes[i].alive || self.nodes[i].cut {
                        continue;
                    }
                    let id = self.nodes[i].node.id();
                    let entries: Vec<Bytes> = self
                        .redis
                        .inboxes
                        .get_mut(&id)
                        .map(|q| q.drain(..).collect())
                        .unwrap_or_default();
                    for entry in entries {
                        busy = true;
                        let copies = if self.duplicate { 2 } else { 1 };
                        for _ in 0..copies {
                            let mut out = Vec::new();
                            let queues = SimQueues(&self.clients, i);
                            self.nodes[i]
                                .node
                                .receive(entry.clone(), self.now, &queues, &mut out);
                            self.outputs(i, out);
                        }
                    }
                }
            }
            if !busy {
                return;
            }
        }
        panic!("the cluster does not settle");
    }

    fn execute(&mut self, i: usize, command: Command) {
        let now_ms = self.ms();
        let lease = self.config.lease.as_millis() as u64;
        let quiet = 2 * self.config.beat.as_millis() as u64;
        let mut out = Vec::new();
        match command {
            Command::Beat {
                node,
                register,
                sent_at,
            } => {
                let result = self.redis.beat(node, register, now_ms, lease, quiet);
                if self.nodes[i].alive {
                    let queues = SimQueues(&self.clients, i);
                    self.nodes[i]
                        .node
                        .beat_done(node, sent_at, result, self.now, &queues, &mut out);
                }
            }
            Command::Claim { node, room } => {
                let result = self.redis.claim(node, &room, now_ms, quiet);
                if self.nodes[i].alive {
                    let queues = SimQueues(&self.clients, i);
                    self.nodes[i]
                        .node
                        .claim_done(node, &room, result, self.now, &queues, &mut out);
                }
            }
            Command::Release { node, room } => {
                if self.redis.rooms.get(&room) == Some(&node) {
                    self.redis.rooms.remove(&room);
                }
            }
            Command::Refresh { node, rooms } => {
                let lost: Vec<Arc<str>> = rooms
                    .into_iter()
                    .filter(|r| self.redis.rooms.get(r) != Some(&node))
                    .collect();
                if self.nodes[i].alive {
                    self.nodes[i]
                        .node
                        .rooms_lost(node, &lost, self.now, &mut out);
                }
            }
            Command::Send { to, seq, entry } => {
                if let Some(inbox) = self.redis.inboxes.get_mut(&to) {
                    inbox.push_back(entry);
                }
                if self.nodes[i].alive {
                    self.nodes[i].node.sent(to, seq);
                }
            }
            Command::Deregister { node } => self.redis.declare_dead(node),
        }
        self.outputs(i, out);
    }

    /// A command of a node cut off from Redis fails.
    fn fail(&mut self, i: usize, command: Command) {
        let mut out = Vec::new();
        let node = &mut self.nodes[i].node;
        let queues = SimQueues(&self.clients, i);
        match command {
            Command::Beat {
                node: id, sent_at, ..
            } => {
                let result = BeatResult::Failed;
                node.beat_done(id, sent_at, result, self.now, &queues, &mut out);
            }
            Command::Claim { node: id, room } => {
                let result = ClaimResult::Failed;
                node.claim_done(id, &room, result, self.now, &queues, &mut out);
            }
            _ => {}
        }
        self.outputs(i, out);
    }

    fn outputs(&mut self, i: usize, out: Vec<Output>) {
        for output in out {
            match output {
                Output::Send { to, frame, from } => {
                    let value: Value = serde_json::from_str(frame.as_str()).unwrap();
                    let log = self.clients.entry((i, to)).or_default();
                    if log.closed.is_some() {
                        self.violations
                            .push(format!("frame after close to {i}/{to}: {value}"));
                    }
                    if log.stalled || self.reads_held {
                        let cost = frame_cost(frame.len());
                        if log.queued() + cost <= self.hub.queue_hard_limit(MAX_MESSAGE) {
                            log.queue.push_back((cost, from, value));
                            continue;
                        }
                        // As the transport does: the queue overflowed,
                        // what waits is dropped, and the client is closed
                        // as a slow consumer (its last words go through).
                        log.queue.clear();
                        log.stalled = false;
                        self.violations
                            .push(format!("{i}/{to} cut off as a slow consumer"));
                        let mut more = Vec::new();
                        self.nodes[i].node.close(
                            to,
                            ErrorCode::SlowConsumer,
                            "you did not read",
                            self.now,
                            &mut more,
                        );
                        self.outputs(i, more);
                        continue;
                    }
                    self.read_frame((i, to), value);
                }
                Output::Close { conn, reason } => {
                    self.close_client(i, conn, Some(reason));
                }
                Output::CloseNormally { conn } => self.close_client(i, conn, None),
            }
        }
    }

    /// The client reads a frame.
    fn read_frame(&mut self, (i, to): (usize, ConnId), value: Value) {
        let log = self.clients.entry((i, to)).or_default();
        match value["type"].as_str() {
            Some("joined") => {
                log.known = value["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["id"].as_str().unwrap().to_owned())
                    .collect();
            }
            Some("peer_joined") => {
                log.known
                    .insert(value["peer"]["id"].as_str().unwrap().to_owned());
            }
            Some("peer_left") => {
                let id = value["id"].as_str().unwrap();
                if !log.known.remove(id) {
                    self.violations
                        .push(format!("{i}/{to} told {id} left, not knowing it"));
                }
            }
            _ => {}
        }
        log.frames.push(value);
    }

    /// The client stops reading (or starts again, reading what waits).
    fn stall(&mut self, client: (usize, ConnId), stalled: bool) {
        self.clients.get_mut(&client).unwrap().stalled = stalled;
        if !stalled {
            self.read(client, usize::MAX);
        }
    }

    /// The client reads up to `n` frames of its queue.
    fn read(&mut self, client: (usize, ConnId), n: usize) {
        for _ in 0..n {
            let Some((_, _, value)) = self.clients.get_mut(&client).unwrap().queue.pop_front()
            else {
                return;
            };
            self.read_frame(client, value);
        }
    }

    fn close_client(&mut self, i: usize, conn: ConnId, reason: Option<ErrorCode>) {
        let log = self.clients.entry((i, conn)).or_default();
        if log.closed.is_some() {
            self.violations.push(format!("{i}/{conn} closed twice"));
        }
        log.closed = Some(reason);
        // The transport ends the connection and tells the node.
        let mut out = Vec::new();
        if self.nodes[i].alive {
            self.nodes[i]
                .node
                .disconnect(conn, Departure::Lost, self.now, &mut out);
        }
        assert!(
            out.is_empty(),
            "a closed connection's end changes nothing: {out:?}"
        );
    }

    /// Lets `d` of simulated time pass, waking nodes at their deadlines.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        self.settle();
        let mut spins = 0;
        loop {
            spins += 1;
            assert!(spins < 100_000, "a node wants waking at once, forever");
            let next = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .map(|n| n.node.next_deadline())
                .min()
                .unwrap_or(end)
                .max(self.now);
            if next > end {
                self.now = end;
                break;
            }
            self.now = next;
            for i in 0..self.nodes.len() {
                if self.nodes[i].alive && self.nodes[i].node.next_deadline() <= self.now {
                    let mut out = Vec::new();
                    let queues = SimQueues(&self.clients, i);
                    self.nodes[i]
                        .node
                        .handle_timeout(self.now, &queues, &mut out);
                    self.outputs(i, out);
                }
            }
            self.settle();
            self.check_no_split();
        }
        self.settle();
        self.check_no_split();
    }

    /// No room is served by two nodes at once.
    fn check_no_split(&mut self) {
        let mut serving: HashMap<String, usize> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.alive || !n.node.stats().serving {
                continue;
            }
            for room in [ROOM, ROOM2] {
                if n.node.owns(room) {
                    if let Some(j) = serving.insert(room.to_owned(), i) {
                        self.violations
                            .push(format!("{room} served by nodes {j} and {i} at once"));
                    }
                }
            }
        }
    }

    fn connect(&mut self, i: usize) -> (usize, ConnId) {
        let conn = self.nodes[i].next_conn;
        self.nodes[i].next_conn += 1;
        self.nodes[i].node.connect(conn, self.now);
        self.clients.insert((i, conn), ClientLog::default());
        (i, conn)
    }

    fn send(&mut self, client: (usize, ConnId), msg: Value) {
        self.send_unsettled(client, msg);
        self.settle();
    }

    /// Sends `msgs` from `client` in a burst: what they send to another
    /// server goes in one entry, and nobody reads until the servers have
    /// settled, as a real server's connections cannot write out what was
    /// queued for them while it handles the frames of one read (or one
    /// inbox read) under its lock.
    fn burst(&mut self, client: (usize, ConnId), msgs: impl IntoIterator<Item = Value>) {
        self.reads_held = true;
        for msg in msgs {
            self.send_unsettled(client, msg);
        }
        self.settle();
        self.reads_held = false;
        let readers: Vec<(usize, ConnId)> = self
            .clients
            .iter()
            .filter(|(_, log)| !log.stalled && log.closed.is_none())
            .map(|(client, _)| *client)
            .collect();
        for reader in readers {
            self.read(reader, usize::MAX);
        }
    }

    /// Sends without letting anything move between servers.
    fn send_unsettled(&mut self, (i, conn): (usize, ConnId), msg: Value) {
        let mut out = Vec::new();
        let queues = SimQueues(&self.clients, i);
        self.nodes[i]
            .node
            .handle_text(conn, &msg.to_string(), self.now, &queues, &mut out);
        self.outputs(i, out);
    }

    fn lose(&mut self, (i, conn): (usize, ConnId)) {
        let mut out = Vec::new();
        self.nodes[i]
            .node
            .disconnect(conn, Departure::Lost, self.now, &mut out);
        self.outputs(i, out);
        self.clients.get_mut(&(i, conn)).unwrap().closed = Some(Some(ErrorCode::Unknown));
        self.settle();
    }

    /// Connects to node `i` and joins; returns the client and its `joined`.
    fn join(
        &mut self,
        i: usize,
        room: &str,
        nick: &str,
        key: Option<&str>,
    ) -> ((usize, ConnId), Value) {
        let client = self.connect(i);
        let mut msg = json!({"type":"join","v":2,"room":room,"nick":nick});
        if let Some(key) = key {
            msg["key"] = json!(key);
        }
        self.send(client, msg);
        let first = self.frames(client).first().cloned().unwrap_or(Value::Null);
        (client, first)
    }

    fn frames(&self, client: (usize, ConnId)) -> &[Value] {
        &self.clients[&client].frames
    }

    fn of_type(&self, client: (usize, ConnId), kind: &str) -> Vec<Value> {
        self.frames(client)
            .iter()
            .filter(|f| f["type"] == kind)
            .cloned()
            .collect()
    }

    fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        for ((n, _), log) in self.clients.iter_mut() {
            if *n == i && log.closed.is_none() {
                log.closed = Some(Some(ErrorCode::Unknown));
            }
        }
    }

    fn owner(&self, room: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.alive && n.node.owns(room))
    }

    fn pause_redis(&mut self) {
        self.paused.get_or_insert_with(VecDeque::new);
    }

    fn resume_redis(&mut self) {
        if let Some(queue) = self.paused.take() {
            for (i, command) in queue {
                self.execute(i, command);
            }
        }
        self.settle();
    }

    fn assert_fine(&self) {
        assert!(self.violations.is_empty(), "{:#?}", self.violations);
    }
}

fn id_of(joined: &Value) -> String {
    joined["you"]["id"].as_str().unwrap().to_owned()
}

fn nicks(joined: &Value) -> Vec<String> {
    joined["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["nick"].as_str().unwrap().to_owned())
        .collect()
}

const KEY_A: &str = "key-aaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "key-bbbbbbbbbbbbbbbbbbbbbb";
const KEY_C: &str = "key-cccccccccccccccccccccc";
const KEY_D: &str = "key-dddddddddddddddddddddd";

#[test]
fn members_on_two_nodes_share_one_room() {
    let mut sim = Sim::new(2);
    let (a, ja) = sim.join(0, ROOM, "alice", Some(KEY_A));
    assert_eq!(ja["type"], "joined", "{ja}");
    assert_eq!(sim.owner(ROOM), Some(0));
    let (b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    assert_eq!(jb["type"], "joined", "{jb}");
    assert_eq!(nicks(&jb), vec!["alice"]);
    assert_eq!(sim.of_type(a, "peer_joined").len(), 1);
    // Signals cross, with the sender stamped by the owner.
    sim.send(
        b,
        json!({"type":"signal","to":id_of(&ja),"payload":{"n":1}}),
    );
    let got = sim.of_type(a, "signal");
    assert_eq!(
        got,
        vec![json!({"type":"signal","from":id_of(&jb),"payload":{"n":1}})]
    );
    sim.send(
        a,
        json!({"type":"signal","to":id_of(&jb),"payload":{"n":2}}),
    );
    assert_eq!(sim.of_type(b, "signal").len(), 1);
    // The owner's hub counted both signals; each node counted the frames
    // it exchanged with the other (bob's join and signal one way, what
    // bob was sent the other) and the entries that carried them.
    assert_eq!(sim.nodes[0].node.hub_tally().signals, 2);
    assert_eq!(sim.nodes[1].node.hub_tally().signals, 0);
    let (t0, t1) = (*sim.nodes[0].node.tally(), *sim.nodes[1].node.tally());
    assert_eq!(t1.frames_out, 2);
    assert_eq!(t0.frames_in, 2);
    assert_eq!(t0.frames_out, t1.frames_in);
    assert!(t1.frames_in >= 2, "{t1:?}");
    assert!(t1.entries_out >= 1 && t1.entries_out <= t1.frames_out);
    assert_eq!(t0.entries_in, t1.entries_out);
    assert_eq!(t0.lease_lapses + t0.restarts + t0.peers_gone, 0);
    // Nicknames are unique across nodes, and capacity counts everyone.
    let (_, refused) = sim.join(1, ROOM, "ALICE", None);
    assert_eq!(refused["code"], "nick_taken");
    sim.join(0, ROOM, "carol", None);
    sim.join(1, ROOM, "dave", None);
    let (_, full) = sim.join(1, ROOM, "erin", None);
    assert_eq!(full["code"], "room_full");
    // Leaving from a non-owner node tells everyone at once, once.
    sim.send(b, json!({"type":"leave"}));
    assert_eq!(sim.clients[&b].closed, Some(None));
    assert_eq!(sim.of_type(a, "peer_left").len(), 1);
    sim.run(GRACE * 2);
    assert_eq!(sim.of_type(a, "peer_left").len(), 1);
    sim.assert_fine();
}

#[test]
fn a_join_refused_on_one_room_may_go_to_another_room_elsewhere() {
    let mut sim = Sim::new(2);
    sim.join(0, ROOM, "alice", None);
    sim.join(1, ROOM2, "zed", None);
    assert_eq!(sim.owner(ROOM2), Some(1));
    // A client of node 1 is refused in ROOM (owned by 0), then joins ROOM2
    // (owned by 1) on the same connection.
    let c = sim.connect(1);
    sim.send(c, json!({"type":"join","v":2,"room":ROOM,"nick":"alice"}));
    assert_eq!(sim.frames(c)[0]["code"], "nick_taken");
    sim.send(c, json!({"type":"join","v":2,"room":ROOM2,"nick":"alice"}));
    assert_eq!(sim.frames(c)[1]["type"], "joined");
    assert_eq!(nicks(&sim.frames(c)[1]), vec!["zed"]);
    // Its place at node 0 was given up: ROOM has one member.
    let (_, j) = sim.join(1, ROOM, "bob", None);
    assert_eq!(nicks(&j), vec!["alice"]);
    sim.assert_fine();
}

#[test]
fn the_join_deadline_spares_members_of_remote_rooms() {
    let mut sim = Sim::new(2);
    sim.join(0, ROOM, "alice", None);
    let (b, _) = sim.join(1, ROOM, "bob", None);
    let idle = sim.connect(1);
    let mut out = Vec::new();
    sim.nodes[1].node.join_deadline(b.1, sim.now, &mut out);
    assert!(out.is_empty());
    assert!(sim.nodes[1].node.is_joined(b.1));
    sim.nodes[1].node.join_deadline(idle.1, sim.now, &mut out);
    sim.outputs(1, out);
    assert_eq!(sim.frames(idle)[0]["code"], "join_timeout");
    sim.assert_fine();
}

#[test]
fn a_non_owner_node_killed_its_members_resume_elsewhere_unnoticed() {
    let mut sim = Sim::new(3);
    let (a, ja) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (_b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    let (_c, _) = sim.join(1, ROOM, "carol", None);
    assert_eq!(sim.owner(ROOM), Some(0));
    sim.kill(1);
    // Bob reconnects to node 2 at once and resumes; node 0 has not even
    // noticed node 1 is gone: bob's old connection there is replaced.
    let (b2, jb2) = sim.join(2, ROOM, "bob", Some(KEY_B));
    assert_eq!(jb2["type"], "joined", "{jb2}");
    assert_eq!(jb2["resumed"], true);
    assert_eq!(id_of(&jb2), id_of(&jb));
    // Once node 1's lease runs out, carol (no key) leaves, once; bob stays.
    sim.run(LEASE * 3);
    let left = sim.of_type(a, "peer_left");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0]["id"], id_of(&jb));
    sim.send(b2, json!({"type":"signal","to":id_of(&ja),"payload":{}}));
    assert_eq!(sim.of_type(a, "signal").len(), 1);
    sim.run(GRACE * 2);
    assert_eq!(sim.of_type(a, "peer_left").len(), 1);
    sim.assert_fine();
}

#[test]
fn a_member_on_a_killed_node_that_does_not_come_back_leaves_once_after_the_grace() {
    let mut sim = Sim::new(2);
    let (a, _) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (_, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    sim.kill(1);
    sim.run(LEASE * 2);
    assert!(sim.of_type(a, "peer_left").is_empty());
    // A newcomer sees bob, away.
    let (_, jc) = sim.join(0, ROOM, "carol", None);
    assert_eq!(nicks(&jc), vec!["alice", "bob"]);
    sim.run(GRACE);
    assert_eq!(
        sim.of_type(a, "peer_left"),
        vec![json!({"type":"peer_left","id":id_of(&jb)})]
    );
    sim.run(GRACE);
    assert_eq!(sim.of_type(a, "peer_left").len(), 1);
    sim.assert_fine();
}

#[test]
fn the_owner_killed_its_room_moves_and_nobody_sees_a_leave() {
    let mut sim = Sim::new(3);
    let (_a, ja) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    let (c, jc) = sim.join(2, ROOM, "carol", Some(KEY_C));
    assert_eq!(sim.owner(ROOM), Some(0));
    sim.kill(0);
    // Within a lease or so, bob's and carol's nodes close them as an outage.
    sim.run(LEASE * 2);
    for client in [b, c] {
        assert_eq!(
            sim.clients[&client].closed,
            Some(Some(ErrorCode::ShuttingDown))
        );
    }
    // They join again (carol through node 1); the first claims the room.
    let (b2, jb2) = sim.join(1, ROOM, "bob", Some(KEY_B));
    assert_eq!(jb2["type"], "joined");
    assert_eq!(id_of(&jb2), id_of(&jb));
    assert_eq!(sim.owner(ROOM), Some(1));
    let (_c2, jc2) = sim.join(1, ROOM, "carol", Some(KEY_C));
    assert_eq!(id_of(&jc2), id_of(&jc));
    assert_eq!(nicks(&jc2), vec!["bob"]);
    let (_a2, ja2) = sim.join(2, ROOM, "alice", Some(KEY_A));
    assert_eq!(id_of(&ja2), id_of(&ja));
    assert_eq!(nicks(&ja2), vec!["bob", "carol"]);
    // Nobody was told anyone left, then or later.
    sim.run(GRACE * 2);
    for client in [b, c, b2] {
        assert!(sim.of_type(client, "peer_left").is_empty());
    }
    sim.assert_fine();
}

#[test]
fn a_join_waiting_on_a_dead_owner_goes_to_the_next_one() {
    let mut sim = Sim::new(2);
    sim.join(0, ROOM, "alice", Some(KEY_A));
    sim.kill(0);
    // Node 1 still sees node 0's lease: the join is forwarded there, and
    // gets nothing until the lease runs out; then node 1 takes the room.
    let (b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    assert_eq!(jb, Value::Null);
    sim.run(LEASE * 2);
    assert_eq!(sim.frames(b)[0]["type"], "joined");
    assert_eq!(sim.owner(ROOM), Some(1));
    sim.assert_fine();
}

#[test]
fn redis_paused_past_the_lease_freezes_rooms_and_loses_nothing() {
    let mut sim = Sim::new(2);
    let (a, ja) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    let (c, jc) = sim.join(0, ROOM, "carol", Some(KEY_C));
    sim.pause_redis();
    sim.run(LEASE * 3);
    assert!(sim.nodes.iter().all(|n| !n.node.stats().serving));
    assert!(sim.nodes.iter().all(|n| n.node.tally().lease_lapses == 1));
    // Signals sent meanwhile wait; so does a leave.
    sim.send(
        c,
        json!({"type":"signal","to":id_of(&ja),"payload":{"n":1}}),
    );
    sim.send(
        a,
        json!({"type":"signal","to":id_of(&jb),"payload":{"n":2}}),
    );
    sim.send(c, json!({"type":"leave"}));
    assert!(sim.of_type(a, "signal").is_empty());
    sim.resume_redis();
    sim.run(Duration::from_secs(2));
    assert!(sim.nodes.iter().all(|n| n.node.stats().serving));
    assert_eq!(sim.of_type(a, "signal").len(), 1);
    assert_eq!(sim.of_type(b, "signal").len(), 1);
    // Carol's leave is told once; nobody else left or was closed.
    assert_eq!(
        sim.of_type(a, "peer_left"),
        vec![json!({"type":"peer_left","id":id_of(&jc)})]
    );
    assert_eq!(sim.of_type(b, "peer_left").len(), 1);
    assert_eq!(sim.clients[&a].closed, None);
    assert_eq!(sim.clients[&b].closed, None);
    assert_eq!(sim.owner(ROOM), Some(0));
    sim.run(GRACE * 2);
    assert_eq!(sim.of_type(a, "peer_left").len(), 1);
    sim.assert_fine();
}

#[test]
fn a_node_cut_off_from_redis_stops_serving_and_its_rooms_move_without_a_split() {
    let mut sim = Sim::new(2);
    let (a, ja) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (b, _) = sim.join(1, ROOM, "bob", Some(KEY_B));
    // Node 0 loses Redis; node 1 keeps it.
    sim.nodes[0].cut = true;
    sim.run(LEASE * 2);
    // Node 1 declared node 0 gone and closed bob; bob rejoins at node 1,
    // which takes the room.
    assert_eq!(sim.clients[&b].closed, Some(Some(ErrorCode::ShuttingDown)));
    let (b2, jb2) = sim.join(1, ROOM, "bob", Some(KEY_B));
    assert_eq!(jb2["type"], "joined");
    assert!(sim.nodes[1].node.owns(ROOM));
    // Node 0 stopped serving before that (its lease ran out), holding
    // alice's signal; when it reaches Redis again it learns it is gone,
    // closes alice, and starts over under a new id.
    assert!(!sim.nodes[0].node.stats().serving);
    let old = sim.nodes[0].node.id();
    sim.send(a, json!({"type":"signal","to":id_of(&jb2),"payload":{}}));
    sim.nodes[0].cut = false;
    sim.run(Duration::from_secs(2));
    assert_ne!(sim.nodes[0].node.id(), old);
    assert_eq!(sim.nodes[0].node.tally().restarts, 1);
    assert_eq!(sim.nodes[1].node.tally().peers_gone, 1);
    assert_eq!(sim.nodes[1].node.tally().restarts, 0);
    assert_eq!(sim.clients[&a].closed, Some(Some(ErrorCode::ShuttingDown)));
    assert!(!sim.nodes[0].node.owns(ROOM));
    // Alice comes back through node 0 and joins bob's room.
    let (_, ja2) = sim.join(0, ROOM, "alice", Some(KEY_A));
    assert_eq!(id_of(&ja2), id_of(&ja));
    assert_eq!(nicks(&ja2), vec!["bob"]);
    assert!(sim.of_type(b2, "peer_left").is_empty());
    sim.assert_fine();
}

#[test]
fn redis_losing_its_data_makes_every_node_start_over_and_rooms_recover() {
    let mut sim = Sim::new(2);
    let (a, _) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (b, _) = sim.join(1, ROOM, "bob", Some(KEY_B));
    let ids: Vec<NodeId> = sim.nodes.iter().map(|n| n.node.id()).collect();
    sim.redis = SimRedis::default();
    sim.run(Duration::from_secs(2));
    for (n, old) in sim.nodes.iter().zip(ids) {
        assert_ne!(n.node.id(), old);
    }
    for client in [a, b] {
        assert_eq!(
            sim.clients[&client].closed,
            Some(Some(ErrorCode::ShuttingDown))
        );
    }
    let (_, ja) = sim.join(1, ROOM, "alice", Some(KEY_A));
    let (_, jb) = sim.join(0, ROOM, "bob", Some(KEY_B));
    assert_eq!(ja["type"], "joined");
    assert_eq!(nicks(&jb), vec!["alice"]);
    sim.assert_fine();
}

#[test]
fn duplicated_entries_change_nothing() {
    let mut sim = Sim::new(2);
    sim.duplicate = true;
    let (a, ja) = sim.join(0, ROOM, "alice", None);
    let (b, jb) = sim.join(1, ROOM, "bob", None);
    sim.send(b, json!({"type":"signal","to":id_of(&ja),"payload":{}}));
    sim.send(a, json!({"type":"signal","to":id_of(&jb),"payload":{}}));
    sim.send(b, json!({"type":"leave"}));
    assert_eq!(sim.of_type(a, "signal").len(), 1);
    assert_eq!(sim.of_type(b, "signal").len(), 1);
    assert_eq!(sim.of_type(a, "peer_left").len(), 1);
    assert_eq!(sim.of_type(a, "peer_joined").len(), 1);
    sim.assert_fine();
}

// ---------------------------------------------------------------------------
// Push-back across servers: a member that reads slowly is protected on
// whichever server it is, and its senders are told `peer_busy`, wherever
// they are, as on one server.

/// Queues of 8 KiB for signals (2 KiB per sender), so that a few signals
/// fill them.
fn small_queues() -> HubConfig {
    HubConfig {
        room_capacity: 4,
        resume_grace: GRACE,
        send_queue_bytes: 8 * 1024,
        ..HubConfig::default()
    }
}

fn signal_to(to: &str, n: usize, size: usize) -> Value {
    json!({"type":"signal","to":to,"payload":{"n":n,"p":"x".repeat(size)}})
}

/// The `peer_busy` errors `client` read that name `to`.
fn busy_naming(sim: &Sim, client: (usize, ConnId), to: &str) -> usize {
    sim.frames(client)
        .iter()
        .filter(|f| f["code"] == "peer_busy" && f["to"] == to)
        .count()
}

/// The numbers of the signals `client` read from `from`.
fn signals_from(sim: &Sim, client: (usize, ConnId), from: &str) -> Vec<u64> {
    sim.frames(client)
        .iter()
        .filter(|f| f["type"] == "signal" && f["from"] == from)
        .map(|f| f["payload"]["n"].as_u64().unwrap())
        .collect()
}

/// The most a queue may hold when it is sent only signals: the limit for
/// signals, overshot by at most one signal that found it empty.
fn signal_bound(hub: &HubConfig, largest: usize) -> usize {
    hub.send_queue_bytes + frame_cost(largest + 200)
}

#[test]
fn a_slow_reader_on_another_node_pushes_back_on_its_senders_and_stays() {
    let mut sim = Sim::with_hub(3, small_queues());
    let (a, ja) = sim.join(0, ROOM, "alice", None);
    let (b, jb) = sim.join(1, ROOM, "bob", None);
    let (c, jc) = sim.join(2, ROOM, "carol", None);
    assert_eq!(sim.owner(ROOM), Some(0));
    let bob = id_of(&jb);
    // Bob, on a server that does not hold the room, stops reading; alice,
    // on the one that does, keeps sending to him.
    sim.stall(b, true);
    for n in 0..100 {
        sim.send(a, signal_to(&bob, n, 500));
    }
    // She is told once, naming him, and holds no more than her share of
    // his queue.
    assert_eq!(busy_naming(&sim, a, &bob), 1);
    let share = sim.hub.pair_share();
    let queues = SimQueues(&sim.clients, 1);
    assert!(queues.queued(b.1, a.1).from_sender <= share);
    // Carol, on a third server, still reaches him (the rest of his queue
    // is not alice's) until it is full; then she is told too.
    for n in 100..200 {
        sim.send(c, signal_to(&bob, n, 500));
    }
    assert_eq!(busy_naming(&sim, c, &bob), 1);
    assert!(sim.clients[&b].queued() <= signal_bound(&sim.hub, 500));
    // Bob stays: nobody was cut off.
    assert!(sim.clients.values().all(|log| log.closed.is_none()));
    assert_eq!(sim.nodes[0].node.stats().hub.members, 3);
    // He reads again: what was queued arrives in order, and alice reaches
    // him again.
    sim.stall(b, false);
    let from_alice = signals_from(&sim, b, &id_of(&ja));
    assert!(!from_alice.is_empty());
    assert!(from_alice.windows(2).all(|w| w[0] < w[1]), "{from_alice:?}");
    assert!(!signals_from(&sim, b, &id_of(&jc)).is_empty());
    sim.send(a, signal_to(&bob, 1000, 10));
    assert_eq!(signals_from(&sim, b, &id_of(&ja)).last(), Some(&1000));
    // A new run of refusals is told again, once.
    sim.stall(b, true);
    for n in 2000..2100 {
        sim.send(a, signal_to(&bob, n, 500));
    }
    assert_eq!(busy_naming(&sim, a, &bob), 2);
    assert!(sim.clients.values().all(|log| log.closed.is_none()));
    sim.assert_fine();
}

#[test]
fn signals_that_cross_in_one_entry_are_bounded_as_one_by_one() {
    let mut sim = Sim::with_hub(2, small_queues());
    let (a, ja) = sim.join(0, ROOM, "alice", None);
    let (b, jb) = sim.join(1, ROOM, "bob", None);
    assert_eq!(sim.owner(ROOM), Some(0));
    // Bob stops reading; alice's signals reach his server in one entry,
    // more than his queue may hold.
    sim.stall(b, true);
    sim.burst(a, (0..50).map(|n| signal_to(&id_of(&jb), n, 2000)));
    assert_eq!(sim.clients[&b].closed, None);
    assert!(sim.clients[&b].queued() <= signal_bound(&sim.hub, 2000));
    assert_eq!(busy_naming(&sim, a, &id_of(&jb)), 1);
    // Alice, at the server holding the room, stops reading; bob's signals
    // reach it in one entry.
    sim.stall(b, false);
    sim.stall(a, true);
    sim.burst(b, (0..50).map(|n| signal_to(&id_of(&ja), n, 2000)));
    assert_eq!(sim.clients[&a].closed, None);
    assert!(sim.clients[&a].queued() <= signal_bound(&sim.hub, 2000));
    assert_eq!(busy_naming(&sim, b, &id_of(&ja)), 1);
    sim.assert_fine();
}

#[test]
fn messages_queued_while_the_transport_is_busy_go_in_one_entry_per_server() {
    let mut sim = Sim::new(2);
    let (_a, ja) = sim.join(0, ROOM, "alice", None);
    let (b, _jb) = sim.join(1, ROOM, "bob", None);
    assert_eq!(sim.owner(ROOM), Some(0));
    let before = sim.nodes[1].node.tally().entries_out;
    // Bob's server handles three signals before its transport takes
    // anything: none of them is a control command, and they leave as one
    // entry for the owner, in order.
    for n in 0..3 {
        sim.send_unsettled(b, signal_to(&id_of(&ja), n, 10));
    }
    let node = &mut sim.nodes[1].node;
    assert!(node.has_entries());
    assert!(node.poll_control().is_none());
    let Some(Command::Send { entry, .. }) = node.poll_entry() else {
        panic!("no entry for the owner");
    };
    assert!(node.poll_entry().is_none());
    assert!(!node.has_entries());
    assert_eq!(node.tally().entries_out, before + 1);
    let texts: Vec<Bytes> = Entry::decode(entry)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| match m {
            Message::Text { text, .. } => text,
            other => panic!("not a client frame: {other:?}"),
        })
        .collect();
    assert_eq!(texts.len(), 3);
    for (n, text) in texts.iter().enumerate() {
        let value: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(value["payload"]["n"], json!(n));
    }
}

#[test]
fn a_backed_up_link_refuses_signals_to_their_sender_and_cuts_nobody_off() {
    let config = ClusterConfig {
        link_bytes: 16 * 1024,
        ..Sim::config()
    };
    let hub = HubConfig {
        room_capacity: 4,
        ..HubConfig::default()
    };
    let mut sim = Sim::build(2, hub, config);
    let (a, ja) = sim.join(0, ROOM, "alice", None);
    let (b, jb) = sim.join(1, ROOM, "bob", None);
    let bob = id_of(&jb);
    // Redis stalls (for less than a lease): what the owner sends to bob's
    // server waits, and soon more than the link may hold.
    sim.pause_redis();
    for n in 0..40 {
        sim.send(a, signal_to(&bob, n, 1000));
    }
    assert_eq!(busy_naming(&sim, a, &bob), 1);
    sim.resume_redis();
    // Bob was not cut off: he gets what the link held, in order, and
    // alice reaches him again.
    assert_eq!(sim.clients[&b].closed, None);
    let got = signals_from(&sim, b, &id_of(&ja));
    assert!(got.len() >= 10 && got.len() < 40, "{got:?}");
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
    sim.send(a, signal_to(&bob, 1000, 10));
    assert_eq!(signals_from(&sim, b, &id_of(&ja)).last(), Some(&1000));
    sim.assert_fine();
}

/// Four members of one room, each on server `homes[k]` of `nodes`, run
/// `ops`: (what, member, member, size). Returns what each member read, its
/// peer ids replaced by member numbers. Checks on the way that nobody is
/// cut off and that no queue grows past what signals may hold.
fn run_signals(nodes: usize, homes: &[usize], ops: &[(u8, usize, usize, usize)]) -> Vec<String> {
    const SIZES: [usize; 4] = [20, 400, 2500, 9000];
    let mut sim = Sim::with_hub(nodes, small_queues());
    let mut members = Vec::new();
    let mut ids = Vec::new();
    for (k, home) in homes.iter().enumerate() {
        let (client, joined) = sim.join(home % nodes, ROOM, &format!("m{k}"), None);
        assert_eq!(joined["type"], "joined", "{joined}");
        members.push(client);
        ids.push(id_of(&joined));
    }
    let mut n = 0;
    for &(op, a, b, size) in ops {
        let (from, to) = (members[a], &ids[b]);
        match op {
            0 | 1 if a != b => {
                n += 1;
                sim.send(from, signal_to(to, n, SIZES[size]));
            }
            2 if a != b => {
                let first = n + 1;
                n += size + 2;
                sim.burst(from, (first..=n).map(|k| signal_to(to, k, SIZES[size])));
            }
            3 => {
                let stalled = sim.clients[&from].stalled;
                sim.stall(from, !stalled);
            }
            4 => sim.read(from, b * 3 + 1),
            _ => {}
        }
        for client in &members {
            assert!(sim.clients[client].queued() <= signal_bound(&sim.hub, SIZES[3]));
        }
    }
    for client in &members {
        sim.stall(*client, false);
    }
    sim.assert_fine();
    members
        .iter()
        .map(|client| {
            let mut read = serde_json::to_string(sim.frames(*client)).unwrap();
            for (k, id) in ids.iter().enumerate() {
                read = read.replace(id.as_str(), &format!("m{k}"));
            }
            read
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Members spread over three servers send each other signals of any
    /// size, one at a time and in bursts that cross in one entry, while
    /// some stop reading for a while and read a few frames now and then:
    /// each reads exactly what it would on one server (the same signals
    /// and the same `peer_busy` errors, in the same order), nobody is cut
    /// off, and no queue holds more than signals may.
    #[test]
    fn push_back_across_servers_is_push_back_on_one(
        homes in prop::collection::vec(0usize..3, 4),
        ops in prop::collection::vec((0u8..5, 0usize..4, 0usize..4, 0usize..4), 1..80),
    ) {
        let alone = run_signals(1, &[0; 4], &ops);
        let spread = run_signals(3, &homes, &ops);
        for (k, (alone, spread)) in alone.iter().zip(&spread).enumerate() {
            prop_assert_eq!(alone, spread, "member {} read otherwise", k);
        }
    }
}

#[test]
fn a_gap_closes_the_clients_between_the_two_nodes_and_they_resume() {
    let mut sim = Sim::new(2);
    let (a, _) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    // An entry from node 1 to node 0 is lost (say, trimmed), then another
    // arrives.
    let to = sim.nodes[0].node.id();
    sim.send(
        b,
        json!({"type":"signal","to":"0000000000000000","payload":{}}),
    );
    sim.pause_redis();
    sim.send(
        b,
        json!({"type":"signal","to":"0000000000000001","payload":{}}),
    );
    let mut queue = sim.paused.take().unwrap();
    queue.retain(|(_, c)| !matches!(c, Command::Send { to: t, .. } if *t == to));
    sim.paused = Some(queue);
    sim.resume_redis();
    sim.send(
        b,
        json!({"type":"signal","to":"0000000000000002","payload":{}}),
    );
    sim.run(Duration::from_secs(2));
    assert_eq!(sim.clients[&b].closed, Some(Some(ErrorCode::ShuttingDown)));
    assert!(sim.of_type(a, "peer_left").is_empty());
    let (_, jb2) = sim.join(1, ROOM, "bob", Some(KEY_B));
    assert_eq!(jb2["resumed"], true, "{jb2} {:?}", sim.frames(b));
    assert_eq!(id_of(&jb2), id_of(&jb));
    sim.assert_fine();
}

#[test]
fn a_graceful_stop_moves_rooms_and_lets_members_resume_elsewhere() {
    let mut sim = Sim::new(3);
    let (a, _) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    let (d, _) = sim.join(1, ROOM2, "dave", Some(KEY_D));
    let (_e, _) = sim.join(0, ROOM2, "erin", None);
    assert_eq!(sim.owner(ROOM2), Some(1));
    let mut out = Vec::new();
    sim.nodes[1].node.shutdown(sim.now, &mut out);
    sim.outputs(1, out);
    sim.settle();
    sim.nodes[1].alive = false;
    assert_eq!(sim.clients[&b].closed, Some(Some(ErrorCode::ShuttingDown)));
    assert_eq!(sim.clients[&d].closed, Some(Some(ErrorCode::ShuttingDown)));
    // Bob resumes at once elsewhere; erin's room (owned by the stopped
    // node) was closed at node 0 too, and moves on her rejoin.
    let (_, jb2) = sim.join(2, ROOM, "bob", Some(KEY_B));
    assert_eq!(jb2["resumed"], true);
    assert_eq!(id_of(&jb2), id_of(&jb));
    let (_, je2) = sim.join(0, ROOM2, "erin", None);
    assert_eq!(je2["type"], "joined");
    sim.run(GRACE * 2);
    assert!(sim.of_type(a, "peer_left").is_empty());
    sim.assert_fine();
}

#[test]
fn a_room_left_empty_is_given_back() {
    let mut sim = Sim::new(2);
    let (a, _) = sim.join(0, ROOM, "alice", None);
    sim.send(a, json!({"type":"leave"}));
    sim.run(Duration::from_secs(2));
    assert_eq!(sim.owner(ROOM), None);
    assert!(sim.redis.rooms.is_empty());
    // The next join, on the other node, takes it there.
    sim.join(1, ROOM, "bob", None);
    assert_eq!(sim.owner(ROOM), Some(1));
    sim.assert_fine();
}

fn mailbox(sim: &mut Sim, i: usize, req: u64, id: &str, text: Option<&str>, wait: Duration) {
    let text = text.map(|t| Bytes::copy_from_slice(t.as_bytes()));
    sim.nodes[i]
        .node
        .mailbox_request(req, id, text, wait, sim.now);
    sim.settle();
}

fn mailbox_results(sim: &mut Sim, i: usize) -> Vec<(u64, crate::MailboxResult)> {
    std::iter::from_fn(|| sim.nodes[i].node.poll_mailbox()).collect()
}

#[test]
fn a_mailbox_get_on_one_node_receives_a_set_on_another() {
    use peerchat_mailbox::Resolution;
    let mut sim = Sim::new(3);
    let wait = Duration::from_secs(5);
    mailbox(&mut sim, 0, 1, "meet-here", None, wait);
    assert!(mailbox_results(&mut sim, 0).is_empty());
    mailbox(&mut sim, 1, 7, "meet-here", Some("an offer"), wait);
    assert_eq!(
        mailbox_results(&mut sim, 0),
        vec![(1, Ok(Resolution::Text(Bytes::from("an offer"))))]
    );
    assert_eq!(
        mailbox_results(&mut sim, 1),
        vec![(7, Ok(Resolution::Taken))]
    );
    // A set first, on a third node, read later on the first.
    mailbox(&mut sim, 2, 3, "meet-here", Some("an answer"), wait);
    sim.run(Duration::from_secs(1));
    mailbox(&mut sim, 0, 2, "meet-here", None, Duration::ZERO);
    assert_eq!(
        mailbox_results(&mut sim, 0),
        vec![(2, Ok(Resolution::Text(Bytes::from("an answer"))))]
    );
    assert_eq!(
        mailbox_results(&mut sim, 2),
        vec![(3, Ok(Resolution::Taken))]
    );
    // A get nobody answers times out where the id lives, and is told so.
    mailbox(&mut sim, 1, 8, "meet-here", None, wait);
    sim.run(wait + Duration::from_secs(1));
    assert_eq!(
        mailbox_results(&mut sim, 1),
        vec![(8, Ok(Resolution::TimedOut))]
    );
    // A withdrawn set is not read.
    mailbox(&mut sim, 1, 9, "meet-here", Some("withdrawn"), wait);
    sim.nodes[1].node.mailbox_cancel(9);
    sim.settle();
    mailbox(&mut sim, 2, 4, "meet-here", None, Duration::ZERO);
    assert_eq!(
        mailbox_results(&mut sim, 2),
        vec![(4, Ok(Resolution::TimedOut))]
    );
    // The id is given back once nothing waits on it.
    sim.run(Duration::from_secs(2));
    assert!(sim.redis.rooms.is_empty(), "{:?}", sim.redis.rooms);
    sim.assert_fine();
}

#[test]
fn mailbox_requests_at_a_dead_node_end_as_timed_out() {
    use peerchat_mailbox::Resolution;
    let mut sim = Sim::new(2);
    mailbox(&mut sim, 0, 1, "id-1", None, Duration::from_secs(60));
    mailbox(&mut sim, 1, 2, "id-1", None, Duration::from_secs(60));
    sim.kill(0);
    sim.run(LEASE * 2);
    assert_eq!(
        mailbox_results(&mut sim, 1),
        vec![(2, Ok(Resolution::TimedOut))]
    );
    // Asked again, the id lives on the survivor.
    mailbox(&mut sim, 1, 3, "id-1", None, Duration::from_secs(60));
    mailbox(&mut sim, 1, 4, "id-1", Some("x"), Duration::from_secs(60));
    let mut results = mailbox_results(&mut sim, 1);
    results.sort_by_key(|(req, _)| *req);
    assert_eq!(
        results,
        vec![
            (3, Ok(Resolution::Text(Bytes::from("x")))),
            (4, Ok(Resolution::Taken))
        ]
    );
    sim.assert_fine();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random members on random nodes join, signal, leave and get lost;
    /// nodes die or lose Redis for a while; Redis pauses; entries repeat. Whatever happens: nobody is
    /// told of a leave of a member it does not know (no `peer_left` twice),
    /// no client gets a frame after its close, and no room is served by two
    /// nodes at once.
    #[test]
    fn clusters_keep_their_promises_under_faults(
        ops in prop::collection::vec((0u8..11, 0usize..3, 0usize..6), 1..60),
        duplicate in any::<bool>(),
    ) {
        let mut sim = Sim::new(3);
        sim.duplicate = duplicate;
        let keys = [KEY_A, KEY_B, KEY_C, KEY_D];
        let mut live: Vec<((usize, ConnId), String)> = Vec::new();
        for (op, node, who) in ops {
            let node = (0..3).map(|k| (node + k) % 3).find(|i| sim.nodes[*i].alive);
            let Some(node) = node else { break };
            match op {
                0..=2 => {
                    let room = if who % 2 == 0 { ROOM } else { ROOM2 };
                    let key = keys.get(who).copied();
                    let (c, j) = sim.join(node, room, &format!("n{who}"), key);
                    if j["type"] == "joined" {
                        live.push((c, id_of(&j)));
                    }
                }
                3 | 4 if !live.is_empty() => {
                    let (c, _) = live[who % live.len()].clone();
                    let (_, to) = live[(who + 1) % live.len()].clone();
                    if sim.nodes[c.0].alive && sim.clients[&c].closed.is_none() {
                        sim.send(c, json!({"type":"signal","to":to,"payload":{}}));
                    }
                }
                5 if !live.is_empty() => {
                    let (c, _) = live.remove(who % live.len());
                    if sim.nodes[c.0].alive && sim.clients[&c].closed.is_none() {
                        sim.send(c, json!({"type":"leave"}));
                    }
                }
                6 if !live.is_empty() => {
                    let (c, _) = live.remove(who % live.len());
                    if sim.nodes[c.0].alive && sim.clients[&c].closed.is_none() {
                        sim.lose(c);
                    }
                }
                7 if sim.nodes.iter().filter(|n| n.alive).count() > 1 => sim.kill(node),
                8 => {
                    sim.pause_redis();
                    sim.run(LEASE + Duration::from_millis(who as u64 * 700));
                    sim.resume_redis();
                }
                9 => {
                    sim.nodes[node].cut = true;
                    sim.run(LEASE + Duration::from_millis(who as u64 * 700));
                    sim.nodes[node].cut = false;
                }
                _ => sim.run(Duration::from_millis(300 * who as u64)),
            }
        }
        sim.run(GRACE * 3);
        prop_assert!(sim.violations.is_empty(), "{:#?}", sim.violations);
        // Everyone still connected is in a room served by a live node.
        for ((i, conn), log) in &sim.clients {
            if log.closed.is_none() && sim.nodes[*i].alive && sim.nodes[*i].node.is_joined(*conn) {
                prop_assert!(sim.nodes.iter().any(|n| n.alive && n.node.stats().serving));
            }
        }
    }
}

#[test]
fn a_rename_on_a_non_owner_node_is_decided_by_the_owner_and_told_on_every_node() {
    let mut sim = Sim::new(3);
    let (a, ja) = sim.join(0, ROOM, "alice", Some(KEY_A));
    let (b, jb) = sim.join(1, ROOM, "bob", Some(KEY_B));
    let (c, _) = sim.join(2, ROOM, "carol", None);
    assert_eq!(sim.owner(ROOM), Some(0));
    // Taken (on another node, ignoring case): refused to bob alone.
    sim.send(b, json!({"type":"rename","nick":"CAROL"}));
    let refused = sim.of_type(b, "error");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["code"], "nick_taken");
    assert!(sim.of_type(a, "peer_renamed").is_empty());
    sim.send(b, json!({"type":"rename","nick":"bobby"}));
    let renamed = json!({"id":id_of(&jb),"nick":"bobby"});
    assert_eq!(
        sim.of_type(b, "renamed"),
        vec![json!({"type":"renamed","you":renamed.clone()})]
    );
    for other in [a, c] {
        assert_eq!(
            sim.of_type(other, "peer_renamed"),
            vec![json!({"type":"peer_renamed","peer":renamed.clone()})]
        );
    }
    // Bob's node dies; he resumes on another under the new nickname,
    // unnoticed, and a newcomer finds him under it.
    sim.kill(1);
    let (_b2, jb2) = sim.join(2, ROOM, "bobby", Some(KEY_B));
    assert_eq!(jb2["resumed"], true, "{jb2}");
    let (_d, jd) = sim.join(0, ROOM, "dave", None);
    assert_eq!(nicks(&jd), vec!["alice", "bobby", "carol"]);
    assert_eq!(sim.of_type(a, "peer_joined").len(), 3, "bob, carol, dave");
    assert_eq!(id_of(&ja), jd["members"][0]["id"]);
    sim.assert_fine();
}
