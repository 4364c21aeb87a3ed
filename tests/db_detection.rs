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
    // Before any job: the dump tools are looked for as soon as the containers are seen
    // running, and the targets show what they tell.
    let instance = marina
        .wait_for(
            "/api/instances/detect",
            60,
            "the three containers, their dump tools looked for",
            |i| {
                i["targets"].as_array().is_some_and(|t| {
                    t.len() == 3
                        && t.iter()
                            .all(|t| t["conditions"][0]["reason"] != "DbKindProbing")
                })
            },
        )
        .await;
    assert_kinds_shown_before_any_job(&instance["targets"], &pg.0, &mixed.0, &watcher.0);

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
    has("found pg_dumpall in the container");
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

/// What the targets show once the dump tools were looked for: the private postgres one ready
/// with its kind and the tool that told it; the ambiguous and the tool-less ones invalid,
/// saying to set the kind.
fn assert_kinds_shown_before_any_job(targets: &Value, pg: &str, mixed: &str, watcher: &str) {
    let ready = |name: &str| {
        let ready = &target(targets, name)["conditions"][0];
        (
            ready["status"].as_str().unwrap_or_default().to_owned(),
            ready["reason"].as_str().unwrap_or_default().to_owned(),
            ready["message"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let (status, reason, message) = ready(pg);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "DbKindFromProbe"),
        "{message}"
    );
    assert!(
        message.starts_with("kind postgres: ")
            && message.ends_with("does not name a database; found pg_dumpall in the container"),
        "{message}"
    );
    assert_eq!(target(targets, pg)["dbKind"], "postgres", "{targets:#}");
    let (status, reason, message) = ready(mixed);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DbKindUnknown"),
        "{message}"
    );
    assert_eq!(
        message,
        format!(
            "cannot tell the database kind of {mixed}: its image does not name a database and found the dump tools of several databases in the container (pg_dumpall, mariadb-dump, redis-cli); set dbKind (config) or dev.polarfox.marina.db (label)"
        )
    );
    assert!(target(targets, mixed)["dbKind"].is_null(), "{targets:#}");
    let (status, reason, message) = ready(watcher);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DbKindUnknown"),
        "{message}"
    );
    assert!(
        message.contains("found none of the dump tools") && message.contains("set dbKind"),
        "{message}"
    );
    assert!(
        target(targets, watcher)["dbKind"].is_null(),
        "postgres-exporter is not postgres: {targets:#}"
    );
}
