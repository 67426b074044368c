//! Private messages between native clients in one room, through a real
//! server on 127.0.0.1:0, over real WebRTC data channels: they reach only
//! their recipient, are kept apart in the history file, and never travel in
//! the room's history. Run inside the loopback-only network namespace
//! (scripts/test.sh does).

mod common;

use common::{expect, joined, room_message, server};
use peerchat_client::engine::{Engine, EngineOptions, Event, PrivateError};

const ROOM: &str = "private-test-room-aaaaaaaa";

fn options(url: &str, nick: &str, file: Option<&std::path::Path>) -> EngineOptions {
    EngineOptions {
        history_file: file.map(ToOwned::to_owned),
        download_dir: None,
        ..common::options(url, ROOM, nick, std::path::Path::new("."))
    }
}

/// Whether any event carries `text`, in the room or privately.
fn mentions(seen: &[Event], text: &str) -> bool {
    seen.iter().any(|e| match e {
        Event::Message(m) | Event::PrivateMessage { message: m, .. } => m.text.contains(text),
        _ => false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_message_reaches_only_its_recipient_and_never_a_late_joiners_history() {
    let (url, _stop) = server().await;
    let dir = std::env::temp_dir().join(format!("peerchat-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let alice_file = dir.join("alice.sqlite3");
    let (mut a_seen, mut b_seen, mut c_seen) = (Vec::new(), Vec::new(), Vec::new());

    let (alice, mut a) = Engine::start(options(&url, "alice", Some(&alice_file)));
    let alice_me = joined(&mut a, &mut a_seen).await;
    let (bob, mut b) = Engine::start(options(&url, "bob", None));
    let bob_me = joined(&mut b, &mut b_seen).await;
    let (carol, mut c) = Engine::start(options(&url, "carol", None));
    joined(&mut c, &mut c_seen).await;

    // Everyone is connected to everyone once a room message went round.
    alice.send("hello all").unwrap();
    room_message(&mut b, &mut b_seen, "hello all").await;
    room_message(&mut c, &mut c_seen, "hello all").await;

    assert_eq!(
        alice.send_private("nobody", "psst").await,
        Err(PrivateError::NoSuchMember("nobody".into()))
    );
    let to = alice
        .send_private("bob", "psst bob: the secret is 42")
        .await
        .unwrap();
    assert_eq!(to, bob_me);
    let (with, got) = expect(&mut b, &mut b_seen, |e| match e {
        Event::PrivateMessage { with, message } => Some((with.clone(), message.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        (with, got.from.clone(), got.own),
        (alice_me.clone(), alice_me.clone(), false)
    );
    assert_eq!(got.text, "psst bob: the secret is 42");
    // Alice's own copy, then bob's acknowledgement.
    expect(&mut a, &mut a_seen, |e| match e {
        Event::PrivateDelivery { with, seq: 1 } if *with == bob_me => Some(()),
        _ => None,
    })
    .await;
    bob.send_private("alice", "got it").await.unwrap();
    expect(&mut a, &mut a_seen, |e| match e {
        Event::PrivateMessage { message, .. } if message.text == "got it" => Some(()),
        _ => None,
    })
    .await;

    // A room message after them: once carol has it, anything sent before
    // on the same ordered channels has arrived too.
    alice.send("after the secret").unwrap();
    bob.send("after the reply").unwrap();
    room_message(&mut c, &mut c_seen, "after the secret").await;
    room_message(&mut c, &mut c_seen, "after the reply").await;
    assert!(
        !mentions(&c_seen, "secret is 42"),
        "carol saw alice's private message"
    );
    assert!(
        !mentions(&c_seen, "got it"),
        "carol saw bob's private message"
    );
    // Nor is it in the room's log anywhere.
    for engine in [&alice, &bob, &carol] {
        let log = engine.messages().await;
        assert!(
            log.iter()
                .all(|m| !m.text.contains("secret is 42") && m.text != "got it")
        );
    }

    // A late joiner gets the room's history from all three, and nothing
    // private.
    let (dave, mut d) = Engine::start(options(&url, "dave", None));
    let mut d_seen = Vec::new();
    joined(&mut d, &mut d_seen).await;
    room_message(&mut d, &mut d_seen, "after the secret").await;
    room_message(&mut d, &mut d_seen, "after the reply").await;
    dave.send("hi, I am new").unwrap();
    room_message(&mut a, &mut a_seen, "hi, I am new").await;
    room_message(&mut b, &mut b_seen, "hi, I am new").await;
    assert!(!mentions(&d_seen, "secret is 42") && !mentions(&d_seen, "got it"));
    assert!(dave.messages().await.iter().all(|m| m.text != "got it"));

    // Alice's history file keeps the conversation apart: it comes back as
    // private, never as a room message.
    alice.leave().await;
    let (again, mut a2) = Engine::start(options(&url, "alice", Some(&alice_file)));
    let mut a2_seen = Vec::new();
    let kept = expect(&mut a2, &mut a2_seen, |e| match e {
        Event::PrivateMessage { with, message } if message.text == "got it" => {
            Some((with.clone(), message.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(kept.0.id, bob_me.id);
    assert!(kept.1.stored);
    joined(&mut a2, &mut a2_seen).await;
    assert!(
        a2_seen
            .iter()
            .any(|e| matches!(e, Event::PrivateMessage { message, .. }
            if message.own && message.text == "psst bob: the secret is 42"))
    );
    assert!(again.messages().await.iter().all(|m| m.text != "got it"));
    for engine in [again, bob, carol, dave] {
        engine.leave().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
