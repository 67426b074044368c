//! peerchat's rooms and presence as a sans-IO state machine.
//!
//! [`Hub`] holds every connection and room. A transport feeds it events
//! (a connection opened, a text frame arrived, a connection closed, a timer
//! fired) together with the current time, and the hub appends what to do to
//! an output list: frames to send to connections and connections to close.
//! It never touches a socket, a clock or a task, so it is tested by calling
//! it directly, and the WebSocket adapter around it stays thin.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peerchat_protocol::signaling::{ClientMessage, IceServer, Member, RawValue, ServerMessage};
use peerchat_protocol::validate::nick_key;
use peerchat_protocol::{ErrorCode, PROTOCOL_VERSION, ProtocolError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Identifies a connection; chosen by the transport, unique while it is open.
pub type ConnId = u64;

/// One text frame to send: UTF-8 JSON, cheap to clone for broadcasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    fn new(text: String) -> Self {
        Self(Bytes::from(text))
    }

    /// The frame's bytes (always valid UTF-8).
    pub fn into_bytes(self) -> Bytes {
        self.0
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
    },
    /// Close connection `conn` after the frames queued before this; the hub
    /// has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, also sent to the client in an error frame just before.
        reason: ErrorCode,
    },
}

/// Chooses the ICE servers handed to a member in `joined`, so that TURN
/// credentials can be made for each member (and only for members).
pub trait IceProvider: fmt::Debug + Send + Sync {
    /// The ICE servers for the member with this peer id.
    fn ice_servers(&self, peer_id: &str) -> Vec<IceServer>;
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
    /// Most members in one room.
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
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            room_capacity: 32,
            rate_per_sec: 100,
            rate_burst: 1000,
            byte_rate_per_sec: 256 * 1024,
            byte_burst: 1024 * 1024,
            ice: Arc::new(Vec::new()),
        }
    }
}

/// Counts for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open connections, joined or not.
    pub connections: usize,
    /// Non-empty rooms.
    pub rooms: usize,
    /// Connections that are in a room.
    pub members: usize,
}

/// All rooms and connections.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<String, Room>,
    rng: StdRng,
    join_seq: u64,
    members: usize,
}

#[derive(Debug)]
struct Conn {
    joined: Option<Joined>,
    bucket: TokenBucket,
    bytes: TokenBucket,
    /// Whether the last message was dropped by the rate limit: only the
    /// first of a run of dropped messages is answered with an error.
    limited: bool,
}

#[derive(Debug)]
struct Joined {
    room: String,
    peer: String,
}

#[derive(Debug, Default)]
struct Room {
    members: HashMap<String, RoomMember>,
}

#[derive(Debug)]
struct RoomMember {
    conn: ConnId,
    nick: String,
    nick_key: String,
    seq: u64,
}

impl Hub {
    /// A hub whose peer ids come from a generator seeded with `seed`; pass
    /// fresh randomness in production and a constant in tests.
    pub fn new(config: HubConfig, seed: u64) -> Self {
        Self {
            config,
            conns: HashMap::new(),
            rooms: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            join_seq: 0,
            members: 0,
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
        }
    }

    /// Whether `conn` is in a room.
    pub fn is_joined(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.joined.is_some())
    }

    /// A connection opened.
    pub fn connect(&mut self, conn: ConnId, now: Instant) {
        let bucket = TokenBucket::new(self.config.rate_per_sec, self.config.rate_burst, now);
        let bytes = TokenBucket::new(self.config.byte_rate_per_sec, self.config.byte_burst, now);
        self.conns.insert(
            conn,
            Conn {
                joined: None,
                bucket,
                bytes,
                limited: false,
            },
        );
    }

    /// A text frame arrived on `conn`.
    pub fn handle_text(&mut self, conn: ConnId, text: &str, now: Instant, out: &mut Vec<Output>) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let size = u32::try_from(text.len()).unwrap_or(u32::MAX);
        if !(state.bucket.take(now, 1) && state.bytes.take(now, size)) {
            if !state.limited {
                state.limited = true;
                send_error(
                    out,
                    conn,
                    ErrorCode::RateLimited,
                    "too many messages: this one and the next ones are dropped until the rate falls",
                );
            }
            return;
        }
        state.limited = false;
        match ClientMessage::parse(text) {
            Ok(ClientMessage::Join { room, nick, .. }) => self.join(conn, &room, &nick, out),
            Ok(ClientMessage::Signal { to, payload }) => self.signal(conn, &to, payload, out),
            Ok(ClientMessage::Leave) => send_error(
                out,
                conn,
                ErrorCode::UnknownType,
                "this server does not support `leave` yet",
            ),
            Err(err) => send_protocol_error(out, conn, &err),
        }
    }

    /// The transport refused a frame itself (too large, binary): tell the
    /// client why. The connection stays open unless the transport closes it.
    pub fn reject(&mut self, conn: ConnId, code: ErrorCode, message: &str, out: &mut Vec<Output>) {
        if self.conns.contains_key(&conn) {
            send_error(out, conn, code, message);
        }
    }

    /// The join deadline of `conn` passed: if it has not joined a room, it is
    /// told so and closed.
    pub fn join_deadline(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        if self.conns.contains_key(&conn) && !self.is_joined(conn) {
            self.close(
                conn,
                ErrorCode::JoinTimeout,
                "no room was joined in time",
                out,
            );
        }
    }

    /// Tells `conn` why it is being closed, then forgets it.
    pub fn close(&mut self, conn: ConnId, reason: ErrorCode, message: &str, out: &mut Vec<Output>) {
        if self.conns.contains_key(&conn) {
            send_error(out, conn, reason, message);
            self.disconnect(conn, out);
            out.push(Output::Close { conn, reason });
        }
    }

    /// Closes every connection, telling each client the server is shutting
    /// down.
    pub fn shutdown(&mut self, out: &mut Vec<Output>) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(
                conn,
                ErrorCode::ShuttingDown,
                "the server is shutting down",
                out,
            );
        }
    }

    /// `conn` closed (or must be dropped): it leaves its room, and the other
    /// members are told.
    pub fn disconnect(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        let Some(Joined { room, peer }) = state.joined else {
            return;
        };
        self.members -= 1;
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.members.remove(&peer);
        if r.members.is_empty() {
            self.rooms.remove(&room);
            return;
        }
        let frame = Frame::new(
            ServerMessage::PeerLeft {
                id: Cow::Borrowed(&peer),
            }
            .to_json(),
        );
        for m in r.members.values() {
            out.push(Output::Send {
                to: m.conn,
                frame: frame.clone(),
            });
        }
    }

    fn join(&mut self, conn: ConnId, room_id: &str, nick: &str, out: &mut Vec<Output>) {
        if self.is_joined(conn) {
            send_error(
                out,
                conn,
                ErrorCode::AlreadyJoined,
                "this connection is already in a room; open another connection to join another",
            );
            return;
        }
        let key = nick_key(nick);
        if let Some(room) = self.rooms.get(room_id) {
            if room.members.len() >= self.config.room_capacity {
                send_error(
                    out,
                    conn,
                    ErrorCode::RoomFull,
                    &format!("the room is full ({} members)", self.config.room_capacity),
                );
                return;
            }
            if room.members.values().any(|m| m.nick_key == key) {
                send_error(
                    out,
                    conn,
                    ErrorCode::NickTaken,
                    &format!("the nickname \"{nick}\" is taken in this room; pick another"),
                );
                return;
            }
        } else if self.config.room_capacity == 0 {
            send_error(out, conn, ErrorCode::RoomFull, "rooms are closed");
            return;
        }

        let peer = self.fresh_peer_id();
        self.join_seq += 1;
        let seq = self.join_seq;
        let room = self.rooms.entry(room_id.to_owned()).or_default();

        let mut others: Vec<(&u64, Member)> = room
            .members
            .iter()
            .map(|(id, m)| {
                (
                    &m.seq,
                    Member {
                        id: id.clone(),
                        nick: m.nick.clone(),
                    },
                )
            })
            .collect();
        others.sort_unstable_by_key(|(seq, _)| **seq);
        let you = Member {
            id: peer.clone(),
            nick: nick.to_owned(),
        };
        let joined = ServerMessage::Joined {
            v: PROTOCOL_VERSION,
            room: Cow::Borrowed(room_id),
            you: you.clone(),
            members: others.into_iter().map(|(_, m)| m).collect(),
            ice_servers: self.config.ice.ice_servers(&peer),
            resumed: false,
        };
        out.push(Output::Send {
            to: conn,
            frame: Frame::new(joined.to_json()),
        });
        let announce = Frame::new(ServerMessage::PeerJoined { peer: you }.to_json());
        for m in room.members.values() {
            out.push(Output::Send {
                to: m.conn,
                frame: announce.clone(),
            });
        }
        room.members.insert(
            peer.clone(),
            RoomMember {
                conn,
                nick: nick.to_owned(),
                nick_key: key,
                seq,
            },
        );
        self.members += 1;
        if let Some(state) = self.conns.get_mut(&conn) {
            state.joined = Some(Joined {
                room: room_id.to_owned(),
                peer,
            });
        }
    }

    fn signal(&mut self, conn: ConnId, to: &str, payload: &RawValue, out: &mut Vec<Output>) {
        let Some(Joined { room, peer }) = self.conns.get(&conn).and_then(|c| c.joined.as_ref())
        else {
            send_error(
                out,
                conn,
                ErrorCode::NotJoined,
                "join a room before sending signals",
            );
            return;
        };
        let target = self
            .rooms
            .get(room)
            .and_then(|r| r.members.get(to))
            .filter(|_| to != peer);
        let Some(target) = target else {
            send_error(
                out,
                conn,
                ErrorCode::UnknownPeer,
                &format!("no other member of your room has the peer id \"{to}\""),
            );
            return;
        };
        let frame = ServerMessage::Signal {
            from: Cow::Borrowed(peer),
            payload,
        }
        .to_json();
        out.push(Output::Send {
            to: target.conn,
            frame: Frame::new(frame),
        });
    }

    fn fresh_peer_id(&mut self) -> String {
        loop {
            let id = format!("{:016x}", self.rng.random::<u64>());
            let taken = self.rooms.values().any(|r| r.members.contains_key(&id));
            if !taken {
                return id;
            }
        }
    }
}

fn send_error(out: &mut Vec<Output>, to: ConnId, code: ErrorCode, message: &str) {
    out.push(Output::Send {
        to,
        frame: Frame::new(ServerMessage::error(code, message).to_json()),
    });
}

fn send_protocol_error(out: &mut Vec<Output>, to: ConnId, err: &ProtocolError) {
    send_error(out, to, err.code(), &err.to_string());
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            last: now,
        }
    }

    /// Takes `n` tokens if there are that many.
    fn take(&mut self, now: Instant, n: u32) -> bool {
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
