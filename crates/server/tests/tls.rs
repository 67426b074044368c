//! TLS built in: https and wss on one port with a certificate made here,
//! the admission rules over https, a certificate replaced while
//! connections stay open, and the plain-http redirect.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{ROOM, WAIT, config, next_json};
use futures_util::SinkExt;
use peerchat_server::AppState;
use peerchat_server::tls::{Tls, TlsFiles};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A self-signed certificate for 127.0.0.1 and localhost, written to `dir`.
struct Cert {
    der: CertificateDer<'static>,
    files: TlsFiles,
}

fn make_cert(dir: &Path, name: &str) -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    Cert {
        der: cert.der().clone(),
        files,
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peerchat-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client that trusts exactly these certificates.
fn connector(trusted: &[&CertificateDer<'static>]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await
}

/// The certificate the server showed on this connection.
fn shown(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

struct TlsServer {
    addr: SocketAddr,
    tls: Arc<Tls>,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(files: TlsFiles, flags: &[&str]) -> TlsServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = Arc::new(Tls::load(files).unwrap());
    let state = AppState::new(config(flags));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(peerchat_server::run_tls(
        listener,
        state,
        Some(tls.clone()),
        async move {
            let _ = stopped.await;
        },
    ));
    TlsServer { addr, tls, stop }
}

/// Opens a wss connection (with `origin`, if given) and joins as `nick`.
async fn wss_join(
    server: &TlsServer,
    connector: &TlsConnector,
    origin: Option<&str>,
    nick: &str,
) -> (Wss, String, CertificateDer<'static>) {
    let stream = tls_connect(server.addr, connector).await.unwrap();
    let cert = shown(&stream);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://{}/ws",
            server.addr
        ))
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let join = json!({"type":"join","v":2,"room":ROOM,"nick":nick});
    ws.send(Message::text(join.to_string())).await.unwrap();
    let joined = next_json(&mut ws).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let id = joined["you"]["id"].as_str().unwrap().to_owned();
    (ws, id, cert)
}

/// Sends a signal from `from` to `to_id` and waits for `to` to get it.
async fn relay(from: &mut Wss, to: &mut Wss, to_id: &str, n: u32) {
    let signal = json!({"type":"signal","to":to_id,"payload":{"n":n}});
    from.send(Message::text(signal.to_string())).await.unwrap();
    loop {
        let msg = next_json(to).await;
        if msg["type"] == "signal" {
            assert_eq!(msg["payload"]["n"], n, "{msg}");
            return;
        }
    }
}

/// A GET over https (or plain http when `connector` is None), returning
/// the status, the lowercased head and the body.
async fn get(
    addr: SocketAddr,
    connector: Option<&TlsConnector>,
    host: &str,
    path: &str,
) -> (u16, String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    match connector {
        Some(connector) => {
            let mut stream = tls_connect(addr, connector).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut buf))
                .await
                .unwrap();
        }
        None => {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            tokio::time::timeout(WAIT, stream.read_to_end(&mut buf))
                .await
                .unwrap()
                .unwrap();
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_ascii_lowercase(),
        body.to_owned(),
    )
}

#[tokio::test]
async fn https_and_wss_on_one_port_with_the_admission_rules() {
    let dir = temp_dir("serve");
    let cert = make_cert(&dir, "a");
    let server = start(cert.files.clone(), &["--no-turn"]).await;
    let client = connector(&[&cert.der]);
    let host = server.addr.to_string();

    let (status, head, body) = get(server.addr, Some(&client), &host, "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-security-policy"), "{head}");
    assert!(body.contains("<html"), "{body}");
    let (status, _, _) = get(server.addr, Some(&client), "evil.example", "/healthz").await;
    assert_eq!(status, 421, "the Host allow-list applies over https");

    // The page's own origin is https://HOST: its WebSockets pass the
    // Origin rule; another site's do not.
    let origin = format!("https://{host}");
    let (mut alice, alice_id, _) = wss_join(&server, &client, Some(&origin), "alice").await;
    let (mut bob, bob_id, _) = wss_join(&server, &client, Some(&origin), "bob").await;
    relay(&mut alice, &mut bob, &bob_id, 1).await;
    let stream = tls_connect(server.addr, &client).await.unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://{host}/ws"
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::client_async(request, stream).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );

    // A client speaking plain http to the TLS port gets nowhere, and the
    // server goes on.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));
    relay(&mut bob, &mut alice, &alice_id, 2).await;
    let _ = server.stop.send(());
}

/// The PeerJS endpoint behind TLS, as a `peerjs` client with
/// `secure: true` uses it: an id over https, then its WebSocket over wss
/// from the page's own origin.
#[tokio::test]
async fn the_peerjs_endpoint_works_over_https_and_wss() {
    let dir = temp_dir("peerjs");
    let cert = make_cert(&dir, "p");
    let server = start(cert.files.clone(), &["--no-turn", "--peerjs"]).await;
    let client = connector(&[&cert.der]);
    let host = server.addr.to_string();
    let (status, _, id) = get(server.addr, Some(&client), &host, "/peerjs/peerjs/id").await;
    assert_eq!(status, 200);
    let connect = |id: String| {
        let (client, host) = (client.clone(), host.clone());
        async move {
            let stream = tls_connect(server.addr, &client).await.unwrap();
            let url =
                format!("wss://{host}/peerjs/peerjs?key=peerjs&id={id}&token=t&version=1.5.5");
            let mut request =
                tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                    .unwrap();
            request
                .headers_mut()
                .insert("origin", format!("https://{host}").parse().unwrap());
            let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
                .await
                .unwrap();
            assert_eq!(next_json(&mut ws).await, json!({"type": "OPEN"}));
            ws
        }
    };
    let mut a = connect(id.clone()).await;
    let mut b = connect("bob".to_owned()).await;
    let offer = json!({"type": "OFFER", "dst": "bob", "payload": {"sdp": "v=0"}});
    a.send(Message::text(offer.to_string())).await.unwrap();
    assert_eq!(
        next_json(&mut b).await,
        json!({"type": "OFFER", "src": id, "dst": "bob", "payload": {"sdp": "v=0"}})
    );
    let _ = server.stop.send(());
}

#[tokio::test]
async fn a_new_certificate_is_served_to_new_connections_and_open_ones_stay() {
    let dir = temp_dir("reload");
    let first = make_cert(&dir, "live");
    let server = start(first.files.clone(), &["--no-turn"]).await;
    let old = connector(&[&first.der]);
    let (mut alice, alice_id, seen) = wss_join(&server, &old, None, "alice").await;
    assert_eq!(seen, first.der);
    assert!(!server.tls.reload().unwrap(), "nothing changed yet");

    // Renewed: a new key and certificate at the same paths.
    let second = make_cert(&dir, "next");
    std::fs::copy(&second.files.cert, &first.files.cert).unwrap();
    std::fs::copy(&second.files.key, &first.files.key).unwrap();
    assert!(server.tls.reload().unwrap());
    let new = connector(&[&second.der]);
    let (mut bob, bob_id, seen) = wss_join(&server, &new, None, "bob").await;
    assert_eq!(seen, second.der, "new connections get the new certificate");
    // (A fresh client: one that connected before may resume its session
    // without being shown a certificate.)
    assert!(
        tls_connect(server.addr, &connector(&[&first.der]))
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    // The connection made with the old certificate is still open.
    relay(&mut alice, &mut bob, &bob_id, 1).await;
    relay(&mut bob, &mut alice, &alice_id, 2).await;

    // A key that does not match the certificate is refused, and the
    // certificate in use stays.
    let third = make_cert(&dir, "third");
    std::fs::copy(&third.files.key, &first.files.key).unwrap();
    let err = server.tls.reload().unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    let (_, _, seen) = wss_join(&server, &new, None, "carol").await;
    assert_eq!(seen, second.der);
    let _ = server.stop.send(());
}

#[tokio::test]
async fn the_files_are_watched_without_a_signal() {
    let dir = temp_dir("watch");
    let first = make_cert(&dir, "live");
    let server = start(first.files.clone(), &["--no-turn"]).await;
    let watcher = tokio::spawn(server.tls.clone().watch(
        Duration::from_millis(50),
        peerchat_server::tls::NoSignals,
        |_| {},
    ));
    let second = make_cert(&dir, "next");
    std::fs::copy(&second.files.key, &first.files.key).unwrap();
    std::fs::copy(&second.files.cert, &first.files.cert).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let fresh = connector(&[&second.der]);
        if tls_connect(server.addr, &fresh).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    let _ = server.stop.send(());
}

#[tokio::test]
async fn plain_http_is_redirected_to_https_for_allowed_hosts_only() {
    let dir = temp_dir("redirect");
    let cert = make_cert(&dir, "a");
    let state = AppState::new(config(&["--no-turn", "--allowed-host", "chat.example.org"]));
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = plain.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(peerchat_server::redirect_http(
        plain,
        state,
        8443,
        async move {
            let _ = stopped.await;
        },
    ));
    let (status, head, _) = get(addr, None, "chat.example.org:80", "/r/abc?relay=1").await;
    assert_eq!(status, 308);
    assert!(
        head.contains("location: https://chat.example.org:8443/r/abc?relay=1"),
        "{head}"
    );
    let (status, head, _) = get(addr, None, &addr.to_string(), "/").await;
    assert_eq!(status, 308);
    assert!(head.contains("location: https://127.0.0.1:8443/"), "{head}");
    let (status, _, _) = get(addr, None, "evil.example", "/").await;
    assert_eq!(status, 421);
    drop(cert);
}
