//! Database kind detection that does not guess wrong: an image named like a companion tool
//! (`postgres-exporter`) is not taken for the database, and a private image whose name says
//! nothing is told apart by the dump tools inside the running container, or refused when the
//! tools of several engines are there. Real engine, real PostgreSQL, the real `marina` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::Path;

use serde_json::Value;
use support::daemon::Daemon;
use support::{BUSYBOX_IMAGE, ContainerGuard, DB_IMAGE, ImageGuard, docker, unique_name};

const PASSWORD: &str = "detection-restic-password";

/// Starts a container of `image` labelled `db=auto` for instance `detect`, running `args`.
fn start(image: &str, env: &[&str], args: &[&str]) -> ContainerGuard {
    let name = unique_name("db");
    let guard = ContainerGuard(name.clone());
    let mut command = vec!["run", "--detach", "--name", &name];
    for var in env {
        command.extend(["--env", var]);
    }
    command.extend([
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=detect",
        "--label",
        "dev.polarfox.marina.db=auto",
        image,
    ]);
    command.extend_from_slice(args);
    docker(&command);
    guard
}

fn target<'a>(targets: &'a Value, name: &str) -> &'a Value {
    targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == format!("db:{name}"))
        .unwrap_or_else(|| panic!("no target db:{name} in {targets:#}"))
}

#[tokio::test]
async fn the_kind_comes_from_the_image_name_as_words_or_from_the_tools_in_the_container() {
    support::require_engine_and_images();
    let tag = std::process::id();
    // A private name over a real PostgreSQL, with the other engines' tools taken out.
    let private_pg = format!("marina-test/private-pg:{tag}");
    let _private_pg = support::build_image(
        &private_pg,
        &format!(
            "FROM {DB_IMAGE}\nRUN rm -f /usr/bin/mariadb-dump /usr/bin/mysqldump /usr/bin/redis-cli\n"
        ),
        &[],
    );
    // The test image as it is: PostgreSQL, MariaDB and Redis tools in one image.
    let private_db = format!("marina-test/private-db:{tag}");
    docker(&["tag", DB_IMAGE, &private_db]);
    let _private_db = ImageGuard(private_db.clone());
    // A companion tool named after the database it watches.
    let exporter = format!("marina-test/postgres-exporter:{tag}");
    let _exporter = support::build_image(&exporter, &format!("FROM {BUSYBOX_IMAGE}\n"), &[]);

    let pg = start(&private_pg, &["POSTGRES_PASSWORD=pg-pass"], &["postgres"]);
    let mixed = start(&private_db, &[], &["redis"]);
    let watcher = start(&exporter, &[], &["sleep", "600"]);
    support::wait_until_exec_succeeds(&pg.0, &["pg_isready", "-U", "postgres"], 60);
    support::wait_until_exec_succeeds(&mixed.0, &["redis-cli", "ping"], 60);
    let marker = format!("probed-{tag}");
    docker(&[
        "exec",
        &pg.0,
        "psql",
        "-U",
        "postgres",
        "-c",
        &format!("CREATE TABLE detected (name text); INSERT INTO detected VALUES ('{marker}');"),
    ]);

    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let marina = Daemon::start(&format!(
        "instances:\n  - id: detect\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {PASSWORD}}}\n",
        repo.display()
    ));
    marina.wait_ready().await;
    let instance = marina
        .wait_for("/api/instances/detect", 20, "the three containers", |i| {
            i["targets"].as_array().is_some_and(|t| t.len() == 3)
        })
        .await;
    let targets = &instance["targets"];
    for name in [&pg.0, &mixed.0, &watcher.0] {
        let ready = &target(targets, name)["conditions"][0];
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("DbKindFromProbe")),
            "the image name of {name} says nothing: {ready}"
        );
    }
    assert!(
        target(targets, &watcher.0)["dbKind"].is_null(),
        "postgres-exporter is not postgres: {targets:#}"
    );

    let id = marina.trigger("detect").await;
    let job = marina.wait_job("detect", id, 180).await;
    let log = marina.job_log(id).await;
    assert_eq!(job["status"], "partial_success", "{job}\n{log:#?}");
    assert_eq!(job["lastTargetsSuccessful"], 1, "{log:#?}");
    let has = |text: &str| {
        assert!(
            log.iter().any(|l| l.contains(text)),
            "no `{text}` in {log:#?}"
        );
    };
    has("kind postgres, found pg_dumpall in the container");
    has(&format!(
        "cannot tell the database kind of {}: its image does not name a database and found the dump tools of several databases in the container (pg_dumpall, mariadb-dump, redis-cli); set dbKind",
        mixed.0
    ));
    has(&format!(
        "cannot tell the database kind of {}: its image does not name a database and found none of the dump tools",
        watcher.0
    ));
    assert!(!log.iter().any(|l| l.contains("pg-pass")));

    // The probed kind really dumped the database: the row is in the repository.
    let dump = support::restore::restic(
        Path::new(&repo),
        PASSWORD,
        &[
            "dump",
            "latest",
            &format!("/{}/dump.sql", pg.0),
            "--tag",
            &format!("db:{}", pg.0),
        ],
    );
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(String::from_utf8_lossy(&dump.stdout).contains(&marker));
}
