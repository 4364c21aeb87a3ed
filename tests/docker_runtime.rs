//! The real Docker adapter behind `Runtime`, against the real engine: exec streaming, helper
//! and job containers (output, exit codes, timeouts, removal in every case), stop/start, the
//! "who writes to this volume" query, leftover cleanup, and finding host paths through a
//! container's mounts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use marina::docker::own_container::{
    HostPathError, container_id_from_cgroup, container_id_from_mountinfo, host_path,
};
use marina::docker::{
    DockerClient, DockerRuntime, ExecSpec, HelperSpec, JobContainerSpec, MountSpec, OutputLine,
    OutputStream, PullPolicy, RunOutcome, Runtime, RuntimeError,
};
use marina::model::labels::JOB_LABEL;
use marina::model::{ContainerState, Secret};
use support::{
    BUSYBOX_IMAGE, ContainerGuard, VolumeGuard, build_image, containers_with_label, docker,
    docker_async, eventually, require_engine_and_images, show_marina_logs, unique_name,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

async fn runtime() -> DockerRuntime {
    require_engine_and_images();
    show_marina_logs();
    DockerRuntime::new(DockerClient::connect().await.unwrap())
}

/// A running busybox container that sleeps; `extra` goes before the image (mounts, labels).
fn sleeper(extra: &[&str]) -> ContainerGuard {
    let name = unique_name("sleeper");
    let guard = ContainerGuard(name.clone());
    let mut args = vec!["run", "--detach", "--name", &name];
    args.extend_from_slice(extra);
    args.extend([BUSYBOX_IMAGE, "sleep", "600"]);
    docker(&args);
    guard
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]
}

/// Collects output lines from a callback that must be `Send`.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<OutputLine>>>);

impl Lines {
    fn sink(&self) -> impl FnMut(OutputLine) + Send + use<> {
        let lines = self.0.clone();
        move |line| lines.lock().unwrap().push(line)
    }

    fn texts(&self, stream: OutputStream) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.clone())
            .collect()
    }
}

fn job_label(job: &str) -> String {
    format!("{JOB_LABEL}={job}")
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_streams_64_mib_of_binary_output_in_chunks() {
    const SIZE: u64 = 64 * 1024 * 1024;
    let rt = runtime().await;
    let container = sleeper(&[]);
    // The container hashes exactly what it writes to stdout (through a fifo) and reports the
    // hash on stderr, so stdout and stderr are checked apart in one run.
    let script = format!(
        "mkdir -p /tmp && mkfifo /tmp/f && sha256sum </tmp/f >&2 & sleep 0.2; \
         head -c {SIZE} /dev/urandom | tee /tmp/f; wait"
    );
    let mut stream = rt
        .exec(ExecSpec::new(&container.0, sh(&script)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    let mut file = tokio::fs::File::create(&copy).await.unwrap();
    let mut buffer = vec![0; 8 * 1024 * 1024];
    let (mut reads, mut largest, mut total) = (0_u64, 0, 0_u64);
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        largest = largest.max(n);
        total += n as u64;
        file.write_all(&buffer[..n]).await.unwrap();
    }
    file.flush().await.unwrap();
    assert_eq!(total, SIZE);
    // Streamed in small pieces even though every read offered 8 MiB.
    assert!(largest <= 1024 * 1024, "largest read {largest}");
    assert!(reads >= 64, "only {reads} reads");

    let outcome = stream.finish().await.unwrap();
    assert_eq!(outcome.exit_code, 0, "stderr: {}", outcome.stderr);
    assert_eq!(outcome.stdout_bytes, SIZE);
    let inside = outcome.stderr.split_whitespace().next().unwrap().to_owned();
    let here = std::process::Command::new("sha256sum")
        .arg(&copy)
        .output()
        .unwrap();
    let here = String::from_utf8(here.stdout).unwrap();
    assert_eq!(here.split_whitespace().next().unwrap(), inside);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_command_reports_its_exit_code_and_stderr() {
    let rt = runtime().await;
    let container = sleeper(&[]);
    let script = "echo partial; echo oops >&2; exit 7";

    let mut stream = rt
        .exec(ExecSpec::new(&container.0, sh(script)))
        .await
        .unwrap();
    let mut stdout = String::new();
    stream.read_to_string(&mut stdout).await.unwrap();
    assert_eq!(stdout, "partial\n");
    let outcome = stream.finish().await.unwrap();
    assert_eq!(outcome.exit_code, 7);
    assert_eq!(outcome.stderr, "oops\n");

    let lines = Lines::default();
    let code = rt
        .exec_capture(ExecSpec::new(&container.0, sh(script)), lines.sink())
        .await
        .unwrap();
    assert_eq!(code, 7);
    assert_eq!(lines.texts(OutputStream::Stdout), ["partial"]);
    assert_eq!(lines.texts(OutputStream::Stderr), ["oops"]);

    // A program that does not exist is a failed command, not a broken runtime.
    let code = rt
        .exec_capture(
            ExecSpec::new(&container.0, vec!["no-such-program".to_owned()]),
            |_| {},
        )
        .await
        .unwrap();
    assert!(code == 126 || code == 127, "exit code {code}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_takes_a_user_extra_environment_and_stdin_and_records_no_secret() {
    let rt = runtime().await;
    let container = sleeper(&[]);
    let spec = ExecSpec::new(&container.0, sh("id -u; echo \"$GREETING\"; cat"))
        .user("65534:65534")
        .env("GREETING", Secret::new("hello-secret".to_owned()))
        .stdin(&b"from stdin\n"[..]);
    let mut stream = rt.exec(spec).await.unwrap();
    let mut stdout = String::new();
    stream.read_to_string(&mut stdout).await.unwrap();
    assert_eq!(stdout, "65534\nhello-secret\nfrom stdin\n");
    let exec_id = stream.exec_id().to_owned();
    assert_eq!(stream.finish().await.unwrap().exit_code, 0);

    let status = rt.inspect_exec(&exec_id).await.unwrap();
    assert!(!status.running);
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(status.command[..2], ["sh", "-c"]);
    assert_eq!(status.user.as_deref(), Some("65534:65534"));
    assert!(!status.command.concat().contains("hello-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_needs_an_existing_running_container() {
    let rt = runtime().await;
    let missing = rt
        .exec(ExecSpec::new(unique_name("missing"), sh("true")))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, RuntimeError::NoSuchContainer { .. }),
        "{missing}"
    );
    let name = unique_name("stopped");
    let _stopped = ContainerGuard(name.clone());
    docker(&["create", "--name", &name, BUSYBOX_IMAGE, "true"]);
    let stopped = rt.exec(ExecSpec::new(&name, sh("true"))).await.unwrap_err();
    assert!(
        matches!(stopped, RuntimeError::Container { .. }),
        "{stopped}"
    );
    assert!(stopped.to_string().contains(&name), "{stopped}");
}

/// A volume with two files, one in a sub-directory.
fn filled_volume() -> VolumeGuard {
    let volume = VolumeGuard(unique_name("vol"));
    docker(&["volume", "create", &volume.0]);
    let mount = format!("{}:/data", volume.0);
    docker(&[
        "run",
        "--rm",
        "-v",
        &mount,
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "mkdir -p /data/sub && echo hello > /data/a.txt && echo deep > /data/sub/b.txt",
    ]);
    volume
}

fn helper(job: &str, volume: &str, staging: &Path, script: &str) -> HelperSpec {
    HelperSpec {
        image: BUSYBOX_IMAGE.to_owned(),
        job_id: job.to_owned(),
        owner: "test".into(),
        mounts: vec![
            MountSpec::Volume {
                volume: volume.to_owned(),
                target: "/source".to_owned(),
                read_only: true,
            },
            MountSpec::Bind {
                source: staging.to_owned(),
                target: "/staging".to_owned(),
                read_only: false,
            },
        ],
        command: sh(script),
        pull: PullPolicy::IfMissing,
        timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helper_copies_a_read_only_volume_into_a_host_directory_and_is_removed() {
    let rt = runtime().await;
    let volume = filled_volume();
    let staging = tempfile::tempdir().unwrap();
    let job = unique_name("job");

    let lines = Lines::default();
    let spec = helper(
        &job,
        &volume.0,
        staging.path(),
        "cp -a /source/. /staging/ && echo copied",
    );
    let outcome = rt
        .run_helper(spec, lines.sink(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Exited(0));
    assert_eq!(lines.texts(OutputStream::Stdout), ["copied"]);
    let read = |p: &str| std::fs::read_to_string(staging.path().join(p)).unwrap();
    assert_eq!(read("a.txt"), "hello\n");
    assert_eq!(read("sub/b.txt"), "deep\n");
    assert!(containers_with_label(&job_label(&job)).is_empty());

    // The volume is mounted read-only: writing fails, and the failure is a result.
    let lines = Lines::default();
    let spec = helper(&job, &volume.0, staging.path(), "touch /source/nope");
    let outcome = rt
        .run_helper(spec, lines.sink(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Exited(1));
    let stderr = lines.texts(OutputStream::Stderr).concat();
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(containers_with_label(&job_label(&job)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helper_is_killed_and_removed_on_timeout_cancellation_and_drop() {
    let rt = runtime().await;
    let volume = filled_volume();
    let staging = tempfile::tempdir().unwrap();

    let job = unique_name("job");
    let spec = HelperSpec {
        timeout: Some(Duration::from_secs(1)),
        ..helper(&job, &volume.0, staging.path(), "sleep 300")
    };
    let outcome = rt
        .run_helper(spec, |_| {}, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::TimedOut);
    assert!(containers_with_label(&job_label(&job)).is_empty());

    let job = unique_name("job");
    let cancel = CancellationToken::new();
    let spec = helper(&job, &volume.0, staging.path(), "echo up; sleep 300");
    let trigger = cancel.clone();
    // Cancel as soon as the helper says it runs.
    let on_line = move |line: OutputLine| {
        if line.text == "up" {
            trigger.cancel();
        }
    };
    let outcome = rt.run_helper(spec, on_line, cancel).await.unwrap();
    assert_eq!(outcome, RunOutcome::Cancelled);
    assert!(containers_with_label(&job_label(&job)).is_empty());

    // The job is dropped midway (e.g. aborted): the guard removes the container.
    let job = unique_name("job");
    let spec = helper(&job, &volume.0, staging.path(), "sleep 300");
    let task = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.run_helper(spec, |_| {}, CancellationToken::new()).await })
    };
    let label = job_label(&job);
    eventually(30, "the helper starting", || {
        let filter = format!("label={label}");
        !docker(&["ps", "--quiet", "--filter", &filter])
            .trim()
            .is_empty()
    })
    .await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    eventually(15, "the dropped helper's removal", || {
        containers_with_label(&label).is_empty()
    })
    .await;
}

const BACKUP_SCRIPT: &str = r#"#!/bin/sh
case "$MODE" in
lines)
  echo started
  # Wait for the test to answer the first line: proves lines arrive while this runs.
  i=0
  while [ ! -f /backup/answer ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  [ -f /backup/answer ] || { echo "no answer" >&2; exit 9; }
  n=1
  while [ $n -le 1000 ]; do echo "line $n"; n=$((n+1)); done
  echo "to stderr" >&2
  printf '%s' "$MARINA_INSTANCE_ID" > /backup/instance.txt
  ;;
fail) echo failing >&2; exit 3 ;;
hang) echo hanging; sleep 300 ;;
esac
"#;

fn job_spec(image: &str, job: &str, host_dir: &Path, mode: &str) -> JobContainerSpec {
    JobContainerSpec {
        image: image.to_owned(),
        command: None,
        job_id: job.to_owned(),
        owner: "test".into(),
        instance_id: "nightly".to_owned(),
        env: vec![
            ("MODE".to_owned(), Secret::new(mode.to_owned())),
            (
                "MARINA_INSTANCE_ID".to_owned(),
                Secret::new("nightly".to_owned()),
            ),
        ],
        host_dir: host_dir.to_owned(),
        pull: PullPolicy::IfMissing,
        timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_container_without_entrypoint_runs_backup_sh_live_and_is_always_removed() {
    let rt = runtime().await;
    let image = format!("{}:latest", unique_name("custom"));
    let _image = build_image(
        &image,
        &format!("FROM {BUSYBOX_IMAGE}\nCOPY backup.sh /backup.sh\n"),
        &[("backup.sh", BACKUP_SCRIPT)],
    );
    let host_dir = tempfile::tempdir().unwrap();

    // Lines arrive live, in order, none lost; stderr apart; /backup is the host directory.
    let job = unique_name("job");
    let lines = Lines::default();
    let answer = host_dir.path().join("answer");
    let sink = {
        let mut collect = lines.sink();
        move |line: OutputLine| {
            if line.text == "started" {
                std::fs::write(&answer, "go").unwrap();
            }
            collect(line);
        }
    };
    let outcome = rt
        .run_job_container(
            job_spec(&image, &job, host_dir.path(), "lines"),
            sink,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Exited(0),
        "{:?}",
        lines.texts(OutputStream::Stderr)
    );
    let expected: Vec<String> = std::iter::once("started".to_owned())
        .chain((1..=1000).map(|n| format!("line {n}")))
        .collect();
    assert_eq!(lines.texts(OutputStream::Stdout), expected);
    assert_eq!(lines.texts(OutputStream::Stderr), ["to stderr"]);
    assert_eq!(
        std::fs::read_to_string(host_dir.path().join("instance.txt")).unwrap(),
        "nightly"
    );
    assert!(containers_with_label(&job_label(&job)).is_empty());

    // A failing script's exit code is the result.
    let job = unique_name("job");
    let lines = Lines::default();
    let outcome = rt
        .run_job_container(
            job_spec(&image, &job, host_dir.path(), "fail"),
            lines.sink(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Exited(3));
    assert_eq!(lines.texts(OutputStream::Stderr), ["failing"]);
    assert!(containers_with_label(&job_label(&job)).is_empty());

    // A hanging script is killed at the timeout and removed.
    let job = unique_name("job");
    let spec = JobContainerSpec {
        timeout: Some(Duration::from_secs(2)),
        ..job_spec(&image, &job, host_dir.path(), "hang")
    };
    let lines = Lines::default();
    let outcome = rt
        .run_job_container(spec, lines.sink(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::TimedOut);
    assert_eq!(lines.texts(OutputStream::Stdout), ["hanging"]);
    assert!(containers_with_label(&job_label(&job)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_container_uses_the_image_entrypoint_and_copes_without_a_registry() {
    let rt = runtime().await;
    let image = format!("{}:v1", unique_name("entry"));
    let _image = build_image(
        &image,
        &format!(
            "FROM {BUSYBOX_IMAGE}\nCOPY entry.sh /entry.sh\nCOPY backup.sh /backup.sh\n\
             ENTRYPOINT [\"/entry.sh\"]\nCMD [\"from-cmd\"]\n"
        ),
        &[
            ("entry.sh", "#!/bin/sh\necho \"entrypoint $1\"\n"),
            ("backup.sh", "#!/bin/sh\necho wrong\nexit 1\n"),
        ],
    );
    let host_dir = tempfile::tempdir().unwrap();

    // No registry answers here: pulling fails, the local image is used with a warning.
    let job = unique_name("job");
    let lines = Lines::default();
    let spec = JobContainerSpec {
        pull: PullPolicy::Always,
        ..job_spec(&image, &job, host_dir.path(), "")
    };
    let outcome = rt
        .run_job_container(spec, lines.sink(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Exited(0));
    assert_eq!(lines.texts(OutputStream::Stdout), ["entrypoint from-cmd"]);
    assert!(containers_with_label(&job_label(&job)).is_empty());

    // A missing image that cannot be pulled is an error, and nothing is left behind.
    let missing = format!("{}:nope", unique_name("missing"));
    let job = unique_name("job");
    let error = rt
        .run_job_container(
            job_spec(&missing, &job, host_dir.path(), ""),
            |_| {},
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RuntimeError::ImageMissing { image, .. } if *image == missing),
        "{error}"
    );
    assert!(containers_with_label(&job_label(&job)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_container_runs_the_command_it_is_given_instead_of_the_image_entrypoint() {
    let rt = runtime().await;
    let image = format!("{}:v1", unique_name("restore-cmd"));
    let _image = build_image(
        &image,
        &format!(
            "FROM {BUSYBOX_IMAGE}\nCOPY entry.sh /entry.sh\nCOPY restore.sh /restore.sh\n\
             ENTRYPOINT [\"/entry.sh\"]\nCMD [\"from-cmd\"]\n"
        ),
        &[
            ("entry.sh", "#!/bin/sh\necho \"entrypoint $*\"\n"),
            ("restore.sh", "#!/bin/sh\necho \"restore $# $*\"\n"),
        ],
    );
    let host_dir = tempfile::tempdir().unwrap();
    for (command, expected) in [
        // Neither the image's ENTRYPOINT nor its CMD: exactly the command.
        (vec!["/restore.sh".to_owned()], "restore 0 "),
        (sh("echo \"shell $MODE\""), "shell given"),
    ] {
        let job = unique_name("job");
        let lines = Lines::default();
        let spec = JobContainerSpec {
            command: Some(command),
            ..job_spec(&image, &job, host_dir.path(), "given")
        };
        let outcome = rt
            .run_job_container(spec, lines.sink(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(outcome, RunOutcome::Exited(0));
        assert_eq!(lines.texts(OutputStream::Stdout), [expected]);
        assert!(containers_with_label(&job_label(&job)).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn whether_an_image_holds_a_file_is_seen_without_starting_it() {
    let rt = runtime().await;
    let image = format!("{}:v1", unique_name("has-file"));
    // No ENTRYPOINT and no CMD: such an image can still be looked into.
    let _image = build_image(
        &image,
        "FROM scratch\nCOPY restore.sh /restore.sh\nCOPY restore.sh /tools/restore.sh\n",
        &[("restore.sh", "#!/bin/sh\ntouch /started\n")],
    );
    let owner = unique_name("owner");
    let label = format!("dev.polarfox.marina.owner={owner}");
    for (path, expected) in [
        ("/restore.sh", true),
        ("/tools/restore.sh", true),
        ("/tools", false),
        ("/backup.sh", false),
        ("/nowhere/restore.sh", false),
    ] {
        let found = rt
            .image_has_file(&image, path, &owner, PullPolicy::Never)
            .await
            .unwrap();
        assert_eq!(found, expected, "{path}");
    }
    assert!(
        containers_with_label(&label).is_empty(),
        "the containers made to look were removed"
    );
    let missing = format!("{}:nope", unique_name("missing"));
    let error = rt
        .image_has_file(&missing, "/restore.sh", &owner, PullPolicy::IfMissing)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RuntimeError::ImageMissing { image, .. } if *image == missing),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_stop_and_start_and_report_their_state() {
    let rt = runtime().await;
    let container = sleeper(&["--env", "SOME_PASSWORD=pw-1"]);
    let details = rt.inspect_container(&container.0).await.unwrap();
    assert_eq!(details.state, ContainerState::Running);
    assert_eq!(details.name, container.0);
    assert_eq!(details.env["SOME_PASSWORD"].expose(), "pw-1");
    assert!(!format!("{details:?}").contains("pw-1"));

    rt.stop_container(&container.0, Duration::from_secs(1))
        .await
        .unwrap();
    let stopped = rt.inspect_container(&details.id).await.unwrap();
    assert_eq!(stopped.state, ContainerState::Exited);
    // Stopping again is fine.
    rt.stop_container(&container.0, Duration::from_secs(1))
        .await
        .unwrap();

    rt.start_container(&container.0).await.unwrap();
    let started = rt.inspect_container(&container.0).await.unwrap();
    assert_eq!(started.state, ContainerState::Running);
    rt.start_container(&container.0).await.unwrap();

    let missing = unique_name("missing");
    let error = rt.inspect_container(&missing).await.unwrap_err();
    assert!(
        matches!(error, RuntimeError::NoSuchContainer { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_running_read_write_mounters_are_writers() {
    let rt = runtime().await;
    let volume = VolumeGuard(unique_name("vol"));
    docker(&["volume", "create", &volume.0]);
    let rw = format!("{}:/data", volume.0);
    let ro = format!("{}:/data:ro", volume.0);
    let writer = sleeper(&["-v", &rw]);
    let _reader = sleeper(&["-v", &ro]);
    let _bystander = sleeper(&[]);
    let idle = ContainerGuard(unique_name("idle"));
    docker(&[
        "create",
        "--name",
        &idle.0,
        "-v",
        &rw,
        BUSYBOX_IMAGE,
        "true",
    ]);

    let writers = rt.running_writers(&volume.0).await.unwrap();
    assert_eq!(
        writers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        [writer.0.as_str()]
    );
    assert_eq!(writers[0].id.len(), 64);
}

#[tokio::test(flavor = "multi_thread")]
async fn leftovers_are_removed_by_label_in_any_state() {
    let rt = runtime().await;
    let job = unique_name("job");
    let label = job_label(&job);
    let running = sleeper(&["--label", &label]);
    let exited = ContainerGuard(unique_name("exited"));
    docker(&[
        "run",
        "--name",
        &exited.0,
        "--label",
        &label,
        BUSYBOX_IMAGE,
        "true",
    ]);
    let created = ContainerGuard(unique_name("created"));
    docker(&[
        "create",
        "--name",
        &created.0,
        "--label",
        &label,
        BUSYBOX_IMAGE,
    ]);
    let unrelated = sleeper(&[]);

    let mut removed: Vec<String> = rt
        .remove_containers_with_label(&label)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    removed.sort();
    let mut expected = vec![running.0.clone(), exited.0.clone(), created.0.clone()];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(containers_with_label(&label).is_empty());
    let still = docker(&["inspect", "--format", "{{.State.Running}}", &unrelated.0]);
    assert_eq!(still.trim(), "true");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_containers_paths_map_to_host_paths_through_its_mounts() {
    let rt = runtime().await;
    let staging = tempfile::tempdir().unwrap();
    let volume = VolumeGuard(unique_name("vol"));
    docker(&["volume", "create", &volume.0]);
    let bind = format!("{}:/backup", staging.path().display());
    let data = format!("{}:/data", volume.0);
    let container = sleeper(&["--hostname", "not-the-id", "-v", &bind, "-v", &data]);
    let id = docker(&["inspect", "--format", "{{.Id}}", &container.0])
        .trim()
        .to_owned();

    // What Marina would read about itself in that container identifies it.
    let mountinfo = docker_async(&["exec", &container.0, "cat", "/proc/self/mountinfo"]).await;
    assert_eq!(
        container_id_from_mountinfo(&mountinfo).as_deref(),
        Some(id.as_str())
    );
    let cgroup = docker_async(&["exec", &container.0, "cat", "/proc/self/cgroup"]).await;
    // cgroup v1 names the container; v2 with a private namespace names nothing — never another.
    let from_cgroup = container_id_from_cgroup(&cgroup);
    assert!(
        from_cgroup.is_none() || from_cgroup.as_deref() == Some(id.as_str()),
        "{cgroup}"
    );

    let mapped = host_path(
        &rt,
        Some(&id),
        Path::new("/backup/nightly/20270101T000000Z"),
    )
    .await
    .unwrap();
    assert_eq!(mapped, staging.path().join("nightly/20270101T000000Z"));
    let root = host_path(&rt, Some(&id), Path::new("/backup"))
        .await
        .unwrap();
    assert_eq!(root, staging.path());
    let mountpoint = docker(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        &volume.0,
    ]);
    let in_volume = host_path(&rt, Some(&id), Path::new("/data/x"))
        .await
        .unwrap();
    assert_eq!(in_volume, PathBuf::from(mountpoint.trim()).join("x"));
    let error = host_path(&rt, Some(&id), Path::new("/srv/staging"))
        .await
        .unwrap_err();
    assert!(matches!(error, HostPathError::NotMounted { .. }), "{error}");
    // As a host binary, a path is its own host path.
    let own = host_path(&rt, None, Path::new("/srv/staging"))
        .await
        .unwrap();
    assert_eq!(own, Path::new("/srv/staging"));
}
