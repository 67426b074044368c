//! The mesh rules as a sans-IO state machine: who is in the room as this
//! member sees it, which WebRTC connection (*link*) to each member is the
//! current one, who starts a link, who wins when both start at once, when a
//! lost link is repaired or rebuilt, when a member the server no longer
//! lists counts as gone, and when to join the room (again).
//!
//! [`Mesh`] takes [`Input`]s (what the server said, what a link did, what
//! the user asked for) with the current time in milliseconds, and answers
//! with [`Output`]s: links to start, accept, repair or drop, signals to pass
//! to a link, a `join` to send, and changes to show (members added,
//! renamed or removed, their connection state, channels that are up or
//! down). Timers are deadlines: [`Mesh::next_deadline`] says when to call
//! [`Mesh::handle_timeout`]. Randomness (connection ids, backoff jitter)
//! comes from a generator seeded by the caller. It never touches a socket or
//! a clock, so the web client's `mesh.js` and this crate replay the same
//! JSON scenarios (`tests/vectors/mesh.json`) and cannot drift apart.
//!
//! The rules are those of `docs/protocol.md`, section 2 ("Peer
//! connections"):
//!
//! * **The newcomer starts.** On `joined`, a link is started to every listed
//!   member that has none; members already in the room wait for the
//!   newcomer's offer (if it has not come within
//!   [`Config::setup_timeout_ms`], the member with the smaller id starts
//!   one).
//! * **A new `sid` replaces the link**, except when both started at once:
//!   the member with the smaller peer id keeps the link it started while its
//!   channel is not open yet, and ignores the other's offer. If that link
//!   has heard nothing from the other side within
//!   [`Config::glare_wait_ms`] after, its offer was lost (the other would
//!   have answered it): it counts as closed, and is rebuilt.
//! * **A lost link is repaired, then rebuilt.** When a link's transport
//!   fails, the side that started it restarts ICE; a link that has not
//!   recovered within [`Config::repair_timeout_ms`] (or at once, where ICE
//!   cannot be restarted) counts as closed. When a link closes while the
//!   server lists the member, the member with the smaller peer id starts a
//!   new one after a jittered, doubling backoff.
//! * **Without the server, wait.** A link that closes while this member is
//!   not in the room waits for the next `joined`: listed members get a new
//!   link, lost links to them are repaired, and members it does not list are
//!   gone unless they come back within [`Config::gone_after_ms`].
//! * **A refused join** is shown (the first time) or retried after
//!   [`Config::rejoin_delay_ms`] (when joining again after a lost
//!   connection, while the previous session may still hold the nickname).
//! * **No chat before the hello.** A link whose channel opens is
//!   *verifying* ([`Output::Hello`]: send our hello, check theirs) until the
//!   caller says the other side's hello verified ([`Input::Verified`]);
//!   only then is the channel up for chat. A hello that fails
//!   ([`Input::Rejected`]) drops the link, which counts as closed, and the
//!   member shows as not verified until a link to it verifies. A link that
//!   has not verified within [`Config::setup_timeout_ms`] is given up.
//!
//! Two members without a room (a *pair*, [`Config::pair`]) have no server
//! to signal through after the first exchange: a link that closes or fails
//! means the other member left.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use peerchat_protocol::ErrorCode;
use rand::{RngCore, SeedableRng};
use rand_xorshift::XorShiftRng;
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Timings and abilities of a [`Mesh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Signals keep flowing through a server after the first exchange (a
    /// room). Without (a pair), a link that closes or fails means the
    /// member left, and no timer runs.
    pub relays_signals: bool,
    /// The WebRTC stack can restart ICE on a connection. Without, a link
    /// whose transport fails is dropped at once and counts as closed.
    pub ice_restart: bool,
    /// The first backoff before rebuilding a closed link, in ms.
    pub relink_min_ms: u64,
    /// The longest backoff before rebuilding a closed link, in ms.
    pub relink_max_ms: u64,
    /// How long a member that the server does not list and whose link is
    /// down stays (shown as reconnecting) before it counts as gone, in ms.
    pub gone_after_ms: u64,
    /// How long to wait before joining again after a refused rejoin, in ms.
    pub rejoin_delay_ms: u64,
    /// A link whose channel has not opened this long after it was started
    /// or accepted is dropped (an offer or answer may have been lost), in
    /// ms.
    pub setup_timeout_ms: u64,
    /// A link whose transport failed and has not recovered this long after
    /// is dropped, in ms.
    pub repair_timeout_ms: u64,
    /// After ignoring the other's offer for our own link (both started at
    /// once), how long our link waits to hear from the other side (its
    /// answer, a candidate) before it counts as closed, in ms: the other
    /// side answers ours at once, unless our offer was lost.
    pub glare_wait_ms: u64,
}

impl Default for Config {
    /// A room, on a stack that can restart ICE.
    fn default() -> Self {
        Self {
            relays_signals: true,
            ice_restart: true,
            relink_min_ms: 1_000,
            relink_max_ms: 30_000,
            gone_after_ms: 20_000,
            rejoin_delay_ms: 2_000,
            setup_timeout_ms: 30_000,
            repair_timeout_ms: 20_000,
            glare_wait_ms: 5_000,
        }
    }
}

impl Config {
    /// Two members without a room: no signals after the first exchange.
    pub fn pair() -> Self {
        Self {
            relays_signals: false,
            ice_restart: false,
            ..Self::default()
        }
    }
}

/// A member as the server names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The peer id.
    pub id: String,
    /// The nickname.
    pub nick: String,
}

/// The signaling connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// Opening.
    Connecting,
    /// Open: messages can be sent.
    Open,
    /// Down (the transport retries by itself).
    Offline,
}

/// What a signal carries (its payload's `description.type`, or a
/// candidate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
    /// An ICE candidate.
    Candidate,
}

/// The state of a link's transport (ICE and DTLS), as WebRTC's
/// `connectionState` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Packets flow.
    Connected,
    /// Packets stopped; the stack may still recover by itself.
    Disconnected,
    /// The stack gave up on every path it had.
    Failed,
}

/// How this member's connection to another is doing, as shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Being set up for the first time.
    Connecting,
    /// The channel is open; the other side's hello is not checked yet.
    Verifying,
    /// The channel is open, the other side's hello verified, and its
    /// transport is up.
    Connected,
    /// The connection was lost (or its first attempt failed) and is being
    /// repaired or rebuilt, or waits for the server.
    Reconnecting,
    /// The other side's hello did not verify (on the last link that
    /// opened): the link was closed.
    NotVerified,
}

impl LinkState {
    /// The state as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Verifying => "verifying",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::NotVerified => "not verified",
        }
    }
}

/// What happened. Every input comes with the time it happened.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// The user asks to join (first, or again under another nickname after
    /// a refusal). The caller knows the nickname; the mesh says when to
    /// send the `join`.
    Join {},
    /// The signaling connection changed state.
    Server(ServerState),
    /// The server's `joined`: this member is in the room.
    Joined {
        /// Our peer id.
        you: String,
        /// Everyone else, in join order.
        members: Vec<Peer>,
        /// A membership our key held was taken over.
        #[serde(default)]
        resumed: bool,
    },
    /// The server's `peer_joined`.
    PeerJoined(Peer),
    /// The server's `peer_renamed`: a member took a new nickname.
    PeerRenamed(Peer),
    /// The server's `peer_left`.
    PeerLeft {
        /// Who left.
        id: String,
    },
    /// The server's `error`.
    Error {
        /// Its code.
        code: ErrorCode,
        /// The member a refused signal was for (`peer_busy`, `peer_away`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// A signal from another member: the caller keeps its payload, and
    /// hands it to a link when told ([`Output::Accept`],
    /// [`Output::Forward`]).
    Signal {
        /// The sender.
        from: String,
        /// The payload's connection id.
        sid: String,
        /// What it carries.
        kind: SignalKind,
    },
    /// A link's data channel opened.
    LinkOpened {
        /// The link.
        sid: String,
    },
    /// The other side's hello on the link verified: chat may flow.
    Verified {
        /// The link.
        sid: String,
    },
    /// The other side's hello on the link did not verify (or never came
    /// first, or another key came later): the link is dropped.
    Rejected {
        /// The link.
        sid: String,
    },
    /// A link closed (its channel or connection closed, for any reason).
    LinkClosed {
        /// The link.
        sid: String,
    },
    /// A link's transport changed state.
    Transport {
        /// The link.
        sid: String,
        /// The new state.
        state: Transport,
    },
    /// Start a new link to this member now, replacing the current one (the
    /// glare rule settles a crossing with one it starts at the same time).
    Restart {
        /// The member.
        peer: String,
    },
}

/// What to do, or show, after an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Send `join` (with the nickname and member key).
    Join {},
    /// The server refused to let us in (or another connection took our
    /// place, `replaced`): show it; nothing is sent again until the next
    /// [`Input::Join`].
    JoinRefused {
        /// The server's code.
        code: ErrorCode,
    },
    /// We are in the room: for the first time, or again.
    Entered {
        /// The first time.
        first: bool,
    },
    /// A member to show (in state [`LinkState::Connecting`]).
    Added {
        /// Who.
        peer: String,
        /// Their nickname.
        nick: String,
        /// Worth a notice ("X joined"): not one of those found on the first
        /// join.
        announce: bool,
    },
    /// A known member has a new nickname.
    Renamed {
        /// Who.
        peer: String,
        /// The new nickname.
        nick: String,
    },
    /// A member is gone.
    Removed {
        /// Who.
        peer: String,
        /// Worth a notice ("X left").
        announce: bool,
    },
    /// A member's connection changed state.
    State {
        /// Who.
        peer: String,
        /// The new state.
        state: LinkState,
    },
    /// Create a link to `peer` with connection id `sid` that creates the
    /// data channel and offers.
    Start {
        /// To whom.
        peer: String,
        /// Its connection id.
        sid: String,
    },
    /// Create a link to `peer` with the offer's connection id `sid`, and
    /// hand it the offer.
    Accept {
        /// To whom.
        peer: String,
        /// The offer's connection id.
        sid: String,
    },
    /// Hand the signal to the link `sid`.
    Forward {
        /// From whom.
        peer: String,
        /// The link.
        sid: String,
    },
    /// Close the link `sid` (if it is not closed already).
    Drop {
        /// To whom.
        peer: String,
        /// The link.
        sid: String,
    },
    /// Restart ICE on the link `sid`.
    RestartIce {
        /// To whom.
        peer: String,
        /// The link.
        sid: String,
    },
    /// The channel of link `sid` to `peer` opened: send our hello on it
    /// (the first envelope), and check the one the other side sends
    /// ([`Input::Verified`] or [`Input::Rejected`]).
    Hello {
        /// To whom.
        peer: String,
        /// The link.
        sid: String,
    },
    /// The link `sid` to `peer` is open, verified and current: chat over it
    /// (sync the history).
    Up {
        /// Who.
        peer: String,
        /// The link.
        sid: String,
    },
    /// The member's channel that was [`Output::Up`] is no more.
    Down {
        /// Who.
        peer: String,
    },
}

/// A link as the mesh keeps it.
#[derive(Debug, Clone)]
struct Link {
    sid: String,
    /// We started it (we offered first and created the channel).
    started: bool,
    open: bool,
    /// The other side's hello verified.
    verified: bool,
    /// The transport is disconnected or failed.
    lost: Option<Transport>,
    /// A signal for it came from the other side.
    heard: bool,
    setup_deadline: Option<u64>,
    repair_deadline: Option<u64>,
    /// We ignored the other's offer for this link, which had heard nothing
    /// yet: given up if it still has not by then.
    glare_deadline: Option<u64>,
}

/// A member of the room as this member sees it.
#[derive(Debug, Clone)]
pub struct Member {
    id: String,
    nick: String,
    /// The server lists it now.
    listed: bool,
    link: Option<Link>,
    /// A link to it opened, failed or closed before: not shown as
    /// connecting any more.
    setback: bool,
    /// The last hello checked on a link to it failed, and none verified
    /// since.
    rejected: bool,
    state: LinkState,
    relink_attempt: u32,
    relink_at: Option<u64>,
    gone_at: Option<u64>,
}

impl Member {
    /// The peer id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The nickname.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// How our connection to it is doing.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// Whether the server lists it now.
    pub fn listed(&self) -> bool {
        self.listed
    }

    /// The current link's connection id.
    pub fn sid(&self) -> Option<&str> {
        self.link.as_ref().map(|l| l.sid.as_str())
    }

    /// Whether the current link's channel is open.
    pub fn is_open(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.open)
    }

    /// Whether the current link's channel is open and the other side's
    /// hello on it verified: chat may flow.
    pub fn is_verified(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.verified)
    }

    fn derived_state(&self) -> LinkState {
        match &self.link {
            Some(l) if l.verified && l.lost.is_none() => LinkState::Connected,
            Some(l) if l.lost.is_some() => LinkState::Reconnecting,
            Some(l) if l.open => LinkState::Verifying,
            _ if self.rejected => LinkState::NotVerified,
            _ if self.setback => LinkState::Reconnecting,
            _ => LinkState::Connecting,
        }
    }
}

/// One member's view of the mesh. See the [crate] documentation.
#[derive(Debug, Clone)]
pub struct Mesh {
    config: Config,
    rng: XorShiftRng,
    me: Option<String>,
    /// The user asked to join and was not refused since.
    want_join: bool,
    server_open: bool,
    joined_now: bool,
    ever_joined: bool,
    rejoin_at: Option<u64>,
    members: Vec<Member>,
}

/// The error codes that refuse a `join`.
fn refuses_join(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NickTaken
            | ErrorCode::BadNick
            | ErrorCode::RoomFull
            | ErrorCode::BadRoom
            | ErrorCode::BadKey
            | ErrorCode::UnsupportedVersion
    )
}

impl Mesh {
    /// A mesh that has joined nothing yet, drawing its randomness from
    /// `seed` (give it 128 random bits).
    pub fn new(config: Config, seed: [u32; 4]) -> Self {
        let mut bytes = [0u8; 16];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(seed) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Self {
            config,
            rng: XorShiftRng::from_seed(bytes),
            me: None,
            want_join: false,
            server_open: false,
            joined_now: false,
            ever_joined: false,
            rejoin_at: None,
            members: Vec::new(),
        }
    }

    /// The timings and abilities.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Our peer id, once joined.
    pub fn me(&self) -> Option<&str> {
        self.me.as_deref()
    }

    /// Whether the server has us in the room now.
    pub fn joined(&self) -> bool {
        self.joined_now
    }

    /// Whether we were ever in the room.
    pub fn ever_joined(&self) -> bool {
        self.ever_joined
    }

    /// The other members, in the order we learnt of them.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> {
        self.members.iter()
    }

    /// A member by peer id.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The member whose current link is `sid`.
    pub fn peer_of(&self, sid: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.sid() == Some(sid))
            .map(|m| m.id.as_str())
    }

    /// When [`Mesh::handle_timeout`] should be called next, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        let links = self.members.iter().flat_map(|m| {
            let link = m.link.as_ref();
            [
                m.relink_at,
                m.gone_at,
                link.and_then(|l| l.setup_deadline),
                link.and_then(|l| l.repair_deadline),
                link.and_then(|l| l.glare_deadline),
            ]
        });
        links.chain([self.rejoin_at]).flatten().min()
    }

    /// Handles one input at time `now` (ms).
    pub fn handle(&mut self, now: u64, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Join {} => {
                self.want_join = true;
                if self.server_open && !self.joined_now {
                    out.push(Output::Join {});
                }
            }
            Input::Server(state) => {
                self.server_open = state == ServerState::Open;
                if state == ServerState::Open {
                    if self.want_join && !self.joined_now {
                        out.push(Output::Join {});
                    }
                } else {
                    self.joined_now = false;
                    self.rejoin_at = None;
                }
            }
            Input::Joined { you, members, .. } => self.on_joined(now, you, members, &mut out),
            Input::PeerJoined(peer) => match self.index(&peer.id) {
                Some(i) => {
                    // The same member back (it starts a new link if it
                    // needs one), perhaps under another nickname.
                    self.rename(i, &peer.nick, &mut out);
                    let m = &mut self.members[i];
                    m.listed = true;
                    m.gone_at = None;
                }
                None => {
                    // The newcomer starts. Should its offer be lost, the
                    // smaller id starts one when the setup time is over.
                    let smaller = self.me.as_deref().is_some_and(|me| me < peer.id.as_str());
                    self.add(peer, true, &mut out);
                    if smaller && self.config.relays_signals {
                        let m = self.members.last_mut().expect("just added");
                        m.relink_at = Some(now + self.config.setup_timeout_ms);
                    }
                }
            },
            Input::PeerRenamed(peer) => {
                // Only a member we know; the server lists the others with
                // their current nickname when it tells us of them.
                if let Some(i) = self.index(&peer.id) {
                    self.rename(i, &peer.nick, &mut out);
                }
            }
            Input::PeerLeft { id } => {
                if let Some(i) = self.index(&id) {
                    self.remove(i, true, &mut out);
                }
            }
            Input::Error { code, to } => self.on_error(now, code, to.as_deref(), &mut out),
            Input::Signal { from, sid, kind } => self.on_signal(now, &from, sid, kind, &mut out),
            Input::LinkOpened { sid } => {
                // A link opens once, however often it says so.
                let opened = self.by_sid(&sid).filter(|&i| !self.members[i].is_open());
                if let Some(i) = opened {
                    let m = &mut self.members[i];
                    if let Some(link) = &mut m.link {
                        link.open = true;
                    }
                    m.setback = true;
                    self.update_state(i, &mut out);
                    let peer = self.members[i].id.clone();
                    out.push(Output::Hello { peer, sid });
                }
            }
            Input::Verified { sid } => {
                // The hello of an open link verifies once.
                let verified = self.by_sid(&sid).filter(|&i| {
                    self.members[i]
                        .link
                        .as_ref()
                        .is_some_and(|l| l.open && !l.verified)
                });
                if let Some(i) = verified {
                    let m = &mut self.members[i];
                    if let Some(link) = &mut m.link {
                        link.verified = true;
                        link.setup_deadline = None;
                    }
                    m.rejected = false;
                    m.relink_attempt = 0;
                    self.update_state(i, &mut out);
                    let peer = self.members[i].id.clone();
                    out.push(Output::Up { peer, sid });
                }
            }
            Input::Rejected { sid } => {
                if let Some(i) = self.by_sid(&sid) {
                    // It counts as closed; the member shows as not
                    // verified until a link to it verifies.
                    let m = &mut self.members[i];
                    m.rejected = true;
                    out.push(Output::Drop {
                        peer: m.id.clone(),
                        sid,
                    });
                    self.closed(now, i, &mut out);
                }
            }
            Input::LinkClosed { sid } => {
                if let Some(i) = self.by_sid(&sid) {
                    self.closed(now, i, &mut out);
                }
            }
            Input::Transport { sid, state } => {
                if let Some(i) = self.by_sid(&sid) {
                    self.on_transport(now, i, state, &mut out);
                }
            }
            Input::Restart { peer } => {
                if let Some(i) = self.index(&peer) {
                    self.drop_link(i, &mut out);
                    self.start(now, i, &mut out);
                    self.update_state(i, &mut out);
                }
            }
        }
        out
    }

    /// Handles every timer due at `now` (ms).
    pub fn handle_timeout(&mut self, now: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.rejoin_at.is_some_and(|at| at <= now) {
            self.rejoin_at = None;
            if self.server_open && self.want_join && !self.joined_now {
                out.push(Output::Join {});
            }
        }
        let mut i = 0;
        while i < self.members.len() {
            let due = |at: Option<u64>| at.is_some_and(|at| at <= now);
            let m = &mut self.members[i];
            if due(m.gone_at) {
                m.gone_at = None;
                if !m.listed && !m.is_open() {
                    self.remove(i, true, &mut out);
                    continue;
                }
            }
            let m = &mut self.members[i];
            if due(m.relink_at) {
                m.relink_at = None;
                if m.link.is_none() && m.listed && self.joined_now {
                    self.start(now, i, &mut out);
                }
            }
            let link = self.members[i].link.as_ref();
            let setup = link.is_some_and(|l| due(l.setup_deadline));
            let repair = link.is_some_and(|l| due(l.repair_deadline));
            let glare = link.is_some_and(|l| due(l.glare_deadline));
            if setup || repair || glare {
                // Given up: it counts as closed.
                let m = &self.members[i];
                let sid = m.sid().unwrap_or_default().to_owned();
                out.push(Output::Drop {
                    peer: m.id.clone(),
                    sid,
                });
                if self.closed(now, i, &mut out) {
                    continue;
                }
            }
            i += 1;
        }
        out
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    fn by_sid(&self, sid: &str) -> Option<usize> {
        self.members.iter().position(|m| m.sid() == Some(sid))
    }

    /// A fresh connection id: 128 bits in base64url, 22 characters.
    fn sid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_exact_mut(4) {
            chunk.copy_from_slice(&self.rng.next_u32().to_le_bytes());
        }
        BASE64_URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The backoff before rebuilding a link for the `attempt`th time: half
    /// of `min(relink_max, relink_min × 2^attempt)`, plus up to as much
    /// again at random.
    fn backoff(&mut self, attempt: u32) -> u64 {
        let base = self
            .config
            .relink_min_ms
            .saturating_mul(1u64.checked_shl(attempt).unwrap_or(u64::MAX))
            .min(self.config.relink_max_ms);
        let half = base / 2;
        half + ((u64::from(self.rng.next_u32()) * half) >> 32)
    }

    fn add(&mut self, peer: Peer, announce: bool, out: &mut Vec<Output>) {
        out.push(Output::Added {
            peer: peer.id.clone(),
            nick: peer.nick.clone(),
            announce,
        });
        self.members.push(Member {
            id: peer.id,
            nick: peer.nick,
            listed: true,
            link: None,
            setback: false,
            rejected: false,
            state: LinkState::Connecting,
            relink_attempt: 0,
            relink_at: None,
            gone_at: None,
        });
    }

    fn rename(&mut self, i: usize, nick: &str, out: &mut Vec<Output>) {
        let m = &mut self.members[i];
        if m.nick != nick {
            m.nick = nick.to_owned();
            out.push(Output::Renamed {
                peer: m.id.clone(),
                nick: m.nick.clone(),
            });
        }
    }

    fn remove(&mut self, i: usize, announce: bool, out: &mut Vec<Output>) {
        self.drop_link(i, out);
        let m = self.members.remove(i);
        out.push(Output::Removed {
            peer: m.id,
            announce,
        });
    }

    /// Closes the current link, if any.
    fn drop_link(&mut self, i: usize, out: &mut Vec<Output>) {
        let m = &mut self.members[i];
        if let Some(link) = m.link.take() {
            out.push(Output::Drop {
                peer: m.id.clone(),
                sid: link.sid,
            });
            if link.verified {
                out.push(Output::Down { peer: m.id.clone() });
            }
        }
    }

    fn new_link(&self, sid: String, started: bool, now: u64) -> Link {
        Link {
            sid,
            started,
            open: false,
            verified: false,
            lost: None,
            heard: false,
            setup_deadline: self
                .config
                .relays_signals
                .then(|| now + self.config.setup_timeout_ms),
            repair_deadline: None,
            glare_deadline: None,
        }
    }

    fn start(&mut self, now: u64, i: usize, out: &mut Vec<Output>) {
        let sid = self.sid();
        self.set_link(now, i, sid, true, out);
    }

    /// Makes link `sid` the member's current one: one we start, or one we
    /// accept.
    fn set_link(&mut self, now: u64, i: usize, sid: String, started: bool, out: &mut Vec<Output>) {
        let link = self.new_link(sid.clone(), started, now);
        let m = &mut self.members[i];
        m.link = Some(link);
        m.relink_at = None;
        let peer = m.id.clone();
        out.push(if started {
            Output::Start { peer, sid }
        } else {
            Output::Accept { peer, sid }
        });
    }

    fn update_state(&mut self, i: usize, out: &mut Vec<Output>) {
        let m = &mut self.members[i];
        let state = m.derived_state();
        if state != m.state {
            m.state = state;
            out.push(Output::State {
                peer: m.id.clone(),
                state,
            });
        }
    }

    fn on_joined(&mut self, now: u64, you: String, members: Vec<Peer>, out: &mut Vec<Output>) {
        if self.me.as_deref() != Some(you.as_str()) {
            // Links made under another id are of no use.
            for i in 0..self.members.len() {
                self.drop_link(i, out);
                self.update_state(i, out);
            }
            self.me = Some(you);
        }
        self.joined_now = true;
        self.rejoin_at = None;
        let first = !self.ever_joined;
        // Members who have not come back to the server yet keep their link
        // while it stays open, or a while to come back.
        for m in &mut self.members {
            if members.iter().any(|l| l.id == m.id) {
                continue;
            }
            m.listed = false;
            m.relink_at = None;
            if !m.is_open() {
                m.gone_at = Some(now + self.config.gone_after_ms);
            }
        }
        for peer in members {
            let i = match self.index(&peer.id) {
                Some(i) => {
                    self.rename(i, &peer.nick, out);
                    i
                }
                None => {
                    self.add(peer, !first, out);
                    self.members.len() - 1
                }
            };
            let m = &mut self.members[i];
            m.listed = true;
            m.gone_at = None;
            // An open link survives the server going away and coming back;
            // we (re)join, so we start any that is missing and repair any
            // that lost its path.
            let lost = m
                .link
                .as_ref()
                .filter(|l| l.lost.is_some())
                .map(|l| l.sid.clone());
            if m.link.is_none() {
                self.start(now, i, out);
            } else if let Some(sid) = lost {
                if self.config.ice_restart {
                    out.push(Output::RestartIce {
                        peer: m.id.clone(),
                        sid,
                    });
                } else {
                    self.drop_link(i, out);
                    self.start(now, i, out);
                    self.update_state(i, out);
                }
            }
        }
        self.ever_joined = true;
        out.push(Output::Entered { first });
    }

    fn on_error(&mut self, now: u64, code: ErrorCode, to: Option<&str>, out: &mut Vec<Output>) {
        if code == ErrorCode::Replaced || (refuses_join(code) && !self.ever_joined) {
            // Do not send the refused join again on a reconnect; after
            // `replaced`, taking our place back would start a tug of war.
            self.want_join = false;
            self.joined_now = false;
            self.rejoin_at = None;
            out.push(Output::JoinRefused { code });
        } else if code == ErrorCode::ShuttingDown {
            // The server is stopping: an outage, as if it had crashed.
            // Nobody left; the links stay, and we join again when a server
            // is back.
            self.joined_now = false;
            self.rejoin_at = None;
        } else if refuses_join(code) && !self.joined_now {
            // Joining again after a lost connection: our previous session
            // may hold the nickname until the server notices it is gone.
            self.rejoin_at = Some(now + self.config.rejoin_delay_ms);
        } else if code == ErrorCode::PeerBusy || code == ErrorCode::PeerAway {
            // A signal to a member was not delivered (its queue is backed
            // up, or it lost its connection and may come back): a link
            // still being set up may have lost an offer, an answer or a
            // candidate, so it is dropped and rebuilt by the rules for a
            // closed link (after the backoff; an away member starts one
            // itself when it is back, and must not find ours in the way).
            // An open link needs no more signals unless it renegotiates,
            // which retries on its own.
            let i = to.and_then(|to| self.index(to));
            if let Some(i) = i.filter(|&i| self.members[i].link.as_ref().is_some_and(|l| !l.open)) {
                let m = &self.members[i];
                if let Some(link) = &m.link {
                    out.push(Output::Drop {
                        peer: m.id.clone(),
                        sid: link.sid.clone(),
                    });
                }
                self.closed(now, i, out);
            }
        }
        // Other codes change nothing here.
    }

    fn on_signal(
        &mut self,
        now: u64,
        from: &str,
        sid: String,
        kind: SignalKind,
        out: &mut Vec<Output>,
    ) {
        let Some(i) = self.index(from) else { return };
        let m = &mut self.members[i];
        if m.sid() == Some(sid.as_str()) {
            if let Some(link) = &mut m.link {
                link.heard = true;
                link.glare_deadline = None;
            }
            out.push(Output::Forward {
                peer: m.id.clone(),
                sid,
            });
            return;
        }
        if kind != SignalKind::Offer {
            return; // for a link that is gone
        }
        // Both started a link at once: the one started by the member with
        // the smaller id wins.
        let ours_wins = m.link.as_ref().is_some_and(|l| l.started && !l.open)
            && self.me.as_deref().is_some_and(|me| me < from);
        if ours_wins {
            // They answer ours as soon as it reaches them; if ours has heard
            // nothing from them meanwhile, it may have been lost.
            let wait = self.config.glare_wait_ms;
            if let Some(link) = self.members[i].link.as_mut().filter(|l| !l.heard) {
                link.glare_deadline.get_or_insert(now + wait);
            }
            return;
        }
        // A new link from them replaces whatever we had.
        self.drop_link(i, out);
        self.set_link(now, i, sid, false, out);
        self.update_state(i, out);
    }

    fn on_transport(&mut self, now: u64, i: usize, state: Transport, out: &mut Vec<Output>) {
        let config = self.config;
        let m = &mut self.members[i];
        let Some(link) = &mut m.link else { return };
        match state {
            Transport::Connected => {
                link.lost = None;
                link.repair_deadline = None;
            }
            Transport::Disconnected => link.lost = Some(state),
            Transport::Failed if !config.relays_signals || !config.ice_restart => {
                // No way to repair it: it counts as closed.
                let sid = link.sid.clone();
                out.push(Output::Drop {
                    peer: m.id.clone(),
                    sid,
                });
                self.closed(now, i, out);
                return;
            }
            Transport::Failed => {
                link.lost = Some(state);
                m.setback = true;
                if link.repair_deadline.is_none() {
                    link.repair_deadline = Some(now + config.repair_timeout_ms);
                }
                // The side that started the link restarts ICE.
                if link.started {
                    out.push(Output::RestartIce {
                        peer: m.id.clone(),
                        sid: link.sid.clone(),
                    });
                }
            }
        }
        if state != Transport::Connected {
            m.setback = true;
        }
        self.update_state(i, out);
    }

    /// The current link of member `i` closed (or was given up). Returns
    /// whether the member was removed.
    fn closed(&mut self, now: u64, i: usize, out: &mut Vec<Output>) -> bool {
        let m = &mut self.members[i];
        let Some(link) = m.link.take() else {
            return false;
        };
        if link.verified {
            out.push(Output::Down { peer: m.id.clone() });
        }
        // A pair has no server to find each other again: the member is gone.
        if !self.config.relays_signals {
            let m = self.members.remove(i);
            out.push(Output::Removed {
                peer: m.id,
                announce: true,
            });
            return true;
        }
        m.setback = true;
        self.update_state(i, out);
        // Without the server, wait: once we are back, the member list says
        // whom to reconnect to.
        if !self.joined_now {
            return false;
        }
        let m = &self.members[i];
        if !m.listed {
            // Gone, unless it comes back soon.
            self.members[i].gone_at = Some(now + self.config.gone_after_ms);
        } else if self.me.as_deref().is_some_and(|me| me < m.id.as_str()) {
            let attempt = m.relink_attempt;
            let delay = self.backoff(attempt);
            let m = &mut self.members[i];
            m.relink_attempt = attempt.saturating_add(1);
            m.relink_at = Some(now + delay);
        }
        false
    }
}
