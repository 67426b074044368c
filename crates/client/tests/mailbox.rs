//! Two engines pairing through a real server's mailbox (`POST /sig`), over
//! real WebRTC. Run inside the loopback-only network namespace
//! (scripts/test.sh does).

mod common;

use common::{Events, first, server};
use peerchat_client::engine::{Engine, EngineOptions, Event};
use peerchat_client::peer::LinkState;
use peerchat_client::session::{Secret, Session};

fn options(ws_url: &str, nick: &str, made: bool) -> EngineOptions {
    let session = Session::Mailbox {
        ws_url: ws_url.to_owned(),
        id: "mailbox-test-aaaaaaaaaaaaaaaa".to_owned(),
        secret: Secret::from_random([5; 32]),
        made,
    };
    EngineOptions {
        mdns: false,
        ..EngineOptions::new(session, nick)
    }
}

async fn connected(events: &mut Events, other: &str) {
    first(events, |e| match e {
        Event::MemberState { member, state }
            if member.nick == other && *state == LinkState::Connected =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
}

/// The side given the pairing starts at the same instant as the side that
/// made it, before its offer is in the mailbox: it waits for that offer and
/// answers it. (Looking only once, it found the mailbox empty, offered too,
/// and both waited for an answer that never came.)
#[tokio::test]
async fn the_side_given_the_pairing_waits_for_the_offer() {
    let (url, _stop) = server().await;
    let (joiner, mut joiner_events) = Engine::start(options(&url, "bob", false));
    let (maker, mut maker_events) = Engine::start(options(&url, "alice", true));
    connected(&mut maker_events, "bob").await;
    connected(&mut joiner_events, "alice").await;
    maker.send("found you").unwrap();
    first(&mut joiner_events, |e| match e {
        Event::Message(m) if m.text == "found you" => Some(()),
        _ => None,
    })
    .await;
    drop((joiner, maker));
}
