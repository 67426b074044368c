//! What the engine tests with a real server share: a server on
//! 127.0.0.1:0, engine options, waiting for events.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use peerchat_client::engine::{Engine, EngineOptions, Event, Peer};
use peerchat_server::{AppState, ServeArgs};
use tokio::sync::{mpsc, oneshot};

pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Starts a server on 127.0.0.1:0 (no TURN): its address, its state, and
/// a stopper (dropping it stops the server too).
pub async fn serve() -> (SocketAddr, AppState, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Flags::parse_from(["peerchat", "--no-turn"])
        .serve
        .into_config()
        .unwrap();
    let state = AppState::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(peerchat_server::run(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    (addr, state, stop)
}

/// Starts a server; returns its `ws://` URL and a stopper.
pub async fn server() -> (String, oneshot::Sender<()>) {
    let (addr, _, stop) = serve().await;
    (format!("ws://{addr}/ws"), stop)
}

/// Options to join `room` as `nick`, saving files in `downloads`.
pub fn options(ws_url: &str, room: &str, nick: &str, downloads: &Path) -> EngineOptions {
    let room = peerchat_client::session::Session::Room {
        ws_url: ws_url.to_owned(),
        room: room.to_owned(),
        secret: peerchat_client::session::Secret::from_random([9; 32]),
    };
    EngineOptions {
        mdns: false,
        download_dir: Some(downloads.to_owned()),
        ..EngineOptions::new(room, nick)
    }
}

pub type Events = mpsc::UnboundedReceiver<Event>;

/// A member started in a test: its engine, its events, and the events seen
/// so far.
pub struct Member {
    pub engine: Engine,
    pub events: Events,
    pub seen: Vec<Event>,
}

impl Member {
    /// `nick`, joined in `room`, saving files in `downloads` and fetching
    /// without asking those up to `accept_files` bytes (`None`: the
    /// client's default).
    pub async fn join(
        ws_url: &str,
        room: &str,
        nick: &str,
        downloads: &Path,
        accept_files: Option<u64>,
    ) -> Member {
        let mut options = options(ws_url, room, nick, downloads);
        if let Some(limit) = accept_files {
            options.accept_files = limit;
        }
        let (engine, mut events) = Engine::start(options);
        let mut seen = Vec::new();
        joined(&mut events, &mut seen).await;
        Member {
            engine,
            events,
            seen,
        }
    }
}

/// Alice, then bob, who takes files of any size without asking, joined in
/// `room`; each saves files in `dir/a` and `dir/b`.
pub async fn alice_and_bob(ws_url: &str, room: &str, dir: &Path) -> (Member, Member) {
    let alice = Member::join(ws_url, room, "alice", &dir.join("a"), None).await;
    let bob = Member::join(ws_url, room, "bob", &dir.join("b"), Some(u64::MAX)).await;
    (alice, bob)
}

/// The first event `pick` accepts; every event seen on the way is kept in
/// `seen`.
pub async fn expect<T>(
    events: &mut Events,
    seen: &mut Vec<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("engine running");
            let found = pick(&event);
            seen.push(event);
            if let Some(found) = found {
                return found;
            }
        }
    })
    .await
    .expect("the expected event in time")
}

/// The first event `pick` accepts, skipping (and forgetting) others.
pub async fn first<T>(events: &mut Events, pick: impl FnMut(&Event) -> Option<T>) -> T {
    expect(events, &mut Vec::new(), pick).await
}

pub async fn joined(events: &mut Events, seen: &mut Vec<Event>) -> Peer {
    expect(events, seen, |e| match e {
        Event::Joined { you, .. } => Some(you.clone()),
        _ => None,
    })
    .await
}

/// Waits until the room message `text` arrived (now or before).
pub async fn room_message(events: &mut Events, seen: &mut Vec<Event>, text: &str) {
    let is = |e: &Event| matches!(e, Event::Message(m) if m.text == text);
    if !seen.iter().any(is) {
        expect(events, seen, |e| is(e).then_some(())).await;
    }
}

/// Waits until part of the file `fid` (of `size` bytes) arrived, under half.
pub async fn partly_arrived(events: &mut Events, seen: &mut Vec<Event>, fid: &str, size: u64) {
    expect(events, seen, |e| match e {
        Event::FileProgress { fid: f, bytes, .. }
            if f == fid && *bytes > 0 && *bytes < size / 2 =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
}

/// Waits until the file `fid` was saved (now or before): where.
pub async fn saved(events: &mut Events, seen: &mut Vec<Event>, fid: &str) -> (PathBuf, String) {
    let pick = |e: &Event| match e {
        Event::FileSaved {
            fid: f,
            path,
            sha256,
            ..
        } if f == fid => Some((path.clone(), sha256.clone())),
        Event::FileFailed { fid: f, reason, .. } if f == fid => panic!("{fid} failed: {reason}"),
        _ => None,
    };
    if let Some(found) = seen.iter().find_map(pick) {
        return found;
    }
    expect(events, seen, pick).await
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    peerchat_protocol::file::hex(&peerchat_transfer::hash::sha256(bytes))
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peerchat-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bytes that differ from piece to piece.
pub fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}
