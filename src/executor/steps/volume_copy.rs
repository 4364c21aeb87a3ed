//! The copy of a volume's paths that a helper container makes (SPEC §3.2): when Marina cannot
//! read a volume's data where it lies, and for every volume a custom image is to see. The
//! helper mounts the volume read-only and runs a shell script that refuses a path missing from
//! the volume or leading out of it, with the same rule and message as the in-place check
//! ([`crate::executor::beneath`]).

use std::fmt::Write as _;
use std::path::Path;

use crate::docker::own_container::host_path;
use crate::docker::{HelperSpec, MountSpec, OutputLine, PullPolicy, RunOutcome, Runtime};
use crate::executor::context::{JobContext, log_output};
use crate::model::VolumePath;

/// Copies a volume's paths into `dest` (as Marina sees it) with a helper container that
/// mounts the volume read-only. Every exit code is checked; there is no time limit.
pub(crate) async fn copy_volume<R: Runtime + 'static>(
    ctx: &JobContext<R>,
    volume: &str,
    paths: &[VolumePath],
    dest: &Path,
) -> Result<(), String> {
    // A copy left by an earlier run would bring back files deleted since.
    match tokio::fs::remove_dir_all(dest).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot clear {}: {e}", dest.display())),
    }
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let host_dest = host_path(&*ctx.runtime, ctx.own_container.as_deref(), dest)
        .await
        .map_err(|e| format!("cannot find the host path of the staging directory: {e}"))?;
    let spec = HelperSpec {
        image: ctx.config.helper_image.clone(),
        job_id: ctx.job.to_string(),
        owner: ctx.owner.clone(),
        mounts: vec![
            MountSpec::Volume {
                volume: volume.to_owned(),
                target: "/source".into(),
                read_only: true,
            },
            MountSpec::Bind {
                source: host_dest,
                target: "/staging".into(),
                read_only: false,
            },
        ],
        command: vec!["sh".into(), "-c".into(), copy_script(volume, paths)],
        pull: PullPolicy::IfMissing,
        timeout: None,
    };
    // The script's own refusals (a missing path, a path out of the volume) are its last
    // line: they become the target's reason, not only a line in the log.
    let mut last_line = String::new();
    let outcome = ctx
        .runtime
        .run_helper(
            spec,
            |line: OutputLine| {
                last_line.clone_from(&line.text);
                log_output(line);
            },
            ctx.cancel.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    match outcome {
        RunOutcome::Exited(0) => Ok(()),
        RunOutcome::Exited(COPY_MISSING | COPY_ESCAPES) if !last_line.is_empty() => Err(last_line),
        RunOutcome::Exited(code) => Err(format!(
            "copying volume {volume} failed (the helper exited with code {code}; its output is in the log above)"
        )),
        RunOutcome::TimedOut | RunOutcome::Cancelled => {
            Err(format!("copying volume {volume} was stopped"))
        }
    }
}

/// Exit code of the helper's script when a path is not in the volume.
const COPY_MISSING: i64 = 3;
/// Exit code of the helper's script when a path leads out of the volume.
const COPY_ESCAPES: i64 = 4;

/// The helper's shell function that refuses a path leading out of the volume, with the same
/// rule and message as [`crate::executor::beneath::resolve`] for in-place reads: every
/// symlink on the way must resolve under `/source` (inside the helper an outside target is
/// the helper's own file, not the volume's). It sets `src` to the place to copy from: the
/// path itself when no link is on the way (the common case, byte for byte what it always
/// was), else its resolved location.
/// As in place, a writer swapping a checked directory for a link before `cp` reads it could
/// still redirect the copy (to the helper's own files only: the host is not mounted);
/// `stopAttached` closes that window.
const BENEATH_SH: &str = r#"beneath() {
  shown=$1; rel=$2; volume=$3; prefix=/source; src=/source/$rel; linked=
  old_ifs=$IFS; IFS=/; set -f
  for part in $rel; do
    prefix=$prefix/$part
    if [ -L "$prefix" ]; then
      linked=1
      real=$(readlink -f "$prefix" 2>/dev/null) || real=
      target=$(readlink "$prefix")
      case "$real" in
        /source|/source/*) ;;
        '') case "$target" in
              /source|/source/*) ;;
              /*) echo "path $shown of volume $volume escapes the volume: ${prefix#/source/} is a symlink to $target" >&2; exit 4;;
            esac;;
        *) echo "path $shown of volume $volume escapes the volume: ${prefix#/source/} is a symlink to $target" >&2; exit 4;;
      esac
    fi
  done
  IFS=$old_ifs; set +f
  if [ ! -e "$src" ]; then echo "path $shown does not exist in volume $volume" >&2; exit 3; fi
  if [ -n "$linked" ]; then src=$(readlink -f "$src"); fi
}
"#;

/// The helper's shell script: copy each path (a missing one, or one leading out of the
/// volume, is an error), preserving everything `cp -a` preserves.
fn copy_script(volume: &str, paths: &[VolumePath]) -> String {
    let paths = outermost(paths);
    let mut script = String::from("set -e\n");
    if paths.iter().any(|p| !p.is_root()) {
        script.push_str(BENEATH_SH);
    }
    let volume = shell_quote(volume);
    for path in paths {
        if path.is_root() {
            script.push_str("cp -a /source/. /staging/\n");
        } else {
            let quoted = shell_quote(path.relative());
            let shown = shell_quote(&path.to_string());
            let _ = write!(
                script,
                "beneath {shown} {quoted} {volume}\nmkdir -p \"$(dirname /staging/{quoted})\"\ncp -a \"$src\" /staging/{quoted}\n"
            );
        }
    }
    script
}

/// The paths to copy: each once, and none that lies inside another listed path, which the
/// copy of that one brings along. (`cp -a src /staging/uploads` into an `uploads` that the
/// copy of `/` already made would nest a second copy at `uploads/uploads`.)
fn outermost(paths: &[VolumePath]) -> Vec<&VolumePath> {
    let mut kept: Vec<&VolumePath> = Vec::new();
    for path in paths {
        let covered = paths.iter().any(|outer| path.is_inside(outer)) || kept.contains(&path);
        if !covered {
            kept.push(path);
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

    #[test]
    fn a_path_inside_another_is_copied_with_it_and_each_path_once() {
        let path = |p: &str| VolumePath::parse(p).unwrap();
        let listed = [
            path("/uploads"),
            VolumePath::root(),
            path("uploads"),
            path("/uploads/x"),
        ];
        assert_eq!(outermost(&listed), vec![&VolumePath::root()]);
        let listed = [path("a"), path("ab"), path("a/b"), path("ab")];
        assert_eq!(outermost(&listed), vec![&path("a"), &path("ab")]);
    }

    #[test]
    fn copy_scripts_quote_paths() {
        let root = copy_script("app-data", &[VolumePath::root()]);
        assert!(root.contains("cp -a /source/. /staging/"), "{root}");
        let paths = [
            VolumePath::parse("conf").unwrap(),
            VolumePath::parse("/it's here/x").unwrap(),
        ];
        let script = copy_script("app-data", &paths);
        assert!(
            script.contains("beneath '/conf' 'conf' 'app-data'"),
            "{script}"
        );
        assert!(
            script.contains(r"beneath '/it'\''s here/x' 'it'\''s here/x' 'app-data'"),
            "{script}"
        );
    }
}
