//! `peerchat chat`: its flags, and choosing between the terminal UI and line
//! mode.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use peerchat_client::engine::{Engine, EngineOptions};
use peerchat_client::pair::Role;
use peerchat_client::session::{DEFAULT_SERVER, Session, Target, parse_target, server_ws_url};
use peerchat_client::signaling::Transport;
use peerchat_e2e::Pairing;
use peerchat_protocol::signaling::IceServer;
use peerchat_protocol::validate_nick;

use crate::ChatError;

/// Flags of `peerchat chat`.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// The room: a room link such as `http://127.0.0.1:8080/r/ROOM_ID#SECRET`
    /// (the server is taken from it; the part after `#` is the room's
    /// secret, which never goes to the server: quote the link in a shell),
    /// or a bare `ROOM_ID#SECRET`. Without one, a new room is made on
    /// --server and its link printed. Not used with --manual or --mailbox.
    pub room: Option<String>,

    /// Connect to one other peer with no server at all: print a connection
    /// code (an offer) to send them, then read their answer code. Line mode.
    #[arg(long, conflicts_with = "mailbox")]
    pub manual: bool,

    /// With --manual: read their connection code first and print the answer
    /// to send back.
    #[arg(long, requires = "manual")]
    pub answer: bool,

    /// With --manual: a secret both sides were given (43 characters, as
    /// the first side's --mailbox or a room link's fragment), so that no
    /// connection code carries one. Without it, the offer code carries a
    /// fresh secret and the answer is sealed with it.
    #[arg(
        long,
        requires = "manual",
        value_name = "SECRET",
        env = "PEERCHAT_SECRET"
    )]
    pub secret: Option<String>,

    /// Pair with one other peer through the server's mailbox (`POST /sig`)
    /// instead of a room. Without a value, a pairing `ID.SECRET` is made and
    /// printed, to give to the other side, who runs `--mailbox ID.SECRET`
    /// (quote it): the first to arrive offers, the second answers. Only the
    /// id goes to the server; the secret seals the codes. Needs an http://
    /// --server. Line mode.
    #[arg(long, value_name = "ID.SECRET", num_args = 0..=1, default_missing_value = "")]
    pub mailbox: Option<String>,

    /// The server, for a bare room id.
    #[arg(long, env = "PEERCHAT_SERVER")]
    pub server: Option<String>,

    /// Your nickname (default: your user name).
    #[arg(long, env = "PEERCHAT_NAME")]
    pub name: Option<String>,

    /// Line mode even on a terminal: each line of standard input is sent as
    /// a message, each message received is printed as `nick: text`. A line
    /// starting with `/` and a letter is a command (`/help` lists them);
    /// `//` at the start sends one `/`.
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

    /// Your identity key (Ed25519, PKCS#8, readable by you only), made
    /// there if missing. It signs your hellos and messages; the others pin
    /// it and compare safety numbers with it [default: identity.key beside
    /// the history file].
    #[arg(long, env = "PEERCHAT_IDENTITY_FILE", value_name = "PATH")]
    pub identity_file: Option<std::path::PathBuf>,

    /// Where files received are saved (made if missing; nothing there is
    /// ever overwritten: a second `notes.txt` is saved as `notes (1).txt`)
    /// [default: the XDG download directory, else ~/Downloads].
    #[arg(long, env = "PEERCHAT_DOWNLOAD_DIR", value_name = "DIR")]
    pub download_dir: Option<std::path::PathBuf>,

    /// Files offered up to this size are fetched without asking; larger
    /// ones wait for /accept. A number of bytes with an optional K, M or G
    /// (powers of 1024: 10M, 512KiB, 1G); 0: never without asking.
    #[arg(long, value_name = "SIZE", default_value = "10MiB", value_parser = parse_size)]
    pub accept_files: u64,

    /// How to reach the signaling server: `ws` (WebSocket), `poll` (plain
    /// HTTP requests, for networks whose proxies do not pass WebSockets), or
    /// `auto`: a WebSocket, long polling when one does not get through, and
    /// back to a WebSocket when one does.
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    pub transport: TransportArg,

    /// Trust the certificates in this PEM file on `https://` servers (and
    /// their `turns:` relays), besides the usual web roots: for a server
    /// with a private or self-signed certificate.
    #[arg(long, env = "PEERCHAT_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<std::path::PathBuf>,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    /// A WebSocket, falling back to long polling.
    Auto,
    /// A WebSocket only.
    Ws,
    /// Long polling only.
    Poll,
}

impl From<TransportArg> for Transport {
    fn from(arg: TransportArg) -> Self {
        match arg {
            TransportArg::Auto => Transport::Auto,
            TransportArg::Ws => Transport::WebSocket,
            TransportArg::Poll => Transport::Poll,
        }
    }
}

/// A size: bytes, or with a K, M or G suffix (powers of 1024; `KiB`, `KB`
/// and `k` alike).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("unknown unit {other:?}: use K, M or G")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (say 10M, 512K or 0)"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes.round() as u64)
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
    let server = || server_ws_url(args.server.as_deref().unwrap_or(DEFAULT_SERVER));
    let (session, relay, link) = if args.manual {
        let role = if args.answer {
            Role::Answer
        } else {
            Role::Offer
        };
        let secret = match &args.secret {
            Some(text) => Some(
                peerchat_client::session::Secret::from_fragment(text)
                    .map_err(|e| ChatError::Pairing(format!("--secret: {e}")))?,
            ),
            None => None,
        };
        (Session::Manual(role, secret), false, None)
    } else if let Some(given) = &args.mailbox {
        let (pairing, notice, made) = mailbox_pairing(given)?;
        eprintln!("{notice}");
        let session = Session::Mailbox {
            ws_url: server()?,
            id: pairing.id().to_owned(),
            secret: pairing.secret().clone(),
            made,
        };
        (session, false, None)
    } else {
        let target = match &args.room {
            Some(room) => parse_target(room, args.server.as_deref())?,
            None => {
                let target = Target::new_room(
                    args.server.as_deref().unwrap_or(DEFAULT_SERVER),
                    rand::random(),
                    rand::random(),
                )?;
                // The user's own terminal: the link is theirs to share.
                eprintln!(
                    "new room: {} (share this link, all of it: the part after # is the room's secret)",
                    target.link()
                );
                target
            }
        };
        let link = target.link();
        (target.session(), target.relay, Some(link))
    };
    let nick = args
        .name
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "guest".to_owned());
    validate_nick(&nick).map_err(|e| ChatError::BadNick(nick.clone(), e.to_string()))?;
    let room = session.room().map(str::to_owned);
    let tls = match &args.tls_ca {
        Some(path) => {
            let roots = peerchat_client::tls::read_roots(path)
                .map_err(|e| ChatError::Tls(e.to_string()))?;
            peerchat_client::tls::client_config(&roots)
                .map_err(|e| ChatError::Tls(format!("{}: {e}", path.display())))?
        }
        None => peerchat_client::tls::default_config(),
    };
    let identity_file = args
        .identity_file
        .clone()
        .or_else(peerchat_client::identity::default_path)
        .ok_or(ChatError::NoIdentityFile)?;
    let identity = peerchat_client::identity::load_or_create(&identity_file)?;
    let options = EngineOptions {
        tls,
        transport: args.transport.into(),
        identity: std::sync::Arc::new(identity),
        extra_ice_servers: ice_servers(&args),
        relay_only: args.relay_only || relay,
        mdns: !args.no_mdns,
        // Pairs have no room to keep history for.
        download_dir: args
            .download_dir
            .clone()
            .or_else(peerchat_client::engine::default_download_dir),
        accept_files: args.accept_files,
        history_file: if args.no_history || room.is_none() {
            None
        } else {
            args.history_file
                .clone()
                .or_else(peerchat_client::store::default_path)
        },
        ..EngineOptions::new(session, nick)
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let relay_only = options.relay_only;
    // Pasting a connection code uses standard input first.
    let manual = matches!(options.session, Session::Manual(..));
    let (engine, events) = Engine::start(options);
    match room {
        Some(room) if interactive && !args.plain && !args.json => {
            let link = link.unwrap_or_default();
            crate::tui::run(engine, events, &room, &link, relay_only).await
        }
        _ => {
            let mode = if args.json {
                crate::line::Output::Json
            } else {
                crate::line::Output::Plain
            };
            let room = room.zip(link);
            crate::line::run(engine, events, mode, args.linger, manual, room).await
        }
    }
}

/// The mailbox pairing to pair under, from `--mailbox`'s value (empty:
/// make a new one), what to tell the user about it, and whether it was
/// made here.
fn mailbox_pairing(given: &str) -> Result<(Pairing, String, bool), ChatError> {
    if given.trim().is_empty() {
        let pairing = Pairing::from_random(rand::random(), rand::random());
        let notice = format!(
            "mailbox pairing: {pairing} (the other side runs `peerchat chat --mailbox='{pairing}'` with the same --server; \
             the part after the dot is a secret: give it to them only)"
        );
        return Ok((pairing, notice, true));
    }
    let pairing = Pairing::parse(given).map_err(|e| {
        ChatError::Pairing(format!(
            "--mailbox: {e}; a pairing looks like ID.SECRET, as `peerchat chat --mailbox` printed it"
        ))
    })?;
    let notice = format!("mailbox id: {}", pairing.id());
    Ok((pairing, notice, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("512 K"), Ok(512 << 10));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn a_mailbox_pairing_is_made_when_none_is_given_and_one_without_its_secret_is_refused() {
        let (a, notice, _) = mailbox_pairing("").unwrap();
        let (b, _, _) = mailbox_pairing("").unwrap();
        assert_eq!(a.id().len(), 22);
        assert_ne!(a, b);
        assert!(notice.contains(&a.to_string()));
        let (back, notice, _) = mailbox_pairing(&a.to_string()).unwrap();
        assert_eq!(back, a);
        assert!(!notice.contains(&a.secret().to_fragment()), "{notice}");
        let err = mailbox_pairing(a.id()).unwrap_err().to_string();
        assert!(err.contains("ID.SECRET"), "{err}");
        assert!(mailbox_pairing("pairing-test").is_err());
    }
}
