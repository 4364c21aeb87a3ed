//! `docs/openapi.yaml` is the API contract: every route the router serves is documented, and
//! every answer of a real `marina run` (after a real backup) conforms to the documented schema
//! for its status code, checked by a small schema checker for the subset the document uses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::daemon::Daemon;
use support::{VolumeGuard, filled_volume, require_engine_and_images};

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml");
    yaml_serde::from_str(&text).expect("docs/openapi.yaml is YAML")
}

/// Resolves a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local $refs are supported: {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("$ref {reference} points nowhere"))
}

/// Checks `value` against `schema` (type with nullable, format date-time, properties,
/// required, additionalProperties: false, items, enum, allOf, $ref); adds one line per
/// violation to `errors`.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        check(doc, resolve(doc, reference), value, at, errors);
        return;
    }
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all {
            check(doc, part, value, at, errors);
        }
    }
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let matches = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => panic!("{at}: the checker does not know type {other}"),
        };
        if !matches {
            errors.push(format!("{at}: expected {kind}, got {value}"));
            return;
        }
    }
    if schema["format"] == "date-time"
        && let Some(text) = value.as_str()
        && chrono::DateTime::parse_from_rfc3339(text).is_err()
    {
        errors.push(format!("{at}: `{text}` is not an RFC 3339 date-time"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(minimum) = schema.get("minimum").and_then(Value::as_i64)
        && value.as_i64().is_some_and(|n| n < minimum)
    {
        errors.push(format!("{at}: {value} is below the minimum {minimum}"));
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{at}: required property `{name}` is missing"));
            }
        }
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => check(doc, property, field, &format!("{at}.{name}"), errors),
                None if schema["additionalProperties"] == false => {
                    errors.push(format!("{at}: undocumented property `{name}`"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(elements)) = (schema.get("items"), value.as_array()) {
        for (i, element) in elements.iter().enumerate() {
            check(doc, items, element, &format!("{at}[{i}]"), errors);
        }
    }
}

/// The routes of `router()` in src/http/mod.rs as (method, path), read from its source.
fn router_routes() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs");
    let source = std::fs::read_to_string(path).expect("src/http/mod.rs");
    let mut routes = BTreeSet::new();
    for piece in source.split(".route(\"").skip(1) {
        let (path, rest) = piece.split_once('"').expect("a route path literal");
        let method = rest
            .trim_start_matches([',', ' ', '\n'])
            .split('(')
            .next()
            .unwrap()
            .trim()
            .to_owned();
        for method in method.split('.') {
            routes.insert((method.to_owned(), path.to_owned()));
        }
    }
    assert!(routes.len() >= 19, "too few routes found: {routes:?}");
    routes
}

/// axum's `{id}` under the parameter name the document uses for that path.
fn documented_path(axum_path: &str) -> String {
    match axum_path {
        "/api/status/{id}" => "/api/status/{instanceId}".to_owned(),
        "/api/logs/job/{id}" => "/api/logs/job/{jobId}".to_owned(),
        other => other.to_owned(),
    }
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.0.3");
    let served: BTreeSet<(String, String)> = router_routes()
        .into_iter()
        .map(|(method, path)| (method, documented_path(&path)))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    assert_eq!(documented, served, "docs/openapi.yaml and router() differ");
}

#[test]
fn protected_operations_carry_the_security_schemes() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["cookieAuth"]["name"], "marina_auth_token");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    let open = [
        "/healthz",
        "/readyz",
        "/api/health",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/check",
    ];
    let protected = json!([{"cookieAuth": []}, {"bearerAuth": []}]);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let security = &operation["security"];
            if open.contains(&path.as_str()) {
                assert_eq!(security, &json!([]), "{method} {path} is open");
            } else if path == "/metrics" {
                assert_eq!(security[0], json!({}), "/metrics: auth is optional");
            } else {
                assert_eq!(security, &protected, "{method} {path} is protected");
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{method} {path} documents 401"
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"];
                    let fits = schema["$ref"] == "#/components/schemas/Error"
                        || (path == "/api/auth/login" && status == "401")
                        || (path == "/readyz" && status == "503");
                    assert!(fits, "{method} {path} {status} answers the error schema");
                }
            }
        }
    }
}

/// One exchange with the daemon, checked against the document.
struct Api<'a> {
    doc: &'a Value,
    marina: &'a Daemon,
    client: reqwest::Client,
    /// (method, documented path, status) seen, to prove coverage.
    seen: BTreeSet<(String, String, u16)>,
    /// Sent as `Authorization: Bearer` when set.
    token: Option<String>,
}

impl Api<'_> {
    /// Sends `method url` (with `body` as JSON, if any), checks the answer against the
    /// operation `template` for its status code, and returns status and parsed JSON
    /// (`Null` for text answers).
    async fn call(
        &mut self,
        method: &str,
        url: &str,
        template: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let full = format!("{}{url}", self.marina.base_url);
        let mut request = match method {
            "get" => self.client.get(&full),
            "post" => self.client.post(&full),
            other => panic!("unexpected method {other}"),
        };
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let documented = &operation["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {url} answered {status}, which {template} does not document: {text}"
        );
        self.seen
            .insert((method.to_owned(), template.to_owned(), status));
        let content = documented["content"].as_object().unwrap();
        let (media, spec) = content.iter().next().unwrap();
        assert!(
            content_type.starts_with(media.as_str()),
            "{method} {url}: content type `{content_type}`, documented `{media}`"
        );
        if media != "application/json" {
            return (status, Value::Null);
        }
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {text}"));
        let mut errors = Vec::new();
        check(self.doc, &spec["schema"], &value, "$", &mut errors);
        assert!(
            errors.is_empty(),
            "{method} {url} ({status}) does not conform to docs/openapi.yaml:\n{}\nanswer: {value:#}",
            errors.join("\n")
        );
        (status, value)
    }

    async fn get(&mut self, url: &str, template: &str) -> (u16, Value) {
        self.call("get", url, template, None).await
    }

    /// `POST /api/auth/login` with `body`.
    async fn login(&mut self, body: &str) -> (u16, Value) {
        self.call("post", "/api/auth/login", "/api/auth/login", Some(body))
            .await
    }
}

/// Restore points, a dry run, a restore job and its refusals.
async fn restore_answers(api: &mut Api<'_>, volume: &str) {
    let snapshots = "/api/instances/{id}/snapshots";
    let restore = "/api/instances/{id}/restore";
    let target = format!("volume:{volume}");
    for (url, expected) in [
        ("/api/instances/files/snapshots".to_owned(), 200),
        (
            format!("/api/instances/files/snapshots?target={target}&count=true"),
            200,
        ),
        ("/api/instances/nope/snapshots".to_owned(), 404),
        (
            "/api/instances/files/snapshots?target=nonsense".to_owned(),
            400,
        ),
    ] {
        let (status, answer) = api.get(&url, snapshots).await;
        assert_eq!(status, expected, "GET {url}: {answer}");
    }
    let copy = format!("{volume}-copy");
    let _copy = VolumeGuard(copy.clone());
    let body = json!({ "target": target, "to": copy }).to_string();
    let dry = json!({ "target": target, "to": copy, "dryRun": true }).to_string();
    let (status, plan) = api
        .call("post", "/api/instances/files/restore", restore, Some(&dry))
        .await;
    assert_eq!(status, 200, "{plan}");
    let (status, accepted) = api
        .call("post", "/api/instances/files/restore", restore, Some(&body))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["jobId"].as_i64().unwrap();
    let finished = api.marina.wait_job("files", job, 120).await;
    assert_eq!(finished["status"], "success", "{finished}");
    let (status, _) = api.get("/api/jobs", "/api/jobs").await;
    assert_eq!(status, 200);
    for (url, body, expected) in [
        ("/api/instances/files/restore", body.clone(), 409),
        (
            "/api/instances/files/restore",
            r#"{"target": 1}"#.to_owned(),
            400,
        ),
        ("/api/instances/nope/restore", body, 404),
    ] {
        let (status, answer) = api.call("post", url, restore, Some(&body)).await;
        assert_eq!(status, expected, "POST {url} {body}: {answer}");
    }
}

/// A job's log: whole, paged with `afterId`, and the refused proxy to a stranger.
async fn job_log_answers(api: &mut Api<'_>, job: i64) {
    let (status, logs) = api
        .get(&format!("/api/logs/job/{job}"), "/api/logs/job/{jobId}")
        .await;
    assert_eq!(status, 200);
    assert!(!logs.as_array().unwrap().is_empty(), "the job logged");
    let first = logs[0]["id"].as_i64().unwrap();
    let (status, rest) = api
        .get(
            &format!("/api/logs/job/{job}?afterId={first}&limit=2"),
            "/api/logs/job/{jobId}",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        rest[0], logs[1],
        "the page after the first line starts at the second"
    );
    let (status, refused) = api
        .get(
            &format!("/api/logs/job/{job}?peer=http://192.0.2.1:8080"),
            "/api/logs/job/{jobId}",
        )
        .await;
    assert_eq!(status, 400, "no open proxy: {refused}");
}

/// The documented 4xx answers, and login/logout without a configured password.
async fn error_and_auth_answers(api: &mut Api<'_>) {
    for (url, template, expected) in [
        ("/api/instances/nope", "/api/instances/{id}", 404),
        ("/api/status/bad!id", "/api/status/{instanceId}", 400),
        (
            "/api/status/files?limit=many",
            "/api/status/{instanceId}",
            400,
        ),
        ("/api/jobs?status=bogus", "/api/jobs", 400),
        ("/api/jobs?instanceId=bad!id", "/api/jobs", 400),
        ("/api/logs/job", "/api/logs/job", 400),
        ("/api/logs/job/not-a-number", "/api/logs/job/{jobId}", 400),
        ("/api/logs/job/999999", "/api/logs/job/{jobId}", 404),
        ("/api/logs/system?level=LOUD", "/api/logs/system", 400),
    ] {
        let (status, _) = api.get(url, template).await;
        assert_eq!(status, expected, "GET {url}");
    }
    let (status, _) = api
        .call(
            "post",
            "/api/instances/nope/backup",
            "/api/instances/{id}/backup",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Auth without a password: login always succeeds, logout too.
    let (status, _) = api.login(r#"{"password": "anything"}"#).await;
    assert_eq!(status, 200);
    let (status, _) = api.login("not json").await;
    assert_eq!(status, 400);
    let (status, _) = api
        .call("post", "/api/auth/logout", "/api/auth/logout", None)
        .await;
    assert_eq!(status, 200);
    // Unknown paths answer the error schema too.
    let response = reqwest::get(format!("{}/api/nope", api.marina.base_url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let value: Value = response.json().await.unwrap();
    let mut errors = Vec::new();
    check(
        api.doc,
        &json!({"$ref": "#/components/schemas/Error"}),
        &value,
        "$",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test]
async fn answers_under_authentication_conform_to_the_document() {
    require_engine_and_images();
    let doc = document();
    let marina = Daemon::start("instances: []\nauthPassword: openapi-secret\nmetricsAuth: true\n");
    marina.wait_ready().await;
    let mut api = Api {
        doc: &doc,
        marina: &marina,
        client: reqwest::Client::new(),
        seen: BTreeSet::new(),
        token: None,
    };
    let (status, check) = api.get("/api/auth/check", "/api/auth/check").await;
    assert_eq!(status, 200);
    assert_eq!(check, json!({"authRequired": true, "authenticated": false}));
    for (url, template) in [
        ("/api/schedules", "/api/schedules"),
        ("/api/peers", "/api/peers"),
        ("/api/logs/system", "/api/logs/system"),
        ("/metrics", "/metrics"),
    ] {
        let (status, _) = api.get(url, template).await;
        assert_eq!(status, 401, "GET {url} without a token");
    }
    let (status, _) = api.get("/api/health", "/api/health").await;
    assert_eq!(status, 200, "health stays open");

    let (status, login) = api.login(r#"{"password": "openapi-secret"}"#).await;
    assert_eq!(status, 200);
    api.token = Some(login["token"].as_str().unwrap().to_owned());
    let (status, check) = api.get("/api/auth/check", "/api/auth/check").await;
    assert_eq!(status, 200);
    assert_eq!(check["authenticated"], true);
    let (status, _) = api.get("/api/schedules", "/api/schedules").await;
    assert_eq!(status, 200);
    let (status, _) = api.get("/metrics", "/metrics").await;
    assert_eq!(status, 200);
    api.token = None;

    // Wrong passwords: 401 each, then 429 once the budget is spent.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, _) = api.login(r#"{"password": "wrong"}"#).await;
        statuses.push(status);
        if status == 429 {
            break;
        }
    }
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let logs = marina.logs.try_iter().collect::<Vec<_>>().join("\n");
    assert!(
        !logs.contains("openapi-secret") && !logs.contains(api_token_prefix(&login)),
        "neither the password nor a token appears in the log"
    );
}

/// The first half of the session token: enough to find it in a log, never the whole.
fn api_token_prefix(login: &Value) -> &str {
    let token = login["token"].as_str().unwrap();
    &token[..token.len() / 2]
}

/// What the daemon test keeps alive: the repository directory and two labelled volumes.
struct Fixture {
    repo: tempfile::TempDir,
    _volumes: [VolumeGuard; 2],
    volume: String,
    stray: String,
}

/// Starts `marina run` with one restic instance `files` on a temporary repository, a volume
/// labelled for it and one labelled for an unknown instance; returns once it sees the volume.
async fn start() -> (Daemon, Fixture) {
    let repo = tempfile::tempdir().unwrap();
    // An empty volume fails unless `allowEmpty`: give it a file.
    let (volume, volume_guard) = filled_volume("files", "echo hello > /data/file");
    // A labelled volume naming an instance that does not exist: an unassigned target.
    let (stray, stray_guard) = filled_volume("ghost", "true");
    let fixture = Fixture {
        _volumes: [volume_guard, stray_guard],
        repo,
        volume: volume.clone(),
        stray: stray.clone(),
    };
    let marina = Daemon::start(&format!(
        "instances:\n  - id: files\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: openapi}}\n",
        fixture.repo.path().join("repo").display()
    ));
    marina.wait_ready().await;
    marina
        .wait_for("/api/targets", 10, "the labelled volume", |t| {
            t.to_string().contains(&volume)
        })
        .await;
    (marina, fixture)
}

#[tokio::test]
async fn every_answer_of_a_real_daemon_conforms_to_the_document() {
    require_engine_and_images();
    let doc = document();
    let (marina, fixture) = start().await;
    let stray = fixture.stray.clone();
    let mut api = Api {
        doc: &doc,
        marina: &marina,
        client: reqwest::Client::new(),
        seen: BTreeSet::new(),
        token: None,
    };

    // Before any job: schedules without a latest job.
    api.get("/api/schedules", "/api/schedules").await;

    let (status, accepted) = api
        .call(
            "post",
            "/api/instances/files/backup",
            "/api/instances/{id}/backup",
            None,
        )
        .await;
    assert_eq!(status, 202);
    let job = accepted["jobId"].as_i64().unwrap();
    // At once again: normally 409 (queued or running); a 202 is a second job, also fine.
    let (again, _) = api
        .call(
            "post",
            "/api/instances/files/backup",
            "/api/instances/{id}/backup",
            None,
        )
        .await;
    assert!(again == 409 || again == 202, "second trigger: {again}");
    // While the job is active: queued/running instance views and an active job.
    api.get("/api/instances/files", "/api/instances/{id}").await;
    api.get("/api/status/files", "/api/status/{instanceId}")
        .await;
    let finished = marina.wait_job("files", job, 300).await;
    assert_eq!(finished["status"], "success", "{finished}");
    marina
        .wait_for("/api/jobs", 300, "every job to finish", |jobs| {
            jobs.as_array()
                .is_some_and(|all| all.iter().all(|j| j["isActive"] == false))
        })
        .await;

    for (url, template) in [
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/api/health", "/api/health"),
        ("/api/auth/check", "/api/auth/check"),
        ("/api/info", "/api/info"),
        ("/api/schedules", "/api/schedules"),
        ("/api/peers", "/api/peers"),
        ("/api/instances", "/api/instances"),
        ("/api/instances/files", "/api/instances/{id}"),
        ("/api/targets", "/api/targets"),
        ("/api/config", "/api/config"),
        ("/api/status/files", "/api/status/{instanceId}"),
        ("/api/status/files?limit=1", "/api/status/{instanceId}"),
        ("/api/jobs", "/api/jobs"),
        (
            "/api/jobs?instanceId=files&status=success&limit=5",
            "/api/jobs",
        ),
        ("/api/logs/job?instanceId=files", "/api/logs/job"),
        ("/api/logs/system", "/api/logs/system"),
        ("/api/logs/system?level=INFO&limit=5", "/api/logs/system"),
        ("/api/logs/system?level=", "/api/logs/system"),
        ("/metrics", "/metrics"),
    ] {
        let (status, _) = api.get(url, template).await;
        assert_eq!(status, 200, "GET {url}");
    }
    job_log_answers(&mut api, job).await;
    restore_answers(&mut api, &fixture.volume).await;

    let (_, schedules) = api.get("/api/schedules", "/api/schedules").await;
    assert_eq!(schedules[0]["latestJobStatus"], "success");
    let (_, targets) = api.get("/api/targets", "/api/targets").await;
    assert!(
        targets["unassigned"].to_string().contains(&stray),
        "{targets}"
    );

    error_and_auth_answers(&mut api).await;

    // Every documented path was exercised at least once.
    let exercised: BTreeSet<&str> = api.seen.iter().map(|(_, path, _)| path.as_str()).collect();
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(exercised, documented, "paths the test did not call");
}

#[test]
fn the_checker_rejects_what_it_should() {
    let doc = document();
    let job = json!({"$ref": "#/components/schemas/Job"});
    let mut errors = Vec::new();
    check(
        &doc,
        &job,
        &json!({"id": "1", "status": "done", "extra": 1}),
        "$",
        &mut errors,
    );
    let text = errors.join("\n");
    for expected in [
        "$.id: expected integer",
        "$.status: \"done\" is not one of",
        "undocumented property `extra`",
        "required property `iid` is missing",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    let mut errors = Vec::new();
    let instance = json!({"$ref": "#/components/schemas/Instance"});
    check(
        &doc,
        &instance,
        &json!({"retention": null, "queued": {"due": "yesterday", "trigger": "manual", "job": null}}),
        "$",
        &mut errors,
    );
    let text = errors.join("\n");
    assert!(!text.contains("$.retention"), "{text}");
    assert!(text.contains("$.queued.due: `yesterday`"), "{text}");
}
