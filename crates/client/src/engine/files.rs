//! Files in the engine: the driver of `peerchat-transfer`.
//!
//! Offering hashes the file from disk piece by piece and adds a file offer to
//! the room's log (or to the private conversation with one member). Each
//! offer received is fetched by a task of its own driving a
//! [`Receiver`]: it opens transfer channels (label `file`) on the links to
//! the holders it picks, writes the pieces to a partial file in the download
//! directory as they arrive, and renames it when the whole file checks out.
//! Each transfer channel a member opens to us is served by a task driving a
//! [`Sender`]: it reads the file piece by piece and hands the channel data
//! only while it has room (webrtc-rs's send buffer limit and
//! `bufferedAmountLowThreshold`). The engine only starts these tasks, tells
//! the receivers which holders are up, and keeps the files held.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use peerchat_protocol::file::{FileMeta, hex};
use peerchat_transfer::wire::{Control, Reason};
use peerchat_transfer::{
    Canceller, FileHasher, Hash, ReceiverAction, ReceiverConfig, ReceiverState, Sender,
    SenderAction, SenderConfig, SenderState,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use super::{Event, Peer, State, now_ms};
use crate::peer::{Channel, LinkHandle};

/// The offers up to this size are fetched without asking, by default
/// (10 MiB, docs/protocol.md).
pub const DEFAULT_ACCEPT: u64 = 10 << 20;

/// How often a transfer's progress is told, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Most bytes written to a partial file at once.
const COALESCE: usize = 1 << 20;

/// Most channel events taken at once before carrying out what they ask.
const BATCH: usize = 64;

/// A holder waits this long for a `get` on a channel opened to it.
const GET_TIMEOUT: Duration = Duration::from_secs(15);

/// Where received files go by default: `$XDG_DOWNLOAD_DIR`, else the
/// download directory named in `$XDG_CONFIG_HOME/user-dirs.dirs`
/// (`~/.config/…`), else `~/Downloads`.
pub fn default_download_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    if let Some(dir) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(text) = config.and_then(|c| std::fs::read_to_string(c.join("user-dirs.dirs")).ok())
    {
        if let Some(dir) = user_dirs_download(&text, home.as_deref()) {
            return Some(dir);
        }
    }
    home.map(|h| h.join("Downloads"))
}

/// The download directory a `user-dirs.dirs` file names
/// (`XDG_DOWNLOAD_DIR="$HOME/Downloads"`): an absolute path, or one under
/// `$HOME`.
fn user_dirs_download(text: &str, home: Option<&Path>) -> Option<PathBuf> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("XDG_DOWNLOAD_DIR="))?;
    let value = line["XDG_DOWNLOAD_DIR=".len()..].trim_matches('"');
    if let Some(rest) = value.strip_prefix("$HOME") {
        let rest = rest.trim_start_matches('/');
        return home.map(|h| {
            if rest.is_empty() {
                h.to_owned()
            } else {
                h.join(rest)
            }
        });
    }
    value.starts_with('/').then(|| PathBuf::from(value))
}

/// A file offer, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// The file's id in the offer.
    pub fid: String,
    /// The plain name it is shown and saved under (docs/protocol.md, "File
    /// names"): never a path, no control or bidi characters.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, as offered.
    #[serde(rename = "type")]
    pub mime: String,
    /// The SHA-256 of the whole file, in lower-case hex.
    pub sha256: String,
    /// Who offered it.
    pub from: Peer,
    /// Whether we offered it.
    pub own: bool,
    /// Offered privately: the other party of the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private: Option<Peer>,
}

/// Why a file was not offered, or a command about files failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a regular file.
    #[error("{0} is not a file")]
    NotAFile(PathBuf),
    /// Over 1 TiB.
    #[error("{0} is too large to offer (over 1 TiB)")]
    TooLarge(PathBuf),
    /// No member has that nickname.
    #[error("nobody called {0:?} is here")]
    NoSuchMember(String),
    /// The offer could not be added to the log.
    #[error(transparent)]
    Send(#[from] peerchat_history::SendError),
}

/// Hashes the file at `path` from disk, piece by piece: its offer's
/// digests and hash list. Blocking: run it off the engine.
pub fn hash_file(path: &Path) -> Result<peerchat_transfer::Digests, FileError> {
    let read = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile(path.to_owned()));
    }
    let piece = peerchat_transfer::hash::piece_size_for(meta.len())
        .ok_or_else(|| FileError::TooLarge(path.to_owned()))?;
    let mut hasher = FileHasher::new(piece);
    let mut buf = vec![0; 1 << 18];
    let mut reader = std::io::BufReader::new(file);
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).map_err(read)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// The media type peerchat writes for the file at `path`, from its first
/// bytes.
fn media_type(path: &Path) -> &'static str {
    let mut prefix = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|f| f.read_at(&mut prefix, 0))
        .unwrap_or(0);
    peerchat_transfer::sniff::media_type(&prefix[..n])
}

/// A file this member holds whole and may serve.
#[derive(Clone)]
struct Held {
    meta: FileMeta,
    list: Arc<[Hash]>,
    path: PathBuf,
    /// Offered privately: the only member it is served to.
    only: Option<String>,
    /// Offered by us (not a file received and passed on).
    own: bool,
}

/// What the serving tasks share with the engine.
#[derive(Default)]
struct Registry {
    held: HashMap<String, Held>,
    /// Transfers served, per member.
    serving: HashMap<String, usize>,
    /// Transfers served, per file.
    in_flight: HashMap<String, usize>,
    /// Our offers withdrawn (`/cancel`): a `get` for one is answered
    /// `cancelled`, and the channels serving one are cancelled. Only our
    /// own offers of this run, so bounded by what the user offered.
    withdrawn: HashSet<String>,
}

/// The files part of the engine's state.
pub(super) struct Files {
    registry: Arc<Mutex<Registry>>,
    /// Bumped when an offer is withdrawn: the serving tasks look whether it
    /// is theirs.
    withdrawals: watch::Sender<u64>,
    /// The transfers fetching, by `fid`.
    receiving: HashMap<String, Receiving>,
    dir: Option<PathBuf>,
    auto_accept: u64,
}

struct Receiving {
    info: FileInfo,
    commands: mpsc::UnboundedSender<ToReceiver>,
    /// Waiting for the user to accept it.
    waiting: bool,
    /// Only this member may serve it (a private offer).
    only: Option<String>,
}

enum ToReceiver {
    Up(String, LinkHandle),
    Down(String),
    Accept,
    Cancel,
}

impl Files {
    pub(super) fn new(dir: Option<PathBuf>, auto_accept: u64) -> Self {
        Self {
            registry: Arc::default(),
            withdrawals: watch::Sender::new(0),
            receiving: HashMap::new(),
            dir,
            auto_accept,
        }
    }
}

/// Serialises a [`ReceiverState`] failure for people.
fn failure_text(state: ReceiverState) -> String {
    match state {
        ReceiverState::Failed(err) => err.to_string(),
        ReceiverState::Cancelled(Canceller::Us) => "cancelled".to_owned(),
        ReceiverState::Cancelled(Canceller::Author) => "cancelled by its author".to_owned(),
        _ => "stopped".to_owned(),
    }
}

impl State {
    /// `/send [NICK] PATH`, once the file is hashed.
    pub(super) fn offer_file(
        &mut self,
        to: Option<&str>,
        path: PathBuf,
        digests: peerchat_transfer::Digests,
    ) -> Result<FileInfo, FileError> {
        let to = match to {
            Some(nick) => Some(
                self.member_named(nick)
                    .ok_or_else(|| FileError::NoSuchMember(nick.to_owned()))?,
            ),
            None => None,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        let meta = digests.offer(&crate::random_id(), &name, media_type(&path));
        meta.validate()
            .map_err(|e| FileError::Send(peerchat_history::SendError::Invalid(e)))?;
        let identity = self.options.identity.clone();
        let id = crate::random_id();
        let nick = self.nick.clone();
        let message = match &to {
            None => {
                let recipients: Vec<String> =
                    self.mesh.members().map(|m| m.id().to_owned()).collect();
                let history = self
                    .history
                    .as_mut()
                    .ok_or(peerchat_history::SendError::Stopped)?;
                let (message, envelope) =
                    history.send_file(&identity, &id, &nick, meta.clone(), now_ms(), recipients)?;
                self.persist(std::slice::from_ref(&message), true);
                for current in self.links.values().filter(|c| c.usable()) {
                    current.link.send(envelope.clone());
                }
                message
            }
            Some(peer) => {
                let private = self
                    .private
                    .as_mut()
                    .ok_or(peerchat_history::SendError::Stopped)?;
                let (message, envelope) =
                    private.send_file(&identity, peer, &id, &nick, meta.clone(), now_ms())?;
                self.persist_private(peer, std::slice::from_ref(&message), true);
                if let Some(current) = self.links.get(peer).filter(|c| c.usable()) {
                    current.link.send(envelope);
                }
                message
            }
        };
        let held = Held {
            meta: meta.clone(),
            list: digests.pieces.into(),
            path,
            only: to.clone(),
            own: true,
        };
        lock(&self.files.registry)
            .held
            .insert(meta.fid.clone(), held);
        let info = self.file_info(&message.author, &meta, to.as_deref());
        self.emit(Event::FileOffered {
            file: info.clone(),
            waiting: false,
        });
        Ok(info)
    }

    /// The member called `nick` (exactly, or as its pin name).
    pub(super) fn member_named(&self, nick: &str) -> Option<String> {
        let wanted = peerchat_e2e::pin_name(nick);
        self.mesh
            .members()
            .find(|m| m.nick() == nick)
            .or_else(|| {
                self.mesh
                    .members()
                    .find(|m| peerchat_e2e::pin_name(m.nick()) == wanted)
            })
            .map(|m| m.id().to_owned())
    }

    fn file_info(&self, author: &str, meta: &FileMeta, private: Option<&str>) -> FileInfo {
        FileInfo {
            fid: meta.fid.clone(),
            name: peerchat_transfer::name::sanitize(&meta.name),
            size: meta.size,
            mime: meta.mime.clone(),
            sha256: hex(&meta.sha256),
            from: self.peer_of(author),
            own: self.history.as_ref().is_some_and(|h| h.me() == author),
            private: private.map(|p| self.peer_of(p)),
        }
    }

    /// A file offer entered a log (the room's, or the private conversation
    /// with `private`): shown, and fetched unless it is ours or was kept
    /// from an earlier run.
    pub(super) fn file_offered(
        &mut self,
        author: &str,
        meta: &FileMeta,
        private: Option<&str>,
        stored: bool,
    ) {
        let info = self.file_info(author, meta, private);
        // An offer kept from an earlier run is fetched only if that run
        // was fetching it when it ended (its partial file is there).
        let resumes = stored
            && self
                .files
                .dir
                .as_ref()
                .is_some_and(|dir| record_path(dir, &meta.fid).is_file());
        if info.own || (stored && !resumes) || self.files.receiving.contains_key(&meta.fid) {
            if !info.own {
                self.emit(Event::FileOffered {
                    file: info,
                    waiting: false,
                });
            }
            return;
        }
        let Some(dir) = self.files.dir.clone() else {
            self.emit(Event::FileOffered {
                file: info,
                waiting: false,
            });
            return;
        };
        let config = ReceiverConfig {
            auto_accept: self.files.auto_accept,
            ..ReceiverConfig::default()
        };
        let waiting = config.auto_accept == 0 || meta.size > config.auto_accept;
        let (tx, rx) = mpsc::unbounded_channel();
        let only = private.map(str::to_owned);
        // Who may serve it: anyone up for a room offer; the other party
        // only for a private one.
        for (peer, current) in &self.links {
            if current.usable() && only.as_ref().is_none_or(|o| o == peer) {
                let _ = tx.send(ToReceiver::Up(peer.clone(), current.link.handle()));
            }
        }
        let task = ReceiveTask {
            meta: meta.clone(),
            info: info.clone(),
            dir,
            events: self.events.clone(),
            registry: self.files.registry.clone(),
            only: only.clone(),
        };
        tokio::spawn(task.run(author.to_owned(), config, rx));
        self.files.receiving.insert(
            meta.fid.clone(),
            Receiving {
                info: info.clone(),
                commands: tx,
                waiting,
                only,
            },
        );
        self.emit(Event::FileOffered {
            file: info,
            waiting,
        });
    }

    /// `peer`'s link is up (verified): the transfers may fetch from it.
    pub(super) fn files_peer_up(&mut self, peer: &str) {
        let Some(handle) = self
            .links
            .get(peer)
            .filter(|c| c.usable())
            .map(|c| c.link.handle())
        else {
            return;
        };
        self.files.receiving.retain(|_, r| {
            if r.only.as_ref().is_some_and(|o| o != peer) {
                return true;
            }
            r.commands
                .send(ToReceiver::Up(peer.to_owned(), handle.clone()))
                .is_ok()
        });
    }

    /// `peer`'s link is down.
    pub(super) fn files_peer_down(&mut self, peer: &str) {
        self.files
            .receiving
            .retain(|_, r| r.commands.send(ToReceiver::Down(peer.to_owned())).is_ok());
    }

    /// `/accept [NAME]`: the offers waiting whose name is NAME (all of them
    /// without one) are fetched.
    pub(super) fn accept_files(&mut self, name: Option<&str>) -> Vec<FileInfo> {
        let mut accepted = Vec::new();
        for r in self.files.receiving.values_mut() {
            if r.waiting && name.is_none_or(|n| n == r.info.name || n == r.info.fid) {
                if r.commands.send(ToReceiver::Accept).is_ok() {
                    accepted.push(r.info.clone());
                }
                r.waiting = false;
            }
        }
        accepted
    }

    /// `/cancel [NAME]`: stops fetching the files not complete yet, and
    /// withdraws our offers: every channel serving one is cancelled
    /// (`cancel`, `cancelled`: its receivers show it cancelled by its
    /// author) and it is never served again. With a name, the files and
    /// offers of that plain name (or id); without, every file being fetched
    /// and every offer of ours being served.
    pub(super) fn cancel_files(&mut self, name: Option<&str>) -> Vec<FileInfo> {
        let mut cancelled = Vec::new();
        self.files.receiving.retain(|_, r| {
            if name.is_none_or(|n| n == r.info.name || n == r.info.fid) {
                if r.commands.send(ToReceiver::Cancel).is_ok() {
                    cancelled.push(r.info.clone());
                }
                return false;
            }
            true
        });
        let withdrawn: Vec<Held> = {
            let mut registry = lock(&self.files.registry);
            let registry = &mut *registry;
            let fids: Vec<String> = registry
                .held
                .iter()
                .filter(|(fid, held)| {
                    held.own
                        && match name {
                            Some(n) => {
                                n == peerchat_transfer::name::sanitize(&held.meta.name)
                                    || n == fid.as_str()
                            }
                            None => registry.in_flight.contains_key(fid.as_str()),
                        }
                })
                .map(|(fid, _)| fid.clone())
                .collect();
            fids.into_iter()
                .filter_map(|fid| {
                    registry.withdrawn.insert(fid.clone());
                    registry.held.remove(&fid)
                })
                .collect()
        };
        if withdrawn.is_empty() {
            return cancelled;
        }
        self.files.withdrawals.send_modify(|n| *n += 1);
        let me = self.history.as_ref().map(|h| h.me().to_owned());
        for held in withdrawn {
            let info = self.file_info(
                me.as_deref().unwrap_or_default(),
                &held.meta,
                held.only.as_deref(),
            );
            self.emit(Event::FileWithdrawn { file: info.clone() });
            cancelled.push(info);
        }
        cancelled
    }

    /// A member opened a transfer channel to us: it is served if its hello
    /// verified, by a task of its own. One that comes before the hello waits
    /// for it (the member may have verified ours first and asked at once):
    /// what it asks meanwhile stays in the channel's queue.
    pub(super) fn file_channel(&mut self, peer: &str, channel: Channel) {
        let channel = match self.links.get_mut(peer) {
            Some(current) if current.verified.is_some() => channel,
            Some(current) if current.early_files.len() < MAX_FILE_CHANNELS_BEFORE_HELLO => {
                current.early_files.push(channel);
                return;
            }
            _ => {
                close_in_background(channel.0);
                return;
            }
        };
        let dc = channel.0;
        let task = ServeTask {
            peer: peer.to_owned(),
            dc,
            registry: self.files.registry.clone(),
            withdrawals: self.files.withdrawals.subscribe(),
        };
        tokio::spawn(task.run());
    }
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a channel's reader task forwards.
enum ChannelEvent {
    Open,
    Text(String),
    Binary(bytes::Bytes),
    Low,
    Closed,
}

/// How long a channel's reader still takes messages after webrtc-rs says
/// the channel closed. Its driver hands over a connection's events before
/// the messages it read in the same pass, so a message sent just before the
/// other side closed (a `cancel`, typically: "sends `cancel`, then closes")
/// comes after the close event, and nothing marks the last one.
const AFTER_CLOSE: Duration = Duration::from_millis(250);

/// Forwards a data channel's events, tagged, until it closes (and the
/// messages that arrived before its close, see [`AFTER_CLOSE`]).
fn read_channel<T: Clone + Send + 'static>(
    dc: Arc<dyn DataChannel>,
    tag: T,
    out: mpsc::UnboundedSender<(T, ChannelEvent)>,
) {
    tokio::spawn(async move {
        let mut closed = false;
        loop {
            let next = if closed {
                tokio::time::timeout(AFTER_CLOSE, dc.poll())
                    .await
                    .ok()
                    .flatten()
            } else {
                dc.poll().await
            };
            let Some(event) = next else { break };
            let event = match event {
                DataChannelEvent::OnOpen => ChannelEvent::Open,
                DataChannelEvent::OnMessage(m) if m.is_string => {
                    match String::from_utf8(m.data.to_vec()) {
                        Ok(text) => ChannelEvent::Text(text),
                        Err(_) => ChannelEvent::Binary(bytes::Bytes::new()),
                    }
                }
                // The message's own memory, not copied.
                DataChannelEvent::OnMessage(m) => ChannelEvent::Binary(m.data.freeze()),
                DataChannelEvent::OnBufferedAmountLow => ChannelEvent::Low,
                DataChannelEvent::OnClose => {
                    closed = true;
                    continue;
                }
                _ => continue,
            };
            if out.send((tag.clone(), event)).is_err() {
                return;
            }
        }
        let _ = out.send((tag, ChannelEvent::Closed));
    });
}

/// How long a channel being closed may take to send what it was handed
/// before (see [`close_when_sent`]).
const CLOSE_DRAIN: Duration = Duration::from_secs(5);

/// How long a side that sent `cancel` waits for the other side to close
/// the channel (see [`close_when_sent`]).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Closes `dc` after a `cancel` handed to it: once that has been sent and
/// acknowledged (webrtc-rs drops the messages still queued when a channel
/// closes, so it would never reach the other side), and once the other
/// side, told, has closed the channel in turn (or after [`CLOSE_WAIT`]).
/// Meanwhile what arrives is read and dropped (`events` is the channel's
/// reader, [`read_channel`]): webrtc-rs keeps a stream whose messages were
/// not all read when it closed from ever being reset, while the other side
/// lets its id go, so the next channel the other side opens, given that id,
/// would never open.
async fn close_when_sent<T>(
    dc: &Arc<dyn DataChannel>,
    events: &mut mpsc::UnboundedReceiver<(T, ChannelEvent)>,
) {
    // Told (`Low`) when the amount buffered falls to nothing.
    let _ = dc.set_buffered_amount_low_threshold(0).await;
    let closed = tokio::time::timeout(CLOSE_DRAIN, async {
        while dc.outstanding_bytes().await.is_ok_and(|n| n > 0) {
            match events.recv().await {
                Some((_, ChannelEvent::Closed)) | None => return true,
                Some(_) => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !closed {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            loop {
                match events.recv().await {
                    Some((_, ChannelEvent::Closed)) | None => return,
                    Some(_) => {}
                }
            }
        })
        .await;
    }
    let _ = dc.close().await;
}

/// Closes `dc` without waiting for its closing to finish.
pub(super) fn close_in_background(dc: Arc<dyn DataChannel>) {
    tokio::spawn(async move {
        let _ = dc.close().await;
    });
}

/// Sleeps until `deadline` (engine milliseconds since `epoch`), or never.
async fn sleep_until_ms(epoch: Instant, deadline: Option<u64>) {
    match deadline {
        Some(ms) => tokio::time::sleep_until((epoch + Duration::from_millis(ms)).into()).await,
        None => std::future::pending().await,
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The holder's side of one transfer channel.
struct ServeTask {
    peer: String,
    dc: Arc<dyn DataChannel>,
    registry: Arc<Mutex<Registry>>,
    withdrawals: watch::Receiver<u64>,
}

impl ServeTask {
    async fn run(mut self) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        read_channel(self.dc.clone(), (), tx);
        let epoch = Instant::now();
        // The first message must be `get`.
        let get = tokio::time::timeout(GET_TIMEOUT, async {
            loop {
                match rx.recv().await {
                    Some(((), ChannelEvent::Text(text))) => return Some(text),
                    Some(((), ChannelEvent::Closed)) | None => return None,
                    Some(_) => {}
                }
            }
        })
        .await;
        let Ok(Some(text)) = get else {
            let _ = self.dc.close().await;
            return;
        };
        let Ok(Control::Get {
            fid,
            sha256,
            list,
            chunk,
        }) = Control::parse(&text)
        else {
            return self.refuse(Reason::Protocol, &mut rx).await;
        };
        let held = {
            let mut registry = lock(&self.registry);
            let held = registry
                .held
                .get(&fid)
                .filter(|h| h.meta.sha256 == sha256)
                .filter(|h| h.only.as_ref().is_none_or(|o| *o == self.peer))
                .cloned();
            let total: usize = registry.serving.values().sum();
            let mine = registry.serving.get(&self.peer).copied().unwrap_or(0);
            match held {
                None if registry.withdrawn.contains(&fid) => Err(Reason::Cancelled),
                None => Err(Reason::Unavailable),
                Some(_)
                    if total >= peerchat_transfer::sender::MAX_SERVING
                        || mine >= peerchat_transfer::sender::MAX_SERVING_PER_PEER =>
                {
                    Err(Reason::Busy)
                }
                Some(held) => {
                    *registry.serving.entry(self.peer.clone()).or_default() += 1;
                    *registry.in_flight.entry(fid.clone()).or_default() += 1;
                    Ok(held)
                }
            }
        };
        let held = match held {
            Ok(held) => held,
            Err(reason) => return self.refuse(reason, &mut rx).await,
        };
        let state = self.serve(&held, list, chunk, epoch, &mut rx).await;
        {
            let mut registry = lock(&self.registry);
            if let Some(n) = registry.serving.get_mut(&self.peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    registry.serving.remove(&self.peer);
                }
            }
            if let Some(n) = registry.in_flight.get_mut(&held.meta.fid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    registry.in_flight.remove(&held.meta.fid);
                }
            }
            if state == SenderState::Failed(peerchat_transfer::SenderError::Changed) {
                // It no longer matches its offer: never served again.
                registry.held.remove(&held.meta.fid);
            }
        }
        let _ = self.dc.close().await;
    }

    async fn refuse(&self, reason: Reason, rx: &mut mpsc::UnboundedReceiver<((), ChannelEvent)>) {
        let _ = self
            .dc
            .send_text(&Control::Cancel { reason }.to_json())
            .await;
        close_when_sent(&self.dc, rx).await;
    }

    async fn serve(
        &mut self,
        held: &Held,
        list: bool,
        chunk: Option<u64>,
        epoch: Instant,
        rx: &mut mpsc::UnboundedReceiver<((), ChannelEvent)>,
    ) -> SenderState {
        let file = match std::fs::File::open(&held.path) {
            Ok(file) => file,
            Err(err) => {
                tracing::warn!(%err, path = %held.path.display(), "cannot read a file offered");
                self.refuse(Reason::Changed, rx).await;
                return SenderState::Failed(peerchat_transfer::SenderError::Changed);
            }
        };
        // Whole pieces are read at once where a piece is at most
        // `READ_WHOLE` (files up to 4 GiB, as peerchat cuts them), so that
        // the reading thread hashes them.
        let config = SenderConfig {
            read_bytes: held
                .meta
                .piece
                .clamp(SenderConfig::default().read_bytes, READ_WHOLE),
            ..SenderConfig::default()
        };
        let file = Arc::new(file);
        // The read under way: where, and the task reading.
        let mut reading: Option<(u64, tokio::task::JoinHandle<Read>)> = None;
        let _ = self
            .dc
            .set_buffered_amount_low_threshold(u32::try_from(config.low_water).unwrap_or(u32::MAX))
            .await;
        let (mut sender, first) = Sender::new(
            held.meta.clone(),
            held.list.clone(),
            list,
            chunk,
            config,
            ms_since(epoch),
        );
        let mut queue: VecDeque<SenderAction> = first.into();
        loop {
            // Carry out what it asks, feeding back reads and the amount
            // buffered after each batch of sends.
            let mut sent = false;
            loop {
                // A read asked for starts first, whatever is before it: the
                // sends before it wait for room in the channel, and the
                // read runs meanwhile.
                let read = queue
                    .iter()
                    .position(|a| matches!(a, SenderAction::Read { .. }));
                let Some(action) = read
                    .and_then(|i| queue.remove(i))
                    .or_else(|| queue.pop_front())
                else {
                    break;
                };
                match action {
                    SenderAction::SendText(text) => {
                        let _ = self.dc.send_text(&text).await;
                    }
                    SenderAction::SendBinary(bytes) => {
                        // Waits while the channel holds more than webrtc-rs's
                        // send buffer limit.
                        // (A vector's own memory, not copied.)
                        let message = bytes::Bytes::from(bytes)
                            .try_into_mut()
                            .unwrap_or_else(|b| BytesMut::from(&b[..]));
                        if self.dc.send(message).await.is_err() {
                            queue.extend(sender.closed(ms_since(epoch)));
                        }
                        sent = true;
                    }
                    SenderAction::Read { offset, len } => {
                        // Off this task, which goes on sending what it
                        // has meanwhile: the channel never waits for the
                        // disk or the hash.
                        let whole = held.meta.piece > 0
                            && offset % held.meta.piece == 0
                            && len == held.meta.piece_len(offset / held.meta.piece);
                        let file = file.clone();
                        reading = Some((
                            offset,
                            tokio::task::spawn_blocking(move || {
                                read_hashed(&file, offset, len, whole)
                            }),
                        ));
                    }
                    SenderAction::Close => close_when_sent(&self.dc, rx).await,
                    SenderAction::State(state) => {
                        if state != SenderState::Serving {
                            return state;
                        }
                    }
                }
                if queue.is_empty() && sent {
                    sent = false;
                    let amount = self.dc.outstanding_bytes().await.unwrap_or(0) as u64;
                    queue.extend(sender.buffered(amount, ms_since(epoch)));
                }
            }
            let deadline = sender.next_deadline();
            tokio::select! {
                event = rx.recv() => match event {
                    Some(((), ChannelEvent::Text(text))) => {
                        queue.extend(sender.text(&text, ms_since(epoch)));
                    }
                    Some(((), ChannelEvent::Low)) => {
                        let amount = self.dc.outstanding_bytes().await.unwrap_or(0) as u64;
                        queue.extend(sender.buffered(amount, ms_since(epoch)));
                    }
                    Some(((), ChannelEvent::Binary(_))) => {
                        queue.extend(sender.text("", ms_since(epoch)));
                    }
                    Some(((), ChannelEvent::Open)) => {}
                    Some(((), ChannelEvent::Closed)) | None => {
                        queue.extend(sender.closed(ms_since(epoch)));
                    }
                },
                () = sleep_until_ms(epoch, deadline), if deadline.is_some() => {
                    queue.extend(sender.handle_timeout(ms_since(epoch)));
                }
                read = async { (&mut reading.as_mut().expect("reading").1).await }, if reading.is_some() => {
                    let offset = reading.take().map_or(0, |(offset, _)| offset);
                    // A read that failed to run read nothing: a short read.
                    let read = read.unwrap_or(Read { offset, bytes: Vec::new(), digest: None });
                    queue.extend(sender.read(read.offset, read.bytes, read.digest, ms_since(epoch)));
                }
                Ok(()) = self.withdrawals.changed() => {
                    // Its author withdrew the offer: `cancel`, then close.
                    if lock(&self.registry).withdrawn.contains(&held.meta.fid) {
                        queue.extend(sender.cancel(ms_since(epoch)));
                    }
                }
            }
            if queue.is_empty() && sender.state() != SenderState::Serving {
                return sender.state();
            }
        }
    }
}

/// Bytes a holder reads from its file at once, at most: a whole piece
/// when a piece is no larger.
const READ_WHOLE: u64 = 1 << 20;

/// A read of a file served, and the SHA-256 of what it read if that was a
/// whole piece.
struct Read {
    offset: u64,
    bytes: Vec<u8>,
    digest: Option<Hash>,
}

/// Reads `len` bytes at `offset` (fewer at the end of the file), and hashes
/// them if they are a `whole` piece.
fn read_hashed(file: &std::fs::File, offset: u64, len: u64, whole: bool) -> Read {
    let len = usize::try_from(len).unwrap_or(0);
    let mut bytes = vec![0; len];
    let n = read_fully(file, &mut bytes, offset);
    bytes.truncate(n);
    let digest = (whole && n == len).then(|| peerchat_transfer::hash::sha256(&bytes));
    Read {
        offset,
        bytes,
        digest,
    }
}

/// Reads up to `buf.len()` bytes at `offset`; fewer at the end of the file.
fn read_fully(file: &std::fs::File, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    done
}

/// The fetching side of one offer.
struct ReceiveTask {
    meta: FileMeta,
    info: FileInfo,
    dir: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    registry: Arc<Mutex<Registry>>,
    only: Option<String>,
}

/// A transfer channel of a receiver, per holder.
struct Source {
    generation: u64,
    dc: Option<Arc<dyn DataChannel>>,
}

/// The partial file of the offer `fid` in the download directory `dir`:
/// hidden, never under the file's own name.
fn partial_path(dir: &Path, fid: &str) -> PathBuf {
    dir.join(format!(".peerchat-{fid}.part"))
}

/// The record, next to the partial file, of the pieces held and checked,
/// so that a transfer cut by the client's end resumes when it starts again
/// (the pieces it names are read back and checked before they count).
fn record_path(dir: &Path, fid: &str) -> PathBuf {
    dir.join(format!(".peerchat-{fid}.have"))
}

/// `file` channels kept from a member whose hello has not verified yet;
/// more are closed.
pub(super) const MAX_FILE_CHANNELS_BEFORE_HELLO: usize = 8;

/// How often the record of pieces held is written, at most.
const RECORD_EVERY: Duration = Duration::from_millis(250);

/// What the record holds: the offer's SHA-256 (a record of another file
/// under the same id is ignored) and what the receiver keeps.
#[derive(Serialize, serde::Deserialize)]
struct Record {
    sha256: String,
    saved: peerchat_transfer::receiver::Saved,
}

impl ReceiveTask {
    fn partial_path(&self) -> PathBuf {
        partial_path(&self.dir, &self.meta.fid)
    }

    fn record_path(&self) -> PathBuf {
        record_path(&self.dir, &self.meta.fid)
    }

    /// What an earlier run kept of this transfer: its partial file is
    /// there, and its record is of this very file.
    fn load_record(&self) -> Option<peerchat_transfer::receiver::Saved> {
        if !self.partial_path().is_file() {
            return None;
        }
        let text = std::fs::read(self.record_path()).ok()?;
        let record: Record = serde_json::from_slice(&text).ok()?;
        (record.sha256 == self.info.sha256).then_some(record.saved)
    }

    /// Writes the record (through a temporary file, so a crash never
    /// leaves half of one).
    fn store_record(&self, saved: peerchat_transfer::receiver::Saved) {
        let record = Record {
            sha256: self.info.sha256.clone(),
            saved,
        };
        let Ok(text) = serde_json::to_vec(&record) else {
            return;
        };
        let tmp = self
            .dir
            .join(format!(".peerchat-{}.have.new", self.meta.fid));
        if let Err(err) =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, self.record_path()))
        {
            tracing::debug!(%err, "could not keep the record of a transfer");
        }
    }

    fn forget(&self) {
        let _ = std::fs::remove_file(self.partial_path());
        let _ = std::fs::remove_file(self.record_path());
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn fail(&self, reason: String) {
        self.forget();
        self.emit(Event::FileFailed {
            fid: self.info.fid.clone(),
            name: self.info.name.clone(),
            reason,
        });
    }

    async fn run(
        self,
        author: String,
        config: ReceiverConfig,
        mut commands: mpsc::UnboundedReceiver<ToReceiver>,
    ) {
        let epoch = Instant::now();
        // What an earlier run kept: its pieces are read back and checked.
        let mut file: Option<std::fs::File> = None;
        let mut receiver = match self.load_record() {
            Some(saved) => match self.open_partial() {
                Ok(partial) => {
                    file = Some(partial);
                    peerchat_transfer::Receiver::restore(self.meta.clone(), author, saved, config)
                }
                Err(_) => peerchat_transfer::Receiver::new(self.meta.clone(), author, config),
            },
            None => peerchat_transfer::Receiver::new(self.meta.clone(), author, config),
        };
        // Bytes of pieces that arrived over the network in this run.
        let mut received = 0u64;
        // Pieces checked since the record was last written, and when.
        let mut verified = false;
        let mut recorded: Option<Instant> = None;
        let mut links: HashMap<String, LinkHandle> = HashMap::new();
        let mut sources: HashMap<String, Source> = HashMap::new();
        let mut generation = 0u64;
        let (chan_tx, mut chan_rx) = mpsc::unbounded_channel::<((String, u64), ChannelEvent)>();
        let (open_tx, mut open_rx) =
            mpsc::unbounded_channel::<(String, u64, Option<Arc<dyn DataChannel>>)>();
        let mut last_progress: Option<Instant> = None;
        let mut stalled = false;
        // Bytes to write at an offset, not written yet.
        let mut pending: Option<(u64, Vec<u8>)> = None;
        // Why it stops, when the driver stops it.
        let mut failure: Option<String> = None;
        let mut queue: VecDeque<ReceiverAction> = receiver.start(ms_since(epoch)).into();
        loop {
            while let Some(action) = queue.pop_front() {
                let now = ms_since(epoch);
                match action {
                    ReceiverAction::Open { peer } => {
                        generation += 1;
                        sources.insert(
                            peer.clone(),
                            Source {
                                generation,
                                dc: None,
                            },
                        );
                        match links.get(&peer).cloned() {
                            Some(handle) => {
                                let open_tx = open_tx.clone();
                                let g = generation;
                                tokio::spawn(async move {
                                    let dc = handle.open_file_channel().await.ok();
                                    let _ = open_tx.send((peer, g, dc));
                                });
                            }
                            None => queue.extend(receiver.closed(&peer, now)),
                        }
                    }
                    ReceiverAction::Send { peer, text } => {
                        if let Some(dc) = sources.get(&peer).and_then(|s| s.dc.clone()) {
                            let _ = dc.send_text(&text).await;
                        }
                    }
                    ReceiverAction::Close { peer } => {
                        if let Some(dc) = sources.remove(&peer).and_then(|s| s.dc) {
                            close_in_background(dc);
                        }
                    }
                    ReceiverAction::Write { offset, data } => {
                        // Writes that continue each other go to the file
                        // together (one system call, not one per 16 KiB).
                        match &mut pending {
                            Some((at, bytes))
                                if *at + bytes.len() as u64 == offset
                                    && bytes.len() + data.len() <= COALESCE =>
                            {
                                bytes.extend_from_slice(&data);
                            }
                            _ => {
                                if let Some(write) = pending.take() {
                                    queue.extend(self.flush(
                                        &mut file,
                                        write,
                                        &mut receiver,
                                        &mut failure,
                                        now,
                                    ));
                                }
                                let mut bytes = Vec::with_capacity(COALESCE.max(data.len()));
                                bytes.extend_from_slice(&data);
                                pending = Some((offset, bytes));
                            }
                        }
                    }
                    ReceiverAction::Read { offset, len } => {
                        if let Some(write) = pending.take() {
                            queue.extend(self.flush(
                                &mut file,
                                write,
                                &mut receiver,
                                &mut failure,
                                now,
                            ));
                        }
                        let mut buf = vec![0; usize::try_from(len).unwrap_or(0)];
                        let n = file.as_ref().map_or(0, |f| read_fully(f, &mut buf, offset));
                        buf.truncate(n);
                        queue.extend(receiver.read(offset, &buf, now));
                    }
                    ReceiverAction::Verified { .. } => verified = true,
                    ReceiverAction::Corrupt { piece, peer } => {
                        tracing::warn!(piece, ?peer, fid = %self.meta.fid, "a piece did not match its hash; fetching it again");
                    }
                    ReceiverAction::SourceFailed { peer, error } => {
                        tracing::debug!(%peer, ?error, fid = %self.meta.fid, "a holder failed");
                        if let Some(dc) = sources.remove(&peer).and_then(|s| s.dc) {
                            close_in_background(dc);
                        }
                    }
                    ReceiverAction::State(state) => match state {
                        ReceiverState::Complete => {
                            self.complete(file.take(), &receiver, received);
                            return;
                        }
                        ReceiverState::Failed(_) | ReceiverState::Cancelled(_) => {
                            for dc in sources.drain().filter_map(|(_, s)| s.dc) {
                                let _ = dc.close().await;
                            }
                            drop(file.take());
                            self.fail(failure.take().unwrap_or_else(|| failure_text(state)));
                            return;
                        }
                        ReceiverState::Stalled { .. } => {
                            stalled = true;
                            last_progress = None;
                        }
                        ReceiverState::Fetching | ReceiverState::Checking => {
                            if stalled {
                                stalled = false;
                                last_progress = None;
                            }
                        }
                        ReceiverState::Waiting => {}
                    },
                }
            }
            if let Some(write) = pending.take() {
                let now = ms_since(epoch);
                queue.extend(self.flush(&mut file, write, &mut receiver, &mut failure, now));
                continue;
            }
            if verified && recorded.is_none_or(|at| at.elapsed() >= RECORD_EVERY) {
                verified = false;
                recorded = Some(Instant::now());
                self.store_record(receiver.saved());
            }
            if matches!(
                receiver.state(),
                ReceiverState::Fetching | ReceiverState::Stalled { .. } | ReceiverState::Checking
            ) && last_progress.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY)
            {
                last_progress = Some(Instant::now());
                let progress = receiver.progress();
                self.emit(Event::FileProgress {
                    fid: self.meta.fid.clone(),
                    name: self.info.name.clone(),
                    bytes: progress.bytes,
                    size: progress.size,
                    stalled,
                });
            }
            let deadline = receiver.next_deadline();
            let now = || ms_since(epoch);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(ToReceiver::Up(peer, handle)) => {
                        if self.only.as_ref().is_none_or(|o| *o == peer) {
                            links.insert(peer.clone(), handle);
                            queue.extend(receiver.peer_up(&peer, now()));
                        }
                    }
                    Some(ToReceiver::Down(peer)) => {
                        links.remove(&peer);
                        sources.remove(&peer);
                        queue.extend(receiver.peer_down(&peer, now()));
                    }
                    Some(ToReceiver::Accept) => queue.extend(receiver.accept(now())),
                    Some(ToReceiver::Cancel) => queue.extend(receiver.cancel(now())),
                    None => {
                        // The engine stopped (the client quits): what
                        // arrived is kept, to resume on the next start.
                        for dc in sources.drain().filter_map(|(_, s)| s.dc) {
                            let _ = dc.close().await;
                        }
                        if !receiver.state().is_over() {
                            self.store_record(receiver.saved());
                        }
                        return;
                    }
                },
                Some((peer, g, dc)) = open_rx.recv() => {
                    match (sources.get_mut(&peer).filter(|s| s.generation == g), dc) {
                        (Some(source), Some(dc)) => {
                            source.dc = Some(dc.clone());
                            read_channel(dc, (peer, g), chan_tx.clone());
                        }
                        (Some(_), None) => queue.extend(receiver.closed(&peer, now())),
                        (None, Some(dc)) => {
                            close_in_background(dc);
                        }
                        (None, None) => {}
                    }
                },
                Some(first) = chan_rx.recv() => {
                    // What arrived meanwhile too, so that writes go
                    // together.
                    let mut next = Some(first);
                    let mut taken = 0;
                    while let Some(((peer, g), event)) = next.take() {
                        if sources.get(&peer).is_some_and(|s| s.generation == g) {
                            match event {
                                ChannelEvent::Open => queue.extend(receiver.opened(&peer, now())),
                                ChannelEvent::Text(text) => queue.extend(receiver.text(&peer, &text, now())),
                                ChannelEvent::Binary(bytes) => {
                                    if bytes.first() == Some(&1) {
                                        received += bytes.len().saturating_sub(9) as u64;
                                    }
                                    queue.extend(receiver.binary(&peer, &bytes, now()));
                                }
                                ChannelEvent::Low => {}
                                ChannelEvent::Closed => {
                                    sources.remove(&peer);
                                    queue.extend(receiver.closed(&peer, now()));
                                }
                            }
                        }
                        taken += 1;
                        if taken < BATCH {
                            next = chan_rx.try_recv().ok();
                        }
                    }
                },
                () = sleep_until_ms(epoch, deadline), if deadline.is_some() => {
                    queue.extend(receiver.handle_timeout(now()));
                }
            }
        }
    }

    /// Writes `data` at `offset` of the partial file (opened the first
    /// time): what the receiver answers, or its cancelling if the write
    /// failed (the reason kept in `failure`).
    fn flush(
        &self,
        file: &mut Option<std::fs::File>,
        (offset, data): (u64, Vec<u8>),
        receiver: &mut peerchat_transfer::Receiver,
        failure: &mut Option<String>,
        now: u64,
    ) -> Vec<ReceiverAction> {
        if file.is_none() {
            match self.open_partial() {
                Ok(f) => *file = Some(f),
                Err(err) => {
                    *failure = Some(format!("cannot write in {}: {err}", self.dir.display()));
                    return receiver.cancel(now);
                }
            }
        }
        match file.as_ref().map(|f| f.write_all_at(&data, offset)) {
            Some(Err(err)) => {
                *failure = Some(format!("cannot write the file: {err}"));
                receiver.cancel(now)
            }
            _ => receiver.written(data.len() as u64, now),
        }
    }

    fn open_partial(&self) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.partial_path())
    }

    /// The whole file checked out: saved under its plain name (numbered,
    /// never overwriting anything), and held from now on.
    fn complete(
        &self,
        file: Option<std::fs::File>,
        receiver: &peerchat_transfer::Receiver,
        received: u64,
    ) {
        let partial = self.partial_path();
        let made = match file {
            Some(file) => file.sync_all(),
            // An empty file: nothing was written.
            None => self.open_partial().and_then(|f| f.sync_all()),
        };
        if let Err(err) = made {
            return self.fail(format!("cannot write the file: {err}"));
        }
        let mut n = 0;
        let saved = loop {
            let name = peerchat_transfer::name::numbered(&self.info.name, n);
            let path = self.dir.join(&name);
            // A hard link never replaces anything.
            match std::fs::hard_link(&partial, &path) {
                Ok(()) => break Ok(path),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => {
                    n += 1;
                }
                Err(err) => break Err(err),
            }
        };
        self.forget();
        let path = match saved {
            Ok(path) => path,
            Err(err) => {
                return self.emit(Event::FileFailed {
                    fid: self.info.fid.clone(),
                    name: self.info.name.clone(),
                    reason: format!("cannot save it in {}: {err}", self.dir.display()),
                });
            }
        };
        let list: Arc<[Hash]> = receiver.hash_list().unwrap_or_default().into();
        lock(&self.registry).held.insert(
            self.meta.fid.clone(),
            Held {
                meta: self.meta.clone(),
                list,
                path: path.clone(),
                only: self.only.clone(),
                own: false,
            },
        );
        self.emit(Event::FileSaved {
            fid: self.info.fid.clone(),
            name: self.info.name.clone(),
            path,
            sha256: self.info.sha256.clone(),
            received,
        });
    }
}

/// Hashes `path` off the engine, for an offer.
pub(super) async fn hash_off_engine(
    path: PathBuf,
) -> Result<(PathBuf, peerchat_transfer::Digests), FileError> {
    tokio::task::spawn_blocking(move || hash_file(&path).map(|d| (path, d)))
        .await
        .unwrap_or_else(|e| {
            Err(FileError::Read {
                path: PathBuf::new(),
                source: std::io::Error::other(e.to_string()),
            })
        })
}

/// A reply channel for [`State::offer_file`].
pub(super) type OfferReply = oneshot::Sender<Result<FileInfo, FileError>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_directory_comes_from_user_dirs() {
        let home = Path::new("/home/ann");
        let text = "# written by xdg-user-dirs-update\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n";
        assert_eq!(
            user_dirs_download(text, Some(home)),
            Some(home.join("Téléchargements"))
        );
        assert_eq!(
            user_dirs_download("XDG_DOWNLOAD_DIR=\"/data/dl\"", Some(home)),
            Some(PathBuf::from("/data/dl"))
        );
        assert_eq!(
            user_dirs_download("XDG_DOWNLOAD_DIR=\"$HOME/\"", Some(home)),
            Some(home.to_owned())
        );
        assert_eq!(
            user_dirs_download("XDG_DOWNLOAD_DIR=\"dl\"", Some(home)),
            None
        );
        assert_eq!(user_dirs_download("", Some(home)), None);
    }

    /// A scratch directory named for `test` holding `x.bin`, 300,000 bytes
    /// that repeat every `period`: the directory, the file and its bytes.
    fn scratch_file(test: &str, period: u32) -> (PathBuf, PathBuf, Vec<u8>) {
        let dir = std::env::temp_dir().join(format!("peerchat-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.bin");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % period) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        (dir, path, data)
    }

    #[test]
    fn a_file_is_hashed_from_disk_as_its_offer_says() {
        let (dir, path, data) = scratch_file("hash", 253);
        let digests = hash_file(&path).unwrap();
        assert_eq!(digests.sha256, peerchat_transfer::hash::sha256(&data));
        assert_eq!(digests.pieces.len(), 2);
        assert!(matches!(hash_file(&dir), Err(FileError::NotAFile(_))));
        std::fs::write(&path, [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]).unwrap();
        assert_eq!(media_type(&path), "image/png");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_holder_reads_a_whole_piece_with_its_hash_and_a_short_one_without() {
        let (dir, path, data) = scratch_file("read", 251);
        let file = std::fs::File::open(&path).unwrap();
        // A whole piece: its bytes and their SHA-256.
        let read = read_hashed(&file, 1000, 5000, true);
        assert_eq!((read.offset, &read.bytes[..]), (1000, &data[1000..6000]));
        assert_eq!(
            read.digest,
            Some(peerchat_transfer::hash::sha256(&data[1000..6000]))
        );
        // Part of a piece: the machine hashes it.
        assert_eq!(read_hashed(&file, 0, 10, false).digest, None);
        // A file cut since it was offered: what is there, and no hash (the
        // machine finds the read short).
        let read = read_hashed(&file, 299_000, 5000, true);
        assert_eq!((read.bytes.len(), read.digest), (1000, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Two links of this client facing each other over real WebRTC, once
    /// both are open; the events after that (tag 2: the second link's).
    /// Inside the loopback-only network namespace (scripts/test.sh).
    async fn open_pair() -> (
        crate::peer::Link,
        crate::peer::Link,
        mpsc::UnboundedReceiver<(u64, crate::peer::LinkEvent)>,
    ) {
        let options = |me: &str, them: &str, initiator: bool| crate::peer::LinkOptions {
            self_id: me.to_owned(),
            peer_id: them.to_owned(),
            ice_servers: Vec::new(),
            sid: "close-test".to_owned(),
            initiator,
            relay_only: false,
            mdns: false,
            trickle: true,
        };
        let pair = crate::peer::Link::pair(
            options("aaaa", "bbbb", true),
            options("bbbb", "aaaa", false),
        );
        tokio::time::timeout(Duration::from_secs(20), pair)
            .await
            .expect("the pair opens")
            .expect("links")
    }

    /// A holder cancels while the fetcher is still asking for pieces (its
    /// `want`s on their way): the fetcher, told, stops and closes, and the
    /// next channel it opens on the connection opens. Closing at once,
    /// with the fetcher's last messages unread, left webrtc-rs's stream on
    /// the holder's side never reset while the fetcher's side let its id
    /// go: the next channel, given that id, never opened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_holder_that_cancels_while_the_fetcher_asks_leaves_the_next_channel_openable() {
        let (fetcher, _holder, mut events) = open_pair().await;
        for round in 0..8 {
            let dc = fetcher.handle().open_file_channel().await.unwrap();
            let opened = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(event) = dc.poll().await {
                    if matches!(event, DataChannelEvent::OnOpen) {
                        return true;
                    }
                }
                false
            })
            .await;
            assert_eq!(opened, Ok(true), "round {round}: the channel opens");
            // The fetcher asks and asks, until it has read a `cancel`: then
            // it closes, as fetchers do. A busy fetcher gets to the `cancel`
            // some time after it arrived (behind pieces received before it,
            // for which it asks for more): 50 ms here.
            let asking = dc.clone();
            let (cancelled_tx, mut cancelled) = watch::channel(false);
            let asker = tokio::spawn(async move {
                let mut i = 0u32;
                while !*cancelled.borrow_and_update() {
                    let want = format!("{{\"v\":1,\"type\":\"want\",\"pieces\":[{i}]}}");
                    if asking.send_text(&want).await.is_err() {
                        return;
                    }
                    i += 1;
                    tokio::task::yield_now().await;
                }
            });
            let reading = dc.clone();
            let reader = tokio::spawn(async move {
                while let Some(event) = reading.poll().await {
                    match event {
                        DataChannelEvent::OnMessage(m) if m.is_string => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let _ = cancelled_tx.send(true);
                            let _ = reading.close().await;
                        }
                        DataChannelEvent::OnClose => return,
                        _ => {}
                    }
                }
            });
            // The holder reads its channel as a serving task does, and
            // cancels on the first message.
            let channel = loop {
                let (tag, event) = tokio::time::timeout(Duration::from_secs(5), events.recv())
                    .await
                    .expect("the holder gets the channel")
                    .expect("events");
                if let (2, crate::peer::LinkEvent::FileChannel(c)) = (tag, event) {
                    break c.0;
                }
            };
            let (tx, mut rx) = mpsc::unbounded_channel();
            read_channel(channel.clone(), (), tx);
            while !matches!(rx.recv().await, Some(((), ChannelEvent::Text(_))) | None) {}
            let cancel = Control::Cancel {
                reason: Reason::Cancelled,
            };
            channel.send_text(&cancel.to_json()).await.unwrap();
            close_when_sent(&channel, &mut rx).await;
            tokio::time::timeout(Duration::from_secs(5), reader)
                .await
                .expect("the fetcher's channel closes")
                .unwrap();
            asker.await.unwrap();
            // As a fetcher backs off before asking again.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
