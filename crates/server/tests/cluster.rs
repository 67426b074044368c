//! Several servers sharing rooms through a real `redis-server` (started by
//! each test on a Unix socket in a temporary directory, and stopped by it).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, WAIT, Ws, config};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ROOM: &str = "cluster-room-aaaaaaaaaaaaa";
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
    let mut ws = server.connect().await;
    let mut msg = json!({"type":"join","v":2,"room":ROOM,"nick":nick});
    if let Some(key) = key {
        msg["key"] = json!(key);
    }
    send(&mut ws, msg).await;
    let answer = next(&mut ws).await.unwrap();
    (ws, answer)
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
