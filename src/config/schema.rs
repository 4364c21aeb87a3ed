//! Marina's config schema: the fields of each section, their defaults, and the rules that
//! span several fields (SPEC §1). Reads the YAML tree with [`Decoder`], which collects every
//! problem, so a single run reports them all.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

use super::decode::{Decoder, FieldPath, Fields, Seen};
use super::yaml::{self, Node, Position};
use super::{ApiConfig, Backend, Config, ConfigError, Environment, Instance, Loaded};
use crate::model::{
    DbKind, DockerName, InstanceId, Retention, Schedule, Secret, TargetId, TargetKind, TargetSpec,
    VolumePath,
};

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

pub(super) const INSTANCE_FIELDS: &[&str] = &[
    "id",
    "repository",
    "customImage",
    "schedule",
    "timezone",
    "retention",
    "resticTimeout",
    "hookTimeout",
    "timeout",
    "catchUp",
    "stopAttached",
    "env",
    "targets",
];

pub(super) const TARGET_FIELDS: &[&str] = &[
    "volume",
    "db",
    "paths",
    "stopAttached",
    "preHook",
    "postHook",
    "dbKind",
    "dumpArgs",
    "allowEmpty",
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

/// Environment names Marina sets for custom images (SPEC §4.2); an instance cannot override them.
const RESERVED_ENV: [&str; 3] = ["MARINA_INSTANCE_ID", "MARINA_HOSTNAME", "MARINA_BACKUP_DIR"];

/// Any of these in an instance's `env` lets restic open the repository.
const RESTIC_PASSWORD_VARS: [&str; 3] = [
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
];

/// restic's repository prefixes; anything else with a colon is probably a typo.
const RESTIC_BACKENDS: [&str; 10] = [
    "local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone", "opendal",
];

/// Global settings that instances inherit.
struct Inherited {
    retention: Retention,
    restic_timeout: Duration,
    hook_timeout: Duration,
    timeout: Option<Duration>,
    timezone: Tz,
    catch_up: bool,
    stop_attached: bool,
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

/// The `instances` list, with ids checked for uniqueness.
fn instances(d: &mut Decoder<'_>, f: &Fields<'_>, inherited: &Inherited) -> Option<Vec<Instance>> {
    let instances_path = f.path("instances");
    let mut ids = Seen::new();
    let instances = match f.get("instances") {
        Some(node) => d.list(node, &instances_path, |d, n, p| {
            instance(d, n, p, inherited, &mut ids)
        }),
        None if f.key_position("instances").is_some() => Some(Vec::new()),
        None => {
            d.error(
                f.position,
                &instances_path,
                "is required but missing; list the backup instances here",
            );
            None
        }
    };
    if let Some(instances) = &instances
        && instances.is_empty()
    {
        let at = f.key_position("instances").unwrap_or(f.position);
        let message = "no instances are defined; nothing will be backed up";
        d.warn(Some(at), &instances_path, message);
    }

    instances
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

fn instance(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &FieldPath,
    inherited: &Inherited,
    ids: &mut Seen<InstanceId>,
) -> Option<Instance> {
    let f = d.mapping(node, path, INSTANCE_FIELDS)?;
    let id_node = f.required(d, "id");
    let id = id_node.and_then(|n| {
        let id = d.parse(n, &f.path("id"), InstanceId::parse)?;
        ids.check(d, id.clone(), n.position, &f.path("id"), |id, line| {
            format!("duplicate instance id `{id}` (first used on line {line})")
        });
        Some(id)
    });
    let schedule = f
        .required(d, "schedule")
        .and_then(|n| d.parse(n, &f.path("schedule"), Schedule::parse));
    let timezone = f
        .read(d, "timezone", timezone)
        .unwrap_or(inherited.timezone);
    let timeout = f
        .read(d, "timeout", Decoder::duration)
        .or(inherited.timeout);
    let hook_timeout = f
        .read(d, "hookTimeout", Decoder::duration)
        .unwrap_or(inherited.hook_timeout);
    // One deadline for restic's commands and for database dumps, on both backends.
    let restic_timeout = f
        .read(d, "resticTimeout", Decoder::duration)
        .unwrap_or(inherited.restic_timeout);
    let catch_up = f
        .read(d, "catchUp", Decoder::boolean)
        .unwrap_or(inherited.catch_up);
    let stop_attached = f
        .read(d, "stopAttached", Decoder::boolean)
        .unwrap_or(inherited.stop_attached);
    let is_restic = f.get("repository").is_some();
    let env = f
        .read(d, "env", |d, n, p| {
            d.string_map(n, p, |name| env_name(name, is_restic))
        })
        .unwrap_or_default();
    let mut target_ids = Seen::new();
    let targets = f.read(d, "targets", |d, n, p| {
        d.list(n, p, |d, n, p| target(d, n, p, &mut target_ids))
    });
    let backend = backend(d, &f, inherited, restic_timeout, &env);

    let instance = Instance {
        id: id?,
        backend: backend?,
        schedule: schedule?,
        timezone,
        timeout,
        hook_timeout,
        dump_timeout: restic_timeout,
        catch_up,
        stop_attached,
        env: env
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect::<BTreeMap<_, _>>(),
        targets: targets.unwrap_or_default(),
    };
    Some(instance)
}

fn backend(
    d: &mut Decoder<'_>,
    f: &Fields<'_>,
    inherited: &Inherited,
    restic_timeout: Duration,
    env: &[(String, String)],
) -> Option<Backend> {
    let retention_setting = f.read(d, "retention", retention);
    match (f.get("repository"), f.get("customImage")) {
        (Some(_), Some(_)) => {
            let at = f.key_position("customImage").unwrap_or(f.position);
            d.error(
                at,
                &f.path("customImage"),
                "set either `repository` (restic) or `customImage`, not both",
            );
            None
        }
        (None, None) => {
            d.error(
                f.position,
                &f.path,
                "has no backend; set `repository` (restic) or `customImage`",
            );
            None
        }
        (Some(node), None) => {
            let repository = d.parse(node, &f.path("repository"), restic_repository)?;
            if !env
                .iter()
                .any(|(name, _)| RESTIC_PASSWORD_VARS.contains(&name.as_str()))
            {
                let at = f.key_position("env").unwrap_or(f.position);
                d.warn(
                    Some(at),
                    &f.path("env"),
                    "sets none of RESTIC_PASSWORD, RESTIC_PASSWORD_FILE or RESTIC_PASSWORD_COMMAND; restic gets only the instance env, so it will not be able to open the repository",
                );
            }
            Some(Backend::Restic {
                repository: Secret::new(repository),
                retention: retention_setting.unwrap_or(inherited.retention),
                command_timeout: restic_timeout,
            })
        }
        (None, Some(node)) => {
            if let Some(at) = f.key_position("retention") {
                d.warn(
                    Some(at),
                    &f.path("retention"),
                    "is ignored for a custom image instance: the image owns its retention",
                );
            }
            let image = d.parse(node, &f.path("customImage"), image_text)?;
            Some(Backend::CustomImage { image })
        }
    }
}

fn target(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &FieldPath,
    seen: &mut Seen<TargetId>,
) -> Option<TargetSpec> {
    let f = d.mapping(node, path, TARGET_FIELDS)?;
    let (name_node, is_volume) = match (f.get("volume"), f.get("db")) {
        (Some(_), Some(_)) => {
            let at = f.key_position("db").unwrap_or(f.position);
            let message = "set either `volume` or `db` in one target, not both";
            d.error(at, &f.path("db"), message);
            return None;
        }
        (None, None) => {
            let message =
                "names nothing to back up; set `volume: <volume name>` or `db: <container name>`";
            d.error(f.position, path, message);
            return None;
        }
        (Some(node), None) => (node, true),
        (None, Some(node)) => (node, false),
    };
    let field = if is_volume { "volume" } else { "db" };
    let name = docker_name(d, name_node, &f.path(field));
    let (own, other, other_kind) = if is_volume {
        (["paths", "stopAttached"], ["dbKind", "dumpArgs"], "db")
    } else {
        (["dbKind", "dumpArgs"], ["paths", "stopAttached"], "volume")
    };
    for misplaced in other {
        if let Some(at) = f.key_position(misplaced) {
            d.error(
                at,
                &f.path(misplaced),
                format!("applies to {other_kind} targets only"),
            );
        }
    }
    let [first, second] = own;
    let kind = if is_volume {
        TargetKind::Volume {
            paths: f
                .read(d, first, volume_paths)
                .unwrap_or_else(|| vec![VolumePath::root()]),
            stop_attached: f.read(d, second, Decoder::boolean),
        }
    } else {
        TargetKind::Db {
            kind: f.read(d, first, db_kind),
            dump_args: f
                .read(d, second, |d, n, p| d.list(n, p, Decoder::text))
                .unwrap_or_default(),
        }
    };
    let pre_hook = f.read(d, "preHook", Decoder::nonempty);
    let post_hook = f.read(d, "postHook", Decoder::nonempty);
    let allow_empty = f.read(d, "allowEmpty", Decoder::boolean).unwrap_or(false);

    let id = if is_volume {
        TargetId::Volume(name?)
    } else {
        TargetId::Db(name?)
    };
    seen.check(d, id.clone(), name_node.position, path, |id, line| {
        format!("`{id}` is listed twice in this instance (first on line {line})")
    });
    Some(TargetSpec {
        id,
        kind,
        pre_hook,
        post_hook,
        allow_empty,
    })
}

/// A target's `paths`: at least one, each inside the volume.
fn volume_paths(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<Vec<VolumePath>> {
    let paths = d.list(node, path, |d, n, p| d.parse(n, p, VolumePath::parse))?;
    if paths.is_empty() {
        d.error(
            node.position,
            path,
            "lists no path; remove `paths` to back up the whole volume",
        );
        return None;
    }
    Some(paths)
}

/// `dbKind`: a supported engine, or `None` for `auto` (detect it from the image) and for an
/// unsupported value (already reported).
fn db_kind(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<DbKind> {
    d.parse(node, path, |text| match text.trim() {
        "auto" => Ok(None),
        other => other.parse::<DbKind>().map(Some),
    })
    .flatten()
}

fn timezone(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<Tz> {
    d.parse(node, path, |text| {
        text.trim().parse::<Tz>().map_err(|_| {
            format!("`{text}` is not an IANA time zone name such as UTC or Europe/Berlin")
        })
    })
}

/// No `timezone` in the file: the process's `TZ`, else UTC (SPEC §1).
fn timezone_from_env(d: &mut Decoder<'_>, env: &dyn Environment) -> Tz {
    let Some(value) = env.var("TZ").filter(|v| !v.is_empty()) else {
        return Tz::UTC;
    };
    // POSIX allows a leading ':' before a zone name.
    if let Ok(tz) = value.trim_start_matches(':').parse::<Tz>() {
        return tz;
    }
    let path = FieldPath::default().key("timezone");
    d.warn(None, &path, format!("the TZ environment variable (`{value}`) is not an IANA time zone name; schedules use UTC. Set `timezone` to choose a zone."));
    Tz::UTC
}

fn retention(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<Retention> {
    d.parse(node, path, str::parse::<Retention>)
}

fn docker_name(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<DockerName> {
    d.parse(node, path, |text| DockerName::parse(text.trim()))
}

fn absolute_path(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<PathBuf> {
    d.parse(node, path, |text| {
        let text = text.trim();
        if text.starts_with('/') {
            Ok(PathBuf::from(text))
        } else {
            Err(format!("`{text}` must be an absolute path"))
        }
    })
}

fn image_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        Err("must not be empty".into())
    } else if text.contains(char::is_whitespace) {
        Err(format!(
            "`{text}` is not an image reference (it contains white space)"
        ))
    } else {
        Ok(text.to_owned())
    }
}

fn image_reference(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<String> {
    d.parse(node, path, image_text)
}

/// A restic repository: a known `backend:` prefix, or an absolute local path. The value may
/// hold credentials, so messages never repeat it.
fn restic_repository(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.starts_with('/') {
        return Ok(text.to_owned());
    }
    match text.split_once(':') {
        Some((prefix, _)) if RESTIC_BACKENDS.contains(&prefix) => Ok(text.to_owned()),
        Some((prefix, _)) if !prefix.contains('/') => Err(format!(
            "`{prefix}:` is not a restic backend; use one of {}: or an absolute local path",
            RESTIC_BACKENDS.join(":, ")
        )),
        _ => Err("a local repository must be an absolute path".into()),
    }
}

/// Checks an `env` key; `is_restic` forbids `RESTIC_REPOSITORY`, which `repository` sets.
fn env_name(name: &str, is_restic: bool) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        Err(format!("`{name}` is not a valid environment variable name"))
    } else if is_restic && name == "RESTIC_REPOSITORY" {
        Err("conflicts with `repository`; remove it from env".into())
    } else if RESERVED_ENV.contains(&name) {
        Err(format!(
            "`{name}` is set by Marina for the backup container and cannot be overridden"
        ))
    } else {
        Ok(())
    }
}

/// An `http(s)://host[:port][/path]` base URL, without a trailing slash.
fn peer_url(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<String> {
    d.parse(node, path, |text| {
        let text = text.trim().trim_end_matches('/');
        let uri: http::Uri = text.parse().map_err(|_| format!("`{text}` is not a URL"))?;
        match (uri.scheme_str(), uri.authority(), uri.query()) {
            // Credentials in the URL would show in every answer that reports the peer.
            (_, Some(authority), _) if authority.as_str().contains('@') => Err(
                "a peer URL must not carry credentials; peers log in with `authPassword`".into(),
            ),
            (Some("http" | "https"), Some(_), None) => Ok(text.to_owned()),
            _ => Err(format!(
                "`{text}` must be an http:// or https:// base URL such as http://node2:8080"
            )),
        }
    })
}

/// `*` or an origin `scheme://host[:port]` (no path), as browsers send it.
fn cors_origin(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<String> {
    d.parse(node, path, |text| {
        let text = text.trim();
        if text == "*" {
            return Ok(text.to_owned());
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|_| format!("`{text}` is not an origin"))?;
        match (
            uri.scheme_str(),
            uri.authority(),
            uri.path_and_query().map(http::uri::PathAndQuery::as_str),
        ) {
            (Some(_), Some(_), None | Some("" | "/")) => Ok(text.trim_end_matches('/').to_owned()),
            _ => Err(format!(
                "`{text}` must be `*` or an origin such as https://dashboard.example.com"
            )),
        }
    })
}
