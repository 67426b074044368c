//! `peerchat-bench`: measurements that print figures (and JSON), never
//! pass/fail verdicts. `scripts/bench.sh` runs them with a server, Chromium
//! pages and the reference stacks; see docs/benchmarks.md.
#![forbid(unsafe_code)]

mod cluster;
mod files;
mod load;
mod transports;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use peerchat_client::engine::{Engine, EngineOptions, Event, Peer};
use peerchat_client::peer::LinkState;
use peerchat_client::session::parse_target;
use serde::Serialize;
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
#[command(name = "peerchat-bench", about = "peerchat measurements")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect time and message round trips between this native client and
    /// a member that answers every `ping N` with `pong N` (a browser page
    /// the harness prepared, or a second native client with --echo-native).
    Rtt {
        /// The room link (the server is taken from it).
        link: String,
        /// Nickname of the member that echoes.
        #[arg(long, default_value = "echo")]
        echo: String,
        /// Start a native echo member in this process instead of waiting for
        /// one to be present.
        #[arg(long)]
        echo_native: bool,
        /// Round trips to time.
        #[arg(long, default_value_t = 200)]
        count: usize,
    },
    /// Throughput: this native client sends `count` messages of `size`
    /// bytes as fast as it can to a member (a page the harness prepared, or
    /// a second native client in this process with --sink-native) and waits
    /// until all are acknowledged. Prints one JSON object; with
    /// --sink-native it includes the receiver's first-to-last arrival time.
    Blast {
        /// The room link (the server is taken from it).
        link: String,
        /// Nickname of the receiving member.
        #[arg(long, default_value = "sink")]
        to: String,
        /// Start a native receiving member in this process.
        #[arg(long)]
        sink_native: bool,
        /// Messages to send.
        #[arg(long, default_value_t = 300)]
        count: usize,
        /// Bytes per message.
        #[arg(long, default_value_t = 1000)]
        size: usize,
    },
    /// File transfer throughput between two native engines in a room of
    /// the server in `link`, against a bare data-channel blast of the same
    /// bytes between the same two stacks, in this run. Prints one JSON
    /// object.
    Files {
        /// The room link (the server is taken from it).
        link: String,
        /// Bytes to move.
        #[arg(long, default_value_t = 64 << 20)]
        bytes: u64,
    },
    /// A bare data-channel blast from this process (a webrtc-rs link, the
    /// terminal client's stack) to a peer connection in a page, signaled
    /// through standard input and output: prints the offer as one JSON
    /// line, reads the answer as one, then sends `bytes` in 32 KiB
    /// messages on a transfer channel and waits for the page's `done` on
    /// it. Prints one JSON object, then waits for standard input to close
    /// (so that its CPU time can be read before it exits).
    PageBlast {
        /// Bytes to move.
        #[arg(long, default_value_t = 64 << 20)]
        bytes: u64,
    },
    /// Signaling load against a running server (peerchat or PeerJS):
    /// connect, idle memory, relay latency and throughput, and (peerchat)
    /// presence. Prints one JSON object.
    Signaling {
        /// Which protocol the server speaks.
        #[arg(long, value_enum)]
        kind: load::Kind,
        /// The server's `host:port`.
        #[arg(long)]
        addr: String,
        /// The server's process id, for its CPU time and memory.
        #[arg(long)]
        pid: u32,
        #[command(flatten)]
        sizes: Sizes,
        /// Workloads to run, in this order: idle (--clients connect and stay
        /// open: connect time and memory), connect (--connect-clients
        /// connect, then close, --connect-rounds times), relay,
        /// relay-sealed, presence, slow (a client that stops reading). Memory figures are clearest
        /// against a fresh server: what one workload leaves in the server's
        /// heap hides what the next one allocates (bench/signaling.mjs runs
        /// `slow` against a server of its own).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "idle,connect,relay,relay-sealed,presence,slow"
        )]
        only: Vec<Workload>,
        /// Loopback addresses to connect from (127.0.0.1 to 127.0.0.N), in
        /// turn: one address reaches the server from at most ~28,000 ports.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
        sources: u8,
    },
    /// Servers sharing rooms through Redis (or one alone): join time,
    /// signal latency within a server and across servers, and relaying
    /// under load counted over the CPU time of every process given
    /// (servers and Redis). Prints one JSON object.
    Cluster {
        /// The servers' `host:port`s; rooms are spread over them.
        #[arg(long, value_delimiter = ',', required = true)]
        addrs: Vec<String>,
        /// The processes whose CPU time counts: the servers, and Redis.
        #[arg(long, value_delimiter = ',', required = true)]
        pids: Vec<u32>,
        /// Joins to time.
        #[arg(long, default_value_t = 200)]
        joins: usize,
        /// Signals to time on each path at light load.
        #[arg(long, default_value_t = 500)]
        signals: usize,
        /// Pairs relaying under load.
        #[arg(long, default_value_t = 20)]
        pairs: usize,
        /// Messages each pair relays under load.
        #[arg(long, default_value_t = 2000)]
        messages: u64,
    },
    /// One transport of one server (WebSocket or long polling, over TLS or
    /// not), measured alike: join latency and the server's CPU per join,
    /// relay throughput per server CPU-second and latency, and TLS
    /// handshakes. Prints one JSON object.
    Transports(TransportArgs),
}

/// Flags of `transports`.
#[derive(Debug, clap::Args)]
struct TransportArgs {
    /// How the clients reach the server.
    #[arg(long, value_enum)]
    transport: transports::Transport,
    /// The server's `host:port`.
    #[arg(long)]
    addr: String,
    /// The server's process id, for its CPU time.
    #[arg(long)]
    pid: u32,
    /// Speak TLS, trusting the certificate in this PEM file.
    #[arg(long, value_name = "PATH")]
    tls_ca: Option<std::path::PathBuf>,
    /// Clients that join, one after another (then relay in pairs).
    #[arg(long, default_value_t = 100)]
    joins: usize,
    /// Signals each pair relays.
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Bytes of each signal's payload.
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// TLS handshakes to time.
    #[arg(long, default_value_t = 200)]
    handshakes: usize,
}

/// One part of the signaling measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// `--clients` connect and join, 50 at a time, and stay open: wall
    /// time, and the server's memory per connection.
    Idle,
    /// `--connect-clients` connect and join, 50 at a time, then all close;
    /// `--connect-rounds` times.
    Connect,
    /// Relay latency at light load and throughput under load.
    Relay,
    /// Throughput under load, as `relay`, of the same offers sealed as
    /// protocol version 2 seals them (the server does not open them: only
    /// their size and shape change).
    RelaySealed,
    /// Presence in rooms of `--presence` sizes (peerchat only).
    Presence,
    /// A client that stops reading while another sends it
    /// `--slow-messages` signals of `--size` bytes: the server's memory,
    /// and whether it cuts that client off.
    Slow,
}

#[derive(Debug, Serialize)]
struct RttReport {
    peer: String,
    /// Engine start to the data channel to the echo member being open.
    connect_ms: f64,
    count: usize,
    rtt_p50_ms: f64,
    rtt_p99_ms: f64,
    /// Half the median round trip.
    one_way_p50_ms: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Transports(args) => {
            let tls = match &args.tls_ca {
                Some(path) => {
                    let roots = peerchat_client::tls::read_roots(path)?;
                    Some(peerchat_client::tls::client_config(&roots)?)
                }
                None => None,
            };
            let report = transports::run(
                args.transport,
                &args.addr,
                args.pid,
                tls,
                args.joins,
                args.messages,
                args.size,
                args.handshakes,
            )
            .await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Rtt {
            link,
            echo,
            echo_native,
            count,
        } => {
            let report = rtt(&link, &echo, echo_native, count).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Blast {
            link,
            to,
            sink_native,
            count,
            size,
        } => {
            let report = blast(&link, &to, sink_native, count, size).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Files { link, bytes } => {
            let report = files::run(&link, bytes).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::PageBlast { bytes } => files::page_blast(bytes).await?,
        Command::Signaling {
            kind,
            addr,
            pid,
            sizes,
            only,
            sources,
        } => {
            load::set_sources(sources);
            let report = signaling(kind, &addr, pid, &sizes, &only).await?;
            println!("{report}");
        }
        Command::Cluster {
            addrs,
            pids,
            joins,
            signals,
            pairs,
            messages,
        } => {
            let report = cluster::run(&addrs, &pids, joins, signals, pairs, messages).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}

/// The sizes of the signaling workloads.
#[derive(Debug, clap::Args)]
struct Sizes {
    /// Clients that connect, join and stay idle.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Pairs relaying messages under load.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Messages each pair relays under load.
    #[arg(long, default_value_t = 2000)]
    messages: u64,
    /// Approximate size of each relayed payload, in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Room sizes for the presence measurement (peerchat only).
    #[arg(long, value_delimiter = ',', default_value = "2,10,100")]
    presence: Vec<usize>,
    /// Clients in each round of the connect workload.
    #[arg(long, default_value_t = 1000)]
    connect_clients: usize,
    /// Rounds of the connect workload, after one to warm up (the median
    /// round is reported).
    #[arg(long, default_value_t = 5)]
    connect_rounds: usize,
    /// Signals sent to a client that stops reading (`slow`).
    #[arg(long, default_value_t = 10_000)]
    slow_messages: usize,
}

async fn signaling(
    kind: load::Kind,
    addr: &str,
    pid: u32,
    sizes: &Sizes,
    only: &[Workload],
) -> Result<serde_json::Value> {
    let mut report = serde_json::json!({ "kind": kind });
    for workload in only {
        match workload {
            Workload::Idle => {
                let rss_before = load::rss_kib(pid)?;
                let (idle_clients, connect) =
                    load::connect_many(kind, addr, sizes.clients, 50).await?;
                let idle = load::idle(&idle_clients, rss_before, pid).await?;
                load::close_all(idle_clients).await;
                report["connect"] = serde_json::to_value(connect)?;
                report["idle"] = serde_json::to_value(idle)?;
            }
            Workload::Connect => {
                let rounds = load::connect_rounds(
                    kind,
                    addr,
                    sizes.connect_clients,
                    50,
                    sizes.connect_rounds,
                    pid,
                )
                .await?;
                report["connect_small"] = serde_json::to_value(rounds)?;
            }
            Workload::Relay => {
                let (light, _) = load::connect_many(kind, addr, 2, 2).await?;
                let light = load::relay(light, 500, sizes.size, load::Shape::Plain, 1, pid).await?;
                report["relay_light"] = serde_json::to_value(light)?;
                let busy = relay_under_load(kind, addr, sizes, load::Shape::Plain, pid).await?;
                report["relay_load"] = serde_json::to_value(busy)?;
            }
            Workload::RelaySealed => {
                let busy = relay_under_load(kind, addr, sizes, load::Shape::Sealed, pid).await?;
                report["relay_sealed_load"] = serde_json::to_value(busy)?;
            }
            Workload::Presence => {
                let mut rooms = Vec::new();
                if kind == load::Kind::Peerchat {
                    for &n in &sizes.presence {
                        rooms.push(load::presence(addr, n, 20).await?);
                    }
                }
                report["presence"] = serde_json::to_value(rooms)?;
            }
            Workload::Slow => {
                let slow =
                    load::slow_reader(kind, addr, pid, sizes.slow_messages, sizes.size).await?;
                report["slow"] = serde_json::to_value(slow)?;
            }
        }
    }
    Ok(report)
}

/// `--pairs` pairs relaying `--messages` signals each, 32 in flight per pair.
async fn relay_under_load(
    kind: load::Kind,
    addr: &str,
    sizes: &Sizes,
    shape: load::Shape,
    pid: u32,
) -> Result<load::RelayReport> {
    let (busy, _) = load::connect_many(kind, addr, sizes.pairs * 2, 50).await?;
    load::relay(busy, sizes.messages, sizes.size, shape, 32, pid).await
}

fn options(link: &str, nick: &str) -> Result<EngineOptions> {
    let session = parse_target(link, None)?.session();
    Ok(EngineOptions {
        mdns: false,
        ..EngineOptions::new(session, nick)
    })
}

async fn next(events: &mut mpsc::UnboundedReceiver<Event>) -> Result<Event> {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .context("no event within 30 s")?
        .context("the engine stopped")
}

async fn joined(events: &mut mpsc::UnboundedReceiver<Event>) -> Result<Peer> {
    loop {
        match next(events).await? {
            Event::Joined { you, .. } => return Ok(you),
            Event::JoinRefused { message, .. } => bail!("join refused: {message}"),
            _ => {}
        }
    }
}

/// A native member that answers `ping N` with `pong N`.
async fn native_echo(link: &str, nick: &str) -> Result<Engine> {
    let (engine, mut events) = Engine::start(options(link, nick)?);
    joined(&mut events).await?;
    let echo = engine.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Message(m) = event {
                if let Some(n) = m.text.strip_prefix("ping ") {
                    let _ = echo.send(&format!("pong {n}"));
                }
            }
        }
    });
    Ok(engine)
}

async fn rtt(link: &str, echo: &str, echo_native: bool, count: usize) -> Result<RttReport> {
    let _echo_engine = if echo_native {
        Some(native_echo(link, echo).await?)
    } else {
        None
    };
    let start = Instant::now();
    let (engine, mut events) = Engine::start(options(link, "bench")?);
    joined(&mut events).await?;
    let peer = loop {
        if let Event::MemberState {
            member,
            state: LinkState::Connected,
        } = next(&mut events).await?
        {
            if member.nick == echo {
                break member;
            }
        }
    };
    let connect = start.elapsed();
    // Warm up, then time one round trip at a time.
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + 10 {
        let sent = Instant::now();
        engine.send(&format!("ping {i}"))?;
        let want = format!("pong {i}");
        loop {
            if let Event::Message(m) = next(&mut events).await? {
                if m.from.id == peer.id && m.text == want {
                    break;
                }
            }
        }
        if i >= 10 {
            samples.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
    }
    engine.leave().await;
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok(RttReport {
        peer: peer.nick,
        connect_ms: connect.as_secs_f64() * 1000.0,
        count,
        rtt_p50_ms: pick(0.5),
        rtt_p99_ms: pick(0.99),
        one_way_p50_ms: pick(0.5) / 2.0,
    })
}

#[derive(Debug, Serialize)]
struct BlastReport {
    count: usize,
    size: usize,
    /// From the first message sent to the last one acknowledged.
    sender_ms: f64,
    /// At the native receiver: from the first message's arrival to the
    /// last's.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_to_last_ms: Option<f64>,
    /// Payload bytes per second at the receiver (first to last), in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    mib_per_s: Option<f64>,
}

/// The text of blast message `i`: `blast i ` padded to `size` bytes.
fn blast_text(i: usize, size: usize) -> String {
    let mut text = format!("blast {i} ");
    while text.len() < size {
        text.push('x');
    }
    text
}

async fn blast(
    link: &str,
    to: &str,
    sink_native: bool,
    count: usize,
    size: usize,
) -> Result<BlastReport> {
    // A native receiver notes when the first and the last message arrive.
    let sink = if sink_native {
        let (engine, mut events) = Engine::start(options(link, to)?);
        joined(&mut events).await?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut first = None;
            let mut got = 0;
            let mut done = Some(done_tx);
            while let Some(event) = events.recv().await {
                if let Event::Message(m) = event {
                    if !m.own && m.text.starts_with("blast ") {
                        let now = Instant::now();
                        first.get_or_insert(now);
                        got += 1;
                        if got == count {
                            if let (Some(tx), Some(first)) = (done.take(), first) {
                                let _ = tx.send(now - first);
                            }
                        }
                    }
                }
            }
        });
        Some((engine, done_rx))
    } else {
        None
    };
    let (engine, mut events) = Engine::start(options(link, "blaster")?);
    joined(&mut events).await?;
    loop {
        if let Event::MemberState {
            member,
            state: LinkState::Connected,
        } = next(&mut events).await?
        {
            if member.nick == to {
                break;
            }
        }
    }
    let start = Instant::now();
    for i in 0..count {
        engine.send(&blast_text(i, size))?;
    }
    let mut last_seq = 0;
    let mut sent = 0;
    loop {
        match next(&mut events).await? {
            Event::Message(m) if m.own => {
                sent += 1;
                if sent == count {
                    last_seq = m.seq;
                }
            }
            Event::Delivery { seq, waiting, .. }
                if sent == count && seq == last_seq && waiting.is_empty() =>
            {
                break;
            }
            _ => {}
        }
    }
    let sender = start.elapsed();
    let first_to_last = match sink {
        Some((sink_engine, done)) => {
            let elapsed = tokio::time::timeout(Duration::from_secs(60), done)
                .await
                .context("the receiver did not get every message")??;
            sink_engine.leave().await;
            Some(elapsed.as_secs_f64() * 1000.0)
        }
        None => None,
    };
    engine.leave().await;
    Ok(BlastReport {
        count,
        size,
        sender_ms: sender.as_secs_f64() * 1000.0,
        first_to_last_ms: first_to_last,
        mib_per_s: first_to_last
            .map(|ms| ((count - 1) * size) as f64 / (ms / 1000.0) / (1024.0 * 1024.0)),
    })
}
