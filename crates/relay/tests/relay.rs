//! The relay against the `turn` crate's client, on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peerchat_relay::{PeerPolicy, REALM, Relay, RelayConfig, Secret};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

const WAIT: Duration = Duration::from_secs(10);

async fn relay(secret: &Secret, allow_private: bool, per_user: usize, total: usize) -> Relay {
    relay_with(secret, allow_private, per_user, total, total).await
}

async fn relay_with(
    secret: &Secret,
    allow_private: bool,
    per_user: usize,
    per_address: usize,
    total: usize,
) -> Relay {
    Relay::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secret: secret.clone(),
        policy: PeerPolicy { allow_private },
        max_allocations_per_user: per_user,
        max_allocations_per_address: per_address,
        max_allocations: total,
        bandwidth_per_allocation: 1 << 20,
    })
    .await
    .unwrap()
}

async fn client(server: SocketAddr, username: &str, password: &str) -> Client {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: REALM.to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(socket),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

/// Allocates a relay address, failing the test if the relay does not
/// answer in time.
async fn allocate(c: &Client) -> Result<impl Conn + use<>, turn::Error> {
    tokio::time::timeout(WAIT, c.allocate())
        .await
        .expect("the relay answers in time")
}

fn creds(secret: &Secret, peer: &str, ttl_secs: i64) -> (String, String) {
    let now = SystemTime::now();
    if ttl_secs >= 0 {
        secret.issue(peer, Duration::from_secs(ttl_secs as u64), now)
    } else {
        secret.issue(
            peer,
            Duration::ZERO,
            now - Duration::from_secs(ttl_secs.unsigned_abs()),
        )
    }
}

#[tokio::test]
async fn stun_binding_works_without_credentials() {
    let secret = Secret::random();
    let relay = relay(&secret, false, 4, 16).await;
    let c = client(relay.local_addr(), "", "").await;
    let mapped = tokio::time::timeout(WAIT, c.send_binding_request())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mapped.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    c.close().await.unwrap();
    relay.close().await;
}

#[tokio::test]
async fn only_valid_unexpired_credentials_allocate() {
    let secret = Secret::random();
    let relay = relay(&secret, false, 4, 16).await;
    let addr = relay.local_addr();

    let (user, pass) = creds(&secret, "alice", 3600);
    let ok = client(addr, &user, &pass).await;
    let conn = allocate(&ok).await.unwrap();
    assert_eq!(
        conn.local_addr().unwrap().ip(),
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    );

    let (user, pass) = creds(&secret, "bob", -60);
    let expired = client(addr, &user, &pass).await;
    assert!(allocate(&expired).await.is_err());

    let (user, _) = creds(&secret, "carol", 3600);
    let forged = client(addr, &user, "Zm9yZ2Vk").await;
    assert!(allocate(&forged).await.is_err());

    let missing = client(addr, "", "").await;
    assert!(allocate(&missing).await.is_err());
    missing.close().await.unwrap();

    let (user, pass) = creds(&Secret::new("another secret"), "dave", 3600);
    let foreign = client(addr, &user, &pass).await;
    assert!(allocate(&foreign).await.is_err());

    for c in [ok, expired, forged, foreign] {
        c.close().await.unwrap();
    }
    relay.close().await;
}

#[tokio::test]
async fn relaying_to_loopback_is_refused_by_default() {
    let secret = Secret::random();
    let relay = relay(&secret, false, 4, 16).await;
    let (user, pass) = creds(&secret, "alice", 3600);
    let c = client(relay.local_addr(), &user, &pass).await;
    let conn = allocate(&c).await.unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sent = tokio::time::timeout(WAIT, conn.send_to(b"hello", peer.local_addr().unwrap()))
        .await
        .unwrap();
    let err = sent.expect_err("the permission is refused").to_string();
    assert!(err.contains("403"), "{err}");
    c.close().await.unwrap();
    relay.close().await;
}

#[tokio::test]
async fn relaying_to_loopback_works_when_allowed() {
    let secret = Secret::random();
    let relay = relay(&secret, true, 4, 16).await;
    let (user, pass) = creds(&secret, "alice", 3600);
    let c = client(relay.local_addr(), &user, &pass).await;
    let conn = allocate(&c).await.unwrap();
    let relayed = conn.local_addr().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    conn.send_to(b"hello", peer.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"hello"[..], relayed));
    peer.send_to(b"back", relayed).await.unwrap();
    let (n, _) = tokio::time::timeout(WAIT, conn.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"back");
    c.close().await.unwrap();
    relay.close().await;
}

#[tokio::test]
async fn allocation_quotas() {
    let secret = Secret::random();
    let relay = relay(&secret, false, 1, 2).await;
    let addr = relay.local_addr();
    let (alice_user, alice_pass) = creds(&secret, "alice", 3600);
    let a1 = client(addr, &alice_user, &alice_pass).await;
    let _held = allocate(&a1).await.unwrap();
    // One allocation per user.
    let a2 = client(addr, &alice_user, &alice_pass).await;
    let err = allocate(&a2).await.err().unwrap();
    assert!(err.to_string().contains("486"), "{err}");
    // Two in total.
    let (u, p) = creds(&secret, "bob", 3600);
    let b = client(addr, &u, &p).await;
    let _held_b = allocate(&b).await.unwrap();
    let (u, p) = creds(&secret, "carol", 3600);
    let c = client(addr, &u, &p).await;
    assert!(allocate(&c).await.is_err());
    for cl in [a1, a2, b, c] {
        cl.close().await.unwrap();
    }
    relay.close().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_allocation_with_many_credentials() {
    let secret = Secret::random();
    let relay = relay_with(&secret, false, 4, 2, 100).await;
    let addr = relay.local_addr();
    let mut clients = Vec::new();
    let mut held = Vec::new();
    for name in ["alice", "bob"] {
        let (u, p) = creds(&secret, name, 3600);
        let c = client(addr, &u, &p).await;
        held.push(allocate(&c).await.unwrap());
        clients.push(c);
    }
    // A third member's credentials, from the same address: refused.
    let (u, p) = creds(&secret, "carol", 3600);
    let c = client(addr, &u, &p).await;
    let err = allocate(&c).await.err().unwrap();
    assert!(err.to_string().contains("486"), "{err}");
    clients.push(c);
    for c in clients {
        c.close().await.unwrap();
    }
    relay.close().await;
}
