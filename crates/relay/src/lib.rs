//! peerchat's embedded STUN/TURN relay.
//!
//! Built on the `turn` crate's server, with three things it lacks:
//! TURN REST credentials ([`Secret`]), a peer address filter
//! ([`PeerPolicy`]) so the relay cannot be used to reach the host's own
//! networks, and quotas (allocations per user and in total, bandwidth per
//! allocation).
//!
//! Unauthenticated requests are answered here, in front of the crate,
//! with stateless nonces ([`nonce`]): the crate stores every nonce it
//! hands out, so a flood of spoofable requests would grow its memory
//! without bound. Only requests carrying a valid nonce and valid
//! credentials reach the crate, their nonce replaced (and the message
//! re-signed) by the one nonce the crate issued for this purpose.
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
mod nonce;
mod policy;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use stun::attributes::{
    ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME,
    ATTR_XOR_PEER_ADDRESS,
};
use stun::error_code::{
    CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN, CODE_STALE_NONCE, CODE_UNAUTHORIZED, ErrorCode,
    ErrorCodeAttribute,
};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, Getter, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH, METHOD_SEND, Message,
    MessageType, Setter,
};
use stun::textattrs::TextAttribute;
use tokio::net::UdpSocket;
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

/// The realm of peerchat's relay.
pub const REALM: &str = "peerchat";

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The UDP address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The address relayed traffic appears to come from, advertised to
    /// clients (the host's public address behind NAT).
    pub public_ip: IpAddr,
    /// The shared secret for TURN REST credentials.
    pub secret: Secret,
    /// Which peers may be relayed to.
    pub policy: PeerPolicy,
    /// Most allocations one username (one peer) may hold.
    pub max_allocations_per_user: usize,
    /// Most allocations one client address may hold (IPv6: one /64), so
    /// that one client cannot take them all with many credentials.
    pub max_allocations_per_address: usize,
    /// Most allocations in all.
    pub max_allocations: usize,
    /// Bytes per second each allocation may relay (both ways together).
    pub bandwidth_per_allocation: u64,
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
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("addr", &self.addr).finish()
    }
}

impl Relay {
    /// Binds the UDP socket and starts serving STUN and TURN.
    pub async fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        let socket = UdpSocket::bind(config.listen)
            .await
            .map_err(|source| RelayError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = socket.local_addr().map_err(|source| RelayError::Bind {
            addr: config.listen,
            source,
        })?;
        let auth = Arc::new(RestAuth {
            secret: config.secret.clone(),
        });
        let server_slot = Arc::new(OnceLock::new());
        let listener = FilteringListener {
            socket: Arc::new(socket),
            nonces: nonce::Nonces::new(),
            house_nonce: Mutex::new(None),
            held: Mutex::new(None),
            asked: Mutex::new(None),
            clients: Mutex::new(Clients::default()),
            dropped: Mutex::new(Dropped::default()),
            auth: auth.clone(),
            policy: config.policy,
            max_per_user: config.max_allocations_per_user,
            max_per_address: config.max_allocations_per_address,
            server: server_slot.clone(),
        };
        let relays = FilteringRelays {
            inner: RelayAddressGeneratorStatic {
                relay_address: config.public_ip,
                address: addr.ip().to_string(),
                net: Arc::new(Net::new(None)),
            },
            policy: config.policy,
            live: Arc::new(AtomicUsize::new(0)),
            max_total: config.max_allocations,
            bandwidth: config.bandwidth_per_allocation,
        };
        let server = Server::new(ServerConfig {
            conn_configs: vec![ConnConfig {
                conn: Arc::new(listener),
                relay_addr_generator: Box::new(relays),
            }],
            realm: REALM.to_owned(),
            auth_handler: auth,
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: None,
        })
        .await?;
        let server = Arc::new(server);
        let _ = server_slot.set(Arc::downgrade(&server));
        Ok(Relay { server, addr })
    }

    /// The UDP address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the relay and closes every allocation.
    pub async fn close(self) {
        if let Err(err) = self.server.close().await {
            tracing::warn!(%err, "closing the TURN server");
        }
    }
}

/// How long past their expiry credentials still serve an allocation made
/// while they were valid (refreshing it, permissions, channels), so that a
/// relayed conversation outlives them: browsers keep refreshing with the
/// credentials the allocation was made with. A new allocation needs
/// credentials that have not expired.
pub const EXPIRED_CREDENTIALS_GRACE: Duration = Duration::from_secs(12 * 3600);

/// Checks TURN REST usernames and derives the long-term key.
struct RestAuth {
    secret: Secret,
}

impl RestAuth {
    /// Whether `username` has not expired (a new allocation needs that).
    fn fresh(&self, username: &str) -> bool {
        self.secret.check(username, SystemTime::now()).is_ok()
    }
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        if realm != REALM {
            return Err(turn::Error::Other(format!("unknown realm {realm:?}")));
        }
        let now = SystemTime::now();
        let then = now.checked_sub(EXPIRED_CREDENTIALS_GRACE).unwrap_or(now);
        match self.secret.check(username, then) {
            Ok(password) => Ok(generate_auth_key(username, REALM, &password)),
            Err(err) => {
                tracing::debug!(%src_addr, %username, %err, "TURN credential refused");
                Err(turn::Error::Other(err.to_string()))
            }
        }
    }
}

/// An error response to request `m` with `code` and the attributes `more`.
fn error_response(m: &Message, code: ErrorCode, more: Vec<Box<dyn Setter>>) -> Option<Vec<u8>> {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(m.clone()),
        Box::new(MessageType::new(m.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: Vec::new(),
        }),
    ];
    setters.extend(more);
    let mut response = Message::new();
    response.build(&setters).ok()?;
    Some(response.raw)
}

/// Whether two client addresses count as one for the per-address quota:
/// the same IPv4 address, or the same IPv6 /64.
fn same_network(a: IpAddr, b: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (canonical(a), canonical(b)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a == b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a.to_bits() >> 64 == b.to_bits() >> 64,
        _ => false,
    }
}

/// Whether a datagram is well-formed ChannelData (RFC 8656, section 12.4): a
/// channel number in 0x4000–0x7FFF (RFC 5766 allows the upper half too) and a length that fits.
fn is_channel_data(datagram: &[u8]) -> bool {
    let [a, b, c, d, rest @ ..] = datagram else {
        return false;
    };
    let channel = u16::from_be_bytes([*a, *b]);
    let len = usize::from(u16::from_be_bytes([*c, *d]));
    (0x4000..=0x7FFF).contains(&channel) && len <= rest.len()
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

/// The server's listening socket, inspecting requests before the server.
struct FilteringListener {
    socket: Arc<UdpSocket>,
    /// Stateless nonces, for every client.
    nonces: nonce::Nonces,
    /// The nonce the crate issued, and when, which every authenticated
    /// request is given before it reaches the crate.
    house_nonce: Mutex<Option<(String, Instant)>>,
    /// A datagram held back while the crate is asked for a fresh nonce.
    held: Mutex<Option<(Vec<u8>, SocketAddr)>>,
    /// When the crate was last asked for one (at most once a second).
    asked: Mutex<Option<Instant>>,
    /// Client addresses known to hold an allocation (or to have sent an
    /// authenticated request): only their ChannelData and Send
    /// indications go to the crate. Refreshed from the crate at most once a
    /// second, when a datagram comes from an address not in it.
    clients: Mutex<Clients>,
    /// Datagrams dropped as malformed or unexpected, for the log.
    dropped: Mutex<Dropped>,
    auth: Arc<RestAuth>,
    policy: PeerPolicy,
    max_per_user: usize,
    max_per_address: usize,
    server: Arc<OnceLock<Weak<Server>>>,
}

/// Client addresses with allocations, as last read from the crate.
#[derive(Default)]
struct Clients {
    addrs: std::collections::HashSet<SocketAddr>,
    read_at: Option<Instant>,
}

/// Malformed or unexpected datagrams dropped, logged at most once a minute.
#[derive(Default)]
struct Dropped {
    count: u64,
    logged_at: Option<Instant>,
}

/// How often dropped datagrams are logged, at most.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// What becomes of a datagram that arrived.
enum Verdict {
    /// The crate handles it as it is.
    Pass,
    /// The crate handles this instead (the request with the crate's nonce).
    Rewritten(Vec<u8>),
    /// Answered here, or dropped.
    Swallow,
}

/// Where the requests that ask the crate for a nonce seem to come from
/// (TEST-NET-1: no client has it); what the crate answers there is dropped.
const ASK_NONCE_FROM: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)), 9);

/// Asks the crate for a nonce of its own once the one in use is this old
/// (just past the crate's nonce lifetime, one hour, so that it drops the
/// old one as it hands out the new).
const HOUSE_NONCE_RENEWAL: Duration = Duration::from_secs(3601);

/// Whether a request of this method must be authenticated (the crate
/// answers the others without credentials).
fn authenticated_method(method: stun::message::Method) -> bool {
    method == METHOD_ALLOCATE
        || method == METHOD_REFRESH
        || method == METHOD_CREATE_PERMISSION
        || method == METHOD_CHANNEL_BIND
}

impl FilteringListener {
    /// The username and key of a request with valid MESSAGE-INTEGRITY.
    fn authenticate(&self, m: &Message, src: SocketAddr) -> Option<(String, Vec<u8>)> {
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            return None;
        }
        let mut user = TextAttribute::new(ATTR_USERNAME, String::new());
        let mut realm = TextAttribute::new(ATTR_REALM, String::new());
        user.get_from(m).ok()?;
        realm.get_from(m).ok()?;
        let key = self.auth.auth_handle(&user.text, &realm.text, src).ok()?;
        MessageIntegrity(key.clone()).check(&mut m.clone()).ok()?;
        Some((user.text, key))
    }

    /// Refuses an authenticated request, signing the answer with `key`.
    async fn reply_error(&self, m: &Message, code: ErrorCode, key: Vec<u8>, to: SocketAddr) {
        let response = error_response(m, code, vec![Box::new(MessageIntegrity(key))]);
        if let Some(raw) = response {
            let _ = self.socket.send_to(&raw, to).await;
        }
    }

    /// Answers a request with `401 Unauthorized` or `438 Stale Nonce` and a
    /// fresh stateless nonce, storing nothing.
    async fn challenge(&self, m: &Message, code: ErrorCode, to: SocketAddr) {
        let nonce = self.nonces.issue(to.ip(), SystemTime::now());
        let response = error_response(
            m,
            code,
            vec![
                Box::new(TextAttribute::new(ATTR_NONCE, nonce)),
                Box::new(TextAttribute::new(ATTR_REALM, REALM.to_owned())),
            ],
        );
        if let Some(raw) = response {
            let _ = self.socket.send_to(&raw, to).await;
        }
    }

    /// The request `m` with the crate's nonce in place of the client's,
    /// signed again with `key`; `None` while the crate has issued none (the
    /// request then goes as it is, and the crate's `438` carries one).
    fn with_house_nonce(&self, m: &Message, key: Vec<u8>) -> Option<Vec<u8>> {
        let house = self
            .house_nonce
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?
            .0;
        let mut out = Message::new();
        out.typ = m.typ;
        out.transaction_id = m.transaction_id;
        out.write_header();
        for attr in &m.attributes.0 {
            if attr.typ == ATTR_MESSAGE_INTEGRITY {
                break;
            }
            if attr.typ == ATTR_NONCE {
                out.add(ATTR_NONCE, house.as_bytes());
            } else {
                out.add(attr.typ, &attr.value);
            }
        }
        MessageIntegrity(key).add_to(&mut out).ok()?;
        if m.contains(ATTR_FINGERPRINT) {
            FINGERPRINT.add_to(&mut out).ok()?;
        }
        Some(out.raw)
    }

    /// A request that makes the crate issue a nonce (and forget the one in
    /// use, which it finds stale), when there is none or it is due for
    /// renewal.
    fn nonce_request(&self) -> Option<Vec<u8>> {
        let house = self
            .house_nonce
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let old = match house {
            Some((_, at)) if at.elapsed() < HOUSE_NONCE_RENEWAL => return None,
            Some((nonce, _)) => nonce,
            None => "none".to_owned(),
        };
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        if asked.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return None;
        }
        *asked = Some(Instant::now());
        drop(asked);
        let mut m = Message::new();
        m.typ = MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST);
        m.new_transaction_id().ok()?;
        m.write_header();
        m.add(ATTR_NONCE, old.as_bytes());
        // Any MESSAGE-INTEGRITY: the crate looks at the nonce first.
        m.add(ATTR_MESSAGE_INTEGRITY, &[0; 20]);
        Some(m.raw)
    }

    /// A datagram the crate sends: an error response carrying a nonce is a
    /// challenge, whose nonce becomes the one authenticated requests carry
    /// to the crate; the client gets a stateless one instead.
    fn rewrite_outgoing(&self, datagram: &[u8], target: SocketAddr) -> Option<Vec<u8>> {
        if !stun::message::is_message(datagram) {
            return None;
        }
        let mut m = Message::new();
        m.unmarshal_binary(datagram).ok()?;
        if m.typ.class != CLASS_ERROR_RESPONSE || m.contains(ATTR_MESSAGE_INTEGRITY) {
            return None;
        }
        let mut nonce = TextAttribute::new(ATTR_NONCE, String::new());
        nonce.get_from(&m).ok()?;
        *self.house_nonce.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((nonce.text, Instant::now()));
        let fresh = self.nonces.issue(target.ip(), SystemTime::now());
        let mut out = Message::new();
        out.typ = m.typ;
        out.transaction_id = m.transaction_id;
        out.write_header();
        for attr in &m.attributes.0 {
            if attr.typ == ATTR_NONCE {
                out.add(ATTR_NONCE, fresh.as_bytes());
            } else {
                out.add(attr.typ, &attr.value);
            }
        }
        Some(out.raw)
    }

    /// Counts a datagram dropped without an answer; logs how many, once a
    /// minute at most (a flood of garbage writes no line per datagram).
    fn drop_quietly(&self, src: SocketAddr, why: &'static str) -> Verdict {
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        dropped.count += 1;
        let due = dropped
            .logged_at
            .is_none_or(|at| at.elapsed() >= DROP_LOG_EVERY);
        if due {
            tracing::info!(
                count = dropped.count,
                last_from = %src,
                last_reason = why,
                "TURN: dropped malformed or unexpected datagrams"
            );
            dropped.count = 0;
            dropped.logged_at = Some(Instant::now());
        }
        Verdict::Swallow
    }

    /// Whether `src` holds an allocation (or authenticated lately).
    async fn is_client(&self, src: SocketAddr) -> bool {
        {
            let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            if clients.addrs.contains(&src) {
                return true;
            }
            if clients
                .read_at
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
            {
                return false;
            }
        }
        let Some(server) = self.server.get().and_then(Weak::upgrade) else {
            return false;
        };
        let live = server.get_allocations_info(None).await.unwrap_or_default();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.addrs = live.values().map(|a| a.five_tuple.src_addr).collect();
        clients.read_at = Some(Instant::now());
        clients.addrs.contains(&src)
    }

    fn authenticated_from(&self, src: SocketAddr) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .addrs
            .insert(src);
    }

    /// Decides what becomes of a datagram before the crate sees it.
    async fn intercept(&self, datagram: &[u8], src: SocketAddr) -> Verdict {
        if !stun::message::is_message(datagram) {
            // ChannelData (channels exist only to allowed peers), from a
            // client with an allocation; anything else is garbage.
            if !is_channel_data(datagram) {
                return self.drop_quietly(src, "neither STUN nor ChannelData");
            }
            if !self.is_client(src).await {
                return self.drop_quietly(src, "ChannelData without an allocation");
            }
            return Verdict::Pass;
        }
        let mut m = Message::new();
        if m.unmarshal_binary(datagram).is_err() {
            return self.drop_quietly(src, "malformed STUN");
        }
        let (method, class) = (m.typ.method, m.typ.class);
        if method == METHOD_SEND && class == CLASS_INDICATION {
            if !self.is_client(src).await {
                return self.drop_quietly(src, "Send without an allocation");
            }
            let refused = peer_addresses(&m)
                .iter()
                .any(|p| !self.policy.permits(p.ip()));
            return if refused {
                Verdict::Swallow
            } else {
                Verdict::Pass
            };
        }
        if class != CLASS_REQUEST {
            return self.drop_quietly(src, "a STUN response or indication");
        }
        if method == stun::message::METHOD_BINDING {
            return Verdict::Pass;
        }
        if !authenticated_method(method) {
            return self.drop_quietly(src, "an unknown STUN method");
        }
        // Authentication, with nonces that cost nothing to hand out.
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            self.challenge(&m, CODE_UNAUTHORIZED, src).await;
            return Verdict::Swallow;
        }
        let mut nonce = TextAttribute::new(ATTR_NONCE, String::new());
        if nonce.get_from(&m).is_err()
            || !self.nonces.check(&nonce.text, src.ip(), SystemTime::now())
        {
            self.challenge(&m, CODE_STALE_NONCE, src).await;
            return Verdict::Swallow;
        }
        let Some((user, key)) = self.authenticate(&m, src) else {
            self.challenge(&m, CODE_UNAUTHORIZED, src).await;
            return Verdict::Swallow;
        };
        self.authenticated_from(src);
        if method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND {
            let refused = peer_addresses(&m)
                .into_iter()
                .find(|p| !self.policy.permits(p.ip()));
            if let Some(peer) = refused {
                tracing::info!(%user, %peer, "TURN: refused relaying to a non-public address");
                self.reply_error(&m, CODE_FORBIDDEN, key, src).await;
                return Verdict::Swallow;
            }
        }
        if method == METHOD_ALLOCATE {
            if !self.auth.fresh(&user) {
                tracing::debug!(%user, %src, "TURN: allocation with expired credentials refused");
                self.challenge(&m, CODE_UNAUTHORIZED, src).await;
                return Verdict::Swallow;
            }
            let Some(server) = self.server.get().and_then(Weak::upgrade) else {
                return Verdict::Swallow;
            };
            let live = server.get_allocations_info(None).await.unwrap_or_default();
            // A retransmitted Allocate comes from the same address and port.
            let others = || live.values().filter(|a| a.five_tuple.src_addr != src);
            let by_user = others().filter(|a| a.username == user).count();
            let by_address = others()
                .filter(|a| same_network(a.five_tuple.src_addr.ip(), src.ip()))
                .count();
            let over = if self.max_per_user > 0 && by_user >= self.max_per_user {
                Some(("user", by_user))
            } else if self.max_per_address > 0 && by_address >= self.max_per_address {
                Some(("address", by_address))
            } else {
                None
            };
            if let Some((whose, held)) = over {
                tracing::info!(%user, %src, whose, held, "TURN: allocation quota reached");
                self.reply_error(&m, CODE_ALLOC_QUOTA_REACHED, key, src)
                    .await;
                return Verdict::Swallow;
            }
        }
        match self.with_house_nonce(&m, key) {
            Some(rewritten) => Verdict::Rewritten(rewritten),
            None => Verdict::Pass,
        }
    }
}

#[async_trait]
impl Conn for FilteringListener {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Conn::connect(&*self.socket, addr).await
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Conn::recv(&*self.socket, buf).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
            let (n, src) = match held {
                Some((datagram, src)) => {
                    buf[..datagram.len()].copy_from_slice(&datagram);
                    (datagram.len(), src)
                }
                None => self.socket.recv_from(buf).await?,
            };
            if let Some(ask) = self.nonce_request() {
                // The crate answers this first; the datagram waits.
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((buf[..n].to_vec(), src));
                buf[..ask.len()].copy_from_slice(&ask);
                return Ok((ask.len(), ASK_NONCE_FROM));
            }
            match self.intercept(&buf[..n], src).await {
                Verdict::Pass => return Ok((n, src)),
                Verdict::Rewritten(datagram) if datagram.len() <= buf.len() => {
                    buf[..datagram.len()].copy_from_slice(&datagram);
                    return Ok((datagram.len(), src));
                }
                Verdict::Rewritten(_) | Verdict::Swallow => {}
            }
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Conn::send(&*self.socket, buf).await
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if let Some(rewritten) = self.rewrite_outgoing(buf, target) {
            if target == ASK_NONCE_FROM {
                return Ok(buf.len());
            }
            self.socket.send_to(&rewritten, target).await?;
            return Ok(buf.len());
        }
        Ok(self.socket.send_to(buf, target).await?)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
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
            return Err(turn::Error::Other("allocation quota reached".into()));
        }
        let guard = LiveGuard(self.live.clone());
        let (conn, addr) = self.inner.allocate_conn(use_ipv4, requested_port).await?;
        let wrapped = FilteredRelayConn {
            inner: conn,
            policy: self.policy,
            budget: Mutex::new(Budget::new(self.bandwidth)),
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
    _live: LiveGuard,
}

impl FilteredRelayConn {
    fn spend(&self, bytes: usize) -> bool {
        self.budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(bytes, Instant::now())
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
        self.inner.send_to(buf, target).await
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

#[cfg(test)]
mod auth_tests {
    use super::*;

    #[test]
    fn expired_credentials_serve_existing_allocations_for_a_while_but_not_new_ones() {
        let secret = Secret::random();
        let auth = RestAuth {
            secret: secret.clone(),
        };
        let src: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        let now = SystemTime::now();
        let (expired, _) = secret.issue("alice", Duration::ZERO, now - Duration::from_secs(3600));
        assert!(auth.auth_handle(&expired, REALM, src).is_ok());
        assert!(!auth.fresh(&expired));
        let (long_gone, _) = secret.issue(
            "alice",
            Duration::ZERO,
            now - EXPIRED_CREDENTIALS_GRACE - Duration::from_secs(60),
        );
        assert!(auth.auth_handle(&long_gone, REALM, src).is_err());
        let (valid, _) = secret.issue("alice", Duration::from_secs(600), now);
        assert!(auth.fresh(&valid));
    }

    #[test]
    fn addresses_count_by_ipv4_address_and_ipv6_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_network(ip("203.0.113.1"), ip("::ffff:203.0.113.1")));
        assert!(!same_network(ip("203.0.113.1"), ip("203.0.113.2")));
        assert!(same_network(
            ip("2001:db8:0:1::1"),
            ip("2001:db8:0:1:ffff::2")
        ));
        assert!(!same_network(ip("2001:db8:0:1::1"), ip("2001:db8:0:2::1")));
    }
}
