//! `/metrics`, read with a Prometheus text-format parser while a scripted
//! session runs: the counters move as members join, signal, err, leave,
//! use the mailbox and the relay.

mod common;

use std::sync::Arc;

use common::{ROOM, Scrape, WAIT, config, dashboard_metrics, http_get, http_post, next_json};
use futures_util::SinkExt;
use peerchat_server::AppState;
use serde_json::json;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;
use webrtc_util::Conn;

#[tokio::test]
async fn counters_move_as_a_scripted_session_runs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = config(&[
        "--turn-port",
        "0",
        "--turn-allow-private",
        "--rate-burst",
        "20",
        "--rate-limit",
        "1",
    ]);
    let relay = peerchat_server::start_relay(&mut config, addr)
        .await
        .unwrap()
        .unwrap();
    let state = AppState::new(config);
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(peerchat_server::run(listener, state, async move {
        let _ = stopped.await;
    }));

    let before = Scrape::take(addr).await;
    assert_eq!(before.get("peerchat_build_info{version=0.1.0}"), 1.0);
    assert_eq!(before.get("peerchat_joins_total{}"), 0.0);
    assert_eq!(before.get("peerchat_connections{transport=websocket}"), 0.0);
    assert_eq!(before.get("peerchat_turn_allocations{}"), 0.0);

    // Two members join; alice signals bob, and someone who is not there.
    let url = format!("ws://{addr}/ws");
    let (mut alice, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut bob, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    alice
        .send(Message::text(
            json!({"type":"join","v":2,"room":ROOM,"nick":"alice"}).to_string(),
        ))
        .await
        .unwrap();
    let joined = next_json(&mut alice).await;
    bob.send(Message::text(
        json!({"type":"join","v":2,"room":ROOM,"nick":"bob"}).to_string(),
    ))
    .await
    .unwrap();
    let bob_id = next_json(&mut bob).await["you"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let signal = json!({"type":"signal","to":bob_id,"payload":{"sdp":"hello"}}).to_string();
    alice.send(Message::text(signal.clone())).await.unwrap();
    let relayed = loop {
        let msg = next_json(&mut bob).await;
        if msg["type"] == "signal" {
            break msg.to_string();
        }
    };
    alice
        .send(Message::text(
            json!({"type":"signal","to":"0123456789abcdef","payload":{}}).to_string(),
        ))
        .await
        .unwrap();
    loop {
        if next_json(&mut alice).await["type"] == "error" {
            break;
        }
    }
    // Bob takes a new nickname.
    bob.send(Message::text(
        json!({"type":"rename","nick":"bobby"}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        if next_json(&mut bob).await["type"] == "renamed" {
            break;
        }
    }
    // Alice reads what she is told (unread data would make her socket's
    // close a reset, which may discard her last frames at the server).
    loop {
        if next_json(&mut alice).await["type"] == "peer_renamed" {
            break;
        }
    }

    // The mailbox: a read that nobody answers.
    let (status, _) = http_post(addr, "/sig?get=metrics-test-id&timeoutms=0", b"").await;
    assert_eq!(status, 204);

    // A TURN allocation with the credentials the server handed alice.
    let turn = joined["ice_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"][0].as_str().unwrap().starts_with("turn:"))
        .unwrap();
    let url = turn["urls"][0].as_str().unwrap();
    let server = url
        .trim_start_matches("turn:")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: server.clone(),
        turn_serv_addr: server,
        username: turn["username"].as_str().unwrap().to_owned(),
        password: turn["credential"].as_str().unwrap().to_owned(),
        realm: peerchat_relay::REALM.to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    let allocation = tokio::time::timeout(WAIT, client.allocate())
        .await
        .unwrap()
        .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    allocation
        .send_to(b"twelve bytes", peer.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0; 64];
    tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();

    let during = Scrape::take(addr).await;
    assert_eq!(during.get("peerchat_connections{transport=websocket}"), 2.0);
    assert_eq!(
        during.get("peerchat_connections_opened_total{transport=websocket}"),
        2.0
    );
    assert_eq!(during.get("peerchat_rooms{}"), 1.0);
    assert_eq!(during.get("peerchat_members{}"), 2.0);
    assert_eq!(during.get("peerchat_joins_total{}"), 2.0);
    assert_eq!(during.get("peerchat_renames_total{}"), 1.0);
    assert_eq!(during.get("peerchat_signals_relayed_total{}"), 1.0);
    assert_eq!(
        during.get("peerchat_signals_relayed_bytes_total{}"),
        relayed.len() as f64
    );
    assert_eq!(during.get("peerchat_errors_total{code=unknown_peer}"), 1.0);
    assert_eq!(
        during.get("peerchat_mailbox_requests_total{op=get,result=timed_out}"),
        1.0
    );
    assert_eq!(during.get("peerchat_turn_allocations{}"), 1.0);
    assert_eq!(
        during.get("peerchat_turn_allocations_total{transport=udp}"),
        1.0
    );
    assert_eq!(
        during.get("peerchat_turn_relayed_bytes_total{direction=to_peer}"),
        12.0
    );

    // Alice floods past her burst: the excess is dropped and counted.
    for _ in 0..30 {
        alice.send(Message::text(signal.clone())).await.unwrap();
    }
    // Bob leaves; alice's connection drops without a word.
    bob.send(Message::text(json!({"type":"leave"}).to_string()))
        .await
        .unwrap();
    drop(alice);
    let deadline = tokio::time::Instant::now() + WAIT;
    let after = loop {
        let after = Scrape::take(addr).await;
        if after.get("peerchat_connections{transport=websocket}") == 0.0 {
            break after;
        }
        assert!(tokio::time::Instant::now() < deadline, "connections close");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        after.get("peerchat_rate_limited_messages_total{}") >= 10.0,
        "{}",
        after.get("peerchat_rate_limited_messages_total{}")
    );
    assert_eq!(after.get("peerchat_errors_total{code=rate_limited}"), 1.0);
    assert!(after.get("peerchat_leaves_total{}") >= 1.0);
    assert_eq!(
        after.get("peerchat_connections_opened_total{transport=websocket}"),
        2.0
    );

    client.close().await.unwrap();
    relay.close().await;
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_on_the_main_port() {
    let state = AppState::new(config(&["--no-turn", "--metrics-addr", "127.0.0.1:0"]));
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let private = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (main_addr, private_addr) = (main.local_addr().unwrap(), private.local_addr().unwrap());
    tokio::spawn(peerchat_server::run(
        main,
        state.clone(),
        std::future::pending(),
    ));
    tokio::spawn(peerchat_server::serve_metrics(
        private,
        state,
        std::future::pending(),
    ));
    let (status, _, _) = http_get(&format!("http://{main_addr}/metrics")).await;
    assert_eq!(status, 404);
    let scrape = Scrape::take(private_addr).await;
    assert_eq!(scrape.get("peerchat_members{}"), 0.0);
}

/// The Grafana dashboard in `docs/` graphs only metrics the server exports,
/// so a renamed metric cannot leave it blank. (The cluster's, exported only
/// by a server of a cluster, are checked in tests/cluster.rs.)
#[tokio::test]
async fn the_dashboard_names_only_metrics_that_exist() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = config(&["--turn-port", "0", "--peerjs"]);
    let relay = peerchat_server::start_relay(&mut config, addr)
        .await
        .unwrap()
        .unwrap();
    tokio::spawn(peerchat_server::run(
        listener,
        AppState::new(config),
        std::future::pending(),
    ));
    // A mailbox wait, so that its histogram has samples.
    http_post(addr, "/sig?get=dashboard-test&timeoutms=0", b"").await;
    let (_, _, body) = http_get(&format!("http://{addr}/metrics")).await;
    let exported: std::collections::HashSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    let mut named = 0;
    for name in dashboard_metrics() {
        if name.starts_with("peerchat_cluster_") {
            continue;
        }
        assert!(exported.contains(name.as_str()), "{name} is not exported");
        named += 1;
    }
    assert!(named > 20, "{named}");
    relay.close().await;
}
