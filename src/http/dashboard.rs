//! The dashboard (SPEC §8): the single-page app in `assets/` (plain HTML, CSS and script
//! modules), embedded in the binary and served at `/` and `/assets/{path}` on the API port.
//!
//! The page is the same for everyone: it holds no data and no secret, so it stays open (the
//! auth guard protects only `/api/*`) and the login screen can load. Every answer carries a
//! strict Content-Security-Policy, so only this server's own scripts and styles run: the
//! assets use no inline `<script>` or `style` attributes and fetch nothing from elsewhere.
//! Assets are revalidated on every use (`no-cache` with an `ETag`), so an upgraded Marina is
//! never shown with last version's scripts, while an unchanged file costs a `304`.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use super::api::ApiError;

/// What the dashboard's pages may load: only this server's scripts, styles and images (plus
/// `data:` images), and no framing by other sites.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The embedded `assets/` directory.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// The dashboard's routes: `GET /` (the page) and `GET /assets/{path}` (its files). Merged
/// into the API router, so they share its port and middleware.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

/// `GET /`: the single page; screens are chosen client-side by the URL's `#` part.
async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /assets/{path}`: one embedded file, or `404`.
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// Answers with the embedded file `path`, or `304` when the client's copy is current.
fn serve(path: &str, request: &HeaderMap) -> Response {
    // Embedded names are plain relative paths; anything else cannot name one of them
    // (and in debug builds, where files are read from disk, must not escape the folder).
    let plain = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path.split('/').all(|part| !part.is_empty() && part != "..");
    let Some(file) = plain.then(|| Assets::get(path)).flatten() else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let etag = etag(&file.metadata.sha256_hash());
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    let fresh = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if let Ok(value) = HeaderValue::from_str(&content_type(file.metadata.mimetype())) {
        headers.insert(CONTENT_TYPE, value);
    }
    (headers, Body::from(file.data.into_owned())).into_response()
}

/// The `Content-Type` for a guessed MIME type; text is UTF-8 (the assets are).
fn content_type(mime: &str) -> String {
    let text = mime.starts_with("text/") || mime == "application/javascript";
    if text && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

/// A strong `ETag` from the file's SHA-256: the first 16 bytes, hex-encoded and quoted.
fn etag(hash: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &hash[..16] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn text(response: Response) -> String {
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn header<'a>(response: &'a Response, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_is_html_under_a_strict_csp() {
        let response = get("/", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            header(&response, "content-security-policy"),
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        let body = text(response).await;
        assert!(body.contains(r#"id="login-password""#), "{body}");
        assert!(body.contains(r#"src="/assets/app.js""#), "{body}");
    }

    #[tokio::test]
    async fn assets_have_their_content_types() {
        for (path, expected) in [
            ("/assets/app.css", "text/css; charset=utf-8"),
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            ("/assets/favicon.svg", "image/svg+xml"),
        ] {
            let response = get(path, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let content_type = header(&response, "content-type");
            // mime_guess has named JavaScript both ways over its versions; browsers take both.
            let javascript = expected.contains("javascript")
                && content_type.contains("javascript")
                && content_type.ends_with("charset=utf-8");
            assert!(
                content_type == expected || javascript,
                "{path}: {content_type}"
            );
            assert!(header(&response, "etag").starts_with('"'));
        }
    }

    #[tokio::test]
    async fn unknown_or_escaping_asset_paths_are_404() {
        for path in [
            "/assets/no-such-file.js",
            "/assets/../Cargo.toml",
            "/assets/%2e%2e/Cargo.toml",
            "/assets/..%2fCargo.toml",
            "/assets//etc/passwd",
            "/assets/",
        ] {
            let response = get(path, &[]).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let body = text(get("/assets/no-such-file.js", &[]).await).await;
        assert_eq!(body, r#"{"error":"no such dashboard file"}"#);
    }

    #[tokio::test]
    async fn an_unchanged_asset_answers_304_to_its_etag() {
        let first = get("/assets/app.css", &[]).await;
        let tag = header(&first, "etag").to_owned();
        let again = get("/assets/app.css", &[("if-none-match", &tag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "etag"), tag);
        assert!(text(again).await.is_empty());
        let other = get("/assets/app.css", &[("if-none-match", r#""0000""#)]).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    /// The CSP would silently block inline code: none may exist, and every script module
    /// the page imports must be embedded.
    #[test]
    fn assets_need_nothing_the_csp_blocks_and_every_import_is_embedded() {
        let names: Vec<String> = Assets::iter().map(std::borrow::Cow::into_owned).collect();
        for name in &names {
            let file = Assets::get(name).unwrap();
            let Ok(text) = std::str::from_utf8(&file.data) else {
                continue;
            };
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains(" style=\""), "{name} has a style attribute");
            assert!(!lower.contains("innerhtml"), "{name} uses innerHTML");
            // The SVG namespace is a name, not a place anything is loaded from.
            let elsewhere = lower.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !elsewhere.contains("http://") && !elsewhere.contains("https://"),
                "{name} refers to another origin"
            );
            let extension = std::path::Path::new(name)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if extension == "html" {
                for script in lower.split("<script").skip(1) {
                    let tag = script.split('>').next().unwrap_or_default();
                    assert!(tag.contains(" src="), "{name} has an inline script");
                }
            }
            if extension == "js" {
                for line in text.lines().filter(|l| l.starts_with("import ")) {
                    let module = line
                        .rsplit("from '")
                        .next()
                        .and_then(|rest| rest.strip_prefix("./"))
                        .and_then(|rest| rest.split('\'').next())
                        .unwrap_or_else(|| panic!("{name}: unexpected import `{line}`"));
                    assert!(
                        names.iter().any(|n| n == module),
                        "{name} imports missing {module}"
                    );
                }
            }
        }
        assert!(names.iter().any(|n| n == "index.html"));
    }
}
