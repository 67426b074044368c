//! Fuzz targets: one function per parser that reads bytes from someone
//! else, taking arbitrary bytes and checking what must hold whatever they
//! are (no panic, and each parser's own promises: what parses re-encodes
//! to the same, what is refused is refused with a typed error, a state
//! machine's output stays well-formed and bounded).
//!
//! `tests/fuzz.rs` runs each target on its corpus (`corpus/TARGET/`) and
//! on a bounded number of generated and mutated inputs in the test suite;
//! any fuzzer that feeds `&[u8]` to a function can drive them for longer.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use peerchat_client::pair::Code;
use peerchat_client::peer::{outgoing_sdp, with_candidates};
use peerchat_e2e::{Context, SignalKey};
use peerchat_history::History;
use peerchat_history::private::{Conversations, unwrap};
use peerchat_mailbox::{Mailbox, MailboxConfig, Op, Outcome, Resolution, Ticket};
use peerchat_protocol::file::FileMeta;
use peerchat_protocol::peer::PeerMessage;
use peerchat_protocol::signaling::{ClientMessage, ServerMessage};
use peerchat_rooms::{Hub, HubConfig, NoBacklog, Output};
use peerchat_transfer::{
    Receiver, ReceiverConfig, ReceiverState, Sender, SenderAction, SenderConfig,
};
use serde_json::Value;

/// A fuzz target: takes any bytes, panics when something that must hold
/// does not.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("client_message", client_message),
    ("server_message", server_message),
    ("hub", hub),
    ("peer_envelope", peer_envelope),
    ("history", history),
    ("mailbox_query", mailbox_query),
    ("mailbox", mailbox),
    ("peerjs", peerjs),
    ("connection_code", connection_code),
    ("sdp_filters", sdp_filters),
    ("file_offer", file_offer),
    ("private_envelope", private_envelope),
    ("transfer_channel", transfer_channel),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A frame a client sends the server (`ClientMessage::parse`): what
/// parses re-encodes to something that parses to the same.
pub fn client_message(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(message) = ClientMessage::parse(text) {
        let json = message.to_json();
        let again = ClientMessage::parse(&json).expect("an encoded message parses");
        assert_eq!(again.to_json(), json);
    }
}

/// A frame the server sends a client (`ServerMessage::parse`).
pub fn server_message(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(message) = ServerMessage::parse(text) {
        let json = message.to_json();
        let again = ServerMessage::parse(&json).expect("an encoded message parses");
        assert_eq!(again.to_json(), json);
    }
}

/// The hub, fed the input's lines as frames from three connections in
/// turn, with time passing: every frame it sends is a JSON object with a
/// `type`, and it never holds more members than connections.
pub fn hub(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let mut hub = Hub::new(
        HubConfig {
            room_capacity: 2,
            ..HubConfig::default()
        },
        1,
    );
    let mut now = Instant::now();
    for conn in 1..=3 {
        hub.connect(conn, now);
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let conn = (i % 3) as u64 + 1;
        now += Duration::from_millis(7);
        hub.handle_text(conn, line, now, &NoBacklog, &mut out);
        hub.handle_timeout(now, &mut out);
        for output in out.drain(..) {
            if let Output::Send { frame, .. } = output {
                let value: Value = serde_json::from_str(frame.as_str()).expect("frames are JSON");
                assert!(value["type"].is_string(), "{value}");
            }
        }
        assert!(hub.stats().members <= 3);
    }
    let mut out = Vec::new();
    for conn in 1..=3 {
        hub.disconnect(conn, peerchat_rooms::Departure::Left, now, &mut out);
    }
    assert_eq!(hub.stats().members, 0);
}

/// A data-channel envelope from a peer (`PeerMessage::parse`): a chat or
/// sync that parses re-encodes to the same.
pub fn peer_envelope(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let json = match PeerMessage::parse(text) {
        Ok(PeerMessage::Chat(chat)) => chat.to_json(),
        Ok(PeerMessage::Sync(sync)) => sync.to_json(),
        _ => return,
    };
    let again = PeerMessage::parse(&json).expect("an encoded envelope parses");
    assert_eq!(again, PeerMessage::parse(text).expect("parsed before"));
}

/// The message log, fed the input's lines as envelopes from two peers: it
/// keeps at most its capacity, and its order is total.
pub fn history(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let mut history = History::new("0000000000000001", peerchat_history::Config::default());
    let capacity = peerchat_history::Config::default().capacity;
    for (i, line) in text.lines().enumerate() {
        let from = if i % 2 == 0 {
            "00000000000000aa"
        } else {
            "00000000000000bb"
        };
        let _ = history.handle(from, "peer", line, 1_700_000_000_000 + i as u64);
        assert!(history.len() <= capacity);
    }
    let keys: Vec<_> = history
        .messages()
        .map(|m| (m.clock, m.author.clone(), m.seq))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "ordered and unique");
}

/// A mailbox request's query string (`Mailbox::parse_query`): what parses
/// names one id of the allowed alphabet and length, and waits no longer
/// than the limit.
pub fn mailbox_query(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let mailbox = Mailbox::new(MailboxConfig::default());
    if let Ok(Op::Get { id, wait } | Op::Set { id, wait }) = mailbox.parse_query(text) {
        let config = mailbox.config();
        assert!(!id.is_empty() && id.len() <= config.max_id_len, "{id:?}");
        assert!(id.chars().all(|c| config.id_alphabet.contains(c)), "{id:?}");
        assert!(wait <= config.max_wait);
    }
}

/// The mailbox fed whole sessions of requests: each line is a request's
/// query string, then a space and the text it posts; `cancel N` hangs up
/// the Nth request; a second passes per line. Readers get only texts
/// posted to their id, each once; every request is answered once;
/// what waits stays within the limits; at the end, once every wait ran
/// out, nothing is left.
pub fn mailbox(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let config = MailboxConfig {
        max_body: 64,
        max_wait: Duration::from_secs(10),
        max_queued_per_id: 2,
        max_queued_total: 3,
        max_in_flight: 4,
        ..MailboxConfig::default()
    };
    let mut mailbox = Mailbox::new(config.clone());
    let start = Instant::now();
    let mut now = start;
    let mut pending = Pending::new();
    let mut tickets = Vec::new();
    let mut out = Vec::new();
    // Texts posted and not yet read or withdrawn, by id.
    let mut posted: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text.lines() {
        now += Duration::from_secs(1);
        mailbox.expire(now, &mut out);
        settle(&mut pending, &mut out, &mut posted);
        if let Some(n) = line.strip_prefix("cancel ") {
            if let Some(&ticket) = n.parse::<usize>().ok().and_then(|n| tickets.get(n)) {
                let was_waiting = mailbox.cancel(ticket);
                assert_eq!(was_waiting, pending.contains_key(&ticket));
                if let Some((id, Some(text))) = pending.remove(&ticket) {
                    take(&mut posted, &id, &text);
                }
            }
            continue;
        }
        let (query, body) = line.split_once(' ').unwrap_or((line, ""));
        let outcome = match mailbox.parse_query(query) {
            Ok(Op::Get { id, wait }) => mailbox
                .get(&id, wait, now, &mut out)
                .map(|outcome| (id, None, outcome)),
            Ok(Op::Set { id, wait }) => {
                let body = body.as_bytes().to_vec();
                mailbox
                    .set(&id, body.clone().into(), wait, now, &mut out)
                    .map(|outcome| (id, Some(body), outcome))
            }
            Err(_) => continue,
        };
        if let Ok((id, text, outcome)) = outcome {
            match outcome {
                Outcome::Pending(ticket) => {
                    if let Some(text) = &text {
                        posted.push((id.clone(), text.clone()));
                    }
                    tickets.push(ticket);
                    assert!(pending.insert(ticket, (id, text)).is_none(), "a new ticket");
                }
                Outcome::Done(Resolution::Text(got)) => {
                    assert!(text.is_none());
                    take(&mut posted, &id, &got);
                }
                Outcome::Done(Resolution::Taken) => {
                    // Handed to a waiting reader, resolved in `out`.
                    posted.push((id, text.expect("a writer")));
                }
                Outcome::Done(Resolution::TimedOut) => {}
            }
        }
        settle(&mut pending, &mut out, &mut posted);
        assert_eq!(mailbox.in_flight(), pending.len());
        assert!(mailbox.in_flight() <= config.max_in_flight);
        assert!(mailbox.queued() <= config.max_queued_total);
    }
    mailbox.expire(now + config.max_wait, &mut out);
    settle(&mut pending, &mut out, &mut posted);
    assert!(pending.is_empty(), "every request answered");
    assert!(posted.is_empty(), "every text read or withdrawn");
    assert_eq!((mailbox.in_flight(), mailbox.queued()), (0, 0));
    assert_eq!(mailbox.next_deadline(), None);
}

/// Pending mailbox requests by ticket: the id, and the text a writer posted.
type Pending = HashMap<Ticket, (String, Option<Vec<u8>>)>;

/// Checks the answers the mailbox gave waiting requests: each answers a
/// pending request once, readers get texts, writers' texts are taken or
/// withdrawn.
fn settle(
    pending: &mut Pending,
    out: &mut Vec<(Ticket, Resolution)>,
    posted: &mut Vec<(String, Vec<u8>)>,
) {
    for (ticket, resolution) in out.drain(..) {
        let (id, text) = pending.remove(&ticket).expect("answered once");
        match resolution {
            Resolution::Text(got) => {
                assert!(text.is_none(), "a reader gets a text");
                take(posted, &id, &got);
            }
            Resolution::Taken => assert!(text.is_some(), "a writer's text is taken"),
            Resolution::TimedOut => {
                if let Some(text) = text {
                    take(posted, &id, &text);
                }
            }
        }
    }
}

/// Takes one text posted to `id` out of `posted`: it must be there.
fn take(posted: &mut Vec<(String, Vec<u8>)>, id: &str, text: &[u8]) {
    let at = posted
        .iter()
        .position(|(i, t)| i == id && t == text)
        .unwrap_or_else(|| panic!("{text:?} was posted to {id}"));
    posted.remove(at);
}

/// The PeerJS endpoint (`peerchat_peerjs::Server`): the input's first line
/// is the query string of a WebSocket that registers, the others are
/// frames from it and from two registered clients in turn, with time
/// passing. Every frame it sends is a JSON object with a string `type`, it
/// holds no more ids than connections, and what waits for ids nobody holds
/// stays within its bounds.
pub fn peerjs(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let config = peerchat_peerjs::Config {
        send_queue_bytes: 4096,
        queue_bytes_total: 8192,
        ..peerchat_peerjs::Config::default()
    };
    let mut server = peerchat_peerjs::Server::new(config, [1; 32]);
    let mut now = Instant::now();
    let mut out = Vec::new();
    let mut lines = text.lines();
    let query = lines.next().unwrap_or_default();
    server.open(
        1,
        &peerchat_peerjs::Params::from_query(query),
        now,
        &mut out,
    );
    for (conn, id) in [(2, "bob"), (3, "carol")] {
        let query = format!("key=peerjs&id={id}&token=t");
        server.open(
            conn,
            &peerchat_peerjs::Params::from_query(&query),
            now,
            &mut out,
        );
    }
    let check = |out: &mut Vec<peerchat_peerjs::Output>| {
        for output in out.drain(..) {
            if let peerchat_peerjs::Output::Send { frame, .. } = output {
                let value: Value = serde_json::from_str(frame.as_str()).expect("frames are JSON");
                assert!(value["type"].is_string(), "{value}");
            }
        }
    };
    check(&mut out);
    for (i, line) in lines.enumerate() {
        let conn = (i % 3) as u64 + 1;
        now += Duration::from_millis(700);
        server.handle_text(conn, line, &NoBacklog, now, &mut out);
        server.handle_timeout(now, &mut out);
        check(&mut out);
        let stats = server.stats();
        assert!(stats.clients <= 3, "{stats:?}");
        assert!(stats.queued_bytes <= 8192, "{stats:?}");
    }
    for conn in 1..=3 {
        server.disconnect(conn);
    }
    assert_eq!(server.stats().clients, 0);
}

/// A connection code pasted by a person (`Code::parse`): one that parses
/// and carries a secret opens with it or is refused, never panics; what
/// opens seals again to a code that opens to the same.
pub fn connection_code(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(code) = Code::parse(text) else { return };
    let Some(secret) = code.secret.clone() else {
        return;
    };
    let key = SignalKey::derive(&secret, Context::Code);
    if let Ok(blob) = code.open_with(&key) {
        let again = Code::parse(&blob.seal(&key, Some(&secret)))
            .expect("a sealed code parses")
            .open_with(&key)
            .expect("a sealed code opens");
        assert_eq!(again, blob);
    }
}

/// The SDP filters: relay-only leaves no candidate but relay ones, none
/// naming an unspecified address, and every other line as it was; adding candidates keeps each and ends with
/// one `a=end-of-candidates`.
pub fn sdp_filters(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let filtered = outgoing_sdp(text, true);
    for line in filtered.lines() {
        assert!(!line.starts_with("a=candidate:") || line.contains(" typ relay"));
        let address = line.split_whitespace().nth(4);
        assert!(
            !line.starts_with("a=candidate:")
                || !address
                    .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                    .is_some_and(|ip| ip.is_unspecified())
        );
    }
    let others = |s: &str| -> Vec<String> {
        s.split_inclusive('\n')
            .filter(|l| !l.starts_with("a=candidate:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(others(&filtered), others(text));
    let candidates: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .map(str::to_owned)
        .collect();
    let full = with_candidates(text, &candidates);
    // (A line's own trailing CR may merge into the line break.)
    let bare = |l: &str| l.trim_end_matches('\r').to_owned();
    for c in &candidates {
        assert!(full.lines().any(|l| bare(l) == bare(c)), "{c:?} kept");
    }
    assert_eq!(
        full.lines().filter(|l| *l == "a=end-of-candidates").count(),
        1
    );
    assert_eq!(full.lines().last(), Some("a=end-of-candidates"));
}

/// A file offer's object (`FileMeta::from_value`): what parses re-encodes to
/// the same, and has at most 65,536 pieces; its plain name is plain.
pub fn file_offer(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Ok(meta) = FileMeta::from_value(&value) {
        assert!(meta.pieces() <= peerchat_protocol::file::MAX_PIECES);
        let again = FileMeta::from_value(&meta.to_value()).expect("an encoded offer parses");
        assert_eq!(again, meta);
        let plain = peerchat_transfer::name::sanitize(&meta.name);
        assert!(!plain.is_empty() && plain.len() <= 255 && !plain.contains(['/', '\\']));
    }
}

/// Private conversations fed the input's lines as envelopes from two peers:
/// each conversation holds only its two parties' entries, and nothing
/// reaches the room's log.
pub fn private_envelope(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let me = "0000000000000001";
    let mut room = History::new(me, peerchat_history::Config::default());
    let mut private = Conversations::new(me, peerchat_history::Config::default());
    for (i, line) in text.lines().enumerate() {
        let from = if i % 2 == 0 {
            "00000000000000aa"
        } else {
            "00000000000000bb"
        };
        match unwrap(line) {
            Some(body) => {
                if let Ok(effects) = private.handle(from, "peer", &body, i as u64) {
                    for effect in effects {
                        if let peerchat_history::Effect::Send { to, text } = effect {
                            assert_eq!(to, from, "a conversation answers its party only");
                            assert!(unwrap(&text).is_some(), "wrapped");
                        }
                    }
                }
            }
            None => {
                let _ = room.handle(from, "peer", line, i as u64);
            }
        }
    }
    for peer in private.peers() {
        let log = private.get(peer).expect("kept");
        assert!(log.messages().all(|m| m.author == peer || m.author == me));
    }
}

/// A transfer channel's messages, the input's lines (a line that starts with
/// `{` is a control message, any other is data), fed to a fetcher and to a
/// holder of a small file: neither panics, the fetcher never holds more
/// than the file, and never completes (nobody sent the file's bytes).
pub fn transfer_channel(data: &[u8]) {
    let mut hasher = peerchat_transfer::FileHasher::new(16_384);
    hasher.update(&[7u8; 40_000]);
    let digests = hasher.finish();
    let meta = digests.offer("f1", "x.bin", "application/octet-stream");
    let list: std::sync::Arc<[peerchat_transfer::Hash]> = digests.pieces.into();
    let mut receiver = Receiver::new(meta.clone(), "00000000000000aa", ReceiverConfig::default());
    receiver.start(0);
    receiver.peer_up("00000000000000aa", 0);
    receiver.opened("00000000000000aa", 1);
    let (mut sender, _) = Sender::new(meta, list, true, Some(32_768), SenderConfig::default(), 0);
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let now = 2 + i as u64;
        if line.first() == Some(&b'{') {
            let Some(text) = text(line) else { continue };
            receiver.text("00000000000000aa", text, now);
            for action in sender.text(text, now) {
                if let SenderAction::Read { offset, len } = action {
                    sender.read(offset, vec![7; len as usize], None, now);
                }
            }
        } else {
            receiver.binary(
                "00000000000000aa",
                &bytes::Bytes::copy_from_slice(line),
                now,
            );
        }
        assert!(receiver.progress().bytes <= receiver.progress().size);
        receiver.handle_timeout(now);
        sender.handle_timeout(now);
    }
    assert_ne!(receiver.state(), ReceiverState::Complete);
}
