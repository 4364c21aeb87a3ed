//! Authentication, login rate limiting and CORS of the HTTP API (SPEC §6), against a real
//! `marina run` process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use support::daemon::Daemon;

/// Long and unusual, so finding it anywhere is never a coincidence.
const PASSWORD: &str = "api-auth-test-pw-7Qz9xK2m";

/// Endpoints that need a token when a password is set.
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/api/info"),
    ("GET", "/api/schedules"),
    ("GET", "/api/instances"),
    ("GET", "/api/targets"),
    ("GET", "/api/config"),
    ("GET", "/api/jobs"),
    ("GET", "/api/status/x"),
    ("GET", "/api/logs/system"),
    ("GET", "/api/logs/job?instanceId=x"),
    ("POST", "/api/instances/x/backup"),
    ("GET", "/api/no-such-endpoint"),
];

/// Endpoints that never need a token.
const OPEN: &[&str] = &["/api/health", "/api/auth/check", "/healthz", "/readyz"];

/// One answer: status, headers, body text.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends a request and remembers every body, so the test can check none holds a secret.
struct Client {
    base: String,
    http: reqwest::Client,
    bodies: std::cell::RefCell<Vec<String>>,
}

impl Client {
    fn new(marina: &Daemon) -> Self {
        Self {
            base: marina.base_url.clone(),
            http: reqwest::Client::new(),
            bodies: std::cell::RefCell::default(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        self.bodies.borrow_mut().push(body.clone());
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send("GET", path, headers, None).await
    }

    async fn login(&self, password: &str) -> Answer {
        let body = serde_json::json!({ "password": password }).to_string();
        self.send("POST", "/api/auth/login", &[], Some(&body)).await
    }

    /// Logs in with the right password and returns the token.
    async fn token(&self) -> String {
        let answer = self.login(PASSWORD).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["token"].as_str().unwrap().to_owned()
    }

    fn assert_no_body_contains(&self, secret: &str) {
        for body in self.bodies.borrow().iter() {
            assert!(
                !body.contains(secret),
                "an answer revealed a secret: {body}"
            );
        }
    }
}

fn auth_config(extra: &str) -> String {
    format!("instances: []\nauthPassword: {PASSWORD}\n{extra}")
}

/// Every log line Marina has written so far (after a moment for the reader thread).
fn drain_logs(marina: &Daemon) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(500));
    marina.logs.try_iter().collect()
}

fn assert_refused(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.body);
    assert_eq!(
        answer.json(),
        serde_json::json!({ "error": "authentication required" }),
        "{what}"
    );
}

/// Checks a successful login answer and returns its token.
fn assert_logged_in(login: &Answer) -> String {
    assert_eq!(login.status, 200, "{}", login.body);
    let body = login.json();
    assert_eq!(body["success"], true);
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64, "32 random bytes, hex-encoded");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let cookie = login.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("marina_auth_token={token};")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    token
}

#[tokio::test]
async fn protected_endpoints_need_a_token_from_the_cookie_or_the_bearer_header() {
    let marina = Daemon::start(&auth_config(""));
    marina.wait_ready().await;
    let client = Client::new(&marina);

    for (method, path) in PROTECTED {
        let answer = client.send(method, path, &[], None).await;
        assert_refused(&answer, &format!("{method} {path} without a token"));
        let answer = client
            .send(
                method,
                path,
                &[("authorization", "Bearer not-a-token")],
                None,
            )
            .await;
        assert_refused(&answer, &format!("{method} {path} with a made-up token"));
    }
    for path in OPEN {
        let answer = client.get(path, &[]).await;
        assert_eq!(answer.status, 200, "{path} must stay open: {}", answer.body);
    }
    assert_eq!(
        client.get("/api/auth/check", &[]).await.json(),
        serde_json::json!({ "authRequired": true, "authenticated": false })
    );

    let token = assert_logged_in(&client.login(PASSWORD).await);
    assert_ne!(
        client.token().await,
        token,
        "every login gets its own token"
    );

    let cookie_header = format!("theme=dark; marina_auth_token={token}");
    let bearer_header = format!("Bearer {token}");
    let ways: [(&str, &str); 2] = [
        ("cookie", &cookie_header),
        ("authorization", &bearer_header),
    ];
    for (header, value) in ways {
        for (method, path) in PROTECTED {
            let answer = client.send(method, path, &[(header, value)], None).await;
            let expected = match *path {
                "/api/instances/x/backup" | "/api/no-such-endpoint" => 404,
                _ => 200,
            };
            assert_eq!(
                answer.status, expected,
                "{method} {path} with the token in {header}: {}",
                answer.body
            );
        }
        assert_eq!(
            client
                .get("/api/auth/check", &[(header, value)])
                .await
                .json(),
            serde_json::json!({ "authRequired": true, "authenticated": true })
        );
    }

    let logout = client
        .send(
            "POST",
            "/api/auth/logout",
            &[("cookie", &cookie_header)],
            None,
        )
        .await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(logout.json()["success"], true);
    let cleared = logout.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("marina_auth_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    for (header, value) in ways {
        assert_refused(
            &client.get("/api/info", &[(header, value)]).await,
            &format!("the logged-out token in {header}"),
        );
    }
    assert_eq!(
        client
            .get("/api/auth/check", &[("authorization", &bearer_header)])
            .await
            .json()["authenticated"],
        false
    );

    client.assert_no_body_contains(PASSWORD);
    let logs = drain_logs(&marina);
    assert!(
        logs.iter().any(|l| l.contains("A client logged in.")),
        "{logs:#?}"
    );
    for line in &logs {
        assert!(!line.contains(PASSWORD), "the password was logged: {line}");
        assert!(!line.contains(&token), "a token was logged: {line}");
    }
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_then_rate_limited() {
    let marina = Daemon::start(&auth_config(""));
    let client = Client::new(&marina);

    let malformed = client
        .send("POST", "/api/auth/login", &[], Some("{\"pass\":"))
        .await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert!(malformed.json()["error"].is_string());

    let wrong = |n: usize| format!("{PASSWORD}-wrong-{n}");
    for n in 1..=5 {
        let answer = client.login(&wrong(n)).await;
        assert_eq!(answer.status, 401, "attempt {n}: {}", answer.body);
        assert_eq!(
            answer.json(),
            serde_json::json!({ "success": false, "error": "invalid password" })
        );
        assert!(answer.header("set-cookie").is_none());
    }
    let sixth = client.login(&wrong(6)).await;
    assert_eq!(sixth.status, 429, "{}", sixth.body);
    assert!(sixth.json()["error"].is_string());
    let retry_after: u64 = sixth.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    // While limited, even the right password is not looked at: no guess is confirmed.
    let right = client.login(PASSWORD).await;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(right.json().get("token").is_none());

    client.assert_no_body_contains(PASSWORD);
    let logs = drain_logs(&marina);
    let failures = logs
        .iter()
        .filter(|l| l.contains("A login failed") && l.contains("127.0.0.1"))
        .count();
    assert_eq!(
        failures, 5,
        "one line per failure, with the client: {logs:#?}"
    );
    for line in &logs {
        assert!(
            !line.contains(PASSWORD),
            "a (wrong) password was logged: {line}"
        );
    }
}

#[tokio::test]
async fn without_a_password_nothing_needs_a_token() {
    let marina = Daemon::start("instances: []\n");
    marina.wait_ready().await;
    let client = Client::new(&marina);
    for (method, path) in PROTECTED {
        let answer = client.send(method, path, &[], None).await;
        assert_ne!(answer.status, 401, "{method} {path}: {}", answer.body);
    }
    assert_eq!(
        client.get("/api/auth/check", &[]).await.json(),
        serde_json::json!({ "authRequired": false, "authenticated": true })
    );
    let metrics = client.get("/metrics", &[]).await;
    assert_ne!(metrics.status, 401);
}

#[tokio::test]
async fn metrics_are_open_unless_metrics_auth_is_set() {
    let open = Daemon::start(&auth_config(""));
    let client = Client::new(&open);
    let answer = client.get("/metrics", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("marina_build_info"),
        "the metrics are served without a token: {}",
        answer.body
    );
    drop(open);

    let closed = Daemon::start(&auth_config("metricsAuth: true\n"));
    let client = Client::new(&closed);
    assert_refused(
        &client.get("/metrics", &[]).await,
        "/metrics without a token",
    );
    let token = client.token().await;
    let answer = client
        .get("/metrics", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("marina_build_info"), "{}", answer.body);
}

#[tokio::test]
async fn listed_cors_origins_are_allowed_with_credentials_and_others_are_not() {
    let marina = Daemon::start(&auth_config("corsOrigins: [\"https://ui.example.com\"]\n"));
    let client = Client::new(&marina);
    let ui = ("origin", "https://ui.example.com");
    let other = ("origin", "https://other.example.com");

    let allowed = client.get("/api/health", &[ui]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://ui.example.com")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    let refused = client.get("/api/info", &[ui]).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("https://ui.example.com"),
        "the browser must be able to read the 401"
    );

    let denied = client.get("/api/health", &[other]).await;
    assert_eq!(denied.status, 200);
    assert_eq!(denied.header("access-control-allow-origin"), None);
    assert_eq!(denied.header("access-control-allow-credentials"), None);

    let preflight = client
        .send(
            "OPTIONS",
            "/api/info",
            &[
                ui,
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
            None,
        )
        .await;
    assert!(
        (200..300).contains(&preflight.status),
        "preflight: {} {}",
        preflight.status,
        preflight.body
    );
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://ui.example.com")
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    let foreign = client
        .send(
            "OPTIONS",
            "/api/info",
            &[other, ("access-control-request-method", "GET")],
            None,
        )
        .await;
    assert_eq!(foreign.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_star_allows_any_origin_without_credentials() {
    let marina = Daemon::start("instances: []\ncorsOrigins: [\"*\"]\n");
    let client = Client::new(&marina);
    let answer = client
        .get("/api/health", &[("origin", "https://anywhere.example.org")])
        .await;
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(answer.header("access-control-allow-credentials"), None);
    let without_origin = client.get("/api/health", &[]).await;
    assert_eq!(without_origin.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn marina_backup_logs_in_with_the_configured_password() {
    let marina = Daemon::start(&auth_config(""));
    marina.wait_ready().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_marina"))
        .args(["backup", "nope", "--url", &marina.base_url, "--config"])
        .arg(&marina.config_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Past authentication: the daemon answers about the instance, not about the token.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no instance `nope`"), "{stderr}");
    assert!(!stderr.contains(PASSWORD));
}
