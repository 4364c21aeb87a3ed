//! Whole-file config tests: the 0.9 config, every validation rule, and the exact messages
//! (pinned with insta, since operators read them).

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::model::{DbKind, TargetKind, VolumePath};

/// A deterministic environment: only the variables a test sets, and a fixed host name.
#[derive(Default)]
struct FakeEnv(HashMap<&'static str, &'static str>);

impl FakeEnv {
    fn with(vars: &[(&'static str, &'static str)]) -> Self {
        Self(vars.iter().copied().collect())
    }
}

impl Environment for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| (*v).to_owned())
    }

    fn hostname(&self) -> Option<String> {
        Some("test-host".into())
    }
}

fn load_ok(text: &str, env: &FakeEnv) -> Loaded {
    match load_str(text, "config.yml", env) {
        Ok(loaded) => loaded,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn errors(text: &str, env: &FakeEnv) -> String {
    match load_str(text, "config.yml", env) {
        Ok(_) => panic!("expected the config to be rejected"),
        Err(e) => e.to_string(),
    }
}

fn env_09() -> FakeEnv {
    FakeEnv::with(&[
        ("RESTIC_PASS", "restic-secret-1"),
        ("NODE_NAME", "node-a"),
        ("MARINA_AUTH_PASSWORD", "dashboard-secret-2"),
    ])
}

const MINIMAL: &str = "instances:\n  - id: a\n    repository: /srv/repo\n    schedule: '@daily'\n    env: {RESTIC_PASSWORD: x}\n";

#[test]
fn a_marina_09_config_is_accepted_unchanged() {
    let text = include_str!("../../tests/fixtures/marina-0.9.yml");
    let loaded = load_ok(text, &env_09());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    assert_eq!(config.node_name, "node-a");
    assert_eq!(config.api.port, 8080);
    assert_eq!(
        config.api.auth_password.as_ref().map(Secret::expose),
        Some("dashboard-secret-2")
    );
    assert_eq!(
        config.db_path,
        std::path::Path::new("/var/lib/marina/marina.db")
    );
    assert_eq!(config.instances.len(), 2);

    let nightly = &config.instances[0];
    assert_eq!(nightly.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(nightly.timeout, Some(Duration::from_hours(2)));
    assert_eq!(nightly.env["RESTIC_PASSWORD"].expose(), "restic-secret-1");
    assert_eq!(nightly.env["AWS_ACCESS_KEY_ID"].expose(), "minio");
    let Backend::Restic {
        retention,
        command_timeout,
        ..
    } = &nightly.backend
    else {
        panic!("nightly is a restic instance");
    };
    assert_eq!(retention.to_string(), "7d:4w:6m");
    assert_eq!(*command_timeout, Duration::from_hours(1));
    assert_eq!(
        nightly.targets[0].kind,
        TargetKind::Volume {
            paths: vec![VolumePath::root(), VolumePath::parse("uploads").unwrap()],
            stop_attached: Some(true),
        }
    );
    assert_eq!(nightly.targets[0].pre_hook.as_deref(), Some("sync"));
    assert_eq!(
        nightly.targets[1].kind,
        TargetKind::Db {
            kind: Some(DbKind::Postgres),
            dump_args: vec!["--clean".into()],
        }
    );

    let offsite = &config.instances[1];
    assert_eq!(
        offsite.backend,
        Backend::CustomImage {
            image: "registry.example.com/backup/rsync:1.4".into(),
            restore_entrypoint: None,
        }
    );
    assert_eq!(offsite.timezone, chrono_tz::UTC);
}

#[test]
fn the_seven_mistakes_are_all_reported_with_their_lines() {
    let text = include_str!("../../tests/fixtures/seven-mistakes.yml");
    insta::assert_snapshot!(errors(text, &FakeEnv::default()), @r"
    config.yml:8:9: instances[1].id: duplicate instance id `nightly` (first used on line 3)
    config.yml:10:15: instances[1].schedule: `0 25 * * *` is not a valid cron expression: the hour field `25` is invalid (Number out of bounds; allowed: 0-23)
    config.yml:11:16: instances[1].retention: all counts are zero, which would delete every snapshot; keep at least one
    config.yml:16:5: instances[2].customImage: set either `repository` (restic) or `customImage`, not both
    config.yml:20:29: instances[2].targets[0].paths[1]: must be relative to the volume root and must not contain '..'
    config.yml:22:9: instances[2].targets[1].stopAtached: unknown field `stopAtached`, did you mean `stopAttached`?
    config.yml:23:16: resticTimeout: `10 minutes please` is not a duration; write e.g. 30s, 10m, 1h30m or 7d
    ");
}

#[test]
fn secrets_never_appear_in_diagnostics() {
    let text = "
instances:
  - id: a
    repository: rest:https://user:repo-secret-3@host/repo
    schedule: 'bad cron'
    env:
      RESTIC_PASSWORD: ${RESTIC_PASS}
      BROKEN: ${UNSET_VAR}
      'bad key': env-secret-4
authPassword: ${MARINA_AUTH_PASSWORD}
";
    let rendered = errors(text, &env_09());
    for secret in [
        "restic-secret-1",
        "dashboard-secret-2",
        "repo-secret-3",
        "env-secret-4",
    ] {
        assert!(!rendered.contains(secret), "{secret} leaked:\n{rendered}");
    }
    assert!(rendered.contains("`UNSET_VAR` is not set"), "{rendered}");
    let loaded = load_ok(
        include_str!("../../tests/fixtures/marina-0.9.yml"),
        &env_09(),
    );
    let debug = format!("{:?}", loaded.config);
    for secret in ["restic-secret-1", "dashboard-secret-2"] {
        assert!(!debug.contains(secret), "{secret} leaked in Debug");
    }
}

#[test]
fn unset_variables_are_errors_that_name_them() {
    let text = "instances: []\nnodeName: ${NODE_NAME}\napiPort: ${PORT:-9090}\nretention: $RET\n";
    insta::assert_snapshot!(errors(text, &FakeEnv::default()), @r"
    config.yml:1:1: instances: warning: no instances are defined; nothing will be backed up
    config.yml:2:11: nodeName: environment variable `NODE_NAME` is not set; set it, or write ${NODE_NAME:-default} to give a default
    config.yml:4:12: retention: environment variable `RET` is not set; set it, or write ${RET:-default} to give a default
    ");
    let env = FakeEnv::with(&[("NODE_NAME", "n1"), ("RET", "1d:0w:0m"), ("PORT", "7000")]);
    let config = load_ok(text, &env).config;
    assert_eq!(config.node_name, "n1");
    assert_eq!(config.api.port, 7000);
}

#[test]
fn instances_inherit_globals_and_override_them() {
    let text = "
instances:
  - id: inherits
    repository: /srv/a
    schedule: '@daily'
    env: {RESTIC_PASSWORD: x}
  - id: overrides
    repository: /srv/b
    schedule: '@daily'
    retention: 1d:0w:0m
    resticTimeout: 5m
    timezone: Asia/Tokyo
    catchUp: false
    stopAttached: false
    timeout: 30m
    env: {RESTIC_PASSWORD: x}
retention: 3:2:1:1
resticTimeout: 2h
timeout: 3h
timezone: America/New_York
catchUp: true
stopAttached: yes
";
    let config = load_ok(text, &FakeEnv::default()).config;
    let [inherits, overrides] = &config.instances[..] else {
        panic!()
    };
    let restic = |i: &Instance| match &i.backend {
        Backend::Restic {
            retention,
            command_timeout,
            ..
        } => (retention.to_string(), *command_timeout),
        Backend::CustomImage { .. } => panic!(),
    };
    assert_eq!(
        restic(inherits),
        ("3d:2w:1m:1y".into(), Duration::from_hours(2))
    );
    assert_eq!(inherits.timezone, chrono_tz::America::New_York);
    assert_eq!(inherits.timeout, Some(Duration::from_hours(3)));
    assert!(inherits.catch_up && inherits.stop_attached);
    assert_eq!(
        restic(overrides),
        ("1d:0w:0m".into(), Duration::from_mins(5))
    );
    assert_eq!(overrides.timezone, chrono_tz::Asia::Tokyo);
    assert_eq!(overrides.timeout, Some(Duration::from_mins(30)));
    assert!(!overrides.catch_up && !overrides.stop_attached);
}

#[test]
fn built_in_defaults_apply() {
    let config = load_ok(MINIMAL, &FakeEnv::default()).config;
    assert_eq!(config.node_name, "test-host");
    assert_eq!(config.max_concurrent_jobs.get(), 2);
    assert_eq!(config.staging_dir, std::path::Path::new("/backup"));
    assert_eq!(config.helper_image, "alpine:3.20");
    assert_eq!(config.resync_interval, Duration::from_mins(5));
    assert_eq!(config.shutdown_grace, Duration::from_mins(5));
    assert_eq!(config.log_retention, Duration::from_hours(30 * 24));
    assert_eq!(config.api.bind.to_string(), "0.0.0.0");
    assert_eq!(config.api.port, 8080);
    assert_eq!(config.api.auth_password, None);
    assert!(!config.api.metrics_auth);
    let instance = &config.instances[0];
    assert_eq!(instance.timezone, chrono_tz::UTC);
    assert_eq!(instance.timeout, None);
    assert!(instance.catch_up);
    assert!(!instance.stop_attached);
    assert!(
        matches!(&instance.backend, Backend::Restic { retention, .. } if retention.to_string() == "7d:4w:6m")
    );
}

#[test]
fn timezone_falls_back_to_tz_then_utc() {
    let config = load_ok(MINIMAL, &FakeEnv::with(&[("TZ", ":Europe/Paris")])).config;
    assert_eq!(config.instances[0].timezone, chrono_tz::Europe::Paris);
    let loaded = load_ok(MINIMAL, &FakeEnv::with(&[("TZ", "/etc/localtime")]));
    assert_eq!(loaded.config.instances[0].timezone, chrono_tz::UTC);
    assert_eq!(
        loaded.warnings[0].to_string(),
        "config.yml: timezone: warning: the TZ environment variable (`/etc/localtime`) is not an IANA time zone name; schedules use UTC. Set `timezone` to choose a zone."
    );
}

#[test]
fn global_settings_are_validated() {
    let text = "
instances: []
maxConcurrentJobs: 0
stagingDir: relative/dir
helperImage: 'alpine 3'
resyncInterval: 0s
apiPort: 70000
apiBind: localhost
corsOrigins: ['*', 'https://ok.example.com', 'https://x.example.com/path']
peers: ['http://node2:8080/', 'ftp://node3', 'http://node2:8080', 'http://admin:hunter2@node4']
metricsAuth: maybe
timezone: Mars/Olympus
shutdownGrace: forever
";
    insta::assert_snapshot!(errors(text, &FakeEnv::default()), @r"
    config.yml:2:1: instances: warning: no instances are defined; nothing will be backed up
    config.yml:3:20: maxConcurrentJobs: `0` must be a whole number of at least 1
    config.yml:4:13: stagingDir: `relative/dir` must be an absolute path
    config.yml:5:14: helperImage: `alpine 3` is not an image reference (it contains white space)
    config.yml:6:17: resyncInterval: `0s` must be longer than zero
    config.yml:7:10: apiPort: `70000` is not a port number (0 to 65535)
    config.yml:8:10: apiBind: `localhost` is not an IP address; use e.g. 0.0.0.0, 127.0.0.1 or ::
    config.yml:9:46: corsOrigins[2]: `https://x.example.com/path` must be `*` or an origin such as https://dashboard.example.com
    config.yml:10:31: peers[1]: `ftp://node3` must be an http:// or https:// base URL such as http://node2:8080
    config.yml:10:46: peers[2]: `http://node2:8080` is listed twice (first on line 10)
    config.yml:10:67: peers[3]: a peer URL must not carry credentials; peers log in with `authPassword`
    config.yml:11:14: metricsAuth: `maybe` is not a boolean; use true or false
    config.yml:12:11: timezone: `Mars/Olympus` is not an IANA time zone name such as UTC or Europe/Berlin
    config.yml:13:16: shutdownGrace: `forever` is not a duration; write e.g. 30s, 10m, 1h30m or 7d
    ");
}

#[test]
fn instance_and_target_rules_are_checked() {
    let text = "
instances:
  - id: -bad
    schedule: '@every 5m'
  - id: restic
    repository: relative/repo
    schedule: '@hourly'
    env:
      RESTIC_PASSWORD: x
      RESTIC_REPOSITORY: /elsewhere
      MARINA_BACKUP_DIR: /x
      1BAD: y
    targets:
      - volume: data
        dbKind: postgres
      - db: pg
        paths: [/]
        dbKind: oracle
      - volume: data
      - {}
      - volume: both
        db: both
      - volume: empty
        paths: []
      - volume: 'bad name'
  - id: custom
    customImage: example/img:1
    schedule: '0 2 * * *'
    retention: 1:1:1
  - schedule: '0 2 * * *'
    repository: gcs:bucket
";
    insta::assert_snapshot!(errors(text, &FakeEnv::default()), @r"
    config.yml:3:5: instances[0]: has no backend; set `repository` (restic) or `customImage`
    config.yml:3:9: instances[0].id: `-bad` is not valid: an instance id starts with a letter or digit and contains only letters, digits, '.', '_' and '-'
    config.yml:4:15: instances[0].schedule: `@every 5m` is not supported; use @hourly, @daily, @weekly, @monthly, @yearly or a cron expression
    config.yml:6:17: instances[1].repository: a local repository must be an absolute path
    config.yml:10:7: instances[1].env.RESTIC_REPOSITORY: conflicts with `repository`; remove it from env
    config.yml:11:7: instances[1].env.MARINA_BACKUP_DIR: `MARINA_BACKUP_DIR` is set by Marina for the custom image's container and cannot be overridden
    config.yml:12:7: instances[1].env.1BAD: `1BAD` is not a valid environment variable name
    config.yml:15:9: instances[1].targets[0].dbKind: applies to db targets only
    config.yml:17:9: instances[1].targets[1].paths: applies to volume targets only
    config.yml:18:17: instances[1].targets[1].dbKind: `oracle` is not a supported database kind; use one of postgres, mysql, mariadb, mongo, redis
    config.yml:19:17: instances[1].targets[2]: `volume:data` is listed twice in this instance (first on line 14)
    config.yml:20:9: instances[1].targets[3]: names nothing to back up; set `volume: <volume name>` or `db: <container name>`
    config.yml:22:9: instances[1].targets[4].db: set either `volume` or `db` in one target, not both
    config.yml:24:16: instances[1].targets[5].paths: lists no path; remove `paths` to back up the whole volume
    config.yml:25:17: instances[1].targets[6].volume: `bad name` is not valid: Docker names start with a letter or digit and contain only letters, digits, '.', '_' and '-' (use the name `docker ps` or `docker volume ls` shows)
    config.yml:29:5: instances[2].retention: warning: is ignored for a custom image instance: the image owns its retention
    config.yml:30:5: instances[3].id: is required but missing
    config.yml:31:17: instances[3].repository: `gcs:` is not a restic backend; use one of local:, sftp:, rest:, s3:, b2:, azure:, gs:, swift:, rclone:, opendal: or an absolute local path
    ");
}

#[test]
fn wrong_shapes_are_reported_not_guessed() {
    let text = "
instances:
  id: a
peers: http://node2
corsOrigins:
  - [nested]
";
    insta::assert_snapshot!(errors(text, &FakeEnv::default()), @r"
    config.yml:3:3: instances: expected a list, found a mapping
    config.yml:4:8: peers: expected a list, found a single value
    config.yml:6:5: corsOrigins[0]: expected a single value, found a list
    ");
}

#[test]
fn empty_and_malformed_files_are_rejected() {
    assert_eq!(
        errors("", &FakeEnv::default()),
        "config.yml:1:1: the config file is empty; it needs at least `instances:`"
    );
    assert_eq!(
        errors("- just\n- a list\n", &FakeEnv::default()),
        "config.yml:1:1: expected a mapping, found a list"
    );
    let rendered = errors("instances: [\n  {id: a\n", &FakeEnv::default());
    assert!(
        rendered.starts_with("config.yml:3:1: invalid YAML: "),
        "{rendered}"
    );
    assert_eq!(
        errors(
            "instances: []\ntimezone: UTC\ntimezone: UTC\n",
            &FakeEnv::default()
        )
        .lines()
        .last(),
        Some("config.yml:3:1: timezone: `timezone` is set twice (first on line 2)")
    );
}

#[test]
fn a_syntax_error_at_the_end_of_the_text_points_into_it() {
    // The parser reports the end of a text without a final newline on a line after it.
    let rendered = errors("instances: [\n  {id: a", &FakeEnv::default());
    assert!(
        rendered.starts_with("config.yml:2:9: invalid YAML: "),
        "{rendered}"
    );
    let rendered = errors("{0A", &FakeEnv::default());
    assert!(
        rendered.starts_with("config.yml:1:4: invalid YAML: "),
        "{rendered}"
    );
}

#[test]
fn a_value_at_the_end_of_the_text_points_into_it() {
    // An empty key at the very end (`? ` without a final newline) is placed by the parser on
    // the line after the text, with `\r` line breaks as with `\n`.
    for (text, at) in [
        ("instances: []\n? ", "2:3"),
        ("instances: []\r? ", "2:3"),
        ("? ", "1:3"),
    ] {
        let rendered = errors(text, &FakeEnv::default());
        assert!(
            rendered.contains(&format!("config.yml:{at}: \"\": unknown field ``")),
            "{text:?}: {rendered}"
        );
    }
}

#[test]
fn auth_password_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("password");
    std::fs::write(&secret, "file-secret-5\n").unwrap();
    let text = format!("instances: []\nauthPasswordFile: {}\n", secret.display());
    let config = load_ok(&text, &FakeEnv::default()).config;
    assert_eq!(config.api.auth_password.unwrap().expose(), "file-secret-5");

    let both = format!("{text}authPassword: x\n");
    let rendered = errors(&both, &FakeEnv::default());
    assert!(
        rendered.ends_with(
            "authPasswordFile: set either `authPassword` or `authPasswordFile`, not both"
        ),
        "{rendered}"
    );
    assert!(!rendered.contains("file-secret-5"));

    let missing = "instances: []\nauthPasswordFile: /nonexistent/pw\n";
    assert_eq!(
        errors(missing, &FakeEnv::default()).lines().last().unwrap(),
        "config.yml:2:19: authPasswordFile: cannot read `/nonexistent/pw`: No such file or directory (os error 2)"
    );
    let config = load_ok("instances: []\nauthPassword: ''\n", &FakeEnv::default()).config;
    assert_eq!(
        config.api.auth_password, None,
        "an empty password means no authentication"
    );
}

#[test]
fn restic_without_a_password_is_a_warning() {
    let text = "instances:\n  - id: a\n    repository: /srv/r\n    schedule: '@daily'\n";
    let loaded = load_ok(text, &FakeEnv::default());
    insta::assert_snapshot!(loaded.warnings[0].to_string(), @"config.yml:2:5: instances[0].env: warning: sets none of RESTIC_PASSWORD, RESTIC_PASSWORD_FILE or RESTIC_PASSWORD_COMMAND; restic gets only the instance env, so it will not be able to open the repository");
}

#[test]
fn merge_keys_share_settings_between_instances() {
    let text = "
x-common: &common
  repository: /srv/repo
  schedule: '0 3 * * *'
  env: {RESTIC_PASSWORD: x}
instances:
  - <<: *common
    id: one
  - <<: *common
    id: two
    schedule: '0 4 * * *'
";
    // `x-common` is not a Marina field: sharing needs a known place, so it is reported.
    assert!(errors(text, &FakeEnv::default()).contains("unknown field `x-common`"));
    // An anchor defined in a known field can be shared.
    let text = "
instances:
  - &one
    id: one
    repository: /srv/repo
    schedule: '0 3 * * *'
    env: {RESTIC_PASSWORD: x}
  - <<: *one
    id: two
    schedule: '0 4 * * *'
";
    let config = load_ok(text, &FakeEnv::default()).config;
    assert_eq!(config.instances[1].id.as_str(), "two");
    assert_eq!(config.instances[1].schedule.as_str(), "0 4 * * *");
    assert_eq!(config.instances[1].backend, config.instances[0].backend);
}

#[test]
fn values_read_after_expansion_keep_their_types() {
    let env = FakeEnv::with(&[("JOBS", "4"), ("AUTH", "on"), ("DIR", "/data/staging")]);
    let text =
        "instances: []\nmaxConcurrentJobs: ${JOBS}\nmetricsAuth: $AUTH\nstagingDir: ${DIR}/x\n";
    let config = load_ok(text, &env).config;
    assert_eq!(config.max_concurrent_jobs.get(), 4);
    assert!(config.api.metrics_auth);
    assert_eq!(config.staging_dir, std::path::Path::new("/data/staging/x"));
}

#[test]
fn hook_and_dump_deadlines_are_inherited_defaulted_and_validated() {
    let text = "
instances:
  - id: inherits
    repository: /srv/a
    schedule: '@daily'
    env: {RESTIC_PASSWORD: x}
  - id: overrides
    customImage: org/backup:1
    schedule: '@daily'
    hookTimeout: 3s
    resticTimeout: 20m
hookTimeout: 90s
resticTimeout: 2h
";
    let loaded = load_ok(text, &FakeEnv::default());
    let [inherits, overrides] = &loaded.config.instances[..] else {
        panic!()
    };
    assert_eq!(inherits.hook_timeout, Duration::from_secs(90));
    assert_eq!(inherits.dump_timeout, Duration::from_hours(2));
    assert_eq!(overrides.hook_timeout, Duration::from_secs(3));
    // A custom image's dumps are bounded by its resticTimeout too: no warning that it is ignored.
    assert_eq!(overrides.dump_timeout, Duration::from_mins(20));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    let defaults = "instances:\n  - id: a\n    repository: /srv/a\n    schedule: '@daily'\n    env: {RESTIC_PASSWORD: x}\n";
    let instance = &load_ok(defaults, &FakeEnv::default()).config.instances[0];
    assert_eq!(instance.hook_timeout, Duration::from_mins(5));
    assert_eq!(instance.dump_timeout, Duration::from_hours(1));

    let bad = "instances:\n  - id: a\n    repository: /srv/a\n    schedule: '@daily'\n    hookTimeout: soon\n    env: {RESTIC_PASSWORD: x}\nhookTimeout: -1s\n";
    let errors = errors(bad, &FakeEnv::default());
    assert!(
        errors.contains("instances[0].hookTimeout: `soon` is not a duration"),
        "{errors}"
    );
    assert!(
        errors.contains("hookTimeout: `-1s` is not a duration"),
        "{errors}"
    );
}

#[test]
fn a_restore_entrypoint_is_a_command_line_or_a_program_with_its_arguments() {
    let text = "
instances:
  - id: line
    customImage: org/backup:1
    schedule: '@daily'
    restoreEntrypoint: /opt/restore --from \"$$MARINA_RESTORE_SNAPSHOT\"
  - id: exec
    customImage: org/backup:1
    schedule: '@daily'
    restoreEntrypoint: [/opt/restore, --verbose]
  - id: none
    customImage: org/backup:1
    schedule: '@daily'
";
    let loaded = load_ok(text, &FakeEnv::default());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let entrypoints: Vec<Option<Vec<String>>> = loaded
        .config
        .instances
        .iter()
        .map(|instance| match &instance.backend {
            Backend::CustomImage {
                restore_entrypoint, ..
            } => restore_entrypoint.clone(),
            Backend::Restic { .. } => panic!("{instance:?}"),
        })
        .collect();
    let argv = |parts: &[&str]| Some(parts.iter().map(|p| (*p).to_owned()).collect());
    assert_eq!(
        entrypoints,
        [
            // `$$` keeps a `$` for the container's shell, as in hooks.
            argv(&[
                "/bin/sh",
                "-c",
                "/opt/restore --from \"$MARINA_RESTORE_SNAPSHOT\""
            ]),
            argv(&["/opt/restore", "--verbose"]),
            None,
        ]
    );

    let bad = "
instances:
  - id: empty
    customImage: org/backup:1
    schedule: '@daily'
    restoreEntrypoint: []
  - id: blank
    customImage: org/backup:1
    schedule: '@daily'
    restoreEntrypoint: ['', x]
  - id: nothing
    customImage: org/backup:1
    schedule: '@daily'
    restoreEntrypoint: ' '
  - id: mapping
    customImage: org/backup:1
    schedule: '@daily'
    restoreEntrypoint: {run: x}
";
    insta::assert_snapshot!(errors(bad, &FakeEnv::default()), @r"
    config.yml:6:24: instances[0].restoreEntrypoint: lists no command; write the program and its arguments, or one command line
    config.yml:10:24: instances[1].restoreEntrypoint[0]: must name the program to run
    config.yml:14:24: instances[2].restoreEntrypoint: must not be empty
    config.yml:18:24: instances[3].restoreEntrypoint: expected a command line or a list of the program and its arguments, found a mapping
    ");

    let restic = "instances:\n  - id: a\n    repository: /srv/repo\n    schedule: '@daily'\n    env: {RESTIC_PASSWORD: x}\n    restoreEntrypoint: /restore.sh\n";
    let loaded = load_ok(restic, &FakeEnv::default());
    assert_eq!(
        loaded
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "config.yml:6:5: instances[0].restoreEntrypoint: warning: is ignored for a restic instance: restic restores from its own snapshots"
        ]
    );
}
