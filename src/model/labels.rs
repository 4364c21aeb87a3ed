//! The label model (SPEC §2): what the `dev.polarfox.marina.*` labels on a volume or a
//! container ask for. Pure translation of a label map into a target intent or a list of
//! precise problems; the Docker adapter supplies the labels, the reconciler decides.

use std::collections::BTreeMap;

use super::{DbKind, DockerName, InstanceId, TargetKind, TargetSpec, VolumePath};

/// Every Marina label starts with this.
pub const PREFIX: &str = "dev.polarfox.marina.";

/// Label Marina puts on the backend and helper containers it starts, with the job id as value;
/// such containers are Marina's own, never targets (SPEC §4.2).
pub const JOB_LABEL: &str = "dev.polarfox.marina.job";

/// [`JOB_LABEL`] without the prefix.
const JOB_LABEL_KEY: &str = "job";

/// Label Marina puts on a volume it restored into, saying from what: `<volume>@<snapshot>`.
///
/// Provenance, never configuration: [`parse`] skips it, so a restored copy is unlabelled
/// (and shows as unprotected until someone opts it in), and opting it in with `enabled` and
/// `instanceID` later is not spoilt by an "is not a Marina label" problem.
pub const RESTORED_FROM_LABEL: &str = "dev.polarfox.marina.restored-from";

/// [`RESTORED_FROM_LABEL`] without the prefix.
const RESTORED_FROM_KEY: &str = "restored-from";

/// Labels by which an orchestrator claims an object as its own. A copy must not carry them:
/// Compose would list, scale or remove a cloned container as one of its service's replicas
/// (and `docker compose down --volumes` a copied volume), and Swarm would take a clone for
/// one of its tasks.
const ORCHESTRATOR_PREFIXES: [&str; 3] = [
    "com.docker.compose.",
    "com.docker.stack.",
    "com.docker.swarm.",
];

/// The labels of a copy of a volume or container (a restored volume, an offline clone of a
/// database container): the original's labels without Marina's own (a copy is never the
/// target its original is) and without those by which Compose or Swarm claim an object
/// (`com.docker.compose.*`, `com.docker.stack.*`, `com.docker.swarm.*`), then `added` on top
/// (they win over the original's).
#[must_use]
pub fn labels_of_copy<'a>(
    original: impl IntoIterator<Item = (&'a String, &'a String)>,
    added: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = original
        .into_iter()
        .filter(|(key, _)| {
            !key.starts_with(PREFIX) && !ORCHESTRATOR_PREFIXES.iter().any(|p| key.starts_with(p))
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    labels.extend(added);
    labels
}

/// The Docker object that carries the labels; it decides which labels apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelledObject<'a> {
    /// A volume, by name: labels describe a file backup.
    Volume(&'a str),
    /// A container, by name: labels describe a database dump.
    Container(&'a str),
}

/// What the labels of one object amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelIntent {
    /// No Marina label at all.
    Unlabelled,
    /// Marina labels are present but `enabled` is absent or false: not a target.
    Disabled,
    /// A container Marina started for a job (it carries [`JOB_LABEL`]).
    MarinaOwned {
        /// The job the container belongs to.
        job: String,
    },
    /// A target, for the listed instances (which may name no configured instance: the
    /// reconciler reports those as unassigned).
    Target {
        /// The target with its settings.
        spec: TargetSpec,
        /// The instances it belongs to, in label order, without duplicates.
        instances: Vec<InstanceId>,
    },
    /// Opted in, but some labels are wrong; nothing is backed up until they are fixed.
    Invalid(Vec<LabelProblem>),
}

/// One wrong label, precise enough to fix without reading the docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelProblem {
    /// The full label key.
    pub label: String,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for LabelProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "label {}: {}", self.label, self.message)
    }
}

/// The labels Marina understands, without the prefix, and where each applies.
const VOLUME_ONLY: [&str; 2] = ["paths", "stopAttached"];
const CONTAINER_ONLY: [&str; 2] = ["db", "dump.args"];
const EITHER: [&str; 5] = ["enabled", "instanceID", "pre", "post", "allowEmpty"];

/// Reads the Marina labels of a volume or container.
#[must_use]
pub fn parse<'a>(
    object: LabelledObject<'_>,
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> LabelIntent {
    // Sorted, so problems come out in a stable order.
    let ours: BTreeMap<&str, &str> = labels
        .into_iter()
        .filter_map(|(key, value)| Some((key.strip_prefix(PREFIX)?, value.as_str())))
        .filter(|(key, _)| *key != RESTORED_FROM_KEY)
        .collect();
    if ours.is_empty() {
        return LabelIntent::Unlabelled;
    }
    if let Some(job) = ours.get(JOB_LABEL_KEY) {
        return LabelIntent::MarinaOwned {
            job: (*job).to_owned(),
        };
    }
    let mut reader = Reader {
        labels: &ours,
        problems: Vec::new(),
    };
    match ours.get("enabled").map(|v| reader.boolean("enabled", v)) {
        Some(Some(true)) => {}
        Some(None) => return LabelIntent::Invalid(reader.problems),
        Some(Some(false)) | None => return LabelIntent::Disabled,
    }
    reader.check_keys(object);

    let instances = reader.instances();
    let spec = match object {
        LabelledObject::Volume(name) => reader.volume(name),
        LabelledObject::Container(name) => reader.container(name),
    };
    match (spec, reader.problems.is_empty()) {
        (Some(spec), true) => LabelIntent::Target { spec, instances },
        _ => LabelIntent::Invalid(reader.problems),
    }
}

/// Collects problems while reading the labels of one object.
struct Reader<'a> {
    labels: &'a BTreeMap<&'a str, &'a str>,
    problems: Vec<LabelProblem>,
}

impl<'a> Reader<'a> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(LabelProblem {
            label: format!("{PREFIX}{key}"),
            message: message.into(),
        });
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.labels.get(key).copied()
    }

    /// `true`/`yes`/`1` or `false`/`no`/`0`, any case (SPEC §2).
    fn boolean(&mut self, key: &str, value: &str) -> Option<bool> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => {
                self.problem(
                    key,
                    format!("`{value}` is not a boolean; use true/yes/1 or false/no/0"),
                );
                None
            }
        }
    }

    fn optional_bool(&mut self, key: &str) -> Option<bool> {
        let value = self.get(key)?;
        self.boolean(key, value)
    }

    /// Comma-separated items, trimmed, empty items dropped.
    fn list(&self, key: &str) -> Option<Vec<&'a str>> {
        self.get(key).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    fn hook(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    fn check_keys(&mut self, object: LabelledObject<'_>) {
        let keys: Vec<&str> = self.labels.keys().copied().collect();
        for key in keys {
            let (kind, misplaced) = match object {
                LabelledObject::Volume(_) => ("volumes", CONTAINER_ONLY.contains(&key)),
                LabelledObject::Container(_) => ("containers", VOLUME_ONLY.contains(&key)),
            };
            if misplaced {
                let other = if kind == "volumes" {
                    "containers"
                } else {
                    "volumes"
                };
                self.problem(key, format!("applies to {other} only, not to {kind}"));
            } else if !EITHER.contains(&key)
                && !VOLUME_ONLY.contains(&key)
                && !CONTAINER_ONLY.contains(&key)
            {
                let known = EITHER.iter().chain(&VOLUME_ONLY).chain(&CONTAINER_ONLY);
                let hint = known
                    .min_by_key(|k| strsim::levenshtein(k, key))
                    .filter(|k| strsim::levenshtein(k, key) <= 2)
                    .map(|k| format!(" (did you mean {PREFIX}{k}?)"))
                    .unwrap_or_default();
                self.problem(key, format!("is not a Marina label{hint}"));
            }
        }
    }

    fn instances(&mut self) -> Vec<InstanceId> {
        let Some(items) = self.list("instanceID") else {
            self.problem(
                "instanceID",
                "is missing; name the instance(s) that back this up, comma-separated",
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(
                "instanceID",
                "is empty; name the instance(s) that back this up, comma-separated",
            );
        }
        let mut instances: Vec<InstanceId> = Vec::new();
        for item in items {
            match InstanceId::parse(item) {
                Ok(id) if !instances.contains(&id) => instances.push(id),
                Ok(_) => {}
                Err(e) => self.problem("instanceID", e.to_string()),
            }
        }
        instances
    }

    fn name(&mut self, key: &str, name: &str) -> Option<DockerName> {
        DockerName::parse(name)
            .map_err(|e| self.problem(key, format!("object name {e}")))
            .ok()
    }

    fn volume(&mut self, name: &str) -> Option<TargetSpec> {
        let mut paths = Vec::new();
        if let Some(items) = self.list("paths") {
            for item in items {
                match VolumePath::parse(item) {
                    Ok(path) => paths.push(path),
                    Err(e) => self.problem("paths", format!("`{item}` {e}")),
                }
            }
        }
        if paths.is_empty() {
            paths.push(VolumePath::root());
        }
        let stop_attached = self.optional_bool("stopAttached");
        let mut spec = TargetSpec::volume(self.name("enabled", name)?);
        spec.kind = TargetKind::Volume {
            paths,
            stop_attached,
        };
        Some(self.common(spec))
    }

    fn container(&mut self, name: &str) -> Option<TargetSpec> {
        let kind = match self.get("db").map(str::trim) {
            None | Some("auto" | "") => None,
            Some(text) => match text.parse::<DbKind>() {
                Ok(kind) => Some(kind),
                Err(e) => {
                    self.problem("db", format!("{e}, or auto to detect it from the image"));
                    None
                }
            },
        };
        let dump_args = self
            .list("dump.args")
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut spec = TargetSpec::db(self.name("enabled", name)?);
        spec.kind = TargetKind::Db { kind, dump_args };
        Some(self.common(spec))
    }

    fn common(&mut self, mut spec: TargetSpec) -> TargetSpec {
        spec.pre_hook = self.hook("pre");
        spec.post_hook = self.hook("post");
        spec.allow_empty = self.optional_bool("allowEmpty").unwrap_or(false);
        spec
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::TargetId;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    fn problems(intent: LabelIntent) -> Vec<String> {
        match intent {
            LabelIntent::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn objects_without_marina_labels_are_unlabelled() {
        let mut map = HashMap::new();
        map.insert("com.docker.compose.project".to_owned(), "app".to_owned());
        assert_eq!(
            parse(LabelledObject::Volume("v"), &map),
            LabelIntent::Unlabelled
        );
    }

    #[test]
    fn enabled_must_be_true_to_opt_in() {
        for off in ["false", "No", "0"] {
            let intent = parse(
                LabelledObject::Volume("v"),
                &labels(&[("enabled", off), ("instanceID", "a")]),
            );
            assert_eq!(intent, LabelIntent::Disabled, "{off}");
        }
        let intent = parse(LabelledObject::Volume("v"), &labels(&[("instanceID", "a")]));
        assert_eq!(intent, LabelIntent::Disabled);
        for on in ["true", "YES", "1", " True "] {
            let intent = parse(
                LabelledObject::Volume("v"),
                &labels(&[("enabled", on), ("instanceID", "a")]),
            );
            assert!(matches!(intent, LabelIntent::Target { .. }), "{on}");
        }
    }

    #[test]
    fn a_volume_becomes_a_target_with_its_settings() {
        let map = labels(&[
            ("enabled", "true"),
            ("instanceID", "nightly, offsite,nightly"),
            ("paths", "/, uploads/,"),
            ("stopAttached", "yes"),
            ("pre", "sync"),
            ("post", " "),
        ]);
        let LabelIntent::Target { spec, instances } =
            parse(LabelledObject::Volume("app-data"), &map)
        else {
            panic!("expected a target");
        };
        assert_eq!(
            instances,
            vec![
                InstanceId::parse("nightly").unwrap(),
                InstanceId::parse("offsite").unwrap()
            ]
        );
        assert_eq!(
            spec.id,
            TargetId::Volume(DockerName::parse("app-data").unwrap())
        );
        assert_eq!(
            spec.kind,
            TargetKind::Volume {
                paths: vec![VolumePath::root(), VolumePath::parse("uploads").unwrap()],
                stop_attached: Some(true),
            }
        );
        assert_eq!(spec.pre_hook.as_deref(), Some("sync"));
        assert_eq!(spec.post_hook, None);
        assert!(!spec.allow_empty);
    }

    #[test]
    fn a_container_becomes_a_db_target() {
        let map = labels(&[
            ("enabled", "1"),
            ("instanceID", "db"),
            ("db", "postgres"),
            ("dump.args", "--clean, --if-exists"),
        ]);
        let LabelIntent::Target { spec, .. } = parse(LabelledObject::Container("pg"), &map) else {
            panic!("expected a target");
        };
        assert_eq!(spec.id.to_string(), "db:pg");
        assert_eq!(
            spec.kind,
            TargetKind::Db {
                kind: Some(DbKind::Postgres),
                dump_args: vec!["--clean".into(), "--if-exists".into()],
            }
        );
        for auto in [vec![("db", "auto")], vec![]] {
            let mut pairs = vec![("enabled", "1"), ("instanceID", "db")];
            pairs.extend(auto);
            let LabelIntent::Target { spec, .. } =
                parse(LabelledObject::Container("pg"), &labels(&pairs))
            else {
                panic!("expected a target");
            };
            assert!(matches!(spec.kind, TargetKind::Db { kind: None, .. }));
        }
    }

    #[test]
    fn wrong_labels_are_reported_precisely() {
        let map = labels(&[
            ("enabled", "true"),
            ("instanceID", "ok,bad id"),
            ("db", "oracle"),
            ("paths", "../etc"),
            ("stopAtached", "true"),
            ("allowEmpty", "maybe"),
        ]);
        insta::assert_debug_snapshot!(problems(parse(LabelledObject::Container("c"), &map)), @r#"
        [
            "label dev.polarfox.marina.paths: applies to volumes only, not to containers",
            "label dev.polarfox.marina.stopAtached: is not a Marina label (did you mean dev.polarfox.marina.stopAttached?)",
            "label dev.polarfox.marina.instanceID: `bad id` is not valid: an instance id starts with a letter or digit and contains only letters, digits, '.', '_' and '-'",
            "label dev.polarfox.marina.db: `oracle` is not a supported database kind; use one of postgres, mysql, mariadb, mongo, redis, or auto to detect it from the image",
            "label dev.polarfox.marina.allowEmpty: `maybe` is not a boolean; use true/yes/1 or false/no/0",
        ]
        "#);
        let map = labels(&[
            ("enabled", "true"),
            ("instanceID", "a"),
            ("paths", "/ok,../etc"),
            ("db", "redis"),
        ]);
        insta::assert_debug_snapshot!(problems(parse(LabelledObject::Volume("v"), &map)), @r#"
        [
            "label dev.polarfox.marina.db: applies to containers only, not to volumes",
            "label dev.polarfox.marina.paths: `../etc` must be relative to the volume root and must not contain '..'",
        ]
        "#);
    }

    #[test]
    fn a_bad_enabled_value_or_missing_instance_is_a_problem() {
        let intent = parse(LabelledObject::Volume("v"), &labels(&[("enabled", "ture")]));
        assert_eq!(
            problems(intent),
            [
                "label dev.polarfox.marina.enabled: `ture` is not a boolean; use true/yes/1 or false/no/0"
            ]
        );
        let intent = parse(LabelledObject::Volume("v"), &labels(&[("enabled", "true")]));
        assert_eq!(
            problems(intent),
            [
                "label dev.polarfox.marina.instanceID: is missing; name the instance(s) that back this up, comma-separated"
            ]
        );
    }

    #[test]
    fn the_restored_from_label_is_provenance_not_configuration() {
        let restored = |pairs: &[(&str, &str)]| {
            let mut map = labels(pairs);
            map.insert(
                RESTORED_FROM_LABEL.to_owned(),
                "app-data@1a2b3c4d".to_owned(),
            );
            map
        };
        assert_eq!(
            parse(LabelledObject::Volume("v"), &restored(&[])),
            LabelIntent::Unlabelled
        );
        // Opted in later, the copy is a target like any other, without a problem.
        let intent = parse(
            LabelledObject::Volume("v"),
            &restored(&[("enabled", "true"), ("instanceID", "a")]),
        );
        assert!(matches!(intent, LabelIntent::Target { .. }), "{intent:?}");
    }

    #[test]
    fn a_copy_keeps_foreign_labels_and_drops_marinas_and_orchestrators() {
        let mut original = labels(&[("enabled", "true"), ("instanceID", "a"), ("job", "7")]);
        for (key, value) in [
            ("com.example.team", "billing"),
            ("com.docker.compose.project", "app"),
            ("com.docker.compose.service", "db"),
            ("com.docker.stack.namespace", "app"),
            ("com.docker.swarm.task.id", "x1"),
            ("com.docker.composer", "kept: not the compose prefix"),
            (RESTORED_FROM_LABEL, "older@1"),
        ] {
            original.insert(key.to_owned(), value.to_owned());
        }
        let added = [
            (RESTORED_FROM_LABEL.to_owned(), "app-data@1a2b".to_owned()),
            ("com.example.team".to_owned(), "restore-drill".to_owned()),
        ];
        let copy = labels_of_copy(&original, added);
        let copy: Vec<(&str, &str)> = copy.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            copy,
            [
                ("com.docker.composer", "kept: not the compose prefix"),
                ("com.example.team", "restore-drill"),
                (RESTORED_FROM_LABEL, "app-data@1a2b"),
            ]
        );
    }

    #[test]
    fn marina_job_containers_are_never_targets() {
        let map = labels(&[("job", "42"), ("enabled", "true")]);
        assert_eq!(
            parse(LabelledObject::Container("x"), &map),
            LabelIntent::MarinaOwned { job: "42".into() }
        );
    }
}
