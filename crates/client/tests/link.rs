//! Two links of the terminal client facing each other over real WebRTC,
//! their signals handed across directly (no server). Run inside the
//! loopback-only network namespace (scripts/test.sh does).

use std::time::Duration;

use peerchat_client::peer::{Link, LinkEvent, LinkOptions};
use tokio::sync::mpsc;
use tokio::time::timeout;

fn options(me: &str, them: &str, initiator: bool) -> LinkOptions {
    LinkOptions {
        self_id: me.to_owned(),
        peer_id: them.to_owned(),
        ice_servers: Vec::new(),
        sid: "link-test".to_owned(),
        initiator,
        relay_only: false,
        mdns: false,
        trickle: true,
    }
}

/// Two links facing each other, once both are open; the events after that.
async fn open_pair() -> (Link, Link, mpsc::UnboundedReceiver<(u64, LinkEvent)>) {
    timeout(
        Duration::from_secs(20),
        Link::pair(
            options("aaaa", "bbbb", true),
            options("bbbb", "aaaa", false),
        ),
    )
    .await
    .expect("the pair opens")
    .expect("links")
}

/// What a link was given to send before it was dropped still leaves: a
/// client that closes a link whose hello failed has sent its own hello
/// first, and the other side can say why it did not verify us either.
#[tokio::test]
async fn text_sent_just_before_a_link_is_dropped_still_arrives() {
    for round in 0..5 {
        let (a, b, mut rx) = open_pair().await;
        a.send(format!("last words {round}"));
        drop(a);
        let heard = timeout(Duration::from_secs(10), async {
            while let Some((tag, event)) = rx.recv().await {
                match event {
                    LinkEvent::Message(text) if tag == 2 => return Some(text),
                    LinkEvent::Closed if tag == 2 => return None,
                    _ => {}
                }
            }
            None
        })
        .await
        .expect("b hears or closes");
        assert_eq!(
            heard.as_deref(),
            Some(format!("last words {round}").as_str()),
            "round {round}"
        );
        drop(b);
    }
}
