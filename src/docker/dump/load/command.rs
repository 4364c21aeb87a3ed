//! The commands a load runs in the database container, per engine — the counterparts of the
//! dump commands, built from the container's environment exactly as those are: the same
//! account, the password through the exec's environment (`PGPASSWORD`, `MYSQL_PWD`,
//! `REDISCLI_AUTH`) or a `sh -c` script that names the container's own variables, never a
//! value on a command line. Each is a [`DumpCommand`] (a tool, its command line, its
//! environment, its user and the secrets to scrub), the same shape the dump runs.
//!
//! Nothing here runs anything: the commands and the SQL are plain values, tested as such.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::docker::dump::DumpCommand;
use crate::docker::dump::command::{
    Credential, credential, looks_secret, mysql_login, postgres_user, redis_password, shell_value,
    with_password,
};
use crate::model::{DbKind, Secret};

/// The MariaDB and MySQL databases a restore keeps: the server's own. Everything else is
/// dropped before the dump is loaded; the dump of `mysql` then replaces its tables (users and
/// passwords included — that is what a full restore is).
pub(super) const MYSQL_SYSTEM_DATABASES: [&str; 4] =
    ["mysql", "information_schema", "performance_schema", "sys"];

/// Exit code of a readiness probe: the server answers on its local socket but not over TCP
/// (yet). The official images run a temporary socket-only server while they initialise a
/// fresh data directory and replace it with the real one afterwards, so such an answer only
/// counts once it has held for a while.
pub(super) const LOCAL_ONLY: i64 = 10;
/// Exit code of a readiness probe: the server answers but refuses the credentials.
pub(super) const REFUSED: i64 = 3;

/// Lists which of `tools` the container has, one name a line (also proving it has `sh`).
pub(super) fn tools_probe(tools: &[&str]) -> Vec<String> {
    let mut cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        r#"for t in "$@"; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; exit 0"#
            .to_owned(),
        "marina-tools".to_owned(),
    ];
    cmd.extend(tools.iter().map(|&t| t.to_owned()));
    cmd
}

/// A command with no credentials, as the container's default user.
fn plain(tool: &'static str, cmd: Vec<String>) -> DumpCommand {
    DumpCommand {
        tool,
        cmd,
        env: Vec::new(),
        user: None,
        secrets: Vec::new(),
    }
}

/// Adds every value of the container's environment that looks like a secret to what is
/// scrubbed from messages, as the dump does.
fn scrubbing_env(mut command: DumpCommand, env: &BTreeMap<String, Secret>) -> DumpCommand {
    command.secrets.extend(
        env.iter()
            .filter(|(name, value)| looks_secret(name, value.expose()))
            .map(|(_, value)| value.clone()),
    );
    command
}

/// `pg_isready`: 0 once the server accepts connections over TCP, [`LOCAL_ONLY`] while it
/// accepts them on its socket only.
pub(super) fn postgres_ready_probe() -> DumpCommand {
    plain(
        "pg_isready",
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!(
                "pg_isready -q -h 127.0.0.1 && exit 0; pg_isready -q && exit {LOCAL_ONLY}; exit 1"
            ),
        ],
    )
}

/// `psql` as the dump's account (`POSTGRES_USER`, else `postgres`) with `args`; as OS user
/// `postgres` when `as_postgres` (the peer-authentication fallback the dump has too).
pub(super) fn psql(
    env: &BTreeMap<String, Secret>,
    as_postgres: bool,
    args: &[&str],
) -> DumpCommand {
    let mut cmd = vec![
        "psql".to_owned(),
        "-X".to_owned(),
        "-U".to_owned(),
        postgres_user(env).to_owned(),
    ];
    cmd.extend(args.iter().map(|&a| a.to_owned()));
    let command = DumpCommand {
        user: as_postgres.then(|| "postgres".to_owned()),
        ..plain("psql", cmd)
    };
    let command = with_password(
        command,
        credential(env, &["POSTGRES_PASSWORD"]),
        "PGPASSWORD",
    );
    scrubbing_env(command, env)
}

/// What the reset needs to know, one fact a line: `v:` the server's version number, `s:`
/// whether the account may drop and create databases, `d:` each database to drop (every one
/// but `postgres` and the templates), hex-encoded so any name survives the trip.
pub(super) const POSTGRES_LISTING: &str = "SELECT 'v:' || current_setting('server_version_num') \
     UNION ALL SELECT 's:' || (rolsuper OR rolcreatedb)::text FROM pg_roles WHERE rolname = current_user \
     UNION ALL SELECT 'd:' || encode(convert_to(datname, 'UTF8'), 'hex') FROM pg_database \
     WHERE NOT datistemplate AND datname <> 'postgres'";

/// The SQL that empties a PostgreSQL server before `pg_dumpall` output is loaded, run while
/// connected to `template1` (the one database that is neither dropped nor recreated): it
/// drops `databases` and recreates `postgres` empty from `template0`. The dump then creates
/// every other database itself and fills `postgres` and `template1`.
///
/// Connections to the dropped databases are ended first (`WITH (FORCE)` from PostgreSQL 13,
/// `pg_terminate_backend` before): an in-place restore replaces what the applications see.
pub(super) fn postgres_reset(databases: &[String], server_version: u32) -> String {
    let force = if server_version >= 130_000 {
        " WITH (FORCE)"
    } else {
        ""
    };
    let mut sql = String::from("SET client_min_messages = warning;\n");
    let mut names: Vec<&str> = databases.iter().map(String::as_str).collect();
    names.push("postgres");
    let literals: Vec<String> = names.iter().map(|name| sql_literal(name)).collect();
    // Writing to a String cannot fail.
    let _ = writeln!(
        sql,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ({}) AND pid <> pg_backend_pid();",
        literals.join(", ")
    );
    for name in databases {
        let _ = writeln!(sql, "DROP DATABASE {}{force};", pg_ident(name));
    }
    let _ = writeln!(sql, "DROP DATABASE IF EXISTS postgres{force};");
    sql.push_str("CREATE DATABASE postgres TEMPLATE template0;\n");
    sql
}

/// A PostgreSQL identifier, quoted.
fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An SQL string literal.
fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The MySQL-family tools of `kind`, the usual one first: `(clients, admin tools)`.
pub(super) fn mysql_tools(kind: DbKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        DbKind::Mysql => (&["mysql", "mariadb"], &["mysqladmin", "mariadb-admin"]),
        _ => (&["mariadb", "mysql"], &["mariadb-admin", "mysqladmin"]),
    }
}

/// The environment prefixes of `kind`'s credentials, as the dump reads them.
fn mysql_prefixes(kind: DbKind) -> &'static [&'static str] {
    match kind {
        DbKind::Mysql => &["MYSQL"],
        _ => &["MARIADB", "MYSQL"],
    }
}

/// `mysqladmin ping` (or `mariadb-admin`): 0 once the server answers over TCP,
/// [`LOCAL_ONLY`] while it answers on its socket only. A server that refuses the account
/// still counts as up (mysqladmin's own rule), so no credentials are needed.
pub(super) fn mysql_ready_probe(admin: &str) -> DumpCommand {
    plain(
        "mysqladmin",
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!(
                "\"$1\" ping --silent --protocol=tcp --host=127.0.0.1 >/dev/null 2>&1 && exit 0; \
                 \"$1\" ping --silent >/dev/null 2>&1 && exit {LOCAL_ONLY}; exit 1"
            ),
            "marina-ready".to_owned(),
            admin.to_owned(),
        ],
    )
}

/// The MySQL or MariaDB client `tool` (`mariadb` or `mysql`) logged in as the dump is, with
/// `args`.
pub(super) fn mysql_client(
    tool: &'static str,
    kind: DbKind,
    env: &BTreeMap<String, Secret>,
    args: &[&str],
) -> DumpCommand {
    let (user, password) = mysql_login(env, mysql_prefixes(kind));
    let mut cmd = vec![tool.to_owned(), format!("--user={user}")];
    cmd.extend(args.iter().map(|&a| a.to_owned()));
    let command = with_password(plain(tool, cmd), password, "MYSQL_PWD");
    scrubbing_env(command, env)
}

/// The databases a MariaDB or MySQL restore drops, one hex-encoded name a line.
pub(super) fn mysql_listing() -> String {
    let kept: Vec<String> = MYSQL_SYSTEM_DATABASES
        .iter()
        .map(|name| sql_literal(name))
        .collect();
    format!(
        "SELECT HEX(schema_name) FROM information_schema.schemata WHERE schema_name NOT IN ({})",
        kept.join(", ")
    )
}

/// The SQL that drops `databases` (foreign keys between databases must not stop it).
pub(super) fn mysql_reset(databases: &[String]) -> String {
    let mut sql = String::from("SET FOREIGN_KEY_CHECKS = 0;\n");
    for name in databases {
        // Writing to a String cannot fail.
        let _ = writeln!(sql, "DROP DATABASE `{}`;", name.replace('`', "``"));
    }
    sql
}

/// Fed after a MariaDB or MySQL dump: the dump replaced the `mysql` tables, and the running
/// server must read its users and grants from them again.
pub(super) const MYSQL_TRAILER: &[u8] = b"\nFLUSH PRIVILEGES;\n";

/// A MongoDB ping with whichever shell the image has (`mongosh`, or `mongo` before 6.0); an
/// image with neither counts as ready and `mongorestore` reports a server that is not.
pub(super) fn mongo_ready_probe() -> DumpCommand {
    plain(
        "mongosh",
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "for s in mongosh mongo; do \
               if command -v \"$s\" >/dev/null 2>&1; then \
                 \"$s\" --quiet --eval 'db.adminCommand({ping: 1})' >/dev/null 2>&1 && exit 0; exit 1; \
               fi; \
             done; exit 0"
                .to_owned(),
        ],
    )
}

/// `mongorestore --archive --drop`, reading the archive on stdin, with the root credentials
/// of the container's environment the way the dump uses them: `mongorestore` takes its
/// password on the command line only, so a `sh -c` script expands the container's own
/// variables and only their names are on the recorded command.
pub(super) fn mongorestore(env: &BTreeMap<String, Secret>) -> DumpCommand {
    let user = credential(env, &["MONGO_INITDB_ROOT_USERNAME"]);
    let password = credential(env, &["MONGO_INITDB_ROOT_PASSWORD"]);
    let mut secrets = Vec::new();
    let cmd = match (user, password) {
        (Some(user), Some(password)) => {
            for credential in [&user, &password] {
                if let Credential::Var { value, .. } = credential {
                    secrets.push((*value).clone());
                }
            }
            vec![
                "sh".to_owned(),
                "-c".to_owned(),
                format!(
                    "exec mongorestore --archive --drop --authenticationDatabase admin --username {} --password {}",
                    shell_value(&user),
                    shell_value(&password)
                ),
            ]
        }
        _ => vec![
            "mongorestore".to_owned(),
            "--archive".to_owned(),
            "--drop".to_owned(),
        ],
    };
    let command = DumpCommand {
        secrets,
        ..plain("mongorestore", cmd)
    };
    scrubbing_env(command, env)
}

/// A `sh -c` script run with redis-cli's credentials in its environment (`REDISCLI_AUTH`,
/// as the dump gets them), so every `redis-cli` in it is authenticated.
fn redis_script(
    env: &BTreeMap<String, Secret>,
    container_command: &[Secret],
    script: &str,
    args: &[&str],
) -> DumpCommand {
    let mut cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "marina-redis".to_owned(),
    ];
    cmd.extend(args.iter().map(|&a| a.to_owned()));
    let command = with_password(
        plain("redis-cli", cmd),
        redis_password(env, container_command),
        "REDISCLI_AUTH",
    );
    scrubbing_env(command, env)
}

/// `redis-cli ping`: 0 on `PONG`, [`REFUSED`] (with the answer) when the server refuses the
/// credentials, 1 otherwise (not up, or still loading its data).
pub(super) fn redis_ready_probe(
    env: &BTreeMap<String, Secret>,
    container_command: &[Secret],
) -> DumpCommand {
    redis_script(
        env,
        container_command,
        &format!(
            "r=$(redis-cli ping 2>&1); case \"$r\" in PONG) exit 0 ;; \
             *NOAUTH*|*WRONGPASS*|*'AUTH failed'*|*'invalid password'*) echo \"$r\"; exit {REFUSED} ;; \
             esac; echo \"$r\"; exit 1"
        ),
        &[],
    )
}

/// Where the server keeps its RDB file and whether it writes an append-only file, one
/// `config NAME VALUE` line each, then `INFO server` (its process id and run id).
pub(super) fn redis_facts(
    env: &BTreeMap<String, Secret>,
    container_command: &[Secret],
) -> DumpCommand {
    redis_script(
        env,
        container_command,
        "for k in dir dbfilename appendonly; do \
           redis-cli config get \"$k\" | { read -r n; read -r v; printf 'config %s %s\\n' \"$k\" \"$v\"; }; \
         done; redis-cli info server",
        &[],
    )
}

/// The owner (and mode) of the server process, of its RDB file and of its directory, as
/// `process|file|dir UID GID [MODE]` lines; missing ones are left out.
pub(super) fn redis_owners(pid: &str, dir: &str, file: &str) -> DumpCommand {
    plain(
        "stat",
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "stat -c 'process %u %g' \"/proc/$1\" 2>/dev/null; \
             stat -c 'file %u %g %a' \"$2/$3\" 2>/dev/null; \
             stat -c 'dir %u %g %a' \"$2\" 2>/dev/null; exit 0"
                .to_owned(),
            "marina-stat".to_owned(),
            pid.to_owned(),
            dir.to_owned(),
            file.to_owned(),
        ],
    )
}

/// After the restart: `INFO server` (the new run id), `INFO persistence` (what the load
/// read) and a `dbsize N` line.
pub(super) fn redis_loaded(
    env: &BTreeMap<String, Secret>,
    container_command: &[Secret],
) -> DumpCommand {
    redis_script(
        env,
        container_command,
        "redis-cli info server; redis-cli info persistence; printf 'dbsize %s\\n' \"$(redis-cli dbsize)\"",
        &[],
    )
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

    fn exec_env(command: &DumpCommand) -> Vec<(String, String)> {
        command
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect()
    }

    #[test]
    fn psql_connects_as_the_dump_does_with_the_password_in_the_environment() {
        let vars = env(&[("POSTGRES_USER", "app"), ("POSTGRES_PASSWORD", "pw1")]);
        let command = psql(&vars, false, &["-d", "template1"]);
        assert_eq!(command.cmd, ["psql", "-X", "-U", "app", "-d", "template1"]);
        assert_eq!(
            exec_env(&command),
            [("PGPASSWORD".to_owned(), "pw1".to_owned())]
        );
        assert_eq!(command.user, None);
        assert_eq!(psql(&vars, true, &[]).user.as_deref(), Some("postgres"));
        assert_eq!(psql(&env(&[]), false, &[]).cmd[3], "postgres");
    }

    #[test]
    fn the_postgres_reset_drops_every_database_and_recreates_postgres() {
        let sql = postgres_reset(&["sea".to_owned(), "we\"ird'name".to_owned()], 150_004);
        assert!(sql.contains("DROP DATABASE \"sea\" WITH (FORCE);"), "{sql}");
        assert!(
            sql.contains("DROP DATABASE \"we\"\"ird'name\" WITH (FORCE);"),
            "{sql}"
        );
        assert!(sql.contains("'we\"ird''name'"), "{sql}");
        assert!(sql.contains("DROP DATABASE IF EXISTS postgres WITH (FORCE);"));
        assert!(sql.ends_with("CREATE DATABASE postgres TEMPLATE template0;\n"));
        let old = postgres_reset(&[], 120_000);
        assert!(!old.contains("FORCE"), "{old}");
        assert!(old.contains("pg_terminate_backend"), "{old}");
    }

    #[test]
    fn mysql_clients_log_in_as_the_dump_does() {
        let vars = env(&[
            ("MARIADB_ROOT_PASSWORD", "rootpw"),
            ("MYSQL_ROOT_PASSWORD", "old"),
        ]);
        let command = mysql_client("mariadb", DbKind::Mariadb, &vars, &["--force"]);
        assert_eq!(command.cmd, ["mariadb", "--user=root", "--force"]);
        assert_eq!(
            exec_env(&command),
            [("MYSQL_PWD".to_owned(), "rootpw".to_owned())]
        );
        let mysql = mysql_client("mysql", DbKind::Mysql, &vars, &[]);
        assert_eq!(
            exec_env(&mysql),
            [("MYSQL_PWD".to_owned(), "old".to_owned())]
        );
        let file = mysql_client(
            "mariadb",
            DbKind::Mariadb,
            &env(&[("MARIADB_ROOT_PASSWORD_FILE", "/run/secrets/db")]),
            &[],
        );
        assert_eq!(file.cmd[..2], ["sh".to_owned(), "-c".to_owned()]);
        assert!(!file.cmd.iter().any(|a| a.contains("/run/secrets")));
        assert_eq!(mysql_tools(DbKind::Mysql).0[0], "mysql");
        assert_eq!(mysql_tools(DbKind::Mariadb).0[0], "mariadb");
    }

    #[test]
    fn the_mysql_reset_keeps_the_system_databases() {
        let listing = mysql_listing();
        for kept in MYSQL_SYSTEM_DATABASES {
            assert!(listing.contains(&format!("'{kept}'")), "{listing}");
        }
        assert_eq!(
            mysql_reset(&["sea".to_owned(), "odd`name".to_owned()]),
            "SET FOREIGN_KEY_CHECKS = 0;\nDROP DATABASE `sea`;\nDROP DATABASE `odd``name`;\n"
        );
    }

    /// MongoDB is not packaged in Debian, so the mongo load is proven on its command alone.
    #[test]
    fn mongorestore_drops_and_restores_with_the_root_credentials_by_name() {
        let vars = env(&[
            ("MONGO_INITDB_ROOT_USERNAME", "admin"),
            ("MONGO_INITDB_ROOT_PASSWORD", "mongopw"),
        ]);
        let command = mongorestore(&vars);
        assert_eq!(command.tool, "mongorestore");
        assert_eq!(
            command.cmd,
            [
                "sh",
                "-c",
                "exec mongorestore --archive --drop --authenticationDatabase admin --username \"$MONGO_INITDB_ROOT_USERNAME\" --password \"$MONGO_INITDB_ROOT_PASSWORD\""
            ]
        );
        assert!(!command.cmd.iter().any(|a| a.contains("mongopw")));
        assert!(command.env.is_empty());
        assert_eq!(
            crate::docker::dump::scrub("bad mongopw", &command.secrets),
            "bad ***"
        );
        let file = mongorestore(&env(&[
            ("MONGO_INITDB_ROOT_USERNAME", "admin"),
            ("MONGO_INITDB_ROOT_PASSWORD_FILE", "/run/secrets/m"),
        ]));
        assert!(
            file.cmd[2].contains("--password \"$(cat -- \"$MONGO_INITDB_ROOT_PASSWORD_FILE\")\""),
            "{:?}",
            file.cmd
        );
        assert_eq!(
            mongorestore(&env(&[])).cmd,
            ["mongorestore", "--archive", "--drop"]
        );
    }

    #[test]
    fn redis_commands_authenticate_like_the_dump() {
        let vars = env(&[("REDIS_PASSWORD", "rpw")]);
        for command in [
            redis_ready_probe(&vars, &[]),
            redis_facts(&vars, &[]),
            redis_loaded(&vars, &[]),
        ] {
            assert_eq!(
                exec_env(&command),
                [("REDISCLI_AUTH".to_owned(), "rpw".to_owned())]
            );
            assert!(!command.cmd.iter().any(|a| a.contains("rpw")));
        }
        let server = ["redis-server", "--requirepass", "cmdpw"].map(|a| Secret::new(a.into()));
        assert_eq!(
            exec_env(&redis_facts(&env(&[]), &server)),
            [("REDISCLI_AUTH".to_owned(), "cmdpw".to_owned())]
        );
        assert!(redis_facts(&env(&[]), &[]).env.is_empty());
    }

    #[test]
    fn no_load_command_carries_a_secret_on_its_command_line() {
        let vars = env(&[
            ("POSTGRES_PASSWORD", "s3cret-a"),
            ("MYSQL_ROOT_PASSWORD", "s3cret-b"),
            ("MARIADB_ROOT_PASSWORD", "s3cret-c"),
            ("MONGO_INITDB_ROOT_USERNAME", "u"),
            ("MONGO_INITDB_ROOT_PASSWORD", "s3cret-d"),
            ("REDIS_PASSWORD", "s3cret-e"),
        ]);
        let commands = [
            psql(&vars, false, &[]),
            mysql_client("mysql", DbKind::Mysql, &vars, &[]),
            mysql_client("mariadb", DbKind::Mariadb, &vars, &[]),
            mongorestore(&vars),
            redis_facts(&vars, &[]),
        ];
        for command in commands {
            assert!(
                !command.cmd.iter().any(|a| a.contains("s3cret")),
                "{:?}",
                command.cmd
            );
            let message = "s3cret-a s3cret-b s3cret-c s3cret-d s3cret-e";
            assert_eq!(
                crate::docker::dump::scrub(message, &command.secrets),
                "*** *** *** *** ***",
                "{}",
                command.tool
            );
        }
    }
}
