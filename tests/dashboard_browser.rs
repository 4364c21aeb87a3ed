//! The dashboard in a real browser: headless Chromium, driven through chromedriver, against a
//! real `marina run` with a password, a restic instance and a labelled volume on the real
//! engine. It logs in (a wrong password first), sees the instance, presses "Back up now",
//! follows the job live until it succeeds and shows its log, filters the log, and visits the
//! instance, system log, config and targets screens, on a desktop window and a phone-sized one;
//! the repository then holds the snapshot the button asked for. Screenshots of every screen
//! land in `target/screenshots/dashboard-*.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::net::TcpListener;
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
        &format!("--user-data-dir={}", profile.path().display()),
    ] {
        caps.add_arg(arg).unwrap();
    }
    let driver = WebDriver::new(&chromedriver.url, caps).await.unwrap();
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
    let password = browser.find("#login-password").await.unwrap();
    password.clear().await.unwrap();
    password.send_keys(AUTH_PASSWORD).await.unwrap();
    browser.click("#login-submit").await;
    browser
        .wait_for(15, &format!("article[data-instance='{}']", instance()))
        .await;
    assert_eq!(browser.text("#node-name").await.as_deref(), Some(NODE));
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
    let log = browser.text("#job-log").await.unwrap();
    assert!(log.contains(target), "the log names the target:\n{log}");
    browser.shot("job", 1280, 900, false).await;

    filter_the_log(browser, target).await;
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
