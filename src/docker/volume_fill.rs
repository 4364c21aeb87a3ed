//! Filling a volume from a directory with a helper container: the way back of the helper's
//! volume copy, for when Marina cannot see a volume's data where it lies (Marina in a
//! container). A restore has put the files into a directory Marina sees (restic restored
//! them there); [`fill_volume`] copies each of a target's paths from that directory into the
//! volume, at the same place: `<dir>/uploads` becomes the volume's `/uploads`, `<dir>` itself
//! the volume's root for the path `/`.
//!
//! # What survives
//!
//! The helper is busybox (`marina-test/busybox` in tests, alpine in production), and the copy
//! is busybox `cp -a`, run once per path. Measured with Debian's busybox 1.35, volumes on ext4:
//!
//! - kept: bytes, permission bits (setuid, setgid and sticky too), numeric owners and
//!   groups (the helper runs as root), symlinks as links (never followed, dangling ones
//!   too), hard links between files of the same path, empty directories, and mtimes to the
//!   second for files and directories; symlinks' own mtimes to the second (`cp -a` leaves
//!   them at the time of the copy, so a `touch -h` pass after it sets them).
//! - lost: **the sub-second part of every mtime** (truncated to the whole second: busybox
//!   `cp` sets times with second precision, its `touch` accepts no fraction, and busybox
//!   `tar` is worse — the ustar format keeps seconds, and it leaves directories at the time
//!   of extraction); atimes (set to the mtime); extended attributes, so POSIX ACLs, file
//!   capabilities and security labels (busybox `cp` copies none, as seen with a `user.`
//!   attribute); holes in sparse files (busybox `cp` writes every zero: the bytes are the
//!   same, the disk usage is not); hard links between two different paths of the target
//!   (each path is its own `cp`).
//!
//! `tar` was the other candidate; it keeps nothing `cp -a` does not and loses directory
//! mtimes, so it is not used. Only a copy with another tool (restic restoring straight into
//! the volume from a container of Marina's own image, say) would keep nanoseconds.
//!
//! # Where it writes
//!
//! A path may be filled into an empty place only ([`FillMode::IntoEmpty`]: the path is
//! absent from the volume or an empty directory), or in place ([`FillMode::Replace`]): what
//! is at the path is removed first — for `/`, the volume root's content, never the root
//! itself. There is no merging into existing files, because busybox `cp` writes *through*
//! a symlink it finds at a destination (tested: a link `plain -> victim` in the volume got
//! `victim` overwritten), which would let a volume's old links redirect restored files onto
//! other files of the volume.
//!
//! Both the volume side and the directory side of a path are resolved with the rule of the
//! helper's volume copy (`executor::steps::volume_copy`) and of the in-place check
//! (`executor::beneath`): a symlink on the way (the last component included) is followed as
//! long as it stays inside the volume (inside the directory), and a path through a link that
//! leads out is refused with the same message. The directory is mounted read-only, so the
//! only files the helper can change are the volume's and its own.

use std::fmt::Write as _;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::error::RuntimeError;
use super::images::PullPolicy;
use super::lines::OutputLine;
use super::one_shot::{HelperSpec, MountSpec, RunOutcome};
use super::runtime::Runtime;
use crate::model::VolumePath;

/// Where the helper sees the directory holding the restored files (read-only).
const RESTORED_MOUNT: &str = "/restored";
/// Where the helper sees the volume it fills.
const VOLUME_MOUNT: &str = "/volume";

/// Exit code of the fill script when a path is not in the restored files.
const FILL_MISSING: i64 = 3;
/// Exit code of the fill script when a path leads out of the volume or the restored files.
const FILL_ESCAPES: i64 = 4;
/// Exit code of the fill script when a path passes through a symlink to nothing.
const FILL_DANGLING: i64 = 5;
/// Exit code of the fill script when a path holds files and is not to be replaced.
const FILL_OCCUPIED: i64 = 6;

/// What happens to what a path of the volume already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillMode {
    /// Fill only where the volume has nothing: the path is absent or an empty directory
    /// (a new volume's root is). A path holding anything is refused before anything is
    /// written.
    IntoEmpty,
    /// Restore in place: remove what is at the path first (for `/`, everything in the
    /// volume, but not its root directory), then fill it.
    Replace,
}

/// One fill of a volume from a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillSpec {
    /// The helper image (config `helperImage`).
    pub image: String,
    /// The job it works for: the value of the job label.
    pub job_id: String,
    /// The Marina that runs it: the value of [`super::OWNER_LABEL`].
    pub owner: String,
    /// The volume to fill.
    pub volume: String,
    /// The *host* path of the directory holding the restored files, laid out like the volume
    /// (see [`super::own_container::host_path`] when Marina runs in a container).
    pub source: PathBuf,
    /// The target's paths; one inside another listed path is filled with it.
    pub paths: Vec<VolumePath>,
    /// Into an empty place, or in place.
    pub mode: FillMode,
    /// When to pull the image.
    pub pull: PullPolicy,
}

/// Why a volume was not (completely) filled.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// The helper checked the paths and refused one before writing anything (its message
    /// says which and why: not in the restored files, leading out of the volume, through a
    /// dangling symlink, or not empty).
    #[error("{0}")]
    Refused(String),
    /// The copy itself failed midway; what the helper said is in the job log.
    #[error(
        "filling volume {volume} failed (the helper exited with code {code}; its output is in \
         the log above); the volume may hold part of the restored files"
    )]
    Failed {
        /// The volume.
        volume: String,
        /// The helper's exit code.
        code: i64,
    },
    /// The job was cancelled (timeout, shutdown) while the helper ran.
    #[error("filling volume {volume} was stopped; the volume may hold part of the restored files")]
    Stopped {
        /// The volume.
        volume: String,
    },
    /// The helper could not be run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Copies `spec.paths` from `spec.source` into `spec.volume` with a helper container that
/// mounts the directory read-only and the volume read-write; see the module documentation
/// for what is kept and what is lost. Output lines go to `on_line`; cancelling `cancel`
/// kills the helper. There is no time limit.
pub async fn fill_volume<R, F>(
    runtime: &R,
    spec: FillSpec,
    mut on_line: F,
    cancel: CancellationToken,
) -> Result<(), FillError>
where
    R: Runtime,
    F: FnMut(OutputLine) + Send,
{
    let helper = HelperSpec {
        image: spec.image.clone(),
        job_id: spec.job_id.clone(),
        owner: spec.owner.clone(),
        mounts: vec![
            MountSpec::Bind {
                source: spec.source.clone(),
                target: RESTORED_MOUNT.to_owned(),
                read_only: true,
            },
            MountSpec::Volume {
                volume: spec.volume.clone(),
                target: VOLUME_MOUNT.to_owned(),
                read_only: false,
            },
        ],
        command: vec![
            "sh".into(),
            "-c".into(),
            fill_script(&spec.volume, &spec.paths, spec.mode),
        ],
        pull: spec.pull,
        timeout: None,
    };
    // The script's refusals are its last line: they become the error, not only a log line.
    let mut last_line = String::new();
    let outcome = runtime
        .run_helper(
            helper,
            |line: OutputLine| {
                last_line.clone_from(&line.text);
                on_line(line);
            },
            cancel,
        )
        .await?;
    match outcome {
        RunOutcome::Exited(0) => Ok(()),
        RunOutcome::Exited(FILL_MISSING | FILL_ESCAPES | FILL_DANGLING | FILL_OCCUPIED)
            if !last_line.is_empty() =>
        {
            Err(FillError::Refused(last_line))
        }
        RunOutcome::Exited(code) => Err(FillError::Failed {
            volume: spec.volume,
            code,
        }),
        RunOutcome::TimedOut | RunOutcome::Cancelled => Err(FillError::Stopped {
            volume: spec.volume,
        }),
    }
}

/// The helper's shell function that finds where a path really is under a root, with the rule
/// of the volume copy's `beneath`: `resolve ROOT REL SHOWN WHERE WHAT` follows every symlink
/// on the way (the last component too) as long as it resolves under ROOT, and sets `at` to
/// the link-free result. A link leading out exits 4 with the copy's message; a link to
/// nothing exits 5 (nothing could be written through it). Components after a missing one
/// are taken as they are: there is nothing to follow.
const RESOLVE_SH: &str = r#"resolve() {
  root=$1; rel=$2; shown=$3; where=$4; what=$5; at=$root
  old_ifs=$IFS; IFS=/; set -f
  for part in $rel; do
    next=$at/$part
    if [ -L "$next" ]; then
      link=${next#"$root"/}
      target=$(readlink "$next")
      real=$(readlink -f "$next" 2>/dev/null) || real=
      case "$real" in
        "$root"|"$root"/*) ;;
        '') case "$target" in
              "$root"|"$root"/*) ;;
              /*) echo "path $shown of $where escapes $what: $link is a symlink to $target" >&2; exit 4;;
            esac;;
        *) echo "path $shown of $where escapes $what: $link is a symlink to $target" >&2; exit 4;;
      esac
      if [ -z "$real" ] || [ ! -e "$real" ]; then
        echo "path $shown of $where passes through $link, a symlink to $target, which does not exist" >&2; exit 5
      fi
      next=$real
    fi
    at=$next
  done
  IFS=$old_ifs; set +f
}
"#;

/// Gives every symlink copied from `$1` to `$2` its original mtime (to the second): busybox
/// `cp -a` leaves links at the time of the copy.
const LINK_TIMES_SH: &str = r#"link_times() {
  find "$1" -type l -exec sh -c 'to=$1; from=$2; shift 2; for l; do touch -h -d "@$(stat -c %Y "$l")" "$to${l#"$from"}"; done' link-times "$2" "$1" {} +
}
"#;

/// The helper's shell script: every path is checked first (nothing is written when one is
/// refused), then each is cleared (in place) and copied with `cp -a`.
fn fill_script(volume: &str, paths: &[VolumePath], mode: FillMode) -> String {
    let mut script = String::from("set -e\n");
    script.push_str(RESOLVE_SH);
    script.push_str(LINK_TIMES_SH);
    let paths = outermost(paths);
    let where_volume = shell_quote(&format!("volume {volume}"));
    let resolve_both = |script: &mut String, path: &VolumePath| {
        let rel = shell_quote(path.relative());
        let shown = shell_quote(&path.to_string());
        let _ = write!(
            script,
            "resolve {RESTORED_MOUNT} {rel} {shown} 'the restored files' them; src=$at\n\
             resolve {VOLUME_MOUNT} {rel} {shown} {where_volume} 'the volume'; dst=$at\n"
        );
    };
    for path in &paths {
        resolve_both(&mut script, path);
        let missing = shell_quote(&format!("path {path} is not in the restored files"));
        let _ = writeln!(
            script,
            "if [ ! -e \"$src\" ]; then echo {missing} >&2; exit {FILL_MISSING}; fi"
        );
        if mode == FillMode::IntoEmpty {
            let occupied = shell_quote(&format!(
                "path {path} of volume {volume} is not empty; restore into an empty volume, or \
                 in place to replace what is there"
            ));
            let _ = writeln!(
                script,
                "if [ -e \"$dst\" ] && {{ [ ! -d \"$dst\" ] || [ -n \"$(ls -A \"$dst\")\" ]; }}; \
                 then echo {occupied} >&2; exit {FILL_OCCUPIED}; fi"
            );
        }
    }
    for path in &paths {
        resolve_both(&mut script, path);
        if mode == FillMode::Replace {
            // The volume root is a mount point: only its content goes.
            let _ = writeln!(
                script,
                "if [ \"$dst\" = {VOLUME_MOUNT} ]; then find {VOLUME_MOUNT} -mindepth 1 -maxdepth 1 \
                 -exec rm -rf {{}} +; else rm -rf \"$dst\"; fi"
            );
        }
        script.push_str(
            "if [ -d \"$src\" ]; then mkdir -p \"$dst\"; cp -a \"$src/.\" \"$dst/\"; \
             else mkdir -p \"$(dirname \"$dst\")\"; cp -a \"$src\" \"$dst\"; fi\n\
             link_times \"$src\" \"$dst\"\n",
        );
    }
    script
}

/// The paths not inside another of `paths` (a path inside another is copied with it), in
/// their order, without repeats.
fn outermost(paths: &[VolumePath]) -> Vec<VolumePath> {
    let inside = |inner: &VolumePath, outer: &VolumePath| {
        outer.is_root()
            || inner.relative() == outer.relative()
            || inner
                .relative()
                .strip_prefix(outer.relative())
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let mut kept: Vec<VolumePath> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let covered = paths
            .iter()
            .enumerate()
            .any(|(j, other)| j != i && inside(path, other) && (!inside(other, path) || j < i));
        if !covered {
            kept.push(path.clone());
        }
    }
    kept
}

/// Quotes `text` for `sh` with single quotes.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(texts: &[&str]) -> Vec<VolumePath> {
        texts
            .iter()
            .map(|t| VolumePath::parse(t).unwrap())
            .collect()
    }

    #[test]
    fn a_path_inside_another_is_filled_with_it() {
        assert_eq!(outermost(&paths(&["/", "uploads"])), paths(&["/"]));
        assert_eq!(
            outermost(&paths(&["a/b", "a", "ab", "a/b/c", "ab"])),
            paths(&["a", "ab"])
        );
        assert_eq!(outermost(&paths(&["x/", "x"])), paths(&["x"]));
    }

    #[test]
    fn fill_scripts_check_every_path_before_writing_and_quote_them() {
        let script = fill_script(
            "app's",
            &paths(&["/it's here/x", "logs"]),
            FillMode::IntoEmpty,
        );
        assert!(
            script.contains(
                r"resolve /volume 'it'\''s here/x' '/it'\''s here/x' 'volume app'\''s' 'the volume'"
            ),
            "{script}"
        );
        let last_check = script.rfind("exit 6").unwrap();
        let first_copy = script.find("cp -a").unwrap();
        assert!(last_check < first_copy, "{script}");
        assert!(!script.contains("rm -rf \"$dst\""), "{script}");
        let replace = fill_script("v", &paths(&["/"]), FillMode::Replace);
        assert!(
            replace.contains("find /volume -mindepth 1 -maxdepth 1"),
            "{replace}"
        );
        assert!(!replace.contains("exit 6;"), "{replace}");
    }
}
