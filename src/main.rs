//! `peerchat`: the signaling server (`serve`, the default) and the terminal
//! client (`chat`).
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use peerchat_cli::ChatArgs;
use peerchat_server::{AppState, ServeArgs};
use tracing_subscriber::EnvFilter;

/// Peer-to-peer group chat over WebRTC.
///
/// `peerchat` (or `peerchat serve`) runs the signaling server and serves the
/// web client; `peerchat chat ROOM_LINK` chats from the terminal. Chat text
/// goes directly between the people in a room and never through the server.
#[derive(Debug, Parser)]
#[command(name = "peerchat", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the signaling server and serve the web client (the default).
    Serve(Box<ServeArgs>),
    /// Join a room from the terminal and chat peer to peer with everyone in
    /// it, browsers included. A full-screen UI on a terminal; line mode
    /// (stdin to messages, messages to stdout) for scripts and bots.
    Chat(Box<ChatArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("peerchat: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Chat(args)) => {
            // The full-screen UI owns the terminal: log only when asked to.
            let tui = std::io::stdin().is_terminal()
                && std::io::stdout().is_terminal()
                && !args.plain
                && !args.json;
            // webrtc-rs reports expected failures (a relay refusing a
            // candidate pair, say) as errors: show only the client's own.
            if !tui || std::env::var_os("RUST_LOG").is_some() {
                init_logging("off,peerchat_client=warn,peerchat_cli=warn");
            }
            match runtime.block_on(peerchat_cli::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("peerchat: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        command => {
            init_logging("info");
            let args = match command {
                Some(Command::Serve(args)) => *args,
                _ => cli.serve,
            };
            match runtime.block_on(serve(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("peerchat: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.clone().into_config()?;
    peerchat_server::cluster::share_turn_secret(&mut config)
        .await
        .context("sharing the TURN secret through Redis (or give --turn-secret)")?;
    let allocations = match &config.turn {
        Some(peerchat_server::config::Turn {
            server:
                peerchat_server::config::TurnServer::Embedded {
                    max_allocations, ..
                },
            ..
        }) => *max_allocations,
        _ => 0,
    };
    let needed = peerchat_server::descriptors_needed(config.max_connections, allocations);
    peerchat_server::raise_fd_limit(config.max_connections, needed)?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let relay = peerchat_server::start_relay(&mut config, addr)
        .await
        .context("starting the STUN/TURN relay (choose another --turn-port, or --no-turn)")?;
    if let Some(relay) = &relay {
        tracing::info!(addr = %relay.local_addr(), "STUN/TURN relay listening (UDP)");
    }
    let shown = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "peerchat is running: open http://{shown}/ in your browser"
        )?;
        out.flush()?;
    }
    peerchat_server::run(listener, AppState::new(config), shutdown_signal()).await?;
    if let Some(relay) = relay {
        relay.close().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
