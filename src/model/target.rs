use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::{DockerName, TargetId};

/// A database engine Marina can dump (SPEC §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    /// `pg_dumpall`.
    Postgres,
    /// `mysqldump`.
    Mysql,
    /// `mariadb-dump`, falling back to `mysqldump`.
    Mariadb,
    /// `mongodump --archive`.
    Mongo,
    /// `redis-cli --rdb`.
    Redis,
}

/// A `dbKind` value that names no supported engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a supported database kind; use one of postgres, mysql, mariadb, mongo, redis"
)]
pub struct UnknownDbKind(pub String);

impl DbKind {
    /// Every kind, in documentation order.
    pub const ALL: [Self; 5] = [
        Self::Postgres,
        Self::Mysql,
        Self::Mariadb,
        Self::Mongo,
        Self::Redis,
    ];

    /// The kind's name as written in config and labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Mariadb => "mariadb",
            Self::Mongo => "mongo",
            Self::Redis => "redis",
        }
    }

    /// The file name of the dump in the staging layout (SPEC §3.1).
    #[must_use]
    pub fn dump_file_name(self) -> &'static str {
        match self {
            Self::Postgres | Self::Mysql | Self::Mariadb => "dump.sql",
            Self::Mongo => "dump.archive",
            Self::Redis => "dump.rdb",
        }
    }

    /// Guesses the kind from a container image reference by its repository name (SPEC §2):
    /// `postgres`, `postgis`, `timescale` → postgres; `mysql`, `percona` → mysql; `mariadb`;
    /// `mongo` (not `mongo-express`); `redis`, `valkey` → redis. Registry, namespace, tag and
    /// digest are ignored: `registry:5000/team/postgis-custom:16@sha256:…` is postgres.
    #[must_use]
    pub fn detect_from_image(image: &str) -> Option<Self> {
        let without_digest = image.split('@').next().unwrap_or(image);
        let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
        let repository = last_segment
            .split(':')
            .next()
            .unwrap_or(last_segment)
            .to_ascii_lowercase();
        let has = |word: &str| repository.contains(word);
        if has("postgres") || has("postgis") || has("timescale") {
            Some(Self::Postgres)
        } else if has("mariadb") {
            Some(Self::Mariadb)
        } else if has("mysql") || has("percona") {
            Some(Self::Mysql)
        } else if has("mongo-express") {
            None
        } else if has("mongo") {
            Some(Self::Mongo)
        } else if has("redis") || has("valkey") {
            Some(Self::Redis)
        } else {
            None
        }
    }
}

impl FromStr for DbKind {
    type Err = UnknownDbKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownDbKind(text.to_owned()))
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path inside a volume, relative to the volume root. A leading `/` means the volume root
/// (SPEC §1 writes `paths: ["/", "/uploads"]`), so `/uploads` and `uploads` are the same path.
/// Stored normalised: no leading or trailing `/`, no empty or `.` components; the root is "".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumePath(String);

/// Why a volume path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The empty string.
    #[error("must not be empty; use \"/\" for the whole volume")]
    Empty,
    /// A `..` component could leave the volume.
    #[error("must be relative to the volume root and must not contain '..'")]
    ParentComponent,
    /// A NUL or backslash, which no sane volume path contains.
    #[error("must not contain NUL or '\\' characters")]
    BadCharacter,
}

impl VolumePath {
    /// The whole volume.
    #[must_use]
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Checks and normalises a path written in config or a label.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if text.contains(['\0', '\\']) {
            return Err(PathError::BadCharacter);
        }
        let mut components = Vec::new();
        for component in text.split('/') {
            match component {
                "" | "." => {}
                ".." => return Err(PathError::ParentComponent),
                other => components.push(other),
            }
        }
        Ok(Self(components.join("/")))
    }

    /// The normalised relative path ("" for the root), ready to join onto a mount point.
    #[must_use]
    pub fn relative(&self) -> &str {
        &self.0
    }

    /// Whether this is the whole volume.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for VolumePath {
    /// Written as the user sees it: `/` for the root, `/uploads` for a sub-directory.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl Serialize for VolumePath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a target backs up, with the settings that only make sense for that kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// Files of a Docker volume.
    Volume {
        /// Paths to back up, relative to the volume root; never empty (default: the root).
        paths: Vec<VolumePath>,
        /// Stop the containers mounting the volume while it is staged; `None` inherits the
        /// instance's (and then the global) setting.
        stop_attached: Option<bool>,
    },
    /// A database dumped with its own tool inside its container.
    Db {
        /// The engine; `None` means detect it from the container's image when the container
        /// is seen.
        kind: Option<DbKind>,
        /// Extra arguments appended to the dump command.
        dump_args: Vec<String>,
    },
}

/// One thing to back up, as config or labels describe it (the desired state of a target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// `volume:<name>` or `db:<container>`; the name inside is the Docker object's name.
    pub id: TargetId,
    /// Volume or database settings.
    pub kind: TargetKind,
    /// Shell command run (`sh -c`, via `docker exec`) before staging; failing fails the target.
    pub pre_hook: Option<String>,
    /// Shell command run after staging, also when staging failed; failing only warns.
    pub post_hook: Option<String>,
    /// Accept a target that stages no bytes (SPEC §3.5) instead of failing it.
    pub allow_empty: bool,
}

impl TargetSpec {
    /// A volume target with default settings: the whole volume, inherited `stopAttached`.
    #[must_use]
    pub fn volume(name: DockerName) -> Self {
        Self {
            id: TargetId::Volume(name),
            kind: TargetKind::Volume {
                paths: vec![VolumePath::root()],
                stop_attached: None,
            },
            pre_hook: None,
            post_hook: None,
            allow_empty: false,
        }
    }

    /// A database target with default settings: kind detected from the image, no extra args.
    #[must_use]
    pub fn db(container: DockerName) -> Self {
        Self {
            id: TargetId::Db(container),
            kind: TargetKind::Db {
                kind: None,
                dump_args: Vec::new(),
            },
            pre_hook: None,
            post_hook: None,
            allow_empty: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_kind_is_detected_from_the_repository_name_only() {
        let cases = [
            ("postgres:16", Some(DbKind::Postgres)),
            (
                "docker.io/library/postgres:16-alpine",
                Some(DbKind::Postgres),
            ),
            ("postgis/postgis:16-3.4", Some(DbKind::Postgres)),
            ("timescale/timescaledb:latest-pg16", Some(DbKind::Postgres)),
            ("mysql:8", Some(DbKind::Mysql)),
            ("percona:8", Some(DbKind::Mysql)),
            ("mariadb:11", Some(DbKind::Mariadb)),
            ("bitnami/mariadb", Some(DbKind::Mariadb)),
            ("mongo:7", Some(DbKind::Mongo)),
            ("mongo-express:1", None),
            ("redis:7-alpine", Some(DbKind::Redis)),
            ("valkey/valkey:8", Some(DbKind::Redis)),
            (
                "registry:5000/team/postgres-custom:16@sha256:abc",
                Some(DbKind::Postgres),
            ),
            ("nginx:latest", None),
            // A tag that mentions a database does not make the image one.
            ("app:postgres-client", None),
            ("registry.local:5000/app", None),
        ];
        for (image, expected) in cases {
            assert_eq!(DbKind::detect_from_image(image), expected, "{image}");
        }
    }

    #[test]
    fn db_kinds_parse_case_insensitively() {
        assert_eq!("Postgres".parse::<DbKind>().unwrap(), DbKind::Postgres);
        assert_eq!(
            "oracle".parse::<DbKind>().unwrap_err(),
            UnknownDbKind("oracle".into())
        );
    }

    #[test]
    fn volume_paths_are_normalised_relative_to_the_root() {
        assert!(VolumePath::parse("/").unwrap().is_root());
        assert!(VolumePath::parse("./").unwrap().is_root());
        assert_eq!(
            VolumePath::parse("/uploads").unwrap(),
            VolumePath::parse("uploads/").unwrap()
        );
        assert_eq!(VolumePath::parse("a//b/./c").unwrap().relative(), "a/b/c");
        assert_eq!(
            VolumePath::parse("/uploads").unwrap().to_string(),
            "/uploads"
        );
    }

    #[test]
    fn volume_paths_cannot_escape_the_volume() {
        assert_eq!(
            VolumePath::parse("../etc").unwrap_err(),
            PathError::ParentComponent
        );
        assert_eq!(
            VolumePath::parse("/a/../../b").unwrap_err(),
            PathError::ParentComponent
        );
        assert_eq!(VolumePath::parse("").unwrap_err(), PathError::Empty);
        assert_eq!(
            VolumePath::parse("a\\b").unwrap_err(),
            PathError::BadCharacter
        );
        // A name that merely contains dots is fine.
        assert!(VolumePath::parse("..hidden/x..y").is_ok());
    }
}
