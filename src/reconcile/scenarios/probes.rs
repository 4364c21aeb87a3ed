//! Database containers whose image names no database: probed once, then backed up as what
//! the probe found.

use super::*;

const DB_CONFIG: &str = "instances:\n  - id: i0\n    repository: /srv/r\n    schedule: '0 3 * * *'\n    env: {RESTIC_PASSWORD: x}\n    targets:\n      - db: db\n";

fn db_container(id: &str, image: &str, state: ContainerState) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        name: "db".into(),
        image: image.into(),
        labels: BTreeMap::new(),
        state,
        mounts: Vec::new(),
    }
}

fn listing_with(containers: &[ContainerInfo]) -> Message {
    let mut inventory = Inventory::default();
    for c in containers {
        inventory.containers.insert(c.id.clone(), c.clone());
    }
    Message::Inventory(InventoryChange::Listed(inventory))
}

/// The `Ready` condition of `i0`'s db target: (status, reason, message) and its kind.
fn db_ready(s: &Scenario) -> (String, &'static str, String, Option<DbKind>) {
    let snapshot = s.snapshot();
    let target = &snapshot.instances[0].targets[0];
    let ready = &target.conditions[0];
    (
        format!("{:?}", ready.status),
        ready.reason,
        ready.message.clone(),
        target.db_kind,
    )
}

fn probed(container_id: &str, tools: &[&str]) -> Message {
    Message::DbProbed {
        container_id: container_id.into(),
        result: Ok(DbKind::from_tools(tools).map(|(kind, tool)| (kind, tool.to_owned()))),
    }
}

#[tokio::test(start_paused = true)]
async fn a_running_container_named_like_no_database_is_probed_once_and_shows_its_kind() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    let db = db_container("c1", "myorg/db:1", ContainerState::Running);
    s.send(listing_with(std::slice::from_ref(&db))).await;
    assert_eq!(s.probes(), ["c1"]);
    let (status, reason, message, kind) = db_ready(&s);
    assert_eq!(
        (status.as_str(), reason, kind),
        ("Unknown", "DbKindProbing", None)
    );
    assert!(message.contains("looking for the dump tools"), "{message}");

    // While the probe is out, more news of the world does not ask again.
    s.send(listing_with(std::slice::from_ref(&db))).await;
    s.send(Message::Inventory(InventoryChange::ContainerUpdated(
        db.clone(),
    )))
    .await;
    s.pass(10 * MINUTE).await;
    assert!(s.probes().is_empty(), "probed once per container");

    s.send(probed("c1", &["pg_dumpall"])).await;
    let (status, reason, message, kind) = db_ready(&s);
    assert_eq!(
        (status.as_str(), reason, kind),
        ("True", "DbKindFromProbe", Some(DbKind::Postgres))
    );
    assert_eq!(
        message,
        "kind postgres: the image myorg/db:1 of db does not name a database; found pg_dumpall in the container"
    );
    s.send(listing_with(&[db])).await;
    assert!(s.probes().is_empty(), "the answer is kept");
}

#[tokio::test(start_paused = true)]
async fn tools_of_several_engines_or_none_make_the_target_invalid() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    s.send(listing_with(&[db_container(
        "c1",
        "sha256:0123abcd",
        ContainerState::Running,
    )]))
    .await;
    assert_eq!(s.probes(), ["c1"]);
    s.send(probed("c1", &["pg_dumpall", "redis-cli"])).await;
    let (status, reason, message, kind) = db_ready(&s);
    assert_eq!(
        (status.as_str(), reason, kind),
        ("False", "DbKindUnknown", None)
    );
    assert_eq!(
        message,
        "cannot tell the database kind of db: its image does not name a database and found the dump tools of several databases in the container (pg_dumpall, redis-cli); set dbKind (config) or dev.polarfox.marina.db (label)"
    );

    s.send(Message::DbProbed {
        container_id: "c1".into(),
        result: Ok(Err(ProbeError::NoTool)),
    })
    .await;
    let (status, _, message, _) = db_ready(&s);
    assert_eq!(status, "False");
    assert!(
        message.contains(
            "found none of the dump tools pg_dumpall, mariadb-dump, mysqldump, mongodump, redis-cli"
        ) && message.contains("set dbKind"),
        "{message}"
    );

    // A probe that could not run says why, and is not asked again for this container.
    s.send(Message::DbProbed {
        container_id: "c1".into(),
        result: Err("looking for dump tools in db took longer than 20s; set dbKind (config) or dev.polarfox.marina.db (label)".into()),
    })
    .await;
    let (status, reason, message, _) = db_ready(&s);
    assert_eq!((status.as_str(), reason), ("False", "DbKindUnknown"));
    assert!(message.contains("took longer than 20s"), "{message}");
    assert!(s.probes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_recreated_container_is_probed_again() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    s.send(listing_with(&[db_container(
        "c1",
        "myorg/db:1",
        ContainerState::Running,
    )]))
    .await;
    assert_eq!(s.probes(), ["c1"]);
    s.send(probed("c1", &["pg_dumpall"])).await;
    assert_eq!(db_ready(&s).3, Some(DbKind::Postgres));

    // Recreated from another image under the same name: a new id, maybe other tools.
    s.send(Message::Inventory(InventoryChange::ContainerRemoved {
        id: "c1".into(),
    }))
    .await;
    s.send(Message::Inventory(InventoryChange::ContainerUpdated(
        db_container("c2", "myorg/db:2", ContainerState::Running),
    )))
    .await;
    assert_eq!(s.probes(), ["c2"]);
    assert_eq!(
        db_ready(&s).1,
        "DbKindProbing",
        "the old answer is not reused"
    );
    // A late answer about the gone container changes nothing.
    s.send(probed("c1", &["pg_dumpall"])).await;
    assert_eq!(db_ready(&s).1, "DbKindProbing");
    s.send(probed("c2", &["mariadb-dump", "mysqldump"])).await;
    assert_eq!(db_ready(&s).3, Some(DbKind::Mariadb));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_container_is_probed_only_once_it_runs() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(DB_CONFIG)).await;
    s.send(listing_with(&[db_container(
        "c1",
        "myorg/db:1",
        ContainerState::Exited,
    )]))
    .await;
    s.pass(10 * MINUTE).await;
    assert!(
        s.probes().is_empty(),
        "a stopped container has no tools to run"
    );
    let (status, reason, message, _) = db_ready(&s);
    assert_eq!((status.as_str(), reason), ("False", "DbKindUnknown"));
    assert!(message.contains("cannot be looked for"), "{message}");

    s.send(Message::Inventory(InventoryChange::ContainerUpdated(
        db_container("c1", "myorg/db:1", ContainerState::Running),
    )))
    .await;
    assert_eq!(s.probes(), ["c1"]);
}

#[tokio::test(start_paused = true)]
async fn a_kind_told_by_config_or_image_name_is_not_probed() {
    let mut s = Scenario::start("2027-01-01T00:00:30Z", BTreeMap::new());
    s.send(config(&format!("{DB_CONFIG}        dbKind: postgres\n")))
        .await;
    s.send(listing_with(&[db_container(
        "c1",
        "myorg/db:1",
        ContainerState::Running,
    )]))
    .await;
    assert!(s.probes().is_empty());
    assert_eq!(db_ready(&s).1, "ContainerRunning");

    s.send(listing_with(&[db_container(
        "c2",
        "postgres:16",
        ContainerState::Running,
    )]))
    .await;
    s.send(config(DB_CONFIG)).await;
    assert!(s.probes().is_empty());
    assert_eq!(db_ready(&s).3, Some(DbKind::Postgres));
}
