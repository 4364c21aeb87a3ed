use std::collections::BTreeMap;

use super::commands::{Probe, classify_probe};
use super::output::BackupMessage;
use super::scrub::{Scrubber, summarize};
use crate::model::Secret;

// Real restic 0.14.0 stderr, captured on Debian 12 (repository strings shortened).
const MISSING_LOCAL: &str = "Fatal: unable to open config file: stat /tmp/rx/repo/config: no such file or directory\nIs there a repository at the following location?\n/tmp/rx/repo\n";
const MISSING_REST: &str = "Fatal: unable to open config file: <config/> does not exist\nIs there a repository at the following location?\nrest:http://user:***@127.0.0.1:18404/repo/\n";
const MISSING_S3_BUCKET: &str = "Fatal: unable to open config file: Stat: The specified bucket does not exist.\nIs there a repository at the following location?\ns3:http://127.0.0.1:18404/bucket\n";
const WRONG_PASSWORD: &str = "Fatal: wrong password or no key found\n";
const REFUSED_REST: &str = "Fatal: unable to open config file: client.Head: Head \"http://127.0.0.1:1/config\": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\nrest:http://127.0.0.1:1/\n";
const REFUSED_S3: &str = "Fatal: unable to open config file: Stat: Get \"http://127.0.0.1:1/bucket/?location=\": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\ns3:http://127.0.0.1:1/bucket\n";
const FORBIDDEN_REST: &str = "Fatal: unable to open config file: unexpected HTTP response (403): 403 Forbidden\nIs there a repository at the following location?\nrest:http://127.0.0.1:18403/repo/\n";
const SERVER_ERROR_REST: &str = "Fatal: unable to open config file: unexpected HTTP response (500): 500 Internal Server Error\nIs there a repository at the following location?\nrest:http://127.0.0.1:18500/repo/\n";
const PERMISSION_DENIED: &str = "Fatal: unable to open repository at /tmp/rx/priv/repo: ReadDir: open /tmp/rx/priv/repo/keys: permission denied\n";
const NOT_A_DIRECTORY: &str = "Fatal: unable to open repository at /tmp/rx/notdir/repo: ReadDir: open /tmp/rx/notdir/repo/keys: not a directory\n";
const SFTP_UNRESOLVABLE: &str = "subprocess ssh: ssh: Could not resolve hostname nohost.invalid: Name or service not known\nFatal: unable to open repository at sftp:nohost.invalid:/x: unable to start the sftp session, error: EOF\n";
const INVALID_BACKEND: &str = "Fatal: parsing repository location failed: invalid backend\nIf the repository is in a local directory, you need to add a `local:` prefix\n";
const NO_PASSWORD: &str =
    "reading repository password from stdin\nFatal: an empty password is not a password\n";
const CORRUPT_CONFIG: &str = "panic: runtime error: slice bounds out of range [16:8]\n\ngoroutine 1 [running]:\ngithub.com/restic/restic/internal/repository.(*Repository).LoadUnpacked(0xc0003409c0)\n";

#[test]
fn only_a_definite_does_not_exist_means_missing() {
    for sample in [MISSING_LOCAL, MISSING_REST, MISSING_S3_BUCKET] {
        assert_eq!(classify_probe(Some(1), sample), Probe::Missing, "{sample}");
    }
}

#[test]
fn a_wrong_password_is_never_missing() {
    assert_eq!(
        classify_probe(Some(1), WRONG_PASSWORD),
        Probe::WrongPassword
    );
}

#[test]
fn network_permission_and_other_errors_are_never_missing() {
    for sample in [
        REFUSED_REST,
        REFUSED_S3,
        FORBIDDEN_REST,
        SERVER_ERROR_REST,
        PERMISSION_DENIED,
        NOT_A_DIRECTORY,
        SFTP_UNRESOLVABLE,
        INVALID_BACKEND,
        NO_PASSWORD,
        "",
    ] {
        assert_eq!(
            classify_probe(Some(1), sample),
            Probe::Unavailable,
            "{sample}"
        );
    }
    assert_eq!(classify_probe(Some(2), CORRUPT_CONFIG), Probe::Unavailable);
    // Killed by a signal: no exit code, and no conclusion either.
    assert_eq!(classify_probe(None, ""), Probe::Unavailable);
}

#[test]
fn exit_codes_decide_first() {
    assert_eq!(classify_probe(Some(0), ""), Probe::Exists);
    // restic >= 0.17: 10 = repository does not exist, 12 = wrong password.
    assert_eq!(classify_probe(Some(10), ""), Probe::Missing);
    assert_eq!(classify_probe(Some(12), ""), Probe::WrongPassword);
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Secret::new((*value).to_owned())))
        .collect()
}

#[test]
fn the_scrubber_hides_the_repository_in_every_printed_form() {
    let scrubber = Scrubber::new(
        &Secret::new("rest:http://backup-user:hunter2@127.0.0.1:18404/repo".into()),
        &BTreeMap::new(),
    );
    let cleaned = scrubber.scrub(
        "Fatal: unable to open repository at rest:http://backup-user:***@127.0.0.1:18404/repo/: x\nsee http://backup-user:hunter2@127.0.0.1:18404/repo",
    );
    assert!(!cleaned.contains("hunter2"), "{cleaned}");
    assert!(!cleaned.contains("backup-user"), "{cleaned}");

    let local = Scrubber::new(
        &Secret::new("local:/srv/secret-repo".into()),
        &BTreeMap::new(),
    );
    assert_eq!(
        local.scrub("stat /srv/secret-repo/config: no such file or directory"),
        "stat <repository>/config: no such file or directory"
    );
}

#[test]
fn the_scrubber_hides_every_env_value_longest_first() {
    let scrubber = Scrubber::new(
        &Secret::new("/repo".into()),
        &env(&[
            ("RESTIC_PASSWORD", "abc"),
            ("OTHER", "abcdef"),
            ("EMPTY", ""),
        ]),
    );
    assert_eq!(scrubber.scrub("x abcdef y abc z"), "x *** y *** z");
}

#[test]
fn messages_are_one_clean_line() {
    assert_eq!(
        summarize(MISSING_LOCAL),
        "unable to open config file: stat /tmp/rx/repo/config: no such file or directory"
    );
    assert_eq!(
        summarize(NO_PASSWORD),
        "reading repository password from stdin; an empty password is not a password"
    );
    assert_eq!(
        summarize(CORRUPT_CONFIG),
        "restic crashed: panic: runtime error: slice bounds out of range [16:8]"
    );
    assert_eq!(summarize("\n\n"), "restic printed no error message");
    let many = (0..30)
        .map(|i| format!("line {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(summarize(&many).starts_with("line 20; "));
}

#[test]
fn backup_lines_parse_as_restic_0_14_prints_them() {
    let summary: BackupMessage = serde_json::from_str(r#"{"message_type":"summary","files_new":3,"files_changed":0,"files_unmodified":0,"dirs_new":2,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":4,"tree_blobs":3,"data_added":3002105,"total_files_processed":3,"total_bytes_processed":3000003,"total_duration":0.268304021,"snapshot_id":"364a00fb"}"#).unwrap();
    let BackupMessage::Summary(summary) = summary else {
        panic!("not a summary");
    };
    let summary = summary.to_summary();
    assert_eq!(summary.files_new, 3);
    assert_eq!(summary.bytes_added, 3_002_105);
    assert_eq!(summary.snapshot_id.as_deref(), Some("364a00fb"));

    let status: BackupMessage = serde_json::from_str(r#"{"message_type":"status","percent_done":0.62,"total_files":3,"files_done":2,"current_files":["/data/sub/big"]}"#).unwrap();
    assert!(matches!(status, BackupMessage::Other));

    let error: BackupMessage = serde_json::from_str(r#"{"message_type":"error","error":{"Op":"read","Path":"/e.sql","Err":{}},"during":"archival","item":"/e.sql"}"#).unwrap();
    let BackupMessage::Error(error) = error else {
        panic!("not an error");
    };
    assert_eq!(error.describe(), "/e.sql (read failed during archival)");
}
