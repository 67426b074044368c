//! `peerchat chat`: its flags, and choosing between the terminal UI and line
//! mode.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use peerchat_protocol::signaling::IceServer;
use peerchat_protocol::{ErrorCode, validate_nick, validate_room_id};
use url::Url;

use crate::engine::{Engine, EngineOptions, SignalingMode};
use crate::pair::Role;

/// The server used with a bare room id when `--server` is not given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Flags of `peerchat chat`.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// The room: a room link such as `http://127.0.0.1:8080/r/ROOM_ID` (the
    /// server is taken from it), or a bare room id. Not used with --manual
    /// or --mailbox.
    #[arg(required_unless_present_any = ["manual", "mailbox"])]
    pub room: Option<String>,

    /// Connect to one other peer with no server at all: print a connection
    /// code (an offer) to send them, then read their answer code. Line mode.
    #[arg(long, conflicts_with = "mailbox")]
    pub manual: bool,

    /// With --manual: read their connection code first and print the answer
    /// to send back.
    #[arg(long, requires = "manual")]
    pub answer: bool,

    /// Pair with one other peer through the server's mailbox (`POST /sig`)
    /// under this id instead of a room: the first to arrive offers, the
    /// second answers. Without an id, a random one (128 bits) is made and
    /// printed, to give to the other side; whoever guesses an id can take
    /// the offer, so a short one is warned about. Needs an http:// --server.
    /// Line mode.
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub mailbox: Option<String>,

    /// The server, for a bare room id.
    #[arg(long, env = "PEERCHAT_SERVER")]
    pub server: Option<String>,

    /// Your nickname (default: your user name).
    #[arg(long, env = "PEERCHAT_NAME")]
    pub name: Option<String>,

    /// Line mode even on a terminal: each line of standard input is sent as
    /// a message, each message received is printed as `nick: text`.
    #[arg(long)]
    pub plain: bool,

    /// Line mode with one JSON object per event on standard output.
    #[arg(long)]
    pub json: bool,

    /// A STUN or TURN URL used besides those the server hands out. Repeat
    /// for several.
    #[arg(long = "ice-server", value_delimiter = ',')]
    pub ice_servers: Vec<String>,

    /// Username for the `turn:` URLs given with --ice-server.
    #[arg(long, requires = "ice_credential")]
    pub ice_username: Option<String>,

    /// Password for the `turn:` URLs given with --ice-server.
    #[arg(long, requires = "ice_username")]
    pub ice_credential: Option<String>,

    /// Connect through TURN relays only: other members never learn this
    /// machine's addresses.
    #[arg(long)]
    pub relay_only: bool,

    /// Do not resolve other peers' `.local` (mDNS) addresses.
    #[arg(long)]
    pub no_mdns: bool,

    /// At the end of input, how long to wait for every member to
    /// acknowledge our messages.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub linger: Duration,

    /// Where rooms' history is kept between runs (SQLite) [default:
    /// $XDG_DATA_HOME/peerchat/history.sqlite3, or
    /// ~/.local/share/peerchat/history.sqlite3].
    #[arg(
        long,
        env = "PEERCHAT_HISTORY_FILE",
        value_name = "PATH",
        conflicts_with = "no_history"
    )]
    pub history_file: Option<std::path::PathBuf>,

    /// Keep no history on disk: only while running.
    #[arg(long)]
    pub no_history: bool,
}

/// Why `peerchat chat` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The room argument is neither a room link nor a room id.
    #[error("{0:?} is not a room link or room id: {1}")]
    BadRoom(String, String),
    /// The server URL cannot be used.
    #[error("bad server URL {0:?}: {1}")]
    BadServer(String, String),
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
    /// Messages that could not be delivered before leaving.
    #[error("{0} message(s) could not be delivered before leaving")]
    Undelivered(usize),
    /// The terminal failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Where to connect: the server's WebSocket URL, the room, and whether the
/// link asked for relay-only connections (`?relay=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws://host:port/ws` or `wss://…`.
    pub ws_url: String,
    /// The room id.
    pub room: String,
    /// `?relay=1` was on the link.
    pub relay: bool,
}

/// Reads a room link, or a bare room id with a server URL.
pub fn parse_target(room: &str, server: Option<&str>) -> Result<Target, ChatError> {
    if room.contains("://") {
        let url = Url::parse(room).map_err(|e| ChatError::BadRoom(room.into(), e.to_string()))?;
        let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        let id = match segments.as_slice() {
            ["r", id] | ["r", id, ""] => *id,
            _ => {
                return Err(ChatError::BadRoom(
                    room.into(),
                    "a room link looks like http://host/r/ROOM_ID".into(),
                ));
            }
        };
        validate_room_id(id).map_err(|e| ChatError::BadRoom(room.into(), e.to_string()))?;
        let relay = url.query_pairs().any(|(k, v)| k == "relay" && v == "1");
        Ok(Target {
            ws_url: ws_url(&url).map_err(|e| ChatError::BadRoom(room.into(), e))?,
            room: id.to_owned(),
            relay,
        })
    } else {
        validate_room_id(room).map_err(|e| ChatError::BadRoom(room.into(), e.to_string()))?;
        let server = server.unwrap_or(DEFAULT_SERVER);
        let url =
            Url::parse(server).map_err(|e| ChatError::BadServer(server.into(), e.to_string()))?;
        Ok(Target {
            ws_url: ws_url(&url).map_err(|e| ChatError::BadServer(server.into(), e))?,
            room: room.to_owned(),
            relay: false,
        })
    }
}

fn ws_url(url: &Url) -> Result<String, String> {
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(format!("the scheme {other:?} is not http(s) or ws(s)")),
    };
    let host = url.host_str().ok_or("no host")?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Ok(match url.port() {
        Some(port) => format!("{scheme}://{host}:{port}/ws"),
        None => format!("{scheme}://{host}/ws"),
    })
}

fn ice_servers(args: &ChatArgs) -> Vec<IceServer> {
    args.ice_servers
        .iter()
        .map(|url| {
            let turn = url.starts_with("turn:") || url.starts_with("turns:");
            IceServer {
                urls: vec![url.clone()],
                username: if turn {
                    args.ice_username.clone()
                } else {
                    None
                },
                credential: if turn {
                    args.ice_credential.clone()
                } else {
                    None
                },
            }
        })
        .collect()
}

/// Runs `peerchat chat`: the terminal UI when standard input and output are
/// a terminal (and neither `--plain` nor `--json` is given), else line mode.
pub async fn run(args: ChatArgs) -> Result<(), ChatError> {
    let signaling = if args.manual {
        SignalingMode::Manual(if args.answer {
            Role::Answer
        } else {
            Role::Offer
        })
    } else if let Some(id) = &args.mailbox {
        let (id, notice) = mailbox_id(id);
        eprintln!("{notice}");
        SignalingMode::Mailbox(id)
    } else {
        SignalingMode::Server
    };
    let target = match &args.room {
        Some(room) if signaling == SignalingMode::Server => {
            parse_target(room, args.server.as_deref())?
        }
        _ => {
            let server = args.server.as_deref().unwrap_or(DEFAULT_SERVER);
            let url = Url::parse(server)
                .map_err(|e| ChatError::BadServer(server.into(), e.to_string()))?;
            Target {
                ws_url: ws_url(&url).map_err(|e| ChatError::BadServer(server.into(), e))?,
                room: "-".to_owned(),
                relay: false,
            }
        }
    };
    let nick = args
        .name
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "guest".to_owned());
    validate_nick(&nick).map_err(|e| ChatError::BadNick(nick.clone(), e.to_string()))?;
    let options = EngineOptions {
        ws_url: target.ws_url.clone(),
        room: target.room.clone(),
        nick,
        extra_ice_servers: ice_servers(&args),
        relay_only: args.relay_only || target.relay,
        mdns: !args.no_mdns,
        signaling: signaling.clone(),
        history: Default::default(),
        // Pairs have no room to keep history for.
        history_file: if args.no_history || signaling != SignalingMode::Server {
            None
        } else {
            args.history_file
                .clone()
                .or_else(crate::store::default_path)
        },
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (engine, events) = Engine::start(options.clone());
    let paired = signaling != SignalingMode::Server;
    if interactive && !args.plain && !args.json && !paired {
        crate::tui::run(engine, events, &options).await
    } else {
        let mode = if args.json {
            crate::line::Output::Json
        } else {
            crate::line::Output::Plain
        };
        // Pasting the connection code uses standard input first.
        let manual = matches!(signaling, SignalingMode::Manual(_));
        crate::line::run(engine, events, mode, args.linger, manual).await
    }
}

/// Mailbox ids shorter than this (22 base64url characters: 128 bits) are
/// easy to guess.
const MAILBOX_ID_LEN: usize = 22;

/// The mailbox id to pair under, from `--mailbox`'s value (empty: make a
/// random one), and what to tell the user about it.
fn mailbox_id(given: &str) -> (String, String) {
    use base64::Engine as _;
    if given.is_empty() {
        let bytes: [u8; 16] = rand::random();
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let notice = format!(
            "mailbox id: {id} (the other side runs `peerchat chat --mailbox {id}` with the same --server)"
        );
        (id, notice)
    } else if given.len() < MAILBOX_ID_LEN {
        let notice = format!(
            "warning: whoever guesses the mailbox id {given:?} can take your offer; \
             `--mailbox` with no id makes a random one"
        );
        (given.to_owned(), notice)
    } else {
        (given.to_owned(), format!("mailbox id: {given}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mailbox_id_is_made_when_none_is_given_and_a_short_one_is_warned_about() {
        let (a, notice) = mailbox_id("");
        let (b, _) = mailbox_id("");
        assert_eq!(a.len(), MAILBOX_ID_LEN);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(notice.contains(&a));
        let (id, notice) = mailbox_id("pairing");
        assert_eq!(id, "pairing");
        assert!(notice.starts_with("warning:"));
        let long = "Zq0rJ8xWm3bT5nY2kL7pA1";
        assert_eq!(mailbox_id(long).0, long);
    }

    use super::*;

    const ID: &str = "abcdefghijklmnopqrstuv";

    #[test]
    fn room_links_name_the_server() {
        let t = parse_target(&format!("http://127.0.0.1:8080/r/{ID}"), None).unwrap();
        assert_eq!(
            t,
            Target {
                ws_url: "ws://127.0.0.1:8080/ws".into(),
                room: ID.into(),
                relay: false
            }
        );
        let t = parse_target(&format!("https://chat.example.org/r/{ID}?relay=1"), None).unwrap();
        assert_eq!(t.ws_url, "wss://chat.example.org/ws");
        assert!(t.relay);
        let t = parse_target(&format!("http://[::1]:9/r/{ID}"), None).unwrap();
        assert_eq!(t.ws_url, "ws://[::1]:9/ws");
    }

    #[test]
    fn bare_ids_use_the_server_flag() {
        let t = parse_target(ID, Some("http://10.0.0.2:9000")).unwrap();
        assert_eq!(t.ws_url, "ws://10.0.0.2:9000/ws");
        let t = parse_target(ID, None).unwrap();
        assert_eq!(t.ws_url, "ws://127.0.0.1:8080/ws");
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(parse_target("short", None).is_err());
        assert!(parse_target(&format!("http://h/x/{ID}"), None).is_err());
        assert!(parse_target(&format!("ftp://h/r/{ID}"), None).is_err());
        assert!(parse_target(ID, Some("not a url")).is_err());
    }
}
