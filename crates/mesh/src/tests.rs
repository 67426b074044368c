//! Several meshes in one simulated room: a server that relays signals in
//! order, links that open once offer and answer have crossed, and a network
//! that loses links and the server at random moments. Whatever happens,
//! once things calm down every two members share one open link.

use std::collections::{BTreeMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;

use super::*;

/// What happens to a node at a given time.
#[derive(Debug, Clone)]
enum Event {
    Input(usize, Input),
    /// A signal arrives at the server from node `from` for node `to`.
    Relay {
        from: usize,
        to: usize,
        sid: String,
        kind: SignalKind,
    },
}

struct Net {
    ids: Vec<String>,
    meshes: Vec<Mesh>,
    /// Whether each node's signaling connection is up.
    online: Vec<bool>,
    /// Whether the server has each node in the room.
    in_room: Vec<bool>,
    /// The links each node holds: (node, peer node) → (sid, started).
    ends: BTreeMap<(usize, usize), (String, bool)>,
    /// Links whose offer and answer have both been handled: sid → both
    /// nodes have set their descriptions.
    answered: Vec<String>,
    queue: BTreeMap<u64, VecDeque<Event>>,
    /// When the server last delivered to each node: its messages arrive in
    /// order, as over one WebSocket.
    delivered: Vec<u64>,
    now: u64,
    rng: XorShiftRng,
}

impl Net {
    fn new(n: usize, seed: u64) -> Self {
        let ids: Vec<String> = (0..n)
            .map(|i| format!("{:016x}", (i as u64 + 1) * 0x1111))
            .collect();
        let meshes = (0..n)
            .map(|i| Mesh::new(Config::default(), [i as u32 + 1, 7, seed as u32, 3]))
            .collect();
        Self {
            ids,
            meshes,
            online: vec![false; n],
            in_room: vec![false; n],
            ends: BTreeMap::new(),
            answered: Vec::new(),
            queue: BTreeMap::new(),
            delivered: vec![0; n],
            now: 0,
            rng: XorShiftRng::seed_from_u64(seed),
        }
    }

    fn node(&self, id: &str) -> usize {
        self.ids.iter().position(|i| i == id).unwrap()
    }

    fn at(&mut self, delay: u64, event: Event) {
        self.queue
            .entry(self.now + delay)
            .or_default()
            .push_back(event);
    }

    fn jitter(&mut self) -> u64 {
        self.rng.random_range(1..20)
    }

    /// A message from the server to `node`, after those sent before.
    fn deliver(&mut self, node: usize, event: Event) {
        let at = (self.now + self.jitter()).max(self.delivered[node]);
        self.delivered[node] = at;
        self.queue.entry(at).or_default().push_back(event);
    }

    /// Who the server lists for node `me`: every other node in the room.
    fn listed(&self, me: usize) -> Vec<Peer> {
        (0..self.ids.len())
            .filter(|&i| i != me && self.in_room[i])
            .map(|i| Peer {
                id: self.ids[i].clone(),
                nick: format!("n{i}"),
            })
            .collect()
    }

    fn input(&mut self, node: usize, input: Input) {
        let outputs = self.meshes[node].handle(self.now, input);
        self.carry_out(node, outputs);
    }

    fn carry_out(&mut self, node: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Join {} => {
                    let listed = self.listed(node);
                    self.in_room[node] = true;
                    // Everyone already in the room hears of the newcomer.
                    for other in &listed {
                        let other = self.node(&other.id);
                        let peer = Peer {
                            id: self.ids[node].clone(),
                            nick: format!("n{node}"),
                        };
                        self.deliver(other, Event::Input(other, Input::PeerJoined(peer)));
                    }
                    let you = self.ids[node].clone();
                    let joined = Input::Joined {
                        you,
                        members: listed,
                        resumed: false,
                    };
                    self.deliver(node, Event::Input(node, joined));
                }
                Output::Start { peer, sid } => {
                    let to = self.node(&peer);
                    self.ends.insert((node, to), (sid.clone(), true));
                    self.signal(node, to, sid, SignalKind::Offer);
                }
                Output::Accept { peer, sid } => {
                    let to = self.node(&peer);
                    self.ends.insert((node, to), (sid.clone(), false));
                    self.signal(node, to, sid, SignalKind::Answer);
                }
                Output::Forward { peer, sid } => {
                    // An answer reached the side that offered: the link
                    // opens on both sides if both still hold it.
                    let from = self.node(&peer);
                    let theirs = self.ends.get(&(from, node)).map(|e| e.0.clone());
                    if theirs.as_deref() == Some(sid.as_str()) && !self.answered.contains(&sid) {
                        self.answered.push(sid.clone());
                        for n in [node, from] {
                            let delay = self.jitter();
                            let open = Input::LinkOpened { sid: sid.clone() };
                            self.at(delay, Event::Input(n, open));
                        }
                    }
                }
                Output::Drop { peer, sid } => {
                    let to = self.node(&peer);
                    if self.ends.get(&(node, to)).is_some_and(|e| e.0 == sid) {
                        self.ends.remove(&(node, to));
                    }
                    // The other end notices the close.
                    let delay = self.jitter();
                    self.at(delay, Event::Input(to, Input::LinkClosed { sid }));
                }
                Output::Hello { peer, sid } => {
                    // The other side's hello arrives and verifies, if it
                    // still holds the link.
                    let from = self.node(&peer);
                    if self.ends.get(&(from, node)).is_some_and(|e| e.0 == sid) {
                        let delay = self.jitter();
                        self.at(delay, Event::Input(node, Input::Verified { sid }));
                    }
                }
                Output::RestartIce { peer, sid } => {
                    let to = self.node(&peer);
                    let both = self.ends.get(&(to, node)).is_some_and(|e| e.0 == sid)
                        && self.online[node]
                        && self.online[to];
                    if both {
                        for n in [node, to] {
                            let delay = self.jitter();
                            let back = Input::Transport {
                                sid: sid.clone(),
                                state: Transport::Connected,
                            };
                            self.at(delay, Event::Input(n, back));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn signal(&mut self, from: usize, to: usize, sid: String, kind: SignalKind) {
        if self.in_room[from] && self.in_room[to] {
            let relay = Event::Relay {
                from,
                to,
                sid,
                kind,
            };
            self.deliver(to, relay);
        }
    }

    fn run_until(&mut self, end: u64) {
        loop {
            let next_event = self.queue.keys().next().copied();
            let next_timer = self.meshes.iter().filter_map(Mesh::next_deadline).min();
            let next = match (next_event, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if next_timer == Some(next) {
                for node in 0..self.meshes.len() {
                    if self.meshes[node].next_deadline() == Some(next) {
                        let outputs = self.meshes[node].handle_timeout(self.now);
                        self.carry_out(node, outputs);
                    }
                }
                continue;
            }
            let events = self.queue.remove(&next).unwrap_or_default();
            for event in events {
                match event {
                    Event::Input(node, input) => self.input(node, input),
                    Event::Relay {
                        from,
                        to,
                        sid,
                        kind,
                    } => {
                        if self.in_room[to] {
                            let from = self.ids[from].clone();
                            self.input(to, Input::Signal { from, sid, kind });
                        }
                    }
                }
            }
        }
        self.now = self.now.max(end);
    }

    /// The node's signaling connection goes up or down; down, the server
    /// forgets it (as after a restart) without telling the others.
    fn set_online(&mut self, node: usize, online: bool) {
        self.online[node] = online;
        if !online {
            self.in_room[node] = false;
        }
        let state = if online {
            ServerState::Open
        } else {
            ServerState::Offline
        };
        self.input(node, Input::Server(state));
    }

    /// Every two nodes hold one open link, the same one.
    fn check_settled(&self, round: u64) {
        for a in 0..self.ids.len() {
            for b in 0..self.ids.len() {
                if a == b {
                    continue;
                }
                let m = self.meshes[a]
                    .member(&self.ids[b])
                    .unwrap_or_else(|| panic!("round {round}: {a} lost {b}"));
                let theirs = self.meshes[b].member(&self.ids[a]).unwrap();
                assert!(m.is_open(), "round {round}: {a} → {b} not open: {m:?}");
                assert!(
                    m.is_verified(),
                    "round {round}: {a} → {b} not verified: {m:?}"
                );
                assert_eq!(m.sid(), theirs.sid(), "round {round}: {a} ↔ {b}");
                assert_eq!(m.state(), LinkState::Connected, "round {round}");
            }
        }
    }
}

#[test]
fn members_settle_on_one_link_each_whatever_happens() {
    for seed in 1..=40 {
        let mut net = Net::new(4, seed);
        // Members join one after another, then all at once after a server
        // restart, while links fail and crossing restarts happen.
        for node in 0..4 {
            net.set_online(node, true);
            net.input(node, Input::Join {});
            net.run_until(net.now + 50);
        }
        net.run_until(net.now + 5_000);
        net.check_settled(seed * 100);
        for round in 0..6 {
            let chaos: u32 = net.rng.random_range(0..4);
            // How long it may take to settle: a crossing, an ICE restart or
            // a rejoin settles at once; a closed link after a backoff.
            let settle = if chaos == 1 { 3_000 } else { 1_000 };
            let a = net.rng.random_range(0..4usize);
            let b = (a + net.rng.random_range(1..4usize)) % 4;
            match chaos {
                0 => {
                    // Both restart at once.
                    let (ia, ib) = (net.ids[a].clone(), net.ids[b].clone());
                    net.input(a, Input::Restart { peer: ib });
                    net.input(b, Input::Restart { peer: ia });
                }
                1 => {
                    // The link between a and b closes on both sides.
                    for (x, y) in [(a, b), (b, a)] {
                        if let Some((sid, _)) = net.ends.remove(&(x, y)) {
                            net.input(x, Input::LinkClosed { sid });
                        }
                    }
                }
                2 => {
                    // Its transport fails on both sides.
                    for (x, y) in [(a, b), (b, a)] {
                        if let Some((sid, _)) = net.ends.get(&(x, y)).cloned() {
                            let failed = Input::Transport {
                                sid,
                                state: Transport::Failed,
                            };
                            net.input(x, failed);
                        }
                    }
                }
                _ => {
                    // The server restarts: everyone is offline, then rejoins.
                    for node in 0..4 {
                        net.set_online(node, false);
                    }
                    net.run_until(net.now + 500);
                    for node in 0..4 {
                        net.set_online(node, true);
                    }
                }
            }
            net.run_until(net.now + settle);
            net.check_settled(seed * 100 + round + 1);
        }
    }
}

#[test]
fn sids_are_fresh_and_well_formed() {
    let mut mesh = Mesh::new(Config::default(), [0, 0, 0, 0]);
    let sids: Vec<String> = (0..100).map(|_| mesh.sid()).collect();
    for sid in &sids {
        assert_eq!(sid.len(), 22);
        assert!(
            sid.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
    let mut unique = sids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), sids.len());
}

#[test]
fn backoffs_stay_within_their_bounds() {
    let mut mesh = Mesh::new(Config::default(), [9, 8, 7, 6]);
    for attempt in 0..40 {
        for _ in 0..50 {
            let base = (1000u64 << attempt.min(20)).min(30_000);
            let delay = mesh.backoff(attempt);
            assert!(delay >= base / 2 && delay < base, "{attempt}: {delay}");
        }
    }
}
