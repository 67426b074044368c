//! `--redirect-http ADDR`: plain http on another address, where every
//! request is answered with a permanent redirect to the same path over
//! https. The `Host` allow-list applies (a name this server does not answer
//! to gets 421, not a redirect), and so do the connection caps.

use std::future::Future;
use std::io;

use axum::http::header::{HOST, LOCATION};
use axum::http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::{AppState, admission};

/// Serves redirects on `listener` to https on `https_port` until `shutdown`
/// resolves.
pub async fn redirect_http(
    listener: TcpListener,
    state: AppState,
    https_port: u16,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    tokio::pin!(shutdown);
    let timeout = state.config().handshake_timeout;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(%err, "accept failed (http redirect)");
                    tokio::time::sleep(crate::accept::BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let Ok(pass) = state.gate().admit(peer) else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = redirect(&state, &req, https_port);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(%peer, %err, "http redirect connection ended with an error");
            }
            drop(pass);
        });
    }
}

/// The answer to one plain-http request.
fn redirect<B>(state: &AppState, req: &Request<B>, https_port: u16) -> Response<String> {
    let plain = |status: StatusCode, text: &str| {
        let mut response = Response::new(text.to_owned());
        *response.status_mut() = status;
        response
    };
    if admission::check_host(state.config(), req.headers()).is_err() {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this peerchat server does not answer to that host name\n",
        );
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host_without_port(host);
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{name}{port}{path}");
    let Ok(location) = HeaderValue::from_str(&location) else {
        return plain(StatusCode::BAD_REQUEST, "bad request\n");
    };
    let mut response = plain(StatusCode::PERMANENT_REDIRECT, "this server speaks https\n");
    response.headers_mut().insert(LOCATION, location);
    response
}

/// `name` from `name:port` or `[v6]` from `[v6]:port`.
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::host_without_port;

    #[test]
    fn the_port_is_taken_off_the_host() {
        assert_eq!(host_without_port("a.example:80"), "a.example");
        assert_eq!(host_without_port("a.example"), "a.example");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port("10.0.0.1:8080"), "10.0.0.1");
    }
}
