//! Out of file descriptors, the server backs off instead of spinning on
//! `accept` and logging every failure, and serves again once descriptors
//! are free. Its own test binary: it lowers the process's open-file limit.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Server, WAIT, health};
use rlimit::Resource;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_accept_loop_backs_off() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .init();
    let server = Server::start(&[]).await;
    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    rlimit::setrlimit(Resource::NOFILE, open + 40, hard).unwrap();
    // Connect until this process (clients and server alike) is out of
    // descriptors: the last connections wait in the listener's backlog,
    // which the server cannot accept.
    let mut clients = Vec::new();
    while clients.len() < 200 {
        match tokio::net::TcpStream::connect(server.addr).await {
            Ok(stream) => clients.push(stream),
            Err(_) => break,
        }
    }
    assert!(clients.len() < 200, "ran out of descriptors");
    let before = lines.0.load(Ordering::Relaxed);
    // A window of time in which a spinning loop would log thousands of
    // lines; backing off, it logs one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let logged = lines.0.load(Ordering::Relaxed) - before;
    drop(clients);
    rlimit::setrlimit(Resource::NOFILE, soft, hard).unwrap();
    assert!(logged <= 3, "{logged} lines logged in 1.5 s");
    // Descriptors are free again: the server serves.
    let served = tokio::time::timeout(WAIT, health(server.addr)).await;
    assert_eq!(served.unwrap()["status"], "ok");
    server.stop().await;
}
