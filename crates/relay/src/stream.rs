//! TURN over TCP and TLS (RFC 8656 §3.1: the client reaches the server over
//! a stream, the relay still speaks UDP to peers), as a thin adapter in
//! front of the `turn` crate's server, which only reads datagrams.
//!
//! A [`StreamListener`] accepts connections (over TLS when it has an
//! acceptor), cuts each one's byte stream into the messages the protocol
//! frames there (a STUN message, 20 bytes of header and its length; or a
//! ChannelData message, 4 bytes and its length padded to 4), and hands them
//! to the server as datagrams from the connection's address. What the
//! server sends to that address is written to that connection. Each
//! connection's outgoing queue is bounded: when it is full, messages are
//! dropped, as a congested UDP path would.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use peerchat_protocol::turn::frame_len;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use webrtc_util::Conn;

/// The longest message taken from a stream: the `turn` server reads
/// datagrams of at most 1,500 bytes.
const MAX_MESSAGE: usize = 1500;

/// Messages queued for one connection before more are dropped.
const QUEUE: usize = 256;

/// Messages from all connections waiting for the server to read them.
const INBOX: usize = 1024;

/// How long a new connection may take to finish its TLS handshake and send
/// its first message.
const FIRST_MESSAGE: Duration = Duration::from_secs(10);

/// A connection that says nothing for this long is closed (longer than an
/// allocation's lifetime, which the client refreshes).
const IDLE: Duration = Duration::from_secs(15 * 60);

type Outgoing = mpsc::Sender<Vec<u8>>;

/// Accepts TURN clients on a stream socket and speaks to the `turn` server
/// as a datagram socket.
pub(crate) struct StreamListener {
    local: SocketAddr,
    inbox: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    conns: Arc<Mutex<HashMap<SocketAddr, Outgoing>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for StreamListener {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock(
    conns: &Mutex<HashMap<SocketAddr, Outgoing>>,
) -> MutexGuard<'_, HashMap<SocketAddr, Outgoing>> {
    conns.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamListener {
    /// Starts accepting on `listener` (TLS when `tls` is given), at most
    /// `max_connections` at once.
    pub(crate) fn start(
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        max_connections: usize,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (inbox_tx, inbox) = mpsc::channel(INBOX);
        let conns = Arc::new(Mutex::new(HashMap::new()));
        let places = Arc::new(Semaphore::new(max_connections));
        let accept = tokio::spawn(accept_loop(listener, tls, inbox_tx, conns.clone(), places));
        Ok(Self {
            local,
            inbox: tokio::sync::Mutex::new(inbox),
            conns,
            accept,
        })
    }
}

impl StreamListener {
    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.local
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    inbox: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    conns: Arc<Mutex<HashMap<SocketAddr, Outgoing>>>,
    places: Arc<Semaphore>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::debug!(%err, "TURN: accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            tracing::info!(%peer, "TURN: too many stream connections; refused");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let inbox = inbox.clone();
        let conns = conns.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve(stream, peer, inbox, conns).await,
                Some(acceptor) => {
                    match tokio::time::timeout(FIRST_MESSAGE, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve(stream, peer, inbox, conns).await,
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "TURN: TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TURN: TLS handshake timed out"),
                    }
                }
            }
            drop(place);
        });
    }
}

/// Serves one connection until it closes: its messages to the inbox, the
/// server's messages for it to it.
async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    inbox: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    conns: Arc<Mutex<HashMap<SocketAddr, Outgoing>>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (outgoing, mut queue) = mpsc::channel::<Vec<u8>>(QUEUE);
    lock(&conns).insert(peer, outgoing);
    let write = async {
        while let Some(message) = queue.recv().await {
            if writer.write_all(&message).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    };
    let read = async {
        let mut buf = Vec::with_capacity(MAX_MESSAGE);
        let mut chunk = [0u8; 4096];
        let mut wait = FIRST_MESSAGE;
        loop {
            // Every whole message in the buffer goes to the server.
            while let Some(len) = frame_len(&buf) {
                if len > MAX_MESSAGE {
                    tracing::debug!(%peer, len, "TURN: a message over 1,500 bytes; closing");
                    return;
                }
                if buf.len() < len {
                    break;
                }
                let message: Vec<u8> = buf.drain(..len).collect();
                if inbox.send((message, peer)).await.is_err() {
                    return;
                }
                wait = IDLE;
            }
            if buf.len() >= 4 && frame_len(&buf).is_none() {
                tracing::debug!(%peer, "TURN: not a STUN or ChannelData message; closing");
                return;
            }
            let n = match tokio::time::timeout(wait, reader.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::select! {
        () = read => {}
        () = write => {}
    }
    lock(&conns).remove(&peer);
}

#[async_trait]
impl Conn for StreamListener {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported).into())
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut inbox = self.inbox.lock().await;
        loop {
            let Some((message, from)) = inbox.recv().await else {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe).into());
            };
            if message.len() <= buf.len() {
                buf[..message.len()].copy_from_slice(&message);
                return Ok((message.len(), from));
            }
        }
    }
    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(io::Error::from(io::ErrorKind::Unsupported).into())
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let conn = lock(&self.conns).get(&target).cloned();
        if let Some(conn) = conn {
            // A full queue drops the message, as a congested path would.
            let _ = conn.try_send(buf.to_vec());
        }
        Ok(buf.len())
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        self.accept.abort();
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
