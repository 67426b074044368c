//! The web client, embedded in the binary.
//!
//! In debug builds the files are read from `web/` at run time, so edits show
//! on reload; release builds carry them inside the executable.
//!
//! `/shell.js` is made here: the list of the client's files and a version
//! made from their contents, for the service worker (`web/sw.js`) to keep
//! them for offline use and to see when a new version is out.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;
use sha2::{Digest, Sha256};

#[derive(Embed)]
#[folder = "../../web/"]
struct Web;

/// The Content-Security-Policy of every page: scripts, styles, workers and
/// connections only from this server, no inline code, no framing. Images
/// may also be `blob:` URLs: the previews of received images, made by the
/// page from bytes it checked (never SVG, see `web/js/transfer.js`).
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of the worker that writes received files
/// (`web/opfs-worker.js`): the page's, and `'wasm-unsafe-eval'` so that it
/// may compile WebAssembly (its incremental SHA-256, `hash-wasm`; WebCrypto
/// has none, and the pure-JS one bounded a transfer's speed). A dedicated
/// worker is ruled by the policy of its own script's response, so the pages
/// keep theirs, which refuses WebAssembly. Nothing else is loosened: the
/// worker still runs only this server's scripts, and `eval` stays refused.
pub(crate) const WORKER_CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'";

/// The worker script whose response carries [`WORKER_CSP`].
const WASM_WORKER: &str = "opfs-worker.js";

/// The generated script that lists the app shell for the service worker.
const SHELL: &str = "shell.js";

/// `/` and `/r/{room}`: the single-page client.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `/manual`: connecting two people without a server.
pub(crate) async fn manual(headers: HeaderMap) -> Response {
    serve("manual.html", &headers)
}

/// Any other path: a file of the client, or 404.
pub(crate) async fn file(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.is_empty() || path.starts_with('.') || path.contains("/.") {
        return not_found();
    }
    if path == SHELL {
        return shell(&headers);
    }
    serve(path, &headers)
}

/// Whether a file of `web/` belongs in the app shell the service worker
/// keeps (not the worker itself, nor the vendored libraries' notes).
fn in_shell(path: &str) -> bool {
    path != "sw.js" && !path.ends_with(".md") && !path.ends_with("LICENSE")
}

/// `self.SHELL = {"version": …, "files": [...]}`: the shell's files, by
/// path, and a version that changes whenever any of them does.
fn shell_script() -> String {
    let mut files: Vec<String> = Web::iter()
        .map(|p| p.into_owned())
        .filter(|p| in_shell(p))
        .collect();
    files.sort();
    let mut version = Sha256::new();
    for path in &files {
        if let Some(file) = Web::get(path) {
            version.update(path.as_bytes());
            version.update(file.metadata.sha256_hash());
        }
    }
    let shell = serde_json::json!({
        "version": hex(&version.finalize()[..8]),
        "files": files.iter().map(|p| format!("/{p}")).collect::<Vec<_>>(),
    });
    format!("// The app shell, for the service worker (web/sw.js).\nself.SHELL = {shell};\n")
}

fn shell(request: &HeaderMap) -> Response {
    let body = shell_script();
    let hash = Sha256::digest(body.as_bytes());
    respond(request, &hash, "text/javascript; charset=utf-8", body, CSP)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Web::get(path) else {
        return not_found();
    };
    let mime = file.metadata.mimetype();
    let mime = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    let csp = if path == WASM_WORKER { WORKER_CSP } else { CSP };
    respond(request, &file.metadata.sha256_hash(), &mime, file.data, csp)
}

/// A file's answer: `304 Not Modified` when the request names its ETag
/// (made from `hash`), the file otherwise; always revalidated; under the
/// Content-Security-Policy `csp`.
fn respond(
    request: &HeaderMap,
    hash: &[u8],
    mime: &str,
    body: impl Into<axum::body::Body>,
    csp: &'static str,
) -> Response {
    let etag = format!("\"{}\"", hex(&hash[..16]));
    let mut headers = security_headers();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(CONTENT_TYPE, value);
    }
    (headers, body.into()).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, security_headers(), "not found\n").into_response()
}

fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Room links are secrets: never leak them in a Referer header.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_lists_the_client_and_versions_it_by_content() {
        let script = shell_script();
        let json = script
            .split_once("self.SHELL = ")
            .and_then(|(_, rest)| rest.trim_end().strip_suffix(';'))
            .expect("an assignment");
        let shell: serde_json::Value = serde_json::from_str(json).unwrap();
        let files: Vec<&str> = shell["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for wanted in [
            "/index.html",
            "/manual.html",
            "/style.css",
            "/js/app.js",
            "/manifest.webmanifest",
            "/vendor/uqr/index.mjs",
        ] {
            assert!(files.contains(&wanted), "{wanted} in {files:?}");
        }
        assert!(!files.contains(&"/sw.js"), "not the worker itself");
        assert!(files.iter().all(|f| !f.ends_with(".md")), "{files:?}");
        let version = shell["version"].as_str().unwrap();
        assert_eq!(version.len(), 16);
        // Made again, the same: the version changes only with the files.
        assert_eq!(shell_script(), script);
    }

    #[test]
    fn the_policy_allows_the_worker_and_the_manifest_from_here_only() {
        assert!(CSP.contains("worker-src 'self'"));
        assert!(CSP.contains("manifest-src 'self'"));
        assert!(!CSP.contains("unsafe"));
    }

    #[test]
    fn only_the_file_worker_may_compile_webassembly() {
        let csp_of = |path: &str| {
            serve(path, &HeaderMap::new())
                .headers()
                .get(CONTENT_SECURITY_POLICY)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let worker = csp_of("opfs-worker.js").expect("a policy");
        assert_eq!(worker, WORKER_CSP);
        assert!(worker.contains("script-src 'self' 'wasm-unsafe-eval'"));
        assert!(worker.starts_with("default-src 'none'"));
        // `wasm-unsafe-eval` and nothing looser.
        assert_eq!(worker.matches("unsafe").count(), 1, "{worker}");
        for path in [
            "index.html",
            "js/app.js",
            "js/files.js",
            "sw.js",
            "vendor/hash-wasm/sha256.umd.min.js",
        ] {
            assert_eq!(csp_of(path).as_deref(), Some(CSP), "{path}");
        }
    }
}
