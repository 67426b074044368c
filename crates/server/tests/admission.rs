//! Integration tests of the admission rules every route shares: the `Host`
//! allow-list (against DNS rebinding), the `Origin` rule, and the caps on
//! connections.

mod common;

use common::{Server, UPGRADE, http_raw};

/// A request to `path` naming `host`, with more header lines in `extra`.
async fn status(server: &Server, method: &str, path: &str, host: &str, extra: &str) -> u16 {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}");
    if !extra.is_empty() {
        head.push_str("\r\n");
        head.push_str(extra);
    }
    if method == "POST" {
        head.push_str("\r\nContent-Length: 0");
    }
    http_raw(server.addr, &head, b"").await.0
}

#[tokio::test]
async fn a_host_not_on_the_allow_list_is_refused_on_every_route() {
    let server = Server::start(&["--allowed-host", "chat.example.org,.friends.example"]).await;
    let port = server.addr.port();
    // A name that a DNS rebinding attack points at the server, and the
    // page it serves, whose origin then matches that `Host`.
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("Origin: http://{evil}\r\n{UPGRADE}");
    for (method, path, extra) in [
        ("GET", "/", ""),
        ("GET", "/healthz", ""),
        ("GET", "/r/abcdefghijklmnopqrstuv", ""),
        ("GET", "/js/app.js", ""),
        ("POST", "/sig?get=abc&timeoutms=0", ""),
        ("GET", "/ws", evil_origin.as_str()),
    ] {
        let got = status(&server, method, path, &evil, extra).await;
        assert_eq!(got, 421, "{method} {path} with Host {evil}");
    }
    // No Host at all.
    let (got, _, _) = http_raw(server.addr, "GET / HTTP/1.1", b"").await;
    assert_eq!(got, 400);

    // Loopback names, IP addresses and the allowed names pass.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("app.localhost:{port}"),
        format!("[::1]:{port}"),
        format!("192.0.2.7:{port}"),
        "chat.example.org".to_owned(),
        format!("Chat.Example.Org:{port}"),
        "friends.example".to_owned(),
        "a.friends.example".to_owned(),
    ] {
        assert_eq!(
            status(&server, "GET", "/healthz", &host, "").await,
            200,
            "{host}"
        );
        let origin = format!("Origin: http://{host}\r\n{UPGRADE}");
        assert_eq!(
            status(&server, "GET", "/ws", &host, &origin).await,
            101,
            "{host}"
        );
    }
    // Look-alikes of allowed names do not.
    for host in [
        "chat.example.org.evil.example",
        "evilfriends.example",
        "localhost.evil.example",
    ] {
        assert_eq!(
            status(&server, "GET", "/healthz", host, "").await,
            421,
            "{host}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn any_host_passes_with_a_star() {
    let server = Server::start(&["--allowed-host", "*"]).await;
    assert_eq!(
        status(&server, "GET", "/healthz", "anything.example", "").await,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn the_mailbox_follows_the_origin_rule() {
    let server = Server::start(&["--allowed-origin", "https://friend.example"]).await;
    let host = server.addr.to_string();
    let post = |origin: Option<String>| {
        let host = host.clone();
        let addr = server.addr;
        async move {
            let mut head = format!(
                "POST /sig?set=o1&timeoutms=0 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2"
            );
            if let Some(origin) = origin {
                head.push_str(&format!("\r\nOrigin: {origin}"));
            }
            http_raw(addr, &head, b"hi").await.0
        }
    };
    // A page elsewhere posting with `fetch(…, {mode: "no-cors"})`.
    assert_eq!(post(Some("https://evil.example".into())).await, 403);
    // curl sends no Origin; the server's own pages and allowed ones pass
    // (nobody reads: 204).
    assert_eq!(post(None).await, 204);
    assert_eq!(post(Some(format!("http://{host}"))).await, 204);
    assert_eq!(post(Some("https://friend.example".into())).await, 204);
    server.stop().await;
}

/// Opens a WebSocket to `/ws` through a "proxy" on loopback that says the
/// client is `client`; returns the status and the open stream (a `101`
/// keeps it, and the client's place, until dropped).
async fn upgrade_as(server: &Server, client: &str) -> (u16, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nX-Forwarded-For: {client}\r\n{UPGRADE}\r\n\r\n",
        server.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0; 1024];
        let n = tokio::time::timeout(common::WAIT, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "answer in full");
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    (status, stream)
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--max-connections-per-address",
        "2",
    ])
    .await;
    let (s1, a) = upgrade_as(&server, "203.0.113.9").await;
    let (s2, b) = upgrade_as(&server, "203.0.113.9").await;
    assert_eq!((s1, s2), (101, 101));
    assert_eq!(upgrade_as(&server, "203.0.113.9").await.0, 429);
    // IPv6 counts by /64.
    let (_, c) = upgrade_as(&server, "2001:db8:1:2::1").await;
    let (_, d) = upgrade_as(&server, "[2001:db8:1:2::2]:5000").await;
    assert_eq!(upgrade_as(&server, "2001:db8:1:2:abcd::3").await.0, 429);
    // Others still get in, and a closed connection frees its place.
    assert_eq!(upgrade_as(&server, "203.0.113.10").await.0, 101);
    drop(a);
    let mut freed = false;
    for _ in 0..200 {
        let (status, _) = upgrade_as(&server, "203.0.113.9").await;
        if status == 101 {
            freed = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(freed, "a closed connection frees its address's place");
    // Without --trusted-proxy the header is anyone's to write: ignored
    // (and loopback itself is not limited).
    let plain = Server::start(&["--max-connections-per-address", "1"]).await;
    let (x, _kx) = upgrade_as(&plain, "198.51.100.1").await;
    let (y, _ky) = upgrade_as(&plain, "198.51.100.1").await;
    assert_eq!((x, y), (101, 101));
    drop((b, c, d));
    plain.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn one_address_cannot_open_sessions_without_end() {
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.0/8",
        "--join-burst-per-address",
        "3",
        "--join-rate-per-address",
        "1",
    ])
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let (status, stream) = upgrade_as(&server, "192.0.2.50").await;
        assert_eq!(status, 101);
        open.push(stream);
    }
    assert_eq!(upgrade_as(&server, "192.0.2.50").await.0, 429);
    assert_eq!(upgrade_as(&server, "192.0.2.51").await.0, 101);
    server.stop().await;
}
