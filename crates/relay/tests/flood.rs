//! A flood of unauthenticated TURN requests (anyone can send them, from
//! any source address) leaves the relay's memory flat: its nonces are
//! stateless. Its own test binary, so that nothing else allocates while the
//! process's memory is measured.

use std::time::Duration;

use stun::message::{CLASS_REQUEST, METHOD_ALLOCATE, Message, MessageType};

mod common;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// Sends `count` unauthenticated Allocate requests, in rounds, reading the
/// answers (each one a challenge with a nonce).
async fn flood(socket: &tokio::net::UdpSocket, count: usize) -> usize {
    let mut answered = 0;
    let mut buf = [0; 1500];
    for _ in 0..count / 100 {
        for _ in 0..100 {
            let mut m = Message::new();
            m.typ = MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST);
            m.new_transaction_id().unwrap();
            m.write_header();
            socket.send(&m.raw).await.unwrap();
        }
        for _ in 0..100 {
            match tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await {
                Ok(Ok(_)) => answered += 1,
                _ => break,
            }
        }
    }
    answered
}

#[tokio::test]
async fn a_flood_of_unauthenticated_requests_leaves_memory_flat() {
    let (relay, socket) = common::relay_and_socket().await;
    // Warm up (buffers, the runtime's own allocations), then measure.
    flood(&socket, 5_000).await;
    let before = rss_kib();
    let answered = flood(&socket, 100_000).await;
    let grown = rss_kib().saturating_sub(before);
    assert!(
        answered > 90_000,
        "the relay answered {answered} of 100,000"
    );
    // A stored nonce costs over 100 bytes: 100,000 of them, 10 MB.
    assert!(grown < 2_048, "memory grew by {grown} KiB");
    relay.close().await;
}
