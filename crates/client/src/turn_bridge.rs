//! TURN over TCP and TLS for webrtc-rs, which speaks TURN over UDP only.
//!
//! On a network that drops UDP, a relay is reached over TCP
//! (`turn:HOST:PORT?transport=tcp`) or TLS (`turns:HOST:PORT`); the relay
//! still relays to peers over UDP. For each such URL the engine runs a
//! bridge: a UDP socket on 127.0.0.1 that webrtc-rs is given instead
//! (`turn:127.0.0.1:PORT?transport=udp`, same credentials). Each local
//! socket that sends to it gets a TCP or TLS connection of its own to the
//! relay (TURN allocations belong to a client's transport address), its
//! datagrams written as the stream framing wants (ChannelData padded to 4
//! bytes), and the messages read back cut out of the stream
//! ([`peerchat_protocol::turn::frame_len`]) and sent to it as datagrams.
//! TURN authenticates every message itself, so the bridge reads nothing.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerchat_protocol::signaling::IceServer;
use peerchat_protocol::turn::frame_len;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Datagrams queued for one relay connection before more are dropped.
const QUEUE: usize = 256;

/// A connection that carries nothing for this long is closed (longer than a
/// TURN allocation's lifetime, which the client refreshes).
const IDLE: Duration = Duration::from_secs(15 * 60);

/// How long connecting to the relay may take.
const CONNECT: Duration = Duration::from_secs(10);

/// Where a bridge leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    host: String,
    port: u16,
    tls: bool,
}

/// A `turn:`/`turns:` URL that needs a bridge, and the parts of it.
fn stream_target(url: &str) -> Option<Target> {
    let (scheme, rest) = url.split_once(':')?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "turns" => true,
        "turn" => false,
        _ => return None,
    };
    let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
    let transport = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("transport="))
        .map(str::to_ascii_lowercase);
    match (tls, transport.as_deref()) {
        (false, Some("tcp")) | (true, None | Some("tcp")) => {}
        _ => return None,
    }
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => (host, port.parse().ok()?),
        _ => (address, if tls { 5349 } else { 3478 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(Target {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// The engine's bridges, one for each relay reached over TCP or TLS.
#[derive(Debug)]
pub(crate) struct TurnBridges {
    tls: Arc<rustls::ClientConfig>,
    running: Mutex<HashMap<Target, SocketAddr>>,
}

impl TurnBridges {
    pub(crate) fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            tls,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// `servers` with each TURN-over-TCP or TLS URL replaced by its
    /// bridge's local UDP URL (a bridge is started the first time).
    pub(crate) async fn rewrite(&self, servers: Vec<IceServer>) -> Vec<IceServer> {
        let mut out = Vec::with_capacity(servers.len());
        for mut server in servers {
            let mut urls = Vec::with_capacity(server.urls.len());
            for url in server.urls {
                match stream_target(&url) {
                    Some(target) => match self.bridge(target).await {
                        Some(local) => urls.push(format!("turn:{local}?transport=udp")),
                        None => urls.push(url),
                    },
                    None => urls.push(url),
                }
            }
            server.urls = urls;
            out.push(server);
        }
        out
    }

    async fn bridge(&self, target: Target) -> Option<SocketAddr> {
        if let Some(local) = self.lock().get(&target) {
            return Some(*local);
        }
        let socket = match UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await {
            Ok(socket) => socket,
            Err(err) => {
                tracing::warn!(%err, "cannot open a local socket for TURN over TCP");
                return None;
            }
        };
        let local = socket.local_addr().ok()?;
        tracing::debug!(?target, %local, "TURN bridge");
        tokio::spawn(run(Arc::new(socket), target.clone(), self.tls.clone()));
        self.lock().insert(target, local);
        Some(local)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Target, SocketAddr>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Streams = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// One bridge: datagrams from each local socket to its own connection.
async fn run(socket: Arc<UdpSocket>, target: Target, tls: Arc<rustls::ClientConfig>) {
    let streams: Streams = Arc::new(Mutex::new(HashMap::new()));
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let datagram = pad(&buf[..n]);
        let sender = {
            let mut map = streams.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(from)
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    tokio::spawn(connection(
                        socket.clone(),
                        from,
                        target.clone(),
                        tls.clone(),
                        rx,
                        streams.clone(),
                    ));
                    tx
                })
                .clone()
        };
        // A full queue drops the datagram, as a congested path would.
        let _ = sender.try_send(datagram);
    }
}

/// A datagram as the stream framing wants it: ChannelData padded to 4.
fn pad(datagram: &[u8]) -> Vec<u8> {
    let mut out = datagram.to_vec();
    if datagram.first().is_some_and(|b| b >> 6 == 0b01) {
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
    out
}

/// One local socket's connection to the relay, until either side ends it.
async fn connection(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    target: Target,
    tls: Arc<rustls::ClientConfig>,
    queue: mpsc::Receiver<Vec<u8>>,
    streams: Streams,
) {
    match connect(&target, tls).await {
        Ok(Stream::Tcp(stream)) => carry(stream, &socket, local, queue).await,
        Ok(Stream::Tls(stream)) => carry(*stream, &socket, local, queue).await,
        Err(err) => {
            tracing::debug!(%err, ?target, "TURN bridge: cannot reach the relay");
            // Let the next datagram try again, after a pause.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    streams
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&local);
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn connect(target: &Target, tls: Arc<rustls::ClientConfig>) -> std::io::Result<Stream> {
    let connecting = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
        let _ = tcp.set_nodelay(true);
        if !target.tls {
            return Ok(Stream::Tcp(tcp));
        }
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        Ok(Stream::Tls(Box::new(stream)))
    };
    tokio::time::timeout(CONNECT, connecting)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Carries datagrams both ways until the stream ends, or nothing passes
/// for [`IDLE`].
async fn carry<S>(
    stream: S,
    socket: &UdpSocket,
    local: SocketAddr,
    mut queue: mpsc::Receiver<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async {
        loop {
            match tokio::time::timeout(IDLE, queue.recv()).await {
                Ok(Some(datagram)) => {
                    if writer.write_all(&datagram).await.is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    };
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(len) = frame_len(&buf) {
                if buf.len() < len {
                    break;
                }
                let message: Vec<u8> = buf.drain(..len).collect();
                let _ = socket.send_to(&message, local).await;
            }
            if buf.len() >= 4 && frame_len(&buf).is_none() {
                return; // not TURN: give up on this connection
            }
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::select! {
        () = write => {}
        () = read => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_and_tls_turn_urls_need_a_bridge() {
        let t = |url| stream_target(url);
        assert_eq!(
            t("turn:10.0.0.1:3478?transport=tcp"),
            Some(Target {
                host: "10.0.0.1".into(),
                port: 3478,
                tls: false
            })
        );
        assert_eq!(
            t("turns:chat.example.org:5349?transport=tcp"),
            Some(Target {
                host: "chat.example.org".into(),
                port: 5349,
                tls: true
            })
        );
        assert_eq!(t("turns:chat.example.org").map(|t| t.port), Some(5349));
        assert_eq!(
            t("turn:[::1]:3478?transport=tcp").map(|t| t.host),
            Some("::1".into())
        );
        assert_eq!(t("turn:10.0.0.1:3478?transport=udp"), None);
        assert_eq!(t("turn:10.0.0.1:3478"), None);
        assert_eq!(t("stun:10.0.0.1:3478"), None);
    }

    #[test]
    fn channel_data_is_padded_and_stun_is_not_touched() {
        assert_eq!(
            pad(&[0x40, 0x00, 0x00, 0x01, 0xaa]),
            vec![0x40, 0, 0, 1, 0xaa, 0, 0, 0]
        );
        let stun = [0x00, 0x01, 0x00, 0x00];
        assert_eq!(pad(&stun), stun.to_vec());
    }
}
