//! Resolving a path inside a volume without ever leaving it: the `openat2(RESOLVE_BENEATH)`
//! rules, walked component by component with `symlink_metadata` and `read_link` (the crate
//! forbids `unsafe`, so no raw syscall).
//!
//! A volume is written by the containers that mount it, so any of its entries may be a
//! symlink, and a link's target means something inside *those* containers, not on the host.
//! Handing `<mountpoint>/uploads/x` to restic would let the kernel follow `uploads → /etc`
//! into the host's files. Every link on the way is therefore followed here, against the
//! volume root: one that stays inside the volume is fine, one that leaves it (an absolute
//! target outside the root, or `..` climbing above it) fails the path.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::model::VolumePath;

/// How many symlinks one path may pass through before it counts as a loop (Linux's
/// `MAXSYMLINKS`, the limit behind `ELOOP`).
pub const MAX_LINKS: usize = 40;

/// Why a volume path cannot be read safely.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    /// A symlink on the way leads out of the volume.
    #[error("path {path} of volume {volume} escapes the volume: {link} is a symlink to {target}")]
    Escapes {
        /// The path as configured.
        path: VolumePath,
        /// The volume's name.
        volume: String,
        /// The link, relative to the volume root (as written in the message: no leading `/`).
        link: String,
        /// What the link points to, as stored in it.
        target: String,
    },
    /// The path, or a directory on its way, is not there.
    #[error("path {path} does not exist in volume {volume}")]
    Missing {
        /// The path as configured.
        path: VolumePath,
        /// The volume's name.
        volume: String,
    },
    /// Too many links: a loop, most likely.
    #[error(
        "path {path} of volume {volume} passes through more than {MAX_LINKS} symlinks (a symlink loop?)"
    )]
    TooManyLinks {
        /// The path as configured.
        path: VolumePath,
        /// The volume's name.
        volume: String,
    },
    /// An entry on the way could not be read.
    #[error("cannot read {} in volume {volume}: {source}", entry.display())]
    Io {
        /// The entry, as Marina sees it.
        entry: PathBuf,
        /// The volume's name.
        volume: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Resolves `path` under the volume root `root`, following every symlink on the way inside
/// the volume, and returns the real location of the data (under `root`, free of links).
/// When nothing on the way is a link the result is exactly `root` joined with `path`, so
/// snapshot paths stay what they always were.
///
/// # Errors
/// [`BeneathError::Escapes`] when a link leads out of the volume, `Missing` when the path is
/// not there, `TooManyLinks` on a loop, `Io` when an entry cannot be read.
pub fn resolve(root: &Path, volume: &str, path: &VolumePath) -> Result<PathBuf, BeneathError> {
    let mut pending: VecDeque<OsString> = Path::new(path.relative())
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            _ => None,
        })
        .collect();
    // The components resolved so far, relative to the root; none of them is a link.
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    let escapes = |link: &Path, target: &Path| BeneathError::Escapes {
        path: path.clone(),
        volume: volume.to_owned(),
        link: link.display().to_string(),
        target: target.display().to_string(),
    };
    while let Some(name) = pending.pop_front() {
        let entry = under(root, &resolved).join(&name);
        let metadata = match std::fs::symlink_metadata(&entry) {
            Ok(metadata) => metadata,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(BeneathError::Missing {
                    path: path.clone(),
                    volume: volume.to_owned(),
                });
            }
            Err(source) => {
                return Err(BeneathError::Io {
                    entry,
                    volume: volume.to_owned(),
                    source,
                });
            }
        };
        if !metadata.file_type().is_symlink() {
            if !pending.is_empty() && !metadata.is_dir() {
                return Err(BeneathError::Missing {
                    path: path.clone(),
                    volume: volume.to_owned(),
                });
            }
            resolved.push(name);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(BeneathError::TooManyLinks {
                path: path.clone(),
                volume: volume.to_owned(),
            });
        }
        let target = std::fs::read_link(&entry).map_err(|source| BeneathError::Io {
            entry: entry.clone(),
            volume: volume.to_owned(),
            source,
        })?;
        let link = under(Path::new(""), &resolved).join(&name);
        // An absolute target names a place in the writer's filesystem; it stays inside only
        // when it names the volume itself (as Marina sees it), and then resolution restarts
        // at the root.
        let relative = if target.is_absolute() {
            let Ok(inside) = target.strip_prefix(root) else {
                return Err(escapes(&link, &target));
            };
            resolved.clear();
            inside.to_path_buf()
        } else {
            target.clone()
        };
        let mut expanded = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) => expanded.push(part.to_owned()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                // `..` is resolved lexically against the resolved prefix, which holds no
                // links, so this is what the kernel would do; climbing above the root is
                // RESOLVE_BENEATH's EXDEV.
                Component::ParentDir => {
                    if expanded.pop().is_none() && resolved.pop().is_none() {
                        return Err(escapes(&link, &target));
                    }
                }
            }
        }
        for part in expanded.into_iter().rev() {
            pending.push_front(part);
        }
    }
    Ok(under(root, &resolved))
}

fn under(root: &Path, components: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(components);
    path
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn volume() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir_all(root.join("data/x")).unwrap();
        std::fs::write(root.join("data/x/file"), "inside").unwrap();
        (dir, root)
    }

    fn path(text: &str) -> VolumePath {
        VolumePath::parse(text).unwrap()
    }

    #[test]
    fn paths_without_links_are_exactly_root_and_path() {
        let (_dir, root) = volume();
        for text in ["/", "data", "/data/x", "data/x/file"] {
            let p = path(text);
            let expected = if p.is_root() {
                root.clone()
            } else {
                root.join(p.relative())
            };
            assert_eq!(resolve(&root, "v", &p).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn links_that_stay_inside_resolve_to_the_real_place() {
        let (_dir, root) = volume();
        symlink("data", root.join("uploads")).unwrap();
        symlink("../data/x", root.join("data/up")).unwrap();
        symlink(root.join("data/x"), root.join("absolute-inside")).unwrap();
        symlink("./x/file", root.join("data/last")).unwrap();
        for (text, real) in [
            ("uploads/x", "data/x"),
            ("uploads/x/file", "data/x/file"),
            ("data/up/file", "data/x/file"),
            ("uploads/up", "data/x"),
            ("absolute-inside/file", "data/x/file"),
            ("data/last", "data/x/file"),
        ] {
            assert_eq!(
                resolve(&root, "v", &path(text)).unwrap(),
                root.join(real),
                "{text}"
            );
        }
    }

    #[test]
    fn links_that_leave_the_volume_fail_naming_the_link() {
        let (dir, root) = volume();
        let outside = dir.path().join("host");
        std::fs::create_dir_all(outside.join("x")).unwrap();
        symlink("/etc", root.join("uploads")).unwrap();
        symlink(&outside, root.join("host")).unwrap();
        symlink("../../host", root.join("data/climb")).unwrap();
        symlink("../../..", root.join("data/x/up")).unwrap();
        symlink("../host", root.join("data/via-host")).unwrap();
        let cases = [
            ("uploads/x", "uploads", "/etc".to_owned()),
            ("host/x", "host", outside.display().to_string()),
            ("data/climb/x", "data/climb", "../../host".to_owned()),
            ("data/via-host/x", "host", outside.display().to_string()),
            ("data/x/up", "data/x/up", "../../..".to_owned()),
        ];
        for (text, link, target) in cases {
            let error = resolve(&root, "app-data", &path(text)).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "path /{text} of volume app-data escapes the volume: {link} is a symlink to {target}"
                )
            );
        }
    }

    #[test]
    fn missing_paths_and_loops_are_reported() {
        let (_dir, root) = volume();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        symlink("nowhere", root.join("dangling")).unwrap();
        assert!(matches!(
            resolve(&root, "v", &path("a/x")),
            Err(BeneathError::TooManyLinks { .. })
        ));
        for text in ["missing", "data/x/file/below", "dangling", "data/nope/x"] {
            assert_eq!(
                resolve(&root, "v", &path(text)).unwrap_err().to_string(),
                format!("path /{text} does not exist in volume v")
            );
        }
    }
}
