//! `peerchat serve`: checks the configuration, opens the listeners (the
//! server's, TLS, the http redirect, the relay) and runs until SIGINT or
//! SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use peerchat_server::tls::{SignalStream, Tls, WATCH_INTERVAL};
use peerchat_server::{AppState, ServeArgs};

/// `peerchat serve --check`: everything `serve` checks before it starts,
/// without starting.
pub(crate) fn check(args: ServeArgs) -> ExitCode {
    match checked(args) {
        Ok(summary) => {
            println!("peerchat: the configuration is valid: {summary}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("peerchat: the configuration is not valid: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn checked(args: ServeArgs) -> anyhow::Result<String> {
    let addr = args.addr;
    let config = args.into_config()?;
    let needed =
        peerchat_server::descriptors_needed(config.max_connections, config.relay_descriptors());
    peerchat_server::raise_fd_limit(config.max_connections, needed)?;
    let scheme = match &config.tls {
        Some(files) => {
            Tls::load(files.clone())?;
            "https"
        }
        None => "http",
    };
    let mut summary = format!("it would listen on {scheme}://{addr}/");
    if config.peerjs.is_some() {
        summary.push_str(", with the PeerJS endpoint at /peerjs");
    }
    // Redis is not asked: a configuration is checked where it is written,
    // which need not reach it (the URL itself is checked, and left out
    // here since it may hold a password).
    if config.cluster.is_some() {
        summary.push_str(", sharing rooms through Redis");
    }
    Ok(summary)
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.clone().into_config()?;
    peerchat_server::cluster::share_turn_secret(&mut config)
        .await
        .context("sharing the TURN secret through Redis (or give --turn-secret)")?;
    let needed =
        peerchat_server::descriptors_needed(config.max_connections, config.relay_descriptors());
    peerchat_server::raise_fd_limit(config.max_connections, needed)?;
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(Tls::load(files.clone())?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let metrics = match config.metrics_addr {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("listening on {at} (--metrics-addr)"))?,
        ),
        None => None,
    };
    let redirect = match config.redirect_http {
        Some(plain) => Some(
            tokio::net::TcpListener::bind(plain)
                .await
                .with_context(|| format!("listening on {plain} (--redirect-http)"))?,
        ),
        None => None,
    };
    let relay = peerchat_server::start_relay_with_tls(&mut config, addr, tls.as_deref())
        .await
        .context("starting the STUN/TURN relay (choose other --turn-port, --turn-tcp-port and --turn-tls-port, or --no-turn)")?;
    if let Some(relay) = &relay {
        tracing::info!(addr = %relay.local_addr(), "STUN/TURN relay listening (UDP)");
        if let Some(tcp) = relay.tcp_addr() {
            tracing::info!(addr = %tcp, "TURN relay listening (TCP)");
        }
        if let Some(tls) = relay.tls_addr() {
            tracing::info!(addr = %tls, "TURN relay listening (TLS)");
        }
    }
    let shutdown = shutdown_signal().context("installing the signal handlers")?;
    let state = AppState::new(config);
    let mut tasks = Vec::new();
    // SIGHUP reloads the certificate; without one it must not stop the
    // server (its default action), since service managers send it to
    // reload.
    let mut reload = reload_signal().context("installing the SIGHUP handler")?;
    tasks.push(match &tls {
        Some(tls) => {
            let counted = state.clone();
            tokio::spawn(tls.clone().watch(WATCH_INTERVAL, reload, move |ok| {
                counted.count_tls_reload(ok);
            }))
        }
        None => tokio::spawn(async move {
            loop {
                reload.next().await;
                tracing::info!("SIGHUP: nothing to reload (no --tls-cert)");
            }
        }),
    });
    if let Some(plain) = redirect {
        tracing::info!(addr = %plain.local_addr()?, "redirecting plain http to https");
        let redirecting = peerchat_server::redirect_http(
            plain,
            state.clone(),
            addr.port(),
            std::future::pending(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(err) = redirecting.await {
                tracing::error!(%err, "the http redirect stopped");
            }
        }));
    }
    if let Some(listener) = metrics {
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
        let serving =
            peerchat_server::serve_metrics(listener, state.clone(), std::future::pending());
        tasks.push(tokio::spawn(async move {
            if let Err(err) = serving.await {
                tracing::error!(%err, "the metrics listener stopped");
            }
        }));
    }
    let shown = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "peerchat is running: open {scheme}://{shown}/ in your browser"
        )?;
        out.flush()?;
    }
    peerchat_server::run_tls(listener, state, tls, shutdown).await?;
    for task in tasks {
        task.abort();
    }
    if let Some(relay) = relay {
        relay.close().await;
    }
    Ok(())
}

/// SIGHUP, which reloads the TLS certificate.
#[cfg(unix)]
fn reload_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

#[cfg(not(unix))]
fn reload_signal() -> std::io::Result<peerchat_server::tls::NoSignals> {
    Ok(peerchat_server::tls::NoSignals)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed at once, not
/// when the future is first polled, so that a signal that comes right after
/// the server says it is running still stops it gracefully.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}
