//! The signaling protocol over plain HTTP requests (`/poll`, see
//! `docs/protocol.md`), for networks whose proxies do not pass WebSockets:
//! a session opened with `POST /poll`, messages sent with
//! `POST /poll/TOKEN`, received with `GET /poll/TOKEN?ack=SEQ` (one waits
//! at a time), ended with `DELETE /poll/TOKEN`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Deserialize;
use tokio::net::TcpStream;

/// Why a long-poll session failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The server could not be reached, or the connection broke.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// HTTP failed.
    #[error("{0}")]
    Http(#[from] hyper::Error),
    /// The server answered something else than the protocol says.
    #[error("unexpected answer: HTTP {0}")]
    Status(StatusCode),
    /// An answer that is not the protocol's JSON.
    #[error("bad answer: {0}")]
    Json(#[from] serde_json::Error),
    /// The URL cannot be used.
    #[error("bad server URL: {0}")]
    Url(String),
    /// A request took far longer than the server said it would.
    #[error("the server did not answer in time")]
    Timeout,
}

/// Where the server is, and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// TLS, with whom to trust; `None` for plain http.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The `Host` header.
    authority: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("authority", &self.authority)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Endpoint {
    /// From the `ws://` or `wss://` URL of `/ws`.
    pub fn from_ws_url(ws_url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Self, PollError> {
        let url = url::Url::parse(ws_url).map_err(|e| PollError::Url(e.to_string()))?;
        let secure = match url.scheme() {
            "wss" | "https" => true,
            "ws" | "http" => false,
            other => return Err(PollError::Url(format!("scheme {other}"))),
        };
        let host = url
            .host_str()
            .ok_or_else(|| PollError::Url("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if secure { 443 } else { 80 });
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Self {
            host,
            port,
            tls: secure.then_some(tls),
            authority,
        })
    }

    /// A new HTTP/1.1 connection.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, PollError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => {
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(conn);
                Ok(sender)
            }
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| PollError::Url(e.to_string()))?;
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                Ok(sender)
            }
        }
    }
}

/// One HTTP connection, made again when it breaks.
struct Link {
    endpoint: Endpoint,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Link {
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), PollError> {
        let result = tokio::time::timeout(timeout, self.try_request(method, path, body)).await;
        match result {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => {
                self.sender = None;
                Err(err)
            }
            Err(_) => {
                self.sender = None;
                Err(PollError::Timeout)
            }
        }
    }

    async fn try_request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), PollError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(self.endpoint.connect().await?);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.endpoint.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| PollError::Url(e.to_string()))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

#[derive(Deserialize)]
struct Opened {
    session: String,
    wait_ms: u64,
}

#[derive(Deserialize)]
struct Batch {
    seq: Option<u64>,
    messages: Vec<Box<serde_json::value::RawValue>>,
    closed: Option<String>,
}

/// An open long-poll session.
#[allow(missing_debug_implementations)]
pub struct Session {
    token: String,
    wait: Duration,
    receive: Link,
    send: Link,
    ack: u64,
}

/// What a receive request brought.
#[derive(Debug)]
pub struct Received {
    /// Server messages, as JSON texts.
    pub messages: Vec<String>,
    /// The session is over.
    pub closed: bool,
}

impl Session {
    /// Opens a session.
    pub async fn open(endpoint: Endpoint) -> Result<Session, PollError> {
        let mut send = Link {
            endpoint: endpoint.clone(),
            sender: None,
        };
        let (status, body) = send
            .request(Method::POST, "/poll", Bytes::new(), Duration::from_secs(15))
            .await?;
        if status != StatusCode::CREATED {
            return Err(PollError::Status(status));
        }
        let opened: Opened = serde_json::from_slice(&body)?;
        Ok(Session {
            token: opened.session,
            wait: Duration::from_millis(opened.wait_ms),
            receive: Link {
                endpoint,
                sender: None,
            },
            send,
            ack: 0,
        })
    }

    /// Waits for server messages (the server answers within its wait).
    pub async fn receive(&mut self) -> Result<Received, PollError> {
        let path = format!("/poll/{}?ack={}", self.token, self.ack);
        let timeout = self.wait + Duration::from_secs(15);
        let (status, body) = self
            .receive
            .request(Method::GET, &path, Bytes::new(), timeout)
            .await?;
        if status != StatusCode::OK {
            return Err(PollError::Status(status));
        }
        let batch: Batch = serde_json::from_slice(&body)?;
        if let Some(seq) = batch.seq {
            self.ack = seq;
        }
        Ok(Received {
            messages: batch
                .messages
                .into_iter()
                .map(|m| m.get().to_owned())
                .collect(),
            closed: batch.closed.is_some(),
        })
    }

    /// A sender for client messages, on a connection of its own.
    pub fn sender(&mut self) -> Sender {
        Sender {
            path: format!("/poll/{}", self.token),
            link: Link {
                endpoint: self.send.endpoint.clone(),
                sender: self.send.sender.take(),
            },
        }
    }
}

/// Sends client messages of a session.
#[allow(missing_debug_implementations)]
pub struct Sender {
    path: String,
    link: Link,
}

impl Sender {
    /// Sends `messages` (JSON texts), in order.
    pub async fn send(&mut self, messages: &[String]) -> Result<(), PollError> {
        let body = Bytes::from(format!("[{}]", messages.join(",")));
        let (status, _) = self
            .link
            .request(Method::POST, &self.path, body, Duration::from_secs(15))
            .await?;
        if status != StatusCode::NO_CONTENT {
            return Err(PollError::Status(status));
        }
        Ok(())
    }

    /// Ends the session (as a dropped connection: the member may resume).
    pub async fn close(&mut self) {
        let _ = self
            .link
            .request(
                Method::DELETE,
                &self.path,
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await;
    }
}
