//! peerchat's rooms and presence as a sans-IO state machine.
//!
//! [`Hub`] holds every connection and room. A transport feeds it events
//! (a connection opened, a text frame arrived, a connection closed, a timer
//! fired) together with the current time, and the hub appends what to do to
//! an output list: frames to send to connections and connections to close.
//! It never touches a socket, a clock or a task, so it is tested by calling
//! it directly, and the WebSocket adapter around it stays thin.
//!
//! Each connection's outgoing queue is bounded in bytes, and the policy is
//! the hub's: the transport holds the queues and tells the hub, through
//! [`Backlog`], how much waits for a connection in all and how much of it
//! came from a given sender. A signal to a connection whose queue is past
//! [`HubConfig::send_queue_bytes`], or holds the sender's fair share of it
//! already, is refused to the sender (`peer_busy`): the sender is pushed
//! back, and the recipient stays. Only the hub's own frames (presence,
//! errors) may go past that, by a reserve; a queue past even that
//! ([`HubConfig::queue_hard_limit`]) belongs to a client that does not read,
//! which the transport closes with [`Hub::close`] and `slow_consumer`.
//!
//! Time-driven work (members whose resume grace period ran out) follows the
//! same pattern: [`Hub::next_deadline`] says when the hub next needs to be
//! woken, and the transport calls [`Hub::handle_timeout`] at or after that
//! instant.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peerchat_protocol::signaling::{ClientMessage, IceServer, Member, RawValue, ServerMessage};
use peerchat_protocol::validate::nick_key;
use peerchat_protocol::{ErrorCode, PROTOCOL_VERSION, ProtocolError, peer_id_from_key};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Identifies a connection; chosen by the transport, unique while it is open.
pub type ConnId = u64;

/// One text frame to send: UTF-8 JSON, cheap to clone for broadcasts. (The
/// PeerJS endpoint's state machine sends these too.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// A frame of this text.
    pub fn new(text: String) -> Self {
        Self(Bytes::from(text))
    }

    /// A frame of these bytes, if they are UTF-8 (a frame a hub made,
    /// carried from another server, say).
    pub fn from_utf8(bytes: Bytes) -> Option<Self> {
        std::str::from_utf8(&bytes).is_ok().then_some(Self(bytes))
    }

    /// The frame's bytes (always valid UTF-8).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (it never is).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The frame's text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// What the transport must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Queue `frame` on connection `to`.
    Send {
        /// The recipient.
        to: ConnId,
        /// The frame.
        frame: Frame,
        /// For a relayed signal, the sender's connection: the transport
        /// counts the frame against the pair's share while it is queued
        /// ([`Backlog::queued`]).
        from: Option<ConnId>,
    },
    /// Close connection `conn` after the frames queued before this; the hub
    /// has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, also sent to the client in an error frame just before.
        reason: ErrorCode,
    },
    /// Close connection `conn` normally (WebSocket close code 1000) after
    /// the frames queued before this, because the client asked to leave;
    /// the hub has already forgotten it.
    CloseNormally {
        /// The connection.
        conn: ConnId,
    },
}

/// How a connection ended, as far as the transport can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The client ended it on purpose (a WebSocket close with code 1000):
    /// its membership ends at once and the room is told.
    Left,
    /// It was lost: a network error, a close with another code, no sign of
    /// life, or the server cut it off. A member that joined with a key stays
    /// in its room, away, for [`HubConfig::resume_grace`].
    Lost,
}

/// Bytes a queued frame is counted as beyond its text: what holding it
/// costs the transport (its allocation and its place in the queue), so
/// that a flood of tiny frames is bounded too.
pub const FRAME_OVERHEAD: usize = 64;

/// What a frame of `len` bytes counts for in a queue.
pub fn frame_cost(len: usize) -> usize {
    len + FRAME_OVERHEAD
}

/// How much waits in a connection's outgoing queue, in bytes as counted by
/// [`frame_cost`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queued {
    /// Everything queued.
    pub total: usize,
    /// What came from one sender's signals.
    pub from_sender: usize,
}

/// The transport's outgoing queues, as the hub needs to see them.
pub trait Backlog {
    /// What waits for `to`, and how much of it `from` sent.
    fn queued(&self, to: ConnId, from: ConnId) -> Queued;
}

/// Queues that are always empty: for a transport that writes at once, and
/// for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBacklog;

impl Backlog for NoBacklog {
    fn queued(&self, _to: ConnId, _from: ConnId) -> Queued {
        Queued::default()
    }
}

/// Chooses the ICE servers handed to a member in `joined`, so that TURN
/// credentials can be made for each member (and only for members).
pub trait IceProvider: fmt::Debug + Send + Sync {
    /// The ICE servers for the member with this peer id.
    fn ice_servers(&self, peer_id: &str) -> Vec<IceServer>;

    /// How often a member gets fresh ones while it is in a room (an
    /// `ice_servers` message), for credentials that expire; `None` when
    /// they do not.
    fn refresh_every(&self) -> Option<Duration> {
        None
    }
}

/// The same list for everyone.
impl IceProvider for Vec<IceServer> {
    fn ice_servers(&self, _peer_id: &str) -> Vec<IceServer> {
        self.clone()
    }
}

/// Limits and settings of a [`Hub`].
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Most members in one room, away members included.
    pub room_capacity: usize,
    /// Messages a connection may send per second, on average.
    pub rate_per_sec: u32,
    /// Messages a connection may send in a burst.
    pub rate_burst: u32,
    /// Bytes a connection may send per second, on average: so that no
    /// member can flood another's queue with large signals.
    pub byte_rate_per_sec: u32,
    /// Bytes a connection may send in a burst.
    pub byte_burst: u32,
    /// The ICE servers handed to each member in `joined`.
    pub ice: Arc<dyn IceProvider>,
    /// How long a member that joined with a key stays in its room, away,
    /// after its connection was lost, so that it can resume its membership
    /// on a new connection without the room noticing. Zero turns this off:
    /// every member leaves as soon as its connection ends.
    pub resume_grace: Duration,
    /// Bytes (as counted by [`frame_cost`]) a connection's queue may hold
    /// before signals to it are refused with `peer_busy`; one sender may
    /// hold a quarter of it ([`HubConfig::pair_share`]). A signal to an
    /// empty queue always goes, whatever its size.
    pub send_queue_bytes: usize,
}

impl HubConfig {
    /// What one sender's signals may hold of a recipient's queue.
    pub fn pair_share(&self) -> usize {
        self.send_queue_bytes / 4
    }

    /// Past this, a queue belongs to a client that does not read: the
    /// signal limit, a reserve of a quarter more for the hub's own frames,
    /// and room for one largest signal that found the queue empty.
    pub fn queue_hard_limit(&self, max_message: usize) -> usize {
        self.send_queue_bytes + self.send_queue_bytes / 4 + frame_cost(max_message)
    }

    /// Whether a relayed signal costing `cost` (see [`frame_cost`]) may be
    /// queued for a recipient whose queue holds `queued`: the queue must
    /// stay within [`HubConfig::send_queue_bytes`] and the sender within
    /// its [`HubConfig::pair_share`] of it; an empty queue (or share) takes
    /// any signal, whatever its size. The hub applies it to the queues the
    /// transport tells it of; a transport that holds a recipient's queue
    /// where the hub cannot see it (another server of a cluster) applies it
    /// there, and reports a refusal with [`Hub::refused`].
    pub fn admits(&self, queued: Queued, cost: usize) -> bool {
        let fits = |used: usize, limit: usize| used == 0 || used + cost <= limit;
        fits(queued.total, self.send_queue_bytes) && fits(queued.from_sender, self.pair_share())
    }
}

impl HubConfig {
    /// The default [`HubConfig::room_capacity`] (and `--room-capacity`).
    pub const DEFAULT_ROOM_CAPACITY: u32 = 32;
    /// The default [`HubConfig::rate_per_sec`] (and `--rate-limit`).
    pub const DEFAULT_RATE_PER_SEC: u32 = 100;
    /// The default [`HubConfig::rate_burst`] (and `--rate-burst`).
    pub const DEFAULT_RATE_BURST: u32 = 1000;
    /// The default [`HubConfig::byte_rate_per_sec`] (and
    /// `--rate-limit-bytes`).
    pub const DEFAULT_BYTE_RATE_PER_SEC: u32 = 256 * 1024;
    /// The default [`HubConfig::byte_burst`] (and `--rate-burst-bytes`).
    pub const DEFAULT_BYTE_BURST: u32 = 1024 * 1024;
    /// The default [`HubConfig::resume_grace`] (and `--resume-grace`).
    pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(20);
    /// The default [`HubConfig::send_queue_bytes`] (and
    /// `--send-queue-bytes`).
    pub const DEFAULT_SEND_QUEUE_BYTES: u32 = 256 * 1024;
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            room_capacity: Self::DEFAULT_ROOM_CAPACITY as usize,
            rate_per_sec: Self::DEFAULT_RATE_PER_SEC,
            rate_burst: Self::DEFAULT_RATE_BURST,
            byte_rate_per_sec: Self::DEFAULT_BYTE_RATE_PER_SEC,
            byte_burst: Self::DEFAULT_BYTE_BURST,
            ice: Arc::new(Vec::new()),
            resume_grace: Self::DEFAULT_RESUME_GRACE,
            send_queue_bytes: Self::DEFAULT_SEND_QUEUE_BYTES as usize,
        }
    }
}

/// Counts for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open connections, joined or not.
    pub connections: usize,
    /// Non-empty rooms (a room whose members are all away counts).
    pub rooms: usize,
    /// Connections that are in a room.
    pub members: usize,
    /// Members whose connection was lost, kept for the resume grace period.
    pub away: usize,
}

/// What the hub has done since it started, for metrics: counters that only
/// grow. Kept by the hub as plain numbers (it runs under one lock), read by
/// the transport when it is asked for them, so counting costs the hot path
/// an addition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Members that joined a room (not counting resumes).
    pub joins: u64,
    /// Members that took their place back with their key (after a lost
    /// connection, or from another connection).
    pub resumes: u64,
    /// Members that left a room, for any reason.
    pub leaves: u64,
    /// Members that took a new nickname (`rename`).
    pub renames: u64,
    /// Signals relayed to another member.
    pub signals: u64,
    /// Bytes of the relayed signals' frames.
    pub signal_bytes: u64,
    /// Messages dropped by the per-connection rate limit.
    pub rate_limited: u64,
    /// Error frames sent, by code.
    pub errors: HashMap<ErrorCode, u64>,
}

impl Tally {
    fn error(&mut self, code: ErrorCode) {
        *self.errors.entry(code).or_default() += 1;
    }
}

/// A member's peer id: 16 lowercase hex digits on the wire, a number here,
/// so that members and connections hold no string for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PeerId(u64);

impl PeerId {
    /// The id a client named, if it is one the hub could have given out
    /// (exactly 16 lowercase hex digits).
    fn parse(text: &str) -> Option<Self> {
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if text.len() != 16 || !text.bytes().all(hex) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(Self)
    }

    /// The id derived from a member key.
    fn from_key(room: &str, key: &str) -> Self {
        let id = peer_id_from_key(room, key);
        Self::parse(&id).expect("a derived peer id is 16 lowercase hex digits")
    }

    fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// All rooms and connections.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<Arc<str>, Room>,
    /// How many members (in any room, away or not) have each peer id, so
    /// that a fresh id is checked against every room at once.
    ids: HashMap<PeerId, u32>,
    rng: StdRng,
    join_seq: u64,
    members: usize,
    /// When each away member's grace period ends, soonest first. The second
    /// half of the key tells apart members whose grace ends at the same
    /// instant.
    deadlines: BTreeMap<Deadline, AwayMember>,
    deadline_seq: u64,
    tally: Tally,
    /// When each joined connection gets fresh ICE servers, soonest first
    /// (see [`IceProvider::refresh_every`]). An entry whose connection has
    /// left by then is dropped.
    refreshes: BTreeMap<Deadline, ConnId>,
}

type Deadline = (Instant, u64);

#[derive(Debug)]
struct AwayMember {
    room: Arc<str>,
    peer: PeerId,
}

#[derive(Debug)]
struct Conn {
    joined: Option<Joined>,
    /// The connection's rate limits, unless its transport applies them
    /// before the hub sees its frames ([`Hub::connect_unmetered`]).
    meter: Option<Meter>,
    /// Members a signal was refused to with `peer_busy`, not yet
    /// reached since: only the first refusal of a run is reported. At most
    /// one per member of the room.
    busy: Vec<PeerId>,
}

/// A connection's rate limits: messages and bytes per second, each a token
/// bucket. The hub keeps one per connection; a transport that routes a
/// client's frames elsewhere before they reach a hub (another server of a
/// cluster, say) keeps its own, so that limits apply where the frames
/// enter.
#[derive(Debug)]
pub struct Meter {
    bucket: TokenBucket,
    bytes: TokenBucket,
    /// Whether the last message was dropped by the rate limit: only the
    /// first of a run of dropped messages is answered with an error.
    limited: bool,
}

impl Meter {
    /// A full meter with the limits of `config`.
    pub fn new(config: &HubConfig, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(config.rate_per_sec, config.rate_burst, now),
            bytes: TokenBucket::new(config.byte_rate_per_sec, config.byte_burst, now),
            limited: false,
        }
    }

    /// Whether a message of `len` bytes from `conn` may pass. When it may
    /// not, it is counted in `tally`, and when it is the first of a run of
    /// dropped messages, a `rate_limited` error for `conn` is pushed to
    /// `out`. A transport with meters of its own passes them through
    /// [`Hub::admit`], so that its hub's tally counts what they drop.
    pub fn admit(
        &mut self,
        conn: ConnId,
        len: usize,
        now: Instant,
        tally: &mut Tally,
        out: &mut Vec<Output>,
    ) -> bool {
        let size = u32::try_from(len).unwrap_or(u32::MAX);
        if self.bucket.take(now, 1) && self.bytes.take(now, size) {
            self.limited = false;
            return true;
        }
        tally.rate_limited += 1;
        if !self.limited {
            self.limited = true;
            send_error(
                tally,
                out,
                conn,
                ErrorCode::RateLimited,
                "too many messages: this one and the next ones are dropped until the rate falls",
            );
        }
        false
    }
}

#[derive(Debug)]
struct Joined {
    room: Arc<str>,
    peer: PeerId,
}

#[derive(Debug, Default)]
struct Room {
    members: HashMap<PeerId, RoomMember>,
}

impl Room {
    /// Whether a member other than `except` has a nickname of this
    /// case-insensitive form (away members keep theirs).
    fn nick_taken(&self, key: &str, except: Option<PeerId>) -> bool {
        self.members
            .iter()
            .any(|(id, m)| Some(*id) != except && m.nick_key() == key)
    }

    /// Queues `frame` for every member with a connection, but `except`.
    fn broadcast(&self, frame: &Frame, except: Option<PeerId>, out: &mut Vec<Output>) {
        for (id, m) in &self.members {
            if let Presence::Live(to) = m.presence {
                if Some(*id) != except {
                    out.push(Output::Send {
                        to,
                        frame: frame.clone(),
                        from: None,
                    });
                }
            }
        }
    }
}

#[derive(Debug)]
struct RoomMember {
    presence: Presence,
    nick: Box<str>,
    /// The nickname's case-insensitive form, when it differs from `nick`.
    nick_key: Option<Box<str>>,
    seq: u64,
    /// Whether the member joined with a key, and so may resume.
    keyed: bool,
}

impl RoomMember {
    fn nick_key(&self) -> &str {
        self.nick_key.as_deref().unwrap_or(&self.nick)
    }

    fn set_nick(&mut self, nick: &str, key: String) {
        self.nick_key = (key != nick).then(|| key.into_boxed_str());
        self.nick = nick.into();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// Connected through this connection.
    Live(ConnId),
    /// Its connection was lost; it leaves at this deadline unless it
    /// resumes first.
    Away(Deadline),
}

impl Hub {
    /// A hub whose peer ids come from a generator seeded with `seed`; pass
    /// fresh randomness in production and a constant in tests.
    pub fn new(config: HubConfig, seed: u64) -> Self {
        Self {
            config,
            conns: HashMap::new(),
            rooms: HashMap::new(),
            ids: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            join_seq: 0,
            members: 0,
            deadlines: BTreeMap::new(),
            deadline_seq: 0,
            tally: Tally::default(),
            refreshes: BTreeMap::new(),
        }
    }

    /// The hub's settings.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.conns.len(),
            rooms: self.rooms.len(),
            members: self.members,
            away: self.deadlines.len(),
        }
    }

    /// What the hub has done since it started.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Whether `conn` is in a room.
    pub fn is_joined(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.joined.is_some())
    }

    /// The earliest instant at which [`Hub::handle_timeout`] has work to do,
    /// if any. It only moves earlier when an event adds a deadline; the
    /// transport should check it after every event.
    pub fn next_deadline(&self) -> Option<Instant> {
        let away = self.deadlines.first_key_value().map(|(&(at, _), _)| at);
        let refresh = self.refreshes.first_key_value().map(|(&(at, _), _)| at);
        away.into_iter().chain(refresh).min()
    }

    /// Time passed: every away member whose grace period ended by `now`
    /// leaves its room, and the room is told.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Output>) {
        while let Some(entry) = self.refreshes.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let conn = entry.remove();
            let Some(Joined { peer, .. }) = self.conns.get(&conn).and_then(|c| c.joined.as_ref())
            else {
                continue;
            };
            let frame = ServerMessage::IceServers {
                ice_servers: self.config.ice.ice_servers(&peer.to_hex()),
            }
            .to_json();
            out.push(Output::Send {
                to: conn,
                frame: Frame::new(frame),
                from: None,
            });
            self.schedule_refresh(conn, now);
        }
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (deadline, AwayMember { room, peer }) = entry.remove_entry();
            self.remove_member(&room, peer, Presence::Away(deadline), out);
        }
    }

    /// Schedules `conn`'s next ICE server refresh, if they expire.
    fn schedule_refresh(&mut self, conn: ConnId, now: Instant) {
        if let Some(at) = self
            .config
            .ice
            .refresh_every()
            .and_then(|every| now.checked_add(every))
        {
            self.deadline_seq += 1;
            self.refreshes.insert((at, self.deadline_seq), conn);
        }
    }

    /// A connection opened.
    pub fn connect(&mut self, conn: ConnId, now: Instant) {
        self.conns.insert(
            conn,
            Conn {
                joined: None,
                meter: Some(Meter::new(&self.config, now)),
                busy: Vec::new(),
            },
        );
    }

    /// A connection opened whose frames are rate-limited before they reach
    /// the hub (by a [`Meter`] of the transport's): the hub applies no
    /// limit of its own to it.
    pub fn connect_unmetered(&mut self, conn: ConnId) {
        self.conns.insert(
            conn,
            Conn {
                joined: None,
                meter: None,
                busy: Vec::new(),
            },
        );
    }

    /// Runs a transport's [`Meter`] on a message of `len` bytes from
    /// `conn` ([`Meter::admit`]), counting what it drops in this hub's
    /// tally.
    pub fn admit(
        &mut self,
        meter: &mut Meter,
        conn: ConnId,
        len: usize,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> bool {
        meter.admit(conn, len, now, &mut self.tally, out)
    }

    /// Whether a room of this id has members (away ones included).
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Ends a room without anyone seeing anyone leave, as a server going
    /// away would: every member with a connection is told `reason` and
    /// closed, away members are forgotten, and nobody gets `peer_left`.
    /// Their clients join again (where the room now lives) as after a
    /// server restart.
    pub fn close_room(
        &mut self,
        room_id: &str,
        reason: ErrorCode,
        message: &str,
        out: &mut Vec<Output>,
    ) {
        let Some(room) = self.rooms.remove(room_id) else {
            return;
        };
        for (peer, member) in room.members {
            if let Some(n) = self.ids.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    self.ids.remove(&peer);
                }
            }
            match member.presence {
                Presence::Live(conn) => {
                    self.members -= 1;
                    self.conns.remove(&conn);
                    send_error(&mut self.tally, out, conn, reason, message);
                    out.push(Output::Close { conn, reason });
                }
                Presence::Away(deadline) => {
                    self.deadlines.remove(&deadline);
                }
            }
        }
    }

    /// A text frame arrived on `conn`; `backlog` tells what waits in the
    /// connections' outgoing queues.
    pub fn handle_text(
        &mut self,
        conn: ConnId,
        text: &str,
        now: Instant,
        backlog: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let message = ClientMessage::parse(text);
        self.handle_message(conn, text.len(), message, now, backlog, out);
    }

    /// A text frame of `size` bytes arrived on `conn`, parsed already (so
    /// that a transport can parse it before it takes the hub's lock): as
    /// [`Hub::handle_text`].
    pub fn handle_message(
        &mut self,
        conn: ConnId,
        size: usize,
        message: Result<ClientMessage<'_>, ProtocolError>,
        now: Instant,
        backlog: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(meter) = state.meter.as_mut() {
            if !meter.admit(conn, size, now, &mut self.tally, out) {
                return;
            }
        }
        match message {
            Ok(ClientMessage::Join {
                room, nick, key, ..
            }) => self.join(conn, &room, &nick, key.as_deref(), now, out),
            Ok(ClientMessage::Signal { to, payload }) => {
                self.signal(conn, &to, payload, backlog, out);
            }
            Ok(ClientMessage::Rename { nick }) => self.rename(conn, &nick, out),
            Ok(ClientMessage::Leave) => {
                self.disconnect(conn, Departure::Left, now, out);
                out.push(Output::CloseNormally { conn });
            }
            Err(err) => send_protocol_error(&mut self.tally, out, conn, &err),
        }
    }

    /// A signal from `from` that the hub let through to `to` was refused
    /// further along, where `to`'s queue is held (another server of a
    /// cluster, which applies [`HubConfig::admits`] there): `from` is told
    /// `peer_busy`, naming `to`, if both are still members of one room.
    /// The transport reports only the first refusal of a run (until a
    /// signal from `from` reaches `to` again), as the hub does with its own.
    pub fn refused(&mut self, from: ConnId, to: ConnId, out: &mut Vec<Output>) {
        let joined = |conn: ConnId| self.conns.get(&conn).and_then(|c| c.joined.as_ref());
        let (Some(sender), Some(recipient)) = (joined(from), joined(to)) else {
            return;
        };
        if sender.room == recipient.room {
            send_busy(&mut self.tally, out, from, &recipient.peer.to_hex());
        }
    }

    /// The transport refused a frame itself (too large, binary): tell the
    /// client why. The connection stays open unless the transport closes it.
    pub fn reject(&mut self, conn: ConnId, code: ErrorCode, message: &str, out: &mut Vec<Output>) {
        if self.conns.contains_key(&conn) {
            send_error(&mut self.tally, out, conn, code, message);
        }
    }

    /// The join deadline of `conn` passed: if it has not joined a room, it is
    /// told so and closed.
    pub fn join_deadline(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if self.conns.get(&conn).is_some_and(|c| c.joined.is_none()) {
            let reason = ErrorCode::JoinTimeout;
            send_error(
                &mut self.tally,
                out,
                conn,
                reason,
                "no room was joined in time",
            );
            self.conns.remove(&conn);
            out.push(Output::Close { conn, reason });
        }
    }

    /// Tells `conn` why it is being closed, then forgets it. The connection
    /// counts as lost ([`Departure::Lost`]): a member with a key stays away
    /// for the grace period.
    pub fn close(
        &mut self,
        conn: ConnId,
        reason: ErrorCode,
        message: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if self.conns.contains_key(&conn) {
            send_error(&mut self.tally, out, conn, reason, message);
            self.disconnect(conn, Departure::Lost, now, out);
            out.push(Output::Close { conn, reason });
        }
    }

    /// Closes every connection, telling each client the server is shutting
    /// down, and forgets every member, away or not, without telling anyone
    /// that anyone left: for the clients a stopping server is an outage,
    /// like one that crashed. Announcing departures here would reach the
    /// members closed last and tell them that the others left for good, so
    /// that they dropped their peer connections.
    pub fn shutdown(&mut self, out: &mut Vec<Output>) {
        let reason = ErrorCode::ShuttingDown;
        for conn in std::mem::take(&mut self.conns).into_keys() {
            send_error(
                &mut self.tally,
                out,
                conn,
                reason,
                "the server is shutting down",
            );
            out.push(Output::Close { conn, reason });
        }
        self.rooms.clear();
        self.ids.clear();
        self.deadlines.clear();
        self.refreshes.clear();
        self.members = 0;
    }

    /// `conn` closed (or must be dropped). If it was in a room: when it
    /// [`Departure::Left`], or joined without a key, or the grace period is
    /// zero, it leaves at once and the other members are told; otherwise it
    /// stays in the room, away, until it resumes or the grace period ends.
    pub fn disconnect(
        &mut self,
        conn: ConnId,
        how: Departure,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(Conn {
            joined: Some(Joined { room, peer }),
            ..
        }) = self.conns.remove(&conn)
        else {
            return;
        };
        let grace = self.config.resume_grace;
        let until = now.checked_add(grace).filter(|_| !grace.is_zero());
        let member = self
            .rooms
            .get_mut(&room)
            .and_then(|r| r.members.get_mut(&peer))
            .filter(|m| m.keyed && m.presence == Presence::Live(conn));
        match (how, until, member) {
            (Departure::Lost, Some(until), Some(member)) => {
                self.deadline_seq += 1;
                let deadline = (until, self.deadline_seq);
                member.presence = Presence::Away(deadline);
                self.members -= 1;
                self.deadlines.insert(deadline, AwayMember { room, peer });
            }
            _ => self.remove_member(&room, peer, Presence::Live(conn), out),
        }
    }

    /// Removes a member from its room, if it is still `as_of` (connected
    /// through that connection, or away until that deadline), and tells the
    /// others; the room goes when it is empty.
    fn remove_member(
        &mut self,
        room_id: &str,
        peer: PeerId,
        as_of: Presence,
        out: &mut Vec<Output>,
    ) {
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        if room.members.get(&peer).is_none_or(|m| m.presence != as_of) {
            return;
        }
        let Some(member) = room.members.remove(&peer) else {
            return;
        };
        self.tally.leaves += 1;
        if let Some(n) = self.ids.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.ids.remove(&peer);
            }
        }
        match member.presence {
            Presence::Live(_) => self.members -= 1,
            Presence::Away(deadline) => {
                self.deadlines.remove(&deadline);
            }
        }
        if room.members.is_empty() {
            self.rooms.remove(room_id);
            return;
        }
        let frame = Frame::new(
            ServerMessage::PeerLeft {
                id: Cow::Owned(peer.to_hex()),
            }
            .to_json(),
        );
        room.broadcast(&frame, None, out);
    }

    fn join(
        &mut self,
        conn: ConnId,
        room_id: &str,
        nick: &str,
        key: Option<&str>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if self.is_joined(conn) {
            send_error(
                &mut self.tally,
                out,
                conn,
                ErrorCode::AlreadyJoined,
                "this connection is already in a room; open another connection to join another",
            );
            return;
        }
        let nick_key = nick_key(nick);
        let derived = key.map(|key| PeerId::from_key(room_id, key));
        let room = self.rooms.get(room_id);
        // Whether the key's member is in the room already, to be resumed.
        let existing = derived.and_then(|id| room.and_then(|r| r.members.get(&id)));
        if let Some(room) = room {
            if existing.is_none() && room.members.len() >= self.config.room_capacity {
                send_error(
                    &mut self.tally,
                    out,
                    conn,
                    ErrorCode::RoomFull,
                    &format!("the room is full ({} members)", self.config.room_capacity),
                );
                return;
            }
            if room.nick_taken(&nick_key, derived) {
                send_nick_taken(&mut self.tally, out, conn, nick);
                return;
            }
        } else if self.config.room_capacity == 0 {
            send_error(
                &mut self.tally,
                out,
                conn,
                ErrorCode::RoomFull,
                "rooms are closed",
            );
            return;
        }
        if existing.is_some_and(|m| !m.keyed) {
            // A random id that happens to equal the derived one: never seen
            // in practice (one chance in 2^64), but never a takeover.
            send_error(
                &mut self.tally,
                out,
                conn,
                ErrorCode::BadKey,
                "this key cannot be used in this room; pick another",
            );
            return;
        }
        let resumed = existing.is_some();
        if resumed {
            self.tally.resumes += 1;
        } else {
            self.tally.joins += 1;
        }

        let peer = match derived {
            Some(id) => id,
            None => self.fresh_peer_id(),
        };
        let room_key = match self.rooms.get_key_value(room_id) {
            Some((key, _)) => key.clone(),
            None => Arc::from(room_id),
        };
        let room = self.rooms.entry(room_key.clone()).or_default();
        // Told to the others once the newcomer has its `joined`: a new
        // member, or a resumed one under a new nickname.
        let mut announce = None;
        if resumed {
            let Some(member) = room.members.get_mut(&peer) else {
                return;
            };
            match member.presence {
                Presence::Live(old) => {
                    // The old connection is still open (a reloaded page, or a
                    // connection not yet noticed dead): the new one takes
                    // its place.
                    send_error(
                        &mut self.tally,
                        out,
                        old,
                        ErrorCode::Replaced,
                        "you joined again on another connection, which took this one's place",
                    );
                    out.push(Output::Close {
                        conn: old,
                        reason: ErrorCode::Replaced,
                    });
                    self.conns.remove(&old);
                }
                Presence::Away(deadline) => {
                    self.deadlines.remove(&deadline);
                    self.members += 1;
                }
            }
            member.presence = Presence::Live(conn);
            if &*member.nick != nick {
                member.set_nick(nick, nick_key);
                announce = Some(nick);
            }
        } else {
            self.join_seq += 1;
            announce = Some(nick);
            let mut member = RoomMember {
                presence: Presence::Live(conn),
                nick: Box::default(),
                nick_key: None,
                seq: self.join_seq,
                keyed: key.is_some(),
            };
            member.set_nick(nick, nick_key);
            room.members.insert(peer, member);
            *self.ids.entry(peer).or_default() += 1;
            self.members += 1;
        }

        let mut others: Vec<(u64, Member)> = room
            .members
            .iter()
            .filter(|(id, _)| **id != peer)
            .map(|(id, m)| {
                (
                    m.seq,
                    Member {
                        id: id.to_hex(),
                        nick: m.nick.to_string(),
                    },
                )
            })
            .collect();
        others.sort_unstable_by_key(|(seq, _)| *seq);
        let joined = ServerMessage::Joined {
            v: PROTOCOL_VERSION,
            room: Cow::Borrowed(room_id),
            you: Member {
                id: peer.to_hex(),
                nick: nick.to_owned(),
            },
            members: others.into_iter().map(|(_, m)| m).collect(),
            ice_servers: self.config.ice.ice_servers(&peer.to_hex()),
            resumed,
        };
        out.push(Output::Send {
            to: conn,
            frame: Frame::new(joined.to_json()),
            from: None,
        });
        if let Some(nick) = announce {
            let frame = Frame::new(
                ServerMessage::PeerJoined {
                    peer: Member {
                        id: peer.to_hex(),
                        nick: nick.to_owned(),
                    },
                }
                .to_json(),
            );
            room.broadcast(&frame, Some(peer), out);
        }
        if let Some(state) = self.conns.get_mut(&conn) {
            state.joined = Some(Joined {
                room: room_key,
                peer,
            });
            self.schedule_refresh(conn, now);
        }
    }

    /// A member takes a new nickname, under the rules of `join`: not used
    /// by anyone else in the room (away members keep theirs), ignoring
    /// case and look-alike letters. It keeps its peer id and place.
    fn rename(&mut self, conn: ConnId, nick: &str, out: &mut Vec<Output>) {
        let Some(Joined { room, peer }) =
            joined_or_refuse(&self.conns, &mut self.tally, out, conn, "renaming yourself")
        else {
            return;
        };
        let peer = *peer;
        let Some(room) = self.rooms.get_mut(room) else {
            return;
        };
        let key = nick_key(nick);
        if room.nick_taken(&key, Some(peer)) {
            send_nick_taken(&mut self.tally, out, conn, nick);
            return;
        }
        let Some(member) = room.members.get_mut(&peer) else {
            return;
        };
        let changed = &*member.nick != nick;
        if changed {
            member.set_nick(nick, key);
            self.tally.renames += 1;
        }
        let you = Member {
            id: peer.to_hex(),
            nick: nick.to_owned(),
        };
        if changed {
            let frame = Frame::new(ServerMessage::PeerRenamed { peer: you.clone() }.to_json());
            room.broadcast(&frame, Some(peer), out);
        }
        out.push(Output::Send {
            to: conn,
            frame: Frame::new(ServerMessage::Renamed { you }.to_json()),
            from: None,
        });
    }

    fn signal(
        &mut self,
        conn: ConnId,
        to: &str,
        payload: &RawValue,
        backlog: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let Some(Joined { room, peer }) =
            joined_or_refuse(&self.conns, &mut self.tally, out, conn, "sending signals")
        else {
            return;
        };
        let target = PeerId::parse(to)
            .filter(|to| to != peer)
            .and_then(|to| self.rooms.get(room)?.members.get(&to));
        let Some(target) = target else {
            send_error(
                &mut self.tally,
                out,
                conn,
                ErrorCode::UnknownPeer,
                &format!("no other member of your room has the peer id \"{to}\""),
            );
            return;
        };
        let Presence::Live(target) = target.presence else {
            send_undelivered(
                &mut self.tally,
                out,
                conn,
                ErrorCode::PeerAway,
                to,
                format!("{to} lost its connection and may come back; the signal was not delivered"),
            );
            return;
        };
        let target_id = PeerId::parse(to).unwrap_or(PeerId(0));
        let frame = ServerMessage::Signal {
            from: Cow::Owned(peer.to_hex()),
            payload,
        }
        .to_json();
        // Push back on the sender, not the recipient: a backed-up queue
        // refuses the signal, and each sender has a fair share of it.
        let queued = backlog.queued(target, conn);
        let room_for_it = self.config.admits(queued, frame_cost(frame.len()));
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if !room_for_it {
            if !state.busy.contains(&target_id) {
                state.busy.push(target_id);
                send_busy(&mut self.tally, out, conn, to);
            }
            return;
        }
        state.busy.retain(|id| *id != target_id);
        self.tally.signals += 1;
        self.tally.signal_bytes += frame.len() as u64;
        out.push(Output::Send {
            to: target,
            frame: Frame::new(frame),
            from: Some(conn),
        });
    }

    fn fresh_peer_id(&mut self) -> PeerId {
        loop {
            let id = PeerId(self.rng.random::<u64>());
            if !self.ids.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Tells `to` that the nickname it asked for is another member's.
fn send_nick_taken(tally: &mut Tally, out: &mut Vec<Output>, to: ConnId, nick: &str) {
    send_error(
        tally,
        out,
        to,
        ErrorCode::NickTaken,
        &format!("the nickname \"{nick}\" is taken in this room; pick another"),
    );
}

/// Tells `to` that its signal to the member `recipient` (a peer id) was
/// refused: that member's queue is backed up.
fn send_busy(tally: &mut Tally, out: &mut Vec<Output>, to: ConnId, recipient: &str) {
    send_undelivered(
        tally,
        out,
        to,
        ErrorCode::PeerBusy,
        recipient,
        format!(
            "{recipient} is not reading its messages fast enough; the signal was not delivered: send it again later"
        ),
    );
}

/// Tells `to` that its signal to the member `recipient` (a peer id) was
/// not delivered, for `code`: the error names the recipient in `to`.
fn send_undelivered(
    tally: &mut Tally,
    out: &mut Vec<Output>,
    to: ConnId,
    code: ErrorCode,
    recipient: &str,
    message: String,
) {
    tally.error(code);
    out.push(Output::Send {
        to,
        frame: Frame::new(
            ServerMessage::Error {
                code,
                message: Cow::Owned(message),
                to: Some(Cow::Borrowed(recipient)),
            }
            .to_json(),
        ),
        from: None,
    });
}

/// Where `conn` joined; if it has not, it is told `not_joined` (it must
/// join a room before `doing` what it asked).
fn joined_or_refuse<'a>(
    conns: &'a HashMap<ConnId, Conn>,
    tally: &mut Tally,
    out: &mut Vec<Output>,
    conn: ConnId,
    doing: &str,
) -> Option<&'a Joined> {
    let joined = conns.get(&conn).and_then(|c| c.joined.as_ref());
    if joined.is_none() {
        send_error(
            tally,
            out,
            conn,
            ErrorCode::NotJoined,
            &format!("join a room before {doing}"),
        );
    }
    joined
}

fn send_error(
    tally: &mut Tally,
    out: &mut Vec<Output>,
    to: ConnId,
    code: ErrorCode,
    message: &str,
) {
    tally.error(code);
    out.push(Output::Send {
        to,
        frame: Frame::new(ServerMessage::error(code, message).to_json()),
        from: None,
    });
}

fn send_protocol_error(tally: &mut Tally, out: &mut Vec<Output>, to: ConnId, err: &ProtocolError) {
    send_error(tally, out, to, err.code(), &err.to_string());
}

/// A token bucket: `burst` tokens, refilled at `rate` per second; the rate
/// limit of every signaling connection (this hub's, and the PeerJS
/// endpoint's).
#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            last: now,
        }
    }

    /// Takes `n` tokens if there are that many.
    pub fn take(&mut self, now: Instant, n: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= f64::from(n) {
            self.tokens -= f64::from(n);
            true
        } else {
            false
        }
    }
}

/// How long a bucket with the given rate takes to refill one token; useful
/// to tests that wait out a rate limit with simulated time.
pub fn refill_interval(rate_per_sec: u32) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(rate_per_sec.max(1)))
}

#[cfg(test)]
mod tests;
