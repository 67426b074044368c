//! Garbage UDP at the relay is dropped quietly: no log line per datagram
//! (the `turn` crate writes an ERROR for each one it cannot handle), and
//! the relay keeps serving. Its own test binary: it installs the log
//! subscriber that counts lines.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stun::message::{
    BINDING_REQUEST, CLASS_INDICATION, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE, METHOD_BINDING,
    METHOD_SEND, Message, MessageType,
};

mod common;

/// Counts the log lines written.
#[derive(Clone, Default)]
struct Lines(Arc<AtomicUsize>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.iter().filter(|&&b| b == b'\n').count();
        self.0.fetch_add(n, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn stun(typ: MessageType) -> Vec<u8> {
    let mut m = Message::new();
    m.typ = typ;
    m.new_transaction_id().unwrap();
    m.write_header();
    m.raw
}

#[tokio::test]
async fn garbage_is_dropped_quietly_and_the_relay_keeps_serving() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();
    let (relay, socket) = common::relay_and_socket().await;
    let mut truncated = stun(MessageType::new(
        METHOD_ALLOCATE,
        stun::message::CLASS_REQUEST,
    ));
    truncated.extend_from_slice(&[0, 0x20, 0, 8, 1]); // an attribute cut short
    truncated[3] = 5;
    let kinds: Vec<Vec<u8>> = vec![
        b"hello, relay".to_vec(),
        vec![0; 3],
        vec![0x40, 0x01, 0x00, 0x04, 1, 2, 3, 4], // ChannelData, no allocation
        truncated,
        stun(MessageType::new(METHOD_BINDING, CLASS_SUCCESS_RESPONSE)),
        stun(MessageType::new(METHOD_ALLOCATE, CLASS_INDICATION)),
        stun(MessageType::new(METHOD_SEND, stun::message::CLASS_REQUEST)),
    ];
    for i in 0..7_000 {
        socket.send(&kinds[i % kinds.len()]).await.unwrap();
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Still serving: a binding request is answered, after all of that.
    let mut buf = [0; 1500];
    let answered = async {
        loop {
            socket.send(&stun(BINDING_REQUEST)).await.unwrap();
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await
            {
                let mut m = Message::new();
                if m.unmarshal_binary(&buf[..n]).is_ok() && m.typ.class == CLASS_SUCCESS_RESPONSE {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), answered)
        .await
        .expect("the relay still answers");
    let logged = lines.0.load(Ordering::Relaxed);
    assert!(
        logged <= 3,
        "{logged} log lines for 7,000 garbage datagrams"
    );
    relay.close().await;
}
