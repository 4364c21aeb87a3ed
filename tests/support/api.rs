//! A client of a running Marina's HTTP API, for black-box tests: a `marina run` the test
//! started ([`super::daemon::Daemon`] derefs to one) or one in a container or Swarm service.

use std::time::Duration;

/// Marina's API at `base_url`, with a session token once logged in.
pub struct Api {
    /// `http://HOST:PORT`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer` once [`Api::login`] succeeded.
    token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    /// A client of the API at `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            token: None,
            client: reqwest::Client::new(),
        }
    }

    /// Logs in with `password`; later requests carry the session token.
    pub async fn login(&mut self, password: &str) {
        let url = format!("{}/api/auth/login", self.base_url);
        let answer: serde_json::Value = self
            .client
            .post(&url)
            .json(&serde_json::json!({ "password": password }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
            .json()
            .await
            .expect("login answers JSON");
        let token = answer["token"].as_str();
        self.token = Some(
            token
                .unwrap_or_else(|| panic!("login refused: {answer}"))
                .to_owned(),
        );
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// GETs `path` and parses the JSON answer.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.base_url);
        let response = self
            .request(reqwest::Method::GET, &url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        response
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    /// Polls `path` until `check` accepts the answer; fails after `seconds`.
    pub async fn wait_for(
        &self,
        path: &str,
        seconds: u64,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let attempts = seconds * 50;
        for _ in 0..attempts {
            let answer = self.get(path).await;
            if check(&answer) {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{what}: not seen in {path} within {seconds}s; last answer: {}",
            self.get(path).await
        );
    }

    /// Waits until the instance `instance` has at least one target.
    pub async fn wait_targets(&self, instance: &str) {
        self.wait_for(
            &format!("/api/instances/{instance}"),
            20,
            "the instance's targets",
            |i| i["targets"].as_array().is_some_and(|t| !t.is_empty()),
        )
        .await;
    }

    /// Waits (up to a minute) until job `job`'s log has a line containing `text`.
    pub async fn wait_log_line(&self, job: i64, text: &str) {
        self.wait_for(&format!("/api/logs/job/{job}"), 60, text, |log| {
            log.to_string().contains(text)
        })
        .await;
    }

    /// Waits until `/readyz` says ready.
    pub async fn wait_ready(&self) {
        self.wait_ready_within(10, String::new).await;
    }

    /// Waits up to `seconds` until `/readyz` says ready; on failure the panic message ends
    /// with what `diagnostics` reports (e.g. the container's log).
    pub async fn wait_ready_within(&self, seconds: u64, diagnostics: impl FnOnce() -> String) {
        let url = format!("{}/readyz", self.base_url);
        for _ in 0..seconds * 50 {
            if self
                .request(reqwest::Method::GET, &url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "marina did not become ready within {seconds}s\n{}",
            diagnostics()
        );
    }

    /// POSTs to `path`; returns the status code and the JSON answer.
    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base_url);
        let response = self
            .request(reqwest::Method::POST, &url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Triggers a backup of `instance` and returns the job id.
    /// POSTs `body` as JSON; answers the status and the JSON body (`null` when none).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base_url);
        let response = self
            .request(reqwest::Method::POST, &url)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn trigger(&self, instance: &str) -> i64 {
        let (status, answer) = self
            .post(&format!("/api/instances/{instance}/backup"))
            .await;
        assert_eq!(status, 202, "triggering {instance}: {answer}");
        answer["jobId"].as_i64().expect("jobId")
    }

    /// Waits until job `id` of `instance` reaches a final status and returns the job entry.
    pub async fn wait_job(&self, instance: &str, id: i64, seconds: u64) -> serde_json::Value {
        let path = format!("/api/status/{instance}");
        let answer = self
            .wait_for(&path, seconds, &format!("job {id} to finish"), |jobs| {
                jobs.as_array()
                    .is_some_and(|all| all.iter().any(|j| j["id"] == id && j["isActive"] == false))
            })
            .await;
        answer
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .unwrap()
            .clone()
    }

    /// Every log line of job `id`, oldest first, read page by page with `afterId`.
    pub async fn job_log_entries(&self, id: i64) -> Vec<serde_json::Value> {
        let mut entries: Vec<serde_json::Value> = Vec::new();
        loop {
            let path = match entries.last() {
                Some(last) => format!("/api/logs/job/{id}?afterId={}", last["id"]),
                None => format!("/api/logs/job/{id}"),
            };
            let page = self.get(&path).await;
            let page = page.as_array().expect("log lines").clone();
            let full = page.len() >= 1000;
            entries.extend(page);
            if !full {
                return entries;
            }
        }
    }

    /// The log lines of job `id`, as `level message` strings.
    pub async fn job_log(&self, id: i64) -> Vec<String> {
        self.job_log_entries(id)
            .await
            .iter()
            .map(|l| {
                format!(
                    "{} {}",
                    l["level"].as_str().unwrap_or(""),
                    l["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}
