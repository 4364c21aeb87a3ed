//! The `marina` binary as users run it: exit codes, output, config path precedence.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::path::Path;

use assert_cmd::Command;

fn marina() -> Command {
    let mut cmd = Command::cargo_bin("marina").unwrap();
    // Only what each test sets: no CONFIG_FILE or secrets from the developer's shell.
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn validate_reports_all_seven_mistakes_with_lines_and_exits_2() {
    let file = fixture("seven-mistakes.yml");
    let output = marina()
        .args(["validate", "--config", &file])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    let expected_lines = [8, 10, 11, 16, 20, 22, 23];
    let reported: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.strip_prefix(&format!("{file}:"))
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(reported.len(), 7, "{err}");
    for (line, expected) in reported.iter().zip(expected_lines) {
        assert!(line.starts_with(&format!("{file}:{expected}:")), "{line}");
    }
    assert!(
        err.ends_with("7 errors found; the config is not valid\n"),
        "{err}"
    );
    for secret in ["hunter2-never-printed", "correct-horse-battery-staple"] {
        assert!(
            !err.contains(secret) && !stdout(&output).contains(secret),
            "{secret} was printed"
        );
    }
}

#[test]
fn validate_accepts_a_09_config_with_a_one_line_summary() {
    let file = fixture("marina-0.9.yml");
    let output = marina()
        .args(["validate", "--config", &file])
        .env("RESTIC_PASS", "restic-pass-secret")
        .env("NODE_NAME", "node-a")
        .env("MARINA_AUTH_PASSWORD", "auth-secret")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{file} is valid: 2 instances (1 restic, 1 custom image), 2 targets in config; node node-a, API on 0.0.0.0:8080, authentication on\n"
        )
    );
    assert_eq!(stderr(&output), "");
    let all = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!all.contains("restic-pass-secret") && !all.contains("auth-secret"));
}

#[test]
fn an_unset_variable_is_named() {
    let output = marina()
        .args(["validate", "--config", &fixture("marina-0.9.yml")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    for name in ["RESTIC_PASS", "NODE_NAME", "MARINA_AUTH_PASSWORD"] {
        assert!(
            err.contains(&format!("environment variable `{name}` is not set")),
            "{err}"
        );
    }
}

#[test]
fn config_path_comes_from_flag_then_env_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "instances: []\nnodeName: n\n").unwrap();
    let missing = dir.path().join("missing.yml");

    let from_env = marina()
        .arg("validate")
        .env("CONFIG_FILE", &good)
        .output()
        .unwrap();
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));
    assert!(stdout(&from_env).starts_with(&format!("{} is valid", good.display())));

    let flag_wins = marina()
        .args(["validate", "--config"])
        .arg(&missing)
        .env("CONFIG_FILE", &good)
        .output()
        .unwrap();
    assert_eq!(flag_wins.status.code(), Some(2));
    assert!(stderr(&flag_wins).starts_with(&format!(
        "{}: cannot read the config file",
        missing.display()
    )));

    let default = marina().arg("validate").output().unwrap();
    if !Path::new("/config.yml").exists() {
        assert_eq!(default.status.code(), Some(2));
        assert!(
            stderr(&default).starts_with("/config.yml: cannot read the config file"),
            "{}",
            stderr(&default)
        );
    }
}

#[test]
fn version_and_help_work_everywhere() {
    let version = marina().arg("version").output().unwrap();
    assert_eq!(
        stdout(&version),
        format!("marina {}\n", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["snapshots", "--help"],
        &["restore", "--help"],
        &["version", "--help"],
        &["--version"],
    ] {
        let output = marina().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(!stdout(&output).is_empty(), "{args:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let output = marina().arg("no-such-command").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = marina().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_quickstart_config_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yml");
    let output = marina()
        .args(["validate", "--config"])
        .arg(&file)
        .env("MARINA_HOME", "/tmp/marina-home")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("1 instance (1 restic, 0 custom image)"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn the_deployment_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = root.join("deploy/compose/config/config.yml");
    let output = marina()
        .args(["validate", "--config"])
        .arg(&compose)
        .env("RESTIC_PASSWORD", "x")
        .env("NODE_NAME", "node-1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // The Swarm config reads its password from a secret file; point it at a real one.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("auth-password");
    std::fs::write(&secret, "secret").unwrap();
    let text = std::fs::read_to_string(root.join("deploy/swarm/config.yml")).unwrap();
    assert!(text.contains("/run/secrets/marina_auth_password"));
    let swarm = dir.path().join("config.yml");
    std::fs::write(
        &swarm,
        text.replace(
            "/run/secrets/marina_auth_password",
            &secret.display().to_string(),
        ),
    )
    .unwrap();
    let output = marina()
        .args(["validate", "--config"])
        .arg(&swarm)
        .env("NODE_NAME", "node-1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("authentication on"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn healthcheck_exits_0_when_the_daemon_answers_and_1_when_not() {
    use std::io::{Read, Write};
    // A stand-in daemon that answers one request to /healthz.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0_u8; 1024];
        let read = stream.read(&mut request).unwrap();
        let first_line = String::from_utf8_lossy(&request[..read])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
            .unwrap();
        first_line
    });
    let output = marina()
        .args(["healthcheck", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(server.join().unwrap(), "GET /healthz HTTP/1.1");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let output = marina()
        .args(["healthcheck", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot reach Marina"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn validate_refuses_a_billion_laughs_config_without_expanding_it() {
    let file = fixture("billion-laughs.yml");
    // Under a 1 GiB address-space limit: expanding the aliases (9^9 nodes) could not fit,
    // so passing proves the document was refused before it took the memory.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" validate --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_marina"))
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let expected = format!(
        "{file}:6:8: invalid YAML: the document expands aliases into more than 10000 nodes; YAML anchors this deep are not supported"
    );
    assert!(
        stdout(&output).contains(&expected) || stderr(&output).contains(&expected),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}
