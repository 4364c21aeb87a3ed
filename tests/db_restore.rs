//! Restoring databases: a dump made exactly as Marina's backup makes it
//! (`marina::docker::dump::dump` streamed into `Restic::backup_stdin` under
//! `{container}/{dump file}`) is streamed back out of a real restic repository with
//! `Restic::dump_into` and loaded with `marina::docker::dump::load_dump` into real PostgreSQL,
//! MariaDB and Redis servers (`marina-test/db`): into the same container, whose data changed
//! since the backup, and into a fresh container of the same image and environment, started
//! without a network and not waited for. Rows and keys are compared with the state at backup
//! time; what was added after the backup must be gone.
//!
//! Debian has no Oracle MySQL, so the `mysql` kind is tested through MariaDB's server and
//! client (its `mysql` and `mysqladmin` names). MongoDB is not packaged in Debian at all: the
//! mongo load is proven by the unit tests of its command only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use marina::backend::restic::{
    BackupOptions, Cache, DumpReader, RepositoryStatus, Restic, ResticSettings,
};
use marina::docker::dump::{LoadOptions, LoadReport, dump, load_dump};
use marina::docker::{DockerClient, DockerRuntime};
use marina::model::{DbKind, DockerName, InstanceId, Retention, Secret, TargetId};
use support::{
    ContainerGuard, DB_IMAGE, docker, docker_output, require_engine_and_images, show_marina_logs,
    state_of, unique_name, wait_until_exec_succeeds,
};
use tokio::io::AsyncReadExt;

const RESTIC_PASSWORD: &str = "restore-test-password";

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

/// A fresh restic repository in a temp dir.
async fn repository() -> (tempfile::TempDir, Restic) {
    let dir = tempfile::tempdir().unwrap();
    let restic = Restic::new(ResticSettings {
        binary: "restic".into(),
        instance: InstanceId::parse("restore-test").unwrap(),
        repository: Secret::new(dir.path().join("repo").display().to_string()),
        env: BTreeMap::from([(
            "RESTIC_PASSWORD".to_owned(),
            Secret::new(RESTIC_PASSWORD.into()),
        )]),
        host: "node-a".into(),
        retention: Retention::default(),
        timeout: Duration::from_mins(10),
        cache: Cache::Disabled,
    });
    assert_eq!(
        restic.ensure_repository().await.unwrap(),
        RepositoryStatus::Initialised
    );
    (dir, restic)
}

/// Backs `container` up as Marina's backup does: its dump streamed into `backup --stdin` as
/// `{container}/{dump file}`, and the dump tool's outcome checked at the end. `extra` is
/// appended to the dump (to plant a bad statement). Returns the snapshot id and file name.
async fn back_up(
    rt: &DockerRuntime,
    restic: &Restic,
    container: &str,
    kind: DbKind,
    extra: &'static [u8],
) -> (String, String) {
    let stream = dump(rt, container, kind, &[]).await.unwrap();
    let filename = format!("{container}/{}", kind.dump_file_name());
    let target = TargetId::Db(DockerName::parse(container).unwrap());
    let mut reader = stream.chain(extra);
    let summary = restic
        .backup_stdin(&target, &filename, &mut reader, &BackupOptions::default())
        .await
        .unwrap();
    let (stream, _) = reader.into_inner();
    stream.finish().await.unwrap();
    (summary.snapshot_id.unwrap(), filename)
}

/// Restores `file` of `snapshot` into `container` with `dump_into` + `load_dump`.
async fn restore(
    rt: &DockerRuntime,
    restic: &Restic,
    snapshot: &str,
    file: &str,
    container: &str,
    kind: DbKind,
) -> Result<LoadReport, String> {
    let spool = tempfile::tempdir().unwrap();
    let options = LoadOptions {
        spool_dir: spool.path().to_owned(),
        ..LoadOptions::default()
    };
    restic
        .dump_into(snapshot, file, |reader: DumpReader| async move {
            load_dump(rt, container, kind, reader, &options)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
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

// ---------------------------------------------------------------------------------------
// PostgreSQL

const PG_ENV: [&str; 4] = [
    "--env",
    "POSTGRES_USER=marina",
    "--env",
    "POSTGRES_PASSWORD=pg-restore-secret",
];

fn psql(container: &str, database: &str, sql: &str) -> String {
    exec(
        container,
        &["psql", "-U", "marina", "-d", database, "-XAtq", "-c", sql],
    )
    .trim()
    .to_owned()
}

/// What a postgres server holds that the test cares about.
fn pg_state(container: &str) -> String {
    let databases = psql(
        container,
        "postgres",
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE NOT datistemplate",
    );
    let fish = psql(
        container,
        "sea",
        "SELECT string_agg(name || '=' || weight, ',' ORDER BY name) FROM fish",
    );
    let tables = psql(
        container,
        "postgres",
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
    );
    let notes = psql(
        container,
        "postgres",
        "SELECT string_agg(note, ',' ORDER BY note) FROM notes",
    );
    format!("databases={databases} fish={fish} postgres-tables={tables} notes={notes}")
}

fn start_postgres(what: &str) -> ContainerGuard {
    let pg = start(what, &PG_ENV, &["postgres"]);
    wait_until_exec_succeeds(&pg.0, &["pg_isready", "-U", "marina", "-d", "postgres"], 60);
    pg
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_backup_replaces_the_servers_data_in_place_and_fills_a_fresh_clone() {
    let rt = runtime().await;
    let (_repo, restic) = repository().await;
    let source = start_postgres("pg-restore");
    psql(&source.0, "postgres", "CREATE DATABASE sea");
    psql(
        &source.0,
        "sea",
        "CREATE TABLE fish (name text, weight int); \
         INSERT INTO fish VALUES ('marlin', 80), ('tuna', 250), ('eel', 3);",
    );
    psql(
        &source.0,
        "postgres",
        "CREATE TABLE notes (note text); INSERT INTO notes VALUES ('kept'); CREATE ROLE app LOGIN",
    );
    let at_backup = pg_state(&source.0);
    assert_eq!(
        at_backup,
        "databases=postgres,sea fish=eel=3,marlin=80,tuna=250 postgres-tables=notes notes=kept"
    );
    let (snapshot, file) = back_up(&rt, &restic, &source.0, DbKind::Postgres, b"").await;

    // Everything changes after the backup.
    psql(
        &source.0,
        "sea",
        "DELETE FROM fish WHERE name = 'eel'; INSERT INTO fish VALUES ('shark', 900);",
    );
    psql(&source.0, "postgres", "CREATE DATABASE later");
    psql(
        &source.0,
        "postgres",
        "INSERT INTO notes VALUES ('added'); CREATE TABLE newer (x int)",
    );
    assert_ne!(pg_state(&source.0), at_backup);

    // (a) In place.
    let report = restore(&rt, &restic, &snapshot, &file, &source.0, DbKind::Postgres)
        .await
        .unwrap();
    assert_eq!(pg_state(&source.0), at_backup);
    assert_eq!(report.tool, "psql");
    let mut dropped = report.dropped.clone();
    dropped.sort();
    assert_eq!(dropped, ["later", "sea"]);
    assert_eq!(report.emptied, ["postgres"]);
    // The roles exist already: their CREATE ROLE fails harmlessly, and is reported.
    assert!(report.ignored_errors >= 2, "{report}");
    assert!(
        report
            .ignored
            .iter()
            .any(|e| e.contains("role \"app\" already exists")),
        "{report}"
    );
    assert!(report.bytes > 0);

    // (b) A fresh clone: same image and environment, no network, still initialising.
    let clone = start(
        "pg-clone",
        &[&PG_ENV[..], &["--network", "none"]].concat(),
        &["postgres"],
    );
    let report = restore(&rt, &restic, &snapshot, &file, &clone.0, DbKind::Postgres)
        .await
        .unwrap();
    assert_eq!(pg_state(&clone.0), at_backup);
    assert_eq!(report.dropped, Vec::<String>::new());
    // The restored role can log in with the password it had (the dump carries its hash).
    let login = exec(
        &clone.0,
        &[
            "sh",
            "-c",
            "PGPASSWORD=pg-restore-secret psql -h 127.0.0.1 -U marina -d sea -XAtc 'SELECT count(*) FROM fish'",
        ],
    );
    assert_eq!(login.trim(), "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_with_a_bad_statement_fails_the_load_and_names_the_error() {
    let rt = runtime().await;
    let (_repo, restic) = repository().await;
    let source = start_postgres("pg-bad");
    psql(&source.0, "postgres", "CREATE DATABASE sea");
    psql(
        &source.0,
        "sea",
        "CREATE TABLE fish (name text); INSERT INTO fish VALUES ('pike');",
    );
    let (snapshot, file) = back_up(
        &rt,
        &restic,
        &source.0,
        DbKind::Postgres,
        b"\nTHIS IS NOT SQL;\n",
    )
    .await;
    let clone = start("pg-bad-clone", &PG_ENV, &["postgres"]);
    let error = restore(&rt, &restic, &snapshot, &file, &clone.0, DbKind::Postgres)
        .await
        .unwrap_err();
    assert!(error.contains("1 SQL error(s)"), "{error}");
    assert!(
        error.contains("syntax error at or near \"THIS\""),
        "{error}"
    );
    assert!(error.contains(&clone.0), "{error}");
    // The expected role conflicts are not what failed it, but they are counted.
    assert!(error.contains("expected ones that were ignored"), "{error}");
    assert!(!error.contains("pg-restore-secret"), "{error}");

    // A MariaDB dump with a bad statement fails the same way.
    let maria = start_mariadb("maria-bad", "MARIADB_ROOT_PASSWORD=maria-bad-secret");
    let (snapshot, file) = back_up(
        &rt,
        &restic,
        &maria.0,
        DbKind::Mariadb,
        b"\nTHIS IS NOT SQL;\n",
    )
    .await;
    let error = restore(&rt, &restic, &snapshot, &file, &maria.0, DbKind::Mariadb)
        .await
        .unwrap_err();
    assert!(
        error.contains("You have an error in your SQL syntax"),
        "{error}"
    );
    assert!(error.contains("THIS IS NOT SQL"), "{error}");
    assert!(!error.contains("maria-bad-secret"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_that_cannot_be_read_changes_nothing() {
    let rt = runtime().await;
    let (_repo, restic) = repository().await;
    let source = start_postgres("pg-unread");
    psql(&source.0, "postgres", "CREATE DATABASE sea");
    let before = psql(&source.0, "postgres", "SELECT count(*) FROM pg_database");
    // No such file in the snapshot: restic fails before the first byte; nothing is dropped.
    let (snapshot, _) = back_up(&rt, &restic, &source.0, DbKind::Postgres, b"").await;
    let error = restore(
        &rt,
        &restic,
        &snapshot,
        "elsewhere/dump.sql",
        &source.0,
        DbKind::Postgres,
    )
    .await
    .unwrap_err();
    assert!(error.contains("not found in snapshot"), "{error}");
    assert_eq!(
        psql(&source.0, "postgres", "SELECT count(*) FROM pg_database"),
        before
    );
}

// ---------------------------------------------------------------------------------------
// MariaDB, as the mariadb kind and as the mysql kind

fn start_mariadb(what: &str, env: &str) -> ContainerGuard {
    let db = start(what, &["--env", env], &["mariadb"]);
    wait_until_exec_succeeds(&db.0, &["mariadb-admin", "ping", "--silent"], 60);
    db
}

fn mariadb(container: &str, sql: &str) -> String {
    exec(container, &["mariadb", "-N", "-B", "-e", sql])
}

/// What a MariaDB server holds that the test cares about.
fn maria_state(container: &str) -> String {
    let databases = mariadb(
        container,
        "SELECT GROUP_CONCAT(schema_name ORDER BY schema_name) FROM information_schema.schemata",
    );
    let fish = mariadb(
        container,
        "SELECT GROUP_CONCAT(CONCAT(name, '=', weight) ORDER BY name) FROM sea.fish",
    );
    let users = mariadb(
        container,
        "SELECT GROUP_CONCAT(user ORDER BY user) FROM mysql.global_priv WHERE user IN ('app', 'late')",
    );
    format!(
        "databases={} fish={} users={}",
        databases.trim(),
        fish.trim(),
        users.trim()
    )
}

async fn mariadb_round_trip(kind: DbKind, env: &str, password: &str) {
    let rt = runtime().await;
    let (_repo, restic) = repository().await;
    let source = start_mariadb(&format!("{kind}-restore"), env);
    mariadb(
        &source.0,
        "CREATE DATABASE sea; CREATE TABLE sea.fish (name text, weight int); \
         INSERT INTO sea.fish VALUES ('marlin', 80), ('tuna', 250), ('eel', 3); \
         CREATE DATABASE shop; CREATE TABLE shop.items (id int); INSERT INTO shop.items VALUES (1); \
         CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw';",
    );
    let at_backup = maria_state(&source.0);
    assert_eq!(
        at_backup,
        "databases=information_schema,mysql,performance_schema,sea,shop,sys fish=eel=3,marlin=80,tuna=250 users=app"
    );
    let (snapshot, file) = back_up(&rt, &restic, &source.0, kind, b"").await;

    mariadb(
        &source.0,
        "DELETE FROM sea.fish WHERE name = 'eel'; INSERT INTO sea.fish VALUES ('shark', 900); \
         DROP DATABASE shop; CREATE DATABASE later; CREATE USER 'late'@'%' IDENTIFIED BY 'late-pw';",
    );
    assert_ne!(maria_state(&source.0), at_backup);

    // (a) In place: the dump of `mysql` takes the users back to the backup's, too.
    let report = restore(&rt, &restic, &snapshot, &file, &source.0, kind)
        .await
        .unwrap();
    assert_eq!(maria_state(&source.0), at_backup);
    let mut dropped = report.dropped.clone();
    dropped.sort();
    assert_eq!(dropped, ["later", "sea"]);
    let expected_tool = if kind == DbKind::Mysql {
        "mysql"
    } else {
        "mariadb"
    };
    assert_eq!(report.tool, expected_tool);
    // The `mysql.user` view the server has already: expected, ignored, reported.
    assert_eq!(report.ignored_errors, 1, "{report}");
    // The privileges were reloaded: the restored account logs in over TCP, the later one not.
    let login = |user: &str, password: &str| {
        docker_output(&[
            "exec",
            &source.0,
            "mariadb",
            "--protocol=tcp",
            "--host=127.0.0.1",
            &format!("--user={user}"),
            &format!("--password={password}"),
            "-e",
            "SELECT 1",
        ])
        .status
        .success()
    };
    assert!(login("app", "app-pw"));
    assert!(!login("late", "late-pw"));
    assert!(login("root", password));

    // (b) A fresh clone, without a network, still initialising.
    let clone = start(
        &format!("{kind}-clone"),
        &["--env", env, "--network", "none"],
        &["mariadb"],
    );
    restore(&rt, &restic, &snapshot, &file, &clone.0, kind)
        .await
        .unwrap();
    assert_eq!(maria_state(&clone.0), at_backup);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mariadb_backup_replaces_the_servers_data_in_place_and_fills_a_fresh_clone() {
    mariadb_round_trip(
        DbKind::Mariadb,
        "MARIADB_ROOT_PASSWORD=maria-restore-secret",
        "maria-restore-secret",
    )
    .await;
}

/// Debian has no Oracle MySQL: the mysql kind runs MariaDB's `mysql` client and
/// `mysqladmin` against a MariaDB server configured from `MYSQL_*` variables.
#[tokio::test(flavor = "multi_thread")]
async fn a_mysql_kind_backup_replaces_the_servers_data_through_the_mysql_client() {
    mariadb_round_trip(
        DbKind::Mysql,
        "MYSQL_ROOT_PASSWORD=mysql-restore-secret",
        "mysql-restore-secret",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Redis

/// A redis server that runs as the `redis` user (not root) and wants the password of
/// `REDIS_PASSWORD`, keeping its data in /data.
fn start_redis(what: &str, docker_args: &[&str], server_args: &str) -> ContainerGuard {
    let script = format!(
        "mkdir -p /data && chown redis:redis /data && exec setpriv --reuid=redis --regid=redis --clear-groups \
         redis-server --bind 0.0.0.0 --protected-mode no --dir /data --requirepass \"$REDIS_PASSWORD\" {server_args}"
    );
    let mut args = vec![
        "--env",
        "REDIS_PASSWORD=redis-restore-secret",
        "--entrypoint",
        "sh",
    ];
    args.extend_from_slice(docker_args);
    start(what, &args, &["-c", &script])
}

fn redis(container: &str, command: &str) -> String {
    exec(
        container,
        &[
            "sh",
            "-c",
            &format!("REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli {command}"),
        ],
    )
}

fn wait_for_redis(container: &str) {
    wait_until_exec_succeeds(
        container,
        &[
            "sh",
            "-c",
            "REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli ping | grep -q PONG",
        ],
        60,
    );
}

/// What a redis server holds that the test cares about.
fn redis_state(container: &str) -> String {
    format!(
        "fish={} weight={} school={} later={} size={}",
        redis(container, "get fish").trim(),
        redis(container, "get weight").trim(),
        redis(container, "lrange school 0 -1")
            .trim()
            .replace('\n', ","),
        redis(container, "exists later").trim(),
        redis(container, "dbsize").trim()
    )
}

/// The uid owning `path` in `container`, and the uid of user `redis` there.
fn owner_and_redis_uid(container: &str, path: &str) -> (String, String) {
    (
        exec(container, &["stat", "-c", "%u", path])
            .trim()
            .to_owned(),
        exec(container, &["id", "-u", "redis"]).trim().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_backup_replaces_the_servers_data_in_place_and_fills_a_fresh_clone() {
    let rt = runtime().await;
    let (_repo, restic) = repository().await;
    let source = start_redis("redis-restore", &[], "");
    wait_for_redis(&source.0);
    redis(&source.0, "set fish marlin");
    redis(&source.0, "set weight 80");
    redis(&source.0, "rpush school a b c");
    let at_backup = redis_state(&source.0);
    assert_eq!(
        at_backup,
        "fish=marlin weight=80 school=a,b,c later=0 size=3"
    );
    let (snapshot, file) = back_up(&rt, &restic, &source.0, DbKind::Redis, b"").await;
    assert_eq!(file, format!("{}/dump.rdb", source.0));

    redis(&source.0, "set fish shark");
    redis(&source.0, "del weight");
    redis(&source.0, "set later 1");
    // Saved, so the server's own file differs from the backup too.
    redis(&source.0, "save");
    assert_ne!(redis_state(&source.0), at_backup);

    // (a) In place: stopped, file replaced, started again.
    let report = restore(&rt, &restic, &snapshot, &file, &source.0, DbKind::Redis)
        .await
        .unwrap();
    assert_eq!(redis_state(&source.0), at_backup);
    assert_eq!(report.keys, Some(3));
    assert_eq!(state_of(&source.0), "running");
    let (owner, redis_uid) = owner_and_redis_uid(&source.0, "/data/dump.rdb");
    assert_eq!(
        owner, redis_uid,
        "the RDB file must belong to the server's user"
    );
    assert_ne!(owner, "0");

    // (b) A fresh clone without a network.
    let clone = start_redis("redis-clone", &["--network", "none"], "");
    let report = restore(&rt, &restic, &snapshot, &file, &clone.0, DbKind::Redis)
        .await
        .unwrap();
    assert_eq!(redis_state(&clone.0), at_backup);
    assert_eq!(report.keys, Some(3));
    assert!(report.bytes > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_append_only_redis_is_refused_and_left_running_untouched() {
    let rt = runtime().await;
    let (_repo, restic) = repository().await;
    let source = start_redis("redis-aof-src", &[], "");
    wait_for_redis(&source.0);
    redis(&source.0, "set fish marlin");
    let (snapshot, file) = back_up(&rt, &restic, &source.0, DbKind::Redis, b"").await;

    let aof = start_redis("redis-aof", &[], "--appendonly yes");
    wait_for_redis(&aof.0);
    redis(&aof.0, "set fish pike");
    let started = docker(&["inspect", "--format", "{{.State.StartedAt}}", &aof.0]);
    let error = restore(&rt, &restic, &snapshot, &file, &aof.0, DbKind::Redis)
        .await
        .unwrap_err();
    assert!(error.contains("appendonly yes"), "{error}");
    assert!(error.contains("CONFIG SET appendonly no"), "{error}");
    assert!(error.contains("Nothing was changed"), "{error}");
    assert_eq!(state_of(&aof.0), "running");
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.StartedAt}}", &aof.0]),
        started,
        "the container was restarted"
    );
    assert_eq!(redis(&aof.0, "get fish").trim(), "pike");
}

// ---------------------------------------------------------------------------------------
// Preconditions

#[tokio::test(flavor = "multi_thread")]
async fn a_load_refuses_what_cannot_work_before_changing_anything() {
    let rt = runtime().await;
    let options = LoadOptions::default();

    // Not running: nothing can run inside it.
    let stopped = ContainerGuard(unique_name("pg-stopped"));
    docker(&["create", "--name", &stopped.0, DB_IMAGE, "postgres"]);
    let error = load_dump(
        &rt,
        &stopped.0,
        DbKind::Postgres,
        &b"SELECT 1;"[..],
        &options,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("not running"), "{error}");

    // SQL is no RDB file: refused before the server is stopped.
    let server = start_redis("redis-not-rdb", &[], "");
    wait_for_redis(&server.0);
    redis(&server.0, "set fish pike");
    let error = load_dump(
        &rt,
        &server.0,
        DbKind::Redis,
        &b"CREATE TABLE x;"[..],
        &options,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("not a redis dump"), "{error}");
    assert_eq!(redis(&server.0, "get fish").trim(), "pike");

    // An empty dump.
    let error = load_dump(&rt, &server.0, DbKind::Redis, &b""[..], &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("is empty"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_peer_authentication_makes_the_load_run_as_the_postgres_user() {
    let rt = runtime().await;
    let pg = start("pg-peer-load", &[], &["postgres"]);
    wait_until_exec_succeeds(&pg.0, &["pg_isready", "-U", "postgres"], 60);
    exec(
        &pg.0,
        &["psql", "-U", "postgres", "-c", "CREATE DATABASE sea"],
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
    let dump = b"CREATE TABLE fish (name text);\nINSERT INTO fish VALUES ('pike');\n";
    let report = load_dump(
        &rt,
        &pg.0,
        DbKind::Postgres,
        &dump[..],
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.dropped, ["sea"]);
    let fish = exec(
        &pg.0,
        &["su", "postgres", "-c", "psql -XAtc 'SELECT name FROM fish'"],
    );
    assert_eq!(fish.trim(), "pike");
}
