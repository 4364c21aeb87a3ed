//! Which browser origins may call the API (`corsOrigins`), and the headers that say so.

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// How long a browser may cache a preflight answer, in seconds.
pub(super) const PREFLIGHT_MAX_AGE: &str = "600";

/// Methods the API answers, for preflight requests.
pub(super) const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";

/// Request headers allowed cross-origin when the preflight does not list any.
pub(super) const DEFAULT_ALLOWED_HEADERS: &str = "authorization, content-type";

/// Which browser origins may call the API (`corsOrigins`).
pub(super) struct Cors {
    /// `*` was listed: any origin, without credentials.
    any: bool,
    /// Listed origins: allowed with credentials (cookies).
    origins: Vec<String>,
}

/// What a request's origin is granted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Grant {
    /// `Access-Control-Allow-Origin: *`, no credentials.
    Any,
    /// The origin echoed, with credentials.
    Origin(HeaderValue),
}

impl Cors {
    pub(super) fn new(configured: &[String]) -> Self {
        Self {
            any: configured.iter().any(|o| o == "*"),
            origins: configured.iter().filter(|o| *o != "*").cloned().collect(),
        }
    }

    /// What `origin` is granted, if anything. Scheme and host compare case-insensitively.
    pub(super) fn grant(&self, origin: &HeaderValue) -> Option<Grant> {
        let text = origin.to_str().ok()?;
        if self.origins.iter().any(|o| o.eq_ignore_ascii_case(text)) {
            return Some(Grant::Origin(origin.clone()));
        }
        self.any.then_some(Grant::Any)
    }

    /// Whether answers depend on the request's `Origin` (so caches must keep them apart).
    pub(super) fn varies(&self) -> bool {
        !self.origins.is_empty()
    }

    /// Adds the grant's headers to an answer.
    pub(super) fn apply(&self, grant: Option<&Grant>, headers: &mut HeaderMap) {
        if self.varies() {
            headers.append(VARY, HeaderValue::from_static("origin"));
        }
        match grant {
            None => return,
            Some(Grant::Any) => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
            Some(Grant::Origin(origin)) => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
    }
}

/// The answer to a CORS preflight from an allowed origin.
pub(super) fn preflight(cors: &Cors, grant: &Grant, request: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    cors.apply(Some(grant), headers);
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    let allowed = request
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(DEFAULT_ALLOWED_HEADERS));
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    headers.append(
        VARY,
        HeaderValue::from_static("access-control-request-headers"),
    );
    response
}
