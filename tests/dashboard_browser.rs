//! The dashboard in a real browser: headless Chromium, driven through chromedriver, against a
//! real `marina run` with a password, a restic instance and a labelled volume on the real
//! engine. It logs in (a wrong password first), sees the instance, presses "Back up now",
//! follows the job live until it succeeds and shows its log, filters the log, and visits the
//! instance, system log, config and targets screens, on a desktop window and a phone-sized one;
//! the repository then holds the snapshot the button asked for. A second walk restores: it
//! backs a volume up, changes it, picks the snapshot on the restore screen, reads the dry run,
//! restores into a new volume and follows that job, and the new volume holds the backed-up
//! files; an in-place dry run warns and plans to stop the container that uses the volume.
//! Screenshots of every screen land in `target/screenshots/dashboard-*.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::daemon::Daemon;
use support::{VolumeGuard, docker, filled_volume, require_engine_and_images, unique_name};
use thirtyfour::common::capabilities::chromium::ChromiumLikeCapabilities as _;
use thirtyfour::prelude::*;

/// The dashboard's password: long and unusual, so it is never found by coincidence.
const AUTH_PASSWORD: &str = "dashboard-browser-pw-5Rt7";

/// The restic repository's password.
const RESTIC_PASSWORD: &str = "dashboard-restic-pw";

/// The instance the test backs up: named after this process, so that no other labelled
/// volume on the engine (another test's, a leftover) joins it.
fn instance() -> String {
    format!("web-{}", std::process::id())
}

/// This daemon's node name, as the job route shows it.
const NODE: &str = "dashboard-node";

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver child in its own process group; dropping it ends the group (chromedriver
/// and any browser it started), also when the test panics.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing; install Debian's chromium and chromium-driver (.ci/run does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless Chromium session with its profile in `profile`.
    async fn session(&self, profile: &Path) -> WebDriver {
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.display()),
        ] {
            caps.add_arg(arg).unwrap();
        }
        WebDriver::new(&self.url, caps).await.unwrap()
    }

    /// Waits until chromedriver says it can start sessions.
    async fn wait_ready(&self) {
        let status = format!("{}/status", self.url);
        for _ in 0..200 {
            if let Ok(answer) = reqwest::get(&status).await
                && let Ok(body) = answer.json::<serde_json::Value>().await
                && body["value"]["ready"] == true
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready at {status}");
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Whatever is left of the group (a browser slow to exit) goes too.
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Where screenshots go.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The driver plus the helpers the test reads it with.
struct Browser {
    driver: WebDriver,
    base: String,
}

impl Browser {
    /// Opens `hash` (`#/…`) of the dashboard.
    async fn open(&self, hash: &str) {
        self.driver
            .goto(format!("{}/{hash}", self.base))
            .await
            .unwrap();
    }

    /// The first element matching `css`, if any.
    async fn find(&self, css: &str) -> Option<WebElement> {
        self.driver.find(By::Css(css)).await.ok()
    }

    /// Clicks the first element matching `css`, which must exist.
    async fn click(&self, css: &str) {
        let element = self
            .find(css)
            .await
            .unwrap_or_else(|| panic!("nothing matches `{css}` to click"));
        element.click().await.unwrap();
    }

    /// The text of the first element matching `css`, if it exists.
    async fn text(&self, css: &str) -> Option<String> {
        self.find(css).await?.text().await.ok()
    }

    /// Attribute `name` of the first element matching `css`, if both exist.
    async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await?.attr(name).await.ok().flatten()
    }

    /// Runs `script` in the page and returns its JSON result.
    async fn eval(&self, script: &str) -> serde_json::Value {
        self.driver
            .execute(script, Vec::new())
            .await
            .unwrap()
            .json()
            .clone()
    }

    /// Polls `probe` four times a second until it answers `Some`; on timeout saves a
    /// screenshot and fails with the page's text.
    async fn wait<T>(
        &self,
        seconds: u64,
        what: &str,
        mut probe: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        for _ in 0..seconds * 4 {
            if let Some(found) = probe().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let _ = self
            .driver
            .screenshot(&screenshot_dir().join("dashboard-failure.png"))
            .await;
        let page = self.text("body").await.unwrap_or_default();
        panic!(
            "{what}: not seen within {seconds}s (screenshot dashboard-failure.png); the page says:\n{page}"
        );
    }

    /// Waits until an element matching `css` is displayed and returns it.
    async fn wait_for(&self, seconds: u64, css: &str) -> WebElement {
        self.wait(seconds, &format!("an element `{css}`"), async || {
            let element = self.find(css).await?;
            element.is_displayed().await.ok()?.then_some(element)
        })
        .await
    }

    /// Makes the page's viewport `width` × `height` CSS pixels; `mobile` also emulates a
    /// phone's viewport handling (the `viewport` meta tag, overlay scrollbars).
    async fn emulate(&self, width: u32, height: u32, mobile: bool) {
        self.driver
            .cdp()
            .emulation()
            .set_device_metrics_override(width, height, 1.0, mobile)
            .await
            .unwrap();
        // Charts redraw when their width changes; give the page a moment to settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Saves a screenshot of the whole page as `dashboard-NAME.png`: the viewport is made as
    /// tall as the page for the picture (a window cannot outgrow the virtual screen), then
    /// set back to `width` × `height`.
    async fn shot(&self, name: &str, width: u32, height: u32, mobile: bool) {
        let full = self
            .eval("return document.documentElement.scrollHeight;")
            .await
            .as_u64()
            .map_or(height, |h| u32::try_from(h).unwrap_or(height));
        self.emulate(width, full.clamp(height, 4000), mobile).await;
        self.screenshot(name).await;
        self.emulate(width, height, mobile).await;
    }

    /// Saves what the viewport shows as `dashboard-NAME.png`.
    async fn screenshot(&self, name: &str) {
        self.driver
            .screenshot(&screenshot_dir().join(format!("dashboard-{name}.png")))
            .await
            .unwrap();
    }

    /// Fails when the page is wider than the window (something does not fit a phone).
    async fn assert_no_sideways_scroll(&self, screen: &str) {
        let widths = self
            .eval("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        let (content, window) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            content <= window,
            "{screen}: the page is {content} px wide in a {window} px window"
        );
    }
}

fn config(repo: &Path) -> String {
    format!(
        "nodeName: {NODE}\nauthPassword: {AUTH_PASSWORD}\ninstances:\n  - id: {}\n    repository: {}\n    schedule: '0 3 * * *'\n    retention: '7d:4w:6m'\n    env: {{RESTIC_PASSWORD: {RESTIC_PASSWORD}}}\n",
        instance(),
        repo.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_logs_in_backs_up_follows_the_job_and_shows_every_screen() {
    require_engine_and_images();
    // Declared in this order so they are dropped in reverse: browser profile, chromedriver
    // (and its browser), Marina, the volume, the repository.
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let (volume, _volume) = filled_volume(
        &instance(),
        "set -e; mkdir -p /data/site/img; echo '<h1>hello</h1>' > /data/site/index.html; \
         head -c 65536 /dev/urandom > /data/site/img/logo.bin; echo 'a: 1' > /data/settings.yml",
    );
    // For the targets screen: a volume nothing protects, one labelled for an instance that
    // does not exist, and one whose label is misspelt.
    let plain = unique_name("plain");
    let _plain = VolumeGuard(plain.clone());
    docker(&["volume", "create", &plain]);
    let ghost = unique_name("ghost");
    let _ghost = VolumeGuard(ghost.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=ghost",
        &ghost,
    ]);
    let typo = unique_name("typo");
    let _typo = VolumeGuard(typo.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=ture",
        &typo,
    ]);
    let _ = std::fs::remove_file(screenshot_dir().join("dashboard-failure.png"));

    let marina = Daemon::start(&config(&repo));
    marina.wait_ready().await;
    let chromedriver = ChromeDriver::start();
    chromedriver.wait_ready().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.session(profile.path()).await;
    let base = marina.base_url.clone();
    let volumes = Volumes {
        target: format!("volume:{volume}"),
        plain,
        ghost,
        typo,
    };
    driver
        .run_and_quit(|driver| async move {
            let browser = Browser { driver, base };
            walk_through(&browser, &volumes).await;
            Ok::<(), WebDriverError>(())
        })
        .await
        .unwrap();

    // The backup the browser asked for is in the repository.
    let output = Command::new("restic")
        .arg("--repo")
        .arg(&repo)
        .args(["--no-cache", "snapshots", "--json", "--tag"])
        .arg(format!("instance:{}", instance()))
        .env("RESTIC_PASSWORD", RESTIC_PASSWORD)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let snapshots: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    drop(profile);
}

/// The volumes the test made, by role.
struct Volumes {
    /// `volume:NAME` of the labelled volume the instance backs up.
    target: String,
    /// A volume without labels.
    plain: String,
    /// A volume labelled for an instance that is not configured.
    ghost: String,
    /// A volume with a misspelt label value.
    typo: String,
}

/// Everything a person would do, in order.
async fn walk_through(browser: &Browser, volumes: &Volumes) {
    log_in(browser).await;
    let job = back_up_and_follow(browser, &volumes.target).await;
    visit_screens(browser, volumes).await;
    on_a_phone(browser, &job).await;
    log_out(browser).await;
}

/// The login screen: a wrong password is refused, the right one opens the overview.
async fn log_in(browser: &Browser) {
    // Login screen, with the stylesheet applied (the CSP lets the page's own assets load).
    browser.emulate(1280, 900, false).await;
    browser.open("").await;
    let password = browser.wait_for(15, "#login-password").await;
    let menu = browser.find("#topbar").await.unwrap();
    assert!(
        !menu.is_displayed().await.unwrap(),
        "the menu shows before login"
    );
    let background = browser
        .eval("return getComputedStyle(document.body).backgroundColor;")
        .await;
    assert_eq!(
        background, "rgb(245, 246, 248)",
        "the stylesheet did not load"
    );
    browser.shot("login", 1280, 900, false).await;

    // A wrong password is refused with the server's message.
    password.send_keys("not-the-password").await.unwrap();
    browser.click("#login-submit").await;
    let error = browser.wait_for(15, "#login-error").await;
    let message = error.text().await.unwrap();
    assert!(
        message.to_lowercase().contains("invalid password"),
        "login error: {message}"
    );

    // The right one opens the overview with the instance and its labelled volume.
    enter_password(browser).await;
    browser
        .wait_for(15, &format!("article[data-instance='{}']", instance()))
        .await;
    assert_eq!(browser.text("#node-name").await.as_deref(), Some(NODE));
}

/// Types the right password into the login screen and waits for the menu.
async fn enter_password(browser: &Browser) {
    let password = browser.wait_for(15, "#login-password").await;
    password.clear().await.unwrap();
    password.send_keys(AUTH_PASSWORD).await.unwrap();
    browser.click("#login-submit").await;
    browser.wait_for(15, "#topbar").await;
}

/// Presses "Back up now" and follows the job to its end; returns the job's `#` route.
async fn back_up_and_follow(browser: &Browser, target: &str) -> String {
    // The card shows the labelled volume once Marina has seen it, and no job yet.
    let card = format!("article[data-instance='{}']", instance());
    browser
        .wait_for(30, &format!("{card} [data-target='{target}']"))
        .await;
    assert_eq!(
        browser
            .attr(&format!("{card} .badge"), "data-job-status")
            .await
            .as_deref(),
        Some("never")
    );

    // "Back up now" leads to the job, followed live until it succeeds.
    browser
        .click(&format!("{card} [data-action='backup']"))
        .await;
    let url = follow_job_to_success(browser).await;
    assert_eq!(
        browser.text("#job-status").await.as_deref(),
        Some("success")
    );
    browser
        .wait(15, "the backup summary in the job log", async || {
            let log = browser.text("#job-log").await?;
            log.contains("Target backed up").then_some(())
        })
        .await;
    browser
        .wait(15, "the live view to stop", async || {
            (browser.text("#job-live").await? == "Finished").then_some(())
        })
        .await;
    assert_eq!(
        browser.text("#job-targets").await.as_deref(),
        Some("1 of 1 succeeded")
    );
    assert_eq!(
        browser.attr("#job-kind", "data-kind").await.as_deref(),
        Some("backup")
    );
    let log = browser.text("#job-log").await.unwrap();
    assert!(log.contains(target), "the log names the target:\n{log}");
    browser.shot("job", 1280, 900, false).await;

    filter_the_log(browser, target).await;
    url
}

/// Waits for the job screen a button led to, then until the job ends; fails with the job's
/// log unless it succeeded. Returns the job's `#` route.
async fn follow_job_to_success(browser: &Browser) -> String {
    let url = browser
        .wait(15, "the job detail screen", async || {
            let url = browser.driver.current_url().await.ok()?;
            let fragment = url.fragment()?.to_owned();
            fragment
                .starts_with(&format!("/jobs/{NODE}/"))
                .then_some(fragment)
        })
        .await;
    let status = browser
        .wait(300, "the job to finish", async || {
            let status = browser.attr("#job-status", "data-job-status").await?;
            [
                "success",
                "partial_success",
                "failed",
                "aborted",
                "timed_out",
            ]
            .contains(&status.as_str())
            .then_some(status)
        })
        .await;
    let log = browser.text("#job-log").await.unwrap_or_default();
    assert_eq!(
        status, "success",
        "job {url} ended {status}; its log:\n{log}"
    );
    url
}

/// The job log's filters: the target select offers the volume; ERROR-only hides the INFO
/// lines.
async fn filter_the_log(browser: &Browser, target: &str) {
    assert!(
        browser
            .find(&format!("#log-target option[value='{target}']"))
            .await
            .is_some()
    );
    let info_lines = browser
        .driver
        .find_all(By::Css("#job-log .log-line[data-level='INFO']"))
        .await
        .unwrap()
        .len();
    assert!(info_lines > 0);
    browser.click("#log-level option[value='ERROR']").await;
    browser
        .wait(5, "the level filter", async || {
            browser
                .find("#job-log .log-line[data-level='INFO']")
                .await
                .is_none()
                .then_some(())
        })
        .await;
    browser.click("#log-level option[value='DEBUG']").await;
    browser
        .wait_for(5, "#job-log .log-line[data-level='INFO']")
        .await;

    // One target: only that target's lines stay; lines of the job as a whole go.
    browser
        .click(&format!("#log-target option[value='{target}']"))
        .await;
    browser
        .wait(5, "the target filter", async || {
            let lines = browser
                .driver
                .find_all(By::Css("#job-log .log-line"))
                .await
                .ok()?;
            let mut targets = Vec::new();
            for line in &lines {
                targets.push(line.attr("data-target").await.ok()??);
            }
            (!targets.is_empty() && targets.iter().all(|t| t == target)).then_some(())
        })
        .await;
    browser.click("#log-target option[value='']").await;
    browser
        .wait(5, "all lines again", async || {
            let shown = browser
                .driver
                .find_all(By::Css("#job-log .log-line"))
                .await
                .ok()?
                .len();
            (shown > 1).then_some(())
        })
        .await;
}

/// The instance, system log, config, targets and overview screens on a desktop window.
async fn visit_screens(browser: &Browser, volumes: &Volumes) {
    let target = volumes.target.as_str();
    // The instance's history and chart.
    browser.open(&format!("#/instances/{}", instance())).await;
    browser
        .wait_for(15, "#job-history [data-job-status='success']")
        .await;
    browser
        .wait_for(15, "#job-history tr[data-kind='backup']")
        .await;
    browser
        .wait_for(15, "#instance-chart rect.bar-success")
        .await;
    browser.shot("instance", 1280, 900, false).await;

    // System logs, config, targets, through the navigation bar.
    browser.click("[data-nav='logs']").await;
    browser.wait_for(15, "#system-log .log-line").await;
    browser.shot("system-logs", 1280, 900, false).await;

    browser.click("[data-nav='config']").await;
    let state = browser.wait_for(15, "#config-state").await;
    assert_eq!(
        state.attr("data-state").await.unwrap().as_deref(),
        Some("accepted")
    );
    assert_eq!(
        browser.text("#config-generation").await.as_deref(),
        Some("1")
    );
    browser.shot("config", 1280, 900, false).await;

    browser.click("[data-nav='targets']").await;
    browser
        .wait_for(15, &format!("#targets-all tr[data-target='{target}']"))
        .await;
    browser
        .wait_for(
            15,
            &format!("#targets-unprotected [data-volume='{}']", volumes.plain),
        )
        .await;
    let unassigned = browser.text("#targets-unassigned").await.unwrap();
    assert!(
        unassigned.contains(&volumes.ghost) && unassigned.contains("ghost"),
        "{unassigned}"
    );
    let invalid = browser.text("#targets-invalid").await.unwrap();
    assert!(
        invalid.contains(&volumes.typo) && invalid.contains("ture"),
        "{invalid}"
    );
    browser.shot("targets", 1280, 900, false).await;

    // The overview now shows the success, and the chart across instances has its bar.
    browser.click("[data-nav='overview']").await;
    let card = format!("article[data-instance='{}']", instance());
    browser
        .wait_for(
            15,
            &format!("{card} .card-head [data-job-status='success']"),
        )
        .await;
    browser
        .wait_for(15, "#overview-chart rect.bar-success")
        .await;
    browser.shot("overview", 1280, 900, false).await;

    // The same in a browser that prefers a dark theme.
    let dark = |value: &str| serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] });
    let cdp = browser.driver.cdp();
    cdp.send_raw("Emulation.setEmulatedMedia", dark("dark"))
        .await
        .unwrap();
    browser.shot("overview-dark", 1280, 900, false).await;
    cdp.send_raw("Emulation.setEmulatedMedia", dark("light"))
        .await
        .unwrap();
}

/// The overview, a job, an instance and the targets at 390 × 844.
async fn on_a_phone(browser: &Browser, url: &str) {
    let card = format!("article[data-instance='{}']", instance());
    // A phone: the same screens fit 390 px without sideways scrolling.
    browser.emulate(390, 844, true).await;
    browser
        .wait_for(15, &format!("{card} [data-action='backup']"))
        .await;
    browser.assert_no_sideways_scroll("overview").await;
    browser.screenshot("overview-phone").await;
    browser.shot("overview-phone-full", 390, 844, true).await;
    browser.open(&format!("#{url}")).await;
    browser.wait_for(15, "#job-log .log-line").await;
    browser.assert_no_sideways_scroll("job detail").await;
    browser.shot("job-phone", 390, 844, true).await;
    browser.open(&format!("#/instances/{}", instance())).await;
    browser.wait_for(15, "#job-history").await;
    browser.assert_no_sideways_scroll("instance").await;
    browser.shot("instance-phone", 390, 844, true).await;
    browser.open("#/targets").await;
    browser.wait_for(15, "#targets-unprotected").await;
    browser.assert_no_sideways_scroll("targets").await;
    browser.shot("targets-phone", 390, 844, true).await;
    browser.emulate(1280, 900, false).await;
}

/// Logging out returns to the login screen, and so does any screen afterwards.
async fn log_out(browser: &Browser) {
    browser.open("").await;
    browser.wait_for(15, "#logout").await.click().await.unwrap();
    browser.wait_for(15, "#login-password").await;
    browser.open("#/targets").await;
    browser.wait_for(15, "#login-password").await;
}

/// The instance the restore walk uses: its own, so the other walk's labelled volume never
/// joins it, and named after this process like that one.
fn restore_instance() -> String {
    format!("files-{}", std::process::id())
}

/// The restore walk's config: one instance backing up `volume`, named in the config.
fn restore_config(repo: &Path, volume: &str) -> String {
    format!(
        "nodeName: {NODE}\nauthPassword: {AUTH_PASSWORD}\ninstances:\n  - id: {}\n    repository: {}\n    schedule: '0 3 * * *'\n    env: {{RESTIC_PASSWORD: {RESTIC_PASSWORD}}}\n    targets:\n      - volume: {volume}\n",
        restore_instance(),
        repo.display()
    )
}

/// What the volume holds when it is backed up.
const BACKED_UP: &str = "set -e; mkdir -p /data/site/img /data/empty; \
    echo '<h1>as backed up</h1>' > /data/site/index.html; \
    head -c 65536 /dev/urandom > /data/site/img/logo.bin; \
    echo 'a: 1' > /data/settings.yml; chmod 0600 /data/settings.yml";

/// What an operator did after the backup: a changed, a deleted and an added file.
const CHANGED: &str = "set -e; echo '<h1>broken</h1>' > /data/site/index.html; \
    rm /data/site/img/logo.bin; echo junk > /data/junk.txt";

/// Runs `script` in busybox with `volume` at /data.
fn change(volume: &str, script: &str) {
    let name = unique_name("change");
    let _container = support::ContainerGuard(name.clone());
    docker(&[
        "run",
        "--name",
        &name,
        "-v",
        &format!("{volume}:/data"),
        support::BUSYBOX_IMAGE,
        "sh",
        "-c",
        script,
    ]);
}

/// Where the engine keeps `volume`'s files (the test runs as root and reads them there).
fn mountpoint(volume: &str) -> PathBuf {
    PathBuf::from(docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

/// Every entry of `volume`: its path, and for a file its size, a digest of its bytes and its
/// mode; for a directory `dir`.
fn files_of(volume: &str) -> BTreeMap<String, String> {
    let root = mountpoint(volume);
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            if meta.is_dir() {
                pending.push(path);
                entries.insert(name, "dir".to_owned());
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
                    (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
                });
                entries.insert(
                    name,
                    format!(
                        "file {} bytes {digest:x} mode {:o}",
                        bytes.len(),
                        meta.mode() & 0o7777
                    ),
                );
            }
        }
    }
    entries
}

/// The restore walk's volumes and repository.
struct RestoreSetup {
    /// The volume backed up, changed, and restored.
    volume: String,
    /// The new volume the restore makes.
    copy: String,
    /// The repository, to read the snapshot's id from restic itself.
    repo: PathBuf,
}

#[tokio::test(flavor = "multi_thread")]
async fn the_restore_screen_shows_the_snapshots_and_the_dry_run_and_restores_into_a_new_volume() {
    require_engine_and_images();
    // Dropped in reverse: browser profile, chromedriver, Marina, the volumes, the repository.
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let (volume, _volume) = support::plain_volume(BACKED_UP);
    let copy = format!("{volume}-copy");
    let _copy = VolumeGuard(copy.clone());

    let marina = Daemon::start(&restore_config(&repo, &volume));
    marina.wait_ready().await;
    let chromedriver = ChromeDriver::start();
    chromedriver.wait_ready().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = chromedriver.session(profile.path()).await;
    let base = marina.base_url.clone();
    let setup = RestoreSetup {
        volume: volume.clone(),
        copy: copy.clone(),
        repo,
    };
    driver
        .run_and_quit(|driver| async move {
            let browser = Browser { driver, base };
            restore_walk(&browser, &setup).await;
            Ok::<(), WebDriverError>(())
        })
        .await
        .unwrap();

    // The dry runs made nothing: no volume of the default name was created.
    let made = docker(&[
        "volume",
        "ls",
        "--quiet",
        "--filter",
        &format!("name={volume}-restore-"),
    ]);
    assert!(made.trim().is_empty(), "a dry run created volumes: {made}");
    drop(profile);
}

/// Backs up, changes the volume, restores it into a new volume through the restore screen,
/// and dry-runs an in-place restore while a container uses the volume.
async fn restore_walk(browser: &Browser, setup: &RestoreSetup) {
    let id = restore_instance();
    let target = format!("volume:{}", setup.volume);
    browser.emulate(1280, 900, false).await;
    browser.open("").await;
    enter_password(browser).await;

    // A backup through the instance screen's button.
    browser.open(&format!("#/instances/{id}")).await;
    browser
        .wait_for(
            30,
            &format!("[data-target='{target}'] [data-action='restore']"),
        )
        .await;
    browser.click("[data-action='backup']").await;
    follow_job_to_success(browser).await;
    let backed_up = files_of(&setup.volume);
    assert!(
        backed_up.contains_key("site/img/logo.bin") && backed_up.len() >= 6,
        "{backed_up:#?}"
    );
    change(&setup.volume, CHANGED);
    let changed = files_of(&setup.volume);
    assert_ne!(changed, backed_up);

    let (snapshot_id, short_id) = open_restore_screen(browser, setup).await;

    into_a_new_volume(browser, setup, &short_id).await;
    let restored = files_of(&setup.copy);
    assert_eq!(
        restored, backed_up,
        "the new volume holds the backed-up files"
    );
    let page = std::fs::read_to_string(mountpoint(&setup.copy).join("site/index.html")).unwrap();
    assert_eq!(page, "<h1>as backed up</h1>\n");
    assert_eq!(
        files_of(&setup.volume),
        changed,
        "the original volume is untouched"
    );

    // The instance's history shows the restore as a restore, with where it went.
    browser.open(&format!("#/instances/{id}")).await;
    let restore_row = browser
        .wait_for(15, "#job-history tr[data-kind='restore']")
        .await;
    let restore_text = restore_row.text().await.unwrap();
    assert!(
        restore_text.contains(&target) && restore_text.contains(&setup.copy),
        "the history's restore row: {restore_text}"
    );
    browser
        .wait_for(15, "#job-history tr[data-kind='backup']")
        .await;
    browser.shot("instance-restore", 1280, 900, false).await;

    in_place_dry_run(browser, setup, &snapshot_id, &changed).await;

    // An instance this node does not have: the screen says so.
    browser
        .open("#/instances/no-such-instance/restore/volume%3Anothing")
        .await;
    let problem = browser
        .wait_for(15, "#restore-list-error")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        problem.contains("no-such-instance") && problem.contains("configured"),
        "{problem}"
    );
}

/// Follows the target's "Restore…" from the instance screen to its restore screen, which lists
/// the one snapshot restic has; returns that snapshot's id and short id.
async fn open_restore_screen(browser: &Browser, setup: &RestoreSetup) -> (String, String) {
    let id = restore_instance();
    let target = format!("volume:{}", setup.volume);
    // The target's "Restore…" leads to its restore screen, which lists the one snapshot.
    browser.open(&format!("#/instances/{id}")).await;
    browser
        .wait_for(
            15,
            &format!("[data-target='{target}'] [data-action='restore']"),
        )
        .await
        .click()
        .await
        .unwrap();
    let route = format!("/instances/{id}/restore/volume%3A{}", setup.volume);
    browser
        .wait(15, "the restore screen's route", async || {
            let url = browser.driver.current_url().await.ok()?;
            (url.fragment()? == route).then_some(())
        })
        .await;
    let snapshots = support::restore::snapshots(&setup.repo, RESTIC_PASSWORD);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let snapshot_id = snapshots[0]["id"].as_str().unwrap().to_owned();
    let short_id = snapshots[0]["short_id"].as_str().unwrap().to_owned();
    let row = browser
        .wait_for(
            60,
            &format!("#restore-snapshots tr[data-snapshot='{snapshot_id}']"),
        )
        .await;
    let row_text = row.text().await.unwrap();
    assert!(
        row_text.contains(&short_id) && row_text.contains(NODE),
        "the snapshot's row: {row_text}"
    );
    assert_eq!(
        browser.text("#restore-snapshot-count").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        row.attr("data-pre-restore").await.unwrap().as_deref(),
        Some("false")
    );
    let start = browser.find("#restore-start").await.unwrap();
    assert!(
        !start.is_enabled().await.unwrap(),
        "Restore is enabled before a snapshot is picked"
    );
    (snapshot_id, short_id)
}

/// The actions of the dry run's steps, in order, with their text.
async fn plan_steps(browser: &Browser) -> Vec<(String, String)> {
    let mut steps = Vec::new();
    for step in browser
        .driver
        .find_all(By::Css("#restore-steps li"))
        .await
        .unwrap()
    {
        let action = step.attr("data-action").await.unwrap().unwrap_or_default();
        steps.push((action, step.text().await.unwrap()));
    }
    steps
}

/// Waits until the dry run's panel is in `state` with `destination`.
async fn wait_plan(browser: &Browser, state: &str, destination: &str) {
    browser
        .wait(
            120,
            &format!("a dry run `{state}` into {destination}"),
            async || {
                let shown = browser.attr("#restore-plan", "data-state").await?;
                let into = browser.text("#restore-destination").await?;
                (shown == state && into == destination).then_some(())
            },
        )
        .await;
}

/// Replaces the new volume's name with `name`, as a person types it.
async fn type_name(browser: &Browser, name: &str) {
    let field = browser.find("#restore-to").await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(name).await.unwrap();
}

/// Picks the snapshot, reads the dry run (with its proposed name, then a name that exists,
/// then the test's own), confirms, and follows the restore job to its success.
async fn into_a_new_volume(browser: &Browser, setup: &RestoreSetup, short_id: &str) {
    browser
        .click(&format!("#restore-snapshot-{short_id}"))
        .await;
    // The dry run proposes a name of its own and fills it in.
    let proposed = browser
        .wait(120, "the dry run's proposed name", async || {
            let state = browser.attr("#restore-plan", "data-state").await?;
            let name = browser.find("#restore-to").await?.value().await.ok()??;
            (state == "ready" && !name.is_empty()).then_some(name)
        })
        .await;
    assert!(
        proposed.starts_with(&format!("{}-restore-", setup.volume)),
        "{proposed}"
    );
    assert_eq!(
        browser.text("#restore-destination").await.as_deref(),
        Some(proposed.as_str())
    );
    let steps = plan_steps(browser).await;
    let actions: Vec<&str> = steps.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["create volume", "restore files"], "{steps:?}");
    assert!(
        steps[1].1.contains(short_id) && steps[1].1.contains(&proposed),
        "{steps:?}"
    );
    let files: u64 = browser
        .text("#restore-files")
        .await
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(files >= 6, "the dry run counts {files} files");
    assert!(browser.find("#restore-no-conflicts").await.is_some());
    let start = browser.find("#restore-start").await.unwrap();
    assert!(
        start.is_enabled().await.unwrap(),
        "Restore stays disabled after a dry run without conflicts"
    );

    // A name that exists is a conflict, and Restore cannot be pressed.
    type_name(browser, &setup.volume).await;
    wait_plan(browser, "conflicts", &setup.volume).await;
    let conflicts = browser.text("#restore-conflicts").await.unwrap();
    assert!(conflicts.contains("exists"), "{conflicts}");
    assert!(
        !start.is_enabled().await.unwrap(),
        "Restore is enabled while the dry run has conflicts"
    );
    browser.shot("restore-conflict", 1280, 900, false).await;

    // The test's own name: no conflict.
    type_name(browser, &setup.copy).await;
    wait_plan(browser, "ready", &setup.copy).await;
    assert!(
        start.is_enabled().await.unwrap(),
        "Restore stays disabled after a dry run without conflicts"
    );
    browser.shot("restore", 1280, 900, false).await;
    confirm_and_follow(browser, setup, short_id).await;
}

/// "Restore…" asks first; Escape takes the question back, the keyboard asks again and
/// confirms; the job screen then follows the restore to its success.
async fn confirm_and_follow(browser: &Browser, setup: &RestoreSetup, short_id: &str) {
    let target = format!("volume:{}", setup.volume);
    let start = browser.find("#restore-start").await.unwrap();
    start.click().await.unwrap();
    let question = browser.wait_for(5, "#restore-confirm").await;
    let asked = question.text().await.unwrap();
    assert!(
        asked.contains(&setup.copy) && asked.contains(short_id),
        "{asked}"
    );
    browser.screenshot("restore-confirm").await;
    browser
        .find("#restore-confirm-yes")
        .await
        .unwrap()
        .send_keys(Key::Escape)
        .await
        .unwrap();
    browser
        .wait(5, "the question to close", async || {
            let open = browser
                .find("#restore-confirm")
                .await?
                .is_displayed()
                .await
                .ok()?;
            (!open).then_some(())
        })
        .await;
    assert_eq!(
        browser.eval("return document.activeElement.id;").await,
        "restore-start"
    );
    start.send_keys(Key::Enter).await.unwrap();
    browser.wait_for(5, "#restore-confirm").await;
    assert_eq!(
        browser.eval("return document.activeElement.id;").await,
        "restore-confirm-yes"
    );
    browser
        .find("#restore-confirm-yes")
        .await
        .unwrap()
        .send_keys(Key::Enter)
        .await
        .unwrap();

    // The job screen follows the restore; it says what is restored, from where and into what.
    follow_job_to_success(browser).await;
    assert_eq!(
        browser.attr("#job-kind", "data-kind").await.as_deref(),
        Some("restore")
    );
    assert_eq!(
        browser.text("#job-restore-target").await.as_deref(),
        Some(target.as_str())
    );
    assert_eq!(
        browser.text("#job-restore-snapshot").await.as_deref(),
        Some(short_id)
    );
    let destination = browser.text("#job-restore-destination").await.unwrap();
    assert_eq!(destination, format!("into new volume {}", setup.copy));
    browser
        .wait(15, "the restore's lines in the job log", async || {
            let log = browser.text("#job-log").await?;
            (log.contains(&format!("Restoring {target}")) && log.contains(&setup.copy))
                .then_some(())
        })
        .await;
    browser
        .wait(15, "the live view to stop", async || {
            (browser.text("#job-live").await? == "Finished").then_some(())
        })
        .await;
    browser.shot("restore-job", 1280, 900, false).await;
}

/// With a container using the volume, an in-place dry run warns, plans to stop and start
/// the container around a safety snapshot, and changes nothing; the screen fits a phone.
async fn in_place_dry_run(
    browser: &Browser,
    setup: &RestoreSetup,
    snapshot_id: &str,
    changed: &BTreeMap<String, String>,
) {
    let (app, _app) = support::running_app(&format!("{}:/data", setup.volume));
    browser
        .open(&format!(
            "#/instances/{}/restore/volume%3A{}",
            restore_instance(),
            setup.volume
        ))
        .await;
    // Everything by keyboard: Space picks the snapshot, an arrow key the other mode.
    let radio = browser
        .wait_for(
            60,
            &format!("#restore-snapshots input[value='{snapshot_id}']"),
        )
        .await;
    radio.send_keys(Key::Space).await.unwrap();
    let warning = browser.find("#restore-in-place-warning").await.unwrap();
    assert!(!warning.is_displayed().await.unwrap());
    browser
        .find("#restore-mode-new")
        .await
        .unwrap()
        .send_keys(Key::Down)
        .await
        .unwrap();
    browser.wait_for(5, "#restore-in-place-warning").await;
    let words = warning.text().await.unwrap();
    assert!(
        words.contains("stopped")
            && words.contains("safety snapshot")
            && words.contains("replaced"),
        "{words}"
    );
    assert!(
        !browser
            .find("#restore-to-field")
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "the new volume's name shows for an in-place restore"
    );
    wait_plan(browser, "ready", &setup.volume).await;
    let steps = plan_steps(browser).await;
    let actions: Vec<&str> = steps.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "stop container",
            "save safety snapshot",
            "replace content",
            "restore files",
            "start container"
        ],
        "{steps:?}"
    );
    assert!(steps[0].1.contains(&app), "{steps:?}");
    assert!(
        browser
            .text("#restore-destination-kind")
            .await
            .unwrap()
            .contains("in place"),
    );
    browser.click("#restore-start").await;
    let confirm = browser.wait_for(5, "#restore-confirm-yes").await;
    assert_eq!(
        confirm.text().await.unwrap(),
        format!("Replace {}", setup.volume)
    );
    browser.shot("restore-in-place", 1280, 900, false).await;
    browser.click("#restore-confirm-no").await;

    // On a phone the screen fits without sideways scrolling.
    browser.emulate(390, 844, true).await;
    browser.wait_for(5, "#restore-steps").await;
    browser.assert_no_sideways_scroll("restore").await;
    browser.shot("restore-phone", 390, 844, true).await;
    browser.emulate(1280, 900, false).await;

    // Nothing happened: the container runs and the volume holds what it held.
    assert_eq!(support::state_of(&app), "running");
    assert_eq!(&files_of(&setup.volume), changed);
}
