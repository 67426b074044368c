use proptest::prelude::*;

use super::*;

const A: &str = "aaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbb";

/// Each author's identity key, from its first letter.
fn ident(author: &str) -> std::rc::Rc<IdentityKey> {
    thread_local! {
        static KEYS: std::cell::RefCell<HashMap<u8, std::rc::Rc<IdentityKey>>> = Default::default();
    }
    let letter = author.as_bytes()[0];
    KEYS.with(|keys| {
        keys.borrow_mut()
            .entry(letter)
            .or_insert_with(|| std::rc::Rc::new(IdentityKey::from_seed([letter; 32])))
            .clone()
    })
}

/// A log for `me`, with the keys of a, b, c and d confirmed.
fn log(me: &str, config: Config) -> History {
    let mut h = History::new(me, config).with_identity(Context::Code, &ident(me).public_key());
    for author in [
        "aaaaaaaaaaaaaaaa",
        B,
        "cccccccccccccccc",
        "dddddddddddddddd",
    ] {
        h.key_confirmed(author, &ident(author).public_key());
    }
    h
}

/// A message signed by its author.
fn message(author: &str, seq: u64, clock: u64) -> Message {
    let key = ident(author).public_key();
    let mut m = Message {
        author: author.to_owned(),
        nick: format!("n{}", &author[..1]),
        id: format!("{}{seq}", &author[..1]),
        seq,
        clock,
        ts: seq,
        text: format!("{author} {seq}"),
        file: None,
        kind: EntryKind::Chat,
        re: None,
        alg: key.alg().name().to_owned(),
        key: key.key_b64(),
        sig: String::new(),
        relayed_by: None,
    };
    m.sig = resign(&m);
    m
}

fn resign(m: &Message) -> String {
    // The property tests sign and check the same few messages thousands of
    // times: both are remembered (debug builds make them slow).
    thread_local! {
        static SIGNED: std::cell::RefCell<HashMap<Vec<u8>, String>> = Default::default();
    }
    let bytes = m.signed_bytes(&Context::Code).unwrap();
    SIGNED.with(|signed| {
        signed
            .borrow_mut()
            .entry(bytes.clone())
            .or_insert_with(|| base64url::encode(&ident(&m.author).sign(&bytes)))
            .clone()
    })
}

/// A signature check: the bytes, the signature and the key.
type Checked = (Vec<u8>, String, String);

/// [`CheckItem::verify`], remembered.
fn verify(item: &CheckItem) -> bool {
    thread_local! {
        static CHECKED: std::cell::RefCell<HashMap<Checked, bool>> = Default::default();
    }
    CHECKED.with(|checked| {
        *checked
            .borrow_mut()
            .entry((item.bytes.clone(), item.sig.clone(), item.key.clone()))
            .or_insert_with(|| item.verify())
    })
}

/// [`History::handle`], with every signature check done at once.
fn handle(h: &mut History, from: &str, nick: &str, text: &str, now: u64) -> Vec<Effect> {
    let effects = h.handle(from, nick, text, now).unwrap();
    let mut out = Vec::new();
    for e in effects {
        match e {
            Effect::Verify(check) => {
                let results: Vec<bool> = check.items.iter().map(verify).collect();
                out.extend(h.verified(check.id, &results));
            }
            other => out.push(other),
        }
    }
    out
}

fn chat_envelope(m: &Message) -> String {
    m.record().chat().to_json()
}

fn history_envelope(ms: &[&Message]) -> String {
    let records: Vec<Record<'_>> = ms.iter().map(|m| m.record()).collect();
    peer::history_json(&records)
}

fn order(h: &History) -> Vec<(String, u64)> {
    h.messages().map(|m| (m.author.clone(), m.seq)).collect()
}

#[test]
fn save_and_restore_keep_everything() {
    let mut h = log(A, Config::default());
    h.send(&ident(A), "x", "alice", "hello", 1, vec![B.to_owned()])
        .unwrap();
    handle(&mut h, B, "nb", &chat_envelope(&message(B, 1, 2)), 0);
    handle(&mut h, B, "nb", &peer::ack_json(1), 0);
    let saved = h.save();
    let json = serde_json::to_string(&saved).unwrap();

    let mut back = log(A, Config::default());
    let added = back.restore(serde_json::from_str(&json).unwrap());
    assert_eq!(added.len(), 2);
    assert_eq!(order(&back), order(&h));
    assert_eq!(back.delivery(1).acked, vec![B.to_owned()]);
    // Numbering and the clock go on after the restored messages.
    let (m, _) = back
        .send(&ident(A), "y", "alice", "more", 2, vec![])
        .unwrap();
    assert_eq!((m.seq, m.clock), (2, 3));
    // Restoring twice adds nothing.
    assert!(back.restore(saved).is_empty());
}

#[test]
fn restore_skips_invalid_messages() {
    let mut h = log(A, Config::default());
    let mut bad = message(B, 1, 1);
    bad.text = String::new();
    let added = h.restore(Saved {
        messages: vec![bad, message(B, 2, 2)],
        ..Saved::default()
    });
    assert_eq!(added.len(), 1);
}

#[test]
fn clear_forgets_messages_but_not_numbering() {
    let mut h = log(A, Config::default());
    h.send(&ident(A), "x", "alice", "one", 1, vec![]).unwrap();
    h.clear();
    assert!(h.is_empty());
    let (m, _) = h.send(&ident(A), "y", "alice", "two", 2, vec![]).unwrap();
    assert_eq!(m.seq, 2);
}

#[test]
fn a_sync_names_our_own_count_and_each_author() {
    let mut h = log(A, Config::default());
    assert!(h.sync().have.is_empty());
    h.send(&ident(A), "x", "alice", "one", 1, vec![]).unwrap();
    handle(&mut h, B, "nb", &chat_envelope(&message(B, 1, 5)), 0);
    let have: Vec<(String, u64)> = h
        .sync()
        .have
        .into_iter()
        .map(|(a, n)| (a.into_owned(), n))
        .collect();
    assert_eq!(have, vec![(A.to_owned(), 1), (B.to_owned(), 1)]);
}

#[test]
fn a_huge_sync_gets_a_bounded_answer() {
    let config = Config {
        capacity: 50,
        ..Config::default()
    };
    let mut h = log(A, config);
    for seq in 1..=80 {
        let text = "x".repeat(16 * 1024);
        let mut m = message(B, seq, seq);
        m.text = text;
        m.sig = resign(&m);
        handle(&mut h, B, "nb", &chat_envelope(&m), 0);
    }
    assert_eq!(h.len(), 50);
    let effects = h
        .handle(
            "cccccccccccccccc",
            "carol",
            r#"{"v":1,"type":"sync","have":{}}"#,
            0,
        )
        .unwrap();
    let mut total = 0;
    for effect in &effects {
        let Effect::Send { text, .. } = effect else {
            panic!("{effect:?}")
        };
        assert!(
            text.len() <= config.batch_bytes + 17 * 1024,
            "{}",
            text.len()
        );
        let PeerMessage::History(records) = PeerMessage::parse(text).unwrap() else {
            panic!()
        };
        total += records.len();
    }
    assert_eq!(total, 50);
    // Asking again at once gets nothing.
    let again = h
        .handle(
            "cccccccccccccccc",
            "carol",
            r#"{"v":1,"type":"sync","have":{}}"#,
            1,
        )
        .unwrap();
    assert!(again.is_empty());
}

#[test]
fn a_chat_from_ourselves_is_ignored() {
    let mut h = log(A, Config::default());
    let effects = handle(&mut h, A, "na", &chat_envelope(&message(A, 1, 1)), 0);
    assert!(effects.is_empty());
    assert!(h.is_empty());
}

/// A conversation: who wrote each message and how much of the earlier
/// conversation they had seen, which fixes each message's clock.
fn conversation() -> impl Strategy<Value = Vec<Message>> {
    prop::collection::vec((0..3usize, any::<prop::sample::Index>()), 1..40).prop_map(|steps| {
        let authors = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"];
        let mut messages: Vec<Message> = Vec::new();
        let mut seqs = [0u64; 3];
        let mut own_clock = [0u64; 3];
        for (author, seen) in steps {
            let seen = seen.index(messages.len() + 1);
            let seen_clock = messages[..seen].iter().map(|m| m.clock).max().unwrap_or(0);
            let clock = seen_clock.max(own_clock[author]) + 1;
            own_clock[author] = clock;
            seqs[author] += 1;
            messages.push(message(authors[author], seqs[author], clock));
        }
        messages
    })
}

/// How one replica receives the conversation: each step delivers one
/// message live from its author or inside a history batch with others,
/// in any order, with repeats.
#[derive(Debug, Clone)]
struct Delivery {
    index: prop::sample::Index,
    via_history: bool,
    extra: Vec<prop::sample::Index>,
}

fn deliveries() -> impl Strategy<Value = Vec<Delivery>> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            any::<bool>(),
            prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        )
            .prop_map(|(index, via_history, extra)| Delivery {
                index,
                via_history,
                extra,
            }),
        0..80,
    )
}

fn replay(me: &str, capacity: usize, messages: &[Message], deliveries: &[Delivery]) -> History {
    let mut h = log(
        me,
        Config {
            capacity,
            ..Config::default()
        },
    );
    let mut apply = |envelope: String, from: &str, nick: &str| {
        handle(&mut h, from, nick, &envelope, 0);
    };
    for d in deliveries {
        let m = &messages[d.index.index(messages.len())];
        if d.via_history {
            let mut batch = vec![m];
            batch.extend(d.extra.iter().map(|i| &messages[i.index(messages.len())]));
            apply(history_envelope(&batch), "dddddddddddddddd", "nd");
        } else {
            apply(chat_envelope(m), &m.author.clone(), &m.nick.clone());
        }
    }
    // Finally everything arrives, in the conversation's own order.
    for m in messages {
        apply(chat_envelope(m), &m.author.clone(), &m.nick.clone());
    }
    h
}

/// An entry of `kind` about `re` (with `text`), signed by its author.
fn about(
    author: &str,
    seq: u64,
    clock: u64,
    kind: EntryKind,
    re: Option<EntryRef>,
    text: &str,
) -> Message {
    let mut m = message(author, seq, clock);
    m.kind = kind;
    m.re = re;
    m.text = text.to_owned();
    m.sig = resign(&m);
    m
}

/// A conversation with replies, edits, deletions, reactions and room
/// names: each step's author picks a kind, and an earlier entry (one it had
/// seen) to be about; edits and deletions by others than the target's
/// author are among them.
fn lively_conversation() -> impl Strategy<Value = Vec<Message>> {
    prop::collection::vec(
        (
            0..3usize,
            any::<prop::sample::Index>(),
            0..7usize,
            any::<prop::sample::Index>(),
            0..3usize,
        ),
        1..30,
    )
    .prop_map(|steps| {
        let authors = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"];
        let emoji = ["+1", "ok", "yay"];
        let mut messages: Vec<Message> = Vec::new();
        let mut seqs = [0u64; 3];
        let mut own_clock = [0u64; 3];
        for (author, seen, kind, target, pick) in steps {
            let seen = seen.index(messages.len() + 1);
            let seen_clock = messages[..seen].iter().map(|m| m.clock).max().unwrap_or(0);
            let clock = seen_clock.max(own_clock[author]) + 1;
            own_clock[author] = clock;
            seqs[author] += 1;
            let (who, seq) = (authors[author], seqs[author]);
            let shown: Vec<&Message> = messages[..seen]
                .iter()
                .filter(|m| m.entry_kind().is_shown())
                .collect();
            let re = (!shown.is_empty()).then(|| {
                let t = shown[target.index(shown.len())];
                EntryRef {
                    author: t.author.clone(),
                    seq: t.seq,
                }
            });
            let m = match (kind, re) {
                (1, Some(re)) => about(who, seq, clock, EntryKind::Reply, Some(re), "re"),
                (2, Some(re)) => about(
                    who,
                    seq,
                    clock,
                    EntryKind::Edit,
                    Some(re),
                    &format!("edit {seq}"),
                ),
                (3, Some(re)) => about(who, seq, clock, EntryKind::Delete, Some(re), ""),
                (4, Some(re)) => about(who, seq, clock, EntryKind::React, Some(re), emoji[pick]),
                (5, Some(re)) => about(who, seq, clock, EntryKind::Unreact, Some(re), emoji[pick]),
                (6, _) => about(who, seq, clock, EntryKind::RoomName, None, emoji[pick]),
                _ => message(who, seq, clock),
            };
            messages.push(m);
        }
        messages
    })
}

/// What every shown entry looks like, and the room name, by a plain fold
/// over the entries in the log's order (the rules of
/// [`History::entry_state`], written out once more).
/// Each shown entry's state, by author and number, and the room name.
type Shown = (Vec<((String, u64), EntryState)>, Option<String>);

/// A member's reactions given so far: emoji, who, and whether given.
type Given = Vec<(String, String, bool)>;

fn model(messages: &[Message]) -> Shown {
    let mut sorted: Vec<&Message> = messages.iter().collect();
    sorted.sort_by_key(|m| m.key());
    let mut name = None;
    let mut states: BTreeMap<(String, u64), (EntryState, Given)> = BTreeMap::new();
    for m in &sorted {
        if m.entry_kind().is_shown() {
            states.entry((m.author.clone(), m.seq)).or_default();
        }
        if m.kind == EntryKind::RoomName {
            name = Some(m.text.clone());
        }
        let Some(re) = &m.re else { continue };
        let (state, given) = states.entry((re.author.clone(), re.seq)).or_default();
        match m.kind {
            EntryKind::Edit if m.author == re.author && !state.deleted => {
                state.text = Some(m.text.clone());
                state.edited = true;
            }
            EntryKind::Delete if m.author == re.author => state.deleted = true,
            EntryKind::React | EntryKind::Unreact => {
                let on = m.kind == EntryKind::React;
                match given
                    .iter_mut()
                    .find(|(e, a, _)| *e == m.text && *a == m.author)
                {
                    Some(g) => g.2 = on,
                    None => given.push((m.text.clone(), m.author.clone(), on)),
                }
            }
            _ => {}
        }
    }
    let nick = |a: &str| format!("n{}", &a[..1]);
    let states = states
        .into_iter()
        .map(|(k, (mut state, given))| {
            if state.deleted {
                state = EntryState {
                    deleted: true,
                    ..EntryState::default()
                };
            } else {
                for (emoji, giver, on) in given {
                    let at = match state.reactions.iter().position(|r| r.emoji == emoji) {
                        Some(at) => at,
                        None => {
                            state.reactions.push(Reaction {
                                emoji,
                                by: Vec::new(),
                            });
                            state.reactions.len() - 1
                        }
                    };
                    if on {
                        let nick = nick(&giver);
                        state.reactions[at].by.push((giver, nick));
                    }
                }
                state.reactions.retain(|r| !r.by.is_empty());
            }
            (k, state)
        })
        .collect();
    (states, name)
}

fn shown_states(h: &History) -> Shown {
    let mut states: Vec<((String, u64), EntryState)> = h
        .messages()
        .filter(|m| m.entry_kind().is_shown())
        .map(|m| ((m.author.clone(), m.seq), h.entry_state(&m.author, m.seq)))
        .collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    (states, h.room_name().map(|n| n.text))
}

proptest! {
    #[test]
    fn every_replica_shows_the_same_edits_deletions_reactions_and_room_name(
        messages in lively_conversation(),
        first in deliveries(),
        second in deliveries(),
    ) {
        let one = replay("rrrrrrrrrrrrrrr1", 1000, &messages, &first);
        let two = replay("rrrrrrrrrrrrrrr2", 1000, &messages, &second);
        prop_assert_eq!(one.len(), messages.len());
        let (mut want, name) = model(&messages);
        // Only entries that are shown (targets exist in the log).
        want.retain(|(k, _)| one.get(&k.0, k.1).is_some());
        prop_assert_eq!(shown_states(&one), (want.clone(), name.clone()));
        prop_assert_eq!(shown_states(&two), (want, name));
    }

    #[test]
    fn every_replica_ends_in_the_same_order(
        messages in conversation(),
        first in deliveries(),
        second in deliveries(),
    ) {
        let one = replay("rrrrrrrrrrrrrrr1", 1000, &messages, &first);
        let two = replay("rrrrrrrrrrrrrrr2", 1000, &messages, &second);
        let mut want: Vec<&Message> = messages.iter().collect();
        want.sort_by_key(|m| m.key());
        let want: Vec<(String, u64)> = want.iter().map(|m| (m.author.clone(), m.seq)).collect();
        prop_assert_eq!(order(&one), want.clone());
        prop_assert_eq!(order(&two), want);
        // Causality: a message sorts after every earlier message by its author
        // and after everything its author had seen.
        let clocks: Vec<u64> = one.messages().map(|m| m.clock).collect();
        prop_assert!(clocks.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_bounded_log_keeps_the_same_newest_messages_everywhere(
        messages in conversation(),
        first in deliveries(),
        second in deliveries(),
        capacity in 1..10usize,
    ) {
        let one = replay("rrrrrrrrrrrrrrr1", capacity, &messages, &first);
        let two = replay("rrrrrrrrrrrrrrr2", capacity, &messages, &second);
        prop_assert_eq!(order(&one), order(&two));
        let mut keys: Vec<Key> = messages.iter().map(Message::key).collect();
        keys.sort();
        let newest: Vec<(String, u64)> = keys[keys.len().saturating_sub(capacity)..]
            .iter()
            .map(|k| (k.author.clone(), k.seq))
            .collect();
        prop_assert_eq!(order(&one), newest);
    }
}
