//! The signaling connection's transports against a real server: long
//! polling, and the automatic fall back to it when a WebSocket is cut right
//! after it opens.

mod common;

use common::WAIT;
use peerchat_client::signaling::{ServerEvent, Signaling, SignalingEvent, Transport};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const ROOM: &str = "signaling-test-room-aaaaa";

async fn next(events: &mut mpsc::UnboundedReceiver<SignalingEvent>) -> SignalingEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the connection runs")
}

/// Waits for `Open`, joins as `nick`, and waits for `joined`.
async fn join(
    signaling: &Signaling,
    events: &mut mpsc::UnboundedReceiver<SignalingEvent>,
    nick: &str,
) {
    loop {
        if let SignalingEvent::Open = next(events).await {
            break;
        }
    }
    signaling.send(json!({"type":"join","v":2,"room":ROOM,"nick":nick}).to_string());
    loop {
        if let SignalingEvent::Message(ServerEvent::Joined { .. }) = next(events).await {
            return;
        }
    }
}

#[tokio::test]
async fn long_polling_joins_and_meets_a_websocket_member() {
    let (addr, state, _stop) = common::serve().await;
    let tls = peerchat_client::tls::default_config();
    let url = format!("ws://{addr}/ws");
    let (tx, mut polly_events) = mpsc::unbounded_channel();
    let polly = Signaling::spawn(url.clone(), tls.clone(), Transport::Poll, tx);
    join(&polly, &mut polly_events, "polly").await;
    let (tx, mut wes_events) = mpsc::unbounded_channel();
    let wes = Signaling::spawn(url, tls, Transport::WebSocket, tx);
    join(&wes, &mut wes_events, "wes").await;
    loop {
        if let SignalingEvent::Message(ServerEvent::PeerJoined(peer)) =
            next(&mut polly_events).await
        {
            assert_eq!(peer.nick, "wes");
            break;
        }
    }
    let health = state.stats();
    assert_eq!((health.connections, health.members), (2, 2));
    drop(polly);
    drop(wes);
}

/// A proxy in front of the server that cuts every WebSocket upgrade right
/// after passing its answer on, and passes every other request.
async fn cutting_proxy(server: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(server).await.unwrap();
                let mut head = vec![0; 4096];
                let n = client.read(&mut head).await.unwrap_or(0);
                let upgrade = String::from_utf8_lossy(&head[..n])
                    .to_ascii_lowercase()
                    .contains("upgrade: websocket");
                if upstream.write_all(&head[..n]).await.is_err() {
                    return;
                }
                if upgrade {
                    let mut answer = vec![0; 4096];
                    let n = upstream.read(&mut answer).await.unwrap_or(0);
                    let _ = client.write_all(&answer[..n]).await;
                    return; // and the connection is cut
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn auto_falls_back_to_long_polling_when_websockets_are_cut() {
    let (addr, state, _stop) = common::serve().await;
    let proxy = cutting_proxy(addr).await;
    let (tx, mut events) = mpsc::unbounded_channel();
    let signaling = Signaling::spawn(
        format!("ws://{proxy}/ws"),
        peerchat_client::tls::default_config(),
        Transport::Auto,
        tx,
    );
    // The WebSocket opens and is cut; the next Open is long polling's.
    loop {
        if let SignalingEvent::Open = next(&mut events).await {
            break;
        }
    }
    join(&signaling, &mut events, "polly").await;
    assert_eq!(state.stats().members, 1);
    drop(signaling);
}
