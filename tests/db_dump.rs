//! Database dumps through `marina::docker::dump::dump` against real PostgreSQL, MariaDB and
//! Redis servers (`marina-test/db`), each proven by restoring the dump into a fresh server of
//! the same image and comparing rows or keys. Passwords come from the containers' environment
//! as in the official images, and must never show up on a recorded command line or in an
//! error.
//!
//! MongoDB is not packaged in Debian, so the mongo path is tested with a stand-in `mongodump`
//! shell script in a busybox image that checks the credentials it receives and writes a fixed
//! archive: it proves Marina's plumbing (command, credentials, streaming, failure handling),
//! not mongodump itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::{Path, PathBuf};

use marina::docker::dump::{DumpError, DumpSummary, dump};
use marina::docker::{DockerClient, DockerRuntime, Runtime};
use marina::model::DbKind;
use support::{
    BUSYBOX_IMAGE, ContainerGuard, DB_IMAGE, build_image, docker, docker_output,
    require_engine_and_images, show_marina_logs, unique_name, wait_until_exec_succeeds,
};
use tokio::io::AsyncWriteExt;

async fn runtime() -> DockerRuntime {
    require_engine_and_images();
    show_marina_logs();
    assert!(
        docker_output(&["image", "inspect", DB_IMAGE])
            .status
            .success(),
        "test image {DB_IMAGE} is missing; build it with `make test-images`"
    );
    DockerRuntime::new(DockerClient::connect().await.unwrap())
}

/// Starts a container of the db image: `docker run -d [docker_args] marina-test/db [args]`.
fn start(what: &str, docker_args: &[&str], args: &[&str]) -> ContainerGuard {
    let name = unique_name(what);
    let guard = ContainerGuard(name.clone());
    let mut command = vec!["run", "--detach", "--name", &name];
    command.extend_from_slice(docker_args);
    command.push(DB_IMAGE);
    command.extend_from_slice(args);
    docker(&command);
    guard
}

fn exec(container: &str, args: &[&str]) -> String {
    let mut command = vec!["exec", container];
    command.extend_from_slice(args);
    docker(&command)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|&s| s.to_owned()).collect()
}

/// A finished dump in a file.
struct Dumped {
    /// Keeps the file's directory alive.
    dir: tempfile::TempDir,
    file: PathBuf,
    summary: DumpSummary,
    /// The exec's recorded command line and user, as anyone with engine access sees them.
    command: Vec<String>,
    user: Option<String>,
}

/// Dumps through Marina into a file, as the executor would, and checks the recorded exec.
async fn dump_to_file(
    rt: &DockerRuntime,
    container: &str,
    kind: DbKind,
    args: &[&str],
    password: &str,
) -> Dumped {
    let mut stream = dump(rt, container, kind, &strings(args)).await.unwrap();
    let exec_id = stream.exec_id().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(kind.dump_file_name());
    let mut out = tokio::fs::File::create(&file).await.unwrap();
    tokio::io::copy(&mut stream, &mut out).await.unwrap();
    out.flush().await.unwrap();
    let summary = stream.finish().await.unwrap();
    assert_eq!(summary.bytes, std::fs::metadata(&file).unwrap().len());
    let status = rt.inspect_exec(&exec_id).await.unwrap();
    assert!(
        !status.command.iter().any(|a| a.contains(password)),
        "the password is on the recorded command line: {:?}",
        status.command
    );
    Dumped {
        dir,
        file,
        summary,
        command: status.command,
        user: status.user,
    }
}

fn copy_into(container: &str, file: &Path, destination: &str) {
    let target = format!("{container}:{destination}");
    docker(&["cp", file.to_str().unwrap(), &target]);
}

fn postgres_rows(container: &str) -> String {
    exec(
        container,
        &[
            "psql",
            "-U",
            "marina",
            "-d",
            "sea",
            "-XAt",
            "-c",
            "SELECT name, weight FROM fish ORDER BY name",
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_dump_restores_into_a_fresh_server() {
    const PASSWORD: &str = "pg-secret-1";
    let rt = runtime().await;
    let env = [
        "--env",
        "POSTGRES_USER=marina",
        "--env",
        "POSTGRES_PASSWORD=pg-secret-1",
    ];
    let source = start("pg", &env, &["postgres"]);
    let fresh = start("pg-fresh", &env, &["postgres"]);
    for pg in [&source, &fresh] {
        wait_until_exec_succeeds(&pg.0, &["pg_isready", "-U", "marina", "-d", "postgres"], 60);
    }
    exec(
        &source.0,
        &[
            "psql",
            "-U",
            "marina",
            "-d",
            "postgres",
            "-c",
            "CREATE DATABASE sea",
        ],
    );
    exec(
        &source.0,
        &[
            "psql",
            "-U",
            "marina",
            "-d",
            "sea",
            "-c",
            "CREATE TABLE fish (name text, weight int); \
             INSERT INTO fish VALUES ('marlin', 80), ('tuna', 250), ('eel', 3);",
        ],
    );
    let rows = postgres_rows(&source.0);
    assert_eq!(rows, "eel|3\nmarlin|80\ntuna|250\n");

    // Over TCP, so the server really asks for the password (local connections are trusted).
    let dumped = dump_to_file(
        &rt,
        &source.0,
        DbKind::Postgres,
        &["-h", "127.0.0.1"],
        PASSWORD,
    )
    .await;
    assert_eq!(dumped.summary.tool, "pg_dumpall");
    assert_eq!(
        dumped.command,
        strings(&["pg_dumpall", "-U", "marina", "-h", "127.0.0.1"])
    );

    copy_into(&fresh.0, &dumped.file, "/tmp/dump.sql");
    // The dump re-creates the role that already exists; psql reports it and carries on.
    exec(
        &fresh.0,
        &[
            "psql",
            "-U",
            "marina",
            "-d",
            "postgres",
            "-Xq",
            "-f",
            "/tmp/dump.sql",
        ],
    );
    assert_eq!(postgres_rows(&fresh.0), rows);

    // A failing tool fails the dump with its own message, secrets scrubbed.
    let error = dump(
        &rt,
        &source.0,
        DbKind::Postgres,
        &strings(&["--no-such-option"]),
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error,
            DumpError::Failed {
                exit_code: 1,
                tool: "pg_dumpall",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("no-such-option"), "{message}");
    assert!(!message.contains(PASSWORD), "{message}");
    drop(dumped.dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_peer_authentication_falls_back_to_the_postgres_user() {
    let rt = runtime().await;
    let pg = start("pg-peer", &[], &["postgres"]);
    wait_until_exec_succeeds(&pg.0, &["pg_isready", "-U", "postgres"], 60);
    exec(
        &pg.0,
        &[
            "psql",
            "-U",
            "postgres",
            "-c",
            "CREATE TABLE fish (name text); INSERT INTO fish VALUES ('pike')",
        ],
    );
    // Like Debian's packaged server: local connections use peer authentication, so root
    // (the exec's default user) may not connect as `postgres`.
    exec(
        &pg.0,
        &[
            "sh",
            "-c",
            "sed -i 's/^local\\(.*\\)trust$/local\\1peer/' /var/lib/postgresql/data/pg_hba.conf \
             && psql -U postgres -c 'SELECT pg_reload_conf()'",
        ],
    );
    let refused = docker_output(&["exec", &pg.0, "psql", "-U", "postgres", "-c", "SELECT 1"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Peer authentication failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let dumped = dump_to_file(&rt, &pg.0, DbKind::Postgres, &[], "unused").await;
    assert_eq!(dumped.user.as_deref(), Some("postgres"));
    let sql = std::fs::read_to_string(&dumped.file).unwrap();
    assert!(sql.contains("pike"), "{sql}");
}

fn mariadb_rows(container: &str) -> String {
    exec(
        container,
        &[
            "mariadb",
            "-N",
            "-e",
            "SELECT name, weight FROM sea.fish ORDER BY name",
        ],
    )
}

fn start_mariadb(what: &str, env: &str) -> ContainerGuard {
    let db = start(what, &["--env", env], &["mariadb"]);
    wait_until_exec_succeeds(&db.0, &["mariadb-admin", "ping", "--silent"], 60);
    db
}

fn fill_mariadb(container: &str) -> String {
    exec(
        container,
        &[
            "mariadb",
            "-e",
            "CREATE DATABASE sea; CREATE TABLE sea.fish (name text, weight int); \
             INSERT INTO sea.fish VALUES ('marlin', 80), ('tuna', 250), ('eel', 3);",
        ],
    );
    mariadb_rows(container)
}

/// Restores a dump into a fresh server. `--all-databases` includes the `mysql` schema, whose
/// `user` view (MariaDB 10.4+) the fresh server already has: `--force` carries on past that,
/// as an operator restoring a whole server does.
fn restore_mariadb(container: &str, dump: &Path) {
    copy_into(container, dump, "/tmp/dump.sql");
    let restored = docker_output(&[
        "exec",
        container,
        "sh",
        "-c",
        "mariadb --force < /tmp/dump.sql",
    ]);
    let stderr = String::from_utf8_lossy(&restored.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ERROR")).collect();
    assert!(
        errors.iter().all(|l| l.contains("already exists")),
        "restoring failed: {errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mariadb_dump_with_the_root_password_restores_into_a_fresh_server() {
    const PASSWORD: &str = "maria-secret-1";
    let rt = runtime().await;
    let source = start_mariadb("maria", "MARIADB_ROOT_PASSWORD=maria-secret-1");
    let fresh = start_mariadb("maria-fresh", "MARIADB_ROOT_PASSWORD=maria-secret-1");
    let rows = fill_mariadb(&source.0);
    assert_eq!(rows, "eel\t3\nmarlin\t80\ntuna\t250\n");

    // Over TCP, where only the password (not the unix socket) lets root in.
    let dumped = dump_to_file(
        &rt,
        &source.0,
        DbKind::Mariadb,
        &["--host=127.0.0.1"],
        PASSWORD,
    )
    .await;
    assert_eq!(dumped.summary.tool, "mariadb-dump");
    assert_eq!(
        dumped.command,
        strings(&[
            "mariadb-dump",
            "--single-transaction",
            "--all-databases",
            "--user=root",
            "--host=127.0.0.1"
        ])
    );
    restore_mariadb(&fresh.0, &dumped.file);
    assert_eq!(mariadb_rows(&fresh.0), rows);
}

#[tokio::test(flavor = "multi_thread")]
async fn mysqldump_serves_the_mysql_kind_and_the_mariadb_fallback() {
    const PASSWORD: &str = "mysql-secret-1";
    let rt = runtime().await;
    let source = start_mariadb("mysql", "MYSQL_ROOT_PASSWORD=mysql-secret-1");
    let fresh = start_mariadb("mysql-fresh", "MYSQL_ROOT_PASSWORD=mysql-secret-1");
    let rows = fill_mariadb(&source.0);

    let dumped = dump_to_file(
        &rt,
        &source.0,
        DbKind::Mysql,
        &["--host=127.0.0.1"],
        PASSWORD,
    )
    .await;
    assert_eq!(dumped.summary.tool, "mysqldump");
    restore_mariadb(&fresh.0, &dumped.file);
    assert_eq!(mariadb_rows(&fresh.0), rows);

    // Without mariadb-dump (older images), the mariadb kind falls back to mysqldump.
    exec(
        &source.0,
        &[
            "sh",
            "-c",
            "rm /usr/bin/mysqldump && mv /usr/bin/mariadb-dump /usr/bin/mysqldump",
        ],
    );
    let fallback = dump_to_file(
        &rt,
        &source.0,
        DbKind::Mariadb,
        &["--host=127.0.0.1"],
        PASSWORD,
    )
    .await;
    assert_eq!(fallback.summary.tool, "mysqldump");
    let sql = std::fs::read_to_string(&fallback.file).unwrap();
    assert!(sql.contains("'marlin',80"), "{sql}");
}

fn redis_keys(container: &str) -> String {
    exec(
        container,
        &["sh", "-c", "redis-cli get fish; redis-cli dbsize"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_dump_restores_into_a_fresh_server() {
    const PASSWORD: &str = "redis-secret-1";
    let rt = runtime().await;
    // A password from the environment, as e.g. bitnami's image takes it.
    let source = start(
        "redis",
        &[
            "--env",
            "REDIS_PASSWORD=redis-secret-1",
            "--entrypoint",
            "sh",
        ],
        &[
            "-c",
            "mkdir -p /data && exec redis-server --bind 0.0.0.0 --dir /data --requirepass \"$REDIS_PASSWORD\"",
        ],
    );
    let authed = |command: &str| {
        exec(
            &source.0,
            &[
                "sh",
                "-c",
                &format!("REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli {command}"),
            ],
        )
    };
    wait_until_exec_succeeds(
        &source.0,
        &[
            "sh",
            "-c",
            "REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli ping | grep -q PONG",
        ],
        60,
    );
    authed("set fish marlin");
    authed("set weight 80");
    authed("rpush school a b c");
    // Without the password the server refuses, so a dump that works used it.
    let refused = docker_output(&["exec", &source.0, "redis-cli", "get", "fish"]);
    let refused = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(refused.contains("NOAUTH"), "{refused}");

    let dumped = dump_to_file(&rt, &source.0, DbKind::Redis, &[], PASSWORD).await;
    assert_eq!(dumped.summary.tool, "redis-cli");
    let rdb = std::fs::read(&dumped.file).unwrap();
    assert!(rdb.starts_with(b"REDIS"), "not an RDB file");

    // Restore: the fresh server loads dump.rdb from its data directory at start.
    let fresh = ContainerGuard(unique_name("redis-fresh"));
    docker(&["create", "--name", &fresh.0, DB_IMAGE, "redis"]);
    let target = format!("{}:/data", fresh.0);
    docker(&["cp", dumped.dir.path().to_str().unwrap(), &target]);
    docker(&["start", &fresh.0]);
    wait_until_exec_succeeds(&fresh.0, &["sh", "-c", "redis-cli ping | grep -q PONG"], 60);
    assert_eq!(redis_keys(&fresh.0), "marlin\n3\n");
    let school = exec(&fresh.0, &["redis-cli", "lrange", "school", "0", "-1"]);
    assert_eq!(school, "a\nb\nc\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_password_on_the_server_command_line_is_used() {
    const PASSWORD: &str = "redis-secret-2";
    let rt = runtime().await;
    let redis = start(
        "redis-cmd",
        &["--entrypoint", "redis-server"],
        &["--requirepass", PASSWORD, "--dir", "/tmp"],
    );
    wait_until_exec_succeeds(
        &redis.0,
        &[
            "sh",
            "-c",
            "REDISCLI_AUTH=redis-secret-2 redis-cli ping | grep -q PONG",
        ],
        60,
    );
    exec(
        &redis.0,
        &[
            "sh",
            "-c",
            "REDISCLI_AUTH=redis-secret-2 redis-cli set fish pike",
        ],
    );
    let dumped = dump_to_file(&rt, &redis.0, DbKind::Redis, &[], PASSWORD).await;
    let rdb = std::fs::read(&dumped.file).unwrap();
    assert!(rdb.starts_with(b"REDIS"));
    assert!(rdb.windows(4).any(|w| w == b"pike"));
}

/// The stand-in `mongodump`: checks it got `--archive` and the container's root credentials,
/// then behaves as `--mode=ok|empty|fail` says.
const MONGODUMP: &str = r#"#!/bin/sh
user= pass= archive=no mode=ok
while [ $# -gt 0 ]; do
  case "$1" in
    --archive) archive=yes ;;
    --username) user=$2; shift ;;
    --password) pass=$2; shift ;;
    --mode=*) mode=${1#--mode=} ;;
  esac
  shift
done
[ "$archive" = yes ] || { echo "no --archive" >&2; exit 2; }
if [ "$user" != "$MONGO_INITDB_ROOT_USERNAME" ] || [ "$pass" != "$MONGO_INITDB_ROOT_PASSWORD" ]; then
  echo "bad credentials" >&2; exit 3
fi
case "$mode" in
  ok) printf 'MONGO-ARCHIVE\000\001\002\377end' ;;
  empty) ;;
  fail) printf 'partial'; echo "boom: cannot use $MONGO_INITDB_ROOT_PASSWORD" >&2; exit 4 ;;
esac
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_mongo_path_streams_an_archive_and_reports_failures_without_secrets() {
    const PASSWORD: &str = "mongo-secret-1";
    let rt = runtime().await;
    let image = format!("{}:latest", unique_name("mongo-standin"));
    let _image = build_image(
        &image,
        &format!("FROM {BUSYBOX_IMAGE}\nCOPY mongodump /bin/mongodump\n"),
        &[("mongodump", MONGODUMP)],
    );
    let mongo = ContainerGuard(unique_name("mongo"));
    docker(&[
        "run",
        "--detach",
        "--name",
        &mongo.0,
        "--env",
        "MONGO_INITDB_ROOT_USERNAME=admin",
        "--env",
        "MONGO_INITDB_ROOT_PASSWORD=mongo-secret-1",
        &image,
        "sleep",
        "600",
    ]);

    let dumped = dump_to_file(&rt, &mongo.0, DbKind::Mongo, &[], PASSWORD).await;
    assert_eq!(dumped.summary.tool, "mongodump");
    assert_eq!(
        std::fs::read(&dumped.file).unwrap(),
        b"MONGO-ARCHIVE\x00\x01\x02\xffend"
    );
    assert_eq!(dumped.file.file_name().unwrap(), "dump.archive");

    // The tool wrote something, then failed: the failure shows at the end, scrubbed.
    let stream = dump(&rt, &mongo.0, DbKind::Mongo, &strings(&["--mode=fail"]))
        .await
        .unwrap();
    let error = stream.finish().await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, DumpError::Failed { exit_code: 4, .. }),
        "{message}"
    );
    assert!(message.contains("boom: cannot use ***"), "{message}");
    assert!(!message.contains(PASSWORD), "{message}");

    // Success without a byte is a failure too.
    let error = dump(&rt, &mongo.0, DbKind::Mongo, &strings(&["--mode=empty"]))
        .await
        .unwrap_err();
    assert!(matches!(error, DumpError::Empty { .. }), "{error}");

    // Nothing runs in a stopped container.
    docker(&["stop", "--time", "0", &mongo.0]);
    let error = dump(&rt, &mongo.0, DbKind::Mongo, &[]).await.unwrap_err();
    assert!(matches!(error, DumpError::NotRunning { .. }), "{error}");
}
