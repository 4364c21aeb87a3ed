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
    /// `mongo`; `redis`, `valkey` → redis. Registry, namespace, tag and digest are ignored,
    /// and the name is matched word by word (words split on `-`, `_`, `.`), never as a
    /// substring: `registry:5000/team/postgis-custom:16@sha256:…` is postgres, while
    /// `postgres-exporter`, `mongo-express` or `redis_exporter` are companion tools
    /// ([`COMPANION_WORDS`]), not databases. A name that says nothing (`myorg/db:1`, a bare
    /// `sha256:` id) or names two engines gives `None`.
    #[must_use]
    pub fn detect_from_image(image: &str) -> Option<Self> {
        let image = image.trim().to_ascii_lowercase();
        if image.starts_with("sha256:") {
            return None;
        }
        let without_digest = image.split('@').next().unwrap_or(&image);
        let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
        let repository = last_segment.split(':').next().unwrap_or(last_segment);
        let words: Vec<&str> = repository
            .split(['-', '_', '.'])
            .filter(|w| !w.is_empty())
            .collect();
        if words.iter().any(|w| COMPANION_WORDS.contains(w)) {
            return None;
        }
        let named = |weak: bool| {
            let mut kinds: Vec<Self> = words
                .iter()
                .filter_map(|w| kind_word(w))
                .filter(|(_, is_weak)| *is_weak == weak)
                .map(|(kind, _)| kind)
                .collect();
            kinds.sort_unstable();
            kinds.dedup();
            kinds
        };
        // `percona` is a vendor as much as an engine (`percona-server-mongodb`): it names
        // mysql only when no other engine is named.
        let strong = named(false);
        let kinds = if strong.is_empty() {
            named(true)
        } else {
            strong
        };
        match kinds.as_slice() {
            [kind] => Some(*kind),
            _ => None,
        }
    }

    /// Chooses the kind from the dump tools found in a container (the probe run when the image
    /// name says nothing): exactly one engine's tools must be there. `mariadb-dump` with
    /// `mysqldump` is MariaDB (its images ship both); tools of two engines are ambiguous,
    /// never guessed between, since dumping with the wrong tool backs up nothing useful.
    ///
    /// # Errors
    /// [`ProbeError::NoTool`] when no dump tool is there, [`ProbeError::Ambiguous`] when
    /// tools of several engines are.
    pub fn from_tools<'t>(tools: &[&'t str]) -> Result<(Self, &'t str), ProbeError> {
        let has = |tool: &str| tools.contains(&tool);
        let mut found: Vec<(Self, &'t str)> = Vec::new();
        for &tool in tools {
            let kind = match tool {
                "pg_dumpall" => Self::Postgres,
                "mariadb-dump" => Self::Mariadb,
                "mysqldump" if !has("mariadb-dump") => Self::Mysql,
                "mongodump" => Self::Mongo,
                "redis-cli" => Self::Redis,
                _ => continue,
            };
            if !found.iter().any(|(k, _)| *k == kind) {
                found.push((kind, tool));
            }
        }
        match found.as_slice() {
            [] => Err(ProbeError::NoTool),
            [one] => Ok(*one),
            _ => Err(ProbeError::Ambiguous(
                found.iter().map(|(_, tool)| (*tool).to_owned()).collect(),
            )),
        }
    }
}

/// The dump tools the probe looks for, in the order they are reported.
pub const PROBED_TOOLS: [&str; 5] = [
    "pg_dumpall",
    "mariadb-dump",
    "mysqldump",
    "mongodump",
    "redis-cli",
];

/// Words in an image's repository name that mark a tool beside a database, not the database
/// itself (`postgres-exporter`, `redis-commander`, `mongo-express`, `pgbackup`-style images).
pub const COMPANION_WORDS: [&str; 22] = [
    "exporter",
    "commander",
    "express",
    "admin",
    "ui",
    "gui",
    "web",
    "proxy",
    "backup",
    "router",
    "operator",
    "insight",
    "sentinel",
    "metrics",
    "monitor",
    "client",
    "cli",
    "dashboard",
    "agent",
    "migrate",
    "browser",
    "bouncer",
];

/// The kind a word of a repository name names, and whether it is a weak hint (a vendor).
fn kind_word(word: &str) -> Option<(DbKind, bool)> {
    let kind = match word {
        "postgres" | "postgresql" | "postgis" | "timescale" | "timescaledb" | "pgvector" => {
            DbKind::Postgres
        }
        "mysql" => DbKind::Mysql,
        "percona" => return Some((DbKind::Mysql, true)),
        "mariadb" => DbKind::Mariadb,
        "mongo" | "mongodb" => DbKind::Mongo,
        "redis" | "valkey" => DbKind::Redis,
        _ => return None,
    };
    Some((kind, false))
}

/// Why the dump tools found in a container do not tell its database kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// None of [`PROBED_TOOLS`] is there.
    #[error("found none of the dump tools {} in the container", PROBED_TOOLS.join(", "))]
    NoTool,
    /// Tools of several engines are there.
    #[error("found the dump tools of several databases in the container ({})", .0.join(", "))]
    Ambiguous(Vec<String>),
}

impl ProbeError {
    /// The target's message when the tools found in `container` do not tell its kind: what
    /// was found and what to set instead.
    #[must_use]
    pub fn for_container(&self, container: &str) -> String {
        format!(
            "cannot tell the database kind of {container}: its image does not name a database and {self}; set dbKind (config) or dev.polarfox.marina.db (label)"
        )
    }
}

/// What looking for the dump tools in a container told: the kind and the tool that told it,
/// or why the tools found do not tell.
pub type ProbeResult = Result<(DbKind, String), ProbeError>;

/// What is known of the dump tools in one running container whose kind nothing else tells;
/// kept by container id, since a recreated container may hold other tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolProbe {
    /// Asked for and not answered yet.
    Pending,
    /// The tools were looked for; this is what they tell.
    Answered(ProbeResult),
    /// The tools could not be looked for (the exec failed or took too long); the message
    /// says why and what to set instead.
    Failed(String),
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

    /// Whether this path lies strictly inside `outer` (`uploads/x` inside `uploads` and
    /// inside the root; `uploads` not inside itself, nor `uploads2` inside `uploads`).
    #[must_use]
    pub fn is_inside(&self, outer: &Self) -> bool {
        self != outer
            && (outer.is_root()
                || self
                    .0
                    .strip_prefix(outer.0.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
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
    #[test]
    fn a_volume_path_lies_inside_its_ancestors_only() {
        let path = |p: &str| VolumePath::parse(p).unwrap();
        assert!(path("uploads/x").is_inside(&path("uploads")));
        assert!(path("uploads").is_inside(&VolumePath::root()));
        assert!(!path("uploads").is_inside(&path("uploads")));
        assert!(!path("uploads2").is_inside(&path("uploads")));
        assert!(!VolumePath::root().is_inside(&VolumePath::root()));
        assert!(!path("uploads").is_inside(&path("uploads/x")));
    }

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
            ("bitnami/postgresql:16", Some(DbKind::Postgres)),
            ("reg:5000/postgres:15", Some(DbKind::Postgres)),
            ("timescaledb-ha:pg16", Some(DbKind::Postgres)),
            ("pgvector/pgvector:pg16", Some(DbKind::Postgres)),
            ("ghcr.io/org/redis-stack:7", Some(DbKind::Redis)),
            ("docker.io/library/mongo:7", Some(DbKind::Mongo)),
            ("bitnami/mongodb:7.0", Some(DbKind::Mongo)),
            ("percona/percona-server:8.0", Some(DbKind::Mysql)),
            ("percona/percona-server-mongodb:7", Some(DbKind::Mongo)),
            ("mysql/mysql-server:8.0", Some(DbKind::Mysql)),
            ("Postgres:16", Some(DbKind::Postgres)),
            ("redis_7:latest", Some(DbKind::Redis)),
            // Companion tools are not databases.
            ("mongo-express", None),
            ("prom/mysqld-exporter", None),
            ("prometheuscommunity/postgres-exporter:v0.15", None),
            ("percona/mongodb_exporter:0.40", None),
            ("redis-commander", None),
            ("rediscommander/redis-commander:latest", None),
            ("oliver006/redis_exporter", None),
            ("bitnami/redis-sentinel:7", None),
            ("dpage/pgadmin4", None),
            ("phpmyadmin", None),
            ("edoburu/pgbouncer", None),
            ("prodrigestivill/postgres-backup-local", None),
            // Substrings are not words.
            ("mysqld-exporter", None),
            ("postgresify:1", None),
            ("myredisapp:1", None),
            ("mongoose-api:2", None),
            // Names that say nothing, or name two engines.
            ("myorg/db:1", None),
            ("marina-test/private-db:1", None),
            (
                "sha256:4f2a0b2c6a8bc2d9b2f8b7f4b3f3a1e0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4",
                None,
            ),
            ("mysql-to-postgres:1", None),
            ("", None),
        ];
        for (image, expected) in cases {
            assert_eq!(DbKind::detect_from_image(image), expected, "{image}");
        }
    }

    #[test]
    fn db_kind_is_chosen_from_the_dump_tools_of_exactly_one_engine() {
        type Chosen = Result<(DbKind, &'static str), ProbeError>;
        let cases: [(&[&str], Chosen); 8] = [
            (&["pg_dumpall"], Ok((DbKind::Postgres, "pg_dumpall"))),
            (
                &["mariadb-dump", "mysqldump"],
                Ok((DbKind::Mariadb, "mariadb-dump")),
            ),
            (&["mysqldump"], Ok((DbKind::Mysql, "mysqldump"))),
            (&["mongodump"], Ok((DbKind::Mongo, "mongodump"))),
            (&["redis-cli"], Ok((DbKind::Redis, "redis-cli"))),
            (&[], Err(ProbeError::NoTool)),
            (&["psql", "sh"], Err(ProbeError::NoTool)),
            (
                &["pg_dumpall", "mariadb-dump", "mysqldump", "redis-cli"],
                Err(ProbeError::Ambiguous(vec![
                    "pg_dumpall".into(),
                    "mariadb-dump".into(),
                    "redis-cli".into(),
                ])),
            ),
        ];
        for (tools, expected) in cases {
            assert_eq!(DbKind::from_tools(tools), expected, "{tools:?}");
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
