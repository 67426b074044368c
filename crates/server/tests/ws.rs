//! Integration tests: a real server on 127.0.0.1:0 and real WebSocket
//! clients.

mod common;

use std::time::Duration;

use common::{ROOM, ROOM2, Server, WAIT, Ws, http_get, recv, send};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

async fn expect_error(ws: &mut Ws, code: &str) {
    let msg = recv(ws).await.unwrap();
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["code"], code, "{msg}");
    assert!(!msg["message"].as_str().unwrap().is_empty());
}

/// Waits for the close frame and returns its code.
async fn expect_close(ws: &mut Ws) -> CloseCode {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code,
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error instead of close: {e}"),
        }
    }
}

/// Proves `a` and `b` (in one room) still relay signals both ways.
async fn assert_relays(a: &mut Ws, a_id: &str, b: &mut Ws, b_id: &str) {
    send(a, json!({"type":"signal","to":b_id,"payload":{"n":1}})).await;
    assert_eq!(
        recv(b).await.unwrap(),
        json!({"type":"signal","from":a_id,"payload":{"n":1}})
    );
    send(b, json!({"type":"signal","to":a_id,"payload":{"n":2}})).await;
    assert_eq!(
        recv(a).await.unwrap(),
        json!({"type":"signal","from":b_id,"payload":{"n":2}})
    );
}

#[tokio::test]
async fn two_clients_meet_signal_and_part() {
    let server = Server::start(&[]).await;
    let (mut a, a_id) = server.join(ROOM, "alice").await;
    let (mut b, b_id) = server.join(ROOM, "bob").await;
    assert_eq!(
        recv(&mut a).await.unwrap(),
        json!({"type":"peer_joined","peer":{"id":b_id,"nick":"bob"}})
    );
    assert_relays(&mut a, &a_id, &mut b, &b_id).await;

    b.close(None).await.unwrap();
    assert_eq!(
        recv(&mut a).await.unwrap(),
        json!({"type":"peer_left","id":b_id})
    );
    assert_eq!(server.state.stats().members, 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_others_carry_on() {
    let server = Server::start(&["--room-capacity", "3"]).await;
    let (mut a, a_id) = server.join(ROOM, "alice").await;
    let (mut b, b_id) = server.join(ROOM, "bob").await;
    recv(&mut a).await.unwrap(); // bob joined
    let (_stranger, stranger_id) = server.join(ROOM2, "mallory").await;
    let (mut m, _) = server.join(ROOM, "mallory").await;
    recv(&mut a).await.unwrap();
    recv(&mut b).await.unwrap();

    let cases: Vec<(Message, &str)> = vec![
        (Message::text("{this is not json"), "bad_json"),
        (Message::text(r#"{"type":"teleport"}"#), "unknown_type"),
        (
            Message::text(r#"{"type":"signal","payload":{}}"#),
            "bad_message",
        ),
        (
            Message::text(json!({"type":"signal","to":b_id,"from":a_id,"payload":{}}).to_string()),
            "forged_sender",
        ),
        (
            Message::text(json!({"type":"signal","to":stranger_id,"payload":{}}).to_string()),
            "unknown_peer",
        ),
        (Message::binary(vec![1, 2, 3]), "binary_frame"),
        (
            Message::text(json!({"type":"join","v":1,"room":ROOM2,"nick":"m"}).to_string()),
            "already_joined",
        ),
    ];
    for (msg, code) in cases {
        m.send(msg).await.unwrap();
        expect_error(&mut m, code).await;
    }

    // A full room and a taken nickname, on fresh connections.
    let mut late = server.connect().await;
    send(
        &mut late,
        json!({"type":"join","v":1,"room":ROOM,"nick":"zed"}),
    )
    .await;
    expect_error(&mut late, "room_full").await;
    send(
        &mut late,
        json!({"type":"join","v":1,"room":ROOM2,"nick":"MALLORY"}),
    )
    .await;
    expect_error(&mut late, "nick_taken").await;
    send(
        &mut late,
        json!({"type":"join","v":1,"room":ROOM2,"nick":"zed"}),
    )
    .await;
    assert_eq!(recv(&mut late).await.unwrap()["type"], "joined");

    // A frame over the limit ends only that connection, with its reason.
    let huge = json!({"type":"signal","to":a_id,"payload":{"x":"y".repeat(70_000)}});
    send(&mut m, huge).await;
    expect_error(&mut m, "too_large").await;
    assert_eq!(expect_close(&mut m).await, CloseCode::Size);

    // Everyone else is unaffected: they see mallory leave and still relay.
    let left = recv(&mut a).await.unwrap();
    assert_eq!(left["type"], "peer_left");
    recv(&mut b).await.unwrap();
    assert_relays(&mut a, &a_id, &mut b, &b_id).await;
    server.stop().await;
}

#[tokio::test]
async fn foreign_origins_are_refused() {
    let server = Server::start(&["--allowed-origin", "https://friend.example"]).await;
    let attempt = |origin: &'static str| {
        let url = server.url();
        async move {
            let mut req = url.into_client_request().unwrap();
            req.headers_mut().insert("origin", origin.parse().unwrap());
            tokio_tungstenite::connect_async(req).await
        }
    };
    match attempt("https://evil.example").await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let own = format!("http://{}", server.addr);
    assert!(attempt(Box::leak(own.into_boxed_str())).await.is_ok());
    assert!(attempt("https://friend.example").await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_joins_is_closed() {
    let server = Server::start(&["--join-timeout", "200ms"]).await;
    let mut ws = server.connect().await;
    expect_error(&mut ws, "join_timeout").await;
    assert_eq!(expect_close(&mut ws).await, CloseCode::Policy);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_idle_timeout() {
    let server = Server::start(&["--ping-interval", "100ms", "--idle-timeout", "400ms"]).await;
    let (mut a, _) = server.join(ROOM, "alice").await;
    // Bob joins and then never reads again, so he never answers a ping.
    let (_bob, b_id) = server.join(ROOM, "bob").await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "peer_joined");
    // Alice keeps reading (and so answers pings) and sees bob dropped.
    assert_eq!(
        recv(&mut a).await.unwrap(),
        json!({"type":"peer_left","id":b_id})
    );
    assert_eq!(server.state.stats().members, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_reader_is_cut_off_and_memory_stays_bounded() {
    let server = Server::start(&[
        "--send-queue",
        "8",
        "--rate-limit",
        "100000",
        "--rate-burst",
        "100000",
        "--rate-limit-bytes",
        "1000000000",
        "--rate-burst-bytes",
        "1000000000",
    ])
    .await;
    let (mut a, _) = server.join(ROOM, "alice").await;
    let (_slow, slow_id) = server.join(ROOM, "slow").await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "peer_joined");
    let payload = "x".repeat(60_000);
    let signal = json!({"type":"signal","to":slow_id,"payload":{"p":payload}}).to_string();
    // Far more than the socket buffers and the 8-frame queue hold; stop as
    // soon as the server reports the slow reader gone.
    let mut sent = 0;
    let left = loop {
        assert!(sent < 5_000, "the slow reader was never cut off");
        a.send(Message::text(signal.clone())).await.unwrap();
        sent += 1;
        let polled = tokio::time::timeout(Duration::from_millis(1), a.next()).await;
        if let Ok(Some(Ok(Message::Text(t)))) = polled {
            let msg: Value = serde_json::from_str(&t).unwrap();
            if msg["type"] == "peer_left" {
                break msg;
            }
            assert_ne!(msg["type"], "error", "{msg}");
        }
    };
    assert_eq!(left["id"], slow_id);
    assert_eq!(server.state.stats().members, 1);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_clients_and_finishes() {
    let server = Server::start(&[]).await;
    let (mut a, _) = server.join(ROOM, "alice").await;
    let mut idle = server.connect().await;
    let stop = tokio::spawn(server.stop());
    expect_error(&mut a, "shutting_down").await;
    assert_eq!(expect_close(&mut a).await, CloseCode::Away);
    expect_error(&mut idle, "shutting_down").await;
    stop.await.unwrap();
}

#[tokio::test]
async fn connections_over_the_limit_are_refused() {
    let server = Server::start(&["--max-connections", "2"]).await;
    let _a = server.connect().await;
    let _b = server.connect().await;
    assert!(
        tokio_tungstenite::connect_async(server.url())
            .await
            .is_err(),
        "a third connection must be refused"
    );
    drop(_a);
    // The place is freed once the server notices the close.
    let mut ok = false;
    for _ in 0..100 {
        if tokio_tungstenite::connect_async(server.url()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(ok, "a place frees up after a close");
    server.stop().await;
}

#[tokio::test]
async fn http_endpoints() {
    let server = Server::start(&[]).await;
    let get = |path: &str| {
        let url = format!("http://{}{}", server.addr, path);
        async move { http_get(&url).await }
    };
    let (status, headers, body) = get("/healthz").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");

    for path in ["/", "/r/abcdefghijklmnopqrstuv"] {
        let (status, headers, body) = get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(headers.contains("content-security-policy: default-src 'none'"));
        assert!(headers.contains("referrer-policy: no-referrer"));
        assert!(body.contains("<html"));
    }
    let (status, _, _) = get("/nope.js").await;
    assert_eq!(status, 404);
    let (status, _, _) = get("/../Cargo.toml").await;
    assert_eq!(status, 404);
    assert!(headers.contains("application/json"));
    server.stop().await;
}

#[tokio::test]
async fn a_slow_http_opener_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&["--handshake-timeout", "200ms"]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Half a request, then nothing: the server must not wait forever.
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(!String::from_utf8_lossy(&buf).contains("101"), "no upgrade");
    server.stop().await;
}

// ---- Member keys: resuming after a lost connection ----

const KEY: &str = "itest-key-aaaaaaaaaaaaaaaa";

/// Connects and joins with a member key; returns the socket and `joined`.
async fn join_keyed(server: &Server, room: &str, nick: &str, key: &str) -> (Ws, Value) {
    let mut ws = server.connect().await;
    send(
        &mut ws,
        json!({"type":"join","v":1,"room":room,"nick":nick,"key":key}),
    )
    .await;
    let joined = recv(&mut ws).await.unwrap();
    assert_eq!(joined["type"], "joined", "{joined}");
    (ws, joined)
}

/// Waits (yielding to the server's tasks, never sleeping) until `cond`
/// holds.
async fn until(cond: impl Fn() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the server got there in time");
}

#[tokio::test]
async fn a_member_with_a_key_comes_back_after_losing_its_connection() {
    let server = Server::start(&[]).await;
    let (mut a, joined) = join_keyed(&server, ROOM, "alice", KEY).await;
    let a_id = joined["you"]["id"].as_str().unwrap().to_owned();
    assert_eq!(joined["resumed"], false);
    let (mut b, b_id) = server.join(ROOM, "bob").await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "peer_joined");

    // The TCP connection drops without a close frame.
    drop(a);
    until(|| server.state.stats().away == 1).await;
    assert_eq!(common::health(server.addr).await["away"], 1);
    // Meanwhile alice cannot be reached, but she is still a member.
    send(&mut b, json!({"type":"signal","to":a_id,"payload":{}})).await;
    expect_error(&mut b, "peer_away").await;

    let (mut a, joined) = join_keyed(&server, ROOM, "alice", KEY).await;
    assert_eq!(joined["you"], json!({"id": a_id, "nick": "alice"}));
    assert_eq!(joined["resumed"], true);
    assert_eq!(joined["members"], json!([{"id": b_id, "nick": "bob"}]));
    // Bob's next message is alice's signal: he was told nothing in between.
    assert_relays(&mut a, &a_id, &mut b, &b_id).await;
    assert_eq!(server.state.stats().away, 0);
    assert_eq!(server.state.stats().members, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_second_connection_with_the_key_replaces_the_first() {
    let server = Server::start(&[]).await;
    let (mut old, joined) = join_keyed(&server, ROOM, "alice", KEY).await;
    let a_id = joined["you"]["id"].as_str().unwrap().to_owned();
    let (mut b, b_id) = server.join(ROOM, "bob").await;
    assert_eq!(recv(&mut old).await.unwrap()["type"], "peer_joined");

    // A reloaded page joins again while the old connection is still open.
    let (mut a, joined) = join_keyed(&server, ROOM, "alice", KEY).await;
    assert_eq!(joined["you"]["id"], a_id.as_str());
    assert_eq!(joined["resumed"], true);
    expect_error(&mut old, "replaced").await;
    assert_eq!(expect_close(&mut old).await, CloseCode::Policy);
    assert_relays(&mut a, &a_id, &mut b, &b_id).await;
    assert_eq!(server.state.stats().members, 2);
    server.stop().await;
}

#[tokio::test]
async fn leave_and_a_normal_close_tell_the_room_at_once() {
    let server = Server::start(&[]).await;
    let (mut b, _) = server.join(ROOM, "bob").await;

    let (mut a, joined) = join_keyed(&server, ROOM, "alice", KEY).await;
    assert_eq!(recv(&mut b).await.unwrap()["type"], "peer_joined");
    send(&mut a, json!({"type":"leave"})).await;
    assert_eq!(expect_close(&mut a).await, CloseCode::Normal);
    assert_eq!(
        recv(&mut b).await.unwrap(),
        json!({"type":"peer_left","id":joined["you"]["id"]})
    );

    let (mut c, joined) = join_keyed(&server, ROOM, "carol", "itest-key-ccccccccccccccccc").await;
    assert_eq!(recv(&mut b).await.unwrap()["type"], "peer_joined");
    c.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    assert_eq!(
        recv(&mut b).await.unwrap(),
        json!({"type":"peer_left","id":joined["you"]["id"]})
    );
    assert_eq!(server.state.stats().away, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_lost_member_leaves_when_the_grace_period_ends() {
    let server = Server::start(&["--resume-grace", "200ms"]).await;
    let (mut a, joined) = join_keyed(&server, ROOM, "alice", KEY).await;
    let (mut b, _) = server.join(ROOM, "bob").await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "peer_joined");

    // Closing a page sends 1001 (going away): not a leave.
    a.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "".into(),
    }))
    .await
    .unwrap();
    let lost_at = std::time::Instant::now();
    assert_eq!(
        recv(&mut b).await.unwrap(),
        json!({"type":"peer_left","id":joined["you"]["id"]})
    );
    assert!(
        lost_at.elapsed() >= Duration::from_millis(200),
        "peer_left came before the grace period ended"
    );
    assert_eq!(server.state.stats().away, 0);
    server.stop().await;
}

// ---- The upgrade ----

#[tokio::test]
async fn a_join_sent_with_the_upgrade_request_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&[]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // The upgrade request and, in the same write, a masked text frame.
    let join = json!({"type":"join","v":1,"room":ROOM,"nick":"eager"}).to_string();
    let mut bytes = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    )
    .into_bytes();
    let mask = [1u8, 2, 3, 4];
    assert!(join.len() < 126);
    bytes.extend_from_slice(&[0x81, 0x80 | join.len() as u8]);
    bytes.extend_from_slice(&mask);
    bytes.extend(join.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&bytes).await.unwrap();
    // The response head, then whatever follows it is WebSocket.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "the server hung up: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
        tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    let joined = recv(&mut ws).await.unwrap();
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["you"]["nick"], "eager");
    server.stop().await;
}

#[tokio::test]
async fn a_plain_request_to_the_websocket_endpoint_is_refused() {
    let server = Server::start(&[]).await;
    let (status, _, body) = http_get(&format!("http://{}/ws", server.addr)).await;
    assert_eq!(status, 400, "{body}");
    assert!(tokio_tungstenite::connect_async(server.url()).await.is_ok());
    server.stop().await;
}
