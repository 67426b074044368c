//! Integration tests: a real server on 127.0.0.1:0 and real WebSocket
//! clients.

mod common;

use std::time::Duration;

use common::{NO_RATE_LIMIT, ROOM, ROOM2, Server, WAIT, Ws, http_get, recv, send};
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
            Message::text(json!({"type":"join","v":2,"room":ROOM2,"nick":"m"}).to_string()),
            "already_joined",
        ),
    ];
    for (msg, code) in cases {
        m.send(msg).await.unwrap();
        expect_error(&mut m, code).await;
    }

    // A full room and a taken nickname, on fresh connections.
    let mut late = server.connect().await;
    // A version-1 client is told to update, and may join again.
    send(
        &mut late,
        json!({"type":"join","v":1,"room":ROOM2,"nick":"old"}),
    )
    .await;
    let refused = recv(&mut late).await.unwrap();
    assert_eq!(refused["code"], "unsupported_version", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("update"),
        "{refused}"
    );
    send(
        &mut late,
        json!({"type":"join","v":2,"room":ROOM,"nick":"zed"}),
    )
    .await;
    expect_error(&mut late, "room_full").await;
    send(
        &mut late,
        json!({"type":"join","v":2,"room":ROOM2,"nick":"MALLORY"}),
    )
    .await;
    expect_error(&mut late, "nick_taken").await;
    send(
        &mut late,
        json!({"type":"join","v":2,"room":ROOM2,"nick":"zed"}),
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

/// Joins `ROOM` as "slow" with a small socket receive buffer, so that the
/// kernel holds little of what the server sends it before it backs up.
async fn join_slow_reader(server: &Server) -> (Ws, String) {
    let stream = common::slow_reader_stream(server.addr).await;
    let (mut slow, _) = tokio_tungstenite::client_async(server.url(), stream)
        .await
        .unwrap();
    send(
        &mut slow,
        json!({"type":"join","v":2,"room":ROOM,"nick":"slow"}),
    )
    .await;
    let joined = recv(&mut slow).await.unwrap();
    let id = joined["you"]["id"].as_str().unwrap().to_owned();
    (slow, id)
}

/// Sends `signal` on `a` until the server answers with an error (or
/// anything else but pings), and returns that answer.
async fn send_until_answered(a: &mut Ws, signal: &str) -> Value {
    let mut sent = 0;
    loop {
        assert!(sent < 50_000, "the server never pushed back");
        a.send(Message::text(signal.to_owned())).await.unwrap();
        sent += 1;
        let polled = tokio::time::timeout(Duration::from_millis(1), a.next()).await;
        if let Ok(Some(Ok(Message::Text(t)))) = polled {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn a_slow_reader_pushes_back_on_the_sender_and_stays() {
    let mut flags = vec!["--send-queue-bytes", "65536"];
    flags.extend(NO_RATE_LIMIT);
    let server = Server::start(&flags).await;
    let (mut a, a_id) = server.join(ROOM, "alice").await;
    let (mut slow, slow_id) = join_slow_reader(&server).await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "peer_joined");
    let payload = "x".repeat(60_000);
    let signal = json!({"type":"signal","to":slow_id,"payload":{"p":payload}}).to_string();
    // Far more than the socket buffers and the queue hold: alice is told
    // that slow is busy, and slow is not cut off.
    let answer = send_until_answered(&mut a, &signal).await;
    assert_eq!(answer["code"], "peer_busy", "{answer}");
    assert_eq!(answer["to"], slow_id);
    assert_eq!(server.state.stats().members, 2);
    // Slow reads again: everything queued arrives, then alice reaches it
    // again.
    let small = json!({"type":"signal","to":slow_id,"payload":{"n":1}}).to_string();
    loop {
        let msg = recv(&mut slow).await.unwrap();
        assert_eq!(msg["type"], "signal", "{msg}");
        if msg["payload"]["n"] == 1 {
            break;
        }
        // Each time the queue may have room again.
        a.send(Message::text(small.clone())).await.unwrap();
    }
    assert_relays(&mut a, &a_id, &mut slow, &slow_id).await;
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_small_signals_does_not_cut_off_the_recipient() {
    // The burst of the issue: 900 small signals (within the sender's
    // burst of 1,000) at a member that reads slowly.
    let server = Server::start(&["--send-queue-bytes", "8192"]).await;
    let (mut a, a_id) = server.join(ROOM, "alice").await;
    let (mut b, b_id) = server.join(ROOM, "bob").await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "peer_joined");
    let signal = json!({"type":"signal","to":b_id,"payload":{"candidate":"x".repeat(60)}});
    let frames: Vec<Message> = (0..900)
        .map(|_| Message::text(signal.to_string()))
        .collect();
    let mut burst = futures_util::stream::iter(frames.into_iter().map(Ok));
    a.send_all(&mut burst).await.unwrap();
    // Bob is still there, reads, and hears from alice again.
    assert_eq!(server.state.stats().members, 2);
    let marker = json!({"type":"signal","to":b_id,"payload":{"n":1}});
    send(&mut a, marker.clone()).await;
    loop {
        let msg = recv(&mut b).await.unwrap();
        assert_eq!(msg["type"], "signal", "{msg}");
        assert_eq!(msg["from"], a_id);
        if msg["payload"]["n"] == 1 {
            break;
        }
        // The marker may have been refused while bob was backed up.
        send(&mut a, marker.clone()).await;
    }
    assert_eq!(server.state.stats().members, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_told_slow_consumer_and_closed() {
    let mut flags = vec!["--send-queue-bytes", "4096"];
    flags.extend(NO_RATE_LIMIT);
    let server = Server::start(&flags).await;
    let (mut a, _) = server.join(ROOM, "alice").await;
    let (mut slow, slow_id) = join_slow_reader(&server).await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "peer_joined");
    let signal =
        json!({"type":"signal","to":slow_id,"payload":{"p":"x".repeat(60_000)}}).to_string();
    // Signals fill its socket's buffers and then its queue, up to the
    // limit for signals; the server's own messages (here: others coming
    // and going) go on, up to the hard limit, and then it is cut off.
    let mut cut_off = false;
    for i in 0..2_000 {
        for _ in 0..3 {
            a.send(Message::text(signal.clone())).await.unwrap();
        }
        let (mut c, _) = server.join(ROOM, &format!("churn{i}")).await;
        c.close(None).await.unwrap();
        // Alice reads what she is sent (refusals, others coming and going).
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(1), a.next()).await {
            msg.unwrap();
        }
        if server.state.stats().members == 1 {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the client that never reads was cut off");
    // What it was sent ends with the reason, then the close frame.
    let mut last = Value::Null;
    let code = loop {
        let msg = tokio::time::timeout(WAIT, slow.next()).await.unwrap();
        match msg {
            Some(Ok(Message::Text(t))) => last = serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(last["code"], "slow_consumer", "{last}");
    assert_eq!(code, Some(CloseCode::Policy));
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

/// A stopping server completes the closing handshake (RFC 6455, 7.1.1):
/// it waits for the client's close frame before it drops the connection,
/// so that what the client still sends does not make the client's system
/// throw away the server's last frames (a browser then saw a connection
/// reset, close code 1006, and never the shutting_down error or the 1001).
#[tokio::test]
async fn a_stopping_server_waits_for_the_clients_close_frame() {
    let server = Server::start(&[]).await;
    let (mut a, _) = server.join(ROOM, "alice").await;
    let stop = tokio::spawn(server.stop());
    // Read nothing yet: the error and the close frame wait in the socket
    // while the client still talks, as a page does (a pong, a signal).
    for _ in 0..50 {
        a.send(Message::text(r#"{"type":"leave""#)).await.unwrap();
        if stop.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    expect_error(&mut a, "shutting_down").await;
    assert_eq!(expect_close(&mut a).await, CloseCode::Away);
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
        assert!(!headers.contains("unsafe"), "{headers}");
    }
    // The worker that hashes received files may compile WebAssembly; the
    // pages may not.
    let (status, worker, _) = get("/opfs-worker.js").await;
    assert_eq!(status, 200);
    assert!(
        worker.contains(
            "content-security-policy: default-src 'none'; script-src 'self' 'wasm-unsafe-eval'"
        ),
        "{worker}"
    );
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
        json!({"type":"join","v":2,"room":room,"nick":nick,"key":key}),
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
    let join = json!({"type":"join","v":2,"room":ROOM,"nick":"eager"}).to_string();
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

/// Opens a WebSocket on a raw TCP stream, to send frames no library would.
async fn raw_websocket(server: &Server) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\n{}\r\n\r\n",
        server.addr,
        common::UPGRADE
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).await.unwrap();
        buf.push(byte[0]);
    }
    assert!(buf.starts_with(b"HTTP/1.1 101"));
    stream
}

/// Reads frames until a close frame, and returns its code.
async fn raw_close_code(stream: &mut TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let read = async {
        loop {
            let mut head = [0; 2];
            if stream.read_exact(&mut head).await.is_err() {
                return None;
            }
            let len = match head[1] & 0x7f {
                126 => {
                    let mut n = [0; 2];
                    stream.read_exact(&mut n).await.ok()?;
                    usize::from(u16::from_be_bytes(n))
                }
                127 => return None,
                n => usize::from(n),
            };
            let mut payload = vec![0; len];
            stream.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == 0x8 {
                return (len >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("closed in time")
}

#[tokio::test]
async fn protocol_violations_get_the_close_codes_for_them() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(&[]).await;
    // A frame from the client without a mask: a protocol error (1002).
    let mut unmasked = raw_websocket(&server).await;
    unmasked.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    assert_eq!(raw_close_code(&mut unmasked).await, Some(1002));
    // A text frame that is not UTF-8: 1007.
    let mut bad_text = raw_websocket(&server).await;
    let mask = [1, 2, 3, 4];
    let payload: Vec<u8> = [0xff, 0xfe, 0x80]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let mut frame = vec![0x81, 0x80 | 3];
    frame.extend_from_slice(&mask);
    frame.extend_from_slice(&payload);
    bad_text.write_all(&frame).await.unwrap();
    assert_eq!(raw_close_code(&mut bad_text).await, Some(1007));
    // Others are not affected.
    let (mut a, a_id) = server.join(ROOM, "alice").await;
    let (mut b, b_id) = server.join(ROOM, "bob").await;
    recv(&mut a).await.unwrap();
    assert_relays(&mut a, &a_id, &mut b, &b_id).await;
    server.stop().await;
}
