//! The state graph: desired state (config instances and labelled targets) joined with the
//! observed state (volumes and containers). A pure function of its inputs, rebuilt whenever
//! either changes; the reconciler decides on it and readers see it through snapshots.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::status::{Condition, ConditionType};
use crate::config::Config;
use crate::model::labels::{self, LabelIntent, LabelProblem, LabelledObject};
use crate::model::{
    ContainerInfo, ContainerState, DbKind, InstanceId, Inventory, TargetId, TargetKind, TargetSpec,
    ToolProbe, VolumeInfo,
};

/// The `Ready` reason of a db target whose kind waits for the dump tools in its container to
/// be looked for. A job that starts meanwhile looks for them itself.
pub const DB_KIND_PROBING: &str = "DbKindProbing";

/// The `Ready` reason of a db target whose kind the dump tools in its container told.
pub const DB_KIND_FROM_PROBE: &str = "DbKindFromProbe";

/// Where a target was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetSource {
    /// Only in `config.yml`.
    Config,
    /// Only by Docker labels.
    Label,
    /// Both; the config's settings win (SPEC §2).
    ConfigAndLabel,
}

/// A target of one instance, with what Docker says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The effective settings (config wins over labels).
    pub spec: TargetSpec,
    /// Where it was declared.
    pub source: TargetSource,
    /// For a database: the engine, as configured or detected from the image.
    pub db_kind: Option<DbKind>,
    /// `Ready`, with the reason when it is not.
    pub ready: Condition,
    /// The Docker object behind it, as last observed; `None` when it does not exist.
    pub found: Option<Found>,
}

/// The Docker object a target names, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The volume of a volume target.
    Volume(VolumeInfo),
    /// The container of a db target.
    Container(ContainerInfo),
}

/// A labelled target that names instances the config does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnassignedTarget {
    /// The target.
    pub target: TargetId,
    /// The instance ids its label names that no instance has.
    pub unknown_instances: Vec<InstanceId>,
}

/// A volume or container that opted in with labels that are wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidLabels {
    /// `volume:<name>` or `container:<name>`.
    pub object: String,
    /// Every wrong label.
    pub problems: Vec<String>,
}

/// The joined view of desired and observed state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Each configured instance's targets, in config order (config targets first, then
    /// labelled ones by id).
    pub targets: BTreeMap<InstanceId, Vec<Target>>,
    /// Labelled targets naming unknown instances.
    pub unassigned: Vec<UnassignedTarget>,
    /// Objects whose Marina labels are wrong.
    pub invalid: Vec<InvalidLabels>,
    /// Volumes no target covers and no label opts out of (coverage).
    pub unprotected_volumes: Vec<String>,
}

/// Joins `config` and `inventory`; `probes` (by container id) tell the kind of database
/// containers whose image name says nothing.
#[must_use]
pub fn build(
    config: &Config,
    inventory: &Inventory,
    probes: &BTreeMap<String, ToolProbe>,
) -> Graph {
    let labelled = labelled_targets(inventory);
    let known: BTreeSet<&InstanceId> = config.instances.iter().map(|i| &i.id).collect();
    let mut graph = Graph {
        invalid: labelled.invalid,
        ..Graph::default()
    };
    let mut covered: BTreeSet<&str> = labelled.opted_out.iter().map(String::as_str).collect();

    for instance in &config.instances {
        let mut targets: Vec<Target> = instance
            .targets
            .iter()
            .map(|spec| {
                let labelled_too = labelled
                    .targets
                    .iter()
                    .any(|(s, ids)| s.id == spec.id && ids.contains(&instance.id));
                let source = if labelled_too {
                    TargetSource::ConfigAndLabel
                } else {
                    TargetSource::Config
                };
                observe(spec.clone(), source, inventory, probes)
            })
            .collect();
        for (spec, ids) in &labelled.targets {
            let in_config = instance.targets.iter().any(|t| t.id == spec.id);
            if ids.contains(&instance.id) && !in_config {
                targets.push(observe(
                    spec.clone(),
                    TargetSource::Label,
                    inventory,
                    probes,
                ));
            }
        }
        graph.targets.insert(instance.id.clone(), targets);
    }
    for (spec, ids) in &labelled.targets {
        let unknown: Vec<InstanceId> = ids
            .iter()
            .filter(|id| !known.contains(id))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            graph.unassigned.push(UnassignedTarget {
                target: spec.id.clone(),
                unknown_instances: unknown,
            });
        }
    }
    for spec in config
        .instances
        .iter()
        .flat_map(|i| &i.targets)
        .chain(labelled.targets.iter().map(|(s, _)| s))
    {
        if let TargetId::Volume(name) = &spec.id {
            covered.insert(name.as_str());
        }
    }
    graph.unprotected_volumes = inventory
        .volumes
        .keys()
        .filter(|name| !covered.contains(name.as_str()))
        .cloned()
        .collect();
    graph
}

/// What the labels in the inventory ask for.
struct Labelled {
    /// Valid labelled targets with the instance ids they name, sorted by target id.
    targets: Vec<(TargetSpec, Vec<InstanceId>)>,
    invalid: Vec<InvalidLabels>,
    /// Volumes whose labels opt out explicitly: they have a policy, so they are covered.
    opted_out: Vec<String>,
}

fn labelled_targets(inventory: &Inventory) -> Labelled {
    let mut result = Labelled {
        targets: Vec::new(),
        invalid: Vec::new(),
        opted_out: Vec::new(),
    };
    let volumes = inventory.volumes.values().map(|v| {
        (
            LabelledObject::Volume(&v.name),
            format!("volume:{}", v.name),
            &v.labels,
            Some(&v.name),
        )
    });
    let containers = inventory.containers.values().map(|c| {
        (
            LabelledObject::Container(&c.name),
            format!("container:{}", c.name),
            &c.labels,
            None,
        )
    });
    for (object, description, object_labels, volume_name) in volumes.chain(containers) {
        match labels::parse(object, object_labels) {
            LabelIntent::Target { spec, instances } => result.targets.push((spec, instances)),
            LabelIntent::Invalid(problems) => result.invalid.push(InvalidLabels {
                object: description,
                problems: problems.iter().map(LabelProblem::to_string).collect(),
            }),
            LabelIntent::Disabled => result.opted_out.extend(volume_name.cloned()),
            LabelIntent::Unlabelled | LabelIntent::MarinaOwned { .. } => {}
        }
    }
    result.targets.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    result
}

/// Pairs a target with what Docker reports about its volume or container.
fn observe(
    spec: TargetSpec,
    source: TargetSource,
    inventory: &Inventory,
    probes: &BTreeMap<String, ToolProbe>,
) -> Target {
    let (db_kind, ready) = match (&spec.id, &spec.kind) {
        (TargetId::Volume(name), _) => {
            let ready = if inventory.volumes.contains_key(name.as_str()) {
                Condition::holds(
                    ConditionType::Ready,
                    "VolumeFound",
                    format!("volume {name} exists"),
                )
            } else {
                Condition::fails(
                    ConditionType::Ready,
                    "VolumeNotFound",
                    format!("volume {name} does not exist"),
                )
            };
            (None, ready)
        }
        (TargetId::Db(name), TargetKind::Db { kind, .. }) => {
            db_status(name.as_str(), *kind, inventory, probes)
        }
        (TargetId::Db(name), TargetKind::Volume { .. }) => (
            None,
            Condition::fails(
                ConditionType::Ready,
                "InvalidTarget",
                format!("db target {name} has volume settings"),
            ),
        ),
    };
    let found = match &spec.id {
        TargetId::Volume(name) => inventory
            .volumes
            .get(name.as_str())
            .cloned()
            .map(Found::Volume),
        TargetId::Db(name) => inventory
            .container_named(name.as_str())
            .cloned()
            .map(Found::Container),
    };
    Target {
        spec,
        source,
        db_kind,
        ready,
        found,
    }
}

fn db_status(
    name: &str,
    configured: Option<DbKind>,
    inventory: &Inventory,
    probes: &BTreeMap<String, ToolProbe>,
) -> (Option<DbKind>, Condition) {
    let Some(container) = inventory.container_named(name) else {
        let message = format!("container {name} does not exist");
        return (
            configured,
            Condition::fails(ConditionType::Ready, "ContainerNotFound", message),
        );
    };
    let running = container.state == ContainerState::Running;
    let Some(kind) = configured.or_else(|| DbKind::detect_from_image(&container.image)) else {
        // The name says nothing (a private image, a bare id): the dump tools in the
        // container tell, once the executor has looked for them (a Docker effect, ordered
        // by the reconciler, so not done here).
        return probed_status(name, container, running, probes.get(&container.id));
    };
    let ready = if running {
        Condition::holds(
            ConditionType::Ready,
            "ContainerRunning",
            format!("{kind} container {name} is running"),
        )
    } else {
        not_running(name, container)
    };
    (Some(kind), ready)
}

/// The kind and readiness of a db target whose kind only the dump tools in its container
/// can tell.
fn probed_status(
    name: &str,
    container: &ContainerInfo,
    running: bool,
    probe: Option<&ToolProbe>,
) -> (Option<DbKind>, Condition) {
    let image = &container.image;
    let unknown = |message: String| {
        (
            None,
            Condition::fails(ConditionType::Ready, "DbKindUnknown", message),
        )
    };
    match probe {
        Some(ToolProbe::Answered(Ok((kind, tool)))) => {
            let ready = if running {
                let message = format!(
                    "kind {kind}: the image {image} of {name} does not name a database; found {tool} in the container"
                );
                Condition::holds(ConditionType::Ready, DB_KIND_FROM_PROBE, message)
            } else {
                not_running(name, container)
            };
            (Some(*kind), ready)
        }
        Some(ToolProbe::Answered(Err(e))) => unknown(e.for_container(name)),
        Some(ToolProbe::Failed(message)) => unknown(message.clone()),
        None | Some(ToolProbe::Pending) if !running => unknown(format!(
            "cannot tell the database kind of {name} from its image {image}, and the container is {}, so its dump tools cannot be looked for; set dbKind (config) or dev.polarfox.marina.db (label)",
            container.state
        )),
        Some(ToolProbe::Pending) => (
            None,
            Condition::unknown(
                ConditionType::Ready,
                DB_KIND_PROBING,
                format!(
                    "the image {image} of {name} does not name a database; Marina is looking for the dump tools in the container to tell its kind (set dbKind or dev.polarfox.marina.db to skip this)"
                ),
            ),
        ),
        None => (
            None,
            Condition::unknown(
                ConditionType::Ready,
                DB_KIND_PROBING,
                format!(
                    "the image {image} of {name} does not name a database; its kind is told by the dump tools in the container, not looked for yet (set dbKind or dev.polarfox.marina.db to skip this)"
                ),
            ),
        ),
    }
}

fn not_running(name: &str, container: &ContainerInfo) -> Condition {
    let message = format!(
        "container {name} is {}; a dump needs it running",
        container.state
    );
    Condition::fails(ConditionType::Ready, "ContainerNotRunning", message)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{self, Environment};
    use crate::model::{ContainerInfo, VolumeInfo, VolumeMount};

    struct NoEnv;

    impl Environment for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn hostname(&self) -> Option<String> {
            Some("n".into())
        }
    }

    fn config() -> Config {
        let text = "
instances:
  - id: nightly
    repository: /srv/r
    schedule: '@daily'
    env: {RESTIC_PASSWORD: x}
    targets:
      - volume: app-data
        paths: [/config-wins]
      - db: pg
      - db: gone
  - id: weekly
    customImage: example/backup:1
    schedule: '@weekly'
";
        config::load_str(text, "c.yml", &NoEnv).unwrap().config
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("dev.polarfox.marina.{k}"), (*v).to_owned()))
            .collect()
    }

    fn volume(name: &str, pairs: &[(&str, &str)]) -> VolumeInfo {
        VolumeInfo {
            name: name.into(),
            driver: "local".into(),
            mountpoint: None,
            labels: labels(pairs),
        }
    }

    fn container(
        name: &str,
        image: &str,
        state: ContainerState,
        pairs: &[(&str, &str)],
    ) -> ContainerInfo {
        ContainerInfo {
            id: format!("id-{name}"),
            name: name.into(),
            image: image.into(),
            labels: labels(pairs),
            state,
            mounts: vec![VolumeMount {
                volume: "app-data".into(),
                destination: "/data".into(),
                read_write: true,
            }],
        }
    }

    fn inventory() -> Inventory {
        let mut inventory = Inventory::default();
        for v in [
            volume(
                "app-data",
                &[
                    ("enabled", "true"),
                    ("instanceID", "nightly"),
                    ("paths", "/label-loses"),
                ],
            ),
            volume(
                "uploads",
                &[("enabled", "true"), ("instanceID", "weekly,typo")],
            ),
            volume("orphan", &[("enabled", "yes"), ("instanceID", "nobody")]),
            volume(
                "broken",
                &[
                    ("enabled", "true"),
                    ("instanceID", "nightly"),
                    ("paths", "../x"),
                ],
            ),
            volume("opted-out", &[("enabled", "false")]),
            volume("plain", &[]),
        ] {
            inventory.volumes.insert(v.name.clone(), v);
        }
        for c in [
            container("pg", "postgres:16", ContainerState::Running, &[]),
            container(
                "cache",
                "redis:7",
                ContainerState::Exited,
                &[("enabled", "1"), ("instanceID", "weekly")],
            ),
            container(
                "app",
                "example/app:1",
                ContainerState::Running,
                &[("enabled", "1"), ("instanceID", "weekly")],
            ),
        ] {
            inventory.containers.insert(c.id.clone(), c);
        }
        inventory
    }

    fn summary(graph: &Graph, instance: &str) -> Vec<String> {
        graph.targets[&InstanceId::parse(instance).unwrap()]
            .iter()
            .map(|t| {
                format!(
                    "{} {:?} {} {}",
                    t.spec.id,
                    t.source,
                    t.ready.reason,
                    t.db_kind.map_or("-", DbKind::as_str)
                )
            })
            .collect()
    }

    #[test]
    fn config_and_label_targets_merge_with_config_winning() {
        let graph = build(&config(), &inventory(), &BTreeMap::new());
        assert_eq!(
            summary(&graph, "nightly"),
            [
                "volume:app-data ConfigAndLabel VolumeFound -",
                "db:pg Config ContainerRunning postgres",
                "db:gone Config ContainerNotFound -",
            ]
        );
        let app_data = &graph.targets[&InstanceId::parse("nightly").unwrap()][0];
        assert_eq!(
            app_data.spec.kind,
            TargetKind::Volume {
                paths: vec![crate::model::VolumePath::parse("/config-wins").unwrap()],
                stop_attached: None,
            }
        );
        assert_eq!(
            summary(&graph, "weekly"),
            [
                "volume:uploads Label VolumeFound -",
                "db:app Label DbKindProbing -",
                "db:cache Label ContainerNotRunning redis",
            ]
        );
    }

    #[test]
    fn unknown_instances_are_reported_as_unassigned() {
        let graph = build(&config(), &inventory(), &BTreeMap::new());
        let unassigned: Vec<String> = graph
            .unassigned
            .iter()
            .map(|u| {
                format!(
                    "{} -> {:?}",
                    u.target,
                    u.unknown_instances
                        .iter()
                        .map(InstanceId::as_str)
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        assert_eq!(
            unassigned,
            [
                "volume:orphan -> [\"nobody\"]",
                "volume:uploads -> [\"typo\"]"
            ]
        );
    }

    #[test]
    fn broken_labels_are_reported_and_not_backed_up() {
        let graph = build(&config(), &inventory(), &BTreeMap::new());
        assert_eq!(graph.invalid.len(), 1);
        assert_eq!(graph.invalid[0].object, "volume:broken");
        assert!(graph.invalid[0].problems[0].contains("must not contain '..'"));
        assert!(
            !summary(&graph, "nightly")
                .iter()
                .any(|t| t.contains("broken"))
        );
    }

    #[test]
    fn coverage_counts_volumes_without_any_policy() {
        let graph = build(&config(), &inventory(), &BTreeMap::new());
        // `broken` opted in but its labels are wrong: it is not protected.
        assert_eq!(graph.unprotected_volumes, ["broken", "plain"]);
    }
}
