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
//! The settings (`authPassword`, `corsOrigins`, `metricsAuth`) are read once, when Marina
//! starts: a hot reload that changes them takes effect only after a restart.

use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, COOKIE, ORIGIN,
    RETRY_AFTER, SET_COOKIE, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::{Choice, ConstantTimeEq};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

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

/// Random bytes in a token (64 hex characters).
const TOKEN_BYTES: usize = 32;

/// Live sessions kept at most; past that the one closest to expiry is dropped, so memory
/// stays bounded even if a client logs in in a loop.
const MAX_SESSIONS: usize = 10_000;

/// Clients whose failures are remembered at most, for the same reason.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Presented tokens longer than this are not looked up (ours are 64 characters).
const MAX_TOKEN_LEN: usize = 128;

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Methods the API answers, for preflight requests.
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";

/// Request headers allowed cross-origin when the preflight does not list any.
const DEFAULT_ALLOWED_HEADERS: &str = "authorization, content-type";

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

/// A fresh session token: 32 bytes from the operating system's random source, hex-encoded.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The tokens a request presents: every `marina_auth_token` cookie, then the bearer token.
fn presented_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name.trim() == COOKIE_NAME).then(|| value.trim())
        });
    let bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    cookies
        .chain(bearer)
        .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN_LEN)
}

/// Issued session tokens with their expiry.
struct Sessions {
    /// Token → when it stops being valid.
    tokens: HashMap<String, Instant>,
    /// How long a new token lives.
    lifetime: Duration,
}

impl Sessions {
    fn new(lifetime: Duration) -> Self {
        Self {
            tokens: HashMap::new(),
            lifetime,
        }
    }

    /// Records `token` as valid from `now` for the lifetime; drops expired tokens first and,
    /// at the cap, the one closest to expiry.
    fn insert(&mut self, token: String, now: Instant) {
        self.tokens.retain(|_, expiry| *expiry > now);
        if self.tokens.len() >= MAX_SESSIONS
            && let Some(soonest) = self
                .tokens
                .iter()
                .min_by_key(|(_, expiry)| **expiry)
                .map(|(token, _)| token.clone())
        {
            self.tokens.remove(&soonest);
        }
        self.tokens.insert(token, now + self.lifetime);
    }

    /// Whether `token` is live at `now`; an expired token is forgotten.
    fn is_valid(&mut self, token: &str, now: Instant) -> bool {
        match self.tokens.get(token) {
            Some(expiry) if *expiry > now => true,
            Some(_) => {
                self.tokens.remove(token);
                false
            }
            None => false,
        }
    }

    /// Ends the session of `token`; `true` if there was one.
    fn remove(&mut self, token: &str) -> bool {
        self.tokens.remove(token).is_some()
    }
}

/// Whether a client may try a password now.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// It may.
    Allowed,
    /// It failed too often; it may try again after this long.
    Limited(Duration),
}

/// Failed logins per client within a sliding window.
struct LoginLimiter {
    /// Client key → times of its recent failures, oldest first.
    failures: HashMap<IpAddr, VecDeque<Instant>>,
    /// Failures allowed within `window`.
    max: usize,
    /// How long a failure counts.
    window: Duration,
}

impl LoginLimiter {
    fn new(max: usize, window: Duration) -> Self {
        Self {
            failures: HashMap::new(),
            max,
            window,
        }
    }

    /// Whether `client` may try a password at `now`.
    fn admit(&mut self, client: IpAddr, now: Instant) -> Admission {
        let key = client_key(client);
        let window = self.window;
        let Some(times) = self.failures.get_mut(&key) else {
            return Admission::Allowed;
        };
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(&key);
            return Admission::Allowed;
        }
        if times.len() < self.max {
            return Admission::Allowed;
        }
        // The oldest failure that still counts must leave the window.
        let index = times.len() - self.max;
        let free_at = times[index] + window;
        Admission::Limited(free_at.saturating_duration_since(now))
    }

    /// Counts a failed login of `client` at `now`.
    fn record_failure(&mut self, client: IpAddr, now: Instant) {
        let key = client_key(client);
        if !self.failures.contains_key(&key) && self.failures.len() >= MAX_TRACKED_CLIENTS {
            let window = self.window;
            self.failures
                .retain(|_, times| times.back().is_some_and(|t| *t + window > now));
            if self.failures.len() >= MAX_TRACKED_CLIENTS
                && let Some(stalest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(key, _)| *key)
            {
                self.failures.remove(&stalest);
            }
        }
        let times = self.failures.entry(key).or_default();
        times.push_back(now);
        // Only the newest `max` failures decide anything.
        while times.len() > self.max {
            times.pop_front();
        }
    }

    /// Forgets the failures of `client` (it has just logged in).
    fn forget(&mut self, client: IpAddr) {
        self.failures.remove(&client_key(client));
    }
}

/// The key a client's failures are counted under: its `IPv4` address, or the /64 network
/// of its `IPv6` address (one host usually owns a whole /64, so counting single addresses would
/// give it billions of budgets).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4)
            } else {
                let network = v6.to_bits() & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from_bits(network))
            }
        }
    }
}

/// Which browser origins may call the API (`corsOrigins`).
struct Cors {
    /// `*` was listed: any origin, without credentials.
    any: bool,
    /// Listed origins: allowed with credentials (cookies).
    origins: Vec<String>,
}

/// What a request's origin is granted.
#[derive(Debug, PartialEq, Eq)]
enum Grant {
    /// `Access-Control-Allow-Origin: *`, no credentials.
    Any,
    /// The origin echoed, with credentials.
    Origin(HeaderValue),
}

impl Cors {
    fn new(configured: &[String]) -> Self {
        Self {
            any: configured.iter().any(|o| o == "*"),
            origins: configured.iter().filter(|o| *o != "*").cloned().collect(),
        }
    }

    /// What `origin` is granted, if anything. Scheme and host compare case-insensitively.
    fn grant(&self, origin: &HeaderValue) -> Option<Grant> {
        let text = origin.to_str().ok()?;
        if self.origins.iter().any(|o| o.eq_ignore_ascii_case(text)) {
            return Some(Grant::Origin(origin.clone()));
        }
        self.any.then_some(Grant::Any)
    }

    /// Whether answers depend on the request's `Origin` (so caches must keep them apart).
    fn varies(&self) -> bool {
        !self.origins.is_empty()
    }

    /// Adds the grant's headers to an answer.
    fn apply(&self, grant: Option<&Grant>, headers: &mut HeaderMap) {
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
fn preflight(cors: &Cors, grant: &Grant, request: &HeaderMap) -> Response {
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
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn api(password: Option<&str>, cors: &[&str], metrics_auth: bool) -> ApiConfig {
        ApiConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            cors_origins: cors.iter().map(|&o| o.to_owned()).collect(),
            auth_password: password.map(|p| Secret::new(p.to_owned())),
            metrics_auth,
        }
    }

    #[test]
    fn passwords_match_only_when_equal() {
        assert!(password_matches(b"hunter2", b"hunter2"));
        assert!(!password_matches(b"hunter3", b"hunter2"));
        assert!(!password_matches(b"hunter", b"hunter2"));
        assert!(!password_matches(b"hunter22", b"hunter2"));
        assert!(!password_matches(b"", b"hunter2"));
        assert!(!password_matches(b"hunter2\0", b"hunter2"));
        assert!(!password_matches(b"hunte", b"hunte\0"));
        assert!(password_matches(b"", b""));
    }

    #[test]
    fn tokens_are_64_hex_characters_and_differ() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_lives_for_its_lifetime_and_dies_at_logout() {
        let clock = Clock::System;
        let mut sessions = Sessions::new(Duration::from_mins(1));
        let start = clock.instant();
        sessions.insert("t1".into(), start);
        sessions.insert("t2".into(), start);
        assert!(sessions.is_valid("t1", start));
        assert!(!sessions.is_valid("nope", start));

        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(sessions.is_valid("t1", clock.instant()));
        assert!(sessions.remove("t2"));
        assert!(!sessions.is_valid("t2", clock.instant()));
        assert!(!sessions.remove("t2"));

        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!sessions.is_valid("t1", clock.instant()));
        assert!(sessions.tokens.is_empty(), "an expired token is forgotten");
    }

    #[test]
    fn expired_sessions_are_dropped_and_the_count_is_bounded() {
        let start = Clock::System.instant();
        let mut sessions = Sessions::new(Duration::from_secs(10));
        sessions.insert("old".into(), start);
        sessions.insert("new".into(), start + Duration::from_secs(11));
        assert_eq!(sessions.tokens.len(), 1);
        for n in 0..MAX_SESSIONS + 5 {
            sessions.insert(format!("t{n}"), start + Duration::from_secs(11));
        }
        assert_eq!(sessions.tokens.len(), MAX_SESSIONS);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_blocks_after_five_failures_per_minute() {
        let clock = Clock::System;
        let mut limiter = LoginLimiter::new(5, Duration::from_mins(1));
        let client = IpAddr::from([192, 0, 2, 1]);
        let other = IpAddr::from([192, 0, 2, 2]);
        for _ in 0..5 {
            assert_eq!(limiter.admit(client, clock.instant()), Admission::Allowed);
            limiter.record_failure(client, clock.instant());
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // Failures at 0..=4 s; now 5 s: the first one leaves the window at 60 s.
        assert_eq!(
            limiter.admit(client, clock.instant()),
            Admission::Limited(Duration::from_secs(55))
        );
        assert_eq!(limiter.admit(other, clock.instant()), Admission::Allowed);

        tokio::time::advance(Duration::from_secs(55)).await;
        assert_eq!(limiter.admit(client, clock.instant()), Admission::Allowed);
        limiter.record_failure(client, clock.instant());
        assert!(matches!(
            limiter.admit(client, clock.instant()),
            Admission::Limited(_)
        ));

        limiter.forget(client);
        assert_eq!(limiter.admit(client, clock.instant()), Admission::Allowed);

        tokio::time::advance(Duration::from_mins(10)).await;
        assert_eq!(limiter.admit(other, clock.instant()), Admission::Allowed);
        assert!(limiter.failures.is_empty());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_network() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn the_limiter_remembers_a_bounded_number_of_clients() {
        let now = Clock::System.instant();
        let mut limiter = LoginLimiter::new(5, Duration::from_mins(1));
        for n in 0..u32::try_from(MAX_TRACKED_CLIENTS).unwrap() + 3 {
            limiter.record_failure(IpAddr::from(n.to_be_bytes()), now);
        }
        assert_eq!(limiter.failures.len(), MAX_TRACKED_CLIENTS);
    }

    #[test]
    fn tokens_come_from_the_cookie_or_the_bearer_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("theme=dark; marina_auth_token=abc ; other=1"),
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer def"));
        assert_eq!(
            presented_tokens(&headers).collect::<Vec<_>>(),
            ["abc", "def"]
        );

        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        headers.insert(COOKIE, HeaderValue::from_static("marina_auth_token="));
        assert_eq!(presented_tokens(&headers).count(), 0);
    }

    #[test]
    fn protected_paths_follow_the_spec() {
        let auth = Auth::new(&api(Some("pw"), &[], false), Clock::System);
        for open in [
            "/api/health",
            "/api/auth/login",
            "/api/auth/logout",
            "/api/auth/check",
            "/healthz",
            "/readyz",
            "/",
            "/index.html",
            "/metrics",
            "/apis",
        ] {
            assert!(!auth.protects(open), "{open} should be open");
        }
        for closed in [
            "/api",
            "/api/",
            "/api/info",
            "/api/instances/x/backup",
            "/api/logs/job",
            "/api/auth/other",
            "/api/health/x",
        ] {
            assert!(auth.protects(closed), "{closed} should need a token");
        }
        let metrics = Auth::new(&api(Some("pw"), &[], true), Clock::System);
        assert!(metrics.protects("/metrics"));
        let open = Auth::new(&api(None, &[], true), Clock::System);
        assert!(!open.required());
        assert!(!open.protects("/api/info"));
        assert!(!open.protects("/metrics"));
    }

    #[tokio::test]
    async fn a_session_authenticates_until_logout() {
        let auth = Auth::new(&api(Some("pw"), &[], false), Clock::System);
        let now = auth.0.clock.instant();
        lock(&auth.0.sessions).insert("feed".into(), now);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer feed"));
        assert!(auth.authenticated(&headers));
        let answer = logout(State(auth.clone()), headers.clone()).await;
        let cookie = answer.headers()[SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("marina_auth_token=;") && cookie.contains("Max-Age=0"));
        assert!(!auth.authenticated(&headers));
    }

    #[test]
    fn cors_grants_listed_origins_with_credentials_and_star_without() {
        let origin = HeaderValue::from_static("https://ui.example.com");
        let other = HeaderValue::from_static("https://evil.example.com");

        let listed = Cors::new(&["https://UI.example.com".to_owned()]);
        assert_eq!(listed.grant(&origin), Some(Grant::Origin(origin.clone())));
        assert_eq!(listed.grant(&other), None);
        let mut headers = HeaderMap::new();
        listed.apply(listed.grant(&origin).as_ref(), &mut headers);
        assert_eq!(
            headers[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://ui.example.com"
        );
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(headers[VARY], "origin");

        let star = Cors::new(&["*".to_owned()]);
        let mut headers = HeaderMap::new();
        star.apply(star.grant(&other).as_ref(), &mut headers);
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));

        let none = Cors::new(&[]);
        let mut headers = HeaderMap::new();
        none.apply(none.grant(&origin).as_ref(), &mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let answer = too_many(Duration::from_millis(54_200));
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()[RETRY_AFTER], "55");
        assert_eq!(too_many(Duration::ZERO).headers()[RETRY_AFTER], "1");
    }
}
