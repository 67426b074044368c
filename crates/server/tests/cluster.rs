//! Several servers sharing rooms through a real `redis-server` (started by
//! each test on a Unix socket in a temporary directory, and stopped by it).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{PollClient, Scrape, Server, WAIT, Ws, config, dashboard_metrics};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ROOM: &str = "cluster-room-aaaaaaaaaaaaa";
const ROOM2: &str = "cluster-room-bbbbbbbbbbbbb";
const KEY_A: &str = "key-aaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "key-bbbbbbbbbbbbbbbbbbbbbb";
const KEY_C: &str = "key-cccccccccccccccccccccc";

/// A `redis-server` of the test's own, without persistence, on a Unix
/// socket; killed when dropped.
struct Redis {
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    async fn start() -> Redis {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("peerchat-redis-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis { dir, child: None };
        redis.spawn().await;
        redis
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    async fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::UnixStream::connect(self.socket())
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server starts"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Kills it (its data is gone) and starts a fresh one on the same
    /// socket.
    async fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.spawn().await;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn node(redis: &Redis, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut flags = vec!["--redis-url", &url, "--redis-lease", "1s", "--no-turn"];
    flags.extend_from_slice(extra);
    let server = Server::start(&flags).await;
    wait_serving(&server).await;
    server
}

async fn wait_serving(server: &Server) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let health = common::health(server.addr).await;
        if health["serving"] == true {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

/// The next text frame as JSON; `None` once the connection is closed.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")?;
        match msg {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The next frame if one arrives within `wait`.
async fn quiet(ws: &mut Ws, wait: Duration) -> Option<Value> {
    tokio::time::timeout(wait, next(ws)).await.ok().flatten()
}

async fn join(server: &Server, nick: &str, key: Option<&str>) -> (Ws, Value) {
    join_in(server, ROOM, nick, key).await
}

async fn join_in(server: &Server, room: &str, nick: &str, key: Option<&str>) -> (Ws, Value) {
    let mut ws = server.connect().await;
    send(&mut ws, join_message(room, nick, key)).await;
    let answer = next(&mut ws).await.unwrap();
    (ws, answer)
}

fn join_message(room: &str, nick: &str, key: Option<&str>) -> Value {
    let mut msg = json!({"type":"join","v":2,"room":room,"nick":nick});
    if let Some(key) = key {
        msg["key"] = json!(key);
    }
    msg
}

/// The next frame of `kind`, skipping others.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws)
            .await
            .unwrap_or_else(|| panic!("closed before {kind}"));
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// A signal each way between a long-poll member and a WebSocket member,
/// each stamped with its sender.
async fn signal_both_ways(poll: &mut PollClient, poll_id: &str, ws: &mut Ws, ws_id: &str, n: u32) {
    let signal = json!({"type":"signal","to":ws_id,"payload":{"n":n}});
    assert_eq!(poll.send(&[signal]).await, 204);
    assert_eq!(
        next_of(ws, "signal").await,
        json!({"type":"signal","from":poll_id,"payload":{"n":n}})
    );
    send(
        ws,
        json!({"type":"signal","to":poll_id,"payload":{"n":n + 1}}),
    )
    .await;
    assert_eq!(
        poll.until("signal").await,
        json!({"type":"signal","from":ws_id,"payload":{"n":n + 1}})
    );
}

fn id(joined: &Value) -> &str {
    joined["you"]["id"].as_str().unwrap()
}

#[tokio::test]
async fn members_on_two_servers_share_a_room() {
    let redis = Redis::start().await;
    let a = node(&redis, &["--room-capacity", "3"]).await;
    let b = node(&redis, &["--room-capacity", "3"]).await;
    let (mut alice, ja) = join(&a, "alice", Some(KEY_A)).await;
    assert_eq!(ja["type"], "joined", "{ja}");
    let (mut bob, jb) = join(&b, "bob", None).await;
    assert_eq!(jb["members"], json!([{"id": id(&ja), "nick": "alice"}]));
    assert_eq!(next(&mut alice).await.unwrap()["type"], "peer_joined");
    // A nickname taken on another server is refused.
    let (_, taken) = join(&b, "ALICE", None).await;
    assert_eq!(taken["code"], "nick_taken");
    // Signals cross, both ways, with the sender stamped.
    send(
        &mut bob,
        json!({"type":"signal","to":id(&ja),"payload":{"n":1}}),
    )
    .await;
    assert_eq!(
        next(&mut alice).await.unwrap(),
        json!({"type":"signal","from":id(&jb),"payload":{"n":1}})
    );
    send(
        &mut alice,
        json!({"type":"signal","to":id(&jb),"payload":{"n":2}}),
    )
    .await;
    assert_eq!(next(&mut bob).await.unwrap()["payload"]["n"], 2);
    // The room is full across servers.
    let (_carol, jc) = join(&b, "carol", None).await;
    assert_eq!(jc["type"], "joined");
    let (_, full) = join(&a, "dave", None).await;
    assert_eq!(full["code"], "room_full");
    // Each server knows the other and says so.
    let health = common::health(b.addr).await;
    assert_eq!(health["redis"], "up");
    assert_eq!(health["peers"], 1);
    assert_ne!(health["node"], common::health(a.addr).await["node"]);
    // Leaving from the server that does not hold the room is told once.
    send(&mut bob, json!({"type":"leave"})).await;
    let mut heard = Vec::new();
    while let Some(frame) = quiet(&mut alice, Duration::from_millis(500)).await {
        heard.push(frame);
    }
    let bob_left = json!({"type":"peer_left","id":id(&jb)});
    assert_eq!(
        heard.iter().filter(|f| **f == bob_left).count(),
        1,
        "{heard:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_stopped_server_s_members_resume_on_another_unnoticed() {
    let redis = Redis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;
    let c = node(&redis, &[]).await;
    let (mut alice, ja) = join(&a, "alice", Some(KEY_A)).await;
    let (mut bob, jb) = join(&b, "bob", Some(KEY_B)).await;
    next(&mut alice).await.unwrap();
    // Bob's server stops: he is told it is an outage, reconnects to
    // another server and resumes; alice sees nothing.
    b.stop().await;
    assert_eq!(next(&mut bob).await.unwrap()["code"], "shutting_down");
    let (mut bob2, jb2) = join(&c, "bob", Some(KEY_B)).await;
    assert_eq!(jb2["resumed"], true, "{jb2}");
    assert_eq!(id(&jb2), id(&jb));
    send(
        &mut bob2,
        json!({"type":"signal","to":id(&ja),"payload":{}}),
    )
    .await;
    let frame = next(&mut alice).await.unwrap();
    assert_eq!(frame["type"], "signal", "{frame}");
    assert_eq!(quiet(&mut alice, Duration::from_secs(3)).await, None);
    a.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn the_owner_stopped_the_room_moves_and_nobody_sees_a_leave() {
    let redis = Redis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;
    let (mut alice, ja) = join(&a, "alice", Some(KEY_A)).await;
    let (mut bob, jb) = join(&b, "bob", Some(KEY_B)).await;
    next(&mut alice).await.unwrap();
    a.stop().await;
    // Alice's server held the room: bob, on the other, is closed too, as
    // after a server restart; both join again on b, which takes the room.
    assert_eq!(next(&mut alice).await.unwrap()["code"], "shutting_down");
    assert_eq!(next(&mut bob).await.unwrap()["code"], "shutting_down");
    let (mut bob2, jb2) = join(&b, "bob", Some(KEY_B)).await;
    assert_eq!(id(&jb2), id(&jb));
    let (_alice2, ja2) = join(&b, "alice", Some(KEY_A)).await;
    assert_eq!(id(&ja2), id(&ja));
    assert_eq!(ja2["members"], json!([{"id": id(&jb), "nick": "bob"}]));
    let frame = next(&mut bob2).await.unwrap();
    assert_eq!(frame["type"], "peer_joined", "{frame}");
    assert_eq!(quiet(&mut bob2, Duration::from_secs(2)).await, None);
    b.stop().await;
}

#[tokio::test]
async fn redis_paused_longer_than_the_lease_loses_no_signal_and_splits_no_room() {
    let redis = Redis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;
    let (mut alice, ja) = join(&a, "alice", Some(KEY_A)).await;
    let (mut bob, jb) = join(&b, "bob", Some(KEY_B)).await;
    let (mut carol, _) = join(&a, "carol", Some(KEY_C)).await;
    for _ in 0..2 {
        next(&mut alice).await.unwrap();
    }
    next(&mut bob).await.unwrap();
    redis.signal("-STOP");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(common::health(a.addr).await["serving"], false);
    // Signals sent while Redis is away, within one server and across.
    send(
        &mut carol,
        json!({"type":"signal","to":id(&ja),"payload":{"n":1}}),
    )
    .await;
    send(
        &mut bob,
        json!({"type":"signal","to":id(&ja),"payload":{"n":2}}),
    )
    .await;
    send(
        &mut alice,
        json!({"type":"signal","to":id(&jb),"payload":{"n":3}}),
    )
    .await;
    redis.signal("-CONT");
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(next(&mut alice).await.unwrap()["payload"]["n"].clone());
    }
    got.sort_by_key(|n| n.as_u64());
    assert_eq!(got, vec![json!(1), json!(2)]);
    assert_eq!(next(&mut bob).await.unwrap()["payload"]["n"], 3);
    wait_serving(&a).await;
    wait_serving(&b).await;
    // Nobody was closed or told anyone left, and the room is still one:
    // a newcomer sees all three.
    for ws in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(quiet(ws, Duration::from_millis(1500)).await, None);
    }
    let (_, jd) = join(&b, "dave", None).await;
    assert_eq!(jd["members"].as_array().unwrap().len(), 3, "{jd}");
    let owned: usize = [&a, &b]
        .iter()
        .map(|s| s.state.cluster_stats().unwrap().rooms_owned)
        .sum();
    assert_eq!(owned, 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn redis_restarted_without_its_data_rooms_recover_as_members_rejoin() {
    let mut redis = Redis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;
    let (mut alice, ja) = join(&a, "alice", Some(KEY_A)).await;
    let (mut bob, _) = join(&b, "bob", Some(KEY_B)).await;
    next(&mut alice).await.unwrap();
    let before = common::health(a.addr).await["node"].clone();
    redis.restart().await;
    // Both servers notice, close their members as an outage, and register
    // again under new ids.
    assert_eq!(next(&mut alice).await.unwrap()["code"], "shutting_down");
    assert_eq!(next(&mut bob).await.unwrap()["code"], "shutting_down");
    wait_serving(&a).await;
    wait_serving(&b).await;
    assert_ne!(common::health(a.addr).await["node"], before);
    let (_, jb2) = join(&a, "bob", Some(KEY_B)).await;
    assert_eq!(jb2["type"], "joined");
    let (_, ja2) = join(&b, "alice", Some(KEY_A)).await;
    assert_eq!(id(&ja2), id(&ja));
    assert_eq!(ja2["members"].as_array().unwrap().len(), 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn servers_without_a_turn_secret_share_the_first_one_s() {
    let redis = Redis::start().await;
    let url = redis.url();
    let mut one = config(&["--redis-url", &url]);
    let mut two = config(&["--redis-url", &url]);
    peerchat_server::cluster::share_turn_secret(&mut one)
        .await
        .unwrap();
    peerchat_server::cluster::share_turn_secret(&mut two)
        .await
        .unwrap();
    let now = std::time::SystemTime::now();
    let ttl = Duration::from_secs(60);
    let issued = one.turn.unwrap().secret.issue("0123456789abcdef", ttl, now);
    let again = two.turn.unwrap().secret.issue("0123456789abcdef", ttl, now);
    assert_eq!(issued, again);
    // A secret given on the command line is used as it is.
    let mut three = config(&["--redis-url", &url, "--turn-secret", "s3cret"]);
    peerchat_server::cluster::share_turn_secret(&mut three)
        .await
        .unwrap();
    let given = three
        .turn
        .unwrap()
        .secret
        .issue("0123456789abcdef", ttl, now);
    assert_ne!(given, issued);
}

#[tokio::test]
async fn a_mailbox_get_on_one_server_receives_a_set_on_another() {
    let redis = Redis::start().await;
    let a = node(&redis, &[]).await;
    let b = node(&redis, &[]).await;
    let (a_addr, b_addr) = (a.addr, b.addr);
    let get = tokio::spawn(async move {
        common::http_post(a_addr, "/sig?get=meet-me-here&timeoutms=8000", b"").await
    });
    // The get waits at whichever server claimed the id; the set, on the
    // other server, reaches it there.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) =
        common::http_post(b_addr, "/sig?set=meet-me-here&timeoutms=8000", b"an offer").await;
    assert_eq!(status, 200);
    let (status, body) = get.await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"an offer"[..]));
    // Nobody waiting: a get on either server times out.
    let (status, _) = common::http_post(b_addr, "/sig?get=meet-me-here&timeoutms=300", b"").await;
    assert_eq!(status, 204);
    a.stop().await;
    b.stop().await;
}

/// Long-poll sessions go through the same cluster node as WebSockets: a
/// long-poll member on one server and a WebSocket member on another share
/// a room, whichever of the two servers holds it; the join deadline spares
/// a long-poll member of a room held elsewhere, as it does a WebSocket; and
/// the metrics count each transport and the frames between the servers.
#[tokio::test]
async fn long_poll_and_websocket_members_on_two_servers_share_rooms() {
    let redis = Redis::start().await;
    let flags = [
        "--join-timeout",
        "1s",
        "--ping-interval",
        "1s",
        "--idle-timeout",
        "5s",
    ];
    let a = node(&redis, &flags).await;
    let b = node(&redis, &flags).await;

    // A room held by the long-poll member's server (it joined first).
    let mut polly = PollClient::open(a.addr).await;
    let polly_joins = join_message(ROOM, "polly", Some(KEY_A));
    assert_eq!(polly.send(&[polly_joins]).await, 204);
    let jp = polly.until("joined").await;
    let (mut wes, jw) = join(&b, "wes", Some(KEY_B)).await;
    assert_eq!(jw["members"], json!([{"id": id(&jp), "nick": "polly"}]));
    assert_eq!(polly.until("peer_joined").await["peer"]["nick"], "wes");
    signal_both_ways(&mut polly, id(&jp), &mut wes, id(&jw), 1).await;

    // A room held by the WebSocket member's server: the long-poll member's
    // frames are forwarded to it through Redis.
    let (mut walt, jw2) = join_in(&b, ROOM2, "walt", Some(KEY_C)).await;
    assert_eq!(jw2["type"], "joined", "{jw2}");
    let mut pia = PollClient::open(a.addr).await;
    assert_eq!(pia.send(&[join_message(ROOM2, "pia", None)]).await, 204);
    let jp2 = pia.until("joined").await;
    assert_eq!(jp2["members"], json!([{"id": id(&jw2), "nick": "walt"}]));
    assert_eq!(
        next_of(&mut walt, "peer_joined").await["peer"]["nick"],
        "pia"
    );
    // Two long polls that find nothing take past the join deadline (1 s,
    // looked at every second) without a word from pia: pia, joined in a
    // room held elsewhere, is not closed for it.
    for _ in 0..2 {
        let (status, body) = pia.receive_raw(pia.ack).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["closed"].is_null(), "{body}");
        assert_eq!(body["messages"], json!([]), "{body}");
    }
    signal_both_ways(&mut pia, id(&jp2), &mut walt, id(&jw2), 1).await;
    signal_both_ways(&mut pia, id(&jp2), &mut walt, id(&jw2), 3).await;

    // Each server counts its own connections by transport, and the frames
    // it exchanged with the other; the long-poll member's server holds one
    // room, the other server the other.
    let (at_a, at_b) = (Scrape::take(a.addr).await, Scrape::take(b.addr).await);
    for (scrape, poll, websocket) in [(&at_a, 2.0, 0.0), (&at_b, 0.0, 2.0)] {
        assert_eq!(scrape.get("peerchat_connections{transport=poll}"), poll);
        assert_eq!(
            scrape.get("peerchat_connections{transport=websocket}"),
            websocket
        );
        assert_eq!(scrape.get("peerchat_cluster_redis_up{}"), 1.0);
        assert_eq!(scrape.get("peerchat_cluster_serving{}"), 1.0);
        assert_eq!(scrape.get("peerchat_cluster_peers{}"), 1.0);
        assert_eq!(scrape.get("peerchat_cluster_rooms_owned{}"), 1.0);
        assert_eq!(scrape.get("peerchat_cluster_lease_lapses_total{}"), 0.0);
    }
    // Out of a: pia's join and three signals, polly's room's frames for
    // wes; the same arrive at b.
    let out_of_a = at_a.get("peerchat_cluster_frames_total{direction=out}");
    assert!(out_of_a >= 4.0, "{out_of_a}");
    assert_eq!(
        at_b.get("peerchat_cluster_frames_total{direction=in}"),
        out_of_a
    );
    assert!(at_a.get("peerchat_cluster_entries_total{direction=out}") >= 1.0);
    // Each hub counts the signals of the room it holds.
    assert_eq!(at_a.get("peerchat_signals_relayed_total{}"), 2.0);
    assert_eq!(at_b.get("peerchat_signals_relayed_total{}"), 4.0);
    // The dashboard's cluster panels name metrics that exist.
    for name in dashboard_metrics() {
        if name.starts_with("peerchat_cluster_") {
            assert!(
                at_a.0.keys().any(|k| k.starts_with(&format!("{name}{{"))),
                "{name} is not exported"
            );
        }
    }

    // Leaving from the server that does not hold the room is told once.
    assert_eq!(pia.send(&[json!({"type":"leave"})]).await, 204);
    assert_eq!(
        next_of(&mut walt, "peer_left").await,
        json!({"type":"peer_left","id":id(&jp2)})
    );
    a.stop().await;
    b.stop().await;
}

/// Joins `ROOM` on `server` as `nick` with a small socket receive buffer,
/// so that the kernel holds little of what the server sends it once it
/// stops reading.
async fn join_slow_reader(server: &Server, nick: &str) -> (Ws, String) {
    let stream = common::slow_reader_stream(server.addr).await;
    let (mut ws, _) = tokio_tungstenite::client_async(server.url(), stream)
        .await
        .unwrap();
    send(
        &mut ws,
        json!({"type":"join","v":2,"room":ROOM,"nick":nick}),
    )
    .await;
    let joined = next(&mut ws).await.unwrap();
    (ws, id(&joined).to_owned())
}

/// Sends `signal` on `ws` until the server answers (anything but pings),
/// and returns that answer.
async fn send_until_answered(ws: &mut Ws, signal: &str) -> Value {
    for _ in 0..50_000 {
        ws.send(Message::text(signal.to_owned())).await.unwrap();
        let polled = tokio::time::timeout(Duration::from_millis(1), ws.next()).await;
        if let Ok(Some(Ok(Message::Text(t)))) = polled {
            return serde_json::from_str(&t).unwrap();
        }
    }
    panic!("the server never pushed back");
}

/// `slow` stopped reading while `sender` flooded it: it reads again, gets
/// what was queued for it, and then `sender`'s signals reach it again.
async fn reads_again(slow: &mut Ws, sender: &mut Ws, slow_id: &str) {
    let small = json!({"type":"signal","to":slow_id,"payload":{"n":1}}).to_string();
    loop {
        let msg = next(slow)
            .await
            .expect("the slow reader is still connected");
        assert_ne!(msg["type"], "error", "{msg}");
        if msg["payload"]["n"] == 1 {
            return;
        }
        // Each time its queue may have room again.
        sender.send(Message::text(small.clone())).await.unwrap();
    }
}

#[tokio::test]
async fn a_slow_reader_pushes_back_on_a_sender_on_another_server_and_stays() {
    let redis = Redis::start().await;
    let mut flags = vec!["--send-queue-bytes", "65536"];
    flags.extend(common::NO_RATE_LIMIT);
    let a = node(&redis, &flags).await;
    let b = node(&redis, &flags).await;
    // Alice's server holds the room; slow, on the other server, does not
    // read. Alice floods it: she is told it is busy, and it stays.
    let (mut alice, _) = join(&a, "alice", None).await;
    let (mut slow, slow_id) = join_slow_reader(&b, "slow").await;
    assert_eq!(next(&mut alice).await.unwrap()["type"], "peer_joined");
    let payload = "x".repeat(60_000);
    let signal = json!({"type":"signal","to":slow_id,"payload":{"p":payload}}).to_string();
    let answer = send_until_answered(&mut alice, &signal).await;
    assert_eq!(answer["code"], "peer_busy", "{answer}");
    assert_eq!(answer["to"], slow_id);
    assert_eq!(a.state.stats().members, 2);
    reads_again(&mut slow, &mut alice, &slow_id).await;
    // The other way round: a slow reader on the server holding the room,
    // flooded by bob from the other.
    let (mut slow2, slow2_id) = join_slow_reader(&a, "slow2").await;
    let (mut bob, _) = join(&b, "bob", None).await;
    let signal = json!({"type":"signal","to":slow2_id,"payload":{"p":payload}}).to_string();
    let answer = loop {
        let answer = send_until_answered(&mut bob, &signal).await;
        if answer["type"] == "error" {
            break answer;
        }
    };
    assert_eq!(answer["code"], "peer_busy", "{answer}");
    assert_eq!(answer["to"], slow2_id);
    assert_eq!(a.state.stats().members, 4);
    reads_again(&mut slow2, &mut bob, &slow2_id).await;
    assert_eq!(a.state.stats().members, 4);
    a.stop().await;
    b.stop().await;
}
