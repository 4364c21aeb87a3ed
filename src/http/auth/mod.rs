//! Authentication and CORS for the HTTP surface (SPEC §6).
//!
//! When `authPassword` (or `authPasswordFile`) is set, every `/api/*` endpoint except
//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/check` and
//! `GET /api/health` needs a session token, presented as the cookie `marina_auth_token` or as
//! `Authorization: Bearer <token>`; `/metrics` needs one too when `metricsAuth: true`.
//! `/healthz`, `/readyz` and the dashboard's assets stay open, so probes and the login screen
//! work. Without a password nothing needs a token.
//!
//! - The password is compared in constant time ([`password_matches`]).
//! - Tokens are 32 random bytes from the operating system, hex-encoded, kept in memory only
//!   with an expiry ([`TOKEN_LIFETIME`]); a restart logs everyone out.
//! - Failed logins are counted per client address ([`MAX_FAILURES`] per [`FAILURE_WINDOW`]);
//!   past that, login answers `429` with `Retry-After` without looking at the password, so it
//!   cannot be guessed quickly. Successful logins are not limited. The address is the TCP
//!   peer: behind a reverse proxy every client shares the proxy's budget (forwarded headers
//!   are not trusted, since any client could set them).
//! - Neither the password nor a token is ever logged or returned, except the token handed to
//!   the client that just logged in.
//!
//! The parts: `sessions` (tokens and where a request presents them), `limiter` (failed
//! logins per client), `cors` (origins and their headers); this file holds the policy, the
//! middleware and the login, logout and check handlers.
//!
//! The settings (`authPassword`, `corsOrigins`, `metricsAuth`) are read once, when Marina
//! starts: a hot reload that changes them takes effect only after a restart.

mod cors;
mod limiter;
mod sessions;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, Request, State};
use axum::http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::{Choice, ConstantTimeEq};
use tracing::{debug, error, info, warn};

use self::cors::{Cors, preflight};
use self::limiter::{Admission, LoginLimiter};
use self::sessions::{Sessions, presented_tokens, random_token};
use super::AppState;
use super::api::ApiError;
use crate::clock::Clock;
use crate::config::ApiConfig;
use crate::model::Secret;

/// The cookie that carries the session token (compatible with Marina 0.9).
pub const COOKIE_NAME: &str = "marina_auth_token";

/// How long a session token stays valid after login.
pub const TOKEN_LIFETIME: Duration = Duration::from_hours(12);

/// Failed logins one client may make within [`FAILURE_WINDOW`] before it must wait.
pub const MAX_FAILURES: usize = 5;

/// The sliding window failed logins are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_mins(1);

/// Sessions, login rate limits and CORS policy of the HTTP surface. Cheap to clone: every
/// clone shares the same sessions.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

/// What [`Auth`] shares between requests.
struct Inner {
    /// The shared password; `None` means nothing needs a token.
    password: Option<Secret>,
    /// Whether `/metrics` needs a token too (only with a password).
    metrics_auth: bool,
    /// Which origins may call the API from a browser.
    cors: Cors,
    /// Issued tokens. A plain mutex: it is held for a map operation, never across `.await`.
    sessions: Mutex<Sessions>,
    /// Failed logins per client.
    limiter: Mutex<LoginLimiter>,
    /// Where "now" comes from (tokio's clock, so tests can pause it).
    clock: Clock,
}

impl Auth {
    /// The policy for `api`, read once at start: a reload that changes `authPassword`,
    /// `corsOrigins` or `metricsAuth` applies only after Marina restarts.
    #[must_use]
    pub fn new(api: &ApiConfig, clock: Clock) -> Self {
        Self(Arc::new(Inner {
            password: api.auth_password.clone(),
            metrics_auth: api.metrics_auth,
            cors: Cors::new(&api.cors_origins),
            sessions: Mutex::new(Sessions::new(TOKEN_LIFETIME)),
            limiter: Mutex::new(LoginLimiter::new(MAX_FAILURES, FAILURE_WINDOW)),
            clock,
        }))
    }

    /// Whether a password is set, so protected endpoints need a token.
    #[must_use]
    pub fn required(&self) -> bool {
        self.0.password.is_some()
    }

    /// Whether `path` needs a token under this policy.
    #[must_use]
    pub fn protects(&self, path: &str) -> bool {
        if !self.required() {
            return false;
        }
        if path == "/metrics" {
            return self.0.metrics_auth;
        }
        let api = path == "/api" || path.starts_with("/api/");
        api && !matches!(
            path,
            "/api/health" | "/api/auth/login" | "/api/auth/logout" | "/api/auth/check"
        )
    }

    /// Whether the request carries a live token (cookie or bearer).
    fn authenticated(&self, headers: &HeaderMap) -> bool {
        let now = self.0.clock.instant();
        let mut sessions = lock(&self.0.sessions);
        presented_tokens(headers).any(|token| sessions.is_valid(token, now))
    }
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Locks `mutex`, carrying on after a panic elsewhere: the maps stay consistent because
/// every update is a single insert or remove.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Compares a presented password with the configured one in time that depends only on the
/// configured password's length, never on where the two first differ.
#[must_use]
pub fn password_matches(given: &[u8], expected: &[u8]) -> bool {
    let mut same: Choice = given.len().ct_eq(&expected.len());
    for (i, byte) in expected.iter().enumerate() {
        // A shorter input is padded; the length check above already makes it unequal.
        let other = given.get(i).copied().unwrap_or(0);
        same &= other.ct_eq(byte);
    }
    same.into()
}

/// Middleware on every route: answers CORS preflights, refuses protected endpoints without a
/// live token (`401 {"error": "authentication required"}`), and adds CORS headers to every
/// answer, refusals included, so a browser can read them.
pub async fn guard(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let cors = &auth.0.cors;
    let grant = request
        .headers()
        .get(ORIGIN)
        .and_then(|origin| cors.grant(origin));
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        && let Some(grant) = &grant
    {
        return preflight(cors, grant, request.headers());
    }
    let mut response =
        if auth.protects(request.uri().path()) && !auth.authenticated(request.headers()) {
            ApiError::new(StatusCode::UNAUTHORIZED, "authentication required").into_response()
        } else {
            next.run(request).await
        };
    cors.apply(grant.as_ref(), response.headers_mut());
    response
}

/// `POST /api/auth/login` body.
#[derive(Deserialize)]
struct LoginRequest {
    /// The shared password (never logged).
    password: String,
}

/// The most bytes a login body may have.
const MAX_LOGIN_BODY: usize = 16 * 1024;

/// `POST /api/auth/login` `{password}` → `{success: true, token}` and the session cookie;
/// `401` for a wrong password, `429` with `Retry-After` after too many failures, `400` for a
/// body that is not `{"password": "..."}`. Without a configured password every login
/// succeeds (nothing is protected), so clients work the same either way.
pub async fn login(State(auth): State<Auth>, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_LOGIN_BODY).await else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )
        .into_response();
    };
    let now = auth.0.clock.instant();
    {
        // One lock for admission, comparison and counting, so parallel guesses cannot slip
        // past the limit between the check and the count.
        let mut limiter = lock(&auth.0.limiter);
        if let Admission::Limited(wait) = limiter.admit(client, now) {
            drop(limiter);
            debug!(client = %client, "A login was refused: too many failed attempts.");
            return too_many(wait);
        }
        let Ok(LoginRequest { password }) = serde_json::from_slice(&body) else {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                r#"expected a JSON body {"password": "..."}"#,
            )
            .into_response();
        };
        if let Some(expected) = &auth.0.password {
            if !password_matches(password.as_bytes(), expected.expose().as_bytes()) {
                limiter.record_failure(client, now);
                drop(limiter);
                warn!(client = %client, "A login failed: wrong password.");
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({ "success": false, "error": "invalid password" })),
                )
                    .into_response();
            }
            limiter.forget(client);
        }
    }
    let token = match random_token() {
        Ok(token) => token,
        Err(e) => {
            error!(error = %e, "Cannot read random bytes for a session token; is /dev/urandom available?");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot create a session token",
            )
            .into_response();
        }
    };
    lock(&auth.0.sessions).insert(token.clone(), now);
    info!(client = %client, "A client logged in.");
    let cookie = format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        TOKEN_LIFETIME.as_secs()
    );
    let mut response = Json(json!({ "success": true, "token": token })).into_response();
    set_cookie(&mut response, &cookie);
    response
}

/// `429` with `Retry-After` (whole seconds, rounded up).
fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins; try again in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Adds `Set-Cookie: cookie` to an answer.
fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// `POST /api/auth/logout`: ends the presented session (cookie or bearer) and clears the
/// cookie → `{success: true}`.
pub async fn logout(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    let mut ended = false;
    {
        let mut sessions = lock(&auth.0.sessions);
        // Every presented token ends, not just the first.
        for token in presented_tokens(&headers) {
            ended |= sessions.remove(token);
        }
    }
    if ended {
        debug!("A client logged out.");
    }
    let mut response = Json(json!({ "success": true })).into_response();
    set_cookie(
        &mut response,
        &format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

/// `GET /api/auth/check` → `{authRequired, authenticated}`. Without a password every caller
/// counts as authenticated, since nothing is closed to it.
pub async fn check(State(auth): State<Auth>, headers: HeaderMap) -> Json<serde_json::Value> {
    let required = auth.required();
    let authenticated = !required || auth.authenticated(&headers);
    Json(json!({ "authRequired": required, "authenticated": authenticated }))
}

#[cfg(test)]
mod tests;
