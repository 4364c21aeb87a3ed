//! The policy as a whole: passwords, protected paths, CORS grants and retry times.

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, VARY,
};

use super::cors::Grant;
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
