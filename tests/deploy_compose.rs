//! The container image in its single-host deployment: `marina:local` (from
//! `make image-local`) started by `deploy/compose/docker-compose.yml` with the Docker socket,
//! a host staging directory bind-mounted at a *different* path inside (`/backup`), and a host
//! repository. It backs up a labelled volume, which only works when Marina finds the host
//! path of its staging directory through its own container's mounts; the backup is proven
//! by reading the file back from the repository. The image's health check command answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::process::Command;

use support::api::Api;
use support::{docker, docker_output, filled_volume, require_engine_and_images, unique_name};

const IMAGE: &str = "marina:local";
const RESTIC_PASSWORD: &str = "compose-restic-password";
const AUTH_PASSWORD: &str = "compose-dashboard-password";

/// `docker-compose` for one project, with the deployment's settings in its environment;
/// `down -v` when dropped, so nothing is left running.
struct Compose {
    project: String,
    env: Vec<(&'static str, String)>,
}

impl Compose {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/compose/docker-compose.yml"
        );
        Command::new("docker-compose")
            .args(["--project-name", &self.project, "--file", file])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("docker-compose is installed (apt-get install docker-compose)")
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--volumes", "--timeout", "30"]);
    }
}

fn require_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        present,
        "{IMAGE} is missing; build it with `make image-local`"
    );
}

#[tokio::test]
async fn the_compose_deployment_backs_up_and_restores_a_labelled_volume_through_the_host_staging_path()
 {
    require_engine_and_images();
    require_image();
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    let port = support::free_port();
    let project = unique_name("compose");
    let compose = Compose {
        project: project.clone(),
        env: vec![
            ("MARINA_IMAGE", IMAGE.to_owned()),
            ("MARINA_PORT", port.to_string()),
            ("MARINA_STAGING", staging.display().to_string()),
            ("MARINA_REPO", repo.display().to_string()),
            ("MARINA_NODE", project.clone()),
            ("RESTIC_PASSWORD", RESTIC_PASSWORD.to_owned()),
            ("MARINA_AUTH_PASSWORD", AUTH_PASSWORD.to_owned()),
            ("MARINA_HELPER_IMAGE", support::BUSYBOX_IMAGE.to_owned()),
        ],
    };
    let marker = format!("written for {project}\n");
    let (volume, _volume) =
        filled_volume("nightly", &format!("printf '{marker}' > /data/marker.txt"));

    let up = compose.run(&["up", "--detach"]);
    assert!(
        up.status.success(),
        "docker-compose up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let mut api = Api::new(format!("http://127.0.0.1:{port}"));
    api.wait_ready_within(120, || compose_logs(&compose)).await;
    api.login(AUTH_PASSWORD).await;
    api.wait_for("/api/targets", 60, "the labelled volume", |t| {
        t.to_string().contains(&volume)
    })
    .await;

    let job = api.trigger("nightly").await;
    let finished = api.wait_job("nightly", job, 300).await;
    assert_eq!(
        finished["status"],
        "success",
        "{finished}\n{:#?}\n{}",
        api.job_log(job).await,
        compose_logs(&compose)
    );
    support::restore::assert_latest_holds(&repo, RESTIC_PASSWORD, "marker.txt", &marker);
    restore_through_the_helper(&api, &volume, &marker).await;

    // The image's HEALTHCHECK command works inside the container.
    let container = docker(&[
        "ps",
        "--quiet",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ]);
    let check = Command::new("docker")
        .args(["exec", container.trim(), "marina", "healthcheck"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "marina healthcheck in the container: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Marina in a container does not see volumes' data: a restore goes through staging and a
/// helper container, in place and into a new volume.
async fn restore_through_the_helper(api: &Api, volume: &str, marker: &str) {
    let read = |volume: &str| {
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{volume}:/data:ro"),
            support::BUSYBOX_IMAGE,
            "cat",
            "/data/marker.txt",
        ])
    };
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        support::BUSYBOX_IMAGE,
        "sh",
        "-c",
        "echo changed > /data/marker.txt; echo extra > /data/extra.txt",
    ]);
    let target = format!("volume:{volume}");
    let copy = format!("{volume}-copy");
    let _copy = support::VolumeGuard(copy.clone());
    for body in [
        serde_json::json!({ "target": target, "inPlace": true }),
        serde_json::json!({ "target": target, "to": copy }),
    ] {
        let (status, answer) = api.post_json("/api/instances/nightly/restore", &body).await;
        assert_eq!(status, 202, "{body}: {answer}");
        let job = answer["jobId"].as_i64().unwrap();
        let finished = api.wait_job("nightly", job, 300).await;
        assert_eq!(
            finished["status"],
            "success",
            "{body}: {finished}\n{:#?}",
            api.job_log(job).await
        );
    }
    assert_eq!(read(volume), marker, "restored in place");
    assert_eq!(read(&copy), marker, "restored into a new volume");
    let extra = docker_output(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data:ro"),
        support::BUSYBOX_IMAGE,
        "test",
        "-e",
        "/data/extra.txt",
    ]);
    assert!(
        !extra.status.success(),
        "an in-place restore removes what the snapshot did not hold"
    );
}

fn compose_logs(compose: &Compose) -> String {
    String::from_utf8_lossy(&compose.run(&["logs", "--no-color"]).stdout).into_owned()
}
