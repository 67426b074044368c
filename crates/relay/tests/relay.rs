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
        tcp: None,
        tls: None,
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
    client_over(Arc::new(socket), server, username, password).await
}

/// A `turn` client speaking through `conn` (a UDP socket, or a stream).
async fn client_over(
    conn: Arc<dyn Conn + Send + Sync>,
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Client {
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: REALM.to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
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
    assert!(relay.stats().snapshot().auth_failures >= 1);

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
    let stats = relay.stats().snapshot();
    assert!(stats.permissions_refused >= 1, "{stats:?}");
    assert_eq!(stats.bytes_to_peers, 0);
    c.close().await.unwrap();
    relay.close().await;
}

#[tokio::test]
async fn relaying_to_loopback_works_when_allowed() {
    let secret = Secret::random();
    let relay = relay(&secret, true, 4, 16).await;
    let (user, pass) = creds(&secret, "alice", 3600);
    let c = client(relay.local_addr(), &user, &pass).await;
    relay_round_trip(&c).await;
    let stats = relay.stats().snapshot();
    assert_eq!(stats.allocations, 1);
    assert_eq!(
        stats.allocated[0],
        (peerchat_relay::ClientTransport::Udp, 1)
    );
    assert_eq!((stats.bytes_to_peers, stats.bytes_from_peers), (13, 4));
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
    let stats = relay.stats().snapshot();
    assert_eq!(stats.allocations, 2);
    assert_eq!(stats.refused_user_quota, 1);
    // Carol comes from the same address as the others: its share is spent
    // as soon as the total is.
    assert!(
        stats.refused_total_quota + stats.refused_address_quota >= 1,
        "{stats:?}"
    );
    for cl in [a1, a2, b, c] {
        cl.close().await.unwrap();
    }
    relay.close().await;
}

/// A TURN client's side of a TCP (or TLS) connection to the relay, as the
/// `turn` client's datagram socket: each send is one framed message, each
/// receive one message cut from the stream.
struct StreamConn<S> {
    reader: tokio::sync::Mutex<(tokio::io::ReadHalf<S>, Vec<u8>)>,
    writer: tokio::sync::Mutex<tokio::io::WriteHalf<S>>,
    server: SocketAddr,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite> StreamConn<S> {
    fn new(stream: S, server: SocketAddr) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            reader: tokio::sync::Mutex::new((reader, Vec::new())),
            writer: tokio::sync::Mutex::new(writer),
            server,
        }
    }
}

#[async_trait::async_trait]
impl<S> Conn for StreamConn<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + 'static,
{
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        use tokio::io::AsyncReadExt;
        let mut guard = self.reader.lock().await;
        let (reader, pending) = &mut *guard;
        loop {
            if let Some(len) = peerchat_protocol::turn::frame_len(pending) {
                if pending.len() >= len {
                    let message: Vec<u8> = pending.drain(..len).collect();
                    buf[..len].copy_from_slice(&message);
                    return Ok((len, self.server));
                }
            }
            let mut chunk = [0u8; 2048];
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            pending.extend_from_slice(&chunk[..n]);
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.send_to(buf, self.server).await
    }
    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> webrtc_util::Result<usize> {
        use tokio::io::AsyncWriteExt;
        let mut framed = buf.to_vec();
        if buf[0] >> 6 == 1 {
            framed.resize(framed.len().div_ceil(4) * 4, 0);
        }
        self.writer.lock().await.write_all(&framed).await?;
        Ok(buf.len())
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok("127.0.0.1:0".parse().unwrap())
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.server)
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Allocates through `client` and relays a datagram to a UDP peer and one
/// back.
async fn relay_round_trip(client: &Client) {
    let conn = allocate(client).await.unwrap();
    let relayed = conn.local_addr().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    conn.send_to(b"through relay", peer.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"through relay"[..], relayed));
    peer.send_to(b"back", relayed).await.unwrap();
    let (n, _) = tokio::time::timeout(WAIT, conn.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"back");
}

#[tokio::test]
async fn clients_reach_the_relay_over_tcp_and_tls_and_it_relays_over_udp() {
    let secret = Secret::random();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let relay = Relay::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tcp: Some(peerchat_relay::StreamPort::Port(0)),
        tls: Some((0, tokio_rustls::TlsAcceptor::from(Arc::new(server_config)))),
        public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secret: secret.clone(),
        policy: PeerPolicy {
            allow_private: true,
        },
        max_allocations_per_user: 4,
        max_allocations_per_address: 16,
        max_allocations: 16,
        bandwidth_per_allocation: 1 << 20,
    })
    .await
    .unwrap();
    let (user, pass) = creds(&secret, "alice", 3600);

    let tcp_addr = relay.tcp_addr().unwrap();
    let tcp = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    let over_tcp = client_over(
        Arc::new(StreamConn::new(tcp, tcp_addr)),
        tcp_addr,
        &user,
        &pass,
    )
    .await;
    relay_round_trip(&over_tcp).await;

    let tls_addr = relay.tls_addr().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client_config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tokio::net::TcpStream::connect(tls_addr).await.unwrap(),
        )
        .await
        .unwrap();
    let over_tls = client_over(
        Arc::new(StreamConn::new(tls, tls_addr)),
        tls_addr,
        &user,
        &pass,
    )
    .await;
    relay_round_trip(&over_tls).await;

    let stats = relay.stats().snapshot();
    let by = |t| stats.allocated.iter().find(|(k, _)| *k == t).unwrap().1;
    assert_eq!(by(peerchat_relay::ClientTransport::Tcp), 1);
    assert_eq!(by(peerchat_relay::ClientTransport::Tls), 1);
    assert_eq!(by(peerchat_relay::ClientTransport::Udp), 0);

    // Something that is not TURN is dropped, and the relay goes on.
    let mut junk = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut junk, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut junk, &mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed");
    over_tcp.close().await.unwrap();
    over_tls.close().await.unwrap();
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
