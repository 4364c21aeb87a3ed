//! Helpers for black-box tests against the real Docker engine (TESTING.md): unique names so
//! parallel tests and leftovers never collide, and guards that remove what a test created
//! even when it fails.

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The busybox scratch image built by `scripts/test-images.sh`.
pub const BUSYBOX_IMAGE: &str = "marina-test/busybox:latest";

/// Every Docker object a test creates carries this prefix, so leftovers are easy to find.
pub const PREFIX: &str = "marina-test";

/// A TCP port nothing listens on right now (on every address, for host-mode publishing).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// A name no other test (or earlier run) uses: prefix, process id, counter.
pub fn unique_name(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}-{what}-{}-{n}", std::process::id())
}

/// Runs `docker` with `args`, failing the test with the command's stderr if it fails.
pub fn docker(args: &[&str]) -> String {
    let output = docker_output(args);
    assert!(
        output.status.success(),
        "`docker {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `docker` with `args` and returns whatever happened.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker CLI: {e}"))
}

/// Fails the test early, with the fix, when the engine or the test images are missing.
pub fn require_engine_and_images() {
    let info = docker_output(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        info.status.success(),
        "no Docker engine answers (`docker info` failed: {}); start one, e.g. by running .ci/run",
        String::from_utf8_lossy(&info.stderr).trim()
    );
    let image = docker_output(&["image", "inspect", BUSYBOX_IMAGE]);
    assert!(
        image.status.success(),
        "test image {BUSYBOX_IMAGE} is missing; build it with `make test-images`"
    );
}

/// Removes a container when dropped.
pub struct ContainerGuard(pub String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker_output(&["rm", "--force", "--volumes", &self.0]);
    }
}

/// Removes a volume when dropped.
pub struct VolumeGuard(pub String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = docker_output(&["volume", "rm", "--force", &self.0]);
    }
}

/// The database image built by `scripts/test-images.sh`: `docker run marina-test/db KIND`
/// starts a real postgres, mariadb or redis server.
pub const DB_IMAGE: &str = "marina-test/db:latest";

/// Runs `docker exec` in `container` until `args` succeeds, for about `seconds`; fails the
/// test with the container's logs otherwise.
pub fn wait_until_exec_succeeds(container: &str, args: &[&str], seconds: u64) {
    let mut command = vec!["exec", container];
    command.extend_from_slice(args);
    // Four attempts a second; counting attempts keeps the clock out of the tests.
    for _ in 0..seconds * 4 {
        if docker_output(&command).status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let logs = docker_output(&["logs", "--tail", "50", container]);
    panic!(
        "`{}` did not succeed in {container} within {seconds}s; its logs:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
}

/// Runs `docker` with `args` off the async runtime's threads, failing the test if it fails.
pub async fn docker_async(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args)
    })
    .await
    .unwrap_or_else(|e| panic!("the docker CLI task failed: {e}"))
}

/// Receives inventory changes from a Docker watch until `pick` returns `Some`, skipping the
/// rest (other tests create objects too); fails the test when nothing matches within
/// `seconds` or the watch stops.
pub async fn next_change<T>(
    inbox: &mut tokio::sync::mpsc::Receiver<marina::reconcile::Message>,
    seconds: u64,
    what: &str,
    mut pick: impl FnMut(&marina::model::InventoryChange) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match inbox.recv().await {
                Some(marina::reconcile::Message::Inventory(change)) => {
                    if let Some(found) = pick(&change) {
                        return found;
                    }
                }
                Some(_) => {}
                None => panic!("the Docker watch stopped while waiting for {what}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(seconds), wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {seconds}s"))
}

/// Shows Marina's own logs (debug and up) in a failing test's captured output.
pub fn show_marina_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("marina=debug")
        .with_test_writer()
        .try_init();
}

/// A real `marina run` process.
pub mod api;
pub mod daemon;
pub mod restore;

/// Removes a local image when dropped.
pub struct ImageGuard(pub String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = docker_output(&["image", "rm", "--force", &self.0]);
    }
}

/// Builds the local image `tag` (no registry involved) from `dockerfile` and executable
/// `files` (name, contents) placed beside it; the guard removes the image.
pub fn build_image(tag: &str, dockerfile: &str, files: &[(&str, &str)]) -> ImageGuard {
    build_image_with(tag, dockerfile, files, &[])
}

/// [`build_image`] with more `docker build` options.
pub fn build_image_with(
    tag: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
    options: &[&str],
) -> ImageGuard {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("a temporary build context");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("writing the Dockerfile");
    for (name, contents) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("writing a build file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("making a build file executable");
    }
    let guard = ImageGuard(tag.to_owned());
    let output = Command::new("docker")
        .args(["build", "--quiet", "--tag", tag])
        .args(options)
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker CLI: {e}"));
    assert!(
        output.status.success(),
        "building test image {tag} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    guard
}

/// Builds the example custom backend of `examples/custom-backup-image/` from its own
/// Dockerfile and scripts, with its one `FROM` line swapped for the local busybox image (no
/// registry is reachable here); the guard removes the image.
pub fn build_custom_example_image() -> (String, ImageGuard) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/custom-backup-image");
    let dockerfile =
        std::fs::read_to_string(dir.join("Dockerfile")).expect("the example's Dockerfile");
    assert_eq!(
        dockerfile
            .lines()
            .filter(|l| l.starts_with("FROM "))
            .count(),
        1,
        "the example's Dockerfile has one FROM line to swap:\n{dockerfile}"
    );
    let local: Vec<String> = dockerfile
        .lines()
        .map(|line| {
            if line.starts_with("FROM ") {
                format!("FROM {BUSYBOX_IMAGE}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    let scripts: Vec<(String, String)> = ["backup.sh", "restore.sh"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).expect("an example script");
            ((*name).to_owned(), text)
        })
        .collect();
    let files: Vec<(&str, &str)> = scripts
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let tag = format!("marina-test/custom-example:{}", unique_name("img"));
    // Not from the build cache: the tests of a binary build this same image at once, and
    // one test removing its image must not take layers from under another's build.
    let guard = build_image_with(&tag, &local.join("\n"), &files, &["--no-cache"]);
    (tag, guard)
}

/// The ids of all containers (any state) carrying `label` (`key` or `key=value`).
pub fn containers_with_label(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    docker(&["ps", "--all", "--quiet", "--no-trunc", "--filter", &filter])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits (about `seconds`) until `check` holds, polling four times a second off the async
/// runtime's threads; fails the test with `what` otherwise.
pub async fn eventually(seconds: u64, what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..seconds * 4 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("{what} did not happen within {seconds}s");
}

/// Creates a labelled volume for `instance` filled by `script` (run in busybox with the
/// volume at /data).
pub fn filled_volume(instance: &str, script: &str) -> (String, VolumeGuard) {
    let volume = unique_name("vol");
    let guard = VolumeGuard(volume.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        &format!("dev.polarfox.marina.instanceID={instance}"),
        &volume,
    ]);
    fill(&volume, script);
    (volume, guard)
}

/// Creates a volume without labels (a config target names it) filled by `script` (run in
/// busybox with the volume at /data).
pub fn plain_volume(script: &str) -> (String, VolumeGuard) {
    let volume = unique_name("vol");
    let guard = VolumeGuard(volume.clone());
    docker(&["volume", "create", &volume]);
    fill(&volume, script);
    (volume, guard)
}

/// Runs `script` in busybox with `volume` at /data.
fn fill(volume: &str, script: &str) {
    let filler = unique_name("fill");
    let _filler = ContainerGuard(filler.clone());
    docker(&[
        "run",
        "--name",
        &filler,
        "-v",
        &format!("{volume}:/data"),
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        script,
    ]);
}

/// Starts an application container with `mount` (`docker run -v` syntax, e.g.
/// `vol:/data:ro`) that runs until it is stopped (it exits at once on SIGTERM). Returns its
/// name and the guard that removes it.
pub fn running_app(mount: &str) -> (String, ContainerGuard) {
    let name = unique_name("app");
    let guard = ContainerGuard(name.clone());
    docker(&[
        "run",
        "--detach",
        "--name",
        &name,
        "-v",
        mount,
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    (name, guard)
}

/// `docker inspect`'s state of a container: `running`, `exited`, …
pub fn state_of(container: &str) -> String {
    docker(&["inspect", "--format", "{{.State.Status}}", container])
        .trim()
        .to_owned()
}

/// The names in `dir` (none when it does not exist).
pub fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes an executable script (a wrapper around a tool, say) at `path`.
pub fn write_executable(path: &std::path::Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;

    std::fs::write(path, contents).expect("writing a script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("making a script executable");
}
