//! The `Origin` check on WebSocket upgrades, against cross-site WebSocket
//! hijacking: a page from another site must not be able to open a
//! signaling connection in its visitor's name.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// Whether a WebSocket upgrade with these headers may proceed.
///
/// Requests without `Origin` come from programs, not browsers, and pass.
/// A browser's request passes when its origin is the server's own (its
/// host and port equal the `Host` header) or is in `allowed` (`*` allows
/// any origin).
pub(crate) fn allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn same_origin_passes_and_others_do_not() {
        let none: &[String] = &[];
        assert!(allowed(&headers(None, "a:1"), none));
        assert!(allowed(&headers(Some("http://a:1"), "a:1"), none));
        assert!(allowed(&headers(Some("https://A:1"), "a:1"), none));
        assert!(!allowed(&headers(Some("http://a:2"), "a:1"), none));
        assert!(!allowed(&headers(Some("http://evil.example"), "a:1"), none));
        assert!(!allowed(&headers(Some("null"), "a:1"), none));
        assert!(!allowed(&headers(Some("ftp://a:1"), "a:1"), none));
    }

    #[test]
    fn allow_list() {
        let list = vec!["https://chat.example.org/".to_owned()];
        assert!(allowed(
            &headers(Some("https://chat.example.org"), "a:1"),
            &list
        ));
        assert!(!allowed(&headers(Some("https://other.org"), "a:1"), &list));
        assert!(allowed(
            &headers(Some("https://other.org"), "a:1"),
            &["*".to_owned()]
        ));
    }
}
