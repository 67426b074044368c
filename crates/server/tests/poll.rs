//! `/poll`: the signaling protocol over plain HTTP requests, against a
//! real server, side by side with WebSocket members.

mod common;

use std::time::Duration;

use common::{PollClient, ROOM, Server, WAIT, http_raw, next_json, request};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn join(nick: &str, key: Option<&str>) -> Value {
    match key {
        Some(key) => json!({"type":"join","v":2,"room":ROOM,"nick":nick,"key":key}),
        None => json!({"type":"join","v":2,"room":ROOM,"nick":nick}),
    }
}

#[tokio::test]
async fn poll_and_websocket_members_signal_each_other() {
    let server = Server::start(&[]).await;
    let mut polly = PollClient::open(server.addr).await;
    assert_eq!(polly.send(&[join("polly", None)]).await, 204);
    let joined = polly.until("joined").await;
    let polly_id = joined["you"]["id"].as_str().unwrap().to_owned();

    let (mut wes, wes_id) = server.join(ROOM, "wes").await;
    let seen = polly.until("peer_joined").await;
    assert_eq!(seen["peer"]["nick"], "wes");

    assert_eq!(
        polly
            .send(&[json!({"type":"signal","to":wes_id,"payload":{"n":1}})])
            .await,
        204
    );
    let got = loop {
        let msg = next_json(&mut wes).await;
        if msg["type"] == "signal" {
            break msg;
        }
    };
    assert_eq!(
        (got["from"].as_str(), &got["payload"]),
        (Some(polly_id.as_str()), &json!({"n":1}))
    );
    wes.send(Message::text(
        json!({"type":"signal","to":polly_id,"payload":{"n":2}}).to_string(),
    ))
    .await
    .unwrap();
    let got = polly.until("signal").await;
    assert_eq!(got["payload"], json!({"n":2}));
    assert_eq!(common::health(server.addr).await["poll_sessions"], 1);
    server.stop().await;
}

#[tokio::test]
async fn an_unacknowledged_batch_is_sent_again_and_an_acknowledged_one_is_not() {
    let server = Server::start(&["--ping-interval", "1s", "--idle-timeout", "5s"]).await;
    let polly = PollClient::open(server.addr).await;
    polly.send(&[join("polly", None)]).await;
    let (_, first) = polly.receive_raw(0).await;
    let seq = first["seq"].as_u64().unwrap();
    assert_eq!(first["messages"][0]["type"], "joined");
    // The answer was lost: asking again without acknowledging gets it again.
    let (_, again) = polly.receive_raw(0).await;
    assert_eq!(again, first);
    // Acknowledged: nothing more to say, until the wait is over.
    let started = tokio::time::Instant::now();
    let (status, empty) = polly.receive_raw(seq).await;
    assert_eq!((status, empty), (200, json!({"messages": []})));
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
    server.stop().await;
}

#[tokio::test]
async fn a_poll_member_resumes_on_a_new_session_and_leaves_for_good() {
    let server = Server::start(&[]).await;
    let key = "polly-key-0123456789abcdef";
    let mut polly = PollClient::open(server.addr).await;
    polly.send(&[join("polly", Some(key))]).await;
    let first = polly.until("joined").await;
    let (mut wes, _) = server.join(ROOM, "wes").await;

    // The session is dropped (as when a page is closed), and the member
    // comes back on another: the room notices nothing.
    let (status, _) = request(
        server.addr,
        "DELETE",
        &format!("/poll/{}", polly.token),
        "",
        "",
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = polly.receive_raw(0).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_session");
    let mut again = PollClient::open(server.addr).await;
    again.send(&[join("polly", Some(key))]).await;
    let resumed = again.until("joined").await;
    assert_eq!(resumed["resumed"], true);
    assert_eq!(resumed["you"]["id"], first["you"]["id"]);

    // `leave` leaves for good: the last answer says so, the room is told.
    again.send(&[json!({"type":"leave"})]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(tokio::time::Instant::now() < deadline);
        let (status, body) = again.receive_raw(again.ack).await;
        assert_eq!(status, 200);
        if body["closed"] == "left" {
            break;
        }
        again.ack = body["seq"].as_u64().unwrap_or(again.ack);
    }
    let left = loop {
        let msg = next_json(&mut wes).await;
        if msg["type"] != "peer_joined" {
            break msg;
        }
    };
    assert_eq!(left["type"], "peer_left", "{left}");
    assert_eq!(again.receive_raw(0).await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn the_same_admission_rules_and_limits_as_websockets() {
    let server = Server::start(&["--max-message-size", "1024"]).await;
    let addr = server.addr;
    let evil = "Origin: http://evil.example";
    assert_eq!(request(addr, "POST", "/poll", evil, "").await.0, 403);
    let own = format!("Origin: http://{addr}");
    assert_eq!(request(addr, "POST", "/poll", &own, "").await.0, 201);
    let head = "POST /poll HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0";
    assert_eq!(http_raw(addr, head, b"").await.0, 421);

    let mut polly = PollClient::open(addr).await;
    let path = format!("/poll/{}", polly.token);
    assert_eq!(request(addr, "GET", &path, evil, "").await.0, 403);
    assert_eq!(request(addr, "POST", &path, "", "not json").await.0, 400);
    assert_eq!(request(addr, "POST", "/poll/0123", "", "[]").await.0, 404);

    // A message over --max-message-size closes the session, as it closes
    // a WebSocket.
    let big = "x".repeat(2000);
    polly
        .send(&[json!({"type":"join","v":2,"room":ROOM,"nick":big})])
        .await;
    let error = polly.until("error").await;
    assert_eq!(error["code"], "too_large");
    server.stop().await;
}

#[tokio::test]
async fn a_quiet_session_is_lost_and_a_member_with_a_key_may_still_resume() {
    let server = Server::start(&["--ping-interval", "1s", "--idle-timeout", "2s"]).await;
    let mut polly = PollClient::open(server.addr).await;
    polly
        .send(&[join("polly", Some("quiet-key-0123456789abcdef"))])
        .await;
    polly.until("joined").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let health = common::health(server.addr).await;
        if health["poll_sessions"] == 0 {
            assert_eq!(health["away"], 1, "{health}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the quiet session ends"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(polly.receive_raw(polly.ack).await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_newer_receive_request_sends_the_older_one_away() {
    let server = Server::start(&[]).await;
    let polly = PollClient::open(server.addr).await;
    let older = tokio::spawn({
        let (addr, token) = (polly.addr, polly.token.clone());
        async move { request(addr, "GET", &format!("/poll/{token}?ack=0"), "", "").await }
    });
    // Let the older one start waiting, then come in after it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    polly.send(&[join("polly", None)]).await;
    let (_, newer) = polly.receive_raw(0).await;
    let (_, older) = tokio::time::timeout(WAIT, older).await.unwrap().unwrap();
    // One of them carries `joined`, and it is never lost: the other is
    // empty, or (if it took the batch first) the newer one got it again.
    let carries = |v: &Value| v["messages"].as_array().is_some_and(|m| !m.is_empty());
    assert!(carries(&newer) || carries(&older), "{newer} {older}");
    server.stop().await;
}

#[tokio::test]
async fn a_stopping_server_tells_poll_clients_like_websocket_ones() {
    let server = Server::start(&[]).await;
    let mut polly = PollClient::open(server.addr).await;
    polly.send(&[join("polly", None)]).await;
    polly.until("joined").await;
    let (addr, token, ack) = (polly.addr, polly.token.clone(), polly.ack);
    let waiting = tokio::spawn(async move {
        request(addr, "GET", &format!("/poll/{token}?ack={ack}"), "", "").await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await;
    let (status, body) = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["closed"], "shutting_down", "{body}");
}
