//! A fetcher and holders wired together in memory, in simulated time: the
//! file arrives whole and checked through corrupted pieces, blips, a reload
//! and a holder that goes away.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use peerchat_transfer::hash::FileHasher;
use peerchat_transfer::{
    FileMeta, Receiver, ReceiverAction, ReceiverConfig, ReceiverState, Sender, SenderAction,
    SenderConfig,
};

const PIECE: u64 = 32 * 1024;

fn content(size: usize, salt: u32) -> Vec<u8> {
    (0..size as u32)
        .map(|k| (k.wrapping_add(salt).wrapping_mul(0x9E37_79B1) >> 24) as u8)
        .collect()
}

fn offer(data: &[u8]) -> (FileMeta, Arc<[[u8; 32]]>) {
    let mut h = FileHasher::new(PIECE);
    h.update(data);
    let d = h.finish();
    (
        d.offer("f1", "data.bin", "application/octet-stream"),
        d.pieces.into(),
    )
}

/// One member that holds the file: a sender per channel opened to it.
struct Holder {
    data: Vec<u8>,
    /// Piece messages to corrupt on their way (by count of those sent).
    corrupt: Vec<usize>,
    sent: usize,
    sender: Option<Sender>,
}

struct World {
    now: u64,
    meta: FileMeta,
    list: Arc<[[u8; 32]]>,
    receiver: Receiver,
    disk: Vec<u8>,
    holders: BTreeMap<String, Holder>,
    /// Messages on their way to the receiver: (from, text or bytes).
    to_receiver: VecDeque<(String, Result<String, Vec<u8>>)>,
    /// Data messages sent so far, all holders together.
    data_messages: usize,
    reads: usize,
}

impl World {
    fn new(data: Vec<u8>, holders: &[&str], config: ReceiverConfig) -> Self {
        let (meta, list) = offer(&data);
        let receiver = Receiver::new(meta.clone(), holders[0], config);
        Self {
            now: 0,
            disk: vec![0; data.len()],
            holders: holders
                .iter()
                .map(|h| {
                    let holder = Holder {
                        data: data.clone(),
                        corrupt: Vec::new(),
                        sent: 0,
                        sender: None,
                    };
                    ((*h).to_owned(), holder)
                })
                .collect(),
            meta,
            list,
            receiver,
            to_receiver: VecDeque::new(),
            data_messages: 0,
            reads: 0,
        }
    }

    fn run(&mut self, actions: Vec<ReceiverAction>) {
        let mut queue: VecDeque<ReceiverAction> = actions.into();
        loop {
            while let Some(action) = queue.pop_front() {
                let more = self.receiver_action(action);
                queue.extend(more);
            }
            let Some((from, message)) = self.to_receiver.pop_front() else {
                break;
            };
            let more = match message {
                Ok(text) => self.receiver.text(&from, &text, self.now),
                Err(bytes) => self.receiver.binary(&from, &bytes.into(), self.now),
            };
            queue.extend(more);
        }
    }

    fn receiver_action(&mut self, action: ReceiverAction) -> Vec<ReceiverAction> {
        match action {
            ReceiverAction::Open { peer } => {
                if self.holders.contains_key(&peer) {
                    self.receiver.opened(&peer, self.now)
                } else {
                    self.receiver.closed(&peer, self.now)
                }
            }
            ReceiverAction::Send { peer, text } => {
                let Some(holder) = self.holders.get_mut(&peer) else {
                    return Vec::new();
                };
                let actions = match holder.sender.as_mut() {
                    Some(sender) => sender.text(&text, self.now),
                    None => {
                        let Ok(peerchat_transfer::wire::Control::Get { list, chunk, .. }) =
                            peerchat_transfer::wire::Control::parse(&text)
                        else {
                            panic!("get first: {text}");
                        };
                        let (sender, actions) = Sender::new(
                            self.meta.clone(),
                            self.list.clone(),
                            list,
                            chunk,
                            SenderConfig::default(),
                            self.now,
                        );
                        holder.sender = Some(sender);
                        actions
                    }
                };
                self.sender_actions(&peer, actions);
                Vec::new()
            }
            ReceiverAction::Close { peer } => {
                if let Some(holder) = self.holders.get_mut(&peer) {
                    if let Some(mut sender) = holder.sender.take() {
                        sender.closed(self.now);
                    }
                }
                self.to_receiver.retain(|(from, _)| from != &peer);
                Vec::new()
            }
            ReceiverAction::Write { offset, data } => {
                let at = offset as usize;
                self.disk[at..at + data.len()].copy_from_slice(&data);
                self.receiver.written(data.len() as u64, self.now)
            }
            ReceiverAction::Read { offset, len } => {
                self.reads += 1;
                let at = offset as usize;
                let data = self.disk[at..at + len as usize].to_vec();
                self.receiver.read(offset, &data, self.now)
            }
            _ => Vec::new(),
        }
    }

    fn sender_actions(&mut self, peer: &str, actions: Vec<SenderAction>) {
        let mut queue: VecDeque<SenderAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            let holder = self.holders.get_mut(peer).expect("holder");
            let Some(sender) = holder.sender.as_mut() else {
                return;
            };
            match action {
                SenderAction::SendText(text) => {
                    self.to_receiver.push_back((peer.to_owned(), Ok(text)))
                }
                SenderAction::SendBinary(mut bytes) => {
                    self.data_messages += 1;
                    // Pieces only: a holder whose list is bad is not asked
                    // again.
                    holder.sent += usize::from(bytes[0] == 1);
                    if bytes[0] == 1 && holder.corrupt.contains(&holder.sent) {
                        let last = bytes.len() - 1;
                        bytes[last] ^= 0xff;
                    }
                    self.to_receiver.push_back((peer.to_owned(), Err(bytes)));
                    // The channel drains at once.
                    queue.extend(sender.buffered(0, self.now));
                }
                SenderAction::Read { offset, len } => {
                    let at = offset as usize;
                    let data = holder.data[at..at + len as usize].to_vec();
                    queue.extend(sender.read(offset, data, None, self.now));
                }
                SenderAction::Close => {
                    holder.sender = None;
                    self.to_receiver
                        .push_back((peer.to_owned(), Ok(String::new())));
                }
                SenderAction::State(_) => {}
            }
        }
    }

    /// Delivers messages one at a time until `stop` says so (or the
    /// transfer is over), letting time pass when nothing is on its way.
    fn step_until(&mut self, mut stop: impl FnMut(&mut World) -> bool) {
        for _ in 0..100_000 {
            if stop(self) || self.receiver.state().is_over() {
                return;
            }
            let Some((from, message)) = self.to_receiver.pop_front() else {
                self.now += 1000;
                let actions = self.receiver.handle_timeout(self.now);
                self.run(actions);
                continue;
            };
            let actions = match message {
                Ok(text) if text.is_empty() => self.receiver.closed(&from, self.now),
                Ok(text) => self.receiver.text(&from, &text, self.now),
                Err(bytes) => self.receiver.binary(&from, &bytes.into(), self.now),
            };
            let mut queue: VecDeque<ReceiverAction> = actions.into();
            while let Some(action) = queue.pop_front() {
                let more = self.receiver_action(action);
                queue.extend(more);
            }
        }
        panic!("did not finish: {:?}", self.receiver.state());
    }

    fn finish(&mut self) {
        self.step_until(|_| false);
    }

    fn start(&mut self) {
        let mut actions = self.receiver.start(self.now);
        let peers: Vec<String> = self.holders.keys().cloned().collect();
        for peer in peers {
            actions.extend(self.receiver.peer_up(&peer, self.now));
        }
        let mut queue: VecDeque<ReceiverAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            let more = self.receiver_action(action);
            queue.extend(more);
        }
    }

    /// The connection to `peer` drops.
    fn blip(&mut self, peer: &str) {
        if let Some(holder) = self.holders.get_mut(peer) {
            if let Some(mut sender) = holder.sender.take() {
                sender.closed(self.now);
            }
        }
        self.to_receiver.retain(|(from, _)| from != peer);
        let actions = self.receiver.peer_down(peer, self.now);
        self.run(actions);
    }

    fn up(&mut self, peer: &str) {
        let actions = self.receiver.peer_up(peer, self.now);
        self.run(actions);
    }
}

fn data(size: usize) -> Vec<u8> {
    content(size, 7)
}

#[test]
fn a_file_arrives_whole() {
    for size in [0, 1, 16_383, 16_384, 16_385, 32 * 1024, 200_000] {
        let mut w = World::new(data(size), &["alice"], ReceiverConfig::default());
        w.start();
        w.finish();
        assert_eq!(w.receiver.state(), ReceiverState::Complete, "{size}");
        assert_eq!(w.disk, data(size), "{size}");
        assert_eq!(w.reads, 0, "in order, nothing is read back");
    }
}

#[test]
fn a_corrupted_piece_is_fetched_again() {
    let mut w = World::new(data(200_000), &["alice"], ReceiverConfig::default());
    w.holders.get_mut("alice").unwrap().corrupt = vec![3, 9];
    w.start();
    w.finish();
    assert_eq!(w.receiver.state(), ReceiverState::Complete);
    assert_eq!(w.disk, data(200_000));
}

#[test]
fn a_blip_midway_resumes() {
    let mut w = World::new(data(300_000), &["alice"], ReceiverConfig::default());
    w.start();
    w.step_until(|w| w.receiver.progress().bytes >= 100_000);
    w.blip("alice");
    w.now += 5_000;
    w.up("alice");
    w.finish();
    assert_eq!(w.receiver.state(), ReceiverState::Complete);
    assert_eq!(w.disk, data(300_000));
}

#[test]
fn a_reload_keeps_what_was_checked() {
    let size = 300_000;
    let mut w = World::new(data(size), &["alice"], ReceiverConfig::default());
    w.start();
    w.step_until(|w| w.receiver.progress().bytes >= 150_000);
    let saved = w.receiver.saved();
    assert!(!saved.have.is_empty());
    let disk = w.disk.clone();
    let mut w2 = World::new(data(size), &["alice"], ReceiverConfig::default());
    w2.disk = disk;
    w2.receiver = Receiver::restore(w2.meta.clone(), "alice", saved, ReceiverConfig::default());
    w2.start();
    w2.finish();
    assert_eq!(w2.receiver.state(), ReceiverState::Complete);
    assert_eq!(w2.disk, data(size));
    assert!(w2.reads > 0, "the kept pieces were read back");
    assert!(w2.data_messages < w.data_messages + size / 16_384);
}

#[test]
fn another_holder_takes_over() {
    let mut w = World::new(
        data(300_000),
        &["alice", "carol"],
        ReceiverConfig::default(),
    );
    w.start();
    w.step_until(|w| w.receiver.progress().bytes >= 60_000);
    w.holders.remove("alice");
    w.blip("alice");
    w.finish();
    assert_eq!(w.receiver.state(), ReceiverState::Complete);
    assert_eq!(w.disk, data(300_000));
}

#[test]
fn two_holders_at_once() {
    let config = ReceiverConfig {
        max_sources: 2,
        window: 64 * 1024,
        ..ReceiverConfig::default()
    };
    let mut w = World::new(data(500_000), &["alice", "carol"], config);
    w.start();
    w.finish();
    assert_eq!(w.receiver.state(), ReceiverState::Complete);
    assert_eq!(w.disk, data(500_000));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn blips_and_corruption_never_cut_a_file_short(
        size in 0usize..400_000,
        blips in proptest::collection::vec(1u64..400_000, 0..4),
        corrupt in proptest::collection::vec(1usize..40, 0..3),
    ) {
        let mut w = World::new(data(size), &["alice"], ReceiverConfig::default());
        w.holders.get_mut("alice").unwrap().corrupt = corrupt;
        w.start();
        for at in blips {
            w.step_until(|w| w.receiver.progress().bytes >= at);
            w.blip("alice");
            w.now += 3_000;
            w.up("alice");
        }
        w.finish();
        proptest::prop_assert_eq!(w.receiver.state(), ReceiverState::Complete);
        proptest::prop_assert!(w.disk == data(size));
    }
}
