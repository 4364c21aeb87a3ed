//! The `instances` section: each instance's fields, its backend, its targets, and what it
//! inherits from the globals.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono_tz::Tz;

use super::decode::{Decoder, FieldPath, Fields, Seen};
use super::values::{
    command, db_kind, docker_name, env_name, image_text, restic_repository, retention, timezone,
    volume_paths,
};
use super::yaml::Node;
use super::{Backend, Instance};
use crate::model::{
    InstanceId, Retention, Schedule, Secret, TargetId, TargetKind, TargetSpec, VolumePath,
};

pub(super) const INSTANCE_FIELDS: &[&str] = &[
    "id",
    "repository",
    "customImage",
    "restoreEntrypoint",
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

/// Any of these in an instance's `env` lets restic open the repository.
pub(super) const RESTIC_PASSWORD_VARS: [&str; 3] = [
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
];

/// Global settings that instances inherit.
pub(super) struct Inherited {
    pub(super) retention: Retention,
    pub(super) restic_timeout: Duration,
    pub(super) hook_timeout: Duration,
    pub(super) timeout: Option<Duration>,
    pub(super) timezone: Tz,
    pub(super) catch_up: bool,
    pub(super) stop_attached: bool,
}

/// The `instances` list, with ids checked for uniqueness.
pub(super) fn instances(
    d: &mut Decoder<'_>,
    f: &Fields<'_>,
    inherited: &Inherited,
) -> Option<Vec<Instance>> {
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

pub(super) fn instance(
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

pub(super) fn backend(
    d: &mut Decoder<'_>,
    f: &Fields<'_>,
    inherited: &Inherited,
    restic_timeout: Duration,
    env: &[(String, String)],
) -> Option<Backend> {
    let retention_setting = f.read(d, "retention", retention);
    let restore_entrypoint = f.read(d, "restoreEntrypoint", command);
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
            if let Some(at) = f.key_position("restoreEntrypoint") {
                d.warn(
                    Some(at),
                    &f.path("restoreEntrypoint"),
                    "is ignored for a restic instance: restic restores from its own snapshots",
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
            Some(Backend::CustomImage {
                image,
                restore_entrypoint,
            })
        }
    }
}

pub(super) fn target(
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
