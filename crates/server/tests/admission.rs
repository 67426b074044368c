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
