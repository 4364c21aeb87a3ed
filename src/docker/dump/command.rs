//! The dump command for each database engine (SPEC §3.4), built from the container's own
//! environment and command line.
//!
//! Credentials never appear on a command line the engine records (`inspect_exec` shows it to
//! anyone with engine access, and Marina logs it): a password read from the container's
//! environment is handed back through the exec's *environment* (`PGPASSWORD`, `MYSQL_PWD`,
//! `REDISCLI_AUTH`). Where a tool has no such variable (mongodump) or the password is in a
//! file (`*_PASSWORD_FILE`, Docker secrets), a `sh -c` script refers to the container's own
//! variables by name, so the value never leaves the container.

use std::collections::BTreeMap;

use crate::model::{DbKind, Secret};

/// Which variant of a kind's command to run: the usual one, or the fallback after the usual
/// one could not work (`mariadb-dump` missing → `mysqldump`; postgres peer authentication
/// refused the container's default user → run as OS user `postgres`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpAttempt {
    /// The usual command.
    First,
    /// The fallback.
    Fallback,
}

/// A dump command, ready to run with `docker exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpCommand {
    /// The dump tool, for messages.
    pub tool: &'static str,
    /// The command line: safe to log, it never contains a secret.
    pub cmd: Vec<String>,
    /// Extra exec environment: where the password goes.
    pub env: Vec<(String, Secret)>,
    /// The exec user; `None` is the container's default.
    pub user: Option<String>,
    /// Values to scrub from the tool's error messages.
    pub secrets: Vec<Secret>,
}

/// Where a credential comes from in the container's environment.
#[derive(Debug, Clone)]
pub(super) enum Credential<'a> {
    /// A variable holding the value.
    Var {
        /// The variable's name.
        name: String,
        /// Its value.
        value: &'a Secret,
    },
    /// A variable `NAME_FILE` holding the path of a file with the value (Docker secrets).
    File {
        /// The `…_FILE` variable's name.
        name: String,
    },
}

/// The first of `names` set (non-empty) in `env`, looking at `NAME` then `NAME_FILE` for each.
pub(super) fn credential<'a>(
    env: &'a BTreeMap<String, Secret>,
    names: &[&str],
) -> Option<Credential<'a>> {
    names.iter().find_map(|&name| {
        if let Some(value) = env.get(name).filter(|v| !v.expose().is_empty()) {
            return Some(Credential::Var {
                name: name.to_owned(),
                value,
            });
        }
        let file = format!("{name}_FILE");
        env.get(&file)
            .filter(|v| !v.expose().is_empty())
            .map(|_| Credential::File { name: file })
    })
}

/// Builds the dump command for `kind` from the container's environment and command line and
/// the user's `dump_args` (appended, so they can override Marina's options).
#[must_use]
pub fn dump_command(
    kind: DbKind,
    env: &BTreeMap<String, Secret>,
    container_command: &[Secret],
    dump_args: &[String],
    attempt: DumpAttempt,
) -> DumpCommand {
    let mut command = match kind {
        DbKind::Postgres => postgres(env, dump_args, attempt),
        DbKind::Mysql => mysql("mysqldump", env, &["MYSQL"], dump_args),
        DbKind::Mariadb => {
            let tool = match attempt {
                DumpAttempt::First => "mariadb-dump",
                DumpAttempt::Fallback => "mysqldump",
            };
            mysql(tool, env, &["MARIADB", "MYSQL"], dump_args)
        }
        DbKind::Mongo => mongo(env, dump_args),
        DbKind::Redis => redis(env, container_command, dump_args),
    };
    command.secrets.extend(
        env.iter()
            .filter(|(name, value)| looks_secret(name, value.expose()))
            .map(|(_, value)| value.clone()),
    );
    command
}

fn postgres(
    env: &BTreeMap<String, Secret>,
    dump_args: &[String],
    attempt: DumpAttempt,
) -> DumpCommand {
    let user = postgres_user(env);
    let mut cmd = vec!["pg_dumpall".to_owned(), "-U".to_owned(), user.to_owned()];
    cmd.extend_from_slice(dump_args);
    let command = DumpCommand {
        tool: "pg_dumpall",
        cmd,
        env: Vec::new(),
        user: (attempt == DumpAttempt::Fallback).then(|| "postgres".to_owned()),
        secrets: Vec::new(),
    };
    with_password(
        command,
        credential(env, &["POSTGRES_PASSWORD"]),
        "PGPASSWORD",
    )
}

/// The role the postgres tools connect as: `POSTGRES_USER`, else `postgres`, as the official
/// image creates it.
pub(super) fn postgres_user(env: &BTreeMap<String, Secret>) -> &str {
    env.get("POSTGRES_USER")
        .map(Secret::expose)
        .filter(|u| !u.is_empty())
        .unwrap_or("postgres")
}

/// mysqldump and mariadb-dump: root with its password when known, else the application user
/// (`*_USER` / `*_PASSWORD`), else root without a password (socket authentication). Prefixes
/// are tried in order (`MARIADB_*` before `MYSQL_*`).
fn mysql(
    tool: &'static str,
    env: &BTreeMap<String, Secret>,
    prefixes: &[&str],
    dump_args: &[String],
) -> DumpCommand {
    let (user, password) = mysql_login(env, prefixes);
    let mut cmd = vec![
        tool.to_owned(),
        "--single-transaction".to_owned(),
        "--all-databases".to_owned(),
        format!("--user={user}"),
    ];
    cmd.extend_from_slice(dump_args);
    let command = DumpCommand {
        tool,
        cmd,
        env: Vec::new(),
        user: None,
        secrets: Vec::new(),
    };
    with_password(command, password, "MYSQL_PWD")
}

/// The account the MySQL and MariaDB tools log in with, and where its password comes from:
/// see [`mysql`].
pub(super) fn mysql_login<'a>(
    env: &'a BTreeMap<String, Secret>,
    prefixes: &[&str],
) -> (String, Option<Credential<'a>>) {
    let root_names: Vec<String> = prefixes
        .iter()
        .map(|p| format!("{p}_ROOT_PASSWORD"))
        .collect();
    let root_refs: Vec<&str> = root_names.iter().map(String::as_str).collect();
    if let Some(password) = credential(env, &root_refs) {
        ("root".to_owned(), Some(password))
    } else {
        prefixes
            .iter()
            .find_map(|prefix| {
                let user = env
                    .get(&format!("{prefix}_USER"))
                    .map(Secret::expose)
                    .filter(|u| !u.is_empty())?;
                let password = credential(env, &[&format!("{prefix}_PASSWORD")])?;
                Some((user.to_owned(), Some(password)))
            })
            .unwrap_or_else(|| ("root".to_owned(), None))
    }
}

fn mongo(env: &BTreeMap<String, Secret>, dump_args: &[String]) -> DumpCommand {
    let user = credential(env, &["MONGO_INITDB_ROOT_USERNAME"]);
    let password = credential(env, &["MONGO_INITDB_ROOT_PASSWORD"]);
    let mut cmd = Vec::new();
    let mut secrets = Vec::new();
    match (user, password) {
        (Some(user), Some(password)) => {
            // mongodump reads its password from the command line only; the script expands the
            // container's own variables, so only their *names* are on the recorded command.
            for credential in [&user, &password] {
                if let Credential::Var { value, .. } = credential {
                    secrets.push((*value).clone());
                }
            }
            let script = format!(
                "exec mongodump --archive --authenticationDatabase admin --username {} --password {} \"$@\"",
                shell_value(&user),
                shell_value(&password)
            );
            cmd.extend([
                "sh".to_owned(),
                "-c".to_owned(),
                script,
                "mongodump".to_owned(),
            ]);
        }
        _ => cmd.extend(["mongodump".to_owned(), "--archive".to_owned()]),
    }
    cmd.extend_from_slice(dump_args);
    DumpCommand {
        tool: "mongodump",
        cmd,
        env: Vec::new(),
        user: None,
        secrets,
    }
}

fn redis(
    env: &BTreeMap<String, Secret>,
    container_command: &[Secret],
    dump_args: &[String],
) -> DumpCommand {
    let mut cmd = vec!["redis-cli".to_owned()];
    cmd.extend_from_slice(dump_args);
    cmd.extend(["--rdb".to_owned(), "-".to_owned()]);
    let command = DumpCommand {
        tool: "redis-cli",
        cmd,
        env: Vec::new(),
        user: None,
        secrets: Vec::new(),
    };
    with_password(
        command,
        redis_password(env, container_command),
        "REDISCLI_AUTH",
    )
}

/// Where redis-cli's password comes from: `REDIS_PASSWORD` (as e.g. bitnami's image takes
/// it), else `--requirepass` on the server's command line.
pub(super) fn redis_password<'a>(
    env: &'a BTreeMap<String, Secret>,
    container_command: &'a [Secret],
) -> Option<Credential<'a>> {
    credential(env, &["REDIS_PASSWORD"]).or_else(|| {
        requirepass(container_command).map(|value| Credential::Var {
            name: "requirepass".to_owned(),
            value,
        })
    })
}

/// The value of `--requirepass` on redis-server's command line.
fn requirepass(command: &[Secret]) -> Option<&Secret> {
    let position = command
        .iter()
        .position(|arg| arg.expose() == "--requirepass")?;
    command.get(position + 1).filter(|v| !v.expose().is_empty())
}

/// Hands the password to the tool in `target` (an environment variable it reads): directly
/// through the exec's environment, or, for a password file, by a `sh -c` wrapper that reads
/// the file inside the container.
pub(super) fn with_password(
    mut command: DumpCommand,
    password: Option<Credential<'_>>,
    target: &str,
) -> DumpCommand {
    match password {
        None => {}
        Some(Credential::Var { value, .. }) => {
            command.env.push((target.to_owned(), value.clone()));
            command.secrets.push(value.clone());
        }
        Some(file @ Credential::File { .. }) => {
            let script = format!(
                "{target}={} && export {target} && exec \"$@\"",
                shell_value(&file)
            );
            let mut cmd = vec![
                "sh".to_owned(),
                "-c".to_owned(),
                script,
                "marina-dump".to_owned(),
            ];
            cmd.append(&mut command.cmd);
            command.cmd = cmd;
        }
    }
    command
}

/// A shell expression for a credential: the variable, or the contents of the file it names.
pub(super) fn shell_value(credential: &Credential<'_>) -> String {
    match credential {
        Credential::Var { name, .. } => format!("\"${name}\""),
        Credential::File { name } => format!("\"$(cat -- \"${name}\")\""),
    }
}

/// Whether an environment variable probably holds a secret to scrub from messages: the usual
/// names, but not flags like `MYSQL_ALLOW_EMPTY_PASSWORD=yes` or file paths.
pub(super) fn looks_secret(name: &str, value: &str) -> bool {
    let name = name.to_ascii_uppercase();
    let secret_name = !name.ends_with("_FILE")
        && (name.ends_with("PASSWORD")
            || name.ends_with("_PASS")
            || name.ends_with("_PWD")
            || name.contains("SECRET")
            || name.contains("TOKEN")
            || name.ends_with("_AUTH"));
    let flag = matches!(
        value.to_ascii_lowercase().as_str(),
        "" | "1" | "0" | "yes" | "no" | "true" | "false" | "on" | "off"
    );
    secret_name && !flag
}

/// `text` with every secret value replaced by `***`, longest first (so a secret that contains
/// another is replaced whole).
#[must_use]
pub fn scrub(text: &str, secrets: &[Secret]) -> String {
    let mut values: Vec<&str> = secrets
        .iter()
        .map(Secret::expose)
        .filter(|v| !v.is_empty())
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
        .into_iter()
        .fold(text.to_owned(), |text, value| text.replace(value, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Secret::new((*v).to_owned())))
            .collect()
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|&a| a.to_owned()).collect()
    }

    fn build(kind: DbKind, pairs: &[(&str, &str)], extra: &[&str]) -> DumpCommand {
        dump_command(kind, &env(pairs), &[], &args(extra), DumpAttempt::First)
    }

    fn exec_env(command: &DumpCommand) -> Vec<(String, String)> {
        command
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn postgres_dumps_as_postgres_user_with_the_password_in_the_environment() {
        let command = build(
            DbKind::Postgres,
            &[("POSTGRES_USER", "app"), ("POSTGRES_PASSWORD", "pw1")],
            &["--clean"],
        );
        assert_eq!(command.cmd, args(&["pg_dumpall", "-U", "app", "--clean"]));
        assert_eq!(exec_env(&command), pairs(&[("PGPASSWORD", "pw1")]));
        assert_eq!(command.user, None);
        assert_eq!(command.tool, "pg_dumpall");

        let default = build(DbKind::Postgres, &[], &[]);
        assert_eq!(default.cmd, args(&["pg_dumpall", "-U", "postgres"]));
        assert!(default.env.is_empty());

        let fallback = dump_command(DbKind::Postgres, &env(&[]), &[], &[], DumpAttempt::Fallback);
        assert_eq!(fallback.user.as_deref(), Some("postgres"));
    }

    #[test]
    fn mysql_prefers_root_then_the_app_user_then_socket_root() {
        let root = build(
            DbKind::Mysql,
            &[
                ("MYSQL_ROOT_PASSWORD", "rootpw"),
                ("MYSQL_USER", "app"),
                ("MYSQL_PASSWORD", "apppw"),
            ],
            &[],
        );
        assert_eq!(
            root.cmd,
            args(&[
                "mysqldump",
                "--single-transaction",
                "--all-databases",
                "--user=root"
            ])
        );
        assert_eq!(exec_env(&root), pairs(&[("MYSQL_PWD", "rootpw")]));

        let app = build(
            DbKind::Mysql,
            &[
                ("MYSQL_RANDOM_ROOT_PASSWORD", "yes"),
                ("MYSQL_USER", "app"),
                ("MYSQL_PASSWORD", "apppw"),
            ],
            &["--routines"],
        );
        assert_eq!(app.cmd[3], "--user=app");
        assert_eq!(app.cmd[4], "--routines");
        assert_eq!(exec_env(&app), pairs(&[("MYSQL_PWD", "apppw")]));

        let bare = build(DbKind::Mysql, &[("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")], &[]);
        assert_eq!(bare.cmd[3], "--user=root");
        assert!(bare.env.is_empty());
        // A flag's value is no secret to scrub.
        assert!(bare.secrets.is_empty());
    }

    #[test]
    fn mariadb_reads_mariadb_variables_before_mysql_ones_and_falls_back_to_mysqldump() {
        let command = build(
            DbKind::Mariadb,
            &[
                ("MARIADB_ROOT_PASSWORD", "new"),
                ("MYSQL_ROOT_PASSWORD", "old"),
            ],
            &[],
        );
        assert_eq!(command.cmd[0], "mariadb-dump");
        assert_eq!(exec_env(&command), pairs(&[("MYSQL_PWD", "new")]));

        let legacy = build(DbKind::Mariadb, &[("MYSQL_ROOT_PASSWORD", "old")], &[]);
        assert_eq!(exec_env(&legacy), pairs(&[("MYSQL_PWD", "old")]));

        let user = build(
            DbKind::Mariadb,
            &[("MARIADB_USER", "app"), ("MARIADB_PASSWORD", "apppw")],
            &[],
        );
        assert_eq!(user.cmd[3], "--user=app");

        let fallback = dump_command(DbKind::Mariadb, &env(&[]), &[], &[], DumpAttempt::Fallback);
        assert_eq!(fallback.tool, "mysqldump");
        assert_eq!(fallback.cmd[0], "mysqldump");
    }

    #[test]
    fn a_password_file_is_read_inside_the_container() {
        let command = build(
            DbKind::Mariadb,
            &[("MARIADB_ROOT_PASSWORD_FILE", "/run/secrets/db")],
            &["--events"],
        );
        assert_eq!(
            command.cmd,
            args(&[
                "sh",
                "-c",
                "MYSQL_PWD=\"$(cat -- \"$MARIADB_ROOT_PASSWORD_FILE\")\" && export MYSQL_PWD && exec \"$@\"",
                "marina-dump",
                "mariadb-dump",
                "--single-transaction",
                "--all-databases",
                "--user=root",
                "--events",
            ])
        );
        assert!(command.env.is_empty());
        assert!(!command.cmd.iter().any(|a| a.contains("/run/secrets")));
    }

    #[test]
    fn mongo_refers_to_the_container_variables_by_name() {
        let command = build(
            DbKind::Mongo,
            &[
                ("MONGO_INITDB_ROOT_USERNAME", "admin"),
                ("MONGO_INITDB_ROOT_PASSWORD", "mongopw"),
            ],
            &["--gzip"],
        );
        assert_eq!(command.cmd[..2], args(&["sh", "-c"]));
        assert!(command.cmd[2].contains("--password \"$MONGO_INITDB_ROOT_PASSWORD\""));
        assert_eq!(command.cmd[3..], args(&["mongodump", "--gzip"]));
        assert!(!command.cmd.iter().any(|a| a.contains("mongopw")));
        assert!(command.env.is_empty());
        assert_eq!(scrub("bad mongopw", &command.secrets), "bad ***");

        let open = build(DbKind::Mongo, &[], &[]);
        assert_eq!(open.cmd, args(&["mongodump", "--archive"]));
    }

    #[test]
    fn redis_takes_its_password_from_env_or_requirepass() {
        let command = build(DbKind::Redis, &[("REDIS_PASSWORD", "rpw")], &["-n", "0"]);
        assert_eq!(command.cmd, args(&["redis-cli", "-n", "0", "--rdb", "-"]));
        assert_eq!(exec_env(&command), pairs(&[("REDISCLI_AUTH", "rpw")]));

        let server = [
            "redis-server",
            "--requirepass",
            "cmdpw",
            "--appendonly",
            "yes",
        ]
        .map(|a| Secret::new(a.to_owned()));
        let command = dump_command(DbKind::Redis, &env(&[]), &server, &[], DumpAttempt::First);
        assert_eq!(exec_env(&command), pairs(&[("REDISCLI_AUTH", "cmdpw")]));
        assert_eq!(
            scrub("auth cmdpw failed", &command.secrets),
            "auth *** failed"
        );

        let open = build(DbKind::Redis, &[], &[]);
        assert!(open.env.is_empty());
    }

    #[test]
    fn secrets_are_never_on_the_command_line_and_are_scrubbed_from_messages() {
        for kind in DbKind::ALL {
            let command = build(
                kind,
                &[
                    ("POSTGRES_PASSWORD", "s3cret-a"),
                    ("MYSQL_ROOT_PASSWORD", "s3cret-b"),
                    ("MARIADB_ROOT_PASSWORD", "s3cret-c"),
                    ("MONGO_INITDB_ROOT_USERNAME", "u"),
                    ("MONGO_INITDB_ROOT_PASSWORD", "s3cret-d"),
                    ("REDIS_PASSWORD", "s3cret-e"),
                    ("API_TOKEN", "s3cret-f"),
                ],
                &[],
            );
            assert!(
                !command.cmd.iter().any(|a| a.contains("s3cret")),
                "{kind}: {:?}",
                command.cmd
            );
            let message = "s3cret-a s3cret-b s3cret-c s3cret-d s3cret-e s3cret-f";
            assert_eq!(
                scrub(message, &command.secrets),
                "*** *** *** *** *** ***",
                "{kind}"
            );
        }
    }

    #[test]
    fn scrubbing_replaces_the_longest_secret_first() {
        let secrets = [Secret::new("pass".into()), Secret::new("password1".into())];
        assert_eq!(scrub("password1 pass", &secrets), "*** ***");
        assert_eq!(scrub("nothing", &[Secret::new(String::new())]), "nothing");
    }
}
