//! peerchat's embedded STUN/TURN relay.
//!
//! Built on the `turn` crate's server, with three things it lacks:
//! TURN REST credentials ([`Secret`]), a peer address filter
//! ([`PeerPolicy`]) so the relay cannot be used to reach the host's own
//! networks, and quotas (allocations per user and in total, bandwidth per
//! allocation).
//!
//! The filter works at two points. The listening socket is wrapped so that
//! authenticated `CreatePermission` and `ChannelBind` requests naming a
//! refused peer are answered `403 Forbidden` (as coturn does), and `Send`
//! indications to such peers are dropped. Each allocation's relay socket is
//! wrapped too, dropping datagrams to or from refused peers whatever route
//! they took, and enforcing the bandwidth budget.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod credentials;
mod policy;
mod stats;
mod stream;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS};
use stun::error_code::{CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN, ErrorCode, ErrorCodeAttribute};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, Getter, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_SEND, Message, MessageType, Setter,
};
use stun::textattrs::TextAttribute;
use tokio::net::{TcpListener, UdpSocket};
use turn::auth::{AuthHandler, generate_auth_key};
use turn::proto::peeraddr::PeerAddress;
use turn::relay::RelayAddressGenerator;
use turn::relay::relay_static::RelayAddressGeneratorStatic;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};
use webrtc_util::Conn;
use webrtc_util::vnet::net::Net;

pub use credentials::{CredentialError, Secret};
pub use policy::PeerPolicy;
pub use stats::{ClientTransport, RelaySnapshot, RelayStats};
pub use tokio_rustls::TlsAcceptor;

/// The realm of peerchat's relay.
pub const REALM: &str = "peerchat";

/// Where the relay listens for clients over a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPort {
    /// The UDP port's number (when UDP was given port 0 and that number is
    /// taken for TCP, any free port).
    SameAsUdp,
    /// This port (0: any free one).
    Port(u16),
}

/// Settings of the relay.
#[derive(Clone)]
pub struct RelayConfig {
    /// The UDP address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// TURN over TCP, on the same IP, if at all.
    pub tcp: Option<StreamPort>,
    /// TURN over TLS, on the same IP, with this acceptor (the server's
    /// certificate), if at all.
    pub tls: Option<(u16, TlsAcceptor)>,
    /// The address relayed traffic appears to come from, advertised to
    /// clients (the host's public address behind NAT).
    pub public_ip: IpAddr,
    /// The shared secret for TURN REST credentials.
    pub secret: Secret,
    /// Which peers may be relayed to.
    pub policy: PeerPolicy,
    /// Most allocations one username (one peer) may hold.
    pub max_allocations_per_user: usize,
    /// Most allocations in all.
    pub max_allocations: usize,
    /// Bytes per second each allocation may relay (both ways together).
    pub bandwidth_per_allocation: u64,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.as_ref().map(|(port, _)| port))
            .field("public_ip", &self.public_ip)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The UDP socket could not be bound.
    #[error("binding the TURN socket {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TURN server refused its configuration.
    #[error("starting the TURN server: {0}")]
    Turn(#[from] turn::Error),
}

/// A running relay.
pub struct Relay {
    server: Arc<Server>,
    addr: SocketAddr,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    stats: Arc<RelayStats>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("addr", &self.addr).finish()
    }
}

impl Relay {
    /// Binds the UDP socket (and the TCP and TLS listeners, if asked for)
    /// and starts serving STUN and TURN.
    pub async fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        let bind_err = |addr: SocketAddr| move |source| RelayError::Bind { addr, source };
        let socket = UdpSocket::bind(config.listen)
            .await
            .map_err(bind_err(config.listen))?;
        let addr = socket.local_addr().map_err(bind_err(config.listen))?;
        let stats = Arc::new(RelayStats::default());
        let auth = Arc::new(RestAuth {
            secret: config.secret.clone(),
            stats: stats.clone(),
        });
        let server_slot = Arc::new(OnceLock::new());
        let live = Arc::new(AtomicUsize::new(0));
        let listener = |conn: Arc<dyn Conn + Send + Sync>| FilteringListener {
            socket: conn,
            auth: auth.clone(),
            policy: config.policy,
            max_per_user: config.max_allocations_per_user,
            server: server_slot.clone(),
            stats: stats.clone(),
        };
        let relays = |transport: ClientTransport| FilteringRelays {
            inner: RelayAddressGeneratorStatic {
                relay_address: config.public_ip,
                address: addr.ip().to_string(),
                net: Arc::new(Net::new(None)),
            },
            policy: config.policy,
            live: live.clone(),
            max_total: config.max_allocations,
            bandwidth: config.bandwidth_per_allocation,
            stats: stats.clone(),
            transport,
        };
        let mut conn_configs = vec![ConnConfig {
            conn: Arc::new(listener(Arc::new(socket))),
            relay_addr_generator: Box::new(relays(ClientTransport::Udp)),
        }];
        // One stream connection per allocation, and some to spare.
        let max_streams = config.max_allocations + 64;
        let mut tcp = None;
        if let Some(port) = config.tcp {
            let tcp_listener = match port {
                StreamPort::Port(port) => {
                    let at = SocketAddr::new(addr.ip(), port);
                    TcpListener::bind(at).await.map_err(bind_err(at))?
                }
                StreamPort::SameAsUdp => {
                    let at = SocketAddr::new(addr.ip(), addr.port());
                    match TcpListener::bind(at).await {
                        Ok(bound) => bound,
                        Err(_) if config.listen.port() == 0 => {
                            let any = SocketAddr::new(addr.ip(), 0);
                            TcpListener::bind(any).await.map_err(bind_err(any))?
                        }
                        Err(err) => return Err(bind_err(at)(err)),
                    }
                }
            };
            let streams = stream::StreamListener::start(tcp_listener, None, max_streams)
                .map_err(bind_err(addr))?;
            tcp = Some(streams.addr());
            conn_configs.push(ConnConfig {
                conn: Arc::new(listener(Arc::new(streams))),
                relay_addr_generator: Box::new(relays(ClientTransport::Tcp)),
            });
        }
        let mut tls = None;
        if let Some((port, acceptor)) = config.tls.clone() {
            let at = SocketAddr::new(addr.ip(), port);
            let tls_listener = TcpListener::bind(at).await.map_err(bind_err(at))?;
            let streams = stream::StreamListener::start(tls_listener, Some(acceptor), max_streams)
                .map_err(bind_err(at))?;
            tls = Some(streams.addr());
            conn_configs.push(ConnConfig {
                conn: Arc::new(listener(Arc::new(streams))),
                relay_addr_generator: Box::new(relays(ClientTransport::Tls)),
            });
        }
        let server = Server::new(ServerConfig {
            conn_configs,
            realm: REALM.to_owned(),
            auth_handler: auth,
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: None,
        })
        .await?;
        let server = Arc::new(server);
        let _ = server_slot.set(Arc::downgrade(&server));
        Ok(Relay {
            server,
            addr,
            tcp,
            tls,
            stats,
        })
    }

    /// The UDP address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TCP address the relay listens on, if it does.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The TLS address the relay listens on, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// What the relay has done so far.
    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// Stops the relay and closes every allocation.
    pub async fn close(self) {
        if let Err(err) = self.server.close().await {
            tracing::warn!(%err, "closing the TURN server");
        }
    }
}

/// Checks TURN REST usernames and derives the long-term key.
struct RestAuth {
    secret: Secret,
    stats: Arc<RelayStats>,
}

impl RestAuth {
    /// The long-term key of `username`, if its credential is valid now.
    fn key(&self, username: &str, realm: &str) -> Result<Vec<u8>, String> {
        if realm != REALM {
            return Err(format!("unknown realm {realm:?}"));
        }
        match self.secret.check(username, SystemTime::now()) {
            Ok(password) => Ok(generate_auth_key(username, REALM, &password)),
            Err(err) => Err(err.to_string()),
        }
    }
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.key(username, realm).map_err(|err| {
            self.stats.auth_failure();
            tracing::debug!(%src_addr, %username, %err, "TURN credential refused");
            turn::Error::Other(err)
        })
    }
}

/// Every XOR-PEER-ADDRESS of a message (the `turn` crate reads only the
/// first, so a refused address in any position must be found here).
fn peer_addresses(m: &Message) -> Vec<SocketAddr> {
    let mut found = Vec::new();
    for attr in m
        .attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
    {
        let mut single = Message::new();
        single.transaction_id = m.transaction_id;
        single.add(ATTR_XOR_PEER_ADDRESS, &attr.value);
        let mut peer = PeerAddress::default();
        if peer.get_from(&single).is_ok() {
            found.push(SocketAddr::new(peer.ip, peer.port));
        }
    }
    found
}

/// A listening socket of the server (UDP, or TCP or TLS streams), inspecting
/// requests before the server.
struct FilteringListener {
    socket: Arc<dyn Conn + Send + Sync>,
    auth: Arc<RestAuth>,
    policy: PeerPolicy,
    max_per_user: usize,
    server: Arc<OnceLock<Weak<Server>>>,
    stats: Arc<RelayStats>,
}

impl FilteringListener {
    /// The username and key of a request with valid MESSAGE-INTEGRITY.
    fn authenticate(&self, m: &Message) -> Option<(String, Vec<u8>)> {
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            return None;
        }
        let mut user = TextAttribute::new(ATTR_USERNAME, String::new());
        let mut realm = TextAttribute::new(ATTR_REALM, String::new());
        user.get_from(m).ok()?;
        realm.get_from(m).ok()?;
        let key = self.auth.key(&user.text, &realm.text).ok()?;
        MessageIntegrity(key.clone()).check(&mut m.clone()).ok()?;
        Some((user.text, key))
    }

    async fn reply_error(&self, m: &Message, code: ErrorCode, key: Vec<u8>, to: SocketAddr) {
        let mut response = Message::new();
        let built = response.build(&[
            Box::new(m.clone()) as Box<dyn Setter>,
            Box::new(MessageType::new(m.typ.method, CLASS_ERROR_RESPONSE)),
            Box::new(ErrorCodeAttribute {
                code,
                reason: Vec::new(),
            }),
            Box::new(MessageIntegrity(key)),
        ]);
        if built.is_ok() {
            let _ = self.socket.send_to(&response.raw, to).await;
        }
    }

    /// Whether to swallow this datagram instead of passing it to the server.
    async fn intercept(&self, datagram: &[u8], src: SocketAddr) -> bool {
        if !stun::message::is_message(datagram) {
            return false; // ChannelData: channels exist only to allowed peers
        }
        let mut m = Message::new();
        if m.unmarshal_binary(datagram).is_err() {
            return false;
        }
        let (method, class) = (m.typ.method, m.typ.class);
        if method == METHOD_SEND && class == CLASS_INDICATION {
            return peer_addresses(&m)
                .iter()
                .any(|p| !self.policy.permits(p.ip()));
        }
        if class != CLASS_REQUEST {
            return false;
        }
        if method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND {
            let refused = peer_addresses(&m)
                .into_iter()
                .find(|p| !self.policy.permits(p.ip()));
            if let Some(peer) = refused {
                // Unauthenticated requests go on to get the server's 401.
                if let Some((user, key)) = self.authenticate(&m) {
                    tracing::info!(%user, %peer, "TURN: refused relaying to a non-public address");
                    self.stats.permission_refused();
                    self.reply_error(&m, CODE_FORBIDDEN, key, src).await;
                    return true;
                }
            }
            return false;
        }
        if method == METHOD_ALLOCATE && self.max_per_user > 0 {
            if let Some((user, key)) = self.authenticate(&m) {
                let Some(server) = self.server.get().and_then(Weak::upgrade) else {
                    return false;
                };
                let live = server.get_allocations_info(None).await.unwrap_or_default();
                let held = live
                    .values()
                    .filter(|a| a.username == user && a.five_tuple.src_addr != src)
                    .count();
                if held >= self.max_per_user {
                    tracing::info!(%user, held, "TURN: allocation quota reached");
                    self.stats.refused_user_quota();
                    self.reply_error(&m, CODE_ALLOC_QUOTA_REACHED, key, src)
                        .await;
                    return true;
                }
            }
        }
        false
    }
}

#[async_trait]
impl Conn for FilteringListener {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.socket.connect(addr).await
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.socket.recv(buf).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, src) = self.socket.recv_from(buf).await?;
            if !self.intercept(&buf[..n], src).await {
                return Ok((n, src));
            }
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.socket.send(buf).await
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.socket.send_to(buf, target).await
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.socket.local_addr()
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Hands out relay sockets, wrapped, up to the total quota.
struct FilteringRelays {
    inner: RelayAddressGeneratorStatic,
    policy: PeerPolicy,
    live: Arc<AtomicUsize>,
    max_total: usize,
    bandwidth: u64,
    stats: Arc<RelayStats>,
    /// How the clients of this listener reach the relay.
    transport: ClientTransport,
}

#[async_trait]
impl RelayAddressGenerator for FilteringRelays {
    fn validate(&self) -> Result<(), turn::Error> {
        self.inner.validate()
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        // Count first, so two allocations at once cannot both pass the cap.
        if self.live.fetch_add(1, Ordering::SeqCst) >= self.max_total {
            self.live.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(max = self.max_total, "TURN: total allocation quota reached");
            self.stats.refused_total_quota();
            return Err(turn::Error::Other("allocation quota reached".into()));
        }
        let guard = LiveGuard(self.live.clone());
        let (conn, addr) = self.inner.allocate_conn(use_ipv4, requested_port).await?;
        self.stats.allocation_opened(self.transport);
        let wrapped = FilteredRelayConn {
            inner: conn,
            policy: self.policy,
            budget: Mutex::new(Budget::new(self.bandwidth)),
            stats: self.stats.clone(),
            _live: guard,
        };
        Ok((Arc::new(wrapped), addr))
    }
}

/// Releases one place of the total allocation quota when dropped.
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One allocation's relay socket: refused peers and traffic over budget
/// are dropped.
struct FilteredRelayConn {
    inner: Arc<dyn Conn + Send + Sync>,
    policy: PeerPolicy,
    budget: Mutex<Budget>,
    stats: Arc<RelayStats>,
    _live: LiveGuard,
}

impl Drop for FilteredRelayConn {
    fn drop(&mut self) {
        self.stats.allocation_closed();
    }
}

impl FilteredRelayConn {
    fn spend(&self, bytes: usize) -> bool {
        let spent = self
            .budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(bytes, Instant::now());
        if !spent {
            self.stats.over_budget();
        }
        spent
    }
}

#[async_trait]
impl Conn for FilteredRelayConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.inner.recv(buf).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            if self.policy.permits(from.ip()) && self.spend(n) {
                self.stats.received_from_peer(n);
                return Ok((n, from));
            }
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.policy.permits(target.ip()) || !self.spend(buf.len()) {
            return Ok(buf.len()); // dropped, as a congested network would
        }
        let sent = self.inner.send_to(buf, target).await?;
        self.stats.sent_to_peer(sent);
        Ok(sent)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        self.inner.close().await
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// A byte budget refilled at a constant rate, holding up to one second's.
#[derive(Debug)]
struct Budget {
    rate: f64,
    available: f64,
    last: Instant,
}

impl Budget {
    fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec as f64;
        Self {
            rate,
            available: rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self, bytes: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.available = (self.available + elapsed * self.rate).min(self.rate);
        if self.available >= bytes as f64 {
            self.available -= bytes as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_over_time() {
        let start = Instant::now();
        let mut b = Budget {
            rate: 1000.0,
            available: 1000.0,
            last: start,
        };
        assert!(b.take(600, start));
        assert!(!b.take(600, start));
        assert!(b.take(600, start + Duration::from_millis(200)));
        assert!(!b.take(1, start + Duration::from_millis(200)));
    }
}
