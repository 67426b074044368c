//! Signaling over each transport of one server, measured alike: joining
//! (connect and `join` until `joined`), relaying between pairs (messages per
//! server CPU-second, latency), and for TLS the handshake alone. WebSocket
//! (`ws://` or `wss://`) and long polling (`/poll`, over http or https).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use peerchat_client::poll::{Endpoint, Session};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::load::{Dist, cpu_seconds, room};

/// How the clients speak to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// WebSocket at `/ws`.
    Ws,
    /// Long polling at `/poll`.
    Poll,
}

/// What one transport measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The transport.
    pub transport: Transport,
    /// Over TLS.
    pub tls: bool,
    /// Clients that connected and joined, one after another (in rooms of
    /// two).
    pub joins: usize,
    /// Connect and join, until `joined`.
    pub join: Dist,
    /// The server's CPU time per join, in milliseconds.
    pub server_cpu_ms_per_join: f64,
    /// Relaying between the joined pairs.
    pub relay: Relay,
    /// The TLS handshake alone, when over TLS.
    pub handshake: Option<Handshake>,
}

/// Relaying between pairs.
#[derive(Debug, Serialize)]
pub struct Relay {
    /// Messages relayed.
    pub messages: u64,
    /// Per second of wall time.
    pub per_sec: f64,
    /// Per second of the server's CPU time.
    pub per_server_cpu_sec: f64,
    /// The server's CPU time per relayed message, in microseconds.
    pub server_cpu_us_per_message: f64,
    /// One-way latency.
    pub latency: Dist,
}

/// TLS handshakes alone (TCP connect and handshake, then close).
#[derive(Debug, Serialize)]
pub struct Handshake {
    /// Handshakes made, one after another.
    pub count: usize,
    /// Each one's time.
    pub each: Dist,
    /// The server's CPU time per handshake, in milliseconds.
    pub server_cpu_ms: f64,
}

/// One joined member, over either transport.
enum Member {
    Ws(
        Box<
            tokio_tungstenite::WebSocketStream<
                tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
            >,
        >,
        String,
    ),
    Poll(Box<Session>, peerchat_client::poll::Sender, String),
}

impl Member {
    fn id(&self) -> &str {
        match self {
            Member::Ws(_, id) | Member::Poll(_, _, id) => id,
        }
    }
}

fn ws_url(addr: &str, tls: bool) -> String {
    format!("{}://{addr}/ws", if tls { "wss" } else { "ws" })
}

fn join_message(i: usize) -> String {
    json!({"type":"join","v":2,"room":room(i / 2),"nick":format!("t{i}")}).to_string()
}

fn joined_id(text: &str) -> Result<Option<String>> {
    let msg: Value = serde_json::from_str(text)?;
    match msg["type"].as_str() {
        Some("joined") => Ok(Some(
            msg["you"]["id"].as_str().unwrap_or_default().to_owned(),
        )),
        Some("error") => bail!("join refused: {msg}"),
        _ => Ok(None),
    }
}

async fn join(
    transport: Transport,
    addr: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    i: usize,
) -> Result<Member> {
    let url = ws_url(addr, tls.is_some());
    match transport {
        Transport::Ws => {
            let connector = tls.map(|t| tokio_tungstenite::Connector::Rustls(t.clone()));
            let (mut ws, _) =
                tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector)
                    .await?;
            ws.send(Message::text(join_message(i))).await?;
            loop {
                match ws.next().await.context("closed")?? {
                    Message::Text(t) => {
                        if let Some(id) = joined_id(&t)? {
                            return Ok(Member::Ws(Box::new(ws), id));
                        }
                    }
                    Message::Close(_) => bail!("closed"),
                    _ => {}
                }
            }
        }
        Transport::Poll => {
            let config = tls
                .cloned()
                .unwrap_or_else(peerchat_client::tls::default_config);
            let endpoint = Endpoint::from_ws_url(&url, config)?;
            let mut session = Session::open(endpoint).await?;
            let mut sender = session.sender();
            sender.send(&[join_message(i)]).await?;
            loop {
                let received = session.receive().await?;
                for text in &received.messages {
                    if let Some(id) = joined_id(text)? {
                        return Ok(Member::Poll(Box::new(session), sender, id));
                    }
                }
                if received.closed {
                    bail!("closed");
                }
            }
        }
    }
}

fn signal(to: &str, seq: u64, t0: Instant, size: usize) -> String {
    json!({"type":"signal","to":to,"payload":{
        "seq": seq,
        "sent_us": t0.elapsed().as_micros() as u64,
        "description": {"type": "offer", "sdp": "v".repeat(size)},
    }})
    .to_string()
}

/// The `sent_us` of every relayed signal in `text`.
fn sent_times(text: &str) -> Vec<u64> {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    if msg["type"] == "signal" {
        vec![msg["payload"]["sent_us"].as_u64().unwrap_or(0)]
    } else {
        Vec::new()
    }
}

/// Each pair's first member sends `per_pair` signals of about `size` bytes
/// to the second, keeping at most `window` in flight; returns the one-way
/// latencies, in milliseconds.
async fn relay_pair(
    mut a: Member,
    b: Member,
    per_pair: u64,
    size: usize,
    window: u64,
    t0: Instant,
) -> Result<Vec<f64>> {
    let to = b.id().to_owned();
    let (acks_tx, mut acks) = mpsc::channel::<()>(window as usize);
    let receiver = tokio::spawn(async move {
        let mut samples: Vec<f64> = Vec::with_capacity(per_pair as usize);
        let mut take = |text: &str| {
            for sent in sent_times(text) {
                let now = t0.elapsed().as_micros() as u64;
                samples.push(now.saturating_sub(sent) as f64 / 1000.0);
                let _ = acks_tx.try_send(());
            }
        };
        match b {
            Member::Ws(mut ws, _) => {
                for _ in 0..per_pair {
                    loop {
                        match ws.next().await.context("closed")?? {
                            Message::Text(t) if !sent_times(&t).is_empty() => {
                                take(&t);
                                break;
                            }
                            Message::Close(_) => bail!("closed"),
                            _ => {}
                        }
                    }
                }
            }
            Member::Poll(mut session, _, _) => {
                let mut got = 0;
                while got < per_pair {
                    let received = session.receive().await?;
                    for text in &received.messages {
                        got += signals_in(text);
                        take(text);
                    }
                }
            }
        }
        Ok::<_, anyhow::Error>(samples)
    });
    // The sender stays open until everything arrived: closing a socket with
    // unread data resets it, and the server would lose what it had not read.
    match &mut a {
        Member::Ws(ws, _) => {
            let mut in_flight = 0;
            for seq in 0..per_pair {
                if in_flight >= window {
                    acks.recv().await;
                    in_flight -= 1;
                }
                ws.send(Message::text(signal(&to, seq, t0, size))).await?;
                in_flight += 1;
            }
        }
        Member::Poll(_, sender, _) => {
            let mut in_flight = 0;
            let mut seq = 0;
            while seq < per_pair {
                while in_flight >= window {
                    acks.recv().await;
                    in_flight -= 1;
                }
                // What may go now goes in one request, as the clients do.
                let mut batch = Vec::new();
                while in_flight < window && seq < per_pair && batch.len() < 64 {
                    batch.push(signal(&to, seq, t0, size));
                    seq += 1;
                    in_flight += 1;
                }
                sender.send(&batch).await?;
            }
        }
    }
    let samples = receiver.await?;
    drop(a);
    samples
}

/// How many relayed signals `text` is (one, or none).
fn signals_in(text: &str) -> u64 {
    u64::from(text.contains(r#""type":"signal""#))
}

/// Runs the measurement for one transport against a server.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    transport: Transport,
    addr: &str,
    server_pid: u32,
    tls: Option<Arc<rustls::ClientConfig>>,
    joins: usize,
    per_pair: u64,
    size: usize,
    handshakes: usize,
) -> Result<Report> {
    let handshake = match &tls {
        Some(config) => Some(handshake(addr, config, handshakes, server_pid).await?),
        None => None,
    };
    // Joins, one after another: the latency of one, the server's CPU per one.
    let cpu0 = cpu_seconds(server_pid)?;
    let mut samples = Vec::with_capacity(joins);
    let mut members = Vec::with_capacity(joins);
    for i in 0..joins {
        let t = Instant::now();
        members.push(join(transport, addr, tls.as_ref(), i).await?);
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let join_cpu = cpu_seconds(server_pid)? - cpu0;
    // Relay between the pairs.
    let t0 = Instant::now();
    let cpu0 = cpu_seconds(server_pid)?;
    let mut tasks = Vec::new();
    let mut it = members.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        tasks.push(tokio::spawn(relay_pair(a, b, per_pair, size, 16, t0)));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(server_pid)? - cpu0).max(0.01);
    let messages = latencies.len() as u64;
    Ok(Report {
        transport,
        tls: tls.is_some(),
        joins,
        join: Dist::of(samples),
        server_cpu_ms_per_join: join_cpu * 1000.0 / joins.max(1) as f64,
        relay: Relay {
            messages,
            per_sec: messages as f64 / wall,
            per_server_cpu_sec: messages as f64 / cpu,
            server_cpu_us_per_message: cpu * 1e6 / messages.max(1) as f64,
            latency: Dist::of(latencies),
        },
        handshake,
    })
}

/// `count` TLS handshakes, one after another.
async fn handshake(
    addr: &str,
    config: &Arc<rustls::ClientConfig>,
    count: usize,
    server_pid: u32,
) -> Result<Handshake> {
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let host: std::net::SocketAddr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .context("no address")?;
    let name = rustls::pki_types::ServerName::IpAddress(host.ip().into());
    let cpu0 = cpu_seconds(server_pid)?;
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        let tcp = tokio::net::TcpStream::connect(host).await?;
        let mut stream = connector.connect(name.clone(), tcp).await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    }
    let cpu = cpu_seconds(server_pid)? - cpu0;
    Ok(Handshake {
        count,
        each: Dist::of(samples),
        server_cpu_ms: cpu * 1000.0 / count.max(1) as f64,
    })
}
