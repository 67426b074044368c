//! Two native clients in one room, through a real server on 127.0.0.1:0,
//! over real WebRTC data channels. Run inside the loopback-only network
//! namespace (scripts/test.sh does).

mod common;

use common::{Events, first, server};
use peerchat_client::engine::{Engine, EngineOptions, Event, Peer};
use peerchat_client::peer::LinkState;
use peerchat_client::session::Session;

const ROOM: &str = "native-test-room-aaaaaaaa";

fn options(ws_url: &str, nick: &str) -> EngineOptions {
    let room = Session::Room {
        ws_url: ws_url.to_owned(),
        room: ROOM.to_owned(),
        secret: peerchat_client::session::Secret::from_random([7; 32]),
    };
    EngineOptions {
        mdns: false,
        ..EngineOptions::new(room, nick)
    }
}

async fn joined(events: &mut Events) -> (Peer, Vec<Peer>) {
    first(events, |e| match e {
        Event::Joined { you, members } => Some((you.clone(), members.clone())),
        Event::JoinRefused { message, .. } => panic!("refused: {message}"),
        _ => None,
    })
    .await
}

async fn message(events: &mut Events, text: &str) -> Peer {
    first(events, |e| match e {
        Event::Message(m) if m.text == text => Some(m.from.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_clients_chat_both_ways_and_see_each_other_come_and_go() {
    let (url, _stop) = server().await;
    let (alice, mut alice_events) = Engine::start(options(&url, "alice"));
    let (alice_me, others) = joined(&mut alice_events).await;
    assert!(others.is_empty());

    let (bob, mut bob_events) = Engine::start(options(&url, "bob"));
    let (bob_me, others) = joined(&mut bob_events).await;
    assert_eq!(others, vec![alice_me.clone()]);
    let seen = first(&mut alice_events, |e| match e {
        Event::MemberJoined { member } => Some(member.clone()),
        _ => None,
    })
    .await;
    assert_eq!(seen, bob_me);

    // Sent before the connection is up: kept and delivered once it opens.
    alice.send("hello bob, from alice").unwrap();
    assert_eq!(
        message(&mut bob_events, "hello bob, from alice").await,
        alice_me
    );
    // Bob acknowledges it: delivered to everyone who was there.
    let (seq, waiting) = first(&mut alice_events, |e| match e {
        Event::Delivery {
            seq,
            waiting,
            delivered,
        } if delivered.contains(&bob_me) => Some((*seq, waiting.clone())),
        _ => None,
    })
    .await;
    assert_eq!((seq, waiting), (1, vec![]));
    bob.send("hi alice!\nsecond line").unwrap();
    assert_eq!(
        message(&mut alice_events, "hi alice!\nsecond line").await,
        bob_me
    );

    let stats = alice.stats().await;
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].state, LinkState::Connected);
    let route = stats[0].stats.clone().expect("a selected pair");
    // The remote side may be known only as a peer-reflexive candidate,
    // which webrtc-rs does not always list.
    assert_eq!(route.local, "host");
    assert!(!route.relayed());
    assert!(route.bytes_received > 0);

    // A late joiner gets the conversation from those present, in order.
    let (_carol, mut carol_events) = Engine::start(options(&url, "carol"));
    joined(&mut carol_events).await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let m = first(&mut carol_events, |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        got.push(m);
    }
    got.sort_by_key(|m| (m.clock, m.from.id.clone(), m.seq));
    let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hello bob, from alice", "hi alice!\nsecond line"]);
    assert!(
        got[0].clock < got[1].clock,
        "a reply sorts after what it answers"
    );
    bob.leave().await;
    let left = first(&mut alice_events, |e| match e {
        Event::MemberLeft { member } => Some(member.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, bob_me);
    alice.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_nickname_is_refused_and_another_works() {
    let (url, _stop) = server().await;
    let (_alice, mut alice_events) = Engine::start(options(&url, "alice"));
    joined(&mut alice_events).await;
    let (second, mut events) = Engine::start(options(&url, "ALICE"));
    let code = first(&mut events, |e| match e {
        Event::JoinRefused { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, peerchat_protocol::ErrorCode::NickTaken);
    second.join("alice2");
    let (me, _) = joined(&mut events).await;
    assert_eq!(me.nick, "alice2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_empty_messages_are_refused_before_sending() {
    let (url, _stop) = server().await;
    let (alice, mut events) = Engine::start(options(&url, "alice"));
    joined(&mut events).await;
    assert_eq!(
        alice.send(&"x".repeat(16 * 1024 + 1)),
        Err(peerchat_client::engine::SendError::TooLarge {
            size: 16 * 1024 + 1
        })
    );
    assert_eq!(
        alice.send("  "),
        Err(peerchat_client::engine::SendError::Empty)
    );
    assert!(alice.send(&"x".repeat(16 * 1024)).is_ok());
}

/// A fresh history file in a directory of its own (remove it when done),
/// and options for a client of `url` that keeps its history there.
fn history_file(url: &str) -> (std::path::PathBuf, impl Fn(&str) -> EngineOptions + use<>) {
    let dir =
        std::env::temp_dir().join(format!("peerchat-native-{}", peerchat_client::random_id()));
    let file = dir.join("history.sqlite3");
    let url = url.to_owned();
    let with_file = move |nick: &str| EngineOptions {
        history_file: Some(file.clone()),
        ..options(&url, nick)
    };
    (dir, with_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_in_the_history_file_between_runs() {
    let (url, _stop) = server().await;
    let (dir, with_file) = history_file(&url);

    let (alice, mut events) = Engine::start(with_file("alice"));
    joined(&mut events).await;
    alice.send("written before a restart").unwrap();
    let sent = first(&mut events, |e| match e {
        Event::Message(m) if m.own => Some(m.clone()),
        _ => None,
    })
    .await;
    alice.leave().await;

    // A new run under the same nickname: the same member (same key, same
    // peer id), and the message is back, still ours.
    let (again, mut events) = Engine::start(with_file("alice"));
    let restored = first(&mut events, |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert!(restored.stored);
    assert_eq!(
        restored,
        peerchat_client::engine::ChatMessage {
            stored: true,
            ..sent
        }
    );
    // Cleared history does not come back in the next run.
    again.clear_history();
    again.leave().await;
    let (last, mut events) = Engine::start(with_file("alice"));
    let (you, _) = joined(&mut events).await;
    last.send("after clearing").unwrap();
    let first = first(&mut events, |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (first.text.as_str(), first.from.id),
        ("after clearing", you.id)
    );
    last.leave().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Terminal clients on one machine share the history file; each member
/// keeps its own history of the room in it. A member's `/clear` is its
/// own: a late joiner using the same file still gets the conversation from
/// the others, as a browser elsewhere does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_sharing_the_history_file_gets_the_history_another_member_cleared() {
    let (url, _stop) = server().await;
    let (dir, with_file) = history_file(&url);

    let (alice, mut alice_events) = Engine::start(with_file("alice"));
    joined(&mut alice_events).await;
    let (bob, mut bob_events) = Engine::start(with_file("bob"));
    joined(&mut bob_events).await;
    let said = ["one", "two", "three"];
    for text in said {
        alice.send(text).unwrap();
        message(&mut bob_events, text).await;
    }
    bob.clear_history();
    // Bob's clear is through (his commands run in order) once he has sent
    // this, and alice has it.
    bob.send("cleared").unwrap();
    message(&mut alice_events, "cleared").await;

    let (carol, mut carol_events) = Engine::start(with_file("carol"));
    let (_, members) = joined(&mut carol_events).await;
    assert_eq!(members.len(), 2);
    // From alice and from bob, in whichever order their histories come.
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 4 {
        let (text, from) = first(&mut carol_events, |e| match e {
            Event::Message(m) => Some((m.text.clone(), m.from.nick.clone())),
            _ => None,
        })
        .await;
        got.insert(text, from);
    }
    let want = said
        .iter()
        .map(|t| (t.to_string(), "alice".to_owned()))
        .chain([("cleared".to_owned(), "bob".to_owned())])
        .collect();
    assert_eq!(got, want);
    for engine in [alice, bob, carol] {
        engine.leave().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Only addresses another peer can reach are offered: never the
/// unspecified address of a socket bound to every interface (which is what
/// webrtc-rs binds when the machine has no interface but loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_name_only_reachable_addresses() {
    use peerchat_client::pair::{Code, CodeKind, Role};

    let options = EngineOptions {
        mdns: false,
        ..EngineOptions::new(Session::Manual(Role::Offer, None), "dora")
    };
    let (engine, mut events) = Engine::start(options);
    // The offer code holds every candidate gathered.
    let code = first(&mut events, |e| match e {
        Event::ConnectionCode {
            kind: CodeKind::Offer,
            code,
        } => Some(code.clone()),
        _ => None,
    })
    .await;
    engine.leave().await;
    // The offer code carries the secret it is sealed with.
    let code = Code::parse(&code).unwrap();
    let secret = code
        .secret
        .clone()
        .expect("a fresh secret in the offer code");
    let key = peerchat_e2e::SignalKey::derive(&secret, peerchat_e2e::Context::Code);
    let sdp = code.open_with(&key).unwrap().sdp;
    let candidates: Vec<&str> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(
        candidates.iter().any(|c| c.contains(" 127.0.0.1 ")),
        "{candidates:?}"
    );
    for candidate in candidates {
        let address = candidate.split(' ').nth(4).unwrap();
        let ip: std::net::IpAddr = address.parse().unwrap();
        assert!(!ip.is_unspecified(), "{candidate}");
    }
}
