//! The example custom backend in `examples/custom-backup-image/` works with the real Marina.
//! Built from its own Dockerfile and scripts (on the local busybox base instead of alpine,
//! as no registry is reachable here) and run by `marina run` for a labelled volume, it leaves
//! an archive whose checksum holds and whose contents are the volume's files byte for byte,
//! it keeps only `KEEP_LAST` archives, and it fails the job with a clear reason when its
//! destination is missing or unusable. The by-hand command of its README works as written,
//! for `backup.sh` and for `restore.sh`, which extracts only the target from a checked
//! archive (`latest` never being a pre-restore one) and refuses what it cannot restore.
//! Restores through Marina are in `tests/custom_image_restore.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::daemon::Daemon;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, ImageGuard, docker, docker_output, filled_volume,
    require_engine_and_images, unique_name,
};

/// Builds the example image from its own Dockerfile and scripts, with the base image
/// swapped for the local busybox one; the guard removes the image.
fn build_example_image() -> (String, ImageGuard) {
    support::build_custom_example_image()
}

/// One entry of a directory tree, with everything a restore must give back.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir { mode: u32 },
    File { mode: u32, bytes: Vec<u8> },
    Symlink(PathBuf),
}

/// Every file, directory and symlink under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let mode = metadata.permissions().mode() & 0o7777;
            let value = if metadata.is_symlink() {
                Entry::Symlink(std::fs::read_link(&path).unwrap())
            } else if metadata.is_dir() {
                pending.push(path.clone());
                Entry::Dir { mode }
            } else {
                Entry::File {
                    mode,
                    bytes: std::fs::read(&path).unwrap(),
                }
            };
            entries.insert(path.strip_prefix(root).unwrap().to_path_buf(), value);
        }
    }
    entries
}

/// The names in `dir`, sorted; none when it does not exist.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn volume_dir(volume: &str) -> PathBuf {
    PathBuf::from(docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Checks archive `name` in `dir` the way the README restores it: `sha256sum -c`, then
/// `tar -xzf`. The archive must hold `vol/<volume>` and nothing else, equal to `expected`,
/// and its listing must be what tar lists.
fn verify_archive(dir: &Path, name: &str, volume: &str, expected: &BTreeMap<PathBuf, Entry>) {
    let checked = run(Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(dir));
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout).trim(),
        format!("{name}: OK")
    );
    let restored = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .args(["--numeric-owner", "-xzf"])
        .arg(dir.join(name))
        .arg("-C")
        .arg(restored.path()));
    assert_eq!(names(restored.path()), ["vol"], "the archive holds the run");
    assert_eq!(names(&restored.path().join("vol")), [volume]);
    let got = tree(&restored.path().join("vol").join(volume));
    assert!(
        &got == expected,
        "{name} does not restore the volume: got {:?}, expected {:?}",
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let listed = run(Command::new("tar").arg("-tzf").arg(dir.join(name)));
    assert_eq!(
        std::fs::read_to_string(dir.join(format!("{name}.list"))).unwrap(),
        String::from_utf8_lossy(&listed.stdout),
        "the listing beside {name} is its contents"
    );
}

const FILES: &str = "set -e; mkdir -p '/data/dir with spaces/nested'; \
    echo hello > '/data/dir with spaces/nested/file name.txt'; : > /data/empty-file; \
    ln -s 'dir with spaces/nested' /data/link; head -c 3000000 /dev/urandom > /data/random.bin; \
    printf 'one\\ntwo\\n' > /data/private.txt; chmod 600 /data/private.txt";

#[tokio::test]
async fn the_example_image_archives_each_run_verifiably_and_keeps_the_last_two() {
    require_engine_and_images();
    let (image, _image) = build_example_image();
    let instance = format!("example-{}", std::process::id());
    let (volume, _volume) = filled_volume(&instance, FILES);
    let marina = Daemon::start(&format!(
        "instances:\n  - id: {instance}\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{DEST_DIR: /backup/archives, KEEP_LAST: '2', GZIP_LEVEL: '1', API_TOKEN: token-never-printed}}\nnodeName: example-node\n"
    ));
    marina.wait_ready().await;
    marina
        .wait_for(
            &format!("/api/instances/{instance}"),
            20,
            "the labelled volume as a target",
            |i| i["targets"].as_array().is_some_and(|t| !t.is_empty()),
        )
        .await;
    // `/backup` in the image is this instance's staging directory on the host.
    let instance_root = marina.dir().join("staging").join(&instance);
    let archives = instance_root.join("archives");

    let mut written = Vec::new();
    for run in 1..=3 {
        if run == 3 {
            // The third archive must hold the data as it is at its run.
            let writer = unique_name("write");
            let _writer = ContainerGuard(writer.clone());
            docker(&[
                "run",
                "--name",
                &writer,
                "-v",
                &format!("{volume}:/data"),
                BUSYBOX_IMAGE,
                "sh",
                "-c",
                "echo third > /data/third.txt",
            ]);
        }
        let expected = tree(&volume_dir(&volume));
        let job = marina.trigger(&instance).await;
        let status = marina.wait_job(&instance, job, 120).await;
        let log = marina.job_log(job).await;
        assert_eq!(status["status"], "success", "run {run}: {log:#?}");
        // The script's progress reached the job log, live lines at INFO.
        for progress in [
            "INFO backup.sh: Run ",
            "INFO backup.sh: Packing /backup/",
            "INFO backup.sh: Archive verified: ",
            "INFO backup.sh: Checksum verified: ",
            "INFO backup.sh: Retention: ",
            "INFO backup.sh: Done.",
        ] {
            assert!(
                log.iter().any(|l| l.starts_with(progress)),
                "run {run}: no `{progress}` in {log:#?}"
            );
        }
        assert!(
            !log.iter().any(|l| l.contains("token-never-printed")),
            "a secret reached the job log: {log:#?}"
        );
        let name = log
            .iter()
            .find_map(|l| l.split("backup.sh: Wrote ").nth(1))
            .and_then(|rest| rest.split(", sha256 ").next())
            .unwrap_or_else(|| panic!("run {run}: no archive name in {log:#?}"))
            .to_owned();
        assert!(
            name.starts_with(&format!("{instance}-example-node-")) && name.ends_with("Z.tar.gz"),
            "{name}"
        );
        verify_archive(&archives, &name, &volume, &expected);
        if run == 3 {
            let deleted = format!("INFO backup.sh: Retention: deleted {}", written[0]);
            assert!(
                log.iter().any(|l| l.starts_with(&deleted)),
                "{deleted} missing from {log:#?}"
            );
        }
        written.push(name);
        // Run directories are named by the second they started: keep them apart.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    // Retention: the two newest archives, each with its checksum and listing, and nothing
    // half-written.
    let mut kept = Vec::new();
    for name in &written[1..] {
        kept.extend([
            name.clone(),
            format!("{name}.list"),
            format!("{name}.sha256"),
        ]);
    }
    kept.sort();
    assert_eq!(names(&archives), kept);
    // Marina removed each run's staging; the archives beside it stay.
    assert_eq!(names(&instance_root), ["archives"]);
    let label = format!("dev.polarfox.marina.instance={instance}");
    assert!(
        support::containers_with_label(&label).is_empty(),
        "the backup containers were removed"
    );
}

#[tokio::test]
async fn without_a_usable_destination_the_job_fails_and_says_why() {
    require_engine_and_images();
    let (image, _image) = build_example_image();
    let unset = format!("example-unset-{}", std::process::id());
    let unusable = format!("example-unusable-{}", std::process::id());
    let (_volume, _guard) = filled_volume(&format!("{unset},{unusable}"), "echo data > /data/f");
    // `/backup.sh` is a file, so no directory can be made below it.
    let marina = Daemon::start(&format!(
        "instances:\n  - id: {unset}\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{KEEP_LAST: '2'}}\n  - id: {unusable}\n    customImage: {image}\n    schedule: '0 3 * * *'\n    env: {{DEST_DIR: /backup.sh/archives}}\n"
    ));
    marina.wait_ready().await;
    for instance in [&unset, &unusable] {
        marina
            .wait_for(
                &format!("/api/instances/{instance}"),
                20,
                "the labelled volume as a target",
                |i| i["targets"].as_array().is_some_and(|t| !t.is_empty()),
            )
            .await;
    }
    let cases = [
        (&unset, "backup.sh: ERROR: DEST_DIR is not set"),
        (
            &unusable,
            "backup.sh: ERROR: cannot create DEST_DIR (/backup.sh/archives)",
        ),
    ];
    let mut jobs = Vec::new();
    for (instance, _) in cases {
        jobs.push(marina.trigger(instance).await);
    }
    for ((instance, reason), job) in cases.into_iter().zip(jobs) {
        let status = marina.wait_job(instance, job, 120).await;
        let log = marina.job_log(job).await;
        assert_eq!(status["status"], "failed", "{instance}: {log:#?}");
        for expected in [reason, "exited with code 1"] {
            assert!(
                log.iter().any(|l| l.contains(expected)),
                "{instance}: no `{expected}` in {log:#?}"
            );
        }
        assert!(
            !log.iter().any(|l| l.contains("backup.sh: Packing")),
            "{instance}: nothing was written: {log:#?}"
        );
        let staged = names(&marina.dir().join("staging").join(instance.as_str()));
        assert!(staged.is_empty(), "{instance} left {staged:?}");
        let label = format!("dev.polarfox.marina.instance={instance}");
        assert!(support::containers_with_label(&label).is_empty());
    }
}

/// `docker run --rm` of `image` with `/backup` bound to `root` and `env`, as the README's
/// local test does.
fn run_by_hand(image: &str, root: &Path, env: &[&str]) -> Output {
    run_by_hand_with(image, root, env, &[])
}

/// [`run_by_hand`] with more `docker run` options (`--entrypoint /restore.sh`).
fn run_by_hand_with(image: &str, root: &Path, env: &[&str], options: &[&str]) -> Output {
    let name = unique_name("by-hand");
    let _container = ContainerGuard(name.clone());
    let mut args = vec![
        "run".to_owned(),
        "--rm".to_owned(),
        "--name".to_owned(),
        name.clone(),
        "-v".to_owned(),
        format!("{}:/backup", root.display()),
    ];
    args.extend(options.iter().map(|o| (*o).to_owned()));
    for var in env {
        args.extend(["-e".to_owned(), (*var).to_owned()]);
    }
    args.push(image.to_owned());
    docker_output(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn the_readme_command_runs_the_image_by_hand_and_refuses_bad_input() {
    require_engine_and_images();
    let (image, _image) = build_example_image();
    let root = tempfile::tempdir().unwrap();
    let run_dir = root.path().join("20270101T000000Z/vol/app-data");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("hello.txt"), "hello\n").unwrap();
    let env = [
        "MARINA_INSTANCE_ID=try",
        "MARINA_HOSTNAME=my-host",
        "MARINA_BACKUP_DIR=/backup/20270101T000000Z",
        "DEST_DIR=/backup/archives",
    ];

    let output = run_by_hand(&image, root.path(), &env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("backup.sh: Done."), "{stdout}");
    let archives = root.path().join("archives");
    let name = "try-my-host-20270101T000000Z.tar.gz";
    let expected = tree(&root.path().join("20270101T000000Z/vol/app-data"));
    verify_archive(&archives, name, "app-data", &expected);

    // The same run archived again replaces its archive, whole and verified.
    std::fs::write(run_dir.join("later.txt"), "later\n").unwrap();
    let again = run_by_hand(&image, root.path(), &env);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}");
    assert!(
        stdout.contains("exists already; it is replaced"),
        "{stdout}"
    );
    let expected = tree(&root.path().join("20270101T000000Z/vol/app-data"));
    verify_archive(&archives, name, "app-data", &expected);

    std::fs::create_dir_all(root.path().join("20270102T000000Z")).unwrap();
    let refused: [(Vec<&str>, &str); 3] = [
        (env[..2].to_vec(), "MARINA_BACKUP_DIR is not set"),
        (
            [
                &env[..2],
                &env[3..],
                &["MARINA_BACKUP_DIR=/backup/20270102T000000Z"],
            ]
            .concat(),
            "the run directory /backup/20270102T000000Z is empty",
        ),
        (
            [&env[..], &["GZIP_LEVEL=11"]].concat(),
            "GZIP_LEVEL must be a number from 1 to 9",
        ),
    ];
    for (env, reason) in refused {
        let output = run_by_hand(&image, root.path(), &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{env:?}: {stderr}");
        assert!(
            stderr.contains(&format!("backup.sh: ERROR: {reason}")),
            "{env:?}: {stderr}"
        );
    }
    assert_eq!(
        names(&archives),
        [
            name.to_owned(),
            format!("{name}.list"),
            format!("{name}.sha256")
        ],
        "refused runs leave nothing behind"
    );
}

/// Backs up three runs of two volumes by hand, the third as a pre-restore backup; returns
/// each run's `app-data` as it was.
fn archive_three_runs(image: &str, root: &Path) -> Vec<BTreeMap<PathBuf, Entry>> {
    let mut runs = Vec::new();
    for (run, content, pre_restore) in [
        ("20270101T000000Z", "first", false),
        ("20270102T000000Z", "second", false),
        ("20270103T000000Z", "saved before a restore", true),
    ] {
        for volume in ["app-data", "other"] {
            let dir = root.join(run).join("vol").join(volume);
            std::fs::create_dir_all(dir.join("sub")).unwrap();
            std::fs::write(dir.join("sub/file.txt"), format!("{content} {volume}\n")).unwrap();
            std::os::unix::fs::symlink("sub/file.txt", dir.join("link")).unwrap();
            std::fs::set_permissions(
                dir.join("sub/file.txt"),
                std::fs::Permissions::from_mode(0o640),
            )
            .unwrap();
        }
        let mut env = vec![
            "MARINA_INSTANCE_ID=try".to_owned(),
            "MARINA_HOSTNAME=my-host".to_owned(),
            format!("MARINA_BACKUP_DIR=/backup/{run}"),
            "DEST_DIR=/backup/archives".to_owned(),
        ];
        if pre_restore {
            env.push("MARINA_PRE_RESTORE=1".to_owned());
        }
        let env: Vec<&str> = env.iter().map(String::as_str).collect();
        let output = run_by_hand(image, root, &env);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        runs.push(tree(&root.join(run).join("vol/app-data")));
        std::fs::remove_dir_all(root.join(run)).unwrap();
    }
    runs
}

/// Runs `/restore.sh` by hand as the README does, restoring `target` from `snapshot` into
/// the (new, empty) run directory `into`.
fn restore_by_hand(image: &str, root: &Path, snapshot: &str, target: &str, into: &str) -> Output {
    std::fs::create_dir_all(root.join(into)).unwrap();
    let env = [
        "MARINA_RESTORE=1".to_owned(),
        format!("MARINA_RESTORE_TARGET={target}"),
        format!("MARINA_RESTORE_SNAPSHOT={snapshot}"),
        "MARINA_INSTANCE_ID=try".to_owned(),
        "MARINA_HOSTNAME=my-host".to_owned(),
        format!("MARINA_BACKUP_DIR=/backup/{into}"),
        "DEST_DIR=/backup/archives".to_owned(),
    ];
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    run_by_hand_with(image, root, &env, &["--entrypoint", "/restore.sh"])
}

#[test]
fn restore_sh_by_hand_extracts_only_the_target_from_a_checked_archive() {
    require_engine_and_images();
    let (image, _image) = build_example_image();
    let root = tempfile::tempdir().unwrap();
    let runs = archive_three_runs(&image, root.path());
    let archives = root.path().join("archives");
    assert!(
        names(&archives).contains(&"try-my-host-20270103T000000Z-pre-restore.tar.gz".to_owned()),
        "{:?}",
        names(&archives)
    );
    for (snapshot, expected) in [
        // The newest scheduled run: a pre-restore archive is never `latest`.
        ("latest", &runs[1]),
        ("20270101T000000Z", &runs[0]),
        ("try-my-host-20270101T000000Z", &runs[0]),
        ("try-my-host-20270101T000000Z.tar.gz", &runs[0]),
        ("20270103T000000Z-pre-restore", &runs[2]),
    ] {
        let into = format!("restore-{}", unique_name("run"));
        let output = restore_by_hand(&image, root.path(), snapshot, "volume:app-data", &into);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{snapshot}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("restore.sh: Checksum verified: "),
            "{stdout}"
        );
        assert!(stdout.ends_with("restore.sh: Done.\n"), "{stdout}");
        let restored = root.path().join(&into);
        assert_eq!(names(&restored), ["vol"], "{snapshot}");
        assert_eq!(
            names(&restored.join("vol")),
            ["app-data"],
            "{snapshot}: only the target"
        );
        assert!(
            &tree(&restored.join("vol/app-data")) == expected,
            "{snapshot}: {stdout}"
        );
    }
}

#[test]
fn restore_sh_refuses_a_damaged_archive_and_what_it_cannot_restore() {
    require_engine_and_images();
    let (image, _image) = build_example_image();
    let root = tempfile::tempdir().unwrap();
    archive_three_runs(&image, root.path());
    let damaged = root
        .path()
        .join("archives/try-my-host-20270101T000000Z.tar.gz");
    let mut bytes = std::fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::create_dir_all(root.path().join("occupied/x")).unwrap();
    let refused = [
        (
            "20270101T000000Z",
            "volume:app-data",
            "fresh-1",
            "checksum mismatch for /backup/archives/try-my-host-20270101T000000Z.tar.gz",
        ),
        (
            "20261231T000000Z",
            "volume:app-data",
            "fresh-2",
            "there is no archive '20261231T000000Z' of instance try",
        ),
        (
            "latest",
            "volume:nothing",
            "fresh-3",
            "try-my-host-20270102T000000Z.tar.gz holds no vol/nothing: volume:nothing was not part of that backup",
        ),
        (
            "latest",
            "data",
            "fresh-4",
            "MARINA_RESTORE_TARGET is 'data', not volume:<name> or db:<name>",
        ),
        (
            "latest",
            "volume:app-data",
            "occupied",
            "MARINA_BACKUP_DIR (/backup/occupied) is not empty",
        ),
    ];
    for (snapshot, target, into, reason) in refused {
        let output = restore_by_hand(&image, root.path(), snapshot, target, into);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{snapshot} {target}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("restore.sh: ERROR: {reason}")),
            "{snapshot} {target}: {stderr}"
        );
        if into != "occupied" {
            assert!(
                names(&root.path().join(into)).is_empty(),
                "{snapshot} {target}: nothing extracted"
            );
        }
    }
    // Without MARINA_RESTORE=1 it refuses to run at all.
    let output = run_by_hand_with(
        &image,
        root.path(),
        &[
            "MARINA_BACKUP_DIR=/backup/fresh-1",
            "DEST_DIR=/backup/archives",
        ],
        &["--entrypoint", "/restore.sh"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("restore.sh: ERROR: MARINA_RESTORE is not 1"),
        "{stderr}"
    );
}
