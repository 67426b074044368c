//! The `Host` allow-list, against DNS rebinding: a page on an attacker's
//! name that resolves to this server would otherwise be same-origin with
//! it, pass the `Origin` rule and read its answers.
//!
//! As Vite's `server.allowedHosts` does: IP addresses (they cannot be
//! rebound), `localhost` and names under `.localhost` always pass; any
//! other name must be on `--allowed-host`.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header::HOST;

/// Whether a request with these headers names a host this server answers
/// to. A request without `Host` does not.
pub(crate) fn allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    name_allowed(host_name(host), allowed)
}

/// The name or address in a `Host` value, without its port or brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn name_allowed(name: &str, allowed: &[String]) -> bool {
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return false;
    }
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    allowed.iter().any(|entry| {
        let entry = entry.trim().trim_end_matches('.').to_ascii_lowercase();
        if entry == "*" {
            return true;
        }
        match entry.strip_prefix('.') {
            // `.example.org`: the name and every name under it.
            Some(base) => {
                lower == base
                    || lower
                        .strip_suffix(base)
                        .is_some_and(|sub| sub.ends_with('.'))
            }
            None => lower == entry,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_addresses() {
        let list = vec!["chat.example.org".to_owned(), ".team.example".to_owned()];
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "10.0.0.1",
            "localhost",
            "localhost.:80",
            "x.localhost:1",
            "chat.example.org",
            "CHAT.example.org:443",
            "team.example",
            "a.b.team.example",
        ] {
            assert!(name_allowed(host_name(ok), &list), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "evil.example",
            "chat.example.org.evil.example",
            "xteam.example",
            "localhost.evil.example",
            "[evil]",
        ] {
            assert!(!name_allowed(host_name(bad), &list), "{bad}");
        }
        assert!(name_allowed("anything", &["*".to_owned()]));
    }
}
