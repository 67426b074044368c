//! Several servers sharing rooms through Redis (or one alone): join time,
//! signal latency within one server and across servers, and the cost of
//! relaying counted over every process (the servers and Redis).

use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::json;

use crate::load::{self, Client, Dist, Kind, cpu_seconds};

/// What was measured.
#[derive(Debug, Serialize)]
pub struct ClusterReport {
    /// Servers.
    pub servers: usize,
    /// Each join: connect, then `join` until `joined`; half of them create
    /// their room (and claim it), half join a room another server holds
    /// when there are several.
    pub join: Dist,
    /// One-way latency of a signal between two members on one server, at
    /// light load.
    pub same_node: Dist,
    /// One-way latency between members on two servers, one of which holds
    /// the room (both directions), at light load.
    pub cross_node: Option<Dist>,
    /// One-way latency between members on two servers when a third holds
    /// the room (two hops through Redis).
    pub via_third: Option<Dist>,
    /// Relaying under load, each pair across two servers when there are
    /// several.
    pub relay: Relay,
}

/// Relaying under load.
#[derive(Debug, Serialize)]
pub struct Relay {
    /// Pairs.
    pub pairs: usize,
    /// Messages relayed.
    pub messages: u64,
    /// Relayed messages per second of wall time.
    pub per_sec: f64,
    /// Relayed messages per CPU-second of every server process and Redis.
    pub per_cpu_sec: f64,
    /// One-way latency under that load.
    pub latency: Dist,
    /// CPU seconds each process (in the order given: servers, then Redis)
    /// spent on it.
    pub cpu_seconds: Vec<f64>,
}

/// Light-load latency: `a` sends `count` signals to `b`, one at a time.
async fn one_way(
    a: &mut Client,
    b: &mut Client,
    count: usize,
    samples: &mut Vec<f64>,
) -> Result<()> {
    let t0 = Instant::now();
    for seq in 0..count {
        let payload =
            json!({"seq": seq, "sent_us": t0.elapsed().as_micros() as u64, "sdp": "v".repeat(200)});
        a.signal(&b.id, &payload).await?;
        let got = b.next_signal().await?;
        let sent = got["sent_us"].as_u64().unwrap_or(0);
        samples.push((t0.elapsed().as_micros() as u64).saturating_sub(sent) as f64 / 1000.0);
    }
    Ok(())
}

/// Runs the measurements against servers at `addrs`, counting the CPU time
/// of `pids`.
pub async fn run(
    addrs: &[String],
    pids: &[u32],
    joins: usize,
    signals: usize,
    pairs: usize,
    messages: u64,
) -> Result<ClusterReport> {
    let n = addrs.len();
    if n == 0 {
        bail!("no server");
    }
    let at = |i: usize| addrs[i % n].as_str();
    let base = 1_000_000 * (std::process::id() as usize % 1000);

    // Joins: rooms of two, the first member on one server, the second on
    // the next.
    let mut samples = Vec::new();
    let mut clients = Vec::new();
    for i in 0..joins / 2 {
        for k in 0..2 {
            let t = Instant::now();
            let c = Client::connect(Kind::Peerchat, at(i + k), &load::room(base + i)).await?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            clients.push(c);
        }
    }
    load::close_all(clients).await;
    let join = Dist::of(samples);

    // One server.
    let room = load::room(base + joins + 1);
    let mut a = Client::connect(Kind::Peerchat, at(0), &room).await?;
    let mut b = Client::connect(Kind::Peerchat, at(0), &room).await?;
    let mut samples = Vec::new();
    one_way(&mut a, &mut b, signals, &mut samples).await?;
    let same_node = Dist::of(samples);
    load::close_all(vec![a, b]).await;

    // Two servers, one holding the room.
    let cross_node = if n >= 2 {
        let room = load::room(base + joins + 2);
        let mut a = Client::connect(Kind::Peerchat, at(0), &room).await?;
        let mut b = Client::connect(Kind::Peerchat, at(1), &room).await?;
        let mut samples = Vec::new();
        one_way(&mut a, &mut b, signals / 2, &mut samples).await?;
        one_way(&mut b, &mut a, signals / 2, &mut samples).await?;
        load::close_all(vec![a, b]).await;
        Some(Dist::of(samples))
    } else {
        None
    };

    // Two servers, a third holding the room.
    let via_third = if n >= 3 {
        let room = load::room(base + joins + 3);
        let holder = Client::connect(Kind::Peerchat, at(2), &room).await?;
        let mut a = Client::connect(Kind::Peerchat, at(0), &room).await?;
        let mut b = Client::connect(Kind::Peerchat, at(1), &room).await?;
        let mut samples = Vec::new();
        one_way(&mut a, &mut b, signals / 2, &mut samples).await?;
        one_way(&mut b, &mut a, signals / 2, &mut samples).await?;
        load::close_all(vec![holder, a, b]).await;
        Some(Dist::of(samples))
    } else {
        None
    };

    // Load: pairs across servers.
    let mut clients = Vec::new();
    for i in 0..pairs {
        let room = load::room(base + joins + 10 + i);
        clients.push(Client::connect(Kind::Peerchat, at(i), &room).await?);
        clients.push(Client::connect(Kind::Peerchat, at(i + 1), &room).await?);
    }
    let each_cpu = || -> Result<Vec<f64>> { pids.iter().map(|p| cpu_seconds(*p)).collect() };
    let cpu0 = each_cpu()?;
    let t0 = Instant::now();
    let report = load::relay(clients, messages, 1000, load::Shape::Plain, 32, pids[0]).await?;
    let wall = t0.elapsed().as_secs_f64();
    let spent: Vec<f64> = each_cpu()?.iter().zip(&cpu0).map(|(b, a)| b - a).collect();
    let cpu: f64 = spent.iter().sum();
    Ok(ClusterReport {
        servers: n,
        join,
        same_node,
        cross_node,
        via_third,
        relay: Relay {
            pairs: report.pairs,
            messages: report.messages,
            per_sec: report.messages as f64 / wall,
            per_cpu_sec: report.messages as f64 / cpu.max(0.01),
            latency: report.latency,
            cpu_seconds: spent,
        },
    })
}
