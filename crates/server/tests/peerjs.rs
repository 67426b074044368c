//! Integration tests of the PeerJS endpoint (`--peerjs`): a real server on
//! 127.0.0.1:0 and real HTTP and WebSocket clients. The protocol itself is
//! tested message by message in crates/peerjs (with simulated time) and
//! against the reference server in tests/e2e/peerjs-protocol.test.mjs;
//! here: the routes, the admission rules shared with `/ws`, and the
//! transport's own limits.

mod common;

use std::time::{Duration, SystemTime};

use anyhow::Result;
use common::{NO_RATE_LIMIT, Server, WAIT, Ws, http_get, http_get_from, recv, send};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// A PeerJS client's WebSocket for `id`, with an `Origin` header if given.
async fn connect(
    server: &Server,
    id: &str,
    origin: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let url = format!(
        "ws://{}/peerjs/peerjs?key=peerjs&id={id}&token=t-{id}&version=1.5.5",
        server.addr
    );
    let mut req = url.into_client_request()?;
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// Connects as `id` and checks the server answers OPEN.
async fn register(server: &Server, id: &str) -> Ws {
    let mut ws = connect(server, id, None).await.unwrap();
    assert_eq!(recv(&mut ws).await.unwrap(), json!({"type": "OPEN"}));
    ws
}

/// Waits for the close frame and returns its code and reason.
async fn expect_close(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (frame.code, frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error instead of close: {e}"),
        }
    }
}

#[tokio::test]
async fn the_endpoint_is_off_unless_asked_for() {
    let server = Server::start(&[]).await;
    let (status, _, _) = http_get(&format!("http://{}/peerjs/peerjs/id", server.addr)).await;
    assert_eq!(status, 404);
    match connect(&server, "a", None).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!("expected 404, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn ids_are_handed_out_and_signals_relayed_with_the_senders_id() {
    let server = Server::start(&["--peerjs"]).await;
    let (status, head, id) = http_get(&format!("http://{}/peerjs/peerjs/id", server.addr)).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert_eq!(id.len(), 36, "{id}");
    let mut a = register(&server, &id).await;
    let mut b = register(&server, "bob").await;
    send(
        &mut a,
        json!({"type": "OFFER", "dst": "bob", "payload": {"sdp": "v=0"}}),
    )
    .await;
    assert_eq!(
        recv(&mut b).await.unwrap(),
        json!({"type": "OFFER", "src": id, "dst": "bob", "payload": {"sdp": "v=0"}})
    );
    // A binary frame holding JSON counts as text, as with peer 1.0.2.
    let answer = json!({"type": "ANSWER", "dst": id, "payload": 1}).to_string();
    b.send(Message::binary(answer.into_bytes())).await.unwrap();
    assert_eq!(
        recv(&mut a).await.unwrap(),
        json!({"type": "ANSWER", "src": "bob", "dst": id, "payload": 1})
    );
    let health = common::health(server.addr).await;
    assert_eq!(health["peerjs_clients"], 2, "{health}");
    // Rooms and PeerJS ids live side by side.
    server.join(common::ROOM, "carol").await;
    server.stop().await;
}

#[tokio::test]
async fn pages_from_other_origins_are_refused_and_allowed_ones_may_read() {
    let server = Server::start(&["--peerjs", "--allowed-origin", "https://app.example"]).await;
    let base = format!("http://{}/peerjs/peerjs", server.addr);
    match connect(&server, "a", Some("https://evil.example")).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    for path in ["id", "peers", "ice-servers"] {
        let (status, head, _) =
            http_get_from(&format!("{base}/{path}"), "https://evil.example").await;
        assert_eq!(status, 403, "{path}");
        assert!(!head.contains("access-control-allow-origin"), "{head}");
    }
    let (status, head, _) = http_get_from(&format!("{base}/id"), "https://app.example").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    let own = format!("http://{}", server.addr);
    let (status, _, _) = http_get_from(&format!("{base}/id"), &own).await;
    assert_eq!(status, 200);
    let mut ws = connect(&server, "a", Some("https://app.example"))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await.unwrap(), json!({"type": "OPEN"}));
    server.stop().await;
}

#[tokio::test]
async fn peers_are_listed_only_with_discovery() {
    let server = Server::start(&["--peerjs"]).await;
    let _a = register(&server, "alice").await;
    let (status, _, _) = http_get(&format!("http://{}/peerjs/peerjs/peers", server.addr)).await;
    assert_eq!(status, 401);
    server.stop().await;

    let server = Server::start(&["--peerjs", "--peerjs-discovery"]).await;
    let _a = register(&server, "alice").await;
    let _b = register(&server, "bob").await;
    let (status, _, body) = http_get(&format!("http://{}/peerjs/peerjs/peers", server.addr)).await;
    assert_eq!(status, 200);
    let mut ids: Vec<String> = serde_json::from_str(&body).unwrap();
    ids.sort();
    assert_eq!(ids, ["alice", "bob"]);
    server.stop().await;
}

#[tokio::test]
async fn ice_servers_come_with_short_lived_turn_credentials_of_their_own() {
    let mut config = common::config(&[
        "--peerjs",
        "--ice-server",
        "stun:stun.example.org:3478",
        "--turn-url",
        "turn:turn.example.org:3478",
        "--turn-secret",
        "s3cret",
        "--turn-ttl",
        "10m",
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let relay = peerchat_server::start_relay(&mut config, addr)
        .await
        .unwrap();
    assert!(relay.is_none(), "an external TURN server: no relay of ours");
    let state = peerchat_server::AppState::new(config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(peerchat_server::run(listener, state, async move {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}/peerjs/peerjs/ice-servers");
    let (status, head, body) = http_get(&url).await;
    assert_eq!(status, 200);
    assert!(head.contains("cache-control: no-store"), "{head}");
    let config: Value = serde_json::from_str(&body).unwrap();
    let servers = config["iceServers"].as_array().unwrap();
    assert_eq!(servers[0], json!({"urls": ["stun:stun.example.org:3478"]}));
    let turn = &servers[1];
    assert_eq!(turn["urls"], json!(["turn:turn.example.org:3478"]));
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!((now + 590..=now + 610).contains(&expiry), "{username}");
    assert!(user.starts_with("peerjs-"), "{username}");
    assert!(!turn["credential"].as_str().unwrap().is_empty());
    // Another request, another user (the relay's quotas are per user).
    let (_, _, again) = http_get(&url).await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_ne!(again["iceServers"][1]["username"], turn["username"]);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_message_too_large_is_refused_with_a_reason_and_the_server_goes_on() {
    let server = Server::start(&["--peerjs", "--max-message-size", "1024"]).await;
    let mut a = register(&server, "alice").await;
    let mut b = register(&server, "bob").await;
    let big = json!({"type": "OFFER", "dst": "bob", "payload": "x".repeat(2000)});
    send(&mut a, big).await;
    assert_eq!(
        recv(&mut a).await.unwrap(),
        json!({"type": "ERROR", "payload": {"msg": "Message too large: at most 1024 bytes"}})
    );
    assert_eq!(
        expect_close(&mut a).await,
        (CloseCode::Size, "too_large".to_owned())
    );
    // The id is free again, and the others carry on.
    let mut a2 = register(&server, "alice").await;
    send(
        &mut b,
        json!({"type": "OFFER", "dst": "alice", "payload": 1}),
    )
    .await;
    assert_eq!(recv(&mut a2).await.unwrap()["src"], "bob");
    server.stop().await;
}

#[tokio::test]
async fn a_flooding_client_is_cut_off_by_the_rate_limit() {
    let server = Server::start(&["--peerjs", "--rate-limit", "1", "--rate-burst", "3"]).await;
    let mut a = register(&server, "alice").await;
    let mut b = register(&server, "bob").await;
    for n in 0..4 {
        send(
            &mut a,
            json!({"type": "CANDIDATE", "dst": "bob", "payload": n}),
        )
        .await;
    }
    for n in 0..3 {
        assert_eq!(recv(&mut b).await.unwrap()["payload"], n);
    }
    let error = recv(&mut a).await.unwrap();
    assert_eq!(error["type"], "ERROR", "{error}");
    assert_eq!(
        expect_close(&mut a).await,
        (CloseCode::Policy, "rate_limited".to_owned())
    );
    server.stop().await;
}

/// Registers `id` on a connection that reads little before it backs up
/// (see [`common::slow_reader_stream`]).
async fn register_slow_reader(server: &Server, id: &str) -> Ws {
    let url = format!(
        "ws://{}/peerjs/peerjs?key=peerjs&id={id}&token=t-{id}&version=1.5.5",
        server.addr
    );
    let stream = common::slow_reader_stream(server.addr).await;
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(recv(&mut ws).await.unwrap(), json!({"type": "OPEN"}));
    ws
}

/// The PeerJS clients the server holds, from `/healthz`.
async fn clients(server: &Server) -> u64 {
    common::health(server.addr).await["peerjs_clients"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_slow_reader_pushes_back_on_the_sender_with_expire_and_stays() {
    let mut flags = vec!["--peerjs", "--send-queue-bytes", "65536"];
    flags.extend(NO_RATE_LIMIT);
    let server = Server::start(&flags).await;
    let mut a = register(&server, "alice").await;
    let mut slow = register_slow_reader(&server, "slow").await;
    let offer = json!({"type": "OFFER", "dst": "slow", "payload": "x".repeat(60_000)});
    let offer = Message::text(offer.to_string());
    // Far more than the socket buffers and the queue hold: alice is told
    // the signals expired, and slow is not cut off.
    let answer = loop {
        a.send(offer.clone()).await.unwrap();
        let polled = tokio::time::timeout(Duration::from_millis(1), a.next()).await;
        if let Ok(Some(Ok(Message::Text(t)))) = polled {
            break serde_json::from_str::<Value>(&t).unwrap();
        }
    };
    assert_eq!(
        answer,
        json!({"type": "EXPIRE", "src": "slow", "dst": "alice"})
    );
    assert_eq!(clients(&server).await, 2);
    // Slow reads again: what was queued arrives, then alice reaches it
    // again.
    let marker = json!({"type": "OFFER", "dst": "slow", "payload": 1});
    loop {
        let msg = recv(&mut slow).await.unwrap();
        assert_eq!(
            (&msg["type"], &msg["src"]),
            (&json!("OFFER"), &json!("alice"))
        );
        if msg["payload"] == 1 {
            break;
        }
        // Each time the queue may have room again.
        send(&mut a, marker.clone()).await;
    }
    assert_eq!(clients(&server).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_told_slow_consumer_and_closed() {
    let mut flags = vec!["--peerjs", "--send-queue-bytes", "4096"];
    flags.extend(NO_RATE_LIMIT);
    let server = Server::start(&flags).await;
    // Long ids make long answers (its token is "t-" and the id).
    let slow_id = "s".repeat(126);
    let nobody = "n".repeat(128);
    let mut slow = register_slow_reader(&server, &slow_id).await;
    // Each of these is too large to wait for the id nobody holds, so the
    // server answers EXPIRE at once: its own messages, which fill slow's
    // socket buffers (a few MiB on loopback) and then its queue past the
    // hard limit.
    let offer = json!({"type": "OFFER", "dst": nobody, "payload": "x".repeat(4200)});
    let offer = Message::text(offer.to_string());
    let mut cut_off = false;
    for i in 0..40_000 {
        if slow.send(offer.clone()).await.is_err() {
            cut_off = true;
            break;
        }
        if i % 500 == 499 && clients(&server).await == 0 {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the client that never reads was cut off");
    // What it was sent ends with the reason, then the close frame.
    let mut last = Value::Null;
    let close = loop {
        match tokio::time::timeout(WAIT, slow.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => last = serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(frame))) => break frame.map(|f| (f.code, f.reason.to_string())),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(last["type"], "ERROR", "{last}");
    assert_eq!(
        last["payload"]["msg"],
        "Too slow: you did not read your messages, and the server's queue for you is full"
    );
    assert_eq!(close, Some((CloseCode::Policy, "slow_consumer".to_owned())));
    assert_eq!(clients(&server).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn shutting_down_closes_every_peerjs_client_as_going_away() {
    let server = Server::start(&["--peerjs"]).await;
    let mut a = register(&server, "alice").await;
    let mut b = register(&server, "bob").await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(
        expect_close(&mut a).await,
        (CloseCode::Away, "shutting_down".to_owned())
    );
    assert_eq!(expect_close(&mut b).await.0, CloseCode::Away);
    stopping.await.unwrap();
}

#[tokio::test]
async fn bad_flags_are_refused() {
    use clap::Parser;
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        serve: peerchat_server::ServeArgs,
    }
    for flags in [
        &["--peerjs", "--peerjs-key", ""][..],
        &["--peerjs", "--peerjs-expire-timeout", "0s"],
        &["--peerjs", "--peerjs-alive-timeout", "0s"],
    ] {
        let args = std::iter::once("peerchat").chain(flags.iter().copied());
        let err = Flags::parse_from(args).serve.into_config().unwrap_err();
        assert!(err.to_string().contains("--peerjs-"), "{err}");
    }
}
