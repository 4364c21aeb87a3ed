//! The client half of the commands that ask a running `marina run` for something
//! (`marina backup`, `marina snapshots`, `marina restore`): where the daemon listens, logging
//! in with the config's password, and turning its answers into [`AppError`]s that say what
//! to do.

use std::path::Path;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{AppError, load_config, local_url};

/// A logged-in connection to the daemon.
pub struct Daemon {
    /// `http://host:port`, without a trailing `/`; every error names it.
    base: String,
    /// One client, so every request reuses the connection.
    http: reqwest::Client,
    /// The session token from `POST /api/auth/login`, when the config has an `authPassword`.
    token: Option<String>,
}

/// One answer of the daemon: its status and its JSON body (`null` when it sent none).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body as JSON; `null` when it was empty or not JSON.
    pub body: Value,
}

impl Daemon {
    /// Finds the daemon at `url`, else at the `apiBind:apiPort` of the config (loopback when
    /// it binds every address), and logs in when the config has an `authPassword`. With
    /// `--url` and no readable config, requests go without a password.
    pub async fn connect(config_path: &Path, url: Option<String>) -> Result<Self, AppError> {
        let config = match (load_config(config_path), &url) {
            (Ok((loaded, _)), _) => Some(loaded.config),
            (Err(_), Some(_)) => None,
            (Err(e), None) => return Err(e),
        };
        let base = match (url, &config) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(config)) => local_url(&config.api),
            (None, None) => {
                return Err(AppError::Refused(
                    "no daemon address: give --url or a config".into(),
                ));
            }
        };
        let mut daemon = Self {
            base,
            http: reqwest::Client::new(),
            token: None,
        };
        if let Some(password) = config.as_ref().and_then(|c| c.api.auth_password.as_ref()) {
            daemon.token = Some(daemon.login(password.expose()).await?);
        }
        Ok(daemon)
    }

    /// The daemon's base URL, for messages.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /api/auth/login`; the password travels in the body only, never in a URL.
    async fn login(&self, password: &str) -> Result<String, AppError> {
        let login = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&serde_json::json!({ "password": password }))
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        if !login.status().is_success() {
            return Err(AppError::Refused(format!(
                "logging in to Marina at {} failed ({}); check authPassword in the config",
                self.base,
                login.status()
            )));
        }
        let token: Value = login
            .json()
            .await
            .map_err(|source| self.unreachable(source))?;
        token["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.unexpected("the login answer has no `token`".to_owned()))
    }

    /// `GET path?query`; `query` is encoded here, so values may hold `:` or `&`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer, AppError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            AppError::Refused(format!(
                "`{}` is not a URL ({e}); give --url as http://HOST:PORT",
                self.base
            ))
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(self.http.get(url)).await
    }

    /// `POST path`, with `body` as JSON when given.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Answer, AppError> {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder) -> Result<Answer, AppError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| self.unreachable(source))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// Reads `body` (an answer's, or a part of one) as `T`; a body of another shape means
    /// the daemon speaks another version of the API.
    pub fn parse<T: DeserializeOwned>(&self, body: &Value, what: &str) -> Result<T, AppError> {
        T::deserialize(body).map_err(|e| self.unexpected(format!("{what}: {e}")))
    }

    /// What an answer the command did not hope for says: the daemon's own `error` message
    /// (which says what to do), else its status.
    #[must_use]
    pub fn error_message(&self, answer: &Answer) -> String {
        answer.body["error"].as_str().map_or_else(
            || format!("Marina at {} answered {}", self.base, answer.status),
            str::to_owned,
        )
    }

    /// The error an answer the command did not hope for becomes ([`Self::error_message`]).
    #[must_use]
    pub fn refused(&self, answer: &Answer) -> AppError {
        AppError::Refused(self.error_message(answer))
    }

    fn unreachable(&self, source: reqwest::Error) -> AppError {
        AppError::Unreachable {
            url: self.base.clone(),
            source,
        }
    }

    fn unexpected(&self, detail: String) -> AppError {
        AppError::Unexpected {
            url: self.base.clone(),
            detail,
        }
    }
}
