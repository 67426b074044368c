//! One large message does not pin a large parser buffer for the rest of a
//! connection's life. Its own test binary: it measures the process's
//! memory.

mod common;

use common::{Server, UPGRADE, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// A masked text frame carrying `text`.
fn frame(text: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | 126];
    f.extend_from_slice(&(text.len() as u16).to_be_bytes());
    let mask = [7, 1, 9, 3];
    f.extend_from_slice(&mask);
    f.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Opens a WebSocket on a raw stream (no client-side parser to hold
/// memory), sends one large message, and waits for the server's answer.
async fn one_large_message(server: &Server, message: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\n{UPGRADE}\r\n\r\n",
        server.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(message).await.unwrap();
    // The 101, then the error frame answering the message.
    let mut got = Vec::new();
    let read = async {
        while !got.windows(10).any(|w| w == b"not_joined") {
            let mut buf = [0; 1024];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "answered");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("answered in time");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_does_not_pin_its_parser_buffer() {
    let server = Server::start(&[]).await;
    let payload = format!(
        r#"{{"type":"signal","to":"0123456789abcdef","payload":{{"sdp":"{}"}}}}"#,
        "x".repeat(60_000)
    );
    let message = frame(payload.as_bytes());
    // Warm up, then measure 200 connections that each sent one.
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(one_large_message(&server, &message).await);
    }
    let before = rss_kib();
    for _ in 0..200 {
        open.push(one_large_message(&server, &message).await);
    }
    let grown = rss_kib().saturating_sub(before);
    // Pinned, the parser buffers would hold 200 × 64 KiB = 12.5 MiB.
    assert!(
        grown < 4 * 1024,
        "memory grew by {grown} KiB for 200 connections"
    );
    drop(open);
    server.stop().await;
}
