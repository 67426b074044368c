//! peerchat's cluster logic as a sans-IO state machine: several `peerchat
//! serve` processes sharing rooms through Redis.
//!
//! # Design
//!
//! Each room has one **owner**: the server whose [`peerchat_rooms::Hub`]
//! holds it, unchanged, so that every rule of a room (nickname uniqueness,
//! capacity, resume grace, `peer_left` exactly once) is decided in one
//! place, as on a single server. A client may connect to any server (its
//! **ingress**); the ingress sends its frames to the owner of its room, and
//! the owner sends what its hub outputs for that client back to the
//! ingress. Frames travel in **entries** appended to the receiving server's
//! inbox (a Redis stream per server), numbered per (sender, receiver) link
//! so that the receiver drops duplicates and notices gaps ([`link`]).
//!
//! Ownership is claimed atomically in Redis: a server takes a room when it
//! has no owner, or when its owner's **lease** has run out. A server holds a
//! lease by beating (renewing it) every [`ClusterConfig::beat`]; it may act
//! on it until [`ClusterConfig::lease`] after the last beat that succeeded
//! was *sent*, which is never later than Redis lets it run out. A lease that
//! ran out is not gone yet: it is gone once another server *declares* it
//! gone (in the same script that finds it run out, atomically), and a
//! server whose lease is declared gone learns so at its next beat. So:
//!
//! - a server that can no longer renew its lease stops serving its rooms
//!   (it holds every event for its hub, and its timers) before anyone may
//!   take them, and carries on where it stopped if a beat then succeeds
//!   without anyone having declared it gone: a Redis that pauses or
//!   restarts with its data costs latency, not a room;
//! - a server declared gone closes every client in a room (they join again,
//!   as after a server restart) and registers again under a new id: a room
//!   is never served by two servers at once;
//! - when a server is gone, the owners of rooms its clients were in treat
//!   those clients as lost (away for the resume grace, when they joined
//!   with a key): they reconnect to another server and resume, and nobody
//!   sees them leave; the servers with clients in rooms it owned close those
//!   clients, which join again and so move the room to whichever server
//!   claims it first.
//!
//! [`Node`] is one server: the transport feeds it its clients' events (as
//! it would a hub), the entries read from its inbox, the results of the
//! Redis commands it queued ([`Command`]) and the time.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

use std::time::Duration;

pub mod link;
mod node;
pub mod wire;

pub use node::{BeatResult, ClaimResult, ClusterStats, Command, MailboxResult, Node, PROXY_BASE};
pub use peerchat_mailbox::{MailboxConfig, MailboxError, Resolution};

/// A server's id in the cluster: random, and new each time the server
/// (re)registers. Written as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for NodeId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Self)
    }
}

/// Timings and bounds of a [`Node`].
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// How long a lease lasts after a beat: a server that cannot renew it
    /// for this long stops serving its rooms; one gone for this long is
    /// noticed by the others.
    pub lease: Duration,
    /// How often a server beats (renews its lease and learns who is
    /// alive); well under `lease`.
    pub beat: Duration,
    /// How long an entry that arrived ahead of a missing one waits for it
    /// before the missing one counts as lost.
    pub reorder_wait: Duration,
    /// How often a server keeps its rooms' ownership records alive.
    pub refresh: Duration,
    /// Most bytes of frames waiting to be appended to one other server's
    /// inbox; a client whose frame would exceed it is cut off.
    pub link_bytes: usize,
    /// Most bytes of frames held while the lease is in doubt or a room's
    /// owner is being looked up; a client whose frame would exceed it is cut
    /// off.
    pub held_bytes: usize,
    /// The long-poll mailbox's limits (for the ids this server owns), or
    /// `None` when it is off.
    pub mailbox: Option<MailboxConfig>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(5),
            beat: Duration::from_secs(1),
            reorder_wait: Duration::from_secs(1),
            refresh: Duration::from_secs(600),
            link_bytes: 8 * 1024 * 1024,
            held_bytes: 8 * 1024 * 1024,
            mailbox: Some(MailboxConfig::default()),
        }
    }
}

#[cfg(test)]
mod tests;
