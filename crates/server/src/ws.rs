//! The `/ws` endpoint: a thin adapter between a WebSocket and the hub.
//!
//! Each connection runs one task with two halves: the reader feeds frames to
//! the hub, and the writer drains the connection's bounded queue to the
//! socket and sends keepalive pings. The hub decides everything else.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use peerchat_protocol::ErrorCode;
use peerchat_rooms::{ConnId, Departure};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

use crate::state::Outbound;
use crate::{AppState, ConnectionInfo, origin};

/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Most queued frames written to the socket before one flush.
const WRITE_BATCH: usize = 64;

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    info: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let config = state.config();
    if !origin::allowed(&headers, &config.allowed_origins) {
        tracing::info!(origin = ?headers.get("origin"), "WebSocket refused: origin not allowed");
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not use this peerchat server (see --allowed-origin)\n",
        )
            .into_response();
    }
    ws.read_buffer_size(config.ws_buffer_size)
        .write_buffer_size(config.ws_buffer_size)
        .max_message_size(config.max_message_size)
        .max_frame_size(config.max_message_size)
        .on_upgrade(move |socket| async move {
            // Keep this connection's place under --max-connections.
            let info = info.map(|Extension(info)| info);
            let peer = info.as_ref().map(|i| i.peer);
            tracing::debug!(?peer, "WebSocket open");
            serve(socket, state).await;
            tracing::debug!(?peer, "WebSocket closed");
            drop(info);
        })
}

/// How the reader half ended.
enum ReadEnd {
    /// The client is gone (it left, or the connection was lost): stop at
    /// once.
    Gone(Departure),
    /// The hub is closing the connection: let the writer send what is queued.
    Closing,
}

async fn serve(socket: WebSocket, state: AppState) {
    let (conn, queues) = state.connect();
    let (mut sink, mut stream) = socket.split();
    let reader = read_half(&mut stream, &state, conn);
    let writer = write_half(&mut sink, queues.outbound, state.config().ping_interval);
    let mut kill = queues.kill;
    tokio::pin!(reader, writer);
    let end = tokio::select! {
        end = &mut reader => Some(end),
        // The writer ends when the hub closed the connection (which the hub
        // has then forgotten) or when the socket failed: a loss.
        () = &mut writer => None,
        // The sender is dropped, without firing, when the hub closes the
        // connection in order: only a fired kill ends it at once.
        Ok(()) = &mut kill => None,
    };
    let how = match end {
        Some(ReadEnd::Gone(how)) => how,
        Some(ReadEnd::Closing) => {
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                tokio::select! {
                    () = &mut writer => {},
                    Ok(()) = &mut kill => {},
                }
            })
            .await;
            Departure::Lost
        }
        None => Departure::Lost,
    };
    state.disconnect(conn, how);
}

async fn read_half(stream: &mut SplitStream<WebSocket>, state: &AppState, conn: ConnId) -> ReadEnd {
    let config = state.config();
    let join_deadline = tokio::time::sleep(config.join_timeout);
    tokio::pin!(join_deadline);
    let mut awaiting_join = true;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(config.idle_timeout, stream.next()) => next,
            () = &mut join_deadline, if awaiting_join => {
                awaiting_join = false;
                let mut closing = false;
                state.with_hub(|hub, out| {
                    closing = !hub.is_joined(conn);
                    hub.join_deadline(conn, out);
                });
                if closing {
                    return ReadEnd::Closing;
                }
                continue;
            }
        };
        let message = match next {
            Err(_) => {
                tracing::debug!(conn, "no sign of life within --idle-timeout");
                return ReadEnd::Gone(Departure::Lost);
            }
            Ok(None) => return ReadEnd::Gone(Departure::Lost),
            Ok(Some(Err(err))) => {
                if is_too_large(err) {
                    let limit = config.max_message_size;
                    let now = Instant::now();
                    state.with_hub(|hub, out| {
                        hub.close(
                            conn,
                            ErrorCode::TooLarge,
                            &format!("messages may be at most {limit} bytes"),
                            now,
                            out,
                        );
                    });
                    return ReadEnd::Closing;
                }
                return ReadEnd::Gone(Departure::Lost);
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Text(text) => {
                let now = Instant::now();
                state.with_hub(|hub, out| hub.handle_text(conn, text.as_str(), now, out));
            }
            Message::Binary(_) => state.with_hub(|hub, out| {
                hub.reject(
                    conn,
                    ErrorCode::BinaryFrame,
                    "the peerchat protocol uses text frames only",
                    out,
                );
            }),
            Message::Ping(_) | Message::Pong(_) => {}
            // Only a normal close is a deliberate leave; any other code
            // (1001 when a page is closed or reloaded, say), or none, may
            // be followed by a resume.
            Message::Close(Some(frame)) if frame.code == close_code::NORMAL => {
                return ReadEnd::Gone(Departure::Left);
            }
            Message::Close(_) => return ReadEnd::Gone(Departure::Lost),
        }
    }
}

fn is_too_large(err: axum::Error) -> bool {
    matches!(
        err.into_inner()
            .downcast::<tungstenite::Error>()
            .map(|e| *e),
        Ok(tungstenite::Error::Capacity(_))
    )
}

async fn write_half(
    sink: &mut SplitSink<WebSocket, Message>,
    mut outbound: mpsc::Receiver<Outbound>,
    ping_interval: Duration,
) {
    let start = tokio::time::Instant::now() + ping_interval;
    let mut ping = tokio::time::interval_at(start, ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            biased;
            item = outbound.recv() => item,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        // Write everything already queued, then flush once.
        let mut next = first;
        let mut batch = 0;
        loop {
            match next {
                None => return,
                Some(Outbound::Frame(frame)) => {
                    let Ok(text) = Utf8Bytes::try_from(frame.into_bytes()) else {
                        tracing::error!("the hub produced a frame that is not UTF-8");
                        return;
                    };
                    if sink.feed(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Outbound::Close(reason)) => {
                    let frame = match reason {
                        Some(reason) => CloseFrame {
                            code: close_code_for(reason),
                            reason: Utf8Bytes::from(reason.as_str()),
                        },
                        None => CloseFrame {
                            code: close_code::NORMAL,
                            reason: Utf8Bytes::from_static("left"),
                        },
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            }
            batch += 1;
            if batch >= WRITE_BATCH {
                break;
            }
            match outbound.try_recv() {
                Ok(item) => next = Some(item),
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// The WebSocket close code for each reason the hub closes a connection.
fn close_code_for(reason: ErrorCode) -> u16 {
    match reason {
        ErrorCode::TooLarge => close_code::SIZE,
        ErrorCode::ShuttingDown => close_code::AWAY,
        _ => close_code::POLICY,
    }
}
