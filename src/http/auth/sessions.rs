//! Session tokens: made from the operating system's random source, found in a request's
//! cookie or bearer header, kept in memory with an expiry.

use std::collections::HashMap;
use std::io::Read as _;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use tokio::time::Instant;

use super::COOKIE_NAME;

/// Random bytes in a token (64 hex characters).
pub(super) const TOKEN_BYTES: usize = 32;

/// Live sessions kept at most; past that the one closest to expiry is dropped, so memory
/// stays bounded even if a client logs in in a loop.
pub(super) const MAX_SESSIONS: usize = 10_000;

/// Presented tokens longer than this are not looked up (ours are 64 characters).
pub(super) const MAX_TOKEN_LEN: usize = 128;

/// A fresh session token: 32 bytes from the operating system's random source, hex-encoded.
pub(super) fn random_token() -> std::io::Result<String> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The tokens a request presents: every `marina_auth_token` cookie, then the bearer token.
pub(super) fn presented_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
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
pub(super) struct Sessions {
    /// Token → when it stops being valid.
    tokens: HashMap<String, Instant>,
    /// How long a new token lives.
    lifetime: Duration,
}

impl Sessions {
    pub(super) fn new(lifetime: Duration) -> Self {
        Self {
            tokens: HashMap::new(),
            lifetime,
        }
    }

    /// Records `token` as valid from `now` for the lifetime; drops expired tokens first and,
    /// at the cap, the one closest to expiry.
    pub(super) fn insert(&mut self, token: String, now: Instant) {
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
    pub(super) fn is_valid(&mut self, token: &str, now: Instant) -> bool {
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
    pub(super) fn remove(&mut self, token: &str) -> bool {
        self.tokens.remove(token).is_some()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::clock::Clock;

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
}
