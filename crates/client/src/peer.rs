//! One WebRTC connection to one other member, with webrtc-rs: perfect
//! negotiation, trickle ICE with candidates buffered until the remote
//! description is set, and one reliable, ordered data channel labelled
//! `chat`, opened in-band by the side that starts the connection. It knows
//! both DTLS fingerprints, for the hello: its own certificate's (the link
//! makes its certificate itself) and the other side's, from the description
//! it applied; a description whose fingerprint lines break the strict rule
//! of docs/protocol.md, or name another fingerprint than the first one
//! applied, is refused and not applied. The same
//! behaviour as the web client's `peer.js` (see docs/protocol.md). Which
//! link is current, and when one is started, repaired or given up, is the
//! mesh's to decide ([`peerchat_mesh`]): a link only reports what happens
//! to it.
//!
//! Each link runs one task that owns the peer connection and handles, one at
//! a time, everything that happens to it: signals from the other side,
//! webrtc-rs callbacks (forwarded, never handled inside the callback), data
//! channel events and commands from the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use peerchat_e2e::Fingerprint;
use peerchat_protocol::signaling::IceServer;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceCandidateType, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSdpType,
    RTCSessionDescription, RTCStatsReportEntry, SettingEngineBuilder, StatsSelector,
};

/// The label of the one data channel between two members.
pub const CHANNEL_LABEL: &str = "chat";

/// The label of a transfer channel (docs/protocol.md, "Transfer channels").
pub const FILE_LABEL: &str = "file";

/// How long draining waits between looks at the send buffer.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// How long closing a link waits for what it was given to leave.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// Candidates kept while waiting for the remote description.
const MAX_PENDING_CANDIDATES: usize = 256;

/// Bytes a data channel may hold sent but not yet acknowledged; more waits
/// (in the channel's sender task) until the other side acknowledges some.
/// A burst without a bound can overflow the receiving socket's buffer
/// (about 212 KiB of kernel memory, some 100 KiB of datagrams), and a lost
/// datagram costs SCTP's retransmission timer, at least a second.
const SEND_BUFFER_LIMIT: usize = 64 * 1024;

/// A signal payload (docs/protocol.md, "Peer connections").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalPayload {
    /// The connection id.
    pub sid: String,
    /// An offer or answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<RTCSessionDescription>,
    /// An ICE candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<RTCIceCandidateInit>,
}

pub use peerchat_mesh::{LinkState, Transport};

/// What a link reports to the engine.
#[derive(Debug)]
pub enum LinkEvent {
    /// Send this payload to the other member through the server.
    Signal(Box<SignalPayload>),
    /// The connection's transport changed state.
    Transport(Transport),
    /// The data channel opened: messages can be sent. With the
    /// connection's DTLS fingerprints, for the hello.
    Open {
        /// Our certificate's.
        local: Fingerprint,
        /// The other side's, from the description applied.
        remote: Fingerprint,
    },
    /// A text message arrived on the data channel.
    Message(String),
    /// The other side opened a transfer channel (label `file`) on this
    /// connection: it fetches a file from us.
    FileChannel(Channel),
    /// The link is gone for good.
    Closed,
}

/// A data channel of a connection, beside its `chat` channel.
#[derive(Clone)]
pub struct Channel(pub Arc<dyn DataChannel>);

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Channel")
    }
}

/// The route of a connection and its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkStats {
    /// The local candidate type of the selected pair (host, srflx, prflx,
    /// relay).
    pub local: String,
    /// The remote candidate type.
    pub remote: String,
    /// The current round-trip time, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Bytes sent on the selected pair.
    pub bytes_sent: u64,
    /// Bytes received on the selected pair.
    pub bytes_received: u64,
}

impl LinkStats {
    /// Whether the connection goes through a TURN relay.
    pub fn relayed(&self) -> bool {
        self.local == "relay" || self.remote == "relay"
    }
}

/// Settings of one link.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Our peer id.
    pub self_id: String,
    /// Their peer id.
    pub peer_id: String,
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// The connection id.
    pub sid: String,
    /// We start the connection: create the channel and offer (else we
    /// answer their offer).
    pub initiator: bool,
    /// Use, and reveal, relay candidates only.
    pub relay_only: bool,
    /// Resolve other peers' `.local` (mDNS) host candidates; needs
    /// multicast.
    pub mdns: bool,
    /// Send candidates one by one as they are found (trickle ICE). When
    /// false, wait until gathering is complete and send each offer or
    /// answer once, with every candidate inside it: for signaling by copy
    /// and paste, or through the mailbox.
    pub trickle: bool,
}

/// Why a link could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("creating the peer connection: {0}")]
pub struct LinkError(#[from] webrtc::error::Error);

/// A fresh DTLS certificate for one connection, and its fingerprint.
fn certificate() -> Result<(RTCCertificate, Fingerprint), webrtc::error::Error> {
    let other = |e: &dyn std::fmt::Display| webrtc::error::Error::Other(e.to_string());
    let provider = rtc::crypto::default_provider().map_err(|e| other(&e))?;
    let params = CertificateParams::new(vec![crate::random_id()]).map_err(|e| other(&e))?;
    let cert = RTCCertificate::generate(
        provider.crypto(),
        rtc::crypto::SignatureScheme::EcdsaP256Sha256,
        params,
    )?;
    let fingerprints = cert.get_fingerprints(provider.crypto())?;
    let first = fingerprints
        .first()
        .ok_or_else(|| other(&"the certificate has no fingerprint"))?;
    let fingerprint = Fingerprint::new(&first.algorithm, &first.value).map_err(|e| other(&e))?;
    Ok((cert, fingerprint))
}

/// A handle to a running link. Dropping it closes the link.
#[derive(Debug)]
pub struct Link {
    /// The connection id.
    pub sid: String,
    initiator: bool,
    commands: mpsc::UnboundedSender<Command>,
    open: Arc<AtomicBool>,
    closed: Option<oneshot::Receiver<()>>,
}

enum Command {
    OpenFile(oneshot::Sender<Result<Arc<dyn DataChannel>, webrtc::error::Error>>),
    Remote(Box<SignalPayload>),
    Send(String),
    Drain(oneshot::Sender<()>),
    Stats(oneshot::Sender<Option<LinkStats>>),
    Close,
    RestartIce,
    NegotiationNeeded,
    LocalCandidate(RTCIceCandidateInit, RTCIceCandidateType),
    Channel(Arc<dyn DataChannel>),
    ChannelEvent(DataChannelEvent),
    ChannelGone,
    ConnectionState(RTCPeerConnectionState),
    GatheringComplete,
}

impl Link {
    /// Creates the peer connection and starts the link's task. Its events
    /// go to `events`, tagged with `tag`.
    pub async fn start(
        options: LinkOptions,
        tag: u64,
        events: mpsc::UnboundedSender<(u64, LinkEvent)>,
    ) -> Result<Link, LinkError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (cert, local_fingerprint) = certificate()?;
        let pc = build_peer_connection(&options, cert, tx.clone()).await?;
        let initiator = options.initiator;
        let sid = options.sid.clone();
        let open = Arc::new(AtomicBool::new(false));
        let (closed_tx, closed) = oneshot::channel();
        let mut task = LinkTask {
            pc,
            dc: None,
            sid: sid.clone(),
            initiator,
            polite: options.self_id > options.peer_id,
            relay_only: options.relay_only,
            ignore_offer: false,
            renegotiate: false,
            trickle: options.trickle,
            awaiting_gathering: false,
            gathered: Vec::new(),
            pending: Vec::new(),
            local_fingerprint,
            remote_fingerprint: None,
            sender: None,
            queued: Arc::new(AtomicUsize::new(0)),
            open: open.clone(),
            commands: tx.clone(),
            emit: Box::new(move |event| {
                let _ = events.send((tag, event));
            }),
        };
        if initiator {
            let init = RTCDataChannelInit {
                ordered: true,
                ..RTCDataChannelInit::default()
            };
            let dc = task
                .pc
                .create_data_channel(CHANNEL_LABEL, Some(init))
                .await?;
            task.use_channel(dc);
        }
        tokio::spawn(async move {
            task.run(rx).await;
            let _ = closed_tx.send(());
        });
        Ok(Link {
            sid,
            initiator,
            commands: tx,
            open,
            closed: Some(closed),
        })
    }

    /// Whether we started this connection (and sent its first offer).
    pub fn initiator(&self) -> bool {
        self.initiator
    }

    /// Whether the data channel is open.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Hands the link a signal from the other side (same `sid`).
    pub fn signal(&self, payload: SignalPayload) {
        let _ = self.commands.send(Command::Remote(Box::new(payload)));
    }

    /// Two links facing each other in this process, their signals handed
    /// across directly (no server), once both are open: for tests. `first`
    /// offers. The events that follow come on the
    /// receiver, tagged 1 (`first`'s) and 2 (`second`'s). It waits for as
    /// long as they take to open: bound it with a timeout.
    pub async fn pair(
        first: LinkOptions,
        second: LinkOptions,
    ) -> Result<(Link, Link, mpsc::UnboundedReceiver<(u64, LinkEvent)>), LinkError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a = Link::start(first, 1, tx.clone()).await?;
        let b = Link::start(second, 2, tx).await?;
        let mut open = [false, false];
        while open != [true, true] {
            let Some((tag, event)) = rx.recv().await else {
                return Err(LinkError(webrtc::error::Error::ErrConnectionClosed));
            };
            match event {
                LinkEvent::Signal(payload) if tag == 1 => b.signal(*payload),
                LinkEvent::Signal(payload) => a.signal(*payload),
                LinkEvent::Open { .. } => open[tag as usize - 1] = true,
                _ => {}
            }
        }
        Ok((a, b, rx))
    }

    /// Restarts ICE: new credentials and candidates, on the same
    /// connection.
    pub fn restart_ice(&self) {
        let _ = self.commands.send(Command::RestartIce);
    }

    /// Sends a text message; call only while [`Link::is_open`].
    pub fn send(&self, text: String) {
        let _ = self.commands.send(Command::Send(text));
    }

    /// Closes the connection (telling the other side) and waits, briefly,
    /// until it is closed.
    pub async fn close(mut self) {
        let _ = self.commands.send(Command::Close);
        if let Some(closed) = self.closed.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
        }
    }

    /// A handle for waiting on the link without holding it.
    pub fn handle(&self) -> LinkHandle {
        LinkHandle {
            commands: self.commands.clone(),
        }
    }
}

/// Asks a link about its sending and its route; cheap to clone.
#[derive(Clone)]
pub struct LinkHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkHandle")
    }
}

impl LinkHandle {
    /// Opens a transfer channel (label `file`, reliable and ordered) on
    /// this connection, to fetch a file from the other side.
    pub async fn open_file_channel(&self) -> Result<Arc<dyn DataChannel>, webrtc::error::Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::OpenFile(tx))
            .map_err(|_| webrtc::error::Error::ErrDataChannelClosed)?;
        rx.await
            .map_err(|_| webrtc::error::Error::ErrDataChannelClosed)?
    }

    /// Resolves once everything sent so far has left the send buffer (or
    /// the link is gone).
    pub async fn drain(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Drain(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The selected route and its figures, once connected.
    pub async fn stats(&self) -> Option<LinkStats> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Stats(tx)).ok()?;
        rx.await.ok().flatten()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close);
    }
}

async fn build_peer_connection(
    options: &LinkOptions,
    certificate: RTCCertificate,
    commands: mpsc::UnboundedSender<Command>,
) -> Result<Arc<dyn PeerConnection>, LinkError> {
    let servers: Vec<RTCIceServer> = options
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let policy = if options.relay_only {
        RTCIceTransportPolicy::Relay
    } else {
        RTCIceTransportPolicy::All
    };
    let mut mdns = options.mdns;
    loop {
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(servers.clone())
            .with_ice_transport_policy(policy)
            .with_certificates(vec![certificate.clone()])
            .build();
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(if mdns {
                MulticastDnsMode::QueryOnly
            } else {
                MulticastDnsMode::Disabled
            })
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let built = PeerConnectionBuilder::new()
            .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
            .with_configuration(config)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Callbacks {
                commands: commands.clone(),
            }))
            // The wildcard covers every interface but loopback; loopback is
            // added for peers on the same machine.
            .with_udp_addrs(vec!["0.0.0.0:0", "127.0.0.1:0"])
            .build()
            .await;
        match built {
            Ok(pc) => return Ok(Arc::new(pc)),
            Err(err) if mdns => {
                tracing::warn!(%err, "mDNS is unavailable here (no multicast?); continuing without it");
                mdns = false;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// `sdp` with each of `candidates` (`a=candidate:…` lines) that it lacks
/// added to its media section, and `a=end-of-candidates`: a description
/// that needs no trickled candidates.
pub fn with_candidates(sdp: &str, candidates: &[String]) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    // Lines are compared without a trailing CR: `lines()` takes one off
    // only before an LF, and a stray CR at the very end hid an
    // `a=end-of-candidates`, so the description ended up with two (found
    // by the fuzzer; its input is in the `sdp_filters` corpus).
    let mut lines: Vec<&str> = sdp
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && *l != "a=end-of-candidates")
        .collect();
    for c in candidates {
        let c = c.trim_end_matches('\r');
        if !lines.contains(&c) {
            lines.push(c);
        }
    }
    lines.push("a=end-of-candidates");
    let mut out = lines.join(eol);
    out.push_str(eol);
    out
}

/// Whether an ICE candidate (`candidate:FOUNDATION COMPONENT PROTOCOL
/// PRIORITY ADDRESS PORT typ …`) names an address another peer could send
/// to: not the unspecified address (`0.0.0.0`, `::`). Names (mDNS) pass.
fn reachable(candidate: &str) -> bool {
    let address = candidate.split_whitespace().nth(4);
    !address
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_unspecified())
}

/// `sdp` as it may leave this client: without candidates naming an
/// unreachable address, and with `relay_only` without any candidate naming
/// one of our own addresses (only relay candidates are left). Every other
/// line stays as it was.
pub fn outgoing_sdp(sdp: &str, relay_only: bool) -> String {
    sdp.split_inclusive('\n')
        .filter(|l| match l.strip_prefix("a=") {
            Some(c) if c.starts_with("candidate:") => {
                reachable(c) && (!relay_only || c.contains(" typ relay"))
            }
            _ => true,
        })
        .collect()
}

/// webrtc-rs callbacks: forwarded to the link's task at once.
struct Callbacks {
    commands: mpsc::UnboundedSender<Command>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Callbacks {
    async fn on_negotiation_needed(&self) {
        let _ = self.commands.send(Command::NegotiationNeeded);
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self
                .commands
                .send(Command::LocalCandidate(init, event.candidate.typ));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.commands.send(Command::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.commands.send(Command::ConnectionState(state));
    }

    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.commands.send(Command::Channel(dc));
    }
}

struct LinkTask {
    pc: Arc<dyn PeerConnection>,
    dc: Option<Arc<dyn DataChannel>>,
    sid: String,
    initiator: bool,
    polite: bool,
    relay_only: bool,
    ignore_offer: bool,
    /// Negotiation was needed while an exchange was under way.
    renegotiate: bool,
    /// Trickle ICE; else descriptions wait for gathering to complete.
    trickle: bool,
    /// Without trickle: a description is waiting for gathering.
    awaiting_gathering: bool,
    /// Without trickle: our candidates so far, as SDP attribute lines.
    gathered: Vec<String>,
    pending: Vec<RTCIceCandidateInit>,
    /// Our certificate's fingerprint.
    local_fingerprint: Fingerprint,
    /// The other side's, from the first description applied.
    remote_fingerprint: Option<Fingerprint>,
    /// Text for the channel, to its sender task, which hands it over as the
    /// channel's send buffer has room (so that this task never waits).
    sender: Option<mpsc::UnboundedSender<String>>,
    /// Text given to the sender task and not yet handed to the channel.
    queued: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
    commands: mpsc::UnboundedSender<Command>,
    emit: Box<dyn Fn(LinkEvent) + Send + Sync>,
}

impl LinkTask {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = rx.recv().await {
            match command {
                Command::Close => {
                    // What we were given before the close leaves first
                    // (our hello, before a link whose hello failed is
                    // dropped), unless the other side stops taking it.
                    let _ = tokio::time::timeout(CLOSE_DRAIN, self.drain()).await;
                    break;
                }
                Command::ChannelGone => break,
                Command::RestartIce => {
                    if let Err(err) = self.pc.restart_ice().await {
                        tracing::warn!(%err, "ICE restart failed");
                    }
                    self.negotiate().await;
                }
                Command::Remote(payload) => {
                    if let Err(err) = self.apply(*payload).await {
                        tracing::warn!(%err, "could not apply a signal");
                    }
                }
                Command::NegotiationNeeded => self.negotiate().await,
                Command::GatheringComplete => {
                    if std::mem::take(&mut self.awaiting_gathering) {
                        let local = self.pc.local_description().await;
                        self.signal(local, None);
                    }
                }
                Command::LocalCandidate(init, kind) => self.local_candidate(init, kind).await,
                Command::Channel(dc) => {
                    let label = dc.label().await.unwrap_or_default();
                    if label == CHANNEL_LABEL && self.dc.is_none() {
                        self.use_channel(dc);
                    } else if label == FILE_LABEL {
                        (self.emit)(LinkEvent::FileChannel(Channel(dc)));
                    }
                }
                Command::OpenFile(reply) => {
                    let init = RTCDataChannelInit {
                        ordered: true,
                        ..RTCDataChannelInit::default()
                    };
                    let _ = reply.send(self.pc.create_data_channel(FILE_LABEL, Some(init)).await);
                }
                Command::ChannelEvent(event) => match event {
                    // (Telling the engine is the guard's work; a channel
                    // already open falls through to the last arm.)
                    DataChannelEvent::OnOpen if !self.opened() => break,
                    DataChannelEvent::OnMessage(message) if message.is_string => {
                        // A message proves the channel open (RFC 8832,
                        // section 6: the opening side may send before the
                        // acknowledgement). webrtc-rs sometimes reports the
                        // other side's first message on a channel we opened
                        // and never its open: the channel is open all the
                        // same, and our side of it must know so first.
                        if !self.opened() {
                            break;
                        }
                        match String::from_utf8(message.data.to_vec()) {
                            Ok(text) => (self.emit)(LinkEvent::Message(text)),
                            Err(_) => tracing::warn!("dropping a text message that is not UTF-8"),
                        }
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                },
                Command::ConnectionState(state) => match state {
                    RTCPeerConnectionState::Connected => {
                        (self.emit)(LinkEvent::Transport(Transport::Connected));
                    }
                    RTCPeerConnectionState::Disconnected => {
                        (self.emit)(LinkEvent::Transport(Transport::Disconnected));
                    }
                    RTCPeerConnectionState::Failed => {
                        (self.emit)(LinkEvent::Transport(Transport::Failed));
                    }
                    RTCPeerConnectionState::Closed => break,
                    _ => {}
                },
                Command::Send(text) => {
                    if let Some(sender) = &self.sender {
                        self.queued.fetch_add(1, Ordering::SeqCst);
                        if sender.send(text).is_err() {
                            self.queued.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                }
                Command::Drain(done) => {
                    self.drain().await;
                    let _ = done.send(());
                }
                Command::Stats(reply) => {
                    let _ = reply.send(self.stats().await);
                }
            }
        }
        self.open.store(false, Ordering::SeqCst);
        if let Some(dc) = &self.dc {
            let _ = dc.close().await;
        }
        let _ = self.pc.close().await;
        (self.emit)(LinkEvent::Closed);
    }

    /// The channel is open (once: later calls change nothing): tells the
    /// engine, with both fingerprints. False if no description was applied
    /// yet, which cannot happen on a channel DTLS opened: the link ends.
    fn opened(&mut self) -> bool {
        if self.open.load(Ordering::SeqCst) {
            return true;
        }
        // A channel opens only once DTLS checked the other side's
        // certificate against the description applied, so its fingerprint
        // is known.
        let Some(remote) = self.remote_fingerprint.clone() else {
            tracing::warn!("a data channel opened before any description");
            return false;
        };
        self.open.store(true, Ordering::SeqCst);
        (self.emit)(LinkEvent::Open {
            local: self.local_fingerprint.clone(),
            remote,
        });
        true
    }

    fn use_channel(&mut self, dc: Arc<dyn DataChannel>) {
        self.dc = Some(dc.clone());
        // Sends wait for room in the channel's send buffer here, in order.
        let (sender, mut texts) = mpsc::unbounded_channel::<String>();
        self.sender = Some(sender);
        let queued = self.queued.clone();
        let channel = dc.clone();
        tokio::spawn(async move {
            while let Some(text) = texts.recv().await {
                let sent = channel.send_text(&text).await;
                queued.fetch_sub(1, Ordering::SeqCst);
                match sent {
                    Ok(()) => {}
                    Err(webrtc::error::Error::ErrDataChannelClosed) => {
                        // What the closing channel did not take goes again
                        // over the next connection (history sync).
                        texts.close();
                        while texts.try_recv().is_ok() {
                            queued.fetch_sub(1, Ordering::SeqCst);
                        }
                        return;
                    }
                    Err(err) => tracing::warn!(%err, "sending on the data channel failed"),
                }
            }
        });
        let commands = self.commands.clone();
        tokio::spawn(async move {
            while let Some(event) = dc.poll().await {
                if commands.send(Command::ChannelEvent(event)).is_err() {
                    return;
                }
            }
            let _ = commands.send(Command::ChannelGone);
        });
    }

    fn signal(
        &self,
        mut description: Option<RTCSessionDescription>,
        candidate: Option<RTCIceCandidateInit>,
    ) {
        if let Some(d) = &mut description {
            if !self.trickle {
                d.sdp = with_candidates(&d.sdp, &self.gathered);
            }
            // Inside the SDP too: no candidate naming an unreachable
            // address, and in relay-only mode none naming our addresses.
            d.sdp = outgoing_sdp(&d.sdp, self.relay_only);
        }
        (self.emit)(LinkEvent::Signal(Box::new(SignalPayload {
            sid: self.sid.clone(),
            description,
            candidate,
        })));
    }

    /// A new local description: send it now (trickle), or once every
    /// candidate is known.
    fn described(&mut self, description: Option<RTCSessionDescription>) {
        if self.trickle {
            self.signal(description, None);
        } else {
            self.awaiting_gathering = true;
        }
    }

    async fn negotiate(&mut self) {
        // The other side answers before it ever offers on a connection.
        if !self.initiator && self.pc.remote_description().await.is_none() {
            return;
        }
        if self.pc.pending_local_description().await.is_some()
            || self.pc.pending_remote_description().await.is_some()
        {
            self.renegotiate = true;
            return;
        }
        let offered = async {
            let offer = self.pc.create_offer(None).await?;
            self.pc.set_local_description(offer).await?;
            Ok::<_, webrtc::error::Error>(self.pc.local_description().await)
        }
        .await;
        match offered {
            Ok(description) => self.described(description),
            Err(err) => tracing::warn!(%err, "could not make an offer"),
        }
    }

    async fn apply(&mut self, payload: SignalPayload) -> Result<(), webrtc::error::Error> {
        if let Some(description) = payload.description {
            // The hello binds one fingerprint: a description with any other,
            // or with lines that break the rule, is not applied.
            let fingerprint = Fingerprint::from_sdp(&description.sdp)
                .map_err(|e| webrtc::error::Error::Other(format!("refused description: {e}")))?;
            if self
                .remote_fingerprint
                .as_ref()
                .is_some_and(|known| *known != fingerprint)
            {
                return Err(webrtc::error::Error::Other(
                    "refused description: its DTLS fingerprint differs from the connection's"
                        .into(),
                ));
            }
            let is_offer = description.sdp_type == RTCSdpType::Offer;
            let collision = is_offer && self.pc.pending_local_description().await.is_some();
            self.ignore_offer = !self.polite && collision;
            if self.ignore_offer {
                return Ok(());
            }
            if collision {
                let mut rollback = RTCSessionDescription::default();
                rollback.sdp_type = RTCSdpType::Rollback;
                self.pc.set_local_description(rollback).await?;
            }
            self.pc.set_remote_description(description).await?;
            self.remote_fingerprint = Some(fingerprint);
            for candidate in std::mem::take(&mut self.pending) {
                self.add_candidate(candidate).await;
            }
            if is_offer {
                let answer = self.pc.create_answer(None).await?;
                self.pc.set_local_description(answer).await?;
                let local = self.pc.local_description().await;
                self.described(local);
            } else if std::mem::take(&mut self.renegotiate) {
                self.negotiate().await;
            }
        } else if let Some(candidate) = payload.candidate {
            if candidate.candidate.is_empty() {
                return Ok(());
            }
            if self.pc.remote_description().await.is_none() {
                if self.pending.len() < MAX_PENDING_CANDIDATES {
                    self.pending.push(candidate);
                }
            } else {
                self.add_candidate(candidate).await;
            }
        }
        Ok(())
    }

    async fn add_candidate(&self, candidate: RTCIceCandidateInit) {
        if let Err(err) = self.pc.add_ice_candidate(candidate).await {
            // Candidates of an offer we ignored on glare are expected to fail.
            if !self.ignore_offer {
                tracing::debug!(%err, "could not add an ICE candidate");
            }
        }
    }

    async fn local_candidate(&mut self, mut init: RTCIceCandidateInit, kind: RTCIceCandidateType) {
        if self.relay_only && kind != RTCIceCandidateType::Relay {
            return;
        }
        // Offer only addresses another peer can reach: a socket bound to
        // every interface (what webrtc-rs binds on a machine with no
        // interface but loopback) names the unspecified address.
        if !reachable(&init.candidate) {
            return;
        }
        if !self.trickle {
            self.gathered.push(format!("a={}", init.candidate));
            return;
        }
        // webrtc-rs leaves the media id and ICE username fragment empty;
        // take them from the local description.
        if let Some(local) = self.pc.local_description().await {
            let attribute = |name: &str| {
                local
                    .sdp
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            init.sdp_mid = attribute("a=mid:").or(Some("0".to_owned()));
            init.username_fragment = attribute("a=ice-ufrag:");
        } else {
            init.sdp_mid = Some("0".to_owned());
        }
        init.sdp_mline_index = Some(0);
        self.signal(None, Some(init));
    }

    async fn drain(&self) {
        let Some(dc) = &self.dc else { return };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.open.load(Ordering::SeqCst) && Instant::now() < deadline {
            match dc.outstanding_bytes().await {
                Ok(0) if self.queued.load(Ordering::SeqCst) == 0 => return,
                Err(_) => return,
                Ok(_) => tokio::time::sleep(DRAIN_POLL).await,
            }
        }
    }

    async fn stats(&self) -> Option<LinkStats> {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let transport = report.transport()?;
        let Some(RTCStatsReportEntry::IceCandidatePair(pair)) =
            report.get(&transport.selected_candidate_pair_id)
        else {
            return None;
        };
        // Pair entries name candidates by a suffix of their entries' ids.
        let kind = |id: &str| {
            report
                .iter()
                .find_map(|e| match e {
                    RTCStatsReportEntry::LocalCandidate(c)
                    | RTCStatsReportEntry::RemoteCandidate(c)
                        if e.id().ends_with(id) =>
                    {
                        Some(c.candidate_type.to_string())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "unknown".to_owned())
        };
        Some(LinkStats {
            local: kind(&pair.local_candidate_id),
            remote: kind(&pair.remote_candidate_id),
            rtt_ms: (pair.current_round_trip_time > 0.0)
                .then_some(pair.current_round_trip_time * 1000.0),
            bytes_sent: pair.bytes_sent,
            bytes_received: pair.bytes_received,
        })
    }
}
