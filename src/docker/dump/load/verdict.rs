//! What a client's output says about a load: which errors are expected and harmless, and
//! which fail it.
//!
//! A full restore cannot stop at the first SQL error: `pg_dumpall` output creates roles that
//! already exist (the account the load connects as always does), and a MariaDB dump of the
//! `mysql` schema re-creates the `mysql.user` view that a running server already has. So the
//! clients run to the end (`psql` without `ON_ERROR_STOP`, `mariadb --force`) and every error
//! line they print is sorted here: the known harmless ones are counted and reported, any
//! other fails the load and is named in its error. Memory stays bounded however many errors
//! a dump produces: everything is counted, only the first few messages are kept.

use crate::docker::dump::scrub;
use crate::model::Secret;

/// Messages kept of each sort.
const KEPT: usize = 10;
/// Characters kept of one message.
const MESSAGE_CHARS: usize = 400;

/// The errors a client reported during a load.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The first few harmless errors (each message once).
    pub(super) ignored: Vec<String>,
    /// How many harmless errors there were.
    pub(super) ignored_count: u64,
    /// The first few errors that fail the load.
    pub(super) errors: Vec<String>,
    /// How many errors fail the load.
    pub(super) error_count: u64,
}

impl Verdict {
    /// Sorts one line of `psql`'s output (`psql:<stdin>:12: ERROR:  …`, run with `-f -`).
    /// The lines following an error (`DETAIL:`, `HINT:`, `LINE 1:`, the caret) are its
    /// context and are not counted again.
    pub(super) fn postgres_line(&mut self, line: &str, secrets: &[Secret]) {
        let Some(rest) = line.strip_prefix("psql:") else {
            return;
        };
        let markers = [" ERROR:  ", " FATAL:  ", " error: "];
        let Some((at, marker)) = markers
            .iter()
            .filter_map(|marker| rest.find(marker).map(|at| (at, *marker)))
            .min_by_key(|(at, _)| *at)
        else {
            return;
        };
        let location = rest[..at].trim_end_matches(':');
        let message = rest[at + marker.len()..].trim();
        let text = match location.rsplit_once(':') {
            Some((_, number))
                if number.chars().all(|c| c.is_ascii_digit()) && !number.is_empty() =>
            {
                format!("line {number}: {message}")
            }
            _ => message.to_owned(),
        };
        if marker == " ERROR:  " && harmless_postgres(message) {
            self.ignore(&text, secrets);
        } else {
            self.fail(&text, secrets);
        }
    }

    /// Sorts one line of the MariaDB or MySQL client's output
    /// (`ERROR 1050 (42S01) at line 2179: Table 'user' already exists`).
    pub(super) fn mysql_line(&mut self, line: &str, secrets: &[Secret]) {
        let Some(rest) = line.strip_prefix("ERROR ") else {
            return;
        };
        let (code, message) = match rest.split_once(": ") {
            Some((head, message)) => (head.split_whitespace().next().unwrap_or(""), message),
            None => ("", rest),
        };
        let location = rest
            .split_once(" at line ")
            .and_then(|(_, after)| after.split(':').next())
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        let text = match location {
            Some(number) => format!("line {number}: {message} (error {code})"),
            None => format!("{message} (error {code})"),
        };
        if code == "1050" && message.trim() == "Table 'user' already exists" {
            // The dump re-creates the `mysql.user` view (MariaDB 10.4+), which `DROP TABLE IF
            // EXISTS` before it does not remove: the server's own view stays, as it should.
            self.ignore(&text, secrets);
        } else {
            self.fail(&text, secrets);
        }
    }

    /// Sorts one line of `mongorestore`'s log: documents it could not restore fail the load
    /// (it exits 0 all the same).
    pub(super) fn mongo_line(&mut self, line: &str, secrets: &[Secret]) {
        let Some(before) = line.find(" document(s) failed to restore") else {
            return;
        };
        let count: String = line[..before]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if count.parse::<u64>().is_ok_and(|n| n > 0) {
            self.fail(&format!("{count} document(s) failed to restore"), secrets);
        }
    }

    fn ignore(&mut self, text: &str, secrets: &[Secret]) {
        self.ignored_count += 1;
        let text = clean(text, secrets);
        if self.ignored.len() < KEPT && !self.ignored.contains(&text) {
            self.ignored.push(text);
        }
    }

    fn fail(&mut self, text: &str, secrets: &[Secret]) {
        self.error_count += 1;
        if self.errors.len() < KEPT {
            self.errors.push(clean(text, secrets));
        }
    }
}

/// The errors `pg_dumpall` output causes on a server that already has roles: the roles exist
/// (`CREATE ROLE`; the `ALTER ROLE` after it still sets their attributes and passwords), and,
/// for a dump made with `--clean`, the connected role cannot drop itself.
fn harmless_postgres(message: &str) -> bool {
    (message.starts_with("role \"") && message.ends_with("\" already exists"))
        || message == "current user cannot be dropped"
        || (message.starts_with("role \"")
            && message.ends_with("cannot be dropped because some objects depend on it"))
}

/// A message as it may be shown: secrets scrubbed, bounded in length.
fn clean(text: &str, secrets: &[Secret]) -> String {
    let text = scrub(text, secrets);
    if text.chars().count() > MESSAGE_CHARS {
        let cut: String = text.chars().take(MESSAGE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_errors_are_sorted_into_harmless_role_conflicts_and_the_rest() {
        let mut verdict = Verdict::default();
        for line in [
            "psql:<stdin>:16: ERROR:  role \"app\" already exists",
            "psql:<stdin>:18: ERROR:  role \"marina\" already exists",
            "psql:<stdin>:57: ERROR:  syntax error at or near \"THIS\"",
            "LINE 1: THIS IS NOT SQL;",
            "        ^",
            "psql:<stdin>:60: NOTICE:  something",
            "psql:<stdin>:61: error: \\connect: connection to server failed: FATAL:  database \"x\" does not exist",
            "SET",
        ] {
            verdict.postgres_line(line, &[]);
        }
        assert_eq!(verdict.ignored_count, 2);
        assert_eq!(
            verdict.ignored,
            [
                "line 16: role \"app\" already exists",
                "line 18: role \"marina\" already exists"
            ]
        );
        assert_eq!(verdict.error_count, 2);
        assert_eq!(
            verdict.errors[0],
            "line 57: syntax error at or near \"THIS\""
        );
        assert!(verdict.errors[1].starts_with("line 61: \\connect: connection"));
    }

    #[test]
    fn mysql_errors_spare_only_the_mysql_user_view() {
        let mut verdict = Verdict::default();
        for line in [
            "ERROR 1050 (42S01) at line 2179: Table 'user' already exists",
            "--------------",
            "/*!50001 VIEW `user` AS select …",
            "ERROR 1064 (42000) at line 3000: You have an error in your SQL syntax; check the manual",
            "ERROR 1045 (28000): Access denied for user 'root'@'localhost' (using password: YES)",
        ] {
            verdict.mysql_line(line, &[]);
        }
        assert_eq!(verdict.ignored_count, 1);
        assert_eq!(
            verdict.ignored,
            ["line 2179: Table 'user' already exists (error 1050)"]
        );
        assert_eq!(verdict.error_count, 2);
        assert_eq!(
            verdict.errors[0],
            "line 3000: You have an error in your SQL syntax; check the manual (error 1064)"
        );
        assert!(verdict.errors[1].starts_with("Access denied"));
    }

    #[test]
    fn mongorestore_counts_failed_documents() {
        let mut verdict = Verdict::default();
        verdict.mongo_line(
            "2026-01-01T00:00:00.000+0000\t12 document(s) restored successfully. 0 document(s) failed to restore.",
            &[],
        );
        assert_eq!(verdict.error_count, 0);
        verdict.mongo_line(
            "2026-01-01T00:00:00.000+0000\t10 document(s) restored successfully. 2 document(s) failed to restore.",
            &[],
        );
        assert_eq!(verdict.errors, ["2 document(s) failed to restore"]);
    }

    #[test]
    fn many_errors_are_counted_but_only_a_few_kept_and_secrets_never() {
        let mut verdict = Verdict::default();
        let secrets = [Secret::new("hunter2".into())];
        for n in 0..10_000 {
            verdict.postgres_line(
                &format!(
                    "psql:<stdin>:{n}: ERROR:  bad password hunter2 {}",
                    "x".repeat(1000)
                ),
                &secrets,
            );
        }
        assert_eq!(verdict.error_count, 10_000);
        assert_eq!(verdict.errors.len(), KEPT);
        assert!(verdict.errors.iter().all(|e| !e.contains("hunter2")));
        assert!(
            verdict
                .errors
                .iter()
                .all(|e| e.chars().count() <= MESSAGE_CHARS + 1)
        );
    }
}
