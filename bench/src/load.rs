//! A signaling load generator that speaks both peerchat's protocol and
//! PeerJS server's, so the two are measured with the same workloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

type Ws = WebSocketStream<TcpStream>;

/// Which server, at which address (`host:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `peerchat serve`.
    Peerchat,
    /// The PeerJS server protocol under `/peerjs` (PeerJS server, npm
    /// `peer`, started with `--path /peerjs`, or `peerchat serve --peerjs`):
    /// both get the same client bytes.
    Peerjs,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// How many loopback addresses (127.0.0.1, 127.0.0.2, …) clients connect
/// from, in turn: one address reaches one server port from at most as many
/// ports as the ephemeral range has (28,232 by default), so 100,000 clients
/// need four or more.
static SOURCES: AtomicU64 = AtomicU64::new(1);

/// Spreads clients over `n` loopback source addresses.
pub fn set_sources(n: u8) {
    SOURCES.store(u64::from(n.max(1)), Ordering::Relaxed);
}

/// Each client's WebSocket read buffer, in bytes.
const CLIENT_READ_BUFFER: usize = 4096;

/// One connected, joined client.
pub struct Client {
    /// Its address for others: peerchat's peer id, or the PeerJS id.
    pub id: String,
    tx: SplitSink<Ws, Message>,
    rx: SplitStream<Ws>,
    kind: Kind,
}

async fn next_json(rx: &mut SplitStream<Ws>) -> Result<Value> {
    loop {
        match rx.next().await.context("connection closed")?? {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Close(_) => bail!("closed by the server"),
            _ => {}
        }
    }
}

impl Client {
    /// Connects and joins `room` (peerchat) or registers (PeerJS).
    pub async fn connect(kind: Kind, addr: &str, room: &str) -> Result<Client> {
        Self::connect_with(kind, addr, room, None).await
    }

    /// As [`Client::connect`], with the socket's receive buffer set to
    /// `recv_buffer` bytes if given (so that a client that stops reading
    /// soon stops the server's writes, instead of the kernel taking
    /// megabytes for it).
    pub async fn connect_with(
        kind: Kind,
        addr: &str,
        room: &str,
        recv_buffer: Option<u32>,
    ) -> Result<Client> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let url = match kind {
            Kind::Peerchat => format!("ws://{addr}/ws"),
            Kind::Peerjs => format!("ws://{addr}/peerjs/peerjs?key=peerjs&id=c{n}&token=t{n}"),
        };
        // tungstenite's default read buffer (128 KiB) is zeroed before every
        // read: with thousands of clients that, not the server, would bound
        // the connect rate. Signaling messages are small.
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let server = tokio::net::lookup_host(addr)
            .await?
            .next()
            .context("no address")?;
        let sources = SOURCES.load(Ordering::Relaxed);
        let stream = if sources > 1 || recv_buffer.is_some() {
            let socket = tokio::net::TcpSocket::new_v4()?;
            if let Some(bytes) = recv_buffer {
                socket.set_recv_buffer_size(bytes)?;
            }
            let last = u8::try_from(1 + n % sources)?;
            socket.bind((std::net::Ipv4Addr::new(127, 0, 0, last), 0).into())?;
            socket.connect(server).await?
        } else {
            TcpStream::connect(server).await?
        };
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        let (mut tx, mut rx) = ws.split();
        let id = match kind {
            Kind::Peerchat => {
                let join = json!({"type":"join","v":2,"room":room,"nick":format!("c{n}")});
                tx.send(Message::text(join.to_string())).await?;
                loop {
                    let msg = next_json(&mut rx).await?;
                    match msg["type"].as_str() {
                        Some("joined") => {
                            break msg["you"]["id"].as_str().unwrap_or_default().to_owned();
                        }
                        Some("error") => bail!("join refused: {msg}"),
                        _ => {}
                    }
                }
            }
            Kind::Peerjs => {
                let msg = next_json(&mut rx).await?;
                if msg["type"] != "OPEN" {
                    bail!("expected OPEN, got {msg}");
                }
                format!("c{n}")
            }
        };
        Ok(Client { id, tx, rx, kind })
    }

    /// Sends a signal carrying `payload` to `to`.
    pub async fn signal(&mut self, to: &str, payload: &Value) -> Result<()> {
        self.tx.send(signal_message(self.kind, to, payload)).await?;
        Ok(())
    }

    /// The payload of the next relayed signal.
    pub async fn next_signal(&mut self) -> Result<Value> {
        loop {
            let msg = next_json(&mut self.rx).await?;
            let relayed = match self.kind {
                Kind::Peerchat => msg["type"] == "signal",
                Kind::Peerjs => msg["type"] == "OFFER",
            };
            if relayed {
                return Ok(msg["payload"].clone());
            }
        }
    }

    /// The next server message (presence).
    pub async fn next_message(&mut self) -> Result<Value> {
        next_json(&mut self.rx).await
    }
}

/// A signal carrying `payload` to `to`, in `kind`'s protocol.
fn signal_message(kind: Kind, to: &str, payload: &Value) -> Message {
    let msg = match kind {
        Kind::Peerchat => json!({"type":"signal","to":to,"payload":payload}),
        Kind::Peerjs => json!({"type":"OFFER","dst":to,"payload":payload}),
    };
    Message::text(msg.to_string())
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Dist {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl Dist {
    /// From samples in milliseconds.
    pub fn of(mut samples: Vec<f64>) -> Dist {
        samples.sort_by(f64::total_cmp);
        let q = |p: f64| {
            samples
                .get(((samples.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        Dist {
            p50_ms: q(0.5),
            p99_ms: q(0.99),
        }
    }
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("odd VmRSS")?
        .parse()?)
}

/// `n` clients connecting and joining, `concurrency` at a time, in rooms
/// of two.
#[derive(Debug, Serialize)]
pub struct ConnectReport {
    /// Clients.
    pub clients: usize,
    /// Wall time for all of them, in milliseconds.
    pub wall_ms: f64,
    /// Time for each client to connect and join.
    pub each: Dist,
    /// The samples behind `each`, in milliseconds.
    #[serde(skip)]
    pub samples: Vec<f64>,
}

/// Room ids for pairs: `bench-pair-…` padded to the minimum length.
pub fn room(i: usize) -> String {
    format!("bench-room-{i:0>16}")
}

/// Connects `n` clients; returns them and the report.
pub async fn connect_many(
    kind: Kind,
    addr: &str,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<Client>, ConnectReport)> {
    let start = Instant::now();
    let addr: Arc<str> = addr.into();
    let mut clients = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + concurrency).min(n))
            .map(|j| {
                let addr = addr.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let c = Client::connect(kind, &addr, &room(j / 2)).await?;
                    Ok::<_, anyhow::Error>((c, t.elapsed()))
                })
            })
            .collect();
        for task in batch {
            let (c, took) = task.await??;
            samples.push(took.as_secs_f64() * 1000.0);
            clients.push(c);
        }
        i += concurrency;
    }
    let report = ConnectReport {
        clients: n,
        wall_ms: start.elapsed().as_secs_f64() * 1000.0,
        each: Dist::of(samples.clone()),
        samples,
    };
    Ok((clients, report))
}

/// Closes every client with a normal close and waits until the server has
/// seen each one go (its close reply, or the connection's end).
pub async fn close_all(clients: Vec<Client>) {
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let close = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                };
                if c.tx.send(Message::Close(Some(close))).await.is_ok() {
                    while let Some(Ok(_)) = c.rx.next().await {}
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Rounds of `n` clients connecting and joining, then closing.
#[derive(Debug, Serialize)]
pub struct ConnectRounds {
    /// Clients in each round.
    pub clients: usize,
    /// Wall time of each round, in milliseconds.
    pub rounds_ms: Vec<f64>,
    /// The median round.
    pub wall_ms: f64,
    /// Time for each client to connect and join, over all rounds.
    pub each: Dist,
    /// The server's CPU time per client connecting (median round), in
    /// milliseconds.
    pub server_cpu_ms_per_client: f64,
    /// This load generator's CPU time per client connecting (median
    /// round), in milliseconds.
    pub client_cpu_ms_per_client: f64,
}

/// Connects `n` clients `concurrency` at a time and closes them again,
/// `rounds` times.
pub async fn connect_rounds(
    kind: Kind,
    addr: &str,
    n: usize,
    concurrency: usize,
    rounds: usize,
    server_pid: u32,
) -> Result<ConnectRounds> {
    let mut walls = Vec::new();
    let mut samples = Vec::new();
    let mut server_cpu = Vec::new();
    let mut client_cpu = Vec::new();
    // One round to warm up (the server's allocator and caches, a JIT),
    // not counted.
    let (clients, _) = connect_many(kind, addr, n, concurrency).await?;
    close_all(clients).await;
    for _ in 0..rounds.max(1) {
        let server0 = cpu_seconds(server_pid)?;
        let client0 = cpu_seconds(std::process::id())?;
        let (clients, report) = connect_many(kind, addr, n, concurrency).await?;
        server_cpu.push((cpu_seconds(server_pid)? - server0) * 1000.0 / n.max(1) as f64);
        client_cpu.push((cpu_seconds(std::process::id())? - client0) * 1000.0 / n.max(1) as f64);
        walls.push(report.wall_ms);
        samples.extend(report.samples);
        close_all(clients).await;
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(ConnectRounds {
        clients: n,
        wall_ms: median(&walls),
        rounds_ms: walls,
        each: Dist::of(samples),
        server_cpu_ms_per_client: median(&server_cpu),
        client_cpu_ms_per_client: median(&client_cpu),
    })
}

/// Relaying between pairs.
#[derive(Debug, Serialize)]
pub struct RelayReport {
    /// Pairs.
    pub pairs: usize,
    /// Messages relayed.
    pub messages: u64,
    /// Relayed messages per second of wall time.
    pub per_sec: f64,
    /// Relayed messages per second of the server's CPU time.
    pub per_server_cpu_sec: f64,
    /// One-way latency (sent to received, same clock).
    pub latency: Dist,
}

/// What a relayed payload looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Like a version-1 signal: an SDP offer in clear, a type and a long
    /// string.
    Plain,
    /// Like a version-2 sealed signal of the same offer: `iv` and `ct`,
    /// base64url of the offer with `e`, `n` and `ts` added (about 80
    /// bytes) and the 16-byte tag. (`seq` and `sent_us` ride beside them
    /// for the measurement; the server relays the payload as it is.)
    Sealed,
}

fn payload(seq: u64, t0: Instant, size: usize, shape: Shape) -> Value {
    let sent_us = t0.elapsed().as_micros() as u64;
    match shape {
        Shape::Plain => json!({
            "seq": seq,
            "sent_us": sent_us,
            "description": {"type": "offer", "sdp": "v".repeat(size)},
        }),
        Shape::Sealed => json!({
            "seq": seq,
            "sent_us": sent_us,
            "iv": "A".repeat(16),
            "ct": "A".repeat((size + 80 + 16).div_ceil(3) * 4),
        }),
    }
}

/// Each pair's first client sends `per_pair` messages of about `size`
/// bytes (before sealing, for [`Shape::Sealed`]) to the second, keeping at
/// most `window` in flight.
pub async fn relay(
    clients: Vec<Client>,
    per_pair: u64,
    size: usize,
    shape: Shape,
    window: u64,
    server_pid: u32,
) -> Result<RelayReport> {
    let t0 = Instant::now();
    let cpu0 = cpu_seconds(server_pid)?;
    let mut tasks = Vec::new();
    let mut it = clients.into_iter();
    let mut pairs = 0;
    while let (Some(mut a), Some(mut b)) = (it.next(), it.next()) {
        pairs += 1;
        tasks.push(tokio::spawn(async move {
            let to = b.id.clone();
            let (acks_tx, mut acks) = tokio::sync::mpsc::channel::<()>(window as usize);
            let receiver = tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_pair as usize);
                for _ in 0..per_pair {
                    let p = b.next_signal().await?;
                    let sent = p["sent_us"].as_u64().unwrap_or(0);
                    let now = t0.elapsed().as_micros() as u64;
                    samples.push(now.saturating_sub(sent) as f64 / 1000.0);
                    let _ = acks_tx.try_send(());
                }
                Ok::<_, anyhow::Error>(samples)
            });
            let mut in_flight = 0;
            for seq in 0..per_pair {
                if in_flight >= window {
                    acks.recv().await;
                    in_flight -= 1;
                }
                a.signal(&to, &payload(seq, t0, size, shape)).await?;
                in_flight += 1;
            }
            receiver.await?
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server_pid)? - cpu0;
    let messages = samples.len() as u64;
    Ok(RelayReport {
        pairs,
        messages,
        per_sec: messages as f64 / wall,
        per_server_cpu_sec: messages as f64 / cpu.max(0.01),
        latency: Dist::of(samples),
    })
}

/// Time until every member of a room is told of a newcomer.
#[derive(Debug, Serialize)]
pub struct PresenceReport {
    /// Members already in the room.
    pub room_size: usize,
    /// Joins timed.
    pub joins: usize,
    /// From sending `join` to the last member being told.
    pub all_told: Dist,
}

/// peerchat only: fills a room with `size - 1` members, then times `joins`
/// newcomers (each leaves before the next).
pub async fn presence(addr: &str, size: usize, joins: usize) -> Result<PresenceReport> {
    let room = format!("bench-presence-{size:0>12}");
    let mut members = Vec::new();
    for _ in 0..size.saturating_sub(1) {
        members.push(Client::connect(Kind::Peerchat, addr, &room).await?);
    }
    let mut samples = Vec::new();
    for _ in 0..joins {
        let t = Instant::now();
        let newcomer = Client::connect(Kind::Peerchat, addr, &room).await?;
        for m in &mut members {
            loop {
                let msg = m.next_message().await?;
                if msg["type"] == "peer_joined" {
                    break;
                }
            }
        }
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(newcomer);
        for m in &mut members {
            loop {
                if m.next_message().await?["type"] == "peer_left" {
                    break;
                }
            }
        }
    }
    Ok(PresenceReport {
        room_size: size,
        joins,
        all_told: Dist::of(samples),
    })
}

/// Resident memory per idle, joined connection.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    /// Connections held.
    pub connections: usize,
    /// Server RSS before, in KiB.
    pub rss_before_kib: u64,
    /// Server RSS with all connections open, in KiB.
    pub rss_after_kib: u64,
    /// (after - before) / connections, in KiB.
    pub per_connection_kib: f64,
}

/// Measures the server's memory with `clients` connected and idle.
pub async fn idle(clients: &[Client], rss_before_kib: u64, server_pid: u32) -> Result<IdleReport> {
    // Let the server settle (allocators return freed buffers lazily).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(server_pid)?;
    Ok(IdleReport {
        connections: clients.len(),
        rss_before_kib,
        rss_after_kib: after,
        per_connection_kib: after.saturating_sub(rss_before_kib) as f64
            / clients.len().max(1) as f64,
    })
}

/// What a server does with a client that stops reading.
#[derive(Debug, Serialize)]
pub struct SlowReport {
    /// Signals sent to the client that does not read (fewer than asked if
    /// the server stopped taking them).
    pub sent: usize,
    /// Bytes per signal's payload.
    pub size: usize,
    /// Server RSS before, in KiB.
    pub rss_before_kib: u64,
    /// Highest server RSS seen while sending (checked every 64 signals).
    pub rss_peak_kib: u64,
    /// Peak minus before, in KiB.
    pub growth_kib: u64,
    /// Whether the server closed the connection of the client that did not
    /// read.
    pub cut_off: bool,
    /// Whether the server refused signals to the client that did not read,
    /// telling the sender (`peer_busy`; `EXPIRE` in the PeerJS protocol),
    /// instead of queueing or cutting off.
    pub pushed_back: bool,
    /// Whether the client, reading again, waited 10 s without getting a
    /// signal or the server's close (the server dropped signals quietly).
    pub stalled: bool,
    /// Signals the client found when it read again (all of them if it was
    /// not cut off).
    pub delivered: usize,
}

/// How long a step of the slow-reader workload may wait for the server.
const SLOW_STEP: Duration = Duration::from_secs(10);

/// A client that never reads, and one that sends it `count` signals of
/// `size` bytes as fast as the server takes them. Then the silent client
/// reads what reached it: all `count` signals, or fewer and the server's
/// close (or nothing for 10 s: stalled).
pub async fn slow_reader(
    kind: Kind,
    addr: &str,
    server_pid: u32,
    count: usize,
    size: usize,
) -> Result<SlowReport> {
    let room = "bench-slow-reader-aaaaa";
    let mut slow = Client::connect_with(kind, addr, room, Some(4096)).await?;
    let sender = Client::connect(kind, addr, room).await?;
    let Client { mut tx, rx, .. } = sender;
    // The sender reads everything the server says to it (presence, and
    // errors once the silent client is gone), so that it is never the slow
    // one, and notes whether the server pushed back on it.
    let pushed = Arc::new(AtomicBool::new(false));
    let pushed_seen = pushed.clone();
    let drain = tokio::spawn(async move {
        let mut rx = rx;
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(t) = msg {
                // peerchat's refusal, or its PeerJS endpoint's (PeerJS
                // server never says EXPIRE for a client that is there).
                if t.contains("\"peer_busy\"") || t.contains("\"EXPIRE\"") {
                    pushed_seen.store(true, Ordering::Relaxed);
                }
            }
        }
    });
    let rss_before = rss_kib(server_pid)?;
    let mut peak = rss_before;
    let t0 = Instant::now();
    let mut sent = 0;
    for i in 0..count {
        let msg = signal_message(kind, &slow.id, &payload(i as u64, t0, size, Shape::Plain));
        match tokio::time::timeout(SLOW_STEP, tx.send(msg)).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
        if i % 64 == 63 {
            peak = peak.max(rss_kib(server_pid)?);
        }
    }
    // The server may still be working through what its socket holds.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        peak = peak.max(rss_kib(server_pid)?);
    }
    // Now read: everything that reached us, until the server's close or
    // the last signal.
    let mut delivered = 0;
    let mut cut_off = false;
    let mut stalled = false;
    let pushed_back = pushed.load(Ordering::Relaxed);
    // Refused signals never come: past what was accepted, a short quiet
    // ends the reading.
    let step = if pushed_back {
        Duration::from_secs(1)
    } else {
        SLOW_STEP
    };
    while delivered < sent {
        let Ok(next) = tokio::time::timeout(step, slow.rx.next()).await else {
            stalled = !pushed_back;
            break;
        };
        match next {
            Some(Ok(Message::Text(t))) => {
                let msg: Value = serde_json::from_str(&t)?;
                if msg["type"] == "signal" || msg["type"] == "OFFER" {
                    delivered += 1;
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                cut_off = true;
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    drain.abort();
    Ok(SlowReport {
        sent,
        size,
        rss_before_kib: rss_before,
        rss_peak_kib: peak,
        growth_kib: peak.saturating_sub(rss_before),
        cut_off,
        pushed_back,
        stalled,
        delivered,
    })
}
