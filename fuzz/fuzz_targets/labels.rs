//! Any bytes as a label map: the label parser must answer, never panic; a target names only
//! instances listed in `instanceID`, and every problem names a Marina label.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use marina::model::labels::{self, LabelIntent, LabelledObject, PREFIX};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line names the object (a leading `c` makes it a container); every other
    // line is `key=value`, a key without a dot getting the Marina prefix.
    let mut lines = text.split('\n');
    let head = lines.next().unwrap_or_default();
    let mut map = HashMap::new();
    for line in lines {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let key = if key.contains('.') {
            key.to_owned()
        } else {
            format!("{PREFIX}{key}")
        };
        map.insert(key, value.to_owned());
    }
    let object = match head.strip_prefix('c') {
        Some(name) => LabelledObject::Container(name),
        None => LabelledObject::Volume(head),
    };
    match labels::parse(object, &map) {
        LabelIntent::Target { instances, .. } => {
            let listed = map
                .get(&format!("{PREFIX}instanceID"))
                .map(String::as_str)
                .unwrap_or_default();
            for instance in instances {
                assert!(
                    listed
                        .split(',')
                        .any(|item| item.trim() == instance.as_str()),
                    "instance {instance} is not in instanceID `{listed}`"
                );
            }
        }
        LabelIntent::Invalid(problems) => {
            assert!(!problems.is_empty(), "an invalid intent without a problem");
            for problem in problems {
                assert!(
                    problem.label.starts_with(PREFIX) && map.contains_key(&problem.label)
                        || problem.label == format!("{PREFIX}instanceID"),
                    "problem for a label that is not set: {problem}"
                );
            }
        }
        LabelIntent::Unlabelled | LabelIntent::Disabled | LabelIntent::MarinaOwned { .. } => {}
    }
});
