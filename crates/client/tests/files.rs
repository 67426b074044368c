//! Files between native clients in one room, through a real server on
//! 127.0.0.1:0, over real WebRTC transfer channels: the bytes saved are the
//! bytes offered, under plain names in the download directory, never
//! overwriting; a private offer reaches only its recipient; a member who
//! joins later fetches a file from whoever holds it. Run inside the
//! loopback-only network namespace (scripts/test.sh does).

mod common;

use common::{
    Member, alice_and_bob, content, expect, joined, partly_arrived, room_message, saved, scratch,
    server, sha256_hex,
};
use peerchat_client::engine::{Engine, EngineOptions, Event, FileInfo};

const ROOM: &str = "files-test-room-aaaaaaaaaa";

fn options(url: &str, nick: &str, downloads: &std::path::Path) -> EngineOptions {
    common::options(url, ROOM, nick, downloads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_edge_size_and_awkward_name_arrive_whole_under_plain_names() {
    let (url, _stop) = server().await;
    let dir = scratch("edges");
    let (outbox, a_dl, b_dl) = (dir.join("out"), dir.join("a"), dir.join("b dl"));
    std::fs::create_dir_all(&outbox).unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    let (alice, mut a) = Engine::start(options(&url, "alice", &a_dl));
    joined(&mut a, &mut a_seen).await;
    let (bob, mut b) = Engine::start(options(&url, "bob", &b_dl));
    joined(&mut b, &mut b_seen).await;
    alice.send("hi").unwrap();
    room_message(&mut b, &mut b_seen, "hi").await;

    // (name on disk, size, the plain name bob saves it under)
    let cases: [(&str, usize, &str); 10] = [
        ("empty", 0, "empty"),
        ("one byte.txt", 1, "one byte.txt"),
        ("just under.bin", 16 * 1024 - 1, "just under.bin"),
        ("exactly.bin", 16 * 1024, "exactly.bin"),
        ("just over.bin", 16 * 1024 + 1, "just over.bin"),
        // One byte past a data message of 32 KiB.
        (
            "one message over.bin",
            32 * 1024 + 1,
            "one message over.bin",
        ),
        (
            "five MiB – Überraschung 🎁.dat",
            5 << 20,
            "five MiB – Überraschung 🎁.dat",
        ),
        ("..\\..\\etc\\passwd", 10, "passwd"),
        ("invoice\u{202E}fdp.exe", 20, "invoicefdp.exe"),
        ("exactly.bin", 30, "exactly (1).bin"),
    ];
    for (i, (name, size, plain)) in cases.iter().enumerate() {
        let sub = outbox.join(i.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join(name);
        let bytes = content(*size, i as u8);
        std::fs::write(&path, &bytes).unwrap();
        let offered: FileInfo = alice.offer_file(None, &path).await.unwrap();
        assert_eq!((offered.size, offered.own), (*size as u64, true));
        assert_eq!(offered.sha256, sha256_hex(&bytes));
        let (got, sha256) = saved(&mut b, &mut b_seen, &offered.fid).await;
        assert_eq!(got, b_dl.join(plain), "{name:?}");
        assert_eq!(sha256, offered.sha256);
        assert_eq!(sha256_hex(&std::fs::read(&got).unwrap()), offered.sha256);
    }
    // Nothing else, no partial file, was left in the download directory.
    let mut left: Vec<String> = std::fs::read_dir(&b_dl)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want: Vec<String> = cases.iter().map(|c| c.2.to_owned()).collect();
    want.sort();
    assert_eq!(left, want);
    // The offer told bob what it is, by its plain name.
    assert!(
        b_seen
            .iter()
            .any(|e| matches!(e, Event::FileOffered { file, waiting: false }
        if file.name == "invoicefdp.exe" && !file.own))
    );
    alice.leave().await;
    bob.leave().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_offers_wait_private_ones_reach_one_member_and_late_joiners_fetch_from_any_holder() {
    let (url, _stop) = server().await;
    let dir = scratch("holders");
    let mut a_seen = Vec::new();
    let mut b_seen = Vec::new();
    let mut c_seen = Vec::new();
    let mut small = options(&url, "alice", &dir.join("a"));
    small.accept_files = 1000;
    let (alice, mut a) = Engine::start(small);
    joined(&mut a, &mut a_seen).await;
    let (bob, mut b) = Engine::start(options(&url, "bob", &dir.join("b")));
    joined(&mut b, &mut b_seen).await;
    let (carol, mut c) = Engine::start(options(&url, "carol", &dir.join("c")));
    joined(&mut c, &mut c_seen).await;
    bob.send("bob here").unwrap();
    room_message(&mut a, &mut a_seen, "bob here").await;
    room_message(&mut c, &mut c_seen, "bob here").await;

    // Over alice's limit (1000 bytes): it waits for /accept.
    let report = dir.join("report.pdf");
    let bytes = content(300_000, 7);
    std::fs::write(&report, &bytes).unwrap();
    let offered = bob.offer_file(None, &report).await.unwrap();
    let waiting = expect(&mut a, &mut a_seen, |e| match e {
        Event::FileOffered { file, waiting } if file.fid == offered.fid => Some(*waiting),
        _ => None,
    })
    .await;
    assert!(waiting);
    saved(&mut c, &mut c_seen, &offered.fid).await;
    assert!(!a_seen.iter().any(|e| matches!(e, Event::FileSaved { .. })));
    let accepted = alice.accept_files(Some("report.pdf")).await;
    assert_eq!(accepted.len(), 1);
    let (path, _) = saved(&mut a, &mut a_seen, &offered.fid).await;
    assert_eq!(std::fs::read(path).unwrap(), bytes);

    // A private offer: only carol gets it.
    let secret = dir.join("for carol.txt");
    std::fs::write(&secret, b"only for carol").unwrap();
    let private = bob.offer_file(Some("carol"), &secret).await.unwrap();
    assert_eq!(
        private.private.as_ref().map(|p| p.nick.as_str()),
        Some("carol")
    );
    let (path, _) = saved(&mut c, &mut c_seen, &private.fid).await;
    assert_eq!(std::fs::read(path).unwrap(), b"only for carol");
    bob.send("after the private one").unwrap();
    room_message(&mut a, &mut a_seen, "after the private one").await;
    assert!(
        !a_seen
            .iter()
            .any(|e| matches!(e, Event::FileOffered { file, .. } if file.fid == private.fid))
    );

    // Bob leaves: dave, joining later, sees his offer in the history from
    // alice and carol, and fetches it from one of them.
    bob.leave().await;
    expect(&mut a, &mut a_seen, |e| {
        matches!(e, Event::MemberLeft { .. }).then_some(())
    })
    .await;
    let (dave, mut d) = Engine::start(options(&url, "dave", &dir.join("d")));
    let mut d_seen = Vec::new();
    joined(&mut d, &mut d_seen).await;
    let (path, sha256) = saved(&mut d, &mut d_seen, &offered.fid).await;
    assert_eq!(sha256, offered.sha256);
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    assert!(
        !d_seen
            .iter()
            .any(|e| matches!(e, Event::FileOffered { file, .. } if file.fid == private.fid))
    );
    for engine in [alice, carol, dave] {
        engine.leave().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_author_withdraws_an_offer_in_flight_and_nobody_gets_it_any_more() {
    let (url, _stop) = server().await;
    let dir = scratch("withdraw");
    // Bob takes files of any size without asking.
    let (
        Member {
            engine: alice,
            events: mut a,
            seen: mut a_seen,
        },
        Member {
            engine: bob,
            events: mut b,
            seen: mut b_seen,
        },
    ) = alice_and_bob(&url, ROOM, &dir).await;

    // Nothing of alice's is in flight: a bare /cancel withdraws nothing.
    assert!(alice.cancel_files(None).await.is_empty());
    let path = dir.join("big.bin");
    std::fs::write(&path, content(32 << 20, 3)).unwrap();
    let offered = alice.offer_file(None, &path).await.unwrap();
    let size = offered.size;
    partly_arrived(&mut b, &mut b_seen, &offered.fid, size).await;
    // In flight: /cancel without a name withdraws it.
    let withdrawn = alice.cancel_files(None).await;
    assert_eq!(withdrawn.len(), 1);
    assert!(withdrawn[0].own && withdrawn[0].fid == offered.fid);
    expect(&mut a, &mut a_seen, |e| match e {
        Event::FileWithdrawn { file } if file.fid == offered.fid => Some(()),
        _ => None,
    })
    .await;
    let reason = expect(&mut b, &mut b_seen, |e| match e {
        Event::FileSaved { fid, .. } if *fid == offered.fid => panic!("saved after its withdrawal"),
        Event::FileFailed { fid, reason, .. } if *fid == offered.fid => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, "cancelled by its author");
    // Nothing of it is left at bob's.
    let left = std::fs::read_dir(dir.join("b")).map_or(0, |d| d.count());
    assert_eq!(left, 0);

    // The next file from alice arrives at once, on a new channel of the
    // same connection: the withdrawn transfer's channel leaves nothing
    // behind that holds it up (a channel that never opens would cost 15 s
    // and more).
    let next = dir.join("next.bin");
    std::fs::write(&next, content(1 << 20, 4)).unwrap();
    let offered_next = alice.offer_file(None, &next).await.unwrap();
    let (path, sha256) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        saved(&mut b, &mut b_seen, &offered_next.fid),
    )
    .await
    .expect("the next file arrives without a stall");
    assert_eq!(sha256, offered_next.sha256);
    assert_eq!(std::fs::read(&path).unwrap(), content(1 << 20, 4));

    // Carol, joining later, sees the offer in the history and asks alice
    // for it: she is told it was cancelled, and gets nothing.
    let mut carol_options = options(&url, "carol", &dir.join("c"));
    carol_options.accept_files = u64::MAX;
    let (carol, mut c) = Engine::start(carol_options);
    let mut c_seen = Vec::new();
    joined(&mut c, &mut c_seen).await;
    let reason = expect(&mut c, &mut c_seen, |e| match e {
        Event::FileSaved { fid, .. } if *fid == offered.fid => {
            panic!("served after its withdrawal")
        }
        Event::FileFailed { fid, reason, .. } if *fid == offered.fid => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, "cancelled by its author");
    // By name, once withdrawn, it is no longer ours to withdraw.
    assert!(alice.cancel_files(Some("big.bin")).await.is_empty());
    for engine in [alice, bob, carol] {
        engine.leave().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file changed on disk since it was offered is never saved by its
/// fetcher, which says it is stalled instead (its holder, reading and
/// hashing each piece off the task that sends, refuses it as `changed`;
/// the holder's check itself is pinned by the sender vectors, replayed with
/// the reader's hashes too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_on_disk_after_its_offer_is_refused_and_never_saved() {
    let (url, _stop) = server().await;
    let dir = scratch("changed");
    // Alice fetches nothing over 1000 bytes without asking.
    let Member {
        engine: alice,
        events: mut a,
        seen: mut a_seen,
    } = Member::join(&url, ROOM, "alice", &dir.join("a"), Some(1000)).await;
    let bob = Member::join(&url, ROOM, "bob", &dir.join("b"), None)
        .await
        .engine;
    bob.send("bob here").unwrap();
    room_message(&mut a, &mut a_seen, "bob here").await;

    let path = dir.join("notes.bin");
    let mut bytes = content(300_000, 3);
    std::fs::write(&path, &bytes).unwrap();
    let offered = bob.offer_file(None, &path).await.unwrap();
    expect(&mut a, &mut a_seen, |e| match e {
        Event::FileOffered {
            file,
            waiting: true,
        } if file.fid == offered.fid => Some(()),
        _ => None,
    })
    .await;
    // Edited in place after the offer: the first piece no longer matches.
    bytes[1000] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(alice.accept_files(Some("notes.bin")).await.len(), 1);
    expect(&mut a, &mut a_seen, |e| match e {
        Event::FileProgress {
            fid, stalled: true, ..
        } if *fid == offered.fid => Some(()),
        _ => None,
    })
    .await;
    assert!(
        !a_seen
            .iter()
            .any(|e| matches!(e, Event::FileSaved { fid, .. } if *fid == offered.fid))
    );
    for engine in [alice, bob] {
        engine.leave().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
