//! Property tests of the label parser ([`super::labels`]): any label map gets an answer, a
//! target belongs only to instances its `instanceID` lists, and a malformed value is a problem
//! that names its label.

use std::collections::HashMap;

use proptest::prelude::*;

use super::labels::{LabelIntent, LabelledObject, PREFIX, RESTORED_FROM_LABEL, parse};
use super::{DockerName, InstanceId, TargetId};

/// Label names Marina knows (without the prefix), a few near misses, and Marina's own.
const KEYS: [&str; 15] = [
    "enabled",
    "instanceID",
    "paths",
    "stopAttached",
    "db",
    "dump.args",
    "pre",
    "post",
    "allowEmpty",
    "instanceId",
    "stopAtached",
    "enable",
    "",
    "job",
    "restored-from",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "true",
            "1",
            "YES",
            " yes ",
            "false",
            "0",
            "maybe",
            "",
            " ",
            ",",
            "a,b",
            "a, b ,a",
            "bad id",
            "nightly,,offsite",
            "/",
            "uploads/,",
            "../etc",
            "/ok,../x",
            "postgres",
            "auto",
            "oracle",
            "--clean, --if-exists",
            "é,ü",
            "日本",
            "a\u{0}b",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9 ,./_-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(10).collect()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(&KEYS[..]).prop_map(|k| format!("{PREFIX}{k}")),
        1 => "[a-zA-Z.]{0,10}".prop_map(|k| format!("{PREFIX}{k}")),
        1 => "[a-z.]{1,16}",
    ]
}

fn labels() -> impl Strategy<Value = HashMap<String, String>> {
    let mut enabled = HashMap::new();
    enabled.insert(format!("{PREFIX}enabled"), "true".to_owned());
    // Half the maps opt in, so the target paths are reached.
    (
        proptest::collection::hash_map(key(), value(), 0..8),
        any::<bool>(),
    )
        .prop_map(move |(mut map, opt_in)| {
            if opt_in {
                map.remove(&format!("{PREFIX}job"));
                map.extend(enabled.clone());
            }
            map
        })
}

fn object_name() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-z0-9][a-z0-9_.-]{0,10}", 1 => any::<String>().prop_map(|s| s.chars().take(8).collect())]
}

fn listed(map: &HashMap<String, String>) -> Vec<String> {
    map.get(&format!("{PREFIX}instanceID"))
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default()
}

proptest! {
    #[test]
    fn any_labels_get_an_answer_that_keeps_to_them(map in labels(), name in object_name(), container in any::<bool>()) {
        let object = if container { LabelledObject::Container(&name) } else { LabelledObject::Volume(&name) };
        match parse(object, &map) {
            LabelIntent::Unlabelled => {
                prop_assert!(!map.keys().any(|k| k.starts_with(PREFIX) && k != RESTORED_FROM_LABEL));
            }
            LabelIntent::MarinaOwned { job } => {
                prop_assert_eq!(Some(&job), map.get(&format!("{PREFIX}job")));
            }
            LabelIntent::Disabled => {}
            LabelIntent::Target { spec, instances } => {
                let listed = listed(&map);
                prop_assert!(!instances.is_empty(), "a target for no instance");
                for (i, instance) in instances.iter().enumerate() {
                    prop_assert!(listed.iter().any(|l| l == instance.as_str()), "{} is not in {:?}", instance, listed);
                    prop_assert!(!instances[..i].contains(instance), "{} twice", instance);
                }
                let expected = DockerName::parse(&name).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let id = if container { TargetId::Db(expected) } else { TargetId::Volume(expected) };
                prop_assert_eq!(spec.id, id);
            }
            LabelIntent::Invalid(problems) => {
                prop_assert!(!problems.is_empty(), "invalid without a problem");
                for problem in &problems {
                    let set = map.contains_key(&problem.label);
                    let missing_instances = problem.label == format!("{PREFIX}instanceID");
                    prop_assert!(set || missing_instances, "problem names a label that is not set: {}", problem);
                    prop_assert!(!problem.message.is_empty());
                }
            }
        }
    }

    /// Starting from labels that make a target, one malformed value makes it invalid, with a
    /// problem naming exactly that label.
    #[test]
    fn a_malformed_value_is_a_problem_naming_its_label(
        ids in proptest::collection::vec("[a-z][a-z0-9._-]{0,6}", 1..4),
        container in any::<bool>(),
        spaces in "[ ]{0,2}",
        pick in any::<prop::sample::Index>(),
    ) {
        let mut map: HashMap<String, String> = HashMap::new();
        map.insert(format!("{PREFIX}enabled"), "true".into());
        map.insert(format!("{PREFIX}instanceID"), ids.join(&format!(",{spaces}")));
        let object = if container { LabelledObject::Container("app") } else { LabelledObject::Volume("app") };
        let LabelIntent::Target { instances, .. } = parse(object, &map) else {
            return Err(TestCaseError::fail(format!("{map:?} is not a target")));
        };
        let mut unique: Vec<InstanceId> = Vec::new();
        for id in &ids {
            let id = InstanceId::parse(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        prop_assert_eq!(instances, unique);

        let mut bad: Vec<(&str, &str)> = vec![
            ("allowEmpty", "maybe"),
            ("instanceID", "ok,bad id"),
            ("instanceID", " , "),
            ("enabled", "ture"),
            ("stopAtached", "true"),
        ];
        if container {
            bad.extend([("db", "oracle"), ("paths", "data"), ("stopAttached", "yes")]);
        } else {
            bad.extend([("paths", "../etc"), ("paths", "ok,/../x"), ("stopAttached", "perhaps"), ("db", "postgres"), ("dump.args", "-x")]);
        }
        let (key, value) = bad[pick.index(bad.len())];
        let label = format!("{PREFIX}{key}");
        map.insert(label.clone(), value.to_owned());
        match parse(object, &map) {
            LabelIntent::Invalid(problems) => {
                prop_assert!(!problems.is_empty());
                for problem in &problems {
                    prop_assert_eq!(&problem.label, &label, "{}", problem);
                }
            }
            other => prop_assert!(false, "{}={} gave {:?}", label, value, other),
        }
    }

    /// Provenance changes nothing: adding or removing the restored-from label never changes
    /// what the labels of an object amount to.
    #[test]
    fn the_restored_from_label_never_changes_the_answer(map in labels(), name in object_name(), container in any::<bool>(), from in value()) {
        let object = if container { LabelledObject::Container(&name) } else { LabelledObject::Volume(&name) };
        let mut without = map.clone();
        without.remove(RESTORED_FROM_LABEL);
        let mut with = without.clone();
        with.insert(RESTORED_FROM_LABEL.to_owned(), from);
        prop_assert_eq!(parse(object, &with), parse(object, &without));
    }
}
