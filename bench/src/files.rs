//! File transfer throughput between two native clients, against a bare
//! data-channel blast between the same two stacks in the same run.
//!
//! The bare blast connects two webrtc-rs links directly (their signals
//! handed across in this process), opens one transfer channel and sends
//! 32 KiB binary messages as fast as the channel takes them: the ceiling
//! any protocol on these stacks can reach. The file transfer runs two
//! engines in a room of the given server: one offers a file, the other
//! fetches it (hash list, pieces checked, written to disk, whole file
//! checked) into a scratch download directory.
//!
//! The checked blast is the same blast, its receiver hashing what arrives as
//! a fetcher must (each piece and the whole file, `FileHasher`): the
//! ceiling of a transfer that checks what it receives, on the same stacks.
//!
//! `page_blast` is the bare blast from a webrtc-rs link to a page's peer
//! connection, for the file transfer from a terminal to a browser
//! (bench/terminal-browser-files.mjs drives both ends).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use peerchat_client::engine::{Engine, Event};
use peerchat_client::peer::{Link, LinkEvent, LinkOptions};
use serde::Serialize;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};

/// Payload bytes per message, as a transfer channel carries a file's
/// pieces between two peerchat clients.
const CHUNK: usize = peerchat_transfer::wire::MAX_CHUNK;

#[derive(Debug, Serialize)]
pub struct Report {
    bytes: u64,
    /// Bare data channel: first message sent to last byte received.
    blast_ms: f64,
    blast_mib_per_s: f64,
    /// The same blast, its receiver hashing each piece and the whole of
    /// what arrives.
    checked_blast_mib_per_s: f64,
    /// File transfer: offer received to file saved (hash list, pieces,
    /// writes, whole-file check).
    file_ms: f64,
    file_mib_per_s: f64,
    /// File throughput over the blast's.
    ratio: f64,
    /// File throughput over the checked blast's.
    ratio_to_checked: f64,
    /// CPU time of this process (both ends) per MiB moved, for the blast
    /// and the file.
    blast_cpu_ms_per_mib: f64,
    checked_blast_cpu_ms_per_mib: f64,
    file_cpu_ms_per_mib: f64,
}

/// A transfer's wall time, and the CPU time this process spent meanwhile.
struct Timed {
    elapsed: Duration,
    cpu_s: f64,
}

fn cpu_now() -> Result<f64> {
    crate::load::cpu_seconds(std::process::id())
}

fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0)
}

/// Two links connected to each other in this process: `bytes` of 32 KiB
/// binary messages on a transfer channel, as fast as it goes; `checked`:
/// the receiver hashes their payloads as a fetcher hashes a file's (each
/// piece and the whole), as they arrive.
async fn blast(bytes: u64, checked: bool) -> Result<Timed> {
    let (a_tx, mut a_rx) = mpsc::unbounded_channel();
    let (b_tx, mut b_rx) = mpsc::unbounded_channel();
    let options = |me: &str, peer: &str, initiator: bool| LinkOptions {
        self_id: me.to_owned(),
        peer_id: peer.to_owned(),
        ice_servers: Vec::new(),
        sid: "blastblastblastblastbl".to_owned(),
        initiator,
        relay_only: false,
        mdns: false,
        trickle: true,
    };
    let a = Link::start(options("aaaa", "bbbb", true), 1, a_tx).await?;
    let b = Link::start(options("bbbb", "aaaa", false), 2, b_tx).await?;
    let (mut a_open, mut b_open) = (false, false);
    let mut sink = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Signals across until both chat channels are open.
    while !(a_open && b_open) {
        tokio::select! {
            Some((_, e)) = a_rx.recv() => match e {
                LinkEvent::Signal(s) => b.signal(*s),
                LinkEvent::Open { .. } => a_open = true,
                _ => {}
            },
            Some((_, e)) = b_rx.recv() => match e {
                LinkEvent::Signal(s) => a.signal(*s),
                LinkEvent::Open { .. } => b_open = true,
                _ => {}
            },
            () = tokio::time::sleep_until(deadline) => bail!("the two links did not connect"),
        }
    }
    let dc = a.handle().open_file_channel().await?;
    // Forward b's events (the transfer channel arrives there) from now on.
    let sink_dc = loop {
        tokio::select! {
            Some((_, e)) = b_rx.recv() => if let LinkEvent::FileChannel(c) = e { break c.0 },
            Some((_, e)) = a_rx.recv() => if let LinkEvent::Signal(s) = e { b.signal(*s) },
            () = tokio::time::sleep_until(deadline) => bail!("the transfer channel did not arrive"),
        }
    };
    let piece = peerchat_transfer::hash::piece_size_for(bytes).context("too large a blast")?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    sink.get_or_insert(tokio::spawn(async move {
        let mut got = 0u64;
        let mut first = None;
        let mut hasher = checked.then(|| peerchat_transfer::FileHasher::new(piece));
        while let Some(event) = sink_dc.poll().await {
            if let DataChannelEvent::OnMessage(m) = event {
                first.get_or_insert_with(Instant::now);
                got += (m.data.len() - 9) as u64;
                if let Some(hasher) = &mut hasher {
                    hasher.update(&m.data[9..]);
                }
                if got >= bytes {
                    std::hint::black_box(hasher.map(|h| h.finish()));
                    let _ = done_tx.send(first.map(|f| f.elapsed()));
                    return;
                }
            }
        }
    }));
    let cpu = cpu_now()?;
    let start = send_all(&dc, bytes).await?;
    let received = tokio::time::timeout(Duration::from_secs(600), done_rx)
        .await
        .context("the blast did not arrive")??;
    let elapsed = start.elapsed().max(received.unwrap_or_default());
    let cpu_s = cpu_now()? - cpu;
    a.close().await;
    b.close().await;
    Ok(Timed { elapsed, cpu_s })
}

/// Waits for the channel we opened to open, then sends `bytes` on it as
/// 32 KiB binary messages (each after a 9-byte header, as a piece), as fast
/// as it takes them: webrtc-rs's send buffer limit is the back-pressure, as
/// for the engine's file sender. Returns when the first was sent.
async fn send_all(dc: &Arc<dyn DataChannel>, bytes: u64) -> Result<Instant> {
    while let Some(event) = dc.poll().await {
        if matches!(event, DataChannelEvent::OnOpen) {
            break;
        }
    }
    let mut message = vec![0u8; 9 + CHUNK];
    message[0] = 1;
    let count = bytes.div_ceil(CHUNK as u64);
    let start = Instant::now();
    for i in 0..count {
        message[1..5].copy_from_slice(&(i as u32).to_be_bytes());
        dc.send(BytesMut::from(&message[..])).await?;
    }
    Ok(start)
}

#[derive(Debug, Serialize)]
struct PageBlastReport {
    bytes: u64,
    /// Messages sent (32 KiB of payload each).
    messages: u64,
    /// First message sent to the page's `done` received.
    ms: f64,
    mib_per_s: f64,
}

/// A link of ours (as the terminal client makes them) connected to a peer
/// connection in a page, its signals handed across on standard output and
/// input (one offer with every candidate, one answer): `bytes` of 32 KiB
/// messages on a transfer channel, as fast as it goes, until the page says
/// `done` on that channel (it counts the messages). Prints the report, then
/// waits for standard input to close.
pub async fn page_blast(bytes: u64) -> Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let link = Link::start(
        LinkOptions {
            self_id: "terminal".to_owned(),
            peer_id: "page".to_owned(),
            ice_servers: Vec::new(),
            sid: "pageblastpageblastpage".to_owned(),
            initiator: true,
            relay_only: false,
            mdns: false,
            trickle: false,
        },
        1,
        tx,
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let offer = loop {
        tokio::select! {
            Some((_, e)) = rx.recv() => if let LinkEvent::Signal(s) = e {
                if s.description.is_some() { break s }
            },
            () = tokio::time::sleep_until(deadline) => bail!("no offer"),
        }
    };
    println!("{}", serde_json::to_string(&offer)?);
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    link.signal(serde_json::from_str(&answer).context("reading the answer")?);
    loop {
        tokio::select! {
            Some((_, e)) = rx.recv() => if matches!(e, LinkEvent::Open { .. }) { break },
            () = tokio::time::sleep_until(deadline) => bail!("the link did not open"),
        }
    }
    let dc = link.handle().open_file_channel().await?;
    let start = send_all(&dc, bytes).await?;
    let done = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(event) = dc.poll().await {
            if let DataChannelEvent::OnMessage(m) = event {
                if &m.data[..] == b"done" {
                    return true;
                }
            }
        }
        false
    })
    .await
    .context("the page did not say done")?;
    if !done {
        bail!("the transfer channel closed before the page said done");
    }
    let elapsed = start.elapsed();
    let report = PageBlastReport {
        bytes,
        messages: bytes.div_ceil(CHUNK as u64),
        ms: elapsed.as_secs_f64() * 1000.0,
        mib_per_s: mib_per_s(bytes, elapsed),
    };
    // Still running until standard input closes: whoever drives it can
    // read this process's CPU time meanwhile.
    println!("{}", serde_json::to_string(&report)?);
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    link.close().await;
    Ok(())
}

/// Two engines in the room of `link`: `bytes` offered by one, fetched by
/// the other.
async fn transfer(link: &str, bytes: u64) -> Result<Timed> {
    let scratch = std::env::temp_dir().join(format!("peerchat-bench-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let path = scratch.join("payload.bin");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let block: Vec<u8> = (0..1u32 << 20)
            .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[0])
            .collect();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            out.write_all(&block[..n])?;
            left -= n as u64;
        }
    }
    let mut sender_options = crate::options(link, "offerer")?;
    sender_options.download_dir = None;
    let mut receiver_options = crate::options(link, "fetcher")?;
    receiver_options.download_dir = Some(scratch.join("in"));
    receiver_options.accept_files = u64::MAX;
    let (sender, mut sender_events) = Engine::start(sender_options);
    crate::joined(&mut sender_events).await?;
    let (receiver, mut events) = Engine::start(receiver_options);
    crate::joined(&mut events).await?;
    // Wait until the two are connected: a message goes across.
    sender.send("ready?")?;
    loop {
        if let Event::Message(m) = crate::next(&mut events).await? {
            if m.text == "ready?" {
                break;
            }
        }
    }
    let offered = sender.offer_file(None, &path).await?;
    let mut start = None;
    let mut cpu = 0.0;
    let elapsed = tokio::time::timeout(Duration::from_secs(3600), async {
        while let Some(event) = events.recv().await {
            match event {
                Event::FileOffered { file, .. } if file.fid == offered.fid => {
                    start = Some(Instant::now());
                    cpu = cpu_now()?;
                }
                Event::FileSaved { fid, sha256, .. } if fid == offered.fid => {
                    if sha256 != offered.sha256 {
                        bail!("the file saved does not match");
                    }
                    return Ok(start.map(|s| s.elapsed()).unwrap_or_default());
                }
                Event::FileFailed { fid, reason, .. } if fid == offered.fid => {
                    bail!("the transfer failed: {reason}")
                }
                _ => {}
            }
        }
        bail!("the engine stopped")
    })
    .await
    .context("the file did not arrive in time")??;
    let cpu_s = cpu_now()? - cpu;
    sender.leave().await;
    receiver.leave().await;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(Timed { elapsed, cpu_s })
}

pub async fn run(link: &str, bytes: u64) -> Result<Report> {
    let bare = blast(bytes, false).await?;
    let checked = blast(bytes, true).await?;
    let file = transfer(link, bytes).await?;
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let rate = |t: &Timed| mib_per_s(bytes, t.elapsed);
    let cpu_per_mib = |t: &Timed| t.cpu_s * 1000.0 / mib;
    Ok(Report {
        bytes,
        blast_ms: bare.elapsed.as_secs_f64() * 1000.0,
        blast_mib_per_s: rate(&bare),
        checked_blast_mib_per_s: rate(&checked),
        file_ms: file.elapsed.as_secs_f64() * 1000.0,
        file_mib_per_s: rate(&file),
        ratio: rate(&file) / rate(&bare),
        ratio_to_checked: rate(&file) / rate(&checked),
        blast_cpu_ms_per_mib: cpu_per_mib(&bare),
        checked_blast_cpu_ms_per_mib: cpu_per_mib(&checked),
        file_cpu_ms_per_mib: cpu_per_mib(&file),
    })
}
