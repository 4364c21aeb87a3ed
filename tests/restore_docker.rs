//! The Docker building blocks of a restore, against the real engine: volumes Marina reads,
//! creates (never taking over an existing one) and removes (never forced); the labels of a
//! restored copy, which label discovery does not take for a backup target; offline clones of
//! database containers (a real PostgreSQL server); and filling a volume from a directory with
//! the busybox helper, every attribute of every entry compared with the original.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use marina::docker::volume_fill::{FillError, FillMode, FillSpec, fill_volume};
use marina::docker::{
    DockerClient, DockerRuntime, NewVolume, OWNER_LABEL, PullPolicy, Runtime, RuntimeError,
    VolumeScope,
};
use marina::model::labels::{
    JOB_LABEL, LabelIntent, LabelledObject, PREFIX, RESTORED_FROM_LABEL, labels_of_copy, parse,
};
use marina::model::{DockerName, InstanceId, TargetId, VolumePath};
use serde_json::Value;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, DB_IMAGE, VolumeGuard, build_image, docker, docker_output,
    require_engine_and_images, show_marina_logs, unique_name, wait_until_exec_succeeds,
};
use tokio_util::sync::CancellationToken;

async fn runtime() -> DockerRuntime {
    require_engine_and_images();
    show_marina_logs();
    DockerRuntime::new(DockerClient::connect().await.unwrap())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `docker inspect` of one object, as JSON.
fn inspect(object: &str) -> Value {
    let text = docker(&["inspect", object]);
    let mut all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.remove(0)
}

fn exists(object: &str) -> bool {
    docker_output(&["inspect", object]).status.success()
}

fn volume_exists(volume: &str) -> bool {
    docker_output(&["volume", "inspect", volume])
        .status
        .success()
}

// ---------------------------------------------------------------------------------------
// Volumes
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn volume_info_reads_driver_options_labels_mountpoint_and_scope() {
    let rt = runtime().await;
    let name = unique_name("vol-info");
    let _volume = VolumeGuard(name.clone());
    docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "--label",
        "com.example.team=billing",
        &name,
    ]);
    let info = rt.volume_info(&name).await.unwrap().expect("the volume");
    assert_eq!(info.name, name);
    assert_eq!(info.driver, "local");
    assert_eq!(
        info.driver_opts,
        labels(&[("device", "tmpfs"), ("o", "size=1m"), ("type", "tmpfs")])
    );
    assert_eq!(info.labels, labels(&[("com.example.team", "billing")]));
    let mountpoint = docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", &name]);
    assert_eq!(info.mountpoint, Some(PathBuf::from(mountpoint.trim())));
    assert_eq!(info.scope, VolumeScope::Local);

    assert_eq!(rt.volume_info(&unique_name("no-such")).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volume_is_created_new_and_an_existing_name_is_refused() {
    let rt = runtime().await;
    let name = unique_name("vol-new");
    let _volume = VolumeGuard(name.clone());
    let new = NewVolume {
        name: name.clone(),
        driver: "local".into(),
        driver_opts: BTreeMap::new(),
        labels: labels(&[("com.example.a", "1")]),
    };
    let created = rt.create_volume(new.clone()).await.unwrap();
    assert_eq!(created.name, name);
    assert_eq!(created.driver, "local");
    assert_eq!(created.labels, new.labels);
    let on_engine = docker(&["volume", "inspect", "--format", "{{json .Labels}}", &name]);
    assert_eq!(on_engine.trim(), r#"{"com.example.a":"1"}"#);

    // The same request again: Docker would hand back the existing volume; Marina refuses.
    let again = rt.create_volume(new.clone()).await.unwrap_err();
    assert!(
        matches!(&again, RuntimeError::VolumeExists { volume } if *volume == name),
        "{again:?}"
    );
    assert!(again.to_string().contains("already exists"), "{again}");

    // Someone else's volume of that name, with other labels: refused, and left as it was.
    let theirs = unique_name("vol-theirs");
    let _theirs = VolumeGuard(theirs.clone());
    docker(&["volume", "create", "--label", "owner=someone", &theirs]);
    let refused = rt
        .create_volume(NewVolume {
            name: theirs.clone(),
            ..new
        })
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RuntimeError::VolumeExists { .. }),
        "{refused:?}"
    );
    let labels_now = docker(&["volume", "inspect", "--format", "{{json .Labels}}", &theirs]);
    assert_eq!(labels_now.trim(), r#"{"owner":"someone"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volume_in_use_is_not_removed_and_one_already_gone_counts_as_removed() {
    let rt = runtime().await;
    let name = unique_name("vol-rm");
    let _volume = VolumeGuard(name.clone());
    docker(&["volume", "create", &name]);
    // A stopped container still holds the volume.
    let user = unique_name("vol-user");
    let user_guard = ContainerGuard(user.clone());
    docker(&[
        "create",
        "--name",
        &user,
        "-v",
        &format!("{name}:/data"),
        BUSYBOX_IMAGE,
        "true",
    ]);
    let refused = rt.remove_volume(&name).await.unwrap_err();
    match &refused {
        RuntimeError::VolumeInUse { volume, containers } => {
            assert_eq!(volume, &name);
            assert_eq!(containers, std::slice::from_ref(&user));
        }
        other => panic!("expected VolumeInUse, got {other:?}"),
    }
    assert!(refused.to_string().contains(&user), "{refused}");
    assert!(volume_exists(&name));

    drop(user_guard);
    rt.remove_volume(&name).await.unwrap();
    assert!(!volume_exists(&name));
    assert_eq!(rt.volume_info(&name).await.unwrap(), None);
    rt.remove_volume(&name).await.unwrap();
}

/// A minimal valid config with one instance, for building the state graph.
fn config_with_instance(instance: &str, dir: &Path) -> marina::config::Config {
    let yaml = format!(
        "instances:\n  - id: {instance}\n    repository: {repo}\n    schedule: \"0 3 * * *\"\n    env:\n      RESTIC_PASSWORD: unused\nstagingDir: {staging}\ndbPath: {db}\n",
        repo = dir.join("repo").display(),
        staging = dir.join("staging").display(),
        db = dir.join("marina.db").display(),
    );
    marina::config::load_str(&yaml, "config.yml", &marina::config::ProcessEnvironment)
        .unwrap()
        .config
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_copy_keeps_foreign_labels_and_is_not_discovered_as_a_target() {
    let rt = runtime().await;
    let instance = unique_name("inst");
    let original = unique_name("vol-orig");
    let _original = VolumeGuard(original.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        &format!("dev.polarfox.marina.instanceID={instance}"),
        "--label",
        "dev.polarfox.marina.paths=/",
        "--label",
        "com.docker.compose.project=app",
        "--label",
        "com.docker.compose.volume=data",
        "--label",
        "com.example.team=billing",
        &original,
    ]);
    let info = rt.volume_info(&original).await.unwrap().unwrap();
    let provenance = format!("{original}@0123abcd");
    let copy = unique_name("vol-copy");
    let _copy = VolumeGuard(copy.clone());
    rt.create_volume(NewVolume {
        name: copy.clone(),
        driver: info.driver.clone(),
        driver_opts: info.driver_opts.clone(),
        labels: labels_of_copy(
            &info.labels,
            [(RESTORED_FROM_LABEL.to_owned(), provenance.clone())],
        ),
    })
    .await
    .unwrap();
    let copied = rt.volume_info(&copy).await.unwrap().unwrap();
    assert_eq!(
        copied.labels,
        labels(&[
            ("com.example.team", "billing"),
            (RESTORED_FROM_LABEL, &provenance)
        ])
    );

    // Discovery, as the controller does it: the whole inventory joined with the config.
    let inventory = DockerClient::connect().await.unwrap().list().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_instance(&instance, dir.path());
    let graph = marina::reconcile::graph::build(&config, &inventory, &BTreeMap::new());
    let targets = &graph.targets[&InstanceId::parse(&instance).unwrap()];
    let volume_target = |name: &str| TargetId::Volume(DockerName::parse(name).unwrap());
    assert!(
        targets
            .iter()
            .any(|t| t.spec.id == volume_target(&original)),
        "the original is a target: {targets:?}"
    );
    assert!(
        !targets.iter().any(|t| t.spec.id == volume_target(&copy)),
        "the restored copy must not be a target: {targets:?}"
    );
    assert!(
        !graph
            .invalid
            .iter()
            .any(|i| i.object == format!("volume:{copy}")),
        "{:?}",
        graph.invalid
    );
    assert!(graph.unprotected_volumes.contains(&copy));

    // Opted in later, the copy is a target without a label problem.
    let mut opted_in = copied.labels.clone();
    opted_in.insert(format!("{PREFIX}enabled"), "true".into());
    opted_in.insert(format!("{PREFIX}instanceID"), instance.clone());
    assert!(matches!(
        parse(LabelledObject::Volume(&copy), &opted_in),
        LabelIntent::Target { .. }
    ));
}

// ---------------------------------------------------------------------------------------
// Offline database clones
// ---------------------------------------------------------------------------------------

fn require_db_image() {
    assert!(
        docker_output(&["image", "inspect", DB_IMAGE])
            .status
            .success(),
        "test image {DB_IMAGE} is missing; build it with `make test-images`"
    );
}

fn psql(container: &str, sql: &str) -> String {
    docker(&[
        "exec", container, "psql", "-U", "marina", "-d", "postgres", "-Atc", sql,
    ])
    .trim()
    .to_owned()
}

/// A running PostgreSQL server as an application runs it: credentials in its environment,
/// its data in the named volume `data`, a published port, a restart policy, Marina's target
/// labels, a Compose label and one of its own; with a table in its database.
fn postgres_source(data: &str) -> ContainerGuard {
    let source = unique_name("pg-source");
    let guard = ContainerGuard(source.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &source,
        "--env",
        "POSTGRES_USER=marina",
        "--env",
        "POSTGRES_PASSWORD=clone-secret",
        "-v",
        &format!("{data}:/var/lib/postgresql/data"),
        "--publish",
        "127.0.0.1::5432",
        "--restart",
        "unless-stopped",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=nightly",
        "--label",
        "com.docker.compose.service=db",
        "--label",
        "com.example.team=billing",
        DB_IMAGE,
        "postgres",
    ]);
    wait_until_exec_succeeds(
        &source,
        &["pg_isready", "-U", "marina", "-d", "postgres"],
        60,
    );
    psql(&source, "CREATE TABLE only_in_source (x int)");
    guard
}

/// What `docker inspect` says of a clone just created from `original`: the same image and
/// process, its environment with the password, no network, ports, restart policy or mounts,
/// not started, and labels `given` as Marina's only ones.
fn assert_offline_clone_of(clone: &Value, original: &Value, given: &BTreeMap<String, String>) {
    assert_eq!(clone["State"]["Status"], "created", "not started");
    assert_eq!(clone["Image"], original["Image"], "the very image");
    for field in ["Env", "Cmd", "Entrypoint", "User", "WorkingDir"] {
        assert_eq!(clone["Config"][field], original["Config"][field], "{field}");
    }
    let env = clone["Config"]["Env"].as_array().unwrap();
    assert!(
        env.contains(&Value::from("POSTGRES_PASSWORD=clone-secret")),
        "{env:?}"
    );
    assert_eq!(clone["HostConfig"]["NetworkMode"], "none");
    let bindings = &clone["HostConfig"]["PortBindings"];
    assert!(
        bindings.is_null() || bindings.as_object().unwrap().is_empty(),
        "{bindings}"
    );
    let restart = clone["HostConfig"]["RestartPolicy"]["Name"]
        .as_str()
        .unwrap();
    assert!(restart.is_empty() || restart == "no", "{restart}");
    assert_eq!(
        clone["Mounts"],
        Value::Array(vec![]),
        "none of the source's mounts"
    );
    let clone_labels: BTreeMap<String, String> =
        serde_json::from_value(clone["Config"]["Labels"].clone()).unwrap();
    assert_eq!(
        clone_labels.get("com.example.team").map(String::as_str),
        Some("billing")
    );
    assert!(
        !clone_labels
            .keys()
            .any(|k| k.starts_with("com.docker.compose.")),
        "{clone_labels:?}"
    );
    let marinas: BTreeMap<String, String> = clone_labels
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(&marinas, given);
    let name = clone["Name"].as_str().unwrap().trim_start_matches('/');
    assert!(matches!(
        parse(LabelledObject::Container(name), &clone_labels),
        LabelIntent::MarinaOwned { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_clone_of_postgres_runs_the_same_server_without_its_data_or_network() {
    let rt = runtime().await;
    require_db_image();
    let data = unique_name("pg-data");
    let _data = VolumeGuard(data.clone());
    let source_guard = postgres_source(&data);
    let source = source_guard.0.clone();

    let name = unique_name("pg-clone");
    let _clone = ContainerGuard(name.clone());
    let owner = unique_name("owner");
    let given = labels(&[(OWNER_LABEL, &owner), (JOB_LABEL, "restore-test")]);
    let id = rt
        .create_db_clone(&source, &name, given.clone())
        .await
        .unwrap();
    let clone = inspect(&id);
    assert_eq!(clone["Name"], format!("/{name}"));
    assert_offline_clone_of(&clone, &inspect(&source), &given);

    // The name is taken now.
    let taken = rt
        .create_db_clone(&source, &name, given.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&taken, RuntimeError::ContainerExists { container } if *container == name),
        "{taken:?}"
    );

    // It starts: the same server, with the same credentials, on its own empty data.
    rt.start_container(&id).await.unwrap();
    wait_until_exec_succeeds(&name, &["pg_isready", "-U", "marina", "-d", "postgres"], 60);
    let count = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_source'";
    assert_eq!(psql(&name, count), "0");
    assert_eq!(psql(&source, count), "1");
    // Offline: no interface but loopback, no network but `none`.
    assert_eq!(
        docker(&["exec", &name, "ls", "/sys/class/net"]).trim(),
        "lo"
    );
    let networks: Vec<String> = inspect(&id)["NetworkSettings"]["Networks"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(networks, ["none"]);

    rt.remove_container(&id).await.unwrap();
    assert!(!exists(&id));
    rt.remove_container(&id).await.unwrap();
    // The source is untouched.
    assert_eq!(inspect(&source)["State"]["Status"], "running");
    assert!(volume_exists(&data));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clone_gets_fresh_anonymous_volumes_for_the_images_volumes_and_loses_them_with_it() {
    let rt = runtime().await;
    let image = format!("{}:latest", unique_name("anon-image"));
    let _image = build_image(
        &image,
        &format!("FROM {BUSYBOX_IMAGE}\nVOLUME /data\nCMD [\"sleep\", \"600\"]\n"),
        &[],
    );
    let data = unique_name("named-data");
    let _data = VolumeGuard(data.clone());
    let source = unique_name("anon-source");
    let _source = ContainerGuard(source.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &source,
        "-v",
        &format!("{data}:/data"),
        &image,
    ]);
    docker(&[
        "exec",
        &source,
        "sh",
        "-c",
        "echo source-data > /data/marker",
    ]);

    let name = unique_name("anon-clone");
    let _clone = ContainerGuard(name.clone());
    let id = rt
        .create_db_clone(
            &source,
            &name,
            labels(&[(OWNER_LABEL, "o"), (JOB_LABEL, "j")]),
        )
        .await
        .unwrap();
    let mounts = inspect(&id)["Mounts"].as_array().unwrap().clone();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Destination"], "/data");
    let anonymous = mounts[0]["Name"].as_str().unwrap().to_owned();
    assert_ne!(anonymous, data, "not the source's named volume");
    rt.start_container(&id).await.unwrap();
    let listing = docker(&["exec", &name, "ls", "-A", "/data"]);
    assert_eq!(listing.trim(), "", "a fresh, empty volume");

    rt.remove_container(&id).await.unwrap();
    assert!(!exists(&id));
    assert!(!volume_exists(&anonymous), "removed with the clone");
    assert!(volume_exists(&data));
}

// ---------------------------------------------------------------------------------------
// Filling a volume from a directory
// ---------------------------------------------------------------------------------------

/// One entry of a tree, with everything a fill must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The full `st_mode`: file type and permission bits (setuid, setgid, sticky too).
    mode: u32,
    uid: u32,
    gid: u32,
    /// The file's bytes; the link's target; nothing for a directory.
    content: Vec<u8>,
    /// Seconds and nanoseconds.
    mtime: (i64, i64),
    links: u64,
}

/// Every entry under `root` (itself as ""), by relative path, read as root from the host
/// without following symlinks; and the groups of paths that share an inode.
fn tree(root: &Path) -> (BTreeMap<String, Entry>, BTreeSet<BTreeSet<String>>) {
    let mut entries = BTreeMap::new();
    let mut inodes: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        // `join("")` would add a trailing `/`, which a file's path must not have.
        let path = if relative.as_os_str().is_empty() {
            root.to_owned()
        } else {
            root.join(&relative)
        };
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let name = relative.to_string_lossy().into_owned();
        let content = if meta.file_type().is_symlink() {
            std::fs::read_link(&path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if meta.is_file() {
            std::fs::read(&path).unwrap()
        } else {
            Vec::new()
        };
        if meta.is_dir() {
            for child in std::fs::read_dir(&path).unwrap() {
                pending.push(relative.join(child.unwrap().file_name()));
            }
        } else {
            inodes.entry(meta.ino()).or_default().insert(name.clone());
        }
        entries.insert(
            name,
            Entry {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                content,
                mtime: (meta.mtime(), meta.mtime_nsec()),
                links: meta.nlink(),
            },
        );
    }
    let shared = inodes
        .into_values()
        .filter(|paths| paths.len() > 1)
        .collect();
    (entries, shared)
}

/// What a fill keeps of `entries`: everything but the sub-second part of mtimes (busybox
/// sets whole seconds; see `marina::docker::volume_fill`).
fn as_filled(entries: &BTreeMap<String, Entry>) -> BTreeMap<String, Entry> {
    entries
        .iter()
        .map(|(name, entry)| {
            let mut kept = entry.clone();
            kept.mtime.1 = 0;
            (name.clone(), kept)
        })
        .collect()
}

/// `touch -h -d STAMP PATH` on the host (GNU touch keeps nanoseconds; symlinks themselves).
fn touch(path: &Path, stamp: &str) {
    let status = Command::new("touch")
        .args(["-h", "-d", stamp])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "touch {}", path.display());
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap_or_else(|e| {
        panic!(
            "cannot chown {} (the fill tests run as root): {e}",
            path.display()
        )
    });
}

/// A directory as restic leaves it after a restore, with every kind of entry a volume holds:
/// a plain file, a file with mode 0640 owned by 1234:5678, a symlink to a missing target and
/// one to a directory beside it, two hard links to one inode, a setgid directory owned by
/// 42:43 with a setuid file, a sticky directory, an empty one, and nested subdirectories —
/// all with nanosecond mtimes (the symlinks' own too).
fn restored_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("plain.txt"), b"plain bytes\n").unwrap();
    std::fs::write(root.join("owned.txt"), b"secret\n").unwrap();
    std::fs::set_permissions(root.join("owned.txt"), PermissionsExt::from_mode(0o640)).unwrap();
    chown(&root.join("owned.txt"), 1234, 5678);
    std::os::unix::fs::symlink("../missing/target", root.join("dangling")).unwrap();
    std::fs::write(root.join("hard-1"), b"one inode, two names\n").unwrap();
    std::fs::hard_link(root.join("hard-1"), root.join("hard-2")).unwrap();
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("sub/deeper/inner.bin"), [0u8, 1, 2, 255, 254]).unwrap();
    std::fs::create_dir(root.join("shared")).unwrap();
    std::fs::set_permissions(root.join("shared"), PermissionsExt::from_mode(0o2750)).unwrap();
    chown(&root.join("shared"), 42, 43);
    std::fs::write(root.join("shared/tool"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("shared/tool"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::create_dir(root.join("tmp")).unwrap();
    std::fs::set_permissions(root.join("tmp"), PermissionsExt::from_mode(0o1777)).unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("sub/deeper", root.join("to-deeper")).unwrap();
    // Children before their directories: touching an entry changes its parent's mtime.
    touch(&root.join("plain.txt"), "2019-05-06 07:08:09.000000001");
    touch(&root.join("owned.txt"), "2019-05-06 07:08:10.5");
    touch(&root.join("dangling"), "2021-03-04 05:06:07.123456789");
    touch(&root.join("hard-1"), "2018-02-03 04:05:06.7");
    touch(
        &root.join("sub/deeper/inner.bin"),
        "2017-01-01 00:00:01.999999999",
    );
    touch(&root.join("sub/deeper"), "2016-06-06 06:06:06.060606060");
    touch(&root.join("sub"), "2020-01-02 03:04:05.987654321");
    touch(&root.join("to-deeper"), "2013-03-03 03:03:03.3");
    touch(&root.join("shared/tool"), "2012-02-02 02:02:02.2");
    touch(&root.join("shared"), "2015-05-05 05:05:05.5");
    touch(&root.join("tmp"), "2011-01-01 01:01:01.1");
    touch(&root.join("empty"), "2010-10-10 10:10:10.10");
    std::fs::set_permissions(root, PermissionsExt::from_mode(0o751)).unwrap();
    touch(root, "2014-04-04 04:04:04.444444444");
    dir
}

fn mountpoint(volume: &str) -> PathBuf {
    PathBuf::from(docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

fn fill_spec(volume: &str, source: &Path, paths: &[&str], mode: FillMode) -> FillSpec {
    FillSpec {
        image: BUSYBOX_IMAGE.to_owned(),
        job_id: unique_name("fill-job"),
        owner: unique_name("owner"),
        volume: volume.to_owned(),
        source: source.to_owned(),
        paths: paths
            .iter()
            .map(|p| VolumePath::parse(p).unwrap())
            .collect(),
        mode,
        pull: PullPolicy::IfMissing,
    }
}

async fn fill(rt: &DockerRuntime, spec: FillSpec) -> Result<(), FillError> {
    fill_volume(rt, spec, |_| {}, CancellationToken::new()).await
}

/// A volume filled by `script` (busybox, the volume at /v), with its guard.
fn volume_with(script: &str) -> (String, VolumeGuard) {
    let volume = unique_name("fill-vol");
    let guard = VolumeGuard(volume.clone());
    docker(&["volume", "create", &volume]);
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{volume}:/v"),
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        script,
    ]);
    (volume, guard)
}

/// `stat` of every entry of `volume`, from inside a busybox container: name, octal mode,
/// numeric owner and group, links, size, mtime seconds, and a link's target.
fn stat_in_container(volume: &str) -> BTreeSet<String> {
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{volume}:/v:ro"),
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "cd /v && find . -exec stat -c '%n|%f|%u|%g|%h|%s|%Y|%N' {} +",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The same listing of a host directory, the way busybox prints it (`%N` quotes only links).
fn stat_on_host(dir: &Path) -> BTreeSet<String> {
    let (entries, _) = tree(dir);
    entries
        .iter()
        .map(|(name, entry)| {
            let shown = if name.is_empty() {
                ".".to_owned()
            } else {
                format!("./{name}")
            };
            let is_link = entry.mode & 0o170_000 == 0o120_000;
            let size = if is_link || entry.mode & 0o170_000 == 0o100_000 {
                entry.content.len().to_string()
            } else {
                std::fs::symlink_metadata(dir.join(name))
                    .unwrap()
                    .len()
                    .to_string()
            };
            let named = if is_link {
                format!("'{shown}' -> '{}'", String::from_utf8_lossy(&entry.content))
            } else {
                shown.clone()
            };
            format!(
                "{shown}|{:x}|{}|{}|{}|{size}|{}|{named}",
                entry.mode, entry.uid, entry.gid, entry.links, entry.mtime.0
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn filling_a_new_volume_keeps_bytes_modes_owners_links_and_mtimes_to_the_second() {
    let rt = runtime().await;
    let restored = restored_tree();
    let volume = unique_name("fill-new");
    let _volume = VolumeGuard(volume.clone());
    rt.create_volume(NewVolume {
        name: volume.clone(),
        driver: "local".into(),
        driver_opts: BTreeMap::new(),
        labels: BTreeMap::new(),
    })
    .await
    .unwrap();
    let (before, before_links) = tree(restored.path());

    fill(
        &rt,
        fill_spec(&volume, restored.path(), &["/"], FillMode::IntoEmpty),
    )
    .await
    .unwrap();

    let (after, after_links) = tree(&mountpoint(&volume));
    assert_eq!(after, as_filled(&before), "every entry, every attribute");
    assert_eq!(after_links, before_links, "hard links stay hard links");
    assert_eq!(
        after_links,
        BTreeSet::from([BTreeSet::from(["hard-1".to_owned(), "hard-2".to_owned()])])
    );
    // The sub-second parts really were there to lose: the loss is what the docs say.
    assert_eq!(before["sub"].mtime, (1_577_934_245, 987_654_321));
    assert_eq!(after["sub"].mtime, (1_577_934_245, 0));
    assert_eq!(before["dangling"].mtime.0, after["dangling"].mtime.0);
    // The same, as busybox inside a container sees the volume.
    assert_eq!(stat_in_container(&volume), stat_on_host(restored.path()));
    // Restored, the directory itself is untouched (it was mounted read-only).
    assert_eq!(tree(restored.path()).0, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn filling_one_path_in_place_replaces_what_is_there_and_leaves_other_paths_alone() {
    let rt = runtime().await;
    let (volume, _volume) = volume_with(
        "mkdir -p /v/uploads/old-dir /v/other && echo old > /v/uploads/old.txt \
         && echo older > /v/uploads/old-dir/x && echo keep > /v/other/untouched.txt \
         && echo top > /v/top.txt && touch -d '2001-01-01 01:01:01' /v/other/untouched.txt \
         && echo old-settings > /v/settings.conf",
    );
    let restored = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(restored.path().join("uploads/new-dir")).unwrap();
    std::fs::write(restored.path().join("uploads/new.txt"), b"new\n").unwrap();
    std::fs::write(restored.path().join("uploads/new-dir/y"), b"y\n").unwrap();
    let settings = restored.path().join("settings.conf");
    std::fs::write(&settings, b"new-settings\n").unwrap();
    std::fs::set_permissions(&settings, PermissionsExt::from_mode(0o600)).unwrap();
    touch(&settings, "2022-02-22 22:22:22.22");
    // Not one of the filled paths: must not arrive.
    std::fs::create_dir_all(restored.path().join("other")).unwrap();
    std::fs::write(restored.path().join("other/from-restore.txt"), b"no\n").unwrap();
    let data = mountpoint(&volume);
    let (other_before, _) = tree(&data.join("other"));
    let top_before = tree(&data.join("top.txt")).0;

    fill(
        &rt,
        fill_spec(&volume, restored.path(), &["/uploads"], FillMode::Replace),
    )
    .await
    .unwrap();

    assert_eq!(
        tree(&data.join("uploads")).0,
        as_filled(&tree(&restored.path().join("uploads")).0),
        "the path holds exactly the restored files"
    );
    assert_eq!(tree(&data.join("other")).0, other_before);
    assert_eq!(tree(&data.join("top.txt")).0, top_before);

    // A path that is a file.
    fill(
        &rt,
        fill_spec(
            &volume,
            restored.path(),
            &["/settings.conf"],
            FillMode::Replace,
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        tree(&data.join("settings.conf")).0,
        as_filled(&tree(&settings).0)
    );
    assert_eq!(tree(&data.join("top.txt")).0, top_before);

    // The whole volume in place: everything goes, the root stays (it is the mount point).
    fill(
        &rt,
        fill_spec(&volume, restored.path(), &["/"], FillMode::Replace),
    )
    .await
    .unwrap();
    assert_eq!(tree(&data).0, as_filled(&tree(restored.path()).0));
    assert_eq!(mountpoint(&volume), data);
}

#[tokio::test(flavor = "multi_thread")]
async fn filling_into_empty_places_refuses_a_path_that_holds_files_before_writing_anything() {
    let rt = runtime().await;
    let (volume, _volume) = volume_with("mkdir -p /v/uploads && echo old > /v/uploads/old.txt");
    let restored = tempfile::tempdir().unwrap();
    for dir in ["logs", "uploads"] {
        std::fs::create_dir_all(restored.path().join(dir)).unwrap();
        std::fs::write(restored.path().join(dir).join("new.txt"), b"new\n").unwrap();
    }
    let data = mountpoint(&volume);
    let before = tree(&data).0;

    let refused = fill(
        &rt,
        fill_spec(
            &volume,
            restored.path(),
            &["/logs", "/uploads"],
            FillMode::IntoEmpty,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "path /uploads of volume {volume} is not empty; restore into an empty volume, or in \
             place to replace what is there"
        )
    );
    assert_eq!(tree(&data).0, before, "nothing written, not even /logs");

    // An absent path is an empty place.
    fill(
        &rt,
        fill_spec(&volume, restored.path(), &["/logs"], FillMode::IntoEmpty),
    )
    .await
    .unwrap();
    assert_eq!(
        tree(&data.join("logs")).0,
        as_filled(&tree(&restored.path().join("logs")).0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fill_follows_links_inside_the_volume_and_refuses_links_out_of_it_or_missing_paths() {
    let rt = runtime().await;
    let (volume, _volume) = volume_with(
        "mkdir -p /v/store/uploads && echo old > /v/store/uploads/old.txt \
         && ln -s store/uploads /v/uploads && ln -s /etc /v/config && mkdir /v/kept \
         && echo kept > /v/kept/file",
    );
    let restored = tempfile::tempdir().unwrap();
    for dir in ["uploads", "config", "kept"] {
        std::fs::create_dir_all(restored.path().join(dir)).unwrap();
        std::fs::write(restored.path().join(dir).join("new.txt"), b"new\n").unwrap();
    }
    let data = mountpoint(&volume);

    // A link out of the volume: refused with the volume copy's message, nothing removed —
    // not even the paths checked before it.
    let before = tree(&data).0;
    let refused = fill(
        &rt,
        fill_spec(
            &volume,
            restored.path(),
            &["/kept", "/config"],
            FillMode::Replace,
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, FillError::Refused(_)), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        format!("path /config of volume {volume} escapes the volume: config is a symlink to /etc")
    );
    assert_eq!(tree(&data).0, before);

    // A path missing from the restored files: refused before anything is removed.
    let refused = fill(
        &rt,
        fill_spec(
            &volume,
            restored.path(),
            &["/kept", "/nope"],
            FillMode::Replace,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "path /nope is not in the restored files"
    );
    assert_eq!(tree(&data).0, before);

    // A link that stays inside: the data goes where the link leads, and the link stays.
    fill(
        &rt,
        fill_spec(&volume, restored.path(), &["/uploads"], FillMode::Replace),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_link(data.join("uploads")).unwrap(),
        PathBuf::from("store/uploads")
    );
    assert_eq!(
        tree(&data.join("store/uploads")).0,
        as_filled(&tree(&restored.path().join("uploads")).0)
    );
    assert_eq!(std::fs::read(data.join("kept/file")).unwrap(), b"kept\n");
}
