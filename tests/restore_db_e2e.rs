//! Database restores that really run, end to end: `marina run` backs up real PostgreSQL,
//! MariaDB and Redis servers (from the locally built test image) into a real restic
//! repository; the data is then changed, and the API brings it back — into a new container
//! on no network and in place — and the rows and keys are compared with those at backup
//! time. The `mysql` kind is served by MariaDB's `mysql` client and `mysqldump`: Debian has
//! no Oracle MySQL server to test against.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use serde_json::{Value, json};
use support::daemon::Daemon;
use support::{ContainerGuard, docker, require_engine_and_images, unique_name};

const PASSWORD: &str = "restore-db-password";

/// One database server under test: how to fill it, change it and read it.
struct Engine {
    /// `docker run marina-test/db <server>`.
    server: &'static str,
    /// The `dev.polarfox.marina.db` label.
    kind: &'static str,
    env: &'static [&'static str],
    ready: &'static [&'static str],
    fill: &'static [&'static str],
    change: &'static [&'static str],
    read: &'static [&'static str],
}

const POSTGRES: Engine = Engine {
    server: "postgres",
    kind: "postgres",
    env: &["POSTGRES_PASSWORD=pg-pass"],
    ready: &["pg_isready", "-U", "postgres"],
    fill: &[
        "sh",
        "-c",
        "psql -U postgres -c 'CREATE DATABASE sea' && psql -U postgres -d sea -c \"CREATE TABLE fish (name text); INSERT INTO fish VALUES ('marlin'), ('dory');\"",
    ],
    change: &[
        "psql",
        "-U",
        "postgres",
        "-d",
        "sea",
        "-c",
        "DELETE FROM fish WHERE name = 'dory'; INSERT INTO fish VALUES ('bruce'); CREATE TABLE later (x int);",
    ],
    read: &[
        "psql",
        "-U",
        "postgres",
        "-d",
        "sea",
        "-tAc",
        "SELECT string_agg(name, ',' ORDER BY name) FROM fish UNION ALL SELECT count(*)::text FROM pg_tables WHERE tablename = 'later'",
    ],
};

const MARIADB: Engine = Engine {
    server: "mariadb",
    kind: "mariadb",
    env: &["MARIADB_ROOT_PASSWORD=maria-pass"],
    ready: &["mariadb-admin", "ping", "--silent"],
    fill: &[
        "mariadb",
        "-e",
        "CREATE DATABASE sea; CREATE TABLE sea.fish (name text); INSERT INTO sea.fish VALUES ('nemo'), ('gill');",
    ],
    change: &[
        "mariadb",
        "-e",
        "DELETE FROM sea.fish WHERE name = 'gill'; INSERT INTO sea.fish VALUES ('crush'); CREATE DATABASE later;",
    ],
    read: &[
        "mariadb",
        "-N",
        "-e",
        "SELECT GROUP_CONCAT(name ORDER BY name) FROM sea.fish; SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'later';",
    ],
};

/// MariaDB's server, dumped and loaded as the `mysql` kind (`mysqldump`, `mysql`).
const MYSQL: Engine = Engine {
    kind: "mysql",
    ..MARIADB
};

const REDIS: Engine = Engine {
    server: "redis",
    kind: "redis",
    env: &[],
    ready: &["redis-cli", "ping"],
    fill: &["redis-cli", "mset", "fish", "wanda", "crab", "sebastian"],
    change: &["redis-cli", "mset", "fish", "changed", "added", "yes"],
    read: &["redis-cli", "mget", "fish", "crab", "added"],
};

fn run_in(container: &str, args: &[&str]) -> String {
    let mut all = vec!["exec", container];
    all.extend(args);
    docker(&all).trim().to_owned()
}

/// The instance that backs up `engine`'s server: one per engine and test process, so tests
/// running at once on one Docker engine (this binary's, another run's) never see each
/// other's labelled containers.
fn instance_of(engine: &Engine) -> String {
    format!("dbs-{}-{}", engine.kind, std::process::id())
}

/// Starts `engine`'s server labelled for its instance; waits until it answers.
fn start(engine: &Engine) -> ContainerGuard {
    let name = unique_name(engine.kind);
    let guard = ContainerGuard(name.clone());
    let label = format!("dev.polarfox.marina.db={}", engine.kind);
    let instance_label = format!("dev.polarfox.marina.instanceID={}", instance_of(engine));
    let mut args = vec!["run", "--detach", "--name", &name];
    for var in engine.env {
        args.extend(["--env", var]);
    }
    args.extend([
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        &instance_label,
        "--label",
        &label,
        support::DB_IMAGE,
        engine.server,
    ]);
    docker(&args);
    support::wait_until_exec_succeeds(&name, engine.ready, 90);
    guard
}

async fn restore(daemon: &Daemon, instance: &str, body: &Value) -> Value {
    let (status, answer) = daemon
        .post_json(&format!("/api/instances/{instance}/restore"), body)
        .await;
    assert_eq!(status, 202, "restore {body}: {answer}");
    let job = answer["jobId"].as_i64().unwrap();
    let finished = daemon.wait_job(instance, job, 300).await;
    assert_eq!(
        finished["status"],
        "success",
        "restore {body}: {finished}\n{:#?}",
        daemon.job_log(job).await
    );
    finished
}

async fn every_engine_comes_back(engine: &Engine) {
    require_engine_and_images();
    let source = start(engine);
    run_in(&source.0, engine.fill);
    let backed_up = run_in(&source.0, engine.read);

    let repo = tempfile::tempdir().unwrap();
    let instance = instance_of(engine);
    let daemon = Daemon::start(&format!(
        "instances:\n  - id: {instance}\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n",
        repo.path().join("repo").display()
    ));
    daemon.wait_ready().await;
    daemon.wait_targets(&instance).await;
    let backup = daemon.trigger(&instance).await;
    let job = daemon.wait_job(&instance, backup, 300).await;
    assert_eq!(
        job["status"],
        "success",
        "{job}\n{:#?}",
        daemon.job_log(backup).await
    );

    run_in(&source.0, engine.change);
    let changed = run_in(&source.0, engine.read);
    assert_ne!(changed, backed_up);
    let target = format!("db:{}", source.0);

    // The dry run of a new container names it and changes nothing.
    let copy = format!("{}-copy", source.0);
    let _copy = ContainerGuard(copy.clone());
    let (status, plan) = daemon
        .post_json(
            &format!("/api/instances/{instance}/restore"),
            &json!({ "target": target, "to": copy, "dryRun": true }),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["steps"][0]["action"], "create container", "{plan}");
    assert!(
        !support::docker_output(&["inspect", &copy]).status.success(),
        "a dry run creates no container"
    );

    // Into a new container on no network: the source keeps its changes.
    restore(&daemon, &instance, &json!({ "target": target, "to": copy })).await;
    assert_eq!(run_in(&copy, engine.read), backed_up, "the new container");
    assert_eq!(
        run_in(&source.0, engine.read),
        changed,
        "the source is untouched"
    );
    let network = docker(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", &copy]);
    assert_eq!(network.trim(), "none");

    // In place: the source holds the backed-up data again, and its safety snapshot holds
    // the changed data.
    restore(
        &daemon,
        &instance,
        &json!({ "target": target, "inPlace": true }),
    )
    .await;
    support::wait_until_exec_succeeds(&source.0, engine.ready, 90);
    assert_eq!(run_in(&source.0, engine.read), backed_up, "in place");
    let listed = daemon
        .get(&format!(
            "/api/instances/{instance}/snapshots?target={target}"
        ))
        .await;
    let saved: Vec<&Value> = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["preRestore"] == true)
        .collect();
    assert_eq!(saved.len(), 1, "{listed}");
    restore(
        &daemon,
        &instance,
        &json!({ "target": target, "snapshot": saved[0]["id"], "inPlace": true }),
    )
    .await;
    support::wait_until_exec_succeeds(&source.0, engine.ready, 90);
    assert_eq!(
        run_in(&source.0, engine.read),
        changed,
        "the safety snapshot undoes the restore"
    );
}

#[tokio::test]
async fn postgres_comes_back_into_a_new_container_and_in_place() {
    every_engine_comes_back(&POSTGRES).await;
}

#[tokio::test]
async fn mariadb_comes_back_into_a_new_container_and_in_place() {
    every_engine_comes_back(&MARIADB).await;
}

#[tokio::test]
async fn the_mysql_kind_comes_back_through_mariadbs_mysql_client() {
    every_engine_comes_back(&MYSQL).await;
}

#[tokio::test]
async fn redis_comes_back_into_a_new_container_and_in_place() {
    every_engine_comes_back(&REDIS).await;
}
