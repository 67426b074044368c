//! A real server on 127.0.0.1:0 for the integration tests, and small
//! HTTP and WebSocket client helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use futures_util::SinkExt;
use peerchat_server::{AppState, Config, ServeArgs};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bounds every wait, so a broken server fails the test instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);

pub const ROOM: &str = "itest-room-aaaaaaaaaaaaaaa";
pub const ROOM2: &str = "itest-room-bbbbbbbbbbbbbbb";

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    serve: ServeArgs,
}

pub fn config(flags: &[&str]) -> Config {
    let args = std::iter::once("peerchat").chain(flags.iter().copied());
    Flags::parse_from(args).serve.into_config().unwrap()
}

pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(flags: &[&str]) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(config(flags));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(peerchat_server::run(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn connect(&self) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(self.url()).await.unwrap();
        ws
    }

    /// Connects and joins; returns the socket and the assigned peer id.
    pub async fn join(&self, room: &str, nick: &str) -> (Ws, String) {
        let mut ws = self.connect().await;
        let join = json!({"type":"join","v":2,"room":room,"nick":nick});
        ws.send(Message::text(join.to_string())).await.unwrap();
        let joined = next_json(&mut ws).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        let id = joined["you"]["id"].as_str().unwrap().to_owned();
        (ws, id)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }
}

/// Flags that lift the senders' rate limits, so that only the queue
/// limits act.
pub const NO_RATE_LIMIT: [&str; 8] = [
    "--rate-limit",
    "100000",
    "--rate-burst",
    "100000",
    "--rate-limit-bytes",
    "1000000000",
    "--rate-burst-bytes",
    "1000000000",
];

/// A TCP connection to `addr` with a small receive buffer, so that the
/// kernel holds little of what the server sends before it backs up: for a
/// client that stops reading.
pub async fn slow_reader_stream(addr: SocketAddr) -> MaybeTlsStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    MaybeTlsStream::Plain(stream)
}

/// Sends `msg` as a text frame.
pub async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

/// The next text message as JSON; pings and pongs are skipped.
pub async fn recv(ws: &mut Ws) -> anyhow::Result<Value> {
    use anyhow::{Context, bail};
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .context("timed out waiting for a message")?
            .context("connection ended")??;
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => bail!("expected text, got {other:?}"),
        }
    }
}

/// The next text frame as JSON, on a WebSocket over any stream.
pub async fn next_json<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// A minimal HTTP/1.1 GET, returning the status, the lowercased header
/// block and the body.
pub async fn http_get(url: &str) -> (u16, String, String) {
    get(url, "").await
}

/// A GET with an `Origin` header, as a page of `origin` sends it: the
/// status, the lowercased header block and the body.
pub async fn http_get_from(url: &str, origin: &str) -> (u16, String, String) {
    get(url, &format!("Origin: {origin}\r\n")).await
}

async fn get(url: &str, headers: &str) -> (u16, String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = TcpStream::connect(host).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A minimal HTTP/1.1 POST with a body, returning the status and the body.
pub async fn http_post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    (status, buf[split + 4..].to_vec())
}

/// `/healthz` as JSON.
pub async fn health(addr: SocketAddr) -> Value {
    let (_, _, body) = http_get(&format!("http://{addr}/healthz")).await;
    serde_json::from_str(&body).unwrap()
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body` as they are, and returns the status, the lowercased header block
/// and the body of the answer.
pub async fn http_raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("{head}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before the body is sent.
    let _ = stream.write_all(body).await;
    let mut buf = Vec::new();
    // Until the connection closes, or a `101` (the WebSocket stays open).
    let read = async {
        let mut chunk = [0; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            let upgraded =
                buf.starts_with(b"HTTP/1.1 101") && buf.windows(4).any(|w| w == b"\r\n\r\n");
            if n == 0 || upgraded {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("response in time");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    (status, head, buf[split + 4..].to_vec())
}

/// The headers of a WebSocket upgrade request to `/ws`.
pub const UPGRADE: &str = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";

/// A long-poll client speaking through one request at a time.
pub struct PollClient {
    pub addr: SocketAddr,
    pub token: String,
    pub ack: u64,
}

/// The answer to `method path` with `body`, as (status, JSON or null).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> (u16, Value) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}",
        body.len()
    );
    if !extra.is_empty() {
        head.push_str("\r\n");
        head.push_str(extra);
    }
    let (status, _, body) = http_raw(addr, &head, body.as_bytes()).await;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, json)
}

impl PollClient {
    pub async fn open(addr: SocketAddr) -> PollClient {
        let (status, body) = request(addr, "POST", "/poll", "", "").await;
        assert_eq!(status, 201, "{body}");
        assert!(body["wait_ms"].as_u64().unwrap() > 0);
        PollClient {
            addr,
            token: body["session"].as_str().unwrap().to_owned(),
            ack: 0,
        }
    }

    pub async fn send(&self, messages: &[Value]) -> u16 {
        let body = Value::Array(messages.to_vec()).to_string();
        request(
            self.addr,
            "POST",
            &format!("/poll/{}", self.token),
            "",
            &body,
        )
        .await
        .0
    }

    /// One receive request: the answer, without acknowledging it.
    pub async fn receive_raw(&self, ack: u64) -> (u16, Value) {
        request(
            self.addr,
            "GET",
            &format!("/poll/{}?ack={ack}", self.token),
            "",
            "",
        )
        .await
    }

    /// Receives until a message of `kind` comes; returns it. Earlier
    /// messages are acknowledged and dropped.
    pub async fn until(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "no {kind} came");
            let (status, body) = self.receive_raw(self.ack).await;
            assert_eq!(status, 200, "{body}");
            if let Some(seq) = body["seq"].as_u64() {
                self.ack = seq;
            }
            for message in body["messages"].as_array().unwrap() {
                if message["type"] == kind {
                    return message.clone();
                }
            }
        }
    }
}

/// The samples of one scrape, by name and sorted labels.
pub struct Scrape(pub std::collections::HashMap<String, f64>);

impl Scrape {
    pub async fn take(addr: SocketAddr) -> Scrape {
        let (status, head, body) = http_get(&format!("http://{addr}/metrics")).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format");
        let mut samples = std::collections::HashMap::new();
        for sample in parsed.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            let mut labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
        }
        // Every metric has help and a type.
        for (name, doc) in &parsed.docs {
            assert!(!doc.is_empty(), "{name} has no help");
        }
        Scrape(samples)
    }

    pub fn get(&self, key: &str) -> f64 {
        *self
            .0
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key}; have {:?}", self.0.keys()))
    }
}

/// The metrics the Grafana dashboard in `docs/` graphs, by name.
pub fn dashboard_metrics() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana-dashboard.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut named = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("peerchat_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                named.push(name);
            }
        }
    }
    named
}
