//! Marina's config schema: the fields of each section, their defaults, and the rules that
//! span several fields (SPEC §1). Reads the YAML tree with [`Decoder`], which collects every
//! problem, so a single run reports them all.
//!
//! This file holds the entry point and the global settings; the `instances` section is in
//! `instance.rs` and the readers of single values in `values.rs`.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use super::decode::{Decoder, FieldPath, Fields, Seen};
use super::instance::{Inherited, instances};
use super::values::{
    absolute_path, cors_origin, image_reference, peer_url, retention, timezone, timezone_from_env,
};
use super::yaml::{self, Position};
use super::{ApiConfig, Config, ConfigError, Environment, Loaded};
use crate::model::Secret;

pub(super) const GLOBAL_FIELDS: &[&str] = &[
    "instances",
    "retention",
    "stopAttached",
    "resticTimeout",
    "hookTimeout",
    "timeout",
    "timezone",
    "catchUp",
    "maxConcurrentJobs",
    "stagingDir",
    "helperImage",
    "resyncInterval",
    "dbPath",
    "resticBinary",
    "shutdownGrace",
    "logRetention",
    "apiPort",
    "apiBind",
    "corsOrigins",
    "nodeName",
    "authPassword",
    "authPasswordFile",
    "metricsAuth",
    "peers",
    "peerTimeout",
];

/// Built-in defaults (SPEC §1), used where neither the instance nor the globals say.
mod default {
    use std::time::Duration;

    pub const MAX_CONCURRENT_JOBS: usize = 2;
    pub const STAGING_DIR: &str = "/backup";
    pub const HELPER_IMAGE: &str = "alpine:3.20";
    pub const RESYNC_INTERVAL: Duration = Duration::from_mins(5);
    pub const DB_PATH: &str = "/var/lib/marina/marina.db";
    pub const RESTIC_BINARY: &str = "restic";
    pub const RESTIC_TIMEOUT: Duration = Duration::from_hours(1);
    /// Long enough for a `sync` or a flush, short enough that a stuck hook is noticed.
    pub const HOOK_TIMEOUT: Duration = Duration::from_mins(5);
    pub const SHUTDOWN_GRACE: Duration = Duration::from_mins(5);
    /// Long enough for a loaded peer across a LAN, short enough that a dead one does not
    /// stall the dashboard.
    pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);
    pub const LOG_RETENTION: Duration = Duration::from_hours(30 * 24);
    pub const API_PORT: u16 = crate::config::DEFAULT_API_PORT;
    pub const API_BIND: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
}

/// Decodes and validates a whole config file.
pub fn decode(text: &str, file: &str, env: &dyn Environment) -> Result<Loaded, ConfigError> {
    let lookup = |name: &str| env.var(name);
    let mut d = Decoder::new(file, &lookup);
    let root_path = FieldPath::default();
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            // An empty file is refused rather than read as "no instances": an editor that
            // truncates before writing must not make a hot reload drop every instance.
            d.error(
                Position { line: 1, column: 1 },
                &root_path,
                "the config file is empty; it needs at least `instances:`",
            );
            return finish(text, d, None);
        }
        Err(e) => {
            d.error(
                e.position,
                &root_path,
                format!("invalid YAML: {}", e.message),
            );
            return finish(text, d, None);
        }
    };
    let Some(f) = d.mapping(&root, &root_path, GLOBAL_FIELDS) else {
        return finish(text, d, None);
    };
    let config = globals(&mut d, &f, env);
    finish(text, d, config)
}

/// `position` moved into the text whose line lengths (in characters) are `lengths`, if it
/// lies past a line's end or past the last line. The YAML parser places the end of a text
/// without a final newline (a syntax error there, or an empty value) on the line after it,
/// which no editor can show; the place just past the last character is what it means.
fn within(lengths: &[usize], position: Position) -> Position {
    let line = position.line.clamp(1, lengths.len().max(1));
    let end = lengths.get(line - 1).map_or(1, |length| length + 1);
    if line == position.line {
        Position {
            line,
            column: position.column.clamp(1, end),
        }
    } else {
        Position { line, column: end }
    }
}

/// The length in characters of each line of `text`, split at YAML's line breaks (`\r\n`,
/// `\r` and `\n`).
fn line_lengths(text: &str) -> Vec<usize> {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(|line| line.chars().count())
        .collect()
}

/// Moves every position into `text`, sorts the diagnostics into file order and decides:
/// accepted with warnings, or rejected.
fn finish(text: &str, mut d: Decoder<'_>, config: Option<Config>) -> Result<Loaded, ConfigError> {
    let has_errors = d.has_errors();
    let mut diagnostics = std::mem::take(&mut d.diagnostics);
    let lengths = line_lengths(text);
    for diagnostic in &mut diagnostics {
        diagnostic.position = diagnostic.position.map(|p| within(&lengths, p));
    }
    diagnostics.sort_by_key(|diag| (diag.position.is_none(), diag.position));
    match config {
        Some(config) if !has_errors => Ok(Loaded {
            config,
            warnings: diagnostics,
        }),
        _ => Err(ConfigError { diagnostics }),
    }
}

fn globals(d: &mut Decoder<'_>, f: &Fields<'_>, env: &dyn Environment) -> Option<Config> {
    let timezone = match f.read(d, "timezone", timezone) {
        Some(tz) => tz,
        None => timezone_from_env(d, env),
    };
    let inherited = Inherited {
        retention: f.read(d, "retention", retention).unwrap_or_default(),
        restic_timeout: f
            .read(d, "resticTimeout", Decoder::duration)
            .unwrap_or(default::RESTIC_TIMEOUT),
        hook_timeout: f
            .read(d, "hookTimeout", Decoder::duration)
            .unwrap_or(default::HOOK_TIMEOUT),
        timeout: f.read(d, "timeout", Decoder::duration),
        timezone,
        catch_up: f.read(d, "catchUp", Decoder::boolean).unwrap_or(true),
        stop_attached: f.read(d, "stopAttached", Decoder::boolean).unwrap_or(false),
    };

    let max_concurrent_jobs = f
        .read(d, "maxConcurrentJobs", |d, n, p| {
            d.parse(n, p, |text| {
                text.trim()
                    .parse::<usize>()
                    .ok()
                    .and_then(NonZeroUsize::new)
                    .ok_or_else(|| format!("`{text}` must be a whole number of at least 1"))
            })
        })
        .unwrap_or(NonZeroUsize::new(default::MAX_CONCURRENT_JOBS).unwrap_or(NonZeroUsize::MIN));
    let staging_dir = f
        .read(d, "stagingDir", absolute_path)
        .unwrap_or_else(|| default::STAGING_DIR.into());
    let helper_image = f
        .read(d, "helperImage", image_reference)
        .unwrap_or_else(|| default::HELPER_IMAGE.into());
    let resync_interval = f
        .read(d, "resyncInterval", Decoder::duration)
        .unwrap_or(default::RESYNC_INTERVAL);
    let db_path = f
        .read(d, "dbPath", Decoder::nonempty)
        .map_or_else(|| default::DB_PATH.into(), PathBuf::from);
    let restic_binary = f
        .read(d, "resticBinary", Decoder::nonempty)
        .map_or_else(|| default::RESTIC_BINARY.into(), PathBuf::from);
    let shutdown_grace = f
        .read(d, "shutdownGrace", Decoder::duration)
        .unwrap_or(default::SHUTDOWN_GRACE);
    let log_retention = f
        .read(d, "logRetention", Decoder::duration)
        .unwrap_or(default::LOG_RETENTION);
    let mut seen_peers = Seen::new();
    let peers = f
        .read(d, "peers", |d, n, p| {
            d.list(n, p, |d, n, p| {
                let url = peer_url(d, n, p)?;
                seen_peers.check(d, url.clone(), n.position, p, |url, line| {
                    format!("`{url}` is listed twice (first on line {line})")
                });
                Some(url)
            })
        })
        .unwrap_or_default();
    let peer_timeout = f
        .read(d, "peerTimeout", Decoder::duration)
        .unwrap_or(default::PEER_TIMEOUT);
    let node_name = match f.read(d, "nodeName", Decoder::nonempty) {
        Some(name) => Some(name),
        None if f.get("nodeName").is_some() => None,
        None => env.hostname().or_else(|| {
            d.warn(
                None,
                &f.path("nodeName"),
                "the host name cannot be read; using `localhost`. Set `nodeName`.",
            );
            Some("localhost".into())
        }),
    };
    let api = api(d, f);

    let instances = instances(d, f, &inherited);

    Some(Config {
        instances: instances?,
        node_name: node_name?,
        max_concurrent_jobs,
        staging_dir,
        helper_image,
        resync_interval,
        db_path,
        restic_binary,
        shutdown_grace,
        log_retention,
        api: api?,
        peers,
        peer_timeout,
    })
}

fn api(d: &mut Decoder<'_>, f: &Fields<'_>) -> Option<ApiConfig> {
    let port = f
        .read(d, "apiPort", |d, n, p| {
            d.parse(n, p, |text| {
                text.trim()
                    .parse::<u16>()
                    .map_err(|_| format!("`{text}` is not a port number (0 to 65535)"))
            })
        })
        .unwrap_or(default::API_PORT);
    let bind = f
        .read(d, "apiBind", |d, n, p| {
            d.parse(n, p, |text| {
                text.trim().parse::<IpAddr>().map_err(|_| {
                    format!("`{text}` is not an IP address; use e.g. 0.0.0.0, 127.0.0.1 or ::")
                })
            })
        })
        .unwrap_or(default::API_BIND);
    let cors_origins = f
        .read(d, "corsOrigins", |d, n, p| d.list(n, p, cors_origin))
        .unwrap_or_default();
    let metrics_auth = f.read(d, "metricsAuth", Decoder::boolean).unwrap_or(false);

    let password = f.read(d, "authPassword", Decoder::text);
    let password_file = f.read(d, "authPasswordFile", Decoder::nonempty);
    let auth_password = match (password, password_file) {
        (Some(_), Some(_)) => {
            let at = f.key_position("authPasswordFile").unwrap_or(f.position);
            d.error(
                at,
                &f.path("authPasswordFile"),
                "set either `authPassword` or `authPasswordFile`, not both",
            );
            return None;
        }
        // SPEC §1: an empty password means no authentication.
        (Some(password), None) => Some(password).filter(|p| !p.is_empty()),
        (None, Some(file)) => {
            let at = f.get("authPasswordFile").map_or(f.position, |n| n.position);
            Some(read_password_file(
                d,
                at,
                &f.path("authPasswordFile"),
                &file,
            )?)
        }
        (None, None) => None,
    };
    Some(ApiConfig {
        bind,
        port,
        cors_origins,
        auth_password: auth_password.map(Secret::new),
        metrics_auth,
    })
}

/// Reads a password file (e.g. a Swarm or Kubernetes secret), dropping the final newline.
fn read_password_file(
    d: &mut Decoder<'_>,
    at: Position,
    path: &FieldPath,
    file: &str,
) -> Option<String> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let password = text.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                d.error(at, path, format!("`{file}` is empty; put the password in it, or remove `authPasswordFile` to run without authentication"));
                None
            } else {
                Some(password.to_owned())
            }
        }
        Err(e) => {
            d.error(at, path, format!("cannot read `{file}`: {e}"));
            None
        }
    }
}
