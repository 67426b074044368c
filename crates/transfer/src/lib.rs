//! peerchat's file transfers, sans-IO (protocol version 2, "Files" in
//! `docs/protocol.md`).
//!
//! A file offered in a room (or privately) is fetched over data channels of
//! its own (label `file`), piece by piece, from any member that holds all of
//! it:
//!
//! * [`Receiver`]: the fetching side of one file: which holder to ask (the
//!   author first, then the others), a window of pieces asked for, each
//!   piece checked against the hash list (itself checked against the
//!   offer's `root`) and asked for again when bad, the whole file checked
//!   against the offer's `sha256`, stalls (a state with a deadline, never a
//!   silent end), resuming after a blip or a reload, cancelling.
//! * [`Sender`]: the holder's side of one transfer channel: the hash list,
//!   then the pieces asked for, in chunks of 16 KiB, read from the file piece
//!   by piece and checked as they are read, never more in flight than the
//!   channel should hold.
//! * [`wire`]: the control and data messages of a transfer channel.
//! * [`hash`]: SHA-256 per piece and of the whole file, as bytes go by;
//!   the piece size peerchat chooses.
//! * [`sniff`]: the four image types recognised by content.
//! * [`name`]: the plain name a receiver shows and saves, and `name (1).ext`
//!   numbering.
//!
//! Nothing here touches a socket, a file or a clock: inputs and the time go
//! in, actions come out, timers are `next_deadline` / `handle_timeout`. The
//! web client's `web/js/transfer.js` implements the same rules; both replay
//! `tests/vectors/transfer.json`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod hash;
pub mod name;
pub mod receiver;
pub mod sender;
pub mod sniff;
pub mod wire;

pub use hash::{Digests, FileHasher, Hash};
pub use peerchat_protocol::file::FileMeta;
pub use receiver::{
    Canceller, Progress, ReceiveError, Receiver, ReceiverAction, ReceiverConfig, ReceiverState,
    Saved, SourceError,
};
pub use sender::{By, Sender, SenderAction, SenderConfig, SenderError, SenderState};
