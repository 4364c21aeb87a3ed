//! The database test image runs real PostgreSQL, MariaDB and Redis servers whose own dump
//! tools work through `docker exec` — the ground the database backup tests stand on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use support::{
    ContainerGuard, DB_IMAGE, docker, docker_output, require_engine_and_images, unique_name,
    wait_until_exec_succeeds,
};

fn start(kind: &str, env: &[&str]) -> ContainerGuard {
    let name = unique_name(kind);
    let guard = ContainerGuard(name.clone());
    let mut args = vec!["run", "--detach", "--name", &name];
    for var in env {
        args.extend(["--env", var]);
    }
    args.extend([DB_IMAGE, kind]);
    docker(&args);
    guard
}

fn exec(container: &str, args: &[&str]) -> String {
    let mut command = vec!["exec", container];
    command.extend_from_slice(args);
    docker(&command)
}

fn require_db_image() {
    require_engine_and_images();
    assert!(
        docker_output(&["image", "inspect", DB_IMAGE])
            .status
            .success(),
        "test image {DB_IMAGE} is missing; build it with `make test-images`"
    );
}

#[test]
fn postgres_serves_and_pg_dumpall_dumps() {
    require_db_image();
    let pg = start("postgres", &["POSTGRES_PASSWORD=pw-secret"]);
    wait_until_exec_succeeds(&pg.0, &["pg_isready", "-U", "postgres"], 60);
    exec(
        &pg.0,
        &[
            "psql",
            "-U",
            "postgres",
            "-c",
            "CREATE TABLE fish (name text); INSERT INTO fish VALUES ('marlin');",
        ],
    );
    let dump = exec(&pg.0, &["pg_dumpall", "-U", "postgres"]);
    assert!(dump.contains("CREATE TABLE public.fish"), "{dump}");
    assert!(dump.contains("marlin"), "{dump}");
}

#[test]
fn mariadb_serves_and_mariadb_dump_dumps() {
    require_db_image();
    let db = start("mariadb", &["MARIADB_ROOT_PASSWORD=pw-secret"]);
    wait_until_exec_succeeds(&db.0, &["mariadb-admin", "ping", "--silent"], 60);
    exec(
        &db.0,
        &[
            "mariadb",
            "-e",
            "CREATE DATABASE sea; CREATE TABLE sea.fish (name text); INSERT INTO sea.fish VALUES ('marlin');",
        ],
    );
    let dump = exec(
        &db.0,
        &["mariadb-dump", "--single-transaction", "--all-databases"],
    );
    assert!(dump.contains("CREATE TABLE `fish`"), "{dump}");
    assert!(dump.contains("marlin"), "{dump}");
    // The password from the environment works over TCP too, as official images do.
    let version = exec(
        &db.0,
        &[
            "mariadb",
            "-h",
            "127.0.0.1",
            "-uroot",
            "-ppw-secret",
            "-N",
            "-e",
            "SELECT 1",
        ],
    );
    assert_eq!(version.trim(), "1");
}

#[test]
fn redis_serves_and_dumps_an_rdb_to_stdout() {
    require_db_image();
    let redis = start("redis", &[]);
    wait_until_exec_succeeds(&redis.0, &["redis-cli", "ping"], 60);
    exec(&redis.0, &["redis-cli", "set", "fish", "marlin"]);
    let output = docker_output(&["exec", &redis.0, "redis-cli", "--rdb", "-"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout.starts_with(b"REDIS"),
        "not an RDB file: {:?}",
        &output.stdout[..output.stdout.len().min(16)]
    );
    assert!(output.stdout.windows(6).any(|w| w == b"marlin"));
}
