//! The link to Redis of a server that is one of a cluster: a thin adapter
//! that runs the Redis commands its [`Node`] asks for and hands back the
//! results, and reads the server's inbox. What to do about anything is the
//! node's business (`peerchat-cluster`); this module only moves bytes.
//!
//! Keys (the `{c}` hash tag keeps the control keys in one Redis Cluster
//! slot, so that a script may touch them together; each inbox has a slot of
//! its own):
//!
//! - `peerchat:{c}:nodes`: a hash of each server's lease expiry, in
//!   milliseconds on Redis's clock;
//! - `peerchat:{c}:clock`: when a script last ran, so that time Redis was
//!   not running (paused, restarting with its data) does not count against
//!   the leases;
//! - `peerchat:{c}:room:ROOM`: the id of the room's owner;
//! - `peerchat:{c}:turn-secret`: the TURN secret, when none was given;
//! - `peerchat:in:{NODE}`: the server's inbox, a stream of entries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use peerchat_cluster::{
    BeatResult, ClaimResult, ClusterConfig, Command, MailboxConfig, MailboxResult, Node, NodeId,
};
use peerchat_relay::Secret;
use peerchat_rooms::HubConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, RedisResult, Script, Value};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::AppState;
use crate::config::{ClusterSettings, Config};

const NODES: &str = "peerchat:{c}:nodes";
const CLOCK: &str = "peerchat:{c}:clock";
const TURN_SECRET: &str = "peerchat:{c}:turn-secret";

/// Entries an inbox keeps at most (roughly: trimmed by Redis in whole
/// blocks); its reader trims what it read every second.
const INBOX_MAX: usize = 10_000;

/// Entries read from the inbox at once.
const READ_COUNT: usize = 1024;

/// How long a read of the inbox blocks in Redis.
const READ_BLOCK: Duration = Duration::from_secs(1);

/// Room ownership records outlive this many refreshes.
const ROOM_TTL_REFRESHES: u32 = 3;

fn room_key(room: &str) -> String {
    format!("peerchat:{{c}}:room:{room}")
}

fn inbox_key(node: NodeId) -> String {
    format!("peerchat:in:{{{node}}}")
}

/// Starts every script: Redis's time in milliseconds (`now`), with the time
/// since the last script added to every lease when it is longer than
/// `ARGV[1]` (Redis was not running: nobody could renew); and `bury`, which
/// declares a server gone. KEYS[1] is the lease hash, KEYS[2] the clock.
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last > 0 and now - last > tonumber(ARGV[1]) then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    redis.call('HSET', KEYS[1], all[i], tonumber(all[i + 1]) + now - last)
  end
end
redis.call('SET', KEYS[2], now)
local function bury(node)
  redis.call('HDEL', KEYS[1], node)
  redis.call('DEL', 'peerchat:in:{' .. node .. '}')
end
";

/// ARGV[2] the server, ARGV[3] 1 to register, ARGV[4] the lease in ms.
/// Returns the live servers, or nothing when this one is dead to the
/// cluster. Servers whose lease ran out are declared gone.
const BEAT: &str = r"
local inbox = 'peerchat:in:{' .. ARGV[2] .. '}'
if ARGV[3] ~= '1' and redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
  return {}
end
redis.call('HSET', KEYS[1], ARGV[2], now + tonumber(ARGV[4]))
if redis.call('EXISTS', inbox) == 0 then
  redis.call('XADD', inbox, 'MAXLEN', '0', '*', 'm', '')
end
redis.call('PEXPIRE', inbox, 20 * tonumber(ARGV[4]))
local alive = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= now then bury(all[i]) else alive[#alive + 1] = all[i] end
end
return alive
";

/// KEYS[3] the room, ARGV[2] the server, ARGV[3] the record's lifetime in
/// ms. Returns the room's owner, taking it when it has none or its owner's
/// lease ran out (declaring that owner gone); nil when this server's own
/// lease ran out.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[3])
if owner == ARGV[2] then return owner end
if owner then
  local expiry = redis.call('HGET', KEYS[1], owner)
  if expiry and tonumber(expiry) > now then return owner end
  if expiry then bury(owner) end
end
local mine = redis.call('HGET', KEYS[1], ARGV[2])
if not mine or tonumber(mine) <= now then return false end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return ARGV[2]
";

/// KEYS[1] the room, ARGV[1] the server: gives the room up if it owns it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
";

/// KEYS the rooms, ARGV[1] the server, ARGV[2] the records' lifetime in
/// ms. Keeps alive the records of the rooms it owns; returns the (1-based)
/// positions of the others.
const REFRESH: &str = r"
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
";

/// KEYS[1] the lease hash, ARGV[1] the server: it leaves the cluster.
const DEREGISTER: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', 'peerchat:in:{' .. ARGV[1] .. '}')
return 0
";

#[derive(Debug)]
struct Scripts {
    beat: Script,
    claim: Script,
    release: Script,
    refresh: Script,
    deregister: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            beat: Script::new(&format!("{PRELUDE}{BEAT}")),
            claim: Script::new(&format!("{PRELUDE}{CLAIM}")),
            release: Script::new(RELEASE),
            refresh: Script::new(REFRESH),
            deregister: Script::new(DEREGISTER),
        }
    }
}

/// What the control task is asked to do.
#[derive(Debug)]
enum Control {
    Run(Command),
    /// Answer once everything before has run.
    Flush(oneshot::Sender<()>),
}

/// An entry to append to another server's inbox.
#[derive(Debug)]
enum Outgoing {
    Entry { to: NodeId, seq: u64, entry: Bytes },
    Flush(oneshot::Sender<()>),
}

/// A server's link to Redis: the channels to the tasks that talk to it.
#[derive(Debug)]
pub(crate) struct ClusterIo {
    client: redis::Client,
    lease: Duration,
    beat: Duration,
    control: mpsc::UnboundedSender<Control>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// The node has messages for other servers: the appending task takes
    /// them from it when it is free ([`Node::poll_entry`]).
    entries: Notify,
    /// Taken by [`ClusterIo::start`].
    receivers: Mutex<
        Option<(
            mpsc::UnboundedReceiver<Control>,
            mpsc::UnboundedReceiver<Outgoing>,
        )>,
    >,
    /// Whether the last command to Redis went through.
    up: AtomicBool,
    /// Mailbox requests waiting for their outcome, by number.
    mailbox_waiters: Mutex<HashMap<u64, oneshot::Sender<MailboxResult>>>,
    next_request: AtomicU64,
}

impl ClusterIo {
    /// The link (not connected yet) and this server's node.
    ///
    /// The channels carry what the node asked for, which the node bounds
    /// itself (bytes waiting for each other server, one claim per room, one
    /// beat per interval, coalesced here).
    pub(crate) fn new(
        settings: &ClusterSettings,
        hub: HubConfig,
        mailbox: Option<MailboxConfig>,
    ) -> (Self, Node) {
        let client = redis::Client::open(settings.url.as_str())
            .expect("the URL was checked with the configuration");
        let beat = (settings.lease / 5).max(Duration::from_millis(100));
        let config = ClusterConfig {
            lease: settings.lease,
            beat,
            mailbox,
            ..ClusterConfig::default()
        };
        let node = Node::new(config, hub, rand::random(), Instant::now());
        let (control, control_rx) = mpsc::unbounded_channel();
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let io = Self {
            client,
            lease: settings.lease,
            beat,
            control,
            outgoing,
            entries: Notify::new(),
            receivers: Mutex::new(Some((control_rx, outgoing_rx))),
            up: AtomicBool::new(false),
            mailbox_waiters: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
        };
        (io, node)
    }

    /// Whether Redis answered the last command.
    pub(crate) fn redis_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The node has messages for other servers (its entries are taken by
    /// the appending task when it is free).
    pub(crate) fn entries_waiting(&self) {
        self.entries.notify_one();
    }

    /// Passes on a command of the node's.
    pub(crate) fn submit(&self, command: Command) {
        // The tasks end only with the server.
        let _ = match command {
            Command::Send { to, seq, entry } => self
                .outgoing
                .send(Outgoing::Entry { to, seq, entry })
                .is_ok(),
            command => self.control.send(Control::Run(command)).is_ok(),
        };
    }

    /// A number for a new mailbox request, and where its outcome will come.
    pub(crate) fn mailbox_waiter(&self) -> (u64, oneshot::Receiver<MailboxResult>) {
        let req = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.mailbox_waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(req, tx);
        (req, rx)
    }

    /// A mailbox request ended (or its client went away: `None`).
    pub(crate) fn mailbox_done(&self, req: u64, result: Option<MailboxResult>) {
        let waiter = self
            .mailbox_waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&req);
        if let (Some(waiter), Some(result)) = (waiter, result) {
            let _ = waiter.send(result);
        }
    }

    /// Starts the tasks that talk to Redis.
    pub(crate) fn start(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(io) = state.cluster() else {
            return Vec::new();
        };
        let Some((control_rx, outgoing_rx)) = io
            .receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Vec::new();
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(io.lease))
            .set_response_timeout(Some(io.beat))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(2);
        let commands = match io.client.get_connection_manager_lazy(config) {
            Ok(commands) => commands,
            Err(err) => {
                tracing::error!(%err, "cannot use Redis");
                return Vec::new();
            }
        };
        vec![
            tokio::spawn(run_control(state.clone(), control_rx, commands.clone())),
            tokio::spawn(run_outgoing(state.clone(), outgoing_rx, commands)),
            tokio::spawn(run_inbox(state.clone())),
        ]
    }

    /// Resolves once what was submitted before has been run (or after
    /// `within`), so that a stopping server's last words reach Redis.
    pub(crate) async fn flush(&self, within: Duration) {
        let (a, a_rx) = oneshot::channel();
        let (b, b_rx) = oneshot::channel();
        let _ = self.control.send(Control::Flush(a));
        let _ = self.outgoing.send(Outgoing::Flush(b));
        let _ = tokio::time::timeout(within, async {
            let _ = a_rx.await;
            let _ = b_rx.await;
        })
        .await;
    }

    fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!("Redis reachable");
            } else {
                tracing::warn!("Redis unreachable: rooms on other servers wait for it");
            }
        }
    }
}

/// Runs beats, claims and the like, one at a time, in order (a release and
/// a later claim of the same room must reach Redis in that order).
async fn run_control(
    state: AppState,
    mut rx: mpsc::UnboundedReceiver<Control>,
    mut redis: ConnectionManager,
) {
    let Some(io) = state.cluster() else {
        return;
    };
    let scripts = Scripts::new();
    let quiet = 2 * io.beat.as_millis() as u64;
    let lease = io.lease.as_millis() as u64;
    let room_ttl = (ClusterConfig::default().refresh * ROOM_TTL_REFRESHES).as_millis() as u64;
    let mut pending = std::collections::VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(next) => pending.push_back(next),
                None => return,
            }
        }
        while let Ok(next) = rx.try_recv() {
            pending.push_back(next);
        }
        // Beats that waited behind a slow Redis are coalesced: only the
        // latest says anything.
        let beats = pending
            .iter()
            .filter(|c| matches!(c, Control::Run(Command::Beat { .. })))
            .count();
        if beats > 1 {
            let mut skip = beats - 1;
            pending.retain(|c| {
                let beat = matches!(
                    c,
                    Control::Run(Command::Beat {
                        register: false,
                        ..
                    })
                );
                if beat && skip > 0 {
                    skip -= 1;
                    false
                } else {
                    true
                }
            });
        }
        let Some(next) = pending.pop_front() else {
            continue;
        };
        let command = match next {
            Control::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Control::Run(command) => command,
        };
        match command {
            Command::Beat {
                node,
                register,
                sent_at,
            } => {
                let reply: RedisResult<Vec<String>> = scripts
                    .beat
                    .key(NODES)
                    .key(CLOCK)
                    .arg(quiet)
                    .arg(node.to_string())
                    .arg(u8::from(register))
                    .arg(lease)
                    .invoke_async(&mut redis)
                    .await;
                io.set_up(reply.is_ok());
                let result = match reply {
                    Ok(alive) if alive.is_empty() => {
                        tracing::warn!(%node, "this server was declared gone (its lease ran out, or Redis lost its data): closing its rooms and registering again");
                        BeatResult::Dead
                    }
                    Ok(alive) => {
                        BeatResult::Alive(alive.iter().filter_map(|n| n.parse().ok()).collect())
                    }
                    Err(err) => {
                        tracing::debug!(%err, "beat failed");
                        BeatResult::Failed
                    }
                };
                if register && matches!(result, BeatResult::Alive(_)) {
                    tracing::info!(%node, "joined the cluster");
                }
                state.with_node(|n, queues, out| {
                    n.beat_done(node, sent_at, result, Instant::now(), queues, out);
                });
            }
            Command::Claim { node, room } => {
                let reply: RedisResult<Option<String>> = scripts
                    .claim
                    .key(NODES)
                    .key(CLOCK)
                    .key(room_key(&room))
                    .arg(quiet)
                    .arg(node.to_string())
                    .arg(room_ttl)
                    .invoke_async(&mut redis)
                    .await;
                io.set_up(reply.is_ok());
                let result = match reply {
                    Ok(Some(owner)) => match owner.parse() {
                        Ok(owner) => ClaimResult::Owner(owner),
                        Err(_) => ClaimResult::Failed,
                    },
                    Ok(None) => ClaimResult::NotValid,
                    Err(_) => ClaimResult::Failed,
                };
                state.with_node(|n, queues, out| {
                    n.claim_done(node, &room, result, Instant::now(), queues, out);
                });
            }
            Command::Release { node, room } => {
                let reply: RedisResult<i64> = scripts
                    .release
                    .key(room_key(&room))
                    .arg(node.to_string())
                    .invoke_async(&mut redis)
                    .await;
                io.set_up(reply.is_ok());
            }
            Command::Refresh { node, rooms } => {
                let mut lost = Vec::new();
                for chunk in rooms.chunks(512) {
                    let mut call = scripts.refresh.prepare_invoke();
                    for room in chunk {
                        call.key(room_key(room));
                    }
                    call.arg(node.to_string()).arg(room_ttl);
                    let reply: RedisResult<Vec<usize>> = call.invoke_async(&mut redis).await;
                    io.set_up(reply.is_ok());
                    if let Ok(positions) = reply {
                        lost.extend(positions.iter().filter_map(|i| chunk.get(i - 1).cloned()));
                    }
                }
                if !lost.is_empty() {
                    tracing::warn!(rooms = lost.len(), "rooms found owned by another server");
                    state.with_node(|n, _, out| n.rooms_lost(node, &lost, Instant::now(), out));
                }
            }
            Command::Deregister { node } => {
                let reply: RedisResult<i64> = scripts
                    .deregister
                    .key(NODES)
                    .arg(node.to_string())
                    .invoke_async(&mut redis)
                    .await;
                io.set_up(reply.is_ok());
            }
            Command::Send { to, seq, entry } => {
                let _ = io.outgoing.send(Outgoing::Entry { to, seq, entry });
            }
        }
    }
}

/// Appends entries to other servers' inboxes, one pipeline at a time: it
/// takes from the node what waits for each server when it is free, so the
/// messages that arrive while a pipeline is in flight go in the next one,
/// one entry per server. A pipeline that fails is sent again whole, so each
/// link's entries arrive in order (the receiver drops the repeats).
async fn run_outgoing(
    state: AppState,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    mut redis: ConnectionManager,
) {
    let Some(io) = state.cluster() else {
        return;
    };
    let mut batch: Vec<(NodeId, u64, Bytes)> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut backoff = Duration::from_millis(20);
    loop {
        if batch.is_empty() {
            // Each flush waited for a take of the node's entries that came
            // after it: what was queued before it has been appended.
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
            tokio::select! {
                next = rx.recv() => match next {
                    Some(next) => waiting(next, &mut batch, &mut flushes),
                    None => return,
                },
                () = io.entries.notified() => {}
            }
            while let Ok(next) = rx.try_recv() {
                waiting(next, &mut batch, &mut flushes);
            }
            state.with_node(|node, _, _| take_entries(node, &mut batch));
            if batch.is_empty() {
                continue;
            }
        }
        // One stream entry per receiver holds its entries, in order, each
        // in an `m` field (usually one: the node's entry for that receiver
        // holds every message that waited).
        let mut pipe = redis::pipe();
        let mut receivers: Vec<NodeId> = Vec::new();
        for (to, _, _) in &batch {
            if !receivers.contains(to) {
                receivers.push(*to);
            }
        }
        for to in &receivers {
            let cmd = pipe
                .cmd("XADD")
                .arg(inbox_key(*to))
                .arg("NOMKSTREAM")
                .arg("MAXLEN")
                .arg("~")
                .arg(INBOX_MAX)
                .arg("*");
            for (_, _, entry) in batch.iter().filter(|(t, _, _)| t == to) {
                cmd.arg("m").arg(entry.as_ref());
            }
            cmd.ignore();
        }
        match pipe.query_async::<()>(&mut redis).await {
            Ok(()) => {
                io.set_up(true);
                backoff = Duration::from_millis(20);
                let sent = std::mem::take(&mut batch);
                while let Ok(next) = rx.try_recv() {
                    waiting(next, &mut batch, &mut flushes);
                }
                // Acknowledged, and the next entries taken, under one lock.
                state.with_node(|node, _, _| {
                    for (to, seq, _) in &sent {
                        node.sent(*to, *seq);
                    }
                    take_entries(node, &mut batch);
                });
            }
            Err(err) => {
                io.set_up(false);
                tracing::debug!(%err, entries = batch.len(), "appending entries failed; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Sorts what came on the appending task's channel.
fn waiting(
    next: Outgoing,
    batch: &mut Vec<(NodeId, u64, Bytes)>,
    flushes: &mut Vec<oneshot::Sender<()>>,
) {
    match next {
        Outgoing::Entry { to, seq, entry } => batch.push((to, seq, entry)),
        Outgoing::Flush(done) => flushes.push(done),
    }
}

/// Takes from the node every entry waiting to be appended.
fn take_entries(node: &mut Node, batch: &mut Vec<(NodeId, u64, Bytes)>) {
    while let Some(command) = node.poll_entry() {
        if let Command::Send { to, seq, entry } = command {
            batch.push((to, seq, entry));
        }
    }
}

/// Reads this server's inbox (on a connection of its own: a blocking read
/// would hold up everything else on a shared one) and hands the entries to
/// the node, in order. Trims what it read about once a second.
async fn run_inbox(state: AppState) {
    let Some(io) = state.cluster() else {
        return;
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(io.lease))
        .set_response_timeout(Some(READ_BLOCK + 2 * io.lease));
    let mut conn: Option<MultiplexedConnection> = None;
    let mut reading: Option<NodeId> = None;
    let mut last = String::from("0-0");
    let mut trimmed = Instant::now();
    let mut run_id: Option<String> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(me) = state.cluster_stats().map(|s| s.node) else {
            return;
        };
        if reading != Some(me) {
            reading = Some(me);
            last = String::from("0-0");
        }
        let c = match &mut conn {
            Some(c) => c,
            None => match io
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(mut c) => {
                    check_run_id(&mut c, &mut run_id).await;
                    backoff = Duration::from_millis(50);
                    conn.insert(c)
                }
                Err(err) => {
                    tracing::debug!(%err, "cannot reach Redis to read the inbox");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let key = inbox_key(me);
        let reply: RedisResult<Value> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&key)
            .arg(&last)
            .query_async(c)
            .await;
        let entries = match reply {
            Ok(value) => parse_xread(value, &mut last),
            Err(err) => {
                tracing::debug!(%err, "reading the inbox failed");
                conn = None;
                continue;
            }
        };
        if !entries.is_empty() {
            state.with_node(|node, queues, out| {
                let now = Instant::now();
                for entry in entries {
                    node.receive(entry, now, queues, out);
                }
            });
        }
        if trimmed.elapsed() >= Duration::from_secs(1) && last != "0-0" {
            trimmed = Instant::now();
            let _: RedisResult<i64> = redis::cmd("XTRIM")
                .arg(&key)
                .arg("MINID")
                .arg(&last)
                .query_async(c)
                .await;
        }
    }
}

/// Logs when Redis restarted (its `run_id` changed) between connections.
async fn check_run_id(conn: &mut MultiplexedConnection, known: &mut Option<String>) {
    let info: RedisResult<String> = redis::cmd("INFO").arg("server").query_async(conn).await;
    let Ok(info) = info else {
        return;
    };
    let id = info
        .lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .map(|s| s.trim().to_owned());
    if let Some(id) = id {
        if known.as_ref().is_some_and(|k| *k != id) {
            tracing::warn!(run_id = %id, "Redis restarted; rooms recover as their members rejoin if it lost its data");
        }
        *known = Some(id);
    }
}

/// The `m` field of each entry of an XREAD reply; moves `last` past them.
fn parse_xread(value: Value, last: &mut String) -> Vec<Bytes> {
    let mut entries = Vec::new();
    // [[key, [[id, [field, value, ...]], ...]]] (RESP2), or a map (RESP3).
    let streams = match value {
        Value::Array(streams) => streams,
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        _ => return entries,
    };
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        let Some(Value::Array(items)) = parts.pop() else {
            continue;
        };
        for item in items {
            let Value::Array(mut item) = item else {
                continue;
            };
            let fields = item.pop();
            if let Some(Value::BulkString(id)) = item.pop() {
                if let Ok(id) = String::from_utf8(id) {
                    *last = id;
                }
            }
            if let Some(Value::Array(fields)) = fields {
                let mut fields = fields.into_iter();
                while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                    if let (Value::BulkString(name), Value::BulkString(value)) = (name, value) {
                        if name == b"m" && !value.is_empty() {
                            entries.push(Bytes::from(value));
                        }
                    }
                }
            }
        }
    }
    entries
}

/// Why the cluster could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis could not be reached or refused.
    #[error("Redis at --redis-url: {0}")]
    Redis(#[from] redis::RedisError),
}

/// When the servers of a cluster share no `--turn-secret`, the first one
/// makes one and keeps it in Redis, and the others take it from there: so
/// that TURN credentials from any server work on every server's relay.
pub async fn share_turn_secret(config: &mut Config) -> Result<(), ClusterError> {
    let (Some(settings), Some(turn)) = (&config.cluster, &mut config.turn) else {
        return Ok(());
    };
    if !settings.share_turn_secret {
        return Ok(());
    }
    let client = redis::Client::open(settings.url.as_str())?;
    let wait = Some(Duration::from_secs(5));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new()
                .set_connection_timeout(wait)
                .set_response_timeout(wait),
        )
        .await?;
    let candidate: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let _: Option<String> = redis::cmd("SET")
        .arg(TURN_SECRET)
        .arg(&candidate)
        .arg("NX")
        .query_async(&mut conn)
        .await?;
    let secret: String = redis::cmd("GET")
        .arg(TURN_SECRET)
        .query_async(&mut conn)
        .await?;
    turn.secret = Secret::new(&secret);
    Ok(())
}

/// Shared by the tests: what a reply of the inbox looks like.
#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn an_xread_reply_gives_the_entries_in_order_and_the_last_id() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"peerchat:in:{x}"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk(b"1-0"),
                    Value::Array(vec![bulk(b"m"), bulk(b"one")]),
                ]),
                Value::Array(vec![
                    bulk(b"1-1"),
                    Value::Array(vec![bulk(b"m"), bulk(b"")]),
                ]),
                Value::Array(vec![
                    bulk(b"2-0"),
                    Value::Array(vec![bulk(b"m"), bulk(b"two")]),
                ]),
            ]),
        ])]);
        let mut last = String::from("0-0");
        let entries = parse_xread(reply, &mut last);
        assert_eq!(entries, vec![Bytes::from("one"), Bytes::from("two")]);
        assert_eq!(last, "2-0");
        assert!(parse_xread(Value::Nil, &mut last).is_empty());
        assert_eq!(last, "2-0");
    }
}
