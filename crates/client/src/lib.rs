//! peerchat's native client engine: joins the same rooms as the web client
//! and chats with browsers and other native clients over WebRTC data
//! channels. A library: it reads and writes no terminal; the front ends
//! (`peerchat chat`, in the `peerchat-cli` crate) show what it reports.
//!
//! - [`engine`]: the peer engine (signaling, members, one WebRTC link per
//!   member, messages), with an event API;
//! - [`session`]: what an engine joins (a room, or one other peer) and
//!   reading room links;
//! - [`peer`]: one WebRTC link, with webrtc-rs;
//! - [`signaling`]: the connection to the server (a WebSocket, or long
//!   polling through [`poll`]);
//! - [`pair`]: two peers without a room (connection codes, the mailbox);
//! - [`store`]: the history file;
//! - [`about`]: replies, reactions, edits, deletions and the room name;
//! - [`tls`]: the roots a client trusts;
//! - `turn_bridge`: TURN over TCP and TLS for webrtc-rs, which speaks it
//!   over UDP only.
#![forbid(unsafe_code)]

pub mod about;
pub mod engine;
pub mod identity;
pub mod pair;
pub mod peer;
pub mod poll;
pub mod session;
pub mod signaling;
pub mod store;
pub mod tls;
mod turn_bridge;

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;

/// A fresh random id of 128 bits as 22 base64url characters (message and
/// connection ids).
pub fn random_id() -> String {
    BASE64_URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}
