//! File transfer throughput between two native clients, against a bare
//! data-channel blast between the same two stacks in the same run.
//!
//! The bare blast connects two webrtc-rs links directly (their signals
//! handed across in this process), opens one transfer channel and sends
//! 16 KiB binary messages as fast as the channel takes them: the ceiling
//! any protocol on these stacks can reach. The file transfer runs two
//! engines in a room of the given server: one offers a file, the other
//! fetches it (hash list, pieces checked, written to disk, whole file
//! checked) into a scratch download directory.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use peerchat_client::engine::{Engine, Event};
use peerchat_client::peer::{Link, LinkEvent, LinkOptions};
use serde::Serialize;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannelEvent;

/// Payload bytes per message, as a transfer channel carries them.
const CHUNK: usize = 16 * 1024;

#[derive(Debug, Serialize)]
pub struct Report {
    bytes: u64,
    /// Bare data channel: first message sent to last byte received.
    blast_ms: f64,
    blast_mib_per_s: f64,
    /// File transfer: offer received to file saved (hash list, pieces,
    /// writes, whole-file check).
    file_ms: f64,
    file_mib_per_s: f64,
    /// File throughput over the blast's.
    ratio: f64,
}

fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0)
}

/// Two links connected to each other in this process: `bytes` of 16 KiB
/// binary messages on a transfer channel, as fast as it goes.
pub async fn blast(bytes: u64) -> Result<Duration> {
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
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    sink.get_or_insert(tokio::spawn(async move {
        let mut got = 0u64;
        let mut first = None;
        while let Some(event) = sink_dc.poll().await {
            if let DataChannelEvent::OnMessage(m) = event {
                first.get_or_insert_with(Instant::now);
                got += (m.data.len() - 9) as u64;
                if got >= bytes {
                    let _ = done_tx.send(first.map(|f| f.elapsed()));
                    return;
                }
            }
        }
    }));
    // The opener sees its channel open.
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
    let received = tokio::time::timeout(Duration::from_secs(600), done_rx)
        .await
        .context("the blast did not arrive")??;
    let elapsed = start.elapsed().max(received.unwrap_or_default());
    a.close().await;
    b.close().await;
    Ok(elapsed)
}

/// Two engines in the room of `link`: `bytes` offered by one, fetched by
/// the other.
pub async fn transfer(link: &str, bytes: u64) -> Result<Duration> {
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
    let elapsed = tokio::time::timeout(Duration::from_secs(3600), async {
        while let Some(event) = events.recv().await {
            match event {
                Event::FileOffered { file, .. } if file.fid == offered.fid => {
                    start = Some(Instant::now());
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
    sender.leave().await;
    receiver.leave().await;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(elapsed)
}

pub async fn run(link: &str, bytes: u64) -> Result<Report> {
    let blast = blast(bytes).await?;
    let file = transfer(link, bytes).await?;
    let (blast_rate, file_rate) = (mib_per_s(bytes, blast), mib_per_s(bytes, file));
    Ok(Report {
        bytes,
        blast_ms: blast.as_secs_f64() * 1000.0,
        blast_mib_per_s: blast_rate,
        file_ms: file.as_secs_f64() * 1000.0,
        file_mib_per_s: file_rate,
        ratio: file_rate / blast_rate,
    })
}
