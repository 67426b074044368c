//! The long-poll mailbox over real HTTP, including curl as in the seed.

mod common;

use common::{Server, WAIT, health, http_post};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Waits (bounded) until the server reports this many waiting requests.
async fn until_waiting(server: &Server, n: u64) {
    tokio::time::timeout(WAIT, async {
        while health(server.addr).await["mailbox_waiting"] != n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never {n} waiting"));
}

#[tokio::test]
async fn a_waiting_get_returns_what_a_set_posts() {
    let server = Server::start(&[]).await;
    let addr = server.addr;
    let get =
        tokio::spawn(async move { http_post(addr, "/sig?get=x&timeoutms=600000", b"").await });
    until_waiting(&server, 1).await;
    let (status, _) = http_post(addr, "/sig?set=x", b"hello world\n").await;
    assert_eq!(status, 200);
    assert_eq!(get.await.unwrap(), (200, b"hello world\n".to_vec()));
    server.stop().await;
}

#[tokio::test]
async fn sets_queue_up_and_are_read_once_in_order() {
    let server = Server::start(&[]).await;
    let addr = server.addr;
    let mut sets = Vec::new();
    for (i, text) in ["first", "second", "third"].into_iter().enumerate() {
        sets.push(tokio::spawn(async move {
            http_post(addr, "/sig?set=q&timeoutms=60000", text.as_bytes()).await
        }));
        // Queue them one after another so their order is defined.
        until_waiting(&server, i as u64 + 1).await;
    }
    for want in ["first", "second", "third"] {
        assert_eq!(
            http_post(addr, "/sig?get=q&timeoutms=0", b"").await,
            (200, want.as_bytes().to_vec())
        );
    }
    for set in sets {
        assert_eq!(
            set.await.unwrap().0,
            200,
            "each writer hears its text was taken"
        );
    }
    // Each text was read exactly once.
    assert_eq!(http_post(addr, "/sig?get=q&timeoutms=0", b"").await.0, 204);
    server.stop().await;
}

#[tokio::test]
async fn timeouts_answer_204() {
    let server = Server::start(&[]).await;
    let addr = server.addr;
    assert_eq!(http_post(addr, "/sig?get=t&timeoutms=0", b"").await.0, 204);
    assert_eq!(http_post(addr, "/sig?get=t&timeoutms=50", b"").await.0, 204);
    // A set nobody reads times out and its text is withdrawn.
    assert_eq!(
        http_post(addr, "/sig?set=t&timeoutms=50", b"lost").await.0,
        204
    );
    assert_eq!(
        http_post(addr, "/sig?set=t&timeoutms=0", b"lost").await.0,
        204
    );
    assert_eq!(http_post(addr, "/sig?get=t&timeoutms=0", b"").await.0, 204);
    let h = health(addr).await;
    assert_eq!(
        (h["mailbox_waiting"].as_u64(), h["mailbox_queued"].as_u64()),
        (Some(0), Some(0))
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_reason() {
    let server = Server::start(&[
        "--mailbox-max-body",
        "10",
        "--mailbox-queue-per-id",
        "1",
        "--mailbox-max-wait",
        "1m",
    ])
    .await;
    let addr = server.addr;
    let cases: [(&str, &[u8], u16, &str); 8] = [
        ("/sig", b"", 400, "get=ID"),
        ("/sig?get=a&set=a", b"", 400, "not both"),
        ("/sig?get=a&get=b", b"", 400, "more than once"),
        ("/sig?get=a/b", b"", 400, "the id must be"),
        ("/sig?get=a&timeoutms=soon", b"", 400, "whole number"),
        ("/sig?get=a&timeoutms=60001", b"", 400, "at most 60000"),
        ("/sig?set=a", b"12345678901", 413, "at most 10 bytes"),
        ("/sig?set=a&timeoutms=0", b"ok", 204, ""),
    ];
    for (path, body, status, reason) in cases {
        let (got, text) = http_post(addr, path, body).await;
        let text = String::from_utf8(text).unwrap();
        assert_eq!(got, status, "{path}: {text}");
        assert!(text.contains(reason), "{path}: {text:?}");
        assert!(text.lines().count() <= 1, "one line: {text:?}");
    }
    // The queue for one id is full at 1 text.
    let queued =
        tokio::spawn(async move { http_post(addr, "/sig?set=full&timeoutms=60000", b"1").await });
    until_waiting(&server, 1).await;
    let (status, text) = http_post(addr, "/sig?set=full&timeoutms=60000", b"2").await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&text));
    assert_eq!(
        http_post(addr, "/sig?get=full", b"").await,
        (200, b"1".to_vec())
    );
    assert_eq!(queued.await.unwrap().0, 200);
    server.stop().await;
}

#[tokio::test]
async fn requests_in_flight_are_capped() {
    let server = Server::start(&["--mailbox-max-in-flight", "2"]).await;
    let addr = server.addr;
    let a = tokio::spawn(async move { http_post(addr, "/sig?get=a&timeoutms=60000", b"").await });
    let b = tokio::spawn(async move { http_post(addr, "/sig?get=b&timeoutms=60000", b"").await });
    until_waiting(&server, 2).await;
    assert_eq!(
        http_post(addr, "/sig?get=c&timeoutms=60000", b"").await.0,
        503
    );
    http_post(addr, "/sig?set=a", b"x").await;
    http_post(addr, "/sig?set=b", b"y").await;
    assert_eq!(a.await.unwrap(), (200, b"x".to_vec()));
    assert_eq!(b.await.unwrap(), (200, b"y".to_vec()));
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_stops_waiting_and_its_text_is_withdrawn() {
    let server = Server::start(&[]).await;
    let addr = server.addr;
    for path in ["/sig?get=h&timeoutms=60000", "/sig?set=h&timeoutms=60000"] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 4\r\n\r\ngone");
        stream.write_all(req.as_bytes()).await.unwrap();
        until_waiting(&server, 1).await;
        drop(stream);
        until_waiting(&server, 0).await;
    }
    assert_eq!(http_post(addr, "/sig?get=h&timeoutms=0", b"").await.0, 204);
    server.stop().await;
}

#[tokio::test]
async fn the_mailbox_can_be_turned_off() {
    let server = Server::start(&["--no-mailbox"]).await;
    assert_eq!(http_post(server.addr, "/sig?get=x", b"").await.0, 404);
    server.stop().await;
}

/// The seed's example, with curl: one terminal waits, another posts.
#[tokio::test]
async fn curl_as_in_the_seed() {
    let server = Server::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let get_url = format!("{base}/sig?get=someidentifier&timeoutms=600000");
    let get = tokio::process::Command::new("curl")
        .args(["-sS", "-X", "POST", &get_url])
        .output();
    let get = tokio::spawn(get);
    until_waiting(&server, 1).await;
    let set = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            &format!("{base}/sig?set=someidentifier"),
            "-d",
        ])
        .arg("hello world\n")
        .output()
        .await
        .expect("curl runs");
    assert!(set.status.success());
    let got = tokio::time::timeout(WAIT, get)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(got.status.success());
    assert_eq!(String::from_utf8(got.stdout).unwrap(), "hello world\n");
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    use tokio::io::AsyncReadExt;
    let server = Server::start(&["--mailbox-max-body", "1000", "--handshake-timeout", "60s"]).await;
    let addr = server.addr;
    // Announced too large: refused at once, before any of it is sent.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST /sig?set=big HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000000000\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0; 12];
    tokio::time::timeout(WAIT, stream.read_exact(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    // Not announced (chunked): reading stops at the limit.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST /sig?set=big HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"800\r\n").await.unwrap();
    stream.write_all(&[b'x'; 0x800]).await.unwrap();
    stream.write_all(b"\r\n").await.unwrap();
    tokio::time::timeout(WAIT, stream.read_exact(&mut answer))
        .await
        .expect("answered without waiting for the rest")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    server.stop().await;
}
