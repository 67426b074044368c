//! `peerchat chat`, the terminal front ends of the native client: the
//! command line ([`cli`]), the full-screen terminal UI ([`tui`]) and line
//! mode for scripts and bots ([`line`]). They drive the engine library,
//! `peerchat-client`, and show what it reports.
#![forbid(unsafe_code)]

pub mod archive;
pub mod cli;
pub mod command;
pub mod conversation;
pub mod input;
pub mod line;
pub mod mention;
pub mod qr;
pub mod scroll;
pub mod status;
pub mod tui;
pub mod wrap;

pub use cli::{ChatArgs, run};
use peerchat_client::session::TargetError;
use peerchat_protocol::ErrorCode;

/// Why `peerchat chat` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The room link or server URL cannot be used.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The nickname breaks the rules.
    #[error("bad nickname {0:?}: {1}")]
    BadNick(String, String),
    /// The server refused to let us in.
    #[error("could not join the room ({code}): {message}")]
    JoinRefused {
        /// The stable code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// Pairing without a room failed, or standard input ended before the
    /// other side's code.
    #[error("{0}")]
    Pairing(String),
    /// Messages that could not be delivered before leaving.
    #[error("{0} message(s) could not be delivered before leaving")]
    Undelivered(usize),
    /// The certificates given with --tls-ca cannot be used.
    #[error("--tls-ca: {0}")]
    Tls(String),
    /// The identity key file cannot be used.
    #[error(transparent)]
    Identity(#[from] peerchat_client::identity::IdentityError),
    /// No identity key file was named, and there is no home directory to
    /// keep one in.
    #[error(
        "no place to keep the identity key: set XDG_DATA_HOME or HOME, or give --identity-file"
    )]
    NoIdentityFile,
    /// The terminal failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}
