//! One server of a cluster: its hub, the rooms it owns, its clients'
//! routes to rooms owned elsewhere, its links to the other servers and its
//! lease.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peerchat_mailbox::{Mailbox, MailboxError, Outcome, Resolution, Ticket};
use peerchat_protocol::ErrorCode;
use peerchat_protocol::signaling::ClientMessage;
use peerchat_rooms::{
    Backlog, ConnId, Departure, Hub, HubConfig, Meter, NoBacklog, Output, Stats, frame_cost,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::link::{Delivery, Inbound};
use crate::out::Out;
use crate::wire::{Entry, Message, encode_parts};
use crate::{ClusterConfig, NodeId};

/// Hub connection ids at or above this stand for clients of other servers
/// (proxies); the transport numbers its own connections below it.
pub const PROXY_BASE: ConnId = 1 << 63;

/// How long a server seen dead is remembered, so that late entries from it
/// are ignored.
const DEAD_MEMORY: Duration = Duration::from_secs(600);

/// What a client whose room moves, or whose server lost its place in the
/// cluster, is told before its connection is closed. It joins again, as
/// after a server restart.
const MOVING: &str = "the server holding this room went away; join again";

/// Something to do in Redis. Each has a result the transport hands back
/// (`Send` only an acknowledgement): see the methods of [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Renew this server's lease (first registering it, when `register`),
    /// and list the live servers; result through [`Node::beat_done`].
    Beat {
        /// This server.
        node: NodeId,
        /// The first beat of this id: create the lease.
        register: bool,
        /// When the beat was sent: the lease runs from here.
        sent_at: Instant,
    },
    /// Find the owner of a room, taking it if it has none or its owner is
    /// gone; result through [`Node::claim_done`].
    Claim {
        /// The server asking.
        node: NodeId,
        /// The room.
        room: Arc<str>,
    },
    /// Give up a room this server owns and no longer hosts (nobody is in it).
    Release {
        /// The owner.
        node: NodeId,
        /// The room.
        room: Arc<str>,
    },
    /// Keep these rooms' ownership records alive; the rooms found owned by
    /// another server go through [`Node::rooms_lost`].
    Refresh {
        /// The owner.
        node: NodeId,
        /// Its rooms.
        rooms: Vec<Arc<str>>,
    },
    /// Append an entry to another server's inbox. The transport retries
    /// until it is appended (or the receiver is gone), in order per
    /// receiver, and then calls [`Node::sent`].
    Send {
        /// The receiver.
        to: NodeId,
        /// The entry's sequence number on this link.
        seq: u64,
        /// The entry.
        entry: Bytes,
    },
    /// Leave the cluster: remove this server's lease and inbox.
    Deregister {
        /// This server.
        node: NodeId,
    },
}

/// How a beat went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeatResult {
    /// The lease is renewed; these servers (this one included) are alive.
    Alive(Vec<NodeId>),
    /// This server was declared dead (its lease had run out and another
    /// server noticed), or Redis lost its data: it must start over.
    Dead,
    /// Redis could not be reached or did not answer.
    Failed,
}

/// How a claim went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// The room's owner (this server, if it took the room).
    Owner(NodeId),
    /// Redis holds this server's lease as run out: no room may be taken
    /// until a beat renews it.
    NotValid,
    /// Redis could not be reached.
    Failed,
}

/// Counts for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterStats {
    /// This server's id.
    pub node: NodeId,
    /// Whether it holds a lease it can act on (it serves its rooms).
    pub serving: bool,
    /// Other servers it exchanges entries with.
    pub peers: usize,
    /// Rooms it owns.
    pub rooms_owned: usize,
    /// The WebSocket connections of this server.
    pub connections: usize,
    /// Its hub's counts (its own rooms, with members on any server).
    pub hub: Stats,
}

/// What this server's place in the cluster has done since it started, for
/// metrics: counters that only grow, kept as plain numbers by the node
/// (it runs under the server's one lock) and read when they are asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterTally {
    /// Frames queued for other servers: this server's clients' frames to
    /// the owners of their rooms, and its rooms' frames to other servers'
    /// clients.
    pub frames_out: u64,
    /// Frames received from other servers, the other way round.
    pub frames_in: u64,
    /// Entries appended to other servers' inboxes (each holds the frames
    /// and messages waiting for one server at once).
    pub entries_out: u64,
    /// Entries read from this server's inbox.
    pub entries_in: u64,
    /// Clients closed because too much was waiting for their room's
    /// server (they join again).
    pub clients_cut_off: u64,
    /// Times the lease may have run out: the server stopped serving its
    /// rooms until a beat renewed it.
    pub lease_lapses: u64,
    /// Times the server was declared gone (its lease had run out and
    /// another server noticed, or Redis lost its data) and started over
    /// under a new id.
    pub restarts: u64,
    /// Rooms found owned by another server at a refresh, and closed here.
    pub rooms_lost: u64,
    /// Other servers seen gone.
    pub peers_gone: u64,
    /// Links reset because entries from the other server were lost.
    pub link_resets: u64,
}

/// Where a client's frames go.
#[derive(Debug)]
enum Route {
    /// To this server's hub: not in a room yet, or in a room owned here.
    Here,
    /// Waiting to learn (or take) the owner of `room`; its frames since its
    /// join are held, the join first.
    Claiming { room: Arc<str>, frames: Vec<Bytes> },
    /// To the owner of `room`, another server. Until the owner says the
    /// client joined, its frames are looked at for a join to another room,
    /// and `join` is kept for a redirect.
    Remote {
        owner: NodeId,
        room: Arc<str>,
        joined: bool,
        join: Bytes,
    },
}

#[derive(Debug)]
struct Client {
    meter: Meter,
    route: Route,
    /// Senders (connections at its room's owner) whose signals to it were
    /// refused here, and who were told, until one of theirs gets through
    /// again: only the first refusal of a run is reported. At most one per
    /// member of its room.
    busy: Vec<ConnId>,
}

/// A client of another server, in this server's hub.
#[derive(Debug)]
struct Proxy {
    node: NodeId,
    conn: ConnId,
    joined: bool,
    /// Frames held while the room of its join is being claimed.
    waiting: Option<Vec<Bytes>>,
    /// Senders whose signals to it were refused because too much waits
    /// for its server, and who were told, until one of theirs goes again.
    busy: Vec<ConnId>,
}

#[derive(Debug)]
enum Waiter {
    Client(ConnId),
    Proxy(ConnId),
    Mailbox(Origin),
}

/// Who made a mailbox request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Origin {
    /// A client of this server's, under the transport's number.
    Local(u64),
    /// A client of another server's, under that server's number.
    Remote(NodeId, u64),
}

/// A mailbox request not yet run by its id's owner.
#[derive(Debug)]
struct MailboxRequest {
    /// The claim key of its id (`mb:ID`).
    key: Arc<str>,
    id: Bytes,
    wait: Duration,
    text: Option<Bytes>,
    /// The owner it was sent to, once known.
    owner: Option<NodeId>,
}

/// What a mailbox request came to: for [`Node::poll_mailbox`].
pub type MailboxResult = Result<Resolution, MailboxError>;

#[derive(Debug, Default)]
struct Claim {
    in_flight: bool,
    waiters: Vec<Waiter>,
}

#[derive(Debug)]
struct RouteEntry {
    owner: NodeId,
    /// This server's clients routed there.
    users: usize,
}

/// The link with another server.
#[derive(Debug)]
struct Peer {
    /// Messages for it, not yet made into an entry.
    batch: Vec<Message>,
    batch_bytes: usize,
    next_seq: u64,
    /// Entries handed to the transport and not yet appended.
    unacked: VecDeque<(u64, usize)>,
    unacked_bytes: usize,
    inbound: Inbound<Vec<Message>>,
}

impl Peer {
    fn new(wait: Duration) -> Self {
        Self {
            batch: Vec::new(),
            batch_bytes: 0,
            next_seq: 1,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            inbound: Inbound::new(wait),
        }
    }
}

/// Something for the hub, held while this server's lease is in doubt.
#[derive(Debug)]
enum HubEvent {
    Text {
        conn: ConnId,
        text: Bytes,
    },
    Disconnect {
        conn: ConnId,
        how: Departure,
    },
    Close {
        conn: ConnId,
        reason: ErrorCode,
        message: String,
    },
    JoinDeadline {
        conn: ConnId,
    },
    /// A signal from `from` was refused where `to`'s queue is held.
    Refused {
        from: ConnId,
        to: ConnId,
    },
}

impl HubEvent {
    fn size(&self) -> usize {
        match self {
            Self::Text { text, .. } => text.len(),
            _ => 0,
        }
    }
}

/// One server of a cluster, as a sans-IO state machine.
///
/// The transport feeds it what its clients do (as it would feed a
/// [`Hub`]), the entries read from this server's inbox, the results of the
/// Redis commands it asked for, and the time; it pushes what to send to
/// this server's clients to an output list, and queues Redis commands for
/// [`Node::poll_command`].
#[derive(Debug)]
pub struct Node {
    config: ClusterConfig,
    hub: Hub,
    me: NodeId,
    rng: StdRng,
    registered: bool,
    /// The lease may be acted on until then.
    lease_until: Option<Instant>,
    /// Hub events are held: the lease may have run out.
    frozen: bool,
    next_beat: Instant,
    next_refresh: Instant,
    clients: HashMap<ConnId, Client>,
    proxies: HashMap<ConnId, Proxy>,
    proxy_ids: HashMap<(NodeId, ConnId), ConnId>,
    next_proxy: ConnId,
    owned: HashSet<Arc<str>>,
    claims: HashMap<Arc<str>, Claim>,
    routes: HashMap<Arc<str>, RouteEntry>,
    peers: HashMap<NodeId, Peer>,
    /// Peers with messages in their batch.
    dirty: Vec<NodeId>,
    dead: HashMap<NodeId, Instant>,
    held: VecDeque<HubEvent>,
    held_bytes: usize,
    commands: VecDeque<Command>,
    /// The mailbox of the ids owned here, if the mailbox is on.
    mailbox: Option<Mailbox>,
    /// Requests waiting in it, and whose they are.
    tickets: HashMap<Ticket, Origin>,
    ticket_of: HashMap<Origin, Ticket>,
    /// This server's requests not yet run where their id lives.
    requests: HashMap<u64, MailboxRequest>,
    /// Other servers' requests waiting for a claim here.
    remote_requests: HashMap<(NodeId, u64), MailboxRequest>,
    /// How this server's requests ended.
    mailbox_out: VecDeque<(u64, MailboxResult)>,
    tally: ClusterTally,
}

impl Node {
    /// A server that is not registered yet: it serves no room until its
    /// first beat succeeds. Its node ids and its hub's peer ids come from a
    /// generator seeded with `seed`.
    pub fn new(config: ClusterConfig, hub: HubConfig, seed: u64, now: Instant) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let me = NodeId(rng.random());
        let mailbox = config.mailbox.clone().map(Mailbox::new);
        Self {
            hub: Hub::new(hub, rng.random()),
            me,
            rng,
            registered: false,
            lease_until: None,
            frozen: true,
            next_beat: now,
            next_refresh: now + config.refresh,
            config,
            clients: HashMap::new(),
            proxies: HashMap::new(),
            proxy_ids: HashMap::new(),
            next_proxy: PROXY_BASE,
            owned: HashSet::new(),
            claims: HashMap::new(),
            routes: HashMap::new(),
            peers: HashMap::new(),
            dirty: Vec::new(),
            dead: HashMap::new(),
            held: VecDeque::new(),
            held_bytes: 0,
            commands: VecDeque::new(),
            mailbox,
            tickets: HashMap::new(),
            ticket_of: HashMap::new(),
            requests: HashMap::new(),
            remote_requests: HashMap::new(),
            mailbox_out: VecDeque::new(),
            tally: ClusterTally::default(),
        }
    }

    /// This server's id (it changes when the server has to start over).
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// The hub's settings.
    pub fn hub_config(&self) -> &HubConfig {
        self.hub.config()
    }

    /// Current counts.
    pub fn stats(&self) -> ClusterStats {
        ClusterStats {
            node: self.me,
            serving: !self.frozen,
            peers: self.peers.len(),
            rooms_owned: self.owned.len(),
            connections: self.clients.len(),
            hub: self.hub.stats(),
        }
    }

    /// Requests waiting and texts queued in the mailbox of the ids owned
    /// here, if the mailbox is on.
    pub fn mailbox_counts(&self) -> Option<(usize, usize)> {
        self.mailbox.as_ref().map(|m| (m.in_flight(), m.queued()))
    }

    /// What the node has done since it started.
    pub fn tally(&self) -> &ClusterTally {
        &self.tally
    }

    /// What the hub of the rooms owned here has done since it started.
    pub fn hub_tally(&self) -> &peerchat_rooms::Tally {
        self.hub.tally()
    }

    /// Whether this server owns `room`.
    pub fn owns(&self, room: &str) -> bool {
        self.owned.contains(room)
    }

    /// The next Redis command to run, if any: the commands of
    /// [`Node::poll_control`] first, then the entries of
    /// [`Node::poll_entry`].
    pub fn poll_command(&mut self) -> Option<Command> {
        self.poll_control().or_else(|| self.poll_entry())
    }

    /// The next Redis command to run other than appending an entry
    /// ([`Command::Send`]), if any.
    pub fn poll_control(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Whether messages for other servers wait to be made into entries
    /// ([`Node::poll_entry`]).
    pub fn has_entries(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The next entry to append to another server's inbox
    /// ([`Command::Send`]): all the messages queued for that server since
    /// its last entry, in order. A transport that takes entries only when
    /// it can append them (one pipeline at a time) lets the messages that
    /// arrive meanwhile gather into one entry per server: Redis, the
    /// encoding and the reader then handle one item for many messages.
    pub fn poll_entry(&mut self) -> Option<Command> {
        while let Some(to) = self.dirty.pop() {
            let Some(peer) = self.peers.get_mut(&to) else {
                continue;
            };
            if peer.batch.is_empty() {
                continue;
            }
            let seq = peer.next_seq;
            peer.next_seq += 1;
            let len = 21 + peer.batch_bytes;
            let entry = encode_parts(self.me, seq, &peer.batch, len);
            peer.batch.clear();
            peer.batch_bytes = 0;
            peer.unacked.push_back((seq, entry.len()));
            peer.unacked_bytes += entry.len();
            self.tally.entries_out += 1;
            return Some(Command::Send { to, seq, entry });
        }
        None
    }

    /// The transport appended entries up to `seq` to `to`'s inbox.
    pub fn sent(&mut self, to: NodeId, seq: u64) {
        if let Some(peer) = self.peers.get_mut(&to) {
            while peer.unacked.front().is_some_and(|(s, _)| *s <= seq) {
                if let Some((_, len)) = peer.unacked.pop_front() {
                    peer.unacked_bytes -= len;
                }
            }
        }
    }

    // ----- the mailbox (`POST /sig`), wherever its ids live -----

    /// A mailbox request of this server's, numbered `req` by the
    /// transport: a `get` of `id` (`text` is `None`) or a `set`. It ends
    /// through [`Node::poll_mailbox`], at the latest when `wait` has passed
    /// at the server that owns the id.
    pub fn mailbox_request(
        &mut self,
        req: u64,
        id: &str,
        text: Option<Bytes>,
        wait: Duration,
        now: Instant,
    ) {
        let request = MailboxRequest {
            key: Arc::from(format!("mb:{id}")),
            id: Bytes::copy_from_slice(id.as_bytes()),
            wait,
            text,
            owner: None,
        };
        self.requests.insert(req, request);
        self.route_mailbox(req, now);
    }

    /// The request's client hung up: withdraw it (and its text).
    pub fn mailbox_cancel(&mut self, req: u64) {
        if let Some(request) = self.requests.remove(&req) {
            match request.owner {
                Some(owner) => {
                    self.queue(owner, Message::MailboxCancel { req });
                }
                None => {
                    if let Some(claim) = self.claims.get_mut(&request.key) {
                        claim.waiters.retain(
                            |w| !matches!(w, Waiter::Mailbox(Origin::Local(r)) if *r == req),
                        );
                    }
                }
            }
        }
        self.cancel_ticket(Origin::Local(req));
    }

    /// How a mailbox request of this server's ended, if one did.
    pub fn poll_mailbox(&mut self) -> Option<(u64, MailboxResult)> {
        self.mailbox_out.pop_front()
    }

    fn route_mailbox(&mut self, req: u64, now: Instant) {
        let Some(request) = self.requests.get(&req) else {
            return;
        };
        if self.owned.contains(&request.key) {
            if let Some(request) = self.requests.remove(&req) {
                self.run_mailbox(Origin::Local(req), request, now);
            }
            return;
        }
        let key = request.key.clone();
        self.claim(key, Waiter::Mailbox(Origin::Local(req)));
    }

    /// Runs a request on an id owned here.
    fn run_mailbox(&mut self, origin: Origin, request: MailboxRequest, now: Instant) {
        let Some(mailbox) = self.mailbox.as_mut() else {
            self.respond(origin, Err(MailboxError::Busy));
            return;
        };
        let id = std::str::from_utf8(&request.id).unwrap_or_default();
        let mut resolved = Vec::new();
        let outcome = match request.text {
            None => mailbox.get(id, request.wait, now, &mut resolved),
            Some(text) => mailbox.set(id, text, request.wait, now, &mut resolved),
        };
        match outcome {
            Ok(Outcome::Done(resolution)) => self.respond(origin, Ok(resolution)),
            Ok(Outcome::Pending(ticket)) => {
                self.tickets.insert(ticket, origin);
                self.ticket_of.insert(origin, ticket);
            }
            Err(err) => self.respond(origin, Err(err)),
        }
        self.resolve_tickets(resolved);
    }

    fn resolve_tickets(&mut self, resolved: Vec<(Ticket, Resolution)>) {
        for (ticket, resolution) in resolved {
            if let Some(origin) = self.tickets.remove(&ticket) {
                self.ticket_of.remove(&origin);
                self.respond(origin, Ok(resolution));
            }
        }
    }

    fn cancel_ticket(&mut self, origin: Origin) {
        if let Some(ticket) = self.ticket_of.remove(&origin) {
            self.tickets.remove(&ticket);
            if let Some(mailbox) = self.mailbox.as_mut() {
                mailbox.cancel(ticket);
            }
        }
    }

    fn respond(&mut self, origin: Origin, result: MailboxResult) {
        match origin {
            Origin::Local(req) => self.mailbox_out.push_back((req, result)),
            Origin::Remote(node, req) => {
                self.queue(node, Message::MailboxDone { req, result });
            }
        }
    }

    /// Ends this server's requests sent to `peer` (gone): as timed out, so
    /// a reader asks again and a writer knows its text was not taken.
    fn drop_requests_to(&mut self, peer: Option<NodeId>) {
        let lost: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| peer.is_none() || r.owner == peer)
            .map(|(req, _)| *req)
            .collect();
        for req in lost {
            self.requests.remove(&req);
            self.mailbox_out.push_back((req, Ok(Resolution::TimedOut)));
        }
    }

    // ----- the hub's transport-facing calls, for this server's clients -----

    /// A client connection opened.
    pub fn connect(&mut self, conn: ConnId, now: Instant) {
        let meter = Meter::new(self.hub.config(), now);
        self.hub.connect_unmetered(conn);
        self.clients.insert(
            conn,
            Client {
                meter,
                route: Route::Here,
                busy: Vec::new(),
            },
        );
    }

    /// Whether `conn` is in a room (here or at the room's owner).
    pub fn is_joined(&self, conn: ConnId) -> bool {
        match self.clients.get(&conn).map(|c| &c.route) {
            Some(Route::Remote { joined, .. }) => *joined,
            Some(Route::Here) => self.hub.is_joined(conn),
            _ => false,
        }
    }

    /// A text frame arrived from client `conn`. `queues` tells what waits
    /// in the transport's outgoing queues (as for [`Hub::handle_text`]);
    /// what `out` holds already counts as queued too (the transport may
    /// deliver the output of several calls at once).
    pub fn handle_text(
        &mut self,
        conn: ConnId,
        text: &str,
        now: Instant,
        queues: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let out = &mut Out::new(queues, out);
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        if !self
            .hub
            .admit(&mut client.meter, conn, text.len(), now, out)
        {
            return;
        }
        enum Step {
            Forward(NodeId),
            Here,
            Hold,
            Inspect,
        }
        let step = match &client.route {
            Route::Remote {
                owner,
                joined: true,
                ..
            } => Step::Forward(*owner),
            Route::Here => Step::Here,
            Route::Claiming { .. } => Step::Hold,
            Route::Remote { .. } => Step::Inspect,
        };
        match step {
            Step::Forward(owner) => {
                let text = Bytes::copy_from_slice(text.as_bytes());
                self.forward(conn, owner, text, now, out);
            }
            Step::Here if self.held.is_empty() && !self.frozen && self.hub.is_joined(conn) => {
                // A member of a room owned here: straight to the hub.
                let mut hub_out = Vec::new();
                self.hub
                    .handle_text(conn, text, now, out.backlog(), &mut hub_out);
                self.route_outputs(hub_out, now, out);
            }
            Step::Hold => {
                if self.held_bytes + text.len() > self.config.held_bytes {
                    self.cut_off(conn, now, out);
                    return;
                }
                self.held_bytes += text.len();
                if let Some(Client {
                    route: Route::Claiming { frames, .. },
                    ..
                }) = self.clients.get_mut(&conn)
                {
                    frames.push(Bytes::copy_from_slice(text.as_bytes()));
                }
            }
            Step::Here | Step::Inspect => {
                let text = Bytes::copy_from_slice(text.as_bytes());
                match join_room(&text) {
                    Some(room) => self.route_join(conn, room, text, now, out),
                    None => match client_route(&self.clients, conn) {
                        Some((owner, _)) => {
                            let owner = *owner;
                            self.forward(conn, owner, text, now, out);
                        }
                        None => self.hub_event(HubEvent::Text { conn, text }, now, out),
                    },
                }
            }
        }
    }

    /// The transport refused a frame of `conn`'s itself (binary, say).
    pub fn reject(&mut self, conn: ConnId, code: ErrorCode, message: &str, out: &mut Vec<Output>) {
        self.hub.reject(conn, code, message, out);
    }

    /// The join deadline of `conn` passed: unless it is in a room, it is
    /// told so and closed.
    pub fn join_deadline(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Output>) {
        let out = &mut Out::new(&NoBacklog, out);
        match self.clients.get(&conn).map(|c| &c.route) {
            None | Some(Route::Remote { joined: true, .. }) => {}
            Some(Route::Here) => self.hub_event(HubEvent::JoinDeadline { conn }, now, out),
            Some(_) => {
                self.unroute(conn, Departure::Lost);
                self.clients.remove(&conn);
                self.hub.join_deadline(conn, out);
            }
        }
    }

    /// Tells `conn` why it is being closed, then forgets it; it counts as
    /// lost.
    pub fn close(
        &mut self,
        conn: ConnId,
        reason: ErrorCode,
        message: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let out = &mut Out::new(&NoBacklog, out);
        match self.clients.get(&conn).map(|c| &c.route) {
            None => {}
            Some(Route::Here) => {
                let message = message.to_owned();
                self.hub_event(
                    HubEvent::Close {
                        conn,
                        reason,
                        message,
                    },
                    now,
                    out,
                );
            }
            Some(_) => {
                self.unroute(conn, Departure::Lost);
                self.clients.remove(&conn);
                self.hub.close(conn, reason, message, now, out);
            }
        }
    }

    /// Client `conn`'s connection ended.
    pub fn disconnect(
        &mut self,
        conn: ConnId,
        how: Departure,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let out = &mut Out::new(&NoBacklog, out);
        match self.clients.get(&conn).map(|c| &c.route) {
            None => self.hub.disconnect(conn, how, now, out),
            Some(Route::Here) => {
                self.clients.remove(&conn);
                self.hub_event(HubEvent::Disconnect { conn, how }, now, out);
            }
            Some(_) => {
                self.unroute(conn, how);
                self.clients.remove(&conn);
                self.hub.disconnect(conn, how, now, out);
            }
        }
    }

    /// The server stops: every client is told and closed; the rooms owned
    /// here are closed as a server going away would (their members on
    /// other servers are closed too, and join again where the rooms go);
    /// clients in rooms owned elsewhere count as lost there, and may resume
    /// on another server. Then the server leaves the cluster.
    pub fn shutdown(&mut self, now: Instant, out: &mut Vec<Output>) {
        let out = &mut Out::new(&NoBacklog, out);
        let rooms: Vec<Arc<str>> = self.owned.drain().collect();
        let mut hub_out = Vec::new();
        for room in &rooms {
            self.hub.close_room(
                room,
                ErrorCode::ShuttingDown,
                "the server is shutting down",
                &mut hub_out,
            );
        }
        self.route_outputs(hub_out, now, out);
        let conns: Vec<ConnId> = self.clients.keys().copied().collect();
        for conn in conns {
            self.unroute(conn, Departure::Lost);
            self.clients.remove(&conn);
            self.hub.close(
                conn,
                ErrorCode::ShuttingDown,
                "the server is shutting down",
                now,
                out,
            );
        }
        self.held.clear();
        self.held_bytes = 0;
        self.frozen = true;
        self.drop_requests_to(None);
        for (_, origin) in std::mem::take(&mut self.tickets) {
            let result = Ok(Resolution::TimedOut);
            match origin {
                Origin::Local(req) => self.mailbox_out.push_back((req, result)),
                Origin::Remote(node, req) => {
                    self.queue(node, Message::MailboxDone { req, result });
                }
            }
        }
        self.ticket_of.clear();
        self.commands
            .push_back(Command::Deregister { node: self.me });
    }

    // ----- time -----

    /// The earliest instant at which [`Node::handle_timeout`] has work.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.next_beat.min(self.next_refresh);
        if !self.frozen {
            if let Some(until) = self.lease_until {
                next = next.min(until);
            }
            if let Some(at) = self.hub.next_deadline() {
                next = next.min(at);
            }
        }
        for peer in self.peers.values() {
            if let Some(at) = peer.inbound.next_deadline() {
                next = next.min(at);
            }
        }
        if let Some(at) = self.mailbox.as_ref().and_then(Mailbox::next_deadline) {
            next = next.min(at);
        }
        next
    }

    /// Time passed. `queues`: as for [`Node::handle_text`].
    pub fn handle_timeout(&mut self, now: Instant, queues: &dyn Backlog, out: &mut Vec<Output>) {
        let out = &mut Out::new(queues, out);
        self.dead
            .retain(|_, at| now.saturating_duration_since(*at) < DEAD_MEMORY);
        if let Some(mailbox) = self.mailbox.as_mut() {
            let mut resolved = Vec::new();
            mailbox.expire(now, &mut resolved);
            self.resolve_tickets(resolved);
        }
        if now >= self.next_beat {
            self.next_beat = now + self.config.beat;
            self.commands.push_back(Command::Beat {
                node: self.me,
                register: !self.registered,
                sent_at: now,
            });
        }
        if !self.frozen && self.lease_until.is_none_or(|until| now >= until) {
            // Another server may take our rooms from now on: hold
            // everything for the hub until a beat says we still count.
            self.frozen = true;
            self.tally.lease_lapses += 1;
        }
        if !self.frozen {
            let mut hub_out = Vec::new();
            self.hub.handle_timeout(now, &mut hub_out);
            self.route_outputs(hub_out, now, out);
            if now >= self.next_refresh {
                self.next_refresh = now + self.config.refresh;
                if !self.owned.is_empty() {
                    self.commands.push_back(Command::Refresh {
                        node: self.me,
                        rooms: self.owned.iter().cloned().collect(),
                    });
                }
            }
        } else if now >= self.next_refresh {
            self.next_refresh = now + self.config.refresh;
        }
        let waiting: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.inbound.next_deadline().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for from in waiting {
            let mut deliveries = Vec::new();
            if let Some(peer) = self.peers.get_mut(&from) {
                peer.inbound.handle_timeout(now, &mut deliveries);
            }
            self.deliver_entries(from, deliveries, now, out);
        }
    }

    // ----- results of Redis commands -----

    /// A beat sent at `sent_at` by `node` came back. `queues`: as for
    /// [`Node::handle_text`].
    pub fn beat_done(
        &mut self,
        node: NodeId,
        sent_at: Instant,
        result: BeatResult,
        now: Instant,
        queues: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let out = &mut Out::new(queues, out);
        if node != self.me {
            return;
        }
        match result {
            BeatResult::Failed => {}
            BeatResult::Dead => self.start_over(now, out),
            BeatResult::Alive(alive) => {
                self.registered = true;
                let until = sent_at + self.config.lease;
                self.lease_until = Some(self.lease_until.map_or(until, |u| u.max(until)));
                if self.frozen && now < until {
                    self.thaw(now, out);
                }
                let alive: HashSet<NodeId> = alive.into_iter().collect();
                let gone: Vec<NodeId> = self
                    .peers
                    .keys()
                    .chain(self.routes.values().map(|r| &r.owner))
                    .filter(|id| !alive.contains(id))
                    .copied()
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                for peer in gone {
                    self.peer_died(peer, now, out);
                }
                if !self.frozen {
                    self.retry_claims();
                    self.release_empty_rooms();
                }
            }
        }
    }

    /// A claim of `room` by `node` came back. `queues`: as for
    /// [`Node::handle_text`].
    pub fn claim_done(
        &mut self,
        node: NodeId,
        room: &str,
        result: ClaimResult,
        now: Instant,
        queues: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let out = &mut Out::new(queues, out);
        if node != self.me {
            return;
        }
        let Some((room, claim)) = self.claims.remove_entry(room) else {
            if result == ClaimResult::Owner(self.me) {
                // Nobody waits for it any more: give it back at the next
                // sweep.
                self.owned.insert(Arc::from(room));
            }
            return;
        };
        match result {
            ClaimResult::Owner(owner) if owner == self.me => {
                self.owned.insert(room.clone());
                for waiter in claim.waiters {
                    self.claimed_here(waiter, now, out);
                }
            }
            ClaimResult::Owner(owner) => {
                for waiter in claim.waiters {
                    self.claimed_elsewhere(waiter, &room, owner, now, out);
                }
            }
            ClaimResult::NotValid | ClaimResult::Failed => {
                self.claims.insert(
                    room,
                    Claim {
                        in_flight: false,
                        waiters: claim.waiters,
                    },
                );
            }
        }
    }

    /// These rooms were found owned by another server: this one no longer
    /// hosts them (their members join again where they now live).
    pub fn rooms_lost(
        &mut self,
        node: NodeId,
        rooms: &[Arc<str>],
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let out = &mut Out::new(&NoBacklog, out);
        if node != self.me {
            return;
        }
        let mut hub_out = Vec::new();
        for room in rooms {
            if self.owned.remove(room) {
                self.tally.rooms_lost += 1;
                self.hub
                    .close_room(room, ErrorCode::ShuttingDown, MOVING, &mut hub_out);
            }
        }
        self.route_outputs(hub_out, now, out);
    }

    /// An entry read from this server's inbox. `queues`: as for
    /// [`Node::handle_text`].
    pub fn receive(
        &mut self,
        entry: Bytes,
        now: Instant,
        queues: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let out = &mut Out::new(queues, out);
        let entry = match Entry::decode(entry) {
            Ok(entry) => entry,
            Err(_) => return,
        };
        if entry.from == self.me || self.dead.contains_key(&entry.from) {
            return;
        }
        self.tally.entries_in += 1;
        let wait = self.config.reorder_wait;
        let peer = self
            .peers
            .entry(entry.from)
            .or_insert_with(|| Peer::new(wait));
        let mut deliveries = Vec::new();
        peer.inbound
            .receive(entry.seq, entry.messages, now, &mut deliveries);
        self.deliver_entries(entry.from, deliveries, now, out);
    }

    // ----- inside -----

    fn deliver_entries(
        &mut self,
        from: NodeId,
        deliveries: Vec<Delivery<Vec<Message>>>,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        for delivery in deliveries {
            match delivery {
                Delivery::Entry(messages) => {
                    for message in messages {
                        if !self.peers.contains_key(&from) {
                            // The link was dropped while applying the entry.
                            return;
                        }
                        self.apply(from, message, now, out);
                    }
                }
                Delivery::Gap { .. } => self.reset_link(from, now, out),
            }
        }
    }

    fn apply(&mut self, from: NodeId, message: Message, now: Instant, out: &mut Out<'_>) {
        if matches!(message, Message::Text { .. } | Message::Send { .. }) {
            self.tally.frames_in += 1;
        }
        match message {
            Message::Text { conn, text } => self.proxy_text(from, conn, text, now, out),
            Message::Gone { conn, how } => {
                if let Some(p) = self.proxy_ids.remove(&(from, conn)) {
                    self.proxies.remove(&p);
                    self.hub_event(HubEvent::Disconnect { conn: p, how }, now, out);
                }
            }
            Message::Send {
                conn,
                frame,
                from: None,
            } => {
                if self.routed_to(conn, from) {
                    out.push(Output::Send {
                        to: conn,
                        frame,
                        from: None,
                    });
                }
            }
            Message::Send {
                conn,
                frame,
                from: Some(sender),
            } => self.relayed_signal(from, conn, frame, sender, out),
            Message::Refused { conn, from: sender } => {
                if let Some(p) = self.proxy_ids.get(&(from, conn)) {
                    let event = HubEvent::Refused {
                        from: sender,
                        to: *p,
                    };
                    self.hub_event(event, now, out);
                }
            }
            Message::Close { conn, reason } => {
                if self.routed_to(conn, from) {
                    self.forget_remote_client(conn, now);
                    out.push(Output::Close { conn, reason });
                }
            }
            Message::CloseNormally { conn } => {
                if self.routed_to(conn, from) {
                    self.forget_remote_client(conn, now);
                    out.push(Output::CloseNormally { conn });
                }
            }
            Message::Joined { conn } => {
                if let Some(Client {
                    route: Route::Remote { owner, joined, .. },
                    ..
                }) = self.clients.get_mut(&conn)
                {
                    if *owner == from {
                        *joined = true;
                    }
                }
            }
            Message::MailboxOp {
                req,
                id,
                wait,
                text,
            } => {
                let key: Arc<str> =
                    Arc::from(format!("mb:{}", String::from_utf8_lossy(&id)).as_str());
                let request = MailboxRequest {
                    key: key.clone(),
                    id,
                    wait,
                    text,
                    owner: None,
                };
                let origin = Origin::Remote(from, req);
                if self.owned.contains(&key) {
                    self.run_mailbox(origin, request, now);
                } else {
                    self.remote_requests.insert((from, req), request);
                    self.claim(key, Waiter::Mailbox(origin));
                }
            }
            Message::MailboxDone { req, result } => {
                if self
                    .requests
                    .get(&req)
                    .is_some_and(|r| r.owner == Some(from))
                {
                    self.requests.remove(&req);
                    self.mailbox_out.push_back((req, result));
                }
            }
            Message::MailboxCancel { req } => {
                self.remote_requests.remove(&(from, req));
                self.cancel_ticket(Origin::Remote(from, req));
            }
            Message::MailboxRedirect { req, .. } => {
                if let Some(request) = self.requests.get_mut(&req) {
                    if request.owner == Some(from) {
                        request.owner = None;
                        self.route_mailbox(req, now);
                    }
                }
            }
            Message::Redirect { conn, owner } => {
                let Some(Client {
                    route:
                        Route::Remote {
                            owner: old,
                            joined: false,
                            room,
                            join,
                        },
                    ..
                }) = self.clients.get(&conn)
                else {
                    return;
                };
                if *old != from {
                    return;
                }
                let (room, join) = (room.clone(), join.clone());
                self.unroute(conn, Departure::Lost);
                if let Some(client) = self.clients.get_mut(&conn) {
                    client.route = Route::Here;
                }
                if owner != self.me && !self.dead.contains_key(&owner) {
                    self.routes
                        .insert(room.clone(), RouteEntry { owner, users: 0 });
                }
                self.route_join(conn, room, join, now, out);
            }
        }
    }

    /// The owner `owner` relayed a signal from its connection `sender` to
    /// this server's client `conn`. The owner's hub could not see the
    /// client's queue: the rule it would have applied is applied here, and
    /// a refusal goes back to the owner (the first of a run), which tells
    /// the sender `peer_busy`, as a server alone would.
    fn relayed_signal(
        &mut self,
        owner: NodeId,
        conn: ConnId,
        frame: peerchat_rooms::Frame,
        sender: ConnId,
        out: &mut Out<'_>,
    ) {
        if !self.routed_to(conn, owner) {
            return;
        }
        let queued = out.backlog().queued(conn, sender);
        let admitted = self.hub.config().admits(queued, frame_cost(frame.len()));
        let cap = self.hub.config().room_capacity;
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        if admitted {
            client.busy.retain(|s| *s != sender);
            out.push(Output::Send {
                to: conn,
                frame,
                from: Some(sender),
            });
        } else if note_busy(&mut client.busy, sender, cap) {
            self.queue(owner, Message::Refused { conn, from: sender });
        }
    }

    /// Whether local client `conn` is routed to the room owner `owner`.
    fn routed_to(&self, conn: ConnId, owner: NodeId) -> bool {
        client_route(&self.clients, conn).is_some_and(|(o, _)| *o == owner)
    }

    /// A client of `from` sent a frame to a room owned here.
    fn proxy_text(
        &mut self,
        from: NodeId,
        conn: ConnId,
        text: Bytes,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        let p = match self.proxy_ids.get(&(from, conn)) {
            Some(p) => *p,
            None => {
                let p = self.next_proxy;
                self.next_proxy += 1;
                self.hub.connect_unmetered(p);
                self.proxy_ids.insert((from, conn), p);
                self.proxies.insert(
                    p,
                    Proxy {
                        node: from,
                        conn,
                        joined: false,
                        waiting: None,
                        busy: Vec::new(),
                    },
                );
                p
            }
        };
        let Some(proxy) = self.proxies.get_mut(&p) else {
            return;
        };
        if let Some(frames) = &mut proxy.waiting {
            if self.held_bytes + text.len() > self.config.held_bytes {
                return;
            }
            self.held_bytes += text.len();
            frames.push(text);
            return;
        }
        if !proxy.joined {
            if let Some(room) = join_room(&text) {
                if !self.owned.contains(&*room) {
                    self.held_bytes += text.len();
                    proxy.waiting = Some(vec![text]);
                    self.claim(room, Waiter::Proxy(p));
                    return;
                }
            }
        }
        self.hub_event(HubEvent::Text { conn: p, text }, now, out);
    }

    /// Sends a join (and whatever follows it) where its room lives.
    fn route_join(
        &mut self,
        conn: ConnId,
        room: Arc<str>,
        text: Bytes,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        self.unroute(conn, Departure::Lost);
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        if self.owned.contains(&*room) {
            client.route = Route::Here;
            self.hub_event(HubEvent::Text { conn, text }, now, out);
            return;
        }
        if let Some(entry) = self.routes.get_mut(&*room) {
            entry.users += 1;
            let owner = entry.owner;
            client.route = Route::Remote {
                owner,
                room,
                joined: false,
                join: text.clone(),
            };
            self.forward(conn, owner, text, now, out);
            return;
        }
        self.held_bytes += text.len();
        client.route = Route::Claiming {
            room: room.clone(),
            frames: vec![text],
        };
        self.claim(room, Waiter::Client(conn));
    }

    /// Undoes a client's route (its place in a claim, or its binding to a
    /// remote owner, who is told it is gone); the client's route is then
    /// stale, to be set by the caller.
    fn unroute(&mut self, conn: ConnId, how: Departure) {
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        match std::mem::replace(&mut client.route, Route::Here) {
            Route::Here => {}
            Route::Claiming { room, frames } => {
                self.held_bytes -= frames.iter().map(Bytes::len).sum::<usize>();
                if let Some(claim) = self.claims.get_mut(&room) {
                    claim
                        .waiters
                        .retain(|w| !matches!(w, Waiter::Client(c) if *c == conn));
                }
            }
            Route::Remote { owner, room, .. } => {
                self.queue(owner, Message::Gone { conn, how });
                self.drop_route_user(&room);
            }
        }
    }

    fn drop_route_user(&mut self, room: &str) {
        if let Some(entry) = self.routes.get_mut(room) {
            entry.users = entry.users.saturating_sub(1);
            if entry.users == 0 {
                self.routes.remove(room);
            }
        }
    }

    /// The owner closed a client routed to it: forget it here too.
    fn forget_remote_client(&mut self, conn: ConnId, now: Instant) {
        if let Some(client) = self.clients.remove(&conn) {
            if let Route::Remote { room, .. } = client.route {
                self.drop_route_user(&room);
            }
        }
        // The hub only knows it as a connection that never joined here.
        self.hub
            .disconnect(conn, Departure::Lost, now, &mut Vec::new());
    }

    /// Forwards a client's frame to its room's owner; a link too backed up
    /// cuts the client off instead.
    fn forward(
        &mut self,
        conn: ConnId,
        owner: NodeId,
        text: Bytes,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        if !self.queue(owner, Message::Text { conn, text }) {
            self.tally.clients_cut_off += 1;
            self.cut_off(conn, now, out);
        }
    }

    /// Closes a client whose frames cannot be taken (too much is waiting
    /// for its room's server): it counts as lost, and may come back.
    fn cut_off(&mut self, conn: ConnId, now: Instant, out: &mut Out<'_>) {
        match self.clients.get(&conn).map(|c| &c.route) {
            Some(Route::Here) => {
                // Its frames are held for the hub: close it now, and let
                // the hub hear of it in order.
                self.clients.remove(&conn);
                out.push(Output::Send {
                    to: conn,
                    frame: error_frame(ErrorCode::ShuttingDown, MOVING),
                    from: None,
                });
                out.push(Output::Close {
                    conn,
                    reason: ErrorCode::ShuttingDown,
                });
                self.hub_event(
                    HubEvent::Disconnect {
                        conn,
                        how: Departure::Lost,
                    },
                    now,
                    out,
                );
            }
            Some(_) => self.close(conn, ErrorCode::ShuttingDown, MOVING, now, out),
            None => {}
        }
    }

    /// Queues a message for another server. Frames are refused when too
    /// much is waiting for it; messages that end or announce something are
    /// always taken (they are small, and at most one per connection).
    fn queue(&mut self, to: NodeId, message: Message) -> bool {
        if self.dead.contains_key(&to) {
            return true;
        }
        let wait = self.config.reorder_wait;
        let peer = self.peers.entry(to).or_insert_with(|| Peer::new(wait));
        let len = message.encoded_len();
        let bulky = matches!(message, Message::Text { .. } | Message::Send { .. });
        if bulky && peer.unacked_bytes + peer.batch_bytes + len > self.config.link_bytes {
            return false;
        }
        if bulky {
            self.tally.frames_out += 1;
        }
        if peer.batch.is_empty() {
            self.dirty.push(to);
        }
        peer.batch.push(message);
        peer.batch_bytes += len;
        true
    }

    fn claim(&mut self, room: Arc<str>, waiter: Waiter) {
        let claim = self.claims.entry(room.clone()).or_default();
        claim.waiters.push(waiter);
        if !claim.in_flight && !self.frozen {
            claim.in_flight = true;
            self.commands.push_back(Command::Claim {
                node: self.me,
                room,
            });
        }
    }

    fn retry_claims(&mut self) {
        for (room, claim) in &mut self.claims {
            if !claim.in_flight {
                claim.in_flight = true;
                self.commands.push_back(Command::Claim {
                    node: self.me,
                    room: room.clone(),
                });
            }
        }
    }

    /// The frames a client held while its room's owner was looked up; its
    /// route is left as `Here`, for the caller to set.
    fn take_claiming(&mut self, conn: ConnId) -> Option<Vec<Bytes>> {
        let client = self.clients.get_mut(&conn)?;
        let Route::Claiming { frames, .. } = std::mem::replace(&mut client.route, Route::Here)
        else {
            return None;
        };
        self.held_bytes -= frames.iter().map(Bytes::len).sum::<usize>();
        Some(frames)
    }

    fn claimed_here(&mut self, waiter: Waiter, now: Instant, out: &mut Out<'_>) {
        match waiter {
            Waiter::Mailbox(origin) => {
                let request = match origin {
                    Origin::Local(req) => self.requests.remove(&req),
                    Origin::Remote(node, req) => self.remote_requests.remove(&(node, req)),
                };
                if let Some(request) = request {
                    self.run_mailbox(origin, request, now);
                }
            }
            Waiter::Client(conn) => {
                let Some(frames) = self.take_claiming(conn) else {
                    return;
                };
                for text in frames {
                    self.hub_event(HubEvent::Text { conn, text }, now, out);
                }
            }
            Waiter::Proxy(p) => {
                let Some(frames) = self.proxies.get_mut(&p).and_then(|x| x.waiting.take()) else {
                    return;
                };
                self.held_bytes -= frames.iter().map(Bytes::len).sum::<usize>();
                for text in frames {
                    self.hub_event(HubEvent::Text { conn: p, text }, now, out);
                }
            }
        }
    }

    fn claimed_elsewhere(
        &mut self,
        waiter: Waiter,
        room: &Arc<str>,
        owner: NodeId,
        now: Instant,
        out: &mut Out<'_>,
    ) {
        match waiter {
            Waiter::Mailbox(Origin::Local(req)) => {
                if let Some(request) = self.requests.get_mut(&req) {
                    request.owner = Some(owner);
                    let message = Message::MailboxOp {
                        req,
                        id: request.id.clone(),
                        wait: request.wait,
                        text: request.text.clone(),
                    };
                    self.queue(owner, message);
                }
            }
            Waiter::Mailbox(Origin::Remote(node, req)) => {
                if self.remote_requests.remove(&(node, req)).is_some() {
                    self.queue(node, Message::MailboxRedirect { req, owner });
                }
            }
            Waiter::Client(conn) => {
                let Some(frames) = self.take_claiming(conn) else {
                    return;
                };
                let Some(join) = frames.first().cloned() else {
                    return;
                };
                let Some(client) = self.clients.get_mut(&conn) else {
                    return;
                };
                client.route = Route::Remote {
                    owner,
                    room: room.clone(),
                    joined: false,
                    join,
                };
                self.routes
                    .entry(room.clone())
                    .or_insert(RouteEntry { owner, users: 0 })
                    .users += 1;
                for text in frames {
                    self.forward(conn, owner, text, now, out);
                }
            }
            Waiter::Proxy(p) => {
                let Some(proxy) = self.proxies.remove(&p) else {
                    return;
                };
                if let Some(frames) = proxy.waiting {
                    self.held_bytes -= frames.iter().map(Bytes::len).sum::<usize>();
                }
                self.proxy_ids.remove(&(proxy.node, proxy.conn));
                self.hub
                    .disconnect(p, Departure::Lost, now, &mut Vec::new());
                self.queue(
                    proxy.node,
                    Message::Redirect {
                        conn: proxy.conn,
                        owner,
                    },
                );
            }
        }
    }

    /// Runs a hub event now, or holds it while the lease is in doubt.
    fn hub_event(&mut self, event: HubEvent, now: Instant, out: &mut Out<'_>) {
        if self.frozen || !self.held.is_empty() {
            self.hold(event, now, out);
        } else {
            self.run_hub_event(event, now, out);
        }
    }

    fn hold(&mut self, event: HubEvent, now: Instant, out: &mut Out<'_>) {
        let size = event.size();
        if size > 0 && self.held_bytes + size > self.config.held_bytes {
            if let HubEvent::Text { conn, .. } = event {
                if conn >= PROXY_BASE {
                    self.cut_off_proxy(conn, now, out);
                } else {
                    self.cut_off(conn, now, out);
                }
            }
            return;
        }
        self.held_bytes += size;
        self.held.push_back(event);
    }

    fn cut_off_proxy(&mut self, p: ConnId, now: Instant, out: &mut Out<'_>) {
        if let Some(proxy) = self.proxies.remove(&p) {
            self.proxy_ids.remove(&(proxy.node, proxy.conn));
            if let Some(frames) = proxy.waiting {
                self.held_bytes -= frames.iter().map(Bytes::len).sum::<usize>();
            }
            self.queue(
                proxy.node,
                Message::Send {
                    conn: proxy.conn,
                    frame: error_frame(ErrorCode::ShuttingDown, MOVING),
                    from: None,
                },
            );
            self.queue(
                proxy.node,
                Message::Close {
                    conn: proxy.conn,
                    reason: ErrorCode::ShuttingDown,
                },
            );
            self.hub_event(
                HubEvent::Disconnect {
                    conn: p,
                    how: Departure::Lost,
                },
                now,
                out,
            );
        }
    }

    fn thaw(&mut self, now: Instant, out: &mut Out<'_>) {
        self.frozen = false;
        while let Some(event) = self.held.pop_front() {
            self.held_bytes -= event.size();
            self.run_hub_event(event, now, out);
        }
    }

    fn run_hub_event(&mut self, event: HubEvent, now: Instant, out: &mut Out<'_>) {
        let mut hub_out = Vec::new();
        match event {
            HubEvent::Text { conn, text } => {
                let text = std::str::from_utf8(&text).unwrap_or_default();
                self.hub
                    .handle_text(conn, text, now, out.backlog(), &mut hub_out);
                if conn >= PROXY_BASE && self.hub.is_joined(conn) {
                    if let Some(proxy) = self.proxies.get_mut(&conn) {
                        if !proxy.joined {
                            proxy.joined = true;
                            let (node, conn) = (proxy.node, proxy.conn);
                            // Ahead of the `joined` frame in the same entry.
                            self.queue(node, Message::Joined { conn });
                        }
                    }
                }
            }
            HubEvent::Disconnect { conn, how } => self.hub.disconnect(conn, how, now, &mut hub_out),
            HubEvent::Close {
                conn,
                reason,
                message,
            } => self.hub.close(conn, reason, &message, now, &mut hub_out),
            HubEvent::JoinDeadline { conn } => self.hub.join_deadline(conn, &mut hub_out),
            HubEvent::Refused { from, to } => self.hub.refused(from, to, &mut hub_out),
        }
        self.route_outputs(hub_out, now, out);
    }

    /// Sends the hub's output to this server's clients, or to the servers
    /// of the clients it is for. A proxy whose link is too backed up is
    /// cut off, as a slow local client is by the transport.
    fn route_outputs(&mut self, mut hub_out: Vec<Output>, now: Instant, out: &mut Out<'_>) {
        let mut more = Vec::new();
        while !hub_out.is_empty() {
            for output in hub_out.drain(..) {
                let (to, message) = match output {
                    Output::Send { to, frame, from } if to >= PROXY_BASE => (
                        to,
                        Message::Send {
                            conn: 0,
                            frame,
                            from,
                        },
                    ),
                    Output::Close { conn, reason } if conn >= PROXY_BASE => {
                        (conn, Message::Close { conn: 0, reason })
                    }
                    Output::CloseNormally { conn } if conn >= PROXY_BASE => {
                        (conn, Message::CloseNormally { conn: 0 })
                    }
                    local => {
                        // Only to clients still connected: one whose end
                        // was held for the hub is gone already.
                        let (Output::Send { to: conn, .. }
                        | Output::Close { conn, .. }
                        | Output::CloseNormally { conn }) = &local;
                        let here = match &local {
                            Output::Send { .. } => self.clients.contains_key(conn),
                            _ => self.clients.remove(conn).is_some(),
                        };
                        if here {
                            out.push(local);
                        }
                        continue;
                    }
                };
                let closing = !matches!(message, Message::Send { .. });
                let Some((node, conn)) = self.proxies.get(&to).map(|p| (p.node, p.conn)) else {
                    continue;
                };
                if closing {
                    self.proxies.remove(&to);
                    self.proxy_ids.remove(&(node, conn));
                }
                let message = with_conn(message, conn);
                let signal_from = match &message {
                    Message::Send { from, .. } => *from,
                    _ => None,
                };
                let queued = self.queue(node, message);
                let cap = self.hub.config().room_capacity;
                if let (Some(sender), Some(proxy)) = (signal_from, self.proxies.get_mut(&to)) {
                    if queued {
                        proxy.busy.retain(|s| *s != sender);
                    } else {
                        // Too much waits for that server: push back on the
                        // sender, as a full queue would.
                        if note_busy(&mut proxy.busy, sender, cap) {
                            self.hub.refused(sender, to, &mut more);
                        }
                        continue;
                    }
                }
                if !queued {
                    // Too much waits for that server: cut the client off.
                    self.proxies.remove(&to);
                    self.proxy_ids.remove(&(node, conn));
                    self.queue(
                        node,
                        Message::Close {
                            conn,
                            reason: ErrorCode::SlowConsumer,
                        },
                    );
                    self.hub.disconnect(to, Departure::Lost, now, &mut more);
                }
            }
            std::mem::swap(&mut hub_out, &mut more);
        }
    }

    /// Gives back the rooms owned here that nobody is in any more.
    fn release_empty_rooms(&mut self) {
        if !self.held.is_empty() {
            return;
        }
        let mailbox = self.mailbox.as_ref();
        let empty: Vec<Arc<str>> = self
            .owned
            .iter()
            .filter(|key| match key.strip_prefix("mb:") {
                Some(id) => !mailbox.is_some_and(|m| m.has_id(id)),
                None => !self.hub.has_room(key),
            })
            .filter(|key| !self.claims.contains_key(*key))
            .cloned()
            .collect();
        for room in empty {
            self.owned.remove(&room);
            self.commands.push_back(Command::Release {
                node: self.me,
                room,
            });
        }
    }

    /// Another server is gone (its lease ran out, or it left): its clients
    /// in rooms owned here are lost (away for the resume grace, when they
    /// have a key); this server's clients in rooms it owned are closed and
    /// join again, and pending joins look for the room's new owner.
    fn peer_died(&mut self, peer: NodeId, now: Instant, out: &mut Out<'_>) {
        self.dead.insert(peer, now);
        self.tally.peers_gone += 1;
        self.drop_requests_to(Some(peer));
        self.remote_requests.retain(|(node, _), _| *node != peer);
        let theirs: Vec<Origin> = self
            .ticket_of
            .keys()
            .filter(|o| matches!(o, Origin::Remote(node, _) if *node == peer))
            .copied()
            .collect();
        for origin in theirs {
            self.cancel_ticket(origin);
        }
        self.peers.remove(&peer);
        self.dirty.retain(|id| *id != peer);
        self.routes.retain(|_, r| r.owner != peer);
        let lost: Vec<ConnId> = self
            .proxies
            .iter()
            .filter(|(_, x)| x.node == peer)
            .map(|(p, _)| *p)
            .collect();
        for p in lost {
            if let Some(proxy) = self.proxies.remove(&p) {
                self.proxy_ids.remove(&(proxy.node, proxy.conn));
                if let Some(frames) = proxy.waiting {
                    self.held_bytes -= frames.iter().map(Bytes::len).sum::<usize>();
                }
            }
            self.hub_event(
                HubEvent::Disconnect {
                    conn: p,
                    how: Departure::Lost,
                },
                now,
                out,
            );
        }
        let routed: Vec<(ConnId, bool)> = self
            .clients
            .iter()
            .filter_map(|(conn, c)| match &c.route {
                Route::Remote { owner, joined, .. } if *owner == peer => Some((*conn, *joined)),
                _ => None,
            })
            .collect();
        for (conn, joined) in routed {
            let Some(client) = self.clients.get_mut(&conn) else {
                continue;
            };
            let Route::Remote { room, join, .. } =
                std::mem::replace(&mut client.route, Route::Here)
            else {
                continue;
            };
            if joined {
                self.clients.remove(&conn);
                self.hub
                    .close(conn, ErrorCode::ShuttingDown, MOVING, now, out);
            } else {
                // Not in yet: ask again who owns the room.
                self.route_join(conn, room, join, now, out);
            }
        }
    }

    /// Entries from `peer` were lost: what they said is unknown, so every
    /// client between the two servers starts afresh. Its clients in rooms
    /// owned here are lost (and its server closes them, so that they join
    /// again); this server's clients in rooms it owns are closed, and it
    /// hears they are gone.
    fn reset_link(&mut self, peer: NodeId, now: Instant, out: &mut Out<'_>) {
        self.tally.link_resets += 1;
        let proxies: Vec<ConnId> = self
            .proxies
            .iter()
            .filter(|(_, x)| x.node == peer)
            .map(|(p, _)| *p)
            .collect();
        for p in proxies {
            self.cut_off_proxy(p, now, out);
        }
        let routed: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(&c.route, Route::Remote { owner, .. } if *owner == peer))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in routed {
            self.close(conn, ErrorCode::ShuttingDown, MOVING, now, out);
        }
    }

    /// Redis says this server is dead to the cluster (its lease ran out and
    /// another server noticed, or Redis lost its data): every room it owned
    /// may have moved and every client it forwarded is lost at its room's
    /// owner. It closes them all (they join again, as after a server
    /// restart) and registers again under a new id.
    fn start_over(&mut self, now: Instant, out: &mut Out<'_>) {
        self.tally.restarts += 1;
        let mut hub_out = Vec::new();
        for room in self.owned.drain() {
            self.hub
                .close_room(&room, ErrorCode::ShuttingDown, MOVING, &mut hub_out);
        }
        // Nobody elsewhere is to be told anything: only local clients
        // still connected.
        for output in hub_out {
            match output {
                Output::Send { to, .. } => {
                    if self.clients.contains_key(&to) {
                        out.push(output);
                    }
                }
                Output::Close { conn, .. } | Output::CloseNormally { conn } => {
                    if self.clients.remove(&conn).is_some() {
                        out.push(output);
                    }
                }
            }
        }
        for (p, _) in self.proxies.drain() {
            self.hub
                .disconnect(p, Departure::Lost, now, &mut Vec::new());
        }
        self.proxy_ids.clear();
        // What was held for the hub: the frames are moot (their rooms are
        // gone); the ends of connections still matter to the hub.
        for event in std::mem::take(&mut self.held) {
            match event {
                HubEvent::Text { .. } => {}
                HubEvent::Disconnect { conn, how } if conn < PROXY_BASE => {
                    self.hub.disconnect(conn, how, now, out);
                }
                HubEvent::Close {
                    conn,
                    reason,
                    message,
                } if conn < PROXY_BASE => self.hub.close(conn, reason, &message, now, out),
                HubEvent::JoinDeadline { conn } => self.hub.join_deadline(conn, out),
                _ => {}
            }
        }
        let remote: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(c.route, Route::Remote { .. }))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in remote {
            self.clients.remove(&conn);
            self.hub
                .close(conn, ErrorCode::ShuttingDown, MOVING, now, out);
        }
        // The mailbox's ids may have moved: every request ends as timed
        // out (asked again, they find the ids' new owners).
        self.drop_requests_to(None);
        self.remote_requests.clear();
        for (_, origin) in std::mem::take(&mut self.tickets) {
            if let Origin::Local(req) = origin {
                self.mailbox_out.push_back((req, Ok(Resolution::TimedOut)));
            }
        }
        self.ticket_of.clear();
        if let Some(mailbox) = self.mailbox.as_mut() {
            *mailbox = Mailbox::new(mailbox.config().clone());
        }
        self.routes.clear();
        self.peers.clear();
        self.dirty.clear();
        for claim in self.claims.values_mut() {
            claim.in_flight = false;
            claim.waiters.retain(|w| matches!(w, Waiter::Client(_)));
        }
        self.claims.retain(|_, c| !c.waiters.is_empty());
        self.held_bytes = self
            .clients
            .values()
            .map(|c| match &c.route {
                Route::Claiming { frames, .. } => frames.iter().map(Bytes::len).sum(),
                _ => 0,
            })
            .sum();
        self.me = NodeId(self.rng.random());
        self.registered = false;
        self.lease_until = None;
        self.frozen = true;
        self.next_beat = now;
    }
}

/// The owner a client's frames go to, and whether it has joined there.
fn client_route(clients: &HashMap<ConnId, Client>, conn: ConnId) -> Option<(&NodeId, bool)> {
    match clients.get(&conn).map(|c| &c.route) {
        Some(Route::Remote { owner, joined, .. }) => Some((owner, *joined)),
        _ => None,
    }
}

/// The room of a well-formed `join`.
fn join_room(text: &[u8]) -> Option<Arc<str>> {
    let text = std::str::from_utf8(text).ok()?;
    match ClientMessage::parse(text) {
        Ok(ClientMessage::Join { room, .. }) => Some(Arc::from(&*room)),
        _ => None,
    }
}

/// Notes that `sender` was told of a refusal (one of a run); returns
/// whether it is the first of its run, to be told. The list holds at most
/// `cap` senders (the room's capacity): beyond that the oldest is dropped,
/// which costs at most one more report.
fn note_busy(busy: &mut Vec<ConnId>, sender: ConnId, cap: usize) -> bool {
    if busy.contains(&sender) {
        return false;
    }
    if busy.len() >= cap.max(1) {
        busy.remove(0);
    }
    busy.push(sender);
    true
}

fn with_conn(message: Message, conn: ConnId) -> Message {
    match message {
        Message::Send { frame, from, .. } => Message::Send { conn, frame, from },
        Message::Close { reason, .. } => Message::Close { conn, reason },
        Message::CloseNormally { .. } => Message::CloseNormally { conn },
        other => other,
    }
}

fn error_frame(code: ErrorCode, message: &str) -> peerchat_rooms::Frame {
    let text = peerchat_protocol::signaling::ServerMessage::error(code, message).to_json();
    peerchat_rooms::Frame::from_utf8(Bytes::from(text)).expect("JSON is UTF-8")
}
