use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was rejected; the message completes "`<value>` …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The name is the empty string.
    #[error("must not be empty")]
    Empty,
    /// The name contains a character outside the allowed set.
    #[error("`{value}` is not valid: {rule}")]
    Invalid {
        /// The rejected name.
        value: String,
        /// The rule it breaks, in words.
        rule: &'static str,
    },
}

fn is_name(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Identifier of a backup instance, `[A-Za-z0-9][A-Za-z0-9._-]*` (SPEC §1). It appears in
/// staging paths, restic tags and metric labels, hence the narrow alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    /// Checks `value` against the instance id alphabet.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.is_empty() {
            Err(IdError::Empty)
        } else if is_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError::Invalid {
                value: value.to_owned(),
                rule: "an instance id starts with a letter or digit and contains only letters, digits, '.', '_' and '-'",
            })
        }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a Docker volume or container, in Docker's own alphabet
/// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`). Checking it early turns a typo into a config error instead
/// of a target that is never found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DockerName(String);

impl DockerName {
    /// Checks `value` against Docker's name alphabet.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.is_empty() {
            Err(IdError::Empty)
        } else if is_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError::Invalid {
                value: value.to_owned(),
                rule: "Docker names start with a letter or digit and contain only letters, digits, '.', '_' and '-' (use the name `docker ps` or `docker volume ls` shows)",
            })
        }
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DockerName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DockerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of a target (SPEC §2): `volume:<name>` or `db:<container-name>`. A target named by
/// config and by labels is one target because both produce the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetId {
    /// The files of a Docker volume.
    Volume(DockerName),
    /// A database running in the named container.
    Db(DockerName),
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Volume(name) => write!(f, "volume:{name}"),
            Self::Db(name) => write!(f, "db:{name}"),
        }
    }
}

impl TargetId {
    /// Reads the form [`Display`](fmt::Display) writes: `volume:<name>` or `db:<name>`.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let invalid = || IdError::Invalid {
            value: text.to_owned(),
            rule: "a target is `volume:<volume name>` or `db:<container name>`, as `marina plan` lists them",
        };
        match text.split_once(':') {
            Some(("volume", name)) => DockerName::parse(name).map(Self::Volume),
            Some(("db", name)) => DockerName::parse(name).map(Self::Db),
            _ if text.is_empty() => Err(IdError::Empty),
            _ => Err(invalid()),
        }
    }

    /// The volume or container name.
    #[must_use]
    pub fn name(&self) -> &DockerName {
        match self {
            Self::Volume(name) | Self::Db(name) => name,
        }
    }
}

impl std::str::FromStr for TargetId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for TargetId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TargetId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_follow_the_documented_alphabet() {
        for ok in ["a", "nightly-s3", "A.b_c-9", "0days"] {
            assert!(InstanceId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".hidden", "a b", "a/b", "ü", "x:y"] {
            assert!(InstanceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn target_ids_print_with_their_kind() {
        let name = DockerName::parse("app-data").unwrap();
        assert_eq!(
            TargetId::Volume(name.clone()).to_string(),
            "volume:app-data"
        );
        assert_eq!(TargetId::Db(name).to_string(), "db:app-data");
    }

    #[test]
    fn target_ids_read_back_what_they_write() {
        for text in ["volume:app-data", "db:pg-1"] {
            assert_eq!(TargetId::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "app-data", "file:x", "volume:", "db:-x", "volume:a/b"] {
            assert!(TargetId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
