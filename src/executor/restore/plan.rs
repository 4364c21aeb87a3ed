//! A restore's plan: which snapshot, where its data goes, what is stopped, saved, created or
//! replaced on the way, and what stands in the way — worked out from the repository (or the
//! custom image's restore contract) and the engine as they are now, changing nothing. The
//! dry run shows it; the restore job works it out again when it starts and follows it.
//!
//! A custom image's backups are known to the image alone: its plan names the image run that
//! fetches the backup first, and leaves what only that run can tell (the backup's time, its
//! size) unknown rather than guessed.

use chrono::{DateTime, Utc};

use super::points::point;
use crate::backend::format_bytes;
use crate::backend::restic::{Restic, SnapshotInfo};
use crate::config::{Backend, Config, Instance};
use crate::docker::{
    ContainerRef, DEFAULT_RESTORE_COMMAND, PullPolicy, Runtime, RuntimeError, VolumeDetails,
};
use crate::executor::sizes::Sizes;
use crate::model::{
    ContainerInfo, ContainerState, DbKind, DockerName, PRE_RESTORE_TAG, Refusal, RefusalKind,
    RestorePlan, RestorePoint, RestoreRequest, RestoreStep, SnapshotChoice, TargetId, TargetKind,
    VolumePath,
};
use crate::reconcile::graph::{Found, Target};

/// A plan with what carrying it out needs besides what it shows.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// What the dry run shows.
    pub plan: RestorePlan,
    /// Where the backup comes from.
    pub origin: Origin,
    /// Where the data comes from and goes to, by kind of target.
    pub source: Source,
}

impl Planned {
    /// The backup restored, in few words: restic's short id, or what was asked of a custom
    /// image.
    pub(crate) fn snapshot_name(&self) -> &str {
        match &self.origin {
            Origin::Snapshot { snapshot, .. } => &snapshot.short_id,
            Origin::Image(_) => &self.plan.snapshot.id,
        }
    }
}

/// Where a restore's backup is.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// A snapshot in the instance's restic repository.
    Snapshot {
        /// The snapshot restored.
        snapshot: Box<SnapshotInfo>,
        /// The instance's restic repository.
        restic: Box<Restic>,
    },
    /// A backup only the instance's custom image knows: the image is run to fetch it.
    Image(ImageRestore),
}

/// How a custom image is run to fetch a backup (the restore contract of
/// docs/custom-backends.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRestore {
    /// The instance's image.
    pub image: String,
    /// The program and its arguments: `restoreEntrypoint`, or `/restore.sh`.
    pub command: Vec<String>,
    /// The backup asked for, handed to the image as `MARINA_RESTORE_SNAPSHOT`.
    pub snapshot: SnapshotChoice,
}

/// Where a restore's data lies in its snapshot (or the image's run directory), and what it
/// lands in.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A volume's files.
    Volume {
        /// Each directory the snapshot holds (for a custom image: its place in the staging
        /// layout), with the path inside the volume it came from.
        paths: Vec<(String, VolumePath)>,
        /// The volume as it is now, when it exists.
        original: Option<VolumeDetails>,
        /// The running containers that mount it (stopped for an in-place restore).
        mounters: Vec<ContainerRef>,
        /// The target as configured or labelled, when it still is.
        target: Option<Box<Target>>,
    },
    /// A database dump.
    Db {
        /// The dump's path in the snapshot (`/<container>/dump.sql`; for a custom image
        /// `dbs/<container>/dump.sql` in its run directory).
        file: String,
        /// The engine.
        kind: DbKind,
        /// The database's container as it is now.
        container: ContainerInfo,
        /// The target as configured or labelled.
        target: Box<Target>,
    },
}

/// Works out the plan of `request` for `instance`, whose targets are `targets`; `now` names
/// a default destination. `owner` labels the container made to look for a custom image's
/// `/restore.sh`.
#[allow(clippy::too_many_arguments)] // Each is an input of the plan; a struct would only rename them.
pub(crate) async fn plan<R: Runtime>(
    runtime: &R,
    config: &Config,
    instance: &Instance,
    targets: &[Target],
    request: &RestoreRequest,
    sizes: &Sizes,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Planned, Refusal> {
    request
        .check()
        .map_err(|message| Refusal::new(RefusalKind::Invalid, message))?;
    let target = targets.iter().find(|t| t.spec.id == request.target);
    let destination = destination(request, now);
    if let Backend::CustomImage {
        image,
        restore_entrypoint,
    } = &instance.backend
    {
        let command = restore_command(
            runtime,
            instance,
            image,
            restore_entrypoint.as_deref(),
            owner,
        )
        .await?;
        let image = ImageRestore {
            image: image.clone(),
            command,
            snapshot: request.snapshot.clone(),
        };
        return plan_image(runtime, instance, request, target, destination, image).await;
    }
    plan_snapshot(
        runtime,
        config,
        instance,
        request,
        target,
        destination,
        sizes,
    )
    .await
}

/// The plan of a restore from one of the instance's restic snapshots.
async fn plan_snapshot<R: Runtime>(
    runtime: &R,
    config: &Config,
    instance: &Instance,
    request: &RestoreRequest,
    target: Option<&Target>,
    destination: DockerName,
    sizes: &Sizes,
) -> Result<Planned, Refusal> {
    let restic = Restic::for_instance(config, instance).ok_or_else(|| {
        Refusal::new(
            RefusalKind::Invalid,
            format!("instance `{}` has no restic repository", instance.id),
        )
    })?;
    let snapshot = choose_snapshot(&restic, instance, request).await?;
    let size = sizes.of(&restic, &snapshot).await.map_err(|e| {
        Refusal::new(
            RefusalKind::Unavailable,
            format!(
                "cannot count what snapshot {} restores: {e}",
                snapshot.short_id
            ),
        )
    })?;
    let mut plan = RestorePlan {
        instance: instance.id.clone(),
        target: request.target.clone(),
        snapshot: point(&snapshot, Some(size)),
        in_place: request.in_place,
        destination: destination.clone(),
        files: Some(size.entries),
        bytes: Some(size.bytes),
        steps: Vec::new(),
        conflicts: Vec::new(),
    };
    let safety = |what: &str, name: &DockerName| RestoreStep {
        action: "save safety snapshot",
        subject: format!("of {what} {name}, tagged {PRE_RESTORE_TAG}"),
    };
    let source = match &request.target {
        TargetId::Volume(name) => {
            let configured = configured_paths(target);
            let paths = volume_paths(&snapshot.paths, configured).ok_or_else(|| {
                Refusal::new(
                    RefusalKind::Invalid,
                    format!(
                        "snapshot {} holds no directory of volume {name} (its paths: {}); it is not a volume snapshot",
                        snapshot.short_id,
                        snapshot.paths.join(", ")
                    ),
                )
            })?;
            let restore_step = RestoreStep {
                action: "restore files",
                subject: format!(
                    "{} entries, {} from snapshot {} into volume {destination} ({})",
                    size.entries,
                    format_bytes(size.bytes),
                    snapshot.short_id,
                    shown_paths(&paths)
                ),
            };
            let steps = VolumeSteps {
                safety: safety("volume", name),
                restore: restore_step,
            };
            plan_volume(runtime, &mut plan, paths, name, target, steps).await?
        }
        TargetId::Db(name) => {
            let (target, container, kind) = db_target(&plan, name, target)?;
            let file = match snapshot.paths.as_slice() {
                [file] if file.ends_with(kind.dump_file_name()) => file.clone(),
                paths => {
                    return Err(Refusal::new(
                        RefusalKind::Invalid,
                        format!(
                            "snapshot {} holds {}, not a {kind} dump ({}); pick a snapshot of db:{name}",
                            snapshot.short_id,
                            paths.join(", "),
                            kind.dump_file_name()
                        ),
                    ));
                }
            };
            let safety = safety("database", name);
            plan_db(
                runtime, &mut plan, name, target, container, kind, file, safety,
            )
            .await?
        }
    };
    Ok(Planned {
        plan,
        origin: Origin::Snapshot {
            snapshot: Box::new(snapshot),
            restic: Box::new(restic),
        },
        source,
    })
}

/// The command that restores with `image`: `restoreEntrypoint` when the instance sets one,
/// else `/restore.sh` when the image holds it (asked of the engine; the image is pulled
/// when it is missing, as the job would). Neither: the instance has no restore contract,
/// and the refusal says what to add.
async fn restore_command<R: Runtime>(
    runtime: &R,
    instance: &Instance,
    image: &str,
    configured: Option<&[String]>,
    owner: &str,
) -> Result<Vec<String>, Refusal> {
    if let Some(command) = configured {
        return Ok(command.to_vec());
    }
    match runtime
        .image_has_file(image, DEFAULT_RESTORE_COMMAND, owner, PullPolicy::IfMissing)
        .await
    {
        Ok(true) => Ok(vec![DEFAULT_RESTORE_COMMAND.to_owned()]),
        Ok(false) => Err(Refusal::new(
            RefusalKind::Invalid,
            format!(
                "instance `{id}` has no restore contract: its image {image} has no {DEFAULT_RESTORE_COMMAND} and the instance sets no `restoreEntrypoint`. Add an executable {DEFAULT_RESTORE_COMMAND} to the image, or set `restoreEntrypoint` on instance `{id}` in the config to the command that restores (see \"Restore contract\" in docs/custom-backends.md)",
                id = instance.id
            ),
        )),
        Err(e @ RuntimeError::ImageMissing { .. }) => Err(Refusal::new(
            RefusalKind::Unavailable,
            format!(
                "cannot look for {DEFAULT_RESTORE_COMMAND} in the image of instance `{}`: {e}",
                instance.id
            ),
        )),
        Err(e) => Err(Refusal::new(
            RefusalKind::Unavailable,
            format!(
                "cannot ask the Docker engine whether image {image} of instance `{}` has {DEFAULT_RESTORE_COMMAND}: {e}",
                instance.id
            ),
        )),
    }
}

/// The plan of a restore through a custom image: the image's run first, then the same
/// steps as from a snapshot, with the run directory as the source.
async fn plan_image<R: Runtime>(
    runtime: &R,
    instance: &Instance,
    request: &RestoreRequest,
    target: Option<&Target>,
    destination: DockerName,
    image: ImageRestore,
) -> Result<Planned, Refusal> {
    let mut plan = RestorePlan {
        instance: instance.id.clone(),
        target: request.target.clone(),
        snapshot: RestorePoint::asked(&request.snapshot),
        in_place: request.in_place,
        destination: destination.clone(),
        files: None,
        bytes: None,
        steps: vec![RestoreStep {
            action: "run image",
            subject: format!(
                "{} with MARINA_RESTORE=1 (snapshot {} of {}): {}",
                image.image,
                request.snapshot,
                request.target,
                image.command.join(" ")
            ),
        }],
        conflicts: Vec::new(),
    };
    let safety = |what: &str, name: &DockerName| RestoreStep {
        action: "save safety backup",
        subject: format!(
            "of {what} {name}: image {} backs it up with MARINA_PRE_RESTORE=1",
            image.image
        ),
    };
    let source = match &request.target {
        TargetId::Volume(name) => {
            let inside = configured_paths(target)
                .map_or_else(|| vec![VolumePath::root()], <[VolumePath]>::to_vec);
            let paths: Vec<(String, VolumePath)> = inside
                .into_iter()
                .map(|path| (layout_path(name, &path), path))
                .collect();
            let steps = VolumeSteps {
                safety: safety("volume", name),
                restore: RestoreStep {
                    action: "restore files",
                    subject: format!(
                        "from the image's vol/{name} into volume {destination} ({})",
                        shown_paths(&paths)
                    ),
                },
            };
            plan_volume(runtime, &mut plan, paths, name, target, steps).await?
        }
        TargetId::Db(name) => {
            let (target, container, kind) = db_target(&plan, name, target)?;
            let file = format!("dbs/{name}/{}", kind.dump_file_name());
            let safety = safety("database", name);
            plan_db(
                runtime, &mut plan, name, target, container, kind, file, safety,
            )
            .await?
        }
    };
    Ok(Planned {
        plan,
        origin: Origin::Image(image),
        source,
    })
}

/// Where a volume path lies in the staging layout a custom image fills:
/// `vol/<volume>/<path>`.
fn layout_path(volume: &DockerName, path: &VolumePath) -> String {
    if path.is_root() {
        format!("vol/{volume}")
    } else {
        format!("vol/{volume}/{}", path.relative())
    }
}

/// The paths of a volume target as configured or labelled, if it still is one.
fn configured_paths(target: Option<&Target>) -> Option<&[VolumePath]> {
    target.and_then(|t| match &t.spec.kind {
        TargetKind::Volume { paths, .. } => Some(paths.as_slice()),
        TargetKind::Db { .. } => None,
    })
}

fn shown_paths(paths: &[(String, VolumePath)]) -> String {
    paths
        .iter()
        .map(|(_, path)| path.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The steps of a volume restore that depend on where the backup is.
struct VolumeSteps {
    /// Saving what an in-place restore replaces.
    safety: RestoreStep,
    /// Putting the files into the volume.
    restore: RestoreStep,
}

/// The snapshot `request` names: its id (a prefix will do) among the instance's snapshots,
/// or the newest backup of its target (safety snapshots of earlier restores left out). A
/// name that is no restic id is refused before the repository is asked.
async fn choose_snapshot(
    restic: &Restic,
    instance: &Instance,
    request: &RestoreRequest,
) -> Result<SnapshotInfo, Refusal> {
    if let SnapshotChoice::Named(name) = &request.snapshot {
        return Err(not_a_snapshot_id(instance, name));
    }
    let snapshots = restic.restore_points(None).await.map_err(|e| {
        Refusal::new(
            RefusalKind::Unavailable,
            format!(
                "cannot list the snapshots of instance `{}`: {e}",
                instance.id
            ),
        )
    })?;
    let target_tag = request.target.to_string();
    let holds_target = |s: &SnapshotInfo| s.tags.contains(&target_tag);
    match &request.snapshot {
        SnapshotChoice::Latest => snapshots
            .iter()
            .rev()
            .find(|s| holds_target(s) && !s.tags.iter().any(|tag| tag == PRE_RESTORE_TAG))
            .cloned()
            .ok_or_else(|| {
                Refusal::new(
                    RefusalKind::NotFound,
                    format!(
                        "instance `{}` has no snapshot of {} on any node; back it up first, or check the target with `marina snapshots {}`",
                        instance.id, request.target, instance.id
                    ),
                )
            }),
        SnapshotChoice::Id(prefix) => {
            let matching: Vec<&SnapshotInfo> =
                snapshots.iter().filter(|s| request.snapshot.matches(&s.id)).collect();
            match matching.as_slice() {
                [] => Err(Refusal::new(
                    RefusalKind::NotFound,
                    format!(
                        "instance `{}` has no snapshot {prefix}; list them with `marina snapshots {}`",
                        instance.id, instance.id
                    ),
                )),
                [one] if holds_target(one) => Ok((*one).clone()),
                [one] => Err(Refusal::new(
                    RefusalKind::Invalid,
                    format!(
                        "snapshot {} holds {}, not {}; pick a snapshot of {} (`marina snapshots {} {}`)",
                        one.short_id,
                        point(one, None).target.unwrap_or_else(|| "no target".into()),
                        request.target,
                        request.target,
                        instance.id,
                        request.target
                    ),
                )),
                _ => Err(Refusal::new(
                    RefusalKind::Invalid,
                    format!("snapshot id {prefix} is ambiguous; give more of its digits"),
                )),
            }
        }
        SnapshotChoice::Named(name) => Err(not_a_snapshot_id(instance, name)),
    }
}

/// The refusal of a snapshot name for a restic instance, whose snapshots have hex ids only.
fn not_a_snapshot_id(instance: &Instance, name: &str) -> Refusal {
    Refusal::new(
        RefusalKind::Invalid,
        format!(
            "snapshot {name:?} is neither `latest` nor a snapshot id (8 to 64 lowercase hex digits, as `marina snapshots {}` lists them)",
            instance.id
        ),
    )
}

/// The volume or container the data goes into: the target itself in place, else `to` or
/// `<name>-restore-<time>`.
fn destination(request: &RestoreRequest, now: DateTime<Utc>) -> DockerName {
    let name = request.target.name();
    if request.in_place {
        return name.clone();
    }
    request.to.clone().unwrap_or_else(|| {
        let default = format!("{name}-restore-{}", now.format("%Y%m%d-%H%M%S"));
        // Made of a valid name and digits: always a valid name.
        DockerName::parse(&default).unwrap_or_else(|_| name.clone())
    })
}

async fn plan_volume<R: Runtime>(
    runtime: &R,
    plan: &mut RestorePlan,
    paths: Vec<(String, VolumePath)>,
    name: &DockerName,
    target: Option<&Target>,
    steps: VolumeSteps,
) -> Result<Source, Refusal> {
    let original = runtime
        .volume_info(name.as_str())
        .await
        .map_err(|e| engine_error(name, &e))?;
    let mounters = if plan.in_place {
        if target.is_none() && original.is_some() {
            plan.conflicts.push(format!(
                "volume {name} is not a target of instance `{}` now, so its content cannot be saved before it is replaced; restore into a new volume instead",
                plan.instance
            ));
        }
        plan_in_place(runtime, plan, name, original.is_some(), steps).await?
    } else {
        plan_new_volume(runtime, plan, name, original.as_ref(), steps.restore).await?;
        Vec::new()
    };
    Ok(Source::Volume {
        paths,
        original,
        mounters,
        target: target.cloned().map(Box::new),
    })
}

/// The steps and conflicts of an in-place volume restore; the containers it stops.
async fn plan_in_place<R: Runtime>(
    runtime: &R,
    plan: &mut RestorePlan,
    name: &DockerName,
    exists: bool,
    steps: VolumeSteps,
) -> Result<Vec<ContainerRef>, Refusal> {
    let mut mounters = Vec::new();
    if exists {
        mounters = runtime
            .running_mounters(name.as_str())
            .await
            .map_err(|e| engine_error(name, &e))?;
    } else {
        plan.conflicts.push(format!(
            "volume {name} does not exist, so there is nothing to restore in place; restore into a new volume of that name with `--to {name}`"
        ));
    }
    for task in mounters.iter().filter(|c| c.swarm_task) {
        plan.conflicts.push(format!(
            "container {} is a Swarm task using volume {name}; Swarm would replace it if Marina stopped it. Scale its service to 0, then restore",
            task.name
        ));
    }
    for container in &mounters {
        plan.steps.push(RestoreStep {
            action: "stop container",
            subject: container.name.clone(),
        });
    }
    plan.steps.push(steps.safety);
    plan.steps.push(RestoreStep {
        action: "replace content",
        subject: format!("of volume {name}"),
    });
    plan.steps.push(steps.restore);
    for container in &mounters {
        plan.steps.push(RestoreStep {
            action: "start container",
            subject: container.name.clone(),
        });
    }
    Ok(mounters)
}

/// The steps and conflicts of a restore into a new volume.
async fn plan_new_volume<R: Runtime>(
    runtime: &R,
    plan: &mut RestorePlan,
    name: &DockerName,
    original: Option<&VolumeDetails>,
    restore_step: RestoreStep,
) -> Result<(), Refusal> {
    let destination = plan.destination.to_string();
    if runtime
        .volume_info(&destination)
        .await
        .map_err(|e| engine_error(name, &e))?
        .is_some()
    {
        plan.conflicts.push(format!(
            "volume {destination} exists; name another with `--to`, or replace {name} itself with `--in-place`"
        ));
    }
    let driver = original.map_or("local", |v| v.driver.as_str());
    let options = original
        .filter(|v| !v.driver_opts.is_empty())
        .map_or(String::new(), |_| {
            format!("; without {name}'s driver options, which may name {name}'s own storage")
        });
    plan.steps.push(RestoreStep {
        action: "create volume",
        subject: format!("{destination} (driver {driver}{options})"),
    });
    plan.steps.push(restore_step);
    Ok(())
}

fn engine_error(name: &DockerName, e: &RuntimeError) -> Refusal {
    Refusal::new(
        RefusalKind::Unavailable,
        format!("cannot ask the Docker engine about volume {name}: {e}"),
    )
}

/// The container and engine of database target `name`, which must be there now: a
/// database is restored from its container's image and environment.
fn db_target<'t>(
    plan: &RestorePlan,
    name: &DockerName,
    target: Option<&'t Target>,
) -> Result<(&'t Target, &'t ContainerInfo, DbKind), Refusal> {
    let Some(target) = target else {
        return Err(Refusal::new(
            RefusalKind::NotFound,
            format!(
                "db:{name} is not a target of instance `{}` now (its container is gone or no longer labelled); a database is restored from its container's image and environment, so start the container again first",
                plan.instance
            ),
        ));
    };
    let Some(Found::Container(container)) = &target.found else {
        return Err(Refusal::new(
            RefusalKind::NotFound,
            format!(
                "container {name} does not exist; a database is restored from its container's image and environment, so create the container again first"
            ),
        ));
    };
    let Some(kind) = target.db_kind else {
        return Err(Refusal::new(
            RefusalKind::Invalid,
            format!(
                "the database kind of container {name} is not known; set dbKind in the config or the dev.polarfox.marina.db label"
            ),
        ));
    };
    Ok((target, container, kind))
}

#[allow(clippy::too_many_arguments)] // What the plan of a database restore is made of.
async fn plan_db<R: Runtime>(
    runtime: &R,
    plan: &mut RestorePlan,
    name: &DockerName,
    target: &Target,
    container: &ContainerInfo,
    kind: DbKind,
    file: String,
    safety: RestoreStep,
) -> Result<Source, Refusal> {
    let destination = plan.destination.to_string();
    let load = load_step(kind, &destination, &file);
    if plan.in_place {
        if kind == DbKind::Redis && container.labels.contains_key("com.docker.swarm.task.id") {
            plan.conflicts.push(format!(
                "container {name} is a Swarm task; an in-place redis restore stops the server, and Swarm would replace the stopped task. Restore into a new container instead"
            ));
        }
        if container.state != ContainerState::Running {
            plan.conflicts.push(format!(
                "container {name} is not running; an in-place restore loads the dump with the database's own server. Start it, then restore"
            ));
        }
        plan.steps.push(safety);
        plan.steps.extend(load);
    } else {
        match runtime.inspect_container(&destination).await {
            Ok(_) => plan.conflicts.push(format!(
                "container {destination} exists; name another with `--to`, or load into {name} itself with `--in-place`"
            )),
            Err(RuntimeError::NoSuchContainer { .. }) => {}
            Err(e) => {
                return Err(Refusal::new(
                    RefusalKind::Unavailable,
                    format!("cannot ask the Docker engine about container {destination}: {e}"),
                ));
            }
        }
        plan.steps.push(RestoreStep {
            action: "create container",
            subject: format!(
                "{destination} from image {} with the environment of {name}, on no network",
                container.image
            ),
        });
        plan.steps.push(RestoreStep {
            action: "start container",
            subject: destination.clone(),
        });
        plan.steps.extend(load);
    }
    Ok(Source::Db {
        file,
        kind,
        container: container.clone(),
        target: Box::new(target.clone()),
    })
}

/// How a dump gets into `container`: the engine's client reads it, or (redis) the server's
/// data file is replaced while it is stopped.
fn load_step(kind: DbKind, container: &str, file: &str) -> Vec<RestoreStep> {
    let client = match kind {
        DbKind::Postgres => "psql",
        DbKind::Mysql => "mysql",
        DbKind::Mariadb => "mariadb",
        DbKind::Mongo => "mongorestore --archive --drop",
        DbKind::Redis => {
            return vec![
                RestoreStep {
                    action: "stop container",
                    subject: container.to_owned(),
                },
                RestoreStep {
                    action: "replace data file",
                    subject: format!("dump.rdb of {container} with {file}"),
                },
                RestoreStep {
                    action: "start container",
                    subject: container.to_owned(),
                },
            ];
        }
    };
    let mut steps = Vec::new();
    if matches!(kind, DbKind::Postgres | DbKind::Mysql | DbKind::Mariadb) {
        steps.push(RestoreStep {
            action: "drop databases",
            subject: format!("every database of {container} but the server's own"),
        });
    }
    steps.push(RestoreStep {
        action: "load dump",
        subject: format!("{file} into {container} with {client}"),
    });
    steps
}

/// Pairs each directory a volume snapshot holds with the path inside the volume it was
/// backed up from. The configured paths say where the volume's root was (a snapshot path is
/// `<root>/<path>`); without them (the target is gone) or when they no longer match, one
/// directory is the root itself and several are taken relative to their common parent.
/// `None` when the snapshot holds no absolute directory path (a dump).
fn volume_paths(
    snapshot_paths: &[String],
    configured: Option<&[VolumePath]>,
) -> Option<Vec<(String, VolumePath)>> {
    let paired = pair_paths(snapshot_paths, configured)?;
    // A path inside another listed path comes back with that one (and restoring it again
    // would find its directory filled); each path comes back once.
    let mut kept: Vec<(String, VolumePath)> = Vec::new();
    for (source, path) in &paired {
        let covered = paired.iter().any(|(_, outer)| path.is_inside(outer))
            || kept.iter().any(|(_, seen)| seen == path);
        if !covered {
            kept.push((source.clone(), path.clone()));
        }
    }
    Some(kept)
}

/// Every snapshot path with the volume path it was backed up from (see [`volume_paths`]).
fn pair_paths(
    snapshot_paths: &[String],
    configured: Option<&[VolumePath]>,
) -> Option<Vec<(String, VolumePath)>> {
    if snapshot_paths.is_empty() || snapshot_paths.iter().any(|p| !p.starts_with('/')) {
        return None;
    }
    if let Some(configured) = configured
        && let Some(paired) = pair_with_configured(snapshot_paths, configured)
    {
        return Some(paired);
    }
    if let [only] = snapshot_paths {
        return Some(vec![(only.clone(), VolumePath::root())]);
    }
    let parent = common_parent(snapshot_paths);
    snapshot_paths
        .iter()
        .map(|p| {
            let inside = p.strip_prefix(&parent)?.trim_start_matches('/');
            let path = if inside.is_empty() {
                VolumePath::root()
            } else {
                VolumePath::parse(inside).ok()?
            };
            Some((p.clone(), path))
        })
        .collect()
}

/// Every snapshot path as `<root>/<configured path>` for one root, if they all are.
fn pair_with_configured(
    snapshot_paths: &[String],
    configured: &[VolumePath],
) -> Option<Vec<(String, VolumePath)>> {
    if snapshot_paths.len() != configured.len() {
        return None;
    }
    let mut root: Option<String> = None;
    let mut paired = Vec::with_capacity(configured.len());
    for path in configured {
        let inside = path.relative();
        let found = snapshot_paths.iter().find_map(|p| {
            let this_root = if inside.is_empty() {
                p.as_str()
            } else {
                p.strip_suffix(inside)?.strip_suffix('/')?
            };
            root.as_deref()
                .is_none_or(|r| r == this_root)
                .then(|| (p.clone(), this_root.to_owned()))
        })?;
        root = Some(found.1);
        paired.push((found.0, path.clone()));
    }
    Some(paired)
}

/// The longest directory every path lies under.
fn common_parent(paths: &[String]) -> String {
    let split: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| p.split('/').filter(|c| !c.is_empty()).collect())
        .collect();
    let mut common: Vec<&str> = split.first().cloned().unwrap_or_default();
    for components in &split[1..] {
        let same = common
            .iter()
            .zip(components)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(same);
    }
    format!("/{}", common.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| (*p).to_owned()).collect()
    }

    fn inside(list: &[&str]) -> Vec<VolumePath> {
        list.iter().map(|p| VolumePath::parse(p).unwrap()).collect()
    }

    fn shown(paired: Option<Vec<(String, VolumePath)>>) -> Vec<(String, String)> {
        paired
            .unwrap()
            .into_iter()
            .map(|(p, v)| (p, v.to_string()))
            .collect()
    }

    #[test]
    fn a_whole_volume_snapshot_restores_to_the_volume_root() {
        let got = volume_paths(&paths(&["/var/lib/docker/volumes/v/_data"]), None);
        assert_eq!(
            shown(got),
            vec![("/var/lib/docker/volumes/v/_data".to_owned(), "/".to_owned())]
        );
    }

    #[test]
    fn configured_paths_say_where_the_root_was() {
        let snapshot = paths(&["/stage/vol/v/conf", "/stage/vol/v/db/main"]);
        let got = shown(volume_paths(&snapshot, Some(&inside(&["db/main", "conf"]))));
        assert_eq!(got.len(), 2);
        assert!(got.contains(&(
            "/stage/vol/v/db/main".into(),
            inside(&["db/main"])[0].to_string()
        )));
        assert!(got.contains(&("/stage/vol/v/conf".into(), inside(&["conf"])[0].to_string())));
        // A single configured sub-path is not mistaken for the root.
        let one = shown(volume_paths(
            &paths(&["/r/_data/conf"]),
            Some(&inside(&["conf"])),
        ));
        assert_eq!(
            one,
            vec![("/r/_data/conf".into(), inside(&["conf"])[0].to_string())]
        );
    }

    #[test]
    fn without_matching_configuration_paths_are_taken_from_their_common_parent() {
        let snapshot = paths(&["/r/_data/a", "/r/_data/b/c"]);
        let got = shown(volume_paths(&snapshot, Some(&inside(&["x"]))));
        assert_eq!(
            got,
            vec![
                ("/r/_data/a".into(), inside(&["a"])[0].to_string()),
                ("/r/_data/b/c".into(), inside(&["b/c"])[0].to_string())
            ]
        );
    }

    #[test]
    fn a_path_inside_another_comes_back_with_it_once() {
        let snapshot = paths(&["/r/_data", "/r/_data/uploads", "/r/_data/uploads"]);
        let got = shown(volume_paths(
            &snapshot,
            Some(&inside(&["/", "uploads", "/uploads"])),
        ));
        assert_eq!(got, vec![("/r/_data".into(), "/".into())]);
    }

    #[test]
    fn relative_or_missing_paths_are_no_volume_snapshot() {
        assert!(volume_paths(&paths(&["pg-1/dump.sql"]), None).is_none());
        assert!(volume_paths(&[], None).is_none());
    }

    #[test]
    fn the_default_destination_is_named_after_the_target_and_the_time() {
        let request: RestoreRequest =
            serde_json::from_str(r#"{"target": "volume:app-data"}"#).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:20:30Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            destination(&request, now).as_str(),
            "app-data-restore-20261204-102030"
        );
        let in_place = RestoreRequest {
            in_place: true,
            ..request
        };
        assert_eq!(destination(&in_place, now).as_str(), "app-data");
    }
}
