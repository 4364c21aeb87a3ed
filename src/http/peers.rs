//! Peer federation (SPEC §6): `/api/schedules`, `/api/status/{id}` and `/api/logs/system`
//! merge the answers of the Marinas listed in `peers`, so one dashboard shows every node.
//!
//! - Peers are asked concurrently, each bounded by `peerTimeout`, with `X-Marina-Mesh: true`:
//!   a peer answers such a request from its own node only, so answers never fan out in loops.
//! - When `authPassword` is set, the cluster shares it: Marina logs in to each peer with it,
//!   keeps the peer's session token and logs in again when the peer answers 401.
//! - A peer that fails is reported, never hidden: merged answers carry the header
//!   `X-Marina-Unreachable-Peers` (their URLs), and `GET /api/peers` says what went wrong.
//! - Each peer has a circuit breaker: after [`FAILURES_TO_OPEN`] failures in a row it is not
//!   asked for [`OPEN_FOR`] (answers report it at once instead of waiting for a timeout), then
//!   one request tries it again.
//! - Only configured peers are ever contacted: the job-log proxy refuses any other URL.
//!
//! The peer list and timeout are read from the current config on every request, so a hot
//! reload that adds or removes a peer applies at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::model::Secret;
use crate::reconcile::Snapshot;

/// The header that marks a request from another Marina: answer from this node only.
pub const MESH_HEADER: &str = "x-marina-mesh";

/// The header of a merged answer that lists the peers whose part is missing.
pub const UNREACHABLE_HEADER: &str = "x-marina-unreachable-peers";

/// Failures in a row after which a peer is no longer asked for a while.
pub const FAILURES_TO_OPEN: u32 = 3;

/// How long an open circuit skips its peer before one request tries it again.
pub const OPEN_FOR: Duration = Duration::from_secs(30);

/// Why a peer's part of an answer is missing.
#[derive(Debug, Clone)]
pub enum PeerError {
    /// The circuit is open after repeated failures; the peer was not asked.
    CircuitOpen {
        /// When the next request may try it.
        retry_in: Duration,
        /// The failure that opened it.
        last_error: String,
    },
    /// No answer within `peerTimeout`.
    Timeout(Duration),
    /// The connection failed.
    Unreachable(String),
    /// The peer refused our password.
    LoginRefused(StatusCode),
    /// The peer answered with an error status.
    Refused(StatusCode),
    /// The answer was not the JSON expected.
    BadAnswer(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CircuitOpen {
                retry_in,
                last_error,
            } => write!(
                f,
                "not asked after {FAILURES_TO_OPEN} failures in a row (last: {last_error}); \
                 retrying in {}s",
                retry_in.as_secs().max(1)
            ),
            Self::Timeout(after) => write!(
                f,
                "no answer within {} (peerTimeout)",
                humantime::format_duration(*after)
            ),
            Self::Unreachable(reason) => write!(f, "cannot be reached: {reason}"),
            Self::LoginRefused(status) => write!(
                f,
                "refused our login ({status}); every peer must share the same authPassword"
            ),
            Self::Refused(status) => write!(f, "answered {status}"),
            Self::BadAnswer(reason) => write!(f, "sent an answer Marina cannot read: {reason}"),
        }
    }
}

impl PeerError {
    /// Whether this counts against the peer's circuit: the peer is down or misbehaving, as
    /// opposed to answering a question with a legitimate "no" (e.g. 404 for a job).
    fn is_failure(&self) -> bool {
        match self {
            Self::Refused(status) => status.is_server_error(),
            Self::CircuitOpen { .. } => false,
            _ => true,
        }
    }
}

/// One peer's part of a merged answer.
pub struct PeerAnswer<T> {
    /// The peer's base URL.
    pub url: String,
    /// Its answer, or why it is missing.
    pub result: Result<T, PeerError>,
}

/// A raw answer passed through to the client (the job-log proxy).
pub struct RawAnswer {
    /// The peer's status code.
    pub status: StatusCode,
    /// The peer's body.
    pub body: axum::body::Bytes,
}

/// `GET /api/peers`: what this node knows of each configured peer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// The configured base URL.
    pub url: String,
    /// The peer's node name, once it has answered.
    pub node_name: Option<String>,
    /// `ok`, `unreachable` or `circuit-open`.
    pub state: &'static str,
    /// What went wrong, if the last request failed.
    pub error: Option<String>,
    /// When the peer last answered.
    pub last_contact_at: Option<DateTime<Utc>>,
}

/// The peers' circuits, sessions and the HTTP client that asks them. Cheap to clone.
#[derive(Clone)]
pub struct Federation(Arc<Inner>);

struct Inner {
    /// One client for every peer: it keeps connections alive between requests.
    client: reqwest::Client,
    /// The shared cluster password, to log in to peers.
    password: Option<Secret>,
    /// Per-peer state by base URL. A plain mutex, never held across `.await`.
    peers: Mutex<HashMap<String, PeerState>>,
    /// Where "now" comes from.
    clock: Clock,
}

#[derive(Default)]
struct PeerState {
    /// Failures in a row; 0 after any good answer.
    failures: u32,
    /// While set and in the future, the peer is not asked.
    open_until: Option<Instant>,
    /// The session token the peer gave us.
    token: Option<String>,
    /// The peer's node name, from `/api/info`.
    node_name: Option<String>,
    /// The latest failure, for `/api/peers` and for an open circuit's report.
    last_error: Option<String>,
    /// When the peer last answered.
    last_contact: Option<DateTime<Utc>>,
}

/// What a login answers.
#[derive(serde::Deserialize)]
struct LoginAnswer {
    token: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `headers` mark a request from another Marina.
#[must_use]
pub fn is_mesh_request(headers: &HeaderMap) -> bool {
    headers
        .get(MESH_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `url` as configured (without a trailing slash), if it is one of `peers`.
#[must_use]
pub fn configured<'a>(peers: &'a [String], url: &str) -> Option<&'a String> {
    let url = url.trim().trim_end_matches('/');
    peers.iter().find(|peer| peer.as_str() == url)
}

/// The header that reports the peers missing from a merged answer, if any.
#[must_use]
pub fn unreachable_header<T>(answers: &[PeerAnswer<T>]) -> HeaderMap {
    let missing: Vec<&str> = answers
        .iter()
        .filter(|a| a.result.is_err())
        .map(|a| a.url.as_str())
        .collect();
    let mut headers = HeaderMap::new();
    if !missing.is_empty()
        && let Ok(value) = HeaderValue::from_str(&missing.join(", "))
    {
        headers.insert(UNREACHABLE_HEADER, value);
    }
    headers
}

impl Federation {
    /// A federation that logs in to peers with `password` (the cluster's shared one).
    #[must_use]
    pub fn new(password: Option<Secret>, clock: Clock) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("marina/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self(Arc::new(Inner {
            client,
            password,
            peers: Mutex::new(HashMap::new()),
            clock,
        }))
    }

    /// `local` followed by the items of each peer's answer to `path` (peers in config order),
    /// and the header naming the peers whose part is missing. A request from a peer (the mesh
    /// header) is answered with `local` alone.
    pub async fn merge<T: Serialize>(
        &self,
        snapshot: &Snapshot,
        request: &HeaderMap,
        local: Vec<T>,
        path: &str,
    ) -> (HeaderMap, Vec<serde_json::Value>) {
        let mut items: Vec<serde_json::Value> = local
            .into_iter()
            .filter_map(|item| serde_json::to_value(item).ok())
            .collect();
        if is_mesh_request(request) || snapshot.peers.is_empty() {
            return (HeaderMap::new(), items);
        }
        let answers = self
            .gather::<Vec<serde_json::Value>>(&snapshot.peers, snapshot.peer_timeout, path)
            .await;
        let headers = unreachable_header(&answers);
        for answer in answers {
            items.extend(answer.result.into_iter().flatten());
        }
        (headers, items)
    }

    /// Asks every peer for `path` at once and decodes each answer; each peer is bounded by
    /// `timeout`, so the whole takes at most about `timeout`.
    pub async fn gather<T: DeserializeOwned>(
        &self,
        peers: &[String],
        timeout: Duration,
        path: &str,
    ) -> Vec<PeerAnswer<T>> {
        let asks = peers.iter().map(|url| async move {
            let result = match self.get(url, timeout, path).await {
                Ok(raw) if raw.status.is_success() => serde_json::from_slice(&raw.body)
                    .map_err(|e| self.failed(url, PeerError::BadAnswer(e.to_string()))),
                Ok(raw) => Err(self.failed(url, PeerError::Refused(raw.status))),
                Err(e) => Err(e),
            };
            PeerAnswer {
                url: url.clone(),
                result,
            }
        });
        futures::future::join_all(asks).await
    }

    /// Asks one peer for `path`, through its circuit, and returns its answer as it is.
    pub async fn get(
        &self,
        url: &str,
        timeout: Duration,
        path: &str,
    ) -> Result<RawAnswer, PeerError> {
        self.admit(url)?;
        let outcome = tokio::time::timeout(timeout, self.ask(url, path))
            .await
            .unwrap_or(Err(PeerError::Timeout(timeout)));
        match outcome {
            Ok(raw) if raw.status.is_server_error() => {
                Err(self.failed(url, PeerError::Refused(raw.status)))
            }
            Ok(raw) => {
                self.succeeded(url);
                Ok(raw)
            }
            Err(e) => Err(self.failed(url, e)),
        }
    }

    /// The state of each configured peer, after asking each for `/api/info`.
    pub async fn probe(&self, peers: &[String], timeout: Duration) -> Vec<PeerStatus> {
        let answers = self
            .gather::<serde_json::Value>(peers, timeout, "/api/info")
            .await;
        let mut states = lock(&self.0.peers);
        answers
            .into_iter()
            .map(|answer| {
                let state = states.entry(answer.url.clone()).or_default();
                let (label, error) = match &answer.result {
                    Ok(info) => {
                        if let Some(name) = info["nodeName"].as_str() {
                            state.node_name = Some(name.to_owned());
                        }
                        ("ok", None)
                    }
                    Err(e @ PeerError::CircuitOpen { .. }) => ("circuit-open", Some(e.to_string())),
                    Err(e) => ("unreachable", Some(e.to_string())),
                };
                PeerStatus {
                    url: answer.url,
                    node_name: state.node_name.clone(),
                    state: label,
                    error,
                    last_contact_at: state.last_contact,
                }
            })
            .collect()
    }

    /// Lets a request to `url` through, unless its circuit is open. An open circuit whose
    /// time is up lets exactly one request through (the others still skip) to try again.
    fn admit(&self, url: &str) -> Result<(), PeerError> {
        let now = self.0.clock.instant();
        let mut peers = lock(&self.0.peers);
        let state = peers.entry(url.to_owned()).or_default();
        match state.open_until {
            Some(until) if until > now => Err(PeerError::CircuitOpen {
                retry_in: until - now,
                last_error: state.last_error.clone().unwrap_or_default(),
            }),
            Some(_) => {
                state.open_until = Some(now + OPEN_FOR);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn succeeded(&self, url: &str) {
        let mut peers = lock(&self.0.peers);
        let state = peers.entry(url.to_owned()).or_default();
        if state.failures > 0 {
            info!(peer = %url, "The peer answers again.");
        }
        state.failures = 0;
        state.open_until = None;
        state.last_error = None;
        state.last_contact = Some(self.0.clock.now());
    }

    /// Counts `error` against `url`'s circuit (when it is the peer's fault) and returns it.
    fn failed(&self, url: &str, error: PeerError) -> PeerError {
        if !error.is_failure() {
            return error;
        }
        let mut peers = lock(&self.0.peers);
        let state = peers.entry(url.to_owned()).or_default();
        state.failures = state.failures.saturating_add(1);
        state.last_error = Some(error.to_string());
        // Logged on the first failure and when the circuit opens, not on every request: the
        // dashboard polls, and a dead peer must not flood the system log.
        if state.failures == 1 {
            warn!(peer = %url, error = %error, "A peer did not answer; its part is missing from merged answers.");
        }
        if state.failures == FAILURES_TO_OPEN {
            warn!(peer = %url, pause_seconds = OPEN_FOR.as_secs(), "A peer failed repeatedly; it is not asked for a while.");
        }
        if state.failures >= FAILURES_TO_OPEN {
            state.open_until = Some(self.0.clock.instant() + OPEN_FOR);
        }
        error
    }

    /// Sends `GET url+path` with our session token, logging in first when the peer wants a
    /// token we do not have (or no longer valid).
    async fn ask(&self, url: &str, path: &str) -> Result<RawAnswer, PeerError> {
        let token = lock(&self.0.peers).get(url).and_then(|s| s.token.clone());
        let first = self.send(url, path, token.as_deref()).await?;
        if first.status != StatusCode::UNAUTHORIZED || self.0.password.is_none() {
            return Ok(first);
        }
        let token = self.login(url).await?;
        let second = self.send(url, path, Some(&token)).await?;
        if second.status == StatusCode::UNAUTHORIZED {
            return Err(PeerError::LoginRefused(second.status));
        }
        Ok(second)
    }

    async fn send(
        &self,
        url: &str,
        path: &str,
        token: Option<&str>,
    ) -> Result<RawAnswer, PeerError> {
        let mut request = self
            .0
            .client
            .get(format!("{url}{path}"))
            .header(MESH_HEADER, "true");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = response.bytes().await.map_err(transport_error)?;
        Ok(RawAnswer { status, body })
    }

    async fn login(&self, url: &str) -> Result<String, PeerError> {
        let Some(password) = &self.0.password else {
            return Err(PeerError::LoginRefused(StatusCode::UNAUTHORIZED));
        };
        let response = self
            .0
            .client
            .post(format!("{url}/api/auth/login"))
            .header(MESH_HEADER, "true")
            .json(&serde_json::json!({ "password": password.expose() }))
            .send()
            .await
            .map_err(transport_error)?;
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        if !status.is_success() {
            return Err(PeerError::LoginRefused(status));
        }
        let answer: LoginAnswer = response
            .json()
            .await
            .map_err(|e| PeerError::BadAnswer(e.to_string()))?;
        let token = answer
            .token
            .ok_or_else(|| PeerError::BadAnswer("the login answer has no token".into()))?;
        lock(&self.0.peers).entry(url.to_owned()).or_default().token = Some(token.clone());
        Ok(token)
    }
}

/// A transport error in words, without the URL (the caller names the peer) and never with
/// a header value (tokens travel in headers).
fn transport_error(e: reqwest::Error) -> PeerError {
    let reason = if e.is_connect() {
        "connection refused or no route to the host".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            text = format!("{text}: {inner}");
            source = inner.source();
        }
        text
    };
    PeerError::Unreachable(reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

    use super::*;

    #[test]
    fn only_configured_peers_are_accepted() {
        let peers = vec!["http://node2:8080".to_owned()];
        assert!(configured(&peers, "http://node2:8080/").is_some());
        assert!(configured(&peers, "http://node2:8080").is_some());
        assert!(configured(&peers, "http://evil:8080").is_none());
        assert!(configured(&peers, "http://node2:8080/api").is_none());
    }

    #[test]
    fn mesh_header_is_recognised() {
        let mut headers = HeaderMap::new();
        assert!(!is_mesh_request(&headers));
        headers.insert(MESH_HEADER, HeaderValue::from_static("true"));
        assert!(is_mesh_request(&headers));
        headers.insert(MESH_HEADER, HeaderValue::from_static("no"));
        assert!(!is_mesh_request(&headers));
    }

    #[tokio::test(start_paused = true)]
    async fn the_circuit_opens_after_repeated_failures_and_retries_once_later() {
        let federation = Federation::new(None, Clock::System);
        let url = "http://127.0.0.1:9";
        for _ in 0..FAILURES_TO_OPEN {
            federation.admit(url).unwrap();
            federation.failed(url, PeerError::Unreachable("refused".into()));
        }
        let Err(PeerError::CircuitOpen {
            retry_in,
            last_error,
        }) = federation.admit(url)
        else {
            panic!("the circuit should be open");
        };
        assert!(retry_in <= OPEN_FOR);
        assert!(last_error.contains("refused"), "{last_error}");

        tokio::time::advance(OPEN_FOR + Duration::from_secs(1)).await;
        federation.admit(url).unwrap();
        assert!(
            matches!(federation.admit(url), Err(PeerError::CircuitOpen { .. })),
            "only one trial request while half-open"
        );
        federation.succeeded(url);
        federation.admit(url).unwrap();
        federation.admit(url).unwrap();
    }

    #[test]
    fn a_legitimate_no_does_not_count_against_the_peer() {
        let federation = Federation::new(None, Clock::System);
        let url = "http://node2:8080";
        for _ in 0..10 {
            federation.failed(url, PeerError::Refused(StatusCode::NOT_FOUND));
        }
        federation.admit(url).unwrap();
    }

    #[tokio::test]
    async fn a_dead_peer_is_reported_within_one_request() {
        // A port nothing listens on: bind one, note it, close it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let federation = Federation::new(None, Clock::System);
        let answers = federation
            .gather::<serde_json::Value>(
                std::slice::from_ref(&url),
                Duration::from_secs(2),
                "/api/schedules",
            )
            .await;
        assert!(matches!(answers[0].result, Err(PeerError::Unreachable(_))));
        let header = unreachable_header(&answers);
        assert_eq!(header[UNREACHABLE_HEADER], url.as_str());
    }
}
