//! Readers of single values that several sections share: paths, names, time zones,
//! images, repositories, environment names, URLs. Each reports its own problem at the value.

use std::path::PathBuf;

use chrono_tz::Tz;

use super::Environment;
use super::decode::{Decoder, FieldPath};
use super::yaml::{Node, Value};
use crate::model::{DbKind, DockerName, Retention, VolumePath};

/// Environment names Marina sets for custom images (SPEC §4.2, and the restore contract of
/// docs/custom-backends.md); an instance cannot override them.
pub(super) const RESERVED_ENV: [&str; 7] = [
    "MARINA_INSTANCE_ID",
    "MARINA_HOSTNAME",
    "MARINA_BACKUP_DIR",
    "MARINA_RESTORE",
    "MARINA_RESTORE_TARGET",
    "MARINA_RESTORE_SNAPSHOT",
    "MARINA_PRE_RESTORE",
];

/// The shell a command line in the config (`restoreEntrypoint: "…"`) runs with, as hooks
/// run with `sh -c`.
const COMMAND_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A command: a command line, run with `/bin/sh -c` (written as one string), or the program
/// and its arguments as they are (a list, like an exec-form ENTRYPOINT), whose first item
/// must name the program.
pub(super) fn command(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<Vec<String>> {
    if matches!(node.value, Value::Mapping(_)) {
        d.error(
            node.position,
            path,
            "expected a command line or a list of the program and its arguments, found a mapping",
        );
        return None;
    }
    if matches!(node.value, Value::Sequence(_)) {
        let argv = d.list(node, path, Decoder::text)?;
        match argv.first() {
            Some(program) if !program.trim().is_empty() => Some(argv),
            Some(_) => {
                d.error(
                    node.position,
                    &path.index(0),
                    "must name the program to run",
                );
                None
            }
            None => {
                d.error(
                    node.position,
                    path,
                    "lists no command; write the program and its arguments, or one command line",
                );
                None
            }
        }
    } else {
        let line = d.nonempty(node, path)?;
        Some(
            COMMAND_SHELL
                .iter()
                .map(|part| (*part).to_owned())
                .chain(std::iter::once(line))
                .collect(),
        )
    }
}

/// restic's repository prefixes; anything else with a colon is probably a typo.
pub(super) const RESTIC_BACKENDS: [&str; 10] = [
    "local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone", "opendal",
];

/// A target's `paths`: at least one, each inside the volume.
pub(super) fn volume_paths(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &FieldPath,
) -> Option<Vec<VolumePath>> {
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
pub(super) fn db_kind(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<DbKind> {
    d.parse(node, path, |text| match text.trim() {
        "auto" => Ok(None),
        other => other.parse::<DbKind>().map(Some),
    })
    .flatten()
}

pub(super) fn timezone(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<Tz> {
    d.parse(node, path, |text| {
        text.trim().parse::<Tz>().map_err(|_| {
            format!("`{text}` is not an IANA time zone name such as UTC or Europe/Berlin")
        })
    })
}

/// No `timezone` in the file: the process's `TZ`, else UTC (SPEC §1).
pub(super) fn timezone_from_env(d: &mut Decoder<'_>, env: &dyn Environment) -> Tz {
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

pub(super) fn retention(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<Retention> {
    d.parse(node, path, str::parse::<Retention>)
}

pub(super) fn docker_name(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &FieldPath,
) -> Option<DockerName> {
    d.parse(node, path, |text| DockerName::parse(text.trim()))
}

pub(super) fn absolute_path(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<PathBuf> {
    d.parse(node, path, |text| {
        let text = text.trim();
        if text.starts_with('/') {
            Ok(PathBuf::from(text))
        } else {
            Err(format!("`{text}` must be an absolute path"))
        }
    })
}

pub(super) fn image_text(text: &str) -> Result<String, String> {
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

pub(super) fn image_reference(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &FieldPath,
) -> Option<String> {
    d.parse(node, path, image_text)
}

/// A restic repository: a known `backend:` prefix, or an absolute local path. The value may
/// hold credentials, so messages never repeat it.
pub(super) fn restic_repository(text: &str) -> Result<String, String> {
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
pub(super) fn env_name(name: &str, is_restic: bool) -> Result<(), String> {
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
            "`{name}` is set by Marina for the custom image's container and cannot be overridden"
        ))
    } else {
        Ok(())
    }
}

/// An `http(s)://host[:port][/path]` base URL, without a trailing slash.
pub(super) fn peer_url(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<String> {
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
pub(super) fn cors_origin(d: &mut Decoder<'_>, node: &Node, path: &FieldPath) -> Option<String> {
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
