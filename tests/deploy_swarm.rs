//! The Swarm deployment, for real: `deploy/swarm/stack.yml` deployed with `marina:local` on
//! a single-node swarm (initialised here when none is active, and left afterwards). The
//! global service becomes ready on its host-mode port, backs up a labelled volume when asked
//! through that port (proven by reading the file back from the host repository), survives a
//! rolling restart with its job history, and leaves nothing behind when the stack is removed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::api::Api;
use support::{docker, docker_output, filled_volume, require_engine_and_images, unique_name};

const IMAGE: &str = "marina:local";
const RESTIC_PASSWORD: &str = "swarm-restic-password";
const AUTH_PASSWORD: &str = "swarm-dashboard-password";

/// Leaves the swarm on drop when this test created it; a swarm that was already active is
/// someone else's and stays.
struct SwarmGuard {
    created: bool,
}

impl SwarmGuard {
    fn ensure() -> Self {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        if state.trim() == "active" {
            return Self { created: false };
        }
        docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        Self { created: true }
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        if self.created {
            let _ = docker_output(&["swarm", "leave", "--force"]);
        }
    }
}

/// A deployed stack: `docker stack rm` on drop, waiting until its containers are gone, then
/// its data volume is removed.
struct StackGuard {
    name: String,
}

impl StackGuard {
    fn containers(&self) -> Vec<String> {
        docker(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=com.docker.stack.namespace={}", self.name),
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for StackGuard {
    fn drop(&mut self) {
        let _ = docker_output(&["stack", "rm", &self.name]);
        for _ in 0..120 {
            if self.containers().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for _ in 0..20 {
            let removed = docker_output(&["volume", "rm", &format!("{}_marina-data", self.name)]);
            if removed.status.success()
                || String::from_utf8_lossy(&removed.stderr).contains("no such volume")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn deploy(stack: &str, env: &[(&str, String)]) -> Output {
    Command::new("docker")
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "--compose-file",
        ])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/swarm/stack.yml"
        ))
        .arg(stack)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

/// The service's tasks as `docker service ps` shows them, for failure reports.
fn tasks(service: &str) -> String {
    let output = docker_output(&[
        "service",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Name}} {{.DesiredState}} {{.CurrentState}} {{.Error}}",
        service,
    ]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The config the stack gets, as deploy/swarm/config.yml suggests, for instance `id`.
fn config(id: &str) -> String {
    format!(
        "instances:\n  - id: {id}\n    repository: /repo\n    schedule: '0 2 * * *'\n    env:\n      RESTIC_PASSWORD_FILE: /run/secrets/marina_restic_password\n\
         nodeName: ${{NODE_NAME}}\nauthPasswordFile: /run/secrets/marina_auth_password\n\
         stagingDir: /backup\ndbPath: /var/lib/marina/marina.db\nhelperImage: {}\n",
        support::BUSYBOX_IMAGE
    )
}

#[tokio::test]
async fn the_stack_runs_one_marina_per_node_backs_up_and_keeps_history_across_updates() {
    require_engine_and_images();
    assert!(
        docker_output(&["image", "inspect", IMAGE]).status.success(),
        "{IMAGE} is missing; build it with `make image-local`"
    );
    let _swarm = SwarmGuard::ensure();

    let dir = tempfile::tempdir().unwrap();
    let instance = unique_name("swarm");
    let repo = dir.path().join("repo");
    let marker = format!("written for {instance}\n");
    let (volume, _volume) =
        filled_volume(&instance, &format!("printf '{marker}' > /data/marker.txt"));

    let stack = unique_name("stack");
    let service = format!("{stack}_marina");
    let port = support::free_port();
    let env = stack_env(dir.path(), &instance, &stack, port);
    let stack_guard = StackGuard {
        name: stack.clone(),
    };
    let deployed = deploy(&stack, &env);
    assert!(
        deployed.status.success(),
        "docker stack deploy: {}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let mode = docker(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.Mode}}",
        &service,
    ]);
    assert!(mode.contains("Global"), "a global service: {mode}");

    let mut api = Api::new(format!("http://127.0.0.1:{port}"));
    api.wait_ready_within(240, || service_report(&service))
        .await;
    api.login(AUTH_PASSWORD).await;
    let info = api.get("/api/info").await;
    let hostname = docker(&["info", "--format", "{{.Name}}"]);
    assert_eq!(
        info["nodeName"],
        hostname.trim(),
        "nodeName is the node's host name"
    );
    api.wait_for("/api/targets", 60, "the labelled volume", |t| {
        t.to_string().contains(&volume)
    })
    .await;

    let job = api.trigger(&instance).await;
    let finished = api.wait_job(&instance, job, 300).await;
    assert_eq!(
        finished["status"],
        "success",
        "{finished}\n{:#?}",
        api.job_log(job).await
    );
    support::restore::assert_latest_holds(&repo, RESTIC_PASSWORD, "marker.txt", &marker);

    // A rolling restart: a new task, the same job history (the data volume persists).
    rolling_restart(&stack_guard, &service).await;
    api.wait_ready_within(240, || service_report(&service))
        .await;
    // A new process: sessions are in memory, so log in again.
    api.login(AUTH_PASSWORD).await;
    let history = api.get(&format!("/api/status/{instance}")).await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job && j["status"] == "success"),
        "the job history survived the update: {history}\ntasks:\n{}",
        tasks(&service)
    );

    drop(stack_guard);
    assert!(
        docker(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}")
        ])
        .trim()
        .is_empty(),
        "the stack left containers behind"
    );
}

/// Writes the stack's config and secret files into `dir` (with the staging and repository
/// directories the service binds) and returns the settings `docker stack deploy` reads.
fn stack_env(dir: &Path, instance: &str, stack: &str, port: u16) -> Vec<(&'static str, String)> {
    let staging = dir.join("staging");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, config(instance)).unwrap();
    let auth_file = dir.join("auth-password");
    let restic_file = dir.join("restic-password");
    std::fs::write(&auth_file, AUTH_PASSWORD).unwrap();
    std::fs::write(&restic_file, RESTIC_PASSWORD).unwrap();
    // The config and secret names are per stack, so parallel or leftover stacks never clash.
    vec![
        ("MARINA_IMAGE", IMAGE.to_owned()),
        ("MARINA_CONFIG", config_path.display().to_string()),
        ("MARINA_CONFIG_VERSION", stack.to_owned()),
        ("MARINA_STAGING", staging.display().to_string()),
        ("MARINA_PORT", port.to_string()),
        ("MARINA_REPO", repo.display().to_string()),
        ("MARINA_AUTH_PASSWORD_FILE", auth_file.display().to_string()),
        (
            "MARINA_RESTIC_PASSWORD_FILE",
            restic_file.display().to_string(),
        ),
    ]
}

/// `docker service update --force`, waiting until a new task replaced the old one.
async fn rolling_restart(stack: &StackGuard, service: &str) {
    let old_tasks = stack.containers();
    docker(&["service", "update", "--force", "--detach", service]);
    for _ in 0..600 {
        let running = docker(&[
            "ps",
            "--quiet",
            "--filter",
            &format!("label=com.docker.swarm.service.name={service}"),
        ]);
        let running: Vec<&str> = running.lines().collect();
        if running.len() == 1 && !old_tasks.iter().any(|old| old.as_str() == running[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The service's tasks and log, for failure reports.
fn service_report(service: &str) -> String {
    let logs = docker_output(&["service", "logs", "--raw", service]);
    format!(
        "tasks:\n{}\nlogs:\n{}{}",
        tasks(service),
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    )
}
