//! `peerchat serve` raises its open-file limit to the hard limit, and
//! refuses to start with a `--max-connections` it could not hold.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn serve_with_fd_limit(limit: u32, max_connections: &str) -> std::process::Child {
    let script = format!(
        "ulimit -n {limit} && exec \"$0\" serve --addr 127.0.0.1:0 --no-turn --max-connections {max_connections}"
    );
    Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_peerchat")])
        .env("XDG_DATA_HOME", std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_max_connections_over_the_open_file_limit_is_refused() {
    let out = serve_with_fd_limit(256, "1000").wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-connections 1000 needs about"), "{err}");

    let mut fits = serve_with_fd_limit(256, "100");
    let mut line = String::new();
    BufReader::new(fits.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    fits.kill().unwrap();
    fits.wait().unwrap();
    assert!(line.contains("peerchat is running"), "{line}");
}
