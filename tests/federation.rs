//! Peer federation between two real `marina run` processes on this machine, sharing one
//! password: each one's `/api/schedules` shows both nodes' instances, `/api/status/{id}` and
//! `/api/logs/system` merge the peer's answers, the job-log proxy reaches the peer but no
//! other address, and a stopped or hung peer is reported as missing in the very next answer
//! (bounded by `peerTimeout`) instead of vanishing silently.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;
use support::require_engine_and_images;

const PASSWORD: &str = "mesh-shared-secret";

/// A node's config: one instance `id`, the shared password, and `peers`.
fn node(name: &str, id: &str, repo: &std::path::Path, peers: &[&str]) -> String {
    let peers = peers
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "instances:\n  - id: {id}\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: x}}\n\
         nodeName: {name}\nauthPassword: {PASSWORD}\npeers: [{peers}]\npeerTimeout: 1s\n",
        repo.display()
    )
}

/// A logged-in client of one node.
struct Client {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Client {
    async fn login(base: &str) -> Self {
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({ "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            base: base.to_owned(),
            http,
            token: answer["token"].as_str().expect("a token").to_owned(),
        }
    }

    /// GETs `path`: status, the unreachable-peers header, and the JSON answer.
    async fn get(&self, path: &str, mesh: bool) -> (u16, Option<String>, Value) {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if mesh {
            request = request.header("X-Marina-Mesh", "true");
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let missing = response
            .headers()
            .get("x-marina-unreachable-peers")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, missing, response.json().await.unwrap())
    }

    async fn post(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

/// `(nodeName, instanceId)` of each schedule entry.
fn placements(schedules: &Value) -> Vec<(String, String)> {
    schedules
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["nodeName"].as_str().unwrap().to_owned(),
                e["instanceId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(node: &str, instance: &str) -> (String, String) {
    (node.to_owned(), instance.to_owned())
}

#[tokio::test]
async fn two_peers_merge_their_answers_and_report_a_peer_that_is_gone() {
    require_engine_and_images();
    let repos = tempfile::tempdir().unwrap();
    // A first without peers (its port is not known before it starts), then B pointing at A,
    // then A's config gains B: peers apply on reload.
    let a = Daemon::start(&node("node-a", "alpha", &repos.path().join("a"), &[]));
    let b = Daemon::start(&node(
        "node-b",
        "beta",
        &repos.path().join("b"),
        &[&a.base_url],
    ));
    a.replace_config(&node(
        "node-a",
        "alpha",
        &repos.path().join("a"),
        &[&b.base_url],
    ));
    a.wait_ready().await;
    b.wait_ready().await;
    let client_a = Client::login(&a.base_url).await;
    let client_b = Client::login(&b.base_url).await;

    // Each node shows both nodes' instances, its own first.
    let mut merged = None;
    for _ in 0..250 {
        let (status, missing, schedules) = client_a.get("/api/schedules", false).await;
        assert_eq!(status, 200);
        if placements(&schedules).len() == 2 {
            merged = Some((missing, schedules));
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (missing, schedules) = merged.expect("A's reload adds B as a peer");
    assert_eq!(missing, None, "every peer answered");
    assert_eq!(
        placements(&schedules),
        [pair("node-a", "alpha"), pair("node-b", "beta")]
    );
    let (_, missing, schedules) = client_b.get("/api/schedules", false).await;
    assert_eq!(missing, None);
    assert_eq!(
        placements(&schedules),
        [pair("node-b", "beta"), pair("node-a", "alpha")]
    );
    // A peer's own request (the mesh header) is answered locally only: no loops.
    let (_, _, local) = client_b.get("/api/schedules", true).await;
    assert_eq!(placements(&local), [pair("node-b", "beta")]);

    let (_, _, peers) = client_a.get("/api/peers", false).await;
    assert_eq!(peers[0]["url"], b.base_url.as_str());
    assert_eq!(peers[0]["nodeName"], "node-b");
    assert_eq!(peers[0]["state"], "ok", "{peers}");

    let job = peer_job_comes_through(&client_a, &client_b, &b.base_url).await;

    // System logs: A's merged answer holds more than A's own lines.
    let (_, _, own) = client_a.get("/api/logs/system?limit=10000", true).await;
    let (_, missing, all) = client_a.get("/api/logs/system?limit=10000", false).await;
    assert_eq!(missing, None);
    assert!(
        all.as_array().unwrap().len() > own.as_array().unwrap().len(),
        "B's system log lines are merged in"
    );

    // B stops: the next answer of A still comes, names B as missing, and keeps A's part.
    let b_url = b.base_url.clone();
    drop(b);
    let (status, missing, schedules) = client_a.get("/api/schedules", false).await;
    assert_eq!(status, 200);
    assert_eq!(missing.as_deref(), Some(b_url.as_str()));
    assert_eq!(placements(&schedules), [pair("node-a", "alpha")]);
    let (_, _, peers) = client_a.get("/api/peers", false).await;
    assert_eq!(peers[0]["state"], "unreachable", "{peers}");
    assert!(
        peers[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{peers}"
    );
    // After repeated failures the circuit opens: B is reported without being asked.
    for _ in 0..3 {
        client_a.get("/api/status/alpha", false).await;
    }
    let (_, _, peers) = client_a.get("/api/peers", false).await;
    assert_eq!(peers[0]["state"], "circuit-open", "{peers}");
    let (status, _, answer) = client_a
        .get(&format!("/api/logs/job/{job}?peer={b_url}"), false)
        .await;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains(&b_url),
        "{answer}"
    );
}

/// A job run on B shows in A's merged status, and its log comes through A's proxy (and only
/// from a configured peer). Returns the job id.
async fn peer_job_comes_through(client_a: &Client, client_b: &Client, b_url: &str) -> i64 {
    // A job on B shows in A's merged status, and its log comes through A's proxy.
    let (status, accepted) = client_b.post("/api/instances/beta/backup").await;
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["jobId"].as_i64().unwrap();
    let mut seen = Value::Null;
    for _ in 0..1500 {
        let (_, _, jobs) = client_a.get("/api/status/beta", false).await;
        if jobs
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job && j["nodeName"] == "node-b" && j["isActive"] == false)
        {
            seen = jobs;
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(seen.is_array(), "B's job never showed as finished on A");
    let (_, _, direct) = client_b.get(&format!("/api/logs/job/{job}"), false).await;
    assert!(!direct.as_array().unwrap().is_empty(), "the job logged");
    let (status, _, proxied) = client_a
        .get(&format!("/api/logs/job/{job}?peer={b_url}"), false)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        proxied, direct,
        "the proxy passes the peer's answer through"
    );
    let (status, _, refused) = client_a
        .get(
            &format!("/api/logs/job/{job}?peer=http://127.0.0.1:9"),
            false,
        )
        .await;
    assert_eq!(status, 400, "only configured peers are asked: {refused}");

    job
}

#[tokio::test]
async fn a_hung_peer_costs_one_peer_timeout_and_is_reported() {
    require_engine_and_images();
    // A peer that accepts connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let repos = tempfile::tempdir().unwrap();
    let a = Daemon::start(&node(
        "node-a",
        "alpha",
        &repos.path().join("a"),
        &[&hung_url],
    ));
    a.wait_ready().await;
    let client = Client::login(&a.base_url).await;

    #[allow(clippy::disallowed_methods)] // Measured for the record, never asserted.
    let started = Instant::now();
    let (status, missing, schedules) = client.get("/api/schedules", false).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(missing.as_deref(), Some(hung_url.as_str()));
    assert_eq!(placements(&schedules), [pair("node-a", "alpha")]);
    let (_, _, peers) = client.get("/api/peers", false).await;
    assert!(
        peers[0]["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1s (peerTimeout)"),
        "the peer timeout ended the wait: {peers}"
    );
    // Shown for the record; the timeout itself is proven by the error above.
    eprintln!("merged answer with a hung peer took {took:?} (peerTimeout 1s)");
    drop(hung);
}
