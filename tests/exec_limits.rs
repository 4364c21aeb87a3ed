//! Commands Marina runs inside containers with `docker exec` (hooks, dumps), end to end against
//! the real engine: a hook or dump past its deadline is killed *inside* the container, a
//! database container recreated between scheduling and its dump is found again by name, and
//! hooks run in any running container that mounts the volume, read-only ones included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::Path;
use std::time::Duration;

use marina::docker::{
    Deadline, DockerClient, DockerRuntime, ExecLimits, ExecSpec, KillOutcome, Runtime, RuntimeError,
};
use support::daemon::Daemon;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, DB_IMAGE, docker, docker_output, filled_volume,
    require_engine_and_images, running_app, unique_name,
};

const PASSWORD: &str = "exec-limits-password";

/// A `pg_dumpall` that never writes a byte and never exits.
const HANGING_DUMP: &str = "#!/bin/sh\nsleep 6124\n";

/// Whether a process with `needle` (a regex that does not match itself, e.g. `61[2]3`) on its
/// command line is alive in `container` (a zombie has an empty command line).
fn process_alive(container: &str, needle: &str) -> bool {
    let script = format!("grep -l '{needle}' /proc/[0-9]*/cmdline");
    docker_output(&["exec", container, "sh", "-c", &script])
        .status
        .success()
}

#[tokio::test]
async fn a_hanging_hook_and_a_hanging_dump_are_killed_inside_their_containers() {
    require_engine_and_images();
    let image = format!("marina-test/hanging-dump:{}", std::process::id());
    let _image = support::build_image(
        &image,
        "FROM marina-test/busybox:latest\nCOPY pg_dumpall /bin/pg_dumpall\n",
        &[("pg_dumpall", HANGING_DUMP)],
    );
    let (volume, _volume) = filled_volume("unused", "echo data > /data/file");
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let db = unique_name("db");
    let _db = ContainerGuard(db.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &db,
        &image,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    // The hook ignores TERM (and so does its sleep, which inherits that): only KILL ends it.
    let config = format!(
        "instances:\n  - id: hang\n    customImage: marina-test/never-run:1\n    schedule: '0 3 * * *'\n    hookTimeout: 3s\n    resticTimeout: 4s\n    targets:\n      - volume: {volume}\n        preHook: \"trap '' TERM; sleep 6123\"\n      - db: {db}\n        dbKind: postgres\n"
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina
        .wait_for("/api/instances/hang", 20, "both targets ready", |i| {
            i["targets"].as_array().is_some_and(|t| {
                t.len() == 2 && t.iter().all(|t| t["conditions"][0]["status"] == "True")
            })
        })
        .await;
    let id = marina.trigger("hang").await;
    support::eventually(20, "the hook running in the app container", || {
        process_alive(&app, "61[2]3")
    })
    .await;
    let job = marina.wait_job("hang", id, 60).await;
    let log = marina.job_log(id).await.join("\n");
    assert_eq!(job["status"], "failed", "{log}");
    assert!(
        log.contains(&format!(
            "pre-hook in container {app} ran longer than hookTimeout 3s and was killed"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "pg_dumpall in container {db} ran longer than resticTimeout 4s and was killed"
        )),
        "{log}"
    );
    assert!(
        !process_alive(&app, "61[2]3"),
        "the hook's sleep still runs in the app container"
    );
    assert!(
        !process_alive(&db, "61[2]4"),
        "the dump tool still runs in the db container"
    );
    assert!(
        process_alive(&app, "while true"),
        "the container's own processes are left alone"
    );
}

#[tokio::test]
async fn a_job_timeout_kills_the_running_hook_inside_its_container() {
    require_engine_and_images();
    let (volume, _volume) = filled_volume("unused", "echo data > /data/file");
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let config = format!(
        "instances:\n  - id: slow\n    customImage: marina-test/never-run:1\n    schedule: '0 3 * * *'\n    timeout: 3s\n    targets:\n      - volume: {volume}\n        preHook: 'sleep 6127'\n"
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina
        .wait_for("/api/instances/slow", 20, "the target ready", |i| {
            i["targets"][0]["conditions"][0]["status"] == "True"
        })
        .await;
    let id = marina.trigger("slow").await;
    let job = marina.wait_job("slow", id, 30).await;
    let log = marina.job_log(id).await.join("\n");
    assert_eq!(job["status"], "timed_out", "{log}");
    assert!(
        log.contains(&format!(
            "pre-hook in container {app} was stopped because its job was stopped"
        )),
        "{log}"
    );
    assert!(!process_alive(&app, "61[2]7"), "the hook still runs");
}

fn restic(repo: &Path, args: &[&str]) -> std::process::Output {
    support::restore::restic(repo, PASSWORD, args)
}

fn start_postgres(name: &str) {
    docker(&[
        "run",
        "--detach",
        "--name",
        name,
        "--env",
        "POSTGRES_PASSWORD=pg-pass",
        DB_IMAGE,
        "postgres",
    ]);
    support::wait_until_exec_succeeds(name, &["pg_isready", "-U", "postgres"], 60);
}

#[tokio::test]
async fn a_database_container_recreated_before_its_dump_is_found_again_by_name() {
    require_engine_and_images();
    let (volume, _volume) = filled_volume("unused", "echo data > /data/file");
    let (app, _app) = running_app(&format!("{volume}:/data"));
    let pg = unique_name("pg");
    let _pg = ContainerGuard(pg.clone());
    start_postgres(&pg);
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("repo");
    // The volume's pre-hook holds the job until the test has recreated the database.
    let config = format!(
        "instances:\n  - id: recreated\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n    targets:\n      - volume: {volume}\n        preHook: 'while [ ! -e /data/go ]; do sleep 0.2; done'\n      - db: {pg}\n        dbKind: postgres\n",
        repo.display()
    );
    let marina = Daemon::start(&config);
    marina.wait_ready().await;
    marina
        .wait_for("/api/instances/recreated", 20, "both targets ready", |i| {
            i["targets"].as_array().is_some_and(|t| {
                t.len() == 2 && t.iter().all(|t| t["conditions"][0]["status"] == "True")
            })
        })
        .await;
    let old_id = docker(&["inspect", "--format", "{{.Id}}", &pg]);
    let id = marina.trigger("recreated").await;
    support::eventually(30, "the pre-hook waiting", || {
        process_alive(&app, "/data/g[o]")
    })
    .await;
    docker(&["rm", "--force", &pg]);
    start_postgres(&pg);
    let new_id = docker(&["inspect", "--format", "{{.Id}}", &pg]);
    assert_ne!(old_id, new_id);
    docker(&[
        "exec",
        &pg,
        "psql",
        "-U",
        "postgres",
        "-c",
        "CREATE TABLE reborn (name text); INSERT INTO reborn VALUES ('phoenix');",
    ]);
    docker(&["exec", &app, "touch", "/data/go"]);

    let job = marina.wait_job("recreated", id, 120).await;
    let log = marina.job_log(id).await.join("\n");
    assert_eq!(job["status"], "success", "{log}");
    assert!(
        log.contains("recreated since the job was scheduled"),
        "{log}"
    );
    let output = restic(
        &repo,
        &[
            "dump",
            "latest",
            &format!("/{pg}/dump.sql"),
            "--tag",
            &format!("db:{pg}"),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8_lossy(&output.stdout);
    assert!(dump.contains("CREATE TABLE public.reborn"), "{dump}");
    assert!(dump.contains("phoenix"), "{dump}");
}

#[tokio::test]
async fn hooks_run_in_a_read_only_mounter_and_labels_never_see_marinas_environment() {
    require_engine_and_images();
    let (volume, _volume) = filled_volume("ro", "echo data > /data/file");
    // The only running container mounts the volume read-only.
    let (app, _app) = running_app(&format!("{volume}:/data:ro"));
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("repo");
    // The label's `$MARINA_ONLY_VAR` must reach the container's shell as written.
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=ro",
        "--label",
        "dev.polarfox.marina.allowEmpty=true",
        "--label",
        "dev.polarfox.marina.pre=echo \"label hook saw [$MARINA_ONLY_VAR]\"",
        &format!("{volume}-labelled"),
    ]);
    let labelled = support::VolumeGuard(format!("{volume}-labelled"));
    let _other = running_app(&format!("{}:/other:ro", labelled.0));
    let config = format!(
        "instances:\n  - id: ro\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n    targets:\n      - volume: {volume}\n        preHook: 'echo config hook ran in $(cat /etc/hostname)'\n        allowEmpty: true\n",
        repo.display()
    );
    let marina = Daemon::start_with_env(&config, &[("MARINA_ONLY_VAR", "marina-secret-value")]);
    marina.wait_ready().await;
    marina
        .wait_for("/api/instances/ro", 20, "both targets", |i| {
            i["targets"].as_array().is_some_and(|t| t.len() == 2)
        })
        .await;
    let id = marina.trigger("ro").await;
    let job = marina.wait_job("ro", id, 120).await;
    let log = marina.job_log(id).await.join("\n");
    let hostname = docker(&["inspect", "--format", "{{.Config.Hostname}}", &app]);
    assert!(
        log.contains(&format!("config hook ran in {}", hostname.trim())),
        "the hook runs in the read-only mounter: {log}"
    );
    assert!(
        !log.contains("No running container mounts the volume"),
        "{log}"
    );
    assert!(log.contains("label hook saw []"), "{log}");
    assert!(!log.contains("marina-secret-value"), "{log}");
    assert_eq!(job["status"], "success", "{log}");
}

async fn runtime() -> DockerRuntime {
    DockerRuntime::new(DockerClient::connect().await.unwrap())
}

/// A container of `image` running `sleep 300`.
fn sleeper_of(image: &str) -> ContainerGuard {
    let name = unique_name("sleeper");
    let guard = ContainerGuard(name.clone());
    docker(&["run", "--detach", "--name", &name, image, "sleep", "300"]);
    guard
}

#[tokio::test]
async fn an_exec_dropped_by_its_caller_is_killed_and_a_container_without_sh_is_reported() {
    require_engine_and_images();
    let rt = runtime().await;

    // Dropped (its caller timed out on its own): the process does not live on.
    let ctr = sleeper_of(BUSYBOX_IMAGE);
    let spec = ExecSpec::new(&ctr.0, vec!["sleep".into(), "6125".into()]);
    let run = rt.exec_capture(spec, |_| {});
    assert!(
        tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .is_err()
    );
    support::eventually(15, "the dropped exec killed", || {
        !process_alive(&ctr.0, "61[2]5")
    })
    .await;

    // No sh to kill with: the answer says the process may still run, and it does.
    let image = format!("marina-test/no-sh:{}", std::process::id());
    let _image = support::build_image(
        &image,
        "FROM marina-test/busybox:latest\nRUN [\"/bin/busybox\", \"rm\", \"/bin/sh\"]\n",
        &[],
    );
    let bare = sleeper_of(&image);
    let spec = ExecSpec::new(&bare.0, vec!["sleep".into(), "6126".into()])
        .what(format!("a probe in container {}", bare.0))
        .limits(ExecLimits {
            deadline: Some(Deadline::after(Duration::from_secs(2), "the test limit")),
            cancel: None,
        });
    let error = rt.exec_capture(spec, |_| {}).await.unwrap_err();
    let RuntimeError::Interrupted(interrupted) = &error else {
        panic!("{error}");
    };
    assert_eq!(interrupted.kill, KillOutcome::NoShell, "{error}");
    assert!(
        error
            .to_string()
            .contains("could not be killed inside the container (it has no sh)"),
        "{error}"
    );
    let ps = docker(&["top", &bare.0]);
    assert!(ps.contains("sleep 6126"), "{ps}");
}
