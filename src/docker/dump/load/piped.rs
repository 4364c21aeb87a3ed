//! The engines whose dump is piped into a client inside the container: postgres
//! (`pg_dumpall` SQL into `psql`), mariadb and mysql (into `mariadb` or `mysql`) and mongo
//! (an archive into `mongorestore`). Each waits for its server, empties it (SQL engines:
//! see the module docs of `load`), then feeds the dump and sorts the client's errors.

use tokio::io::AsyncRead;
use tracing::info;

use super::command::{self, MYSQL_TRAILER};
use super::feed::{Fed, FeedEnd, run_fed};
use super::verdict::Verdict;
use super::{LoadError, LoadReport, STEP_LIMIT, Target};
use crate::docker::dump::DumpCommand;
use crate::docker::{OutputLine, OutputStream, Runtime, RuntimeError};
use crate::model::Secret;

/// How a client's output lines are sorted.
type Sorter = fn(&mut Verdict, &str, &[Secret]);

/// Loads `pg_dumpall` output: waits for the server, drops every database but the templates
/// (connected to `template1`), recreates `postgres` empty, then pipes the dump into `psql`.
pub(super) async fn postgres<R: Runtime, D: AsyncRead + Unpin + Send>(
    target: &Target<'_, R>,
    head: Vec<u8>,
    dump: &mut D,
) -> Result<LoadReport, LoadError> {
    let tools = target.tools(&["psql", "pg_isready"]).await?;
    target.pick(&tools, &["psql"])?;
    target.pick(&tools, &["pg_isready"])?;
    target.wait_ready(&command::postgres_ready_probe()).await?;
    let env = &target.details.env;

    // The listing tells, too, whether the container's user may connect as the dump's
    // account; if peer authentication refuses it, everything runs as OS user postgres, as
    // the dump does.
    let mut as_postgres = false;
    let listing = loop {
        let list = command::psql(
            env,
            as_postgres,
            &["-d", "template1", "-At", "-c", command::POSTGRES_LISTING],
        );
        let answer = target.capture(&list, None, STEP_LIMIT).await?;
        if answer.code == 0 {
            break answer.stdout;
        }
        if !as_postgres
            && answer
                .stderr
                .to_ascii_lowercase()
                .contains("peer authentication failed")
        {
            info!(container = %target.name,
                "Peer authentication refused the container's user; loading as user postgres.");
            as_postgres = true;
            continue;
        }
        return Err(target.step_failed(
            "list the databases to replace (nothing was changed)",
            &list,
            answer.code,
            answer.stderr,
        ));
    };
    let facts = PostgresFacts::parse(&listing).map_err(|reason| LoadError::Refused {
        container: target.name.clone(),
        reason: format!("{reason}; nothing was changed"),
    })?;
    if !facts.may_create_databases {
        return Err(LoadError::Refused {
            container: target.name.clone(),
            reason: format!(
                "the role {} may not drop and create databases, which a full restore of pg_dumpall output does; set POSTGRES_USER to a superuser. Nothing was changed",
                crate::docker::dump::command::postgres_user(env)
            ),
        });
    }

    let reset = command::psql(
        env,
        as_postgres,
        &["-d", "template1", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
    );
    let sql = command::postgres_reset(&facts.databases, facts.version);
    let answer = target.capture(&reset, Some(sql), STEP_LIMIT).await?;
    if answer.code != 0 {
        return Err(target.step_failed(
            "drop the databases the dump replaces (some may be gone already; restore again)",
            &reset,
            answer.code,
            answer.stderr,
        ));
    }
    info!(container = %target.name, dropped = ?facts.databases,
        "Dropped the databases the dump replaces and recreated postgres empty.");

    // Without ON_ERROR_STOP psql runs the whole dump; its errors are sorted afterwards.
    let load = command::psql(
        env,
        as_postgres,
        &["-d", "postgres", "-q", "-v", "ON_ERROR_STOP=0", "-f", "-"],
    );
    let mut report = feed_client(target, &load, head, dump, b"", Verdict::postgres_line).await?;
    report.dropped = facts.databases;
    report.emptied = vec!["postgres".to_owned()];
    Ok(report)
}

/// What the postgres listing told.
#[derive(Debug, PartialEq, Eq)]
struct PostgresFacts {
    /// `server_version_num`.
    version: u32,
    /// Whether the account may drop and create databases.
    may_create_databases: bool,
    /// The databases to drop.
    databases: Vec<String>,
}

impl PostgresFacts {
    fn parse(lines: &[String]) -> Result<Self, String> {
        let mut version = None;
        let mut may = None;
        let mut databases = Vec::new();
        for line in lines {
            match line.split_once(':') {
                Some(("v", number)) => version = number.trim().parse().ok(),
                Some(("s", flag)) => may = Some(flag.trim() == "true"),
                Some(("d", hex)) => databases.push(
                    decode_hex(hex.trim())
                        .ok_or_else(|| format!("the server listed a database as {hex:?}"))?,
                ),
                _ => {}
            }
        }
        Ok(Self {
            version: version.ok_or("the server did not say its version")?,
            may_create_databases: may.ok_or("the server did not describe the connected role")?,
            databases,
        })
    }
}

/// Loads a `mysqldump` / `mariadb-dump --all-databases` dump: waits for the server, drops
/// every database but the system ones, then pipes the dump into the client with `--force`
/// (its errors are sorted afterwards) and reloads the privileges.
pub(super) async fn mysql<R: Runtime, D: AsyncRead + Unpin + Send>(
    target: &Target<'_, R>,
    head: Vec<u8>,
    dump: &mut D,
) -> Result<LoadReport, LoadError> {
    let (clients, admins) = command::mysql_tools(target.kind);
    let wanted: Vec<&str> = clients.iter().chain(admins).copied().collect();
    let tools = target.tools(&wanted).await?;
    let client = target.pick(&tools, clients)?;
    let admin = target.pick(&tools, admins)?;
    target
        .wait_ready(&command::mysql_ready_probe(admin))
        .await?;
    let env = &target.details.env;

    let listing = command::mysql_listing();
    let list = command::mysql_client(client, target.kind, env, &["-N", "-B", "-e", &listing]);
    let answer = target.capture(&list, None, STEP_LIMIT).await?;
    if answer.code != 0 {
        return Err(target.step_failed(
            "list the databases to replace (nothing was changed)",
            &list,
            answer.code,
            answer.stderr,
        ));
    }
    let databases = answer
        .stdout
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|hex| {
            decode_hex(hex.trim()).ok_or_else(|| LoadError::Refused {
                container: target.name.clone(),
                reason: format!(
                    "the server listed a database as {hex:?}, which is not a name; nothing was changed"
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !databases.is_empty() {
        let reset = command::mysql_client(client, target.kind, env, &[]);
        let answer = target
            .capture(&reset, Some(command::mysql_reset(&databases)), STEP_LIMIT)
            .await?;
        if answer.code != 0 {
            return Err(target.step_failed(
                "drop the databases the dump replaces (some may be gone already; restore again)",
                &reset,
                answer.code,
                answer.stderr,
            ));
        }
    }
    info!(container = %target.name, dropped = ?databases, "Dropped the databases the dump replaces.");

    let load = command::mysql_client(client, target.kind, env, &["--force"]);
    let mut report = feed_client(
        target,
        &load,
        head,
        dump,
        MYSQL_TRAILER,
        Verdict::mysql_line,
    )
    .await?;
    report.dropped = databases;
    Ok(report)
}

/// Loads a `mongodump --archive` with `mongorestore --archive --drop`.
pub(super) async fn mongo<R: Runtime, D: AsyncRead + Unpin + Send>(
    target: &Target<'_, R>,
    head: Vec<u8>,
    dump: &mut D,
) -> Result<LoadReport, LoadError> {
    let tools = target.tools(&["mongorestore", "mongosh", "mongo"]).await?;
    target.pick(&tools, &["mongorestore"])?;
    target.wait_ready(&command::mongo_ready_probe()).await?;
    let load = command::mongorestore(&target.details.env);
    feed_client(target, &load, head, dump, b"", Verdict::mongo_line).await
}

/// Pipes the dump (then `trailer`) into `client`, sorting its output with `sort`; fails when
/// the dump broke, the client failed or stopped early, or it reported errors that are not
/// the expected ones.
async fn feed_client<R: Runtime, D: AsyncRead + Unpin + Send>(
    target: &Target<'_, R>,
    client: &DumpCommand,
    head: Vec<u8>,
    dump: &mut D,
    trailer: &[u8],
    sort: Sorter,
) -> Result<LoadReport, LoadError> {
    let secrets = client.secrets.clone();
    let mut verdict = Verdict::default();
    let mut stderr_tail: Vec<String> = Vec::new();
    let spec = target.spec(client, None);
    info!(container = %target.name, tool = client.tool, "Feeding the dump to the database.");
    let (code, Fed { bytes, end }) = run_fed(
        target.runtime,
        spec,
        head,
        dump,
        trailer,
        |line: OutputLine| {
            sort(&mut verdict, &line.text, &secrets);
            // stdout carries query results (`pg_dumpall` output selects `set_config`), not
            // what went wrong.
            if line.stream == OutputStream::Stderr {
                if stderr_tail.len() >= 20 {
                    stderr_tail.remove(0);
                }
                stderr_tail.push(line.text);
            }
        },
    )
    .await;
    let container = target.name.clone();
    let tool = client.tool;
    if let FeedEnd::DumpFailed(source) = end {
        return Err(LoadError::DumpBroke {
            container,
            tool,
            bytes,
            source,
        });
    }
    let exit_code = match code {
        Ok(code) => code,
        Err(RuntimeError::Interrupted(interrupted)) => {
            return Err(RuntimeError::Interrupted(interrupted).into());
        }
        Err(error) => return Err(error.into()),
    };
    if exit_code != 0 {
        let message = if verdict.errors.is_empty() {
            crate::docker::dump::scrub(&stderr_tail.join(" / "), &secrets)
        } else {
            verdict.errors.join("; ")
        };
        return Err(LoadError::Failed {
            container,
            tool,
            exit_code,
            bytes,
            message,
        });
    }
    if verdict.error_count > 0 {
        return Err(LoadError::SqlErrors {
            container,
            tool,
            count: verdict.error_count,
            errors: verdict.errors,
            ignored: verdict.ignored_count,
        });
    }
    if matches!(end, FeedEnd::ClientStopped) {
        return Err(LoadError::Unfinished {
            container,
            tool,
            bytes,
        });
    }
    Ok(LoadReport {
        tool,
        bytes,
        ignored_errors: verdict.ignored_count,
        ignored: verdict.ignored,
        ..LoadReport::default()
    })
}

/// A name from the hex the server encoded it in (so no name can break the listing).
fn decode_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_from_hex_whatever_they_hold() {
        assert_eq!(decode_hex("736561").as_deref(), Some("sea"));
        assert_eq!(decode_hex("77650a220a").as_deref(), Some("we\n\"\n"));
        assert_eq!(decode_hex(""), Some(String::new()));
        for bad in ["7", "zz", "ff"] {
            assert_eq!(decode_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_postgres_listing_is_read_fact_by_fact() {
        let lines: Vec<String> = ["v:150004", "s:true", "d:736561", "d:6f6365616e"]
            .iter()
            .map(|&l| l.to_owned())
            .collect();
        assert_eq!(
            PostgresFacts::parse(&lines).unwrap(),
            PostgresFacts {
                version: 150_004,
                may_create_databases: true,
                databases: vec!["sea".to_owned(), "ocean".to_owned()],
            }
        );
        assert!(PostgresFacts::parse(&["s:true".to_owned()]).is_err());
        assert!(
            PostgresFacts::parse(&["v:1".to_owned(), "s:false".to_owned(), "d:zz".to_owned()])
                .is_err()
        );
    }
}
