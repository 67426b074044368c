//! Replies, reactions, edits, deletions and the room name in the engine:
//! which message a command is about, and what the log's state
//! ([`History::entry_state`], [`History::room_name`]) means for the front
//! ends. The rules themselves live in `peerchat-history`.

pub use peerchat_history::{EntryKind, Reaction};
use peerchat_history::{EntryRef, History, Message};
use peerchat_protocol::validate::nick_key;
use serde::Serialize;

/// Longest quote of a message a reply shows, in characters.
const EXCERPT: usize = 80;

/// What a reply quotes: the message it answers, as it shows now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// The author's peer id.
    pub author: String,
    /// The author's nickname then (empty if the message is not kept here).
    pub nick: String,
    /// The author's number for it.
    pub seq: u64,
    /// Its text as it shows now (the last edit's), shortened to one line;
    /// "message deleted", or "a message not kept here".
    pub text: String,
}

/// What a message shows now, after the entries about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    /// The text to show: the last edit's, or the original; empty when
    /// deleted.
    pub text: String,
    /// Whether its author edited it.
    pub edited: bool,
    /// Whether its author deleted it for everyone.
    pub deleted: bool,
    /// Its reactions: each emoji once, with who gave it (peer id,
    /// nickname).
    pub reactions: Vec<Reaction>,
}

/// Why an entry about a message could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AboutError {
    /// No message fits what the command names.
    #[error("{0}")]
    NoMessage(String),
    /// It could not be sent.
    #[error(transparent)]
    Send(#[from] peerchat_history::SendError),
}

/// What `m` (a message shown on its own) shows now.
pub fn shown(history: &History, m: &Message) -> Shown {
    let state = history.entry_state(&m.author, m.seq);
    Shown {
        text: if state.deleted {
            String::new()
        } else {
            state.text.unwrap_or_else(|| m.text.clone())
        },
        edited: state.edited,
        deleted: state.deleted,
        reactions: state.reactions,
    }
}

/// What a reply `m` quotes, if it is one.
pub fn quote(history: &History, m: &Message) -> Option<Quote> {
    let re = m.re.as_ref().filter(|_| m.kind == EntryKind::Reply)?;
    let (nick, text) = match history.get(&re.author, re.seq) {
        None => (String::new(), "a message not kept here".to_owned()),
        Some(target) => {
            let now = shown(history, target);
            let text = if now.deleted {
                "message deleted".to_owned()
            } else {
                excerpt(&now.text)
            };
            (target.nick.clone(), text)
        }
    };
    Some(Quote {
        author: re.author.clone(),
        nick,
        seq: re.seq,
        text,
    })
}

/// `text` on one line, shortened to [`EXCERPT`] characters.
fn excerpt(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= EXCERPT {
        return line;
    }
    let mut short: String = line.chars().take(EXCERPT - 1).collect();
    short.push('…');
    short
}

/// The message an entry of `kind` is about: for an edit or a deletion our
/// own latest message; otherwise the latest message of the member called
/// `nick` (ignoring case), or without one the latest message from someone
/// else. Deleted messages
/// and file offers are passed over (a file offer can be reacted to and
/// replied to, but not edited).
pub fn target(
    history: &History,
    kind: EntryKind,
    nick: Option<&str>,
) -> Result<EntryRef, AboutError> {
    let own = matches!(kind, EntryKind::Edit | EntryKind::Delete);
    let wanted = nick.map(nick_key);
    history
        .messages()
        .rev()
        .filter(|m| m.entry_kind().is_shown())
        .filter(|m| !(own && m.file.is_some()))
        .filter(|m| (m.author == history.me()) == own || (!own && wanted.is_some()))
        .filter(|m| wanted.as_ref().is_none_or(|w| nick_key(&m.nick) == *w))
        .find(|m| !history.entry_state(&m.author, m.seq).deleted)
        .map(|m| EntryRef {
            author: m.author.clone(),
            seq: m.seq,
        })
        .ok_or_else(|| {
            AboutError::NoMessage(match (own, nick) {
                (true, _) => "you have no message here to change".to_owned(),
                (false, Some(nick)) => format!("no message from {nick} here"),
                (false, None) => "no message from anyone else here yet".to_owned(),
            })
        })
}
