//! A file transfer between two native clients survives the network going
//! away mid-transfer: the namespace's loopback goes down for a few seconds,
//! and the file still arrives whole. Needs the loopback-only namespace
//! (scripts/netns.sh) and the right to take its loopback down; alone in its
//! test binary, so that no other test sees the network go.

mod common;

use std::time::Duration;

use common::{Member, alice_and_bob, partly_arrived, scratch, server};
use peerchat_client::engine::Event;

const ROOM: &str = "blip-test-room-aaaaaaaaaaa";

/// Whether this runs in the test namespace, whose only interface is its
/// own loopback: never take a real machine's down.
fn can_flap() -> bool {
    std::env::var("PEERCHAT_NETNS").as_deref() == Ok("1")
        && std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .is_ok_and(|o| {
                o.status.success()
                    && o.stdout
                        .split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .count()
                        == 1
            })
}

fn ip(args: &[&str]) {
    let _ = std::process::Command::new("ip").args(args).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_cut_by_the_network_going_away_carries_on_and_completes() {
    if !can_flap() {
        eprintln!("skipped: not in the loopback-only namespace");
        return;
    }
    let (url, _stop) = server().await;
    let dir = scratch("blip");
    // Bob takes files of any size without asking.
    let (
        Member {
            engine: alice,
            // Kept: the engine runs while its events are read.
            events: _a,
            ..
        },
        Member {
            engine: bob,
            events: mut b,
            seen: mut b_seen,
        },
    ) = alice_and_bob(&url, ROOM, &dir).await;

    let path = dir.join("big.bin");
    let bytes: Vec<u8> = (0..(24u32 << 20))
        .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let offered = alice.offer_file(None, &path).await.unwrap();
    // Part of it arrived: the network goes for three seconds.
    let size = offered.size;
    partly_arrived(&mut b, &mut b_seen, &offered.fid, size).await;
    ip(&["link", "set", "lo", "down"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    ip(&["link", "set", "lo", "up"]);
    ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    let got = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match b.recv().await.expect("engine running") {
                Event::FileSaved {
                    fid, path, sha256, ..
                } if fid == offered.fid => {
                    return (path, sha256);
                }
                Event::FileFailed { fid, reason, .. } if fid == offered.fid => {
                    panic!("failed: {reason}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the file in time");
    assert_eq!(got.1, offered.sha256);
    assert!(
        std::fs::read(&got.0).unwrap() == bytes,
        "the bytes saved are those sent"
    );
    alice.leave().await;
    bob.leave().await;
    let _ = std::fs::remove_dir_all(&dir);
}
