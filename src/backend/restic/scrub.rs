//! Keeping secrets out of what restic prints: the scrubber that replaces the repository (in
//! every form restic writes it) and every `env` value, and the one-line summaries and hints
//! that error messages are built from.

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitStatus;

use crate::model::Secret;

/// Lines of restic's stderr quoted in an error message.
const MESSAGE_LINES: usize = 10;
/// Backends whose repository strings restic also prints without their `name:` prefix.
const LOCATION_PREFIXES: [&str; 9] = [
    "local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone",
];

/// Replaces every secret in a text: the repository (in the forms restic prints it) and every
/// instance `env` value.
#[derive(Clone)]
pub(super) struct Scrubber {
    /// What to replace and with what, longest first so that a secret containing another is
    /// replaced whole.
    pub(super) needles: Vec<(String, &'static str)>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrubber(***)")
    }
}

impl Scrubber {
    pub(super) fn new(repository: &Secret, env: &BTreeMap<String, Secret>) -> Self {
        let mut needles: Vec<(String, &'static str)> = repository_forms(repository.expose())
            .into_iter()
            .map(|form| (form, "<repository>"))
            .collect();
        // Every value, however short: a garbled message is better than a leaked secret.
        needles.extend(env.values().map(|value| (value.expose().to_owned(), "***")));
        needles.retain(|(needle, _)| !needle.is_empty());
        needles.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        needles.dedup_by(|a, b| a.0 == b.0);
        Self { needles }
    }

    pub(super) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (needle, replacement) in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), replacement);
            }
        }
        text
    }
}

/// The repository string and the parts of it restic may print on their own.
pub(super) fn repository_forms(repository: &str) -> Vec<String> {
    let mut forms = vec![
        repository.to_owned(),
        repository.trim_end_matches('/').to_owned(),
    ];
    // `local:/srv/repo` shows up as `/srv/repo/config`, `rest:http://…` as `http://…`.
    if let Some((prefix, rest)) = repository.split_once(':')
        && LOCATION_PREFIXES.contains(&prefix)
    {
        forms.push(rest.to_owned());
        forms.push(rest.trim_end_matches('/').to_owned());
    }
    // restic prints URLs as `user:***@host`: the password is hidden, the user name is not.
    if let Some((_, after_scheme)) = repository.split_once("://") {
        let authority = after_scheme.split('/').next().unwrap_or_default();
        if let Some((userinfo, _host)) = authority.rsplit_once('@') {
            forms.push(userinfo.to_owned());
            if let Some((user, password)) = userinfo.split_once(':') {
                forms.push(password.to_owned());
                // A user name of one or two letters would garble every message; it is not
                // the secret part.
                if user.len() > 2 {
                    forms.push(user.to_owned());
                }
            }
        }
    }
    forms
}

/// restic's stderr as one line: no blank lines, no location hint (it repeats the repository),
/// no `Fatal: ` prefixes, at most the last [`MESSAGE_LINES`] lines; a Go panic becomes its
/// first line.
pub(super) fn summarize(text: &str) -> String {
    if let Some(panic) = text.lines().find(|line| line.starts_with("panic:")) {
        return format!("restic crashed: {}", panic.trim());
    }
    let mut lines = Vec::new();
    let mut skip_location = false;
    for line in text.lines().map(str::trim) {
        if std::mem::take(&mut skip_location) || line.is_empty() {
            continue;
        }
        if line.starts_with("Is there a repository at the following location?") {
            skip_location = true;
            continue;
        }
        lines.push(line.strip_prefix("Fatal: ").unwrap_or(line));
    }
    let start = lines.len().saturating_sub(MESSAGE_LINES);
    let message = lines[start..].join("; ");
    if message.is_empty() {
        "restic printed no error message".to_owned()
    } else {
        message
    }
}

/// What the operator can do about a failed command.
pub(super) fn hint(command: &str, message: &str) -> &'static str {
    if message.contains("already locked") {
        "another restic process holds a lock on the repository (for example a prune from another node); the next run tries again, and stale locks are removed whenever they are in the way"
    } else if message.contains("wrong password or no key found") {
        "check the password in the instance's `env`"
    } else if message.contains("unable to open config file") {
        "the repository could not be opened: check that it exists and is reachable (Marina initialises a missing repository before a backup)"
    } else if command.starts_with("backup") {
        "no snapshot was saved for this target"
    } else if command.starts_with("forget") {
        "old snapshots were not removed; retention runs again after the next backup"
    } else if command == "init" {
        "check that the repository location is writable with the instance's credentials"
    } else {
        "check that the repository of this instance is reachable"
    }
}

/// `exit code N`, or how the process ended without one.
pub(super) fn describe_status(status: ExitStatus) -> String {
    status.code().map_or_else(
        || "no exit code (killed by a signal)".to_owned(),
        |code| format!("exit code {code}"),
    )
}
