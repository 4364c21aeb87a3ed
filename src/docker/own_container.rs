//! Where Marina itself runs (SPEC §3.1): as a host binary, or in a container whose
//! `stagingDir` is a bind mount from the host. Helper and backend containers must mount the
//! staging directory by its *host* path, so a containerised Marina finds its own container and
//! translates the path through that container's mounts.
//!
//! The container id comes from `/proc/self/mountinfo` (DEPENDENCIES.md, bollard pitfall 8):
//! the engine bind-mounts `…/containers/<64-hex id>/hostname` (and `hosts`, `resolv.conf`)
//! into every container, whatever its `--hostname`, under cgroup v1 and v2 alike. The hostname
//! is the short id only without `--hostname`, and `/proc/self/cgroup` says just `0::/` under
//! cgroup v2 with a private cgroup namespace, so both are fallbacks at best; cgroup is used
//! when mountinfo has nothing.

use std::path::{Path, PathBuf};

use super::containers::{ContainerMount, MountKind};
use super::error::RuntimeError;
use super::runtime::Runtime;

/// Why a path inside Marina's container has no host path.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    /// Inspecting Marina's own container failed.
    #[error("cannot inspect Marina's own container {container}: {source}")]
    Inspect {
        /// The container id found in `/proc/self`.
        container: String,
        /// What went wrong.
        #[source]
        source: RuntimeError,
    },
    /// The path is in the container's own filesystem, which other containers cannot see.
    #[error(
        "{path} is not on a bind mount of Marina's container {container}; mount the staging \
         directory from the host (e.g. `-v /srv/marina/staging:{path}`)"
    )]
    NotMounted {
        /// The path inside the container.
        path: PathBuf,
        /// Marina's container id.
        container: String,
    },
}

/// The files the engine bind-mounts from the container's own directory into every container.
const ENGINE_FILES: [(&str, &str); 3] = [
    ("/etc/hostname", "hostname"),
    ("/etc/hosts", "hosts"),
    ("/etc/resolv.conf", "resolv.conf"),
];

/// The container id in `/proc/self/mountinfo` text: the 64-hex directory in the source of the
/// `/etc/hostname` (or `/etc/hosts`, `/etc/resolv.conf`) mount, as in
/// `/var/lib/docker/containers/<id>/hostname`. `None` outside a Docker container.
#[must_use]
pub fn container_id_from_mountinfo(mountinfo: &str) -> Option<String> {
    // Fields: id parent major:minor root mount-point options … — root is the path inside the
    // mounted filesystem, which for these files is the engine's container directory.
    let mounts: Vec<(String, String)> = mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(3);
            let root = fields.next()?;
            let mount_point = fields.next()?;
            Some((unescape(root), unescape(mount_point)))
        })
        .collect();
    ENGINE_FILES.iter().find_map(|(mount_point, file)| {
        mounts
            .iter()
            .filter(|(_, point)| point == mount_point)
            .find_map(|(root, _)| {
                let dir = root.strip_suffix(file)?.strip_suffix('/')?;
                let (parent, id) = dir.rsplit_once('/')?;
                (parent.ends_with("containers") && is_container_id(id)).then(|| id.to_owned())
            })
    })
}

/// The container id in `/proc/self/cgroup` text: the last 64-hex path segment, bare
/// (`/docker/<id>`, cgroupfs driver) or as `docker-<id>.scope` (systemd driver). `None` when
/// the path shows none (a host process, or a private cgroup namespace showing `0::/`).
#[must_use]
pub fn container_id_from_cgroup(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .flat_map(|path| path.split('/'))
        .filter_map(|segment| {
            let id = segment
                .strip_prefix("docker-")
                .and_then(|s| s.strip_suffix(".scope"))
                .unwrap_or(segment);
            is_container_id(id).then(|| id.to_owned())
        })
        .next_back()
}

/// Marina's own container id, or `None` when it runs on the host.
///
/// `/proc/self` may name more than one container: under Kubernetes with cri-dockerd, the
/// engine files (`/etc/hostname`, `/etc/resolv.conf`) come from the pod's sandbox container,
/// while the cgroup path names Marina's own. So every candidate is inspected, and the one
/// that mounts `staging_dir` wins (the sandbox mounts nothing); failing that, the first.
pub async fn own_container_id<R: Runtime>(runtime: &R, staging_dir: &Path) -> Option<String> {
    let mountinfo = tokio::fs::read_to_string("/proc/self/mountinfo")
        .await
        .unwrap_or_default();
    let cgroup = tokio::fs::read_to_string("/proc/self/cgroup")
        .await
        .unwrap_or_default();
    let candidates = candidate_ids(&mountinfo, &cgroup);
    if candidates.len() > 1 {
        for id in &candidates {
            if let Ok(details) = runtime.inspect_container(id).await
                && host_path_in(&details.mounts, staging_dir).is_some()
            {
                return Some(id.clone());
            }
        }
    }
    candidates.into_iter().next()
}

/// The container ids `/proc/self` names, most telling first: the engine files' directory in
/// mountinfo, then the cgroup path; without repeats.
#[must_use]
pub fn candidate_ids(mountinfo: &str, cgroup: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in container_id_from_mountinfo(mountinfo)
        .into_iter()
        .chain(container_id_from_cgroup(cgroup))
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// The host path of `path` inside a container with `mounts`: the bind mount (or volume) with
/// the longest destination containing `path`, plus the rest of `path`. `None` when no mount
/// contains it.
#[must_use]
pub fn host_path_in(mounts: &[ContainerMount], path: &Path) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|m| {
            matches!(m.kind, MountKind::Bind | MountKind::Volume)
                && !m.source.as_os_str().is_empty()
        })
        .filter_map(|m| {
            let rest = path.strip_prefix(&m.destination).ok()?;
            Some((m.destination.components().count(), m.source.join(rest)))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, host)| normalise(&host))
}

/// The host path of `path`: itself when Marina runs on the host (`own_container` is `None`),
/// else translated through the mounts of Marina's container.
pub async fn host_path<R: Runtime>(
    runtime: &R,
    own_container: Option<&str>,
    path: &Path,
) -> Result<PathBuf, HostPathError> {
    let Some(container) = own_container else {
        return Ok(path.to_owned());
    };
    let details = runtime
        .inspect_container(container)
        .await
        .map_err(|source| HostPathError::Inspect {
            container: container.to_owned(),
            source,
        })?;
    host_path_in(&details.mounts, path).ok_or_else(|| HostPathError::NotMounted {
        path: path.to_owned(),
        container: container.to_owned(),
    })
}

/// `Path::join` with an empty rest leaves a trailing `/` on some inputs; normalise it away.
fn normalise(path: &Path) -> PathBuf {
    path.components().collect()
}

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes
                .get(i + 1..i + 4)
                .is_some_and(|digits| digits.iter().all(|b| (b'0'..=b'7').contains(b)))
        {
            let value = (u32::from(bytes[i + 1] - b'0') << 6)
                | (u32::from(bytes[i + 2] - b'0') << 3)
                | u32::from(bytes[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "cd7bb43fb8576a56695850d4c3ae63a64e290949a802ee98bd609fd6f5ffe7e9";

    #[test]
    fn a_pod_sandbox_and_the_container_itself_are_both_candidates() {
        // cri-dockerd: the engine files come from the sandbox, the cgroup names Marina.
        let sandbox = "a".repeat(64);
        let mountinfo = format!(
            "87 69 254:0 /var/lib/docker/containers/{sandbox}/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
        );
        let cgroup = format!("12:memory:/kubepods/burstable/pod1234/{ID}\n");
        assert_eq!(candidate_ids(&mountinfo, &cgroup), [sandbox, ID.to_owned()]);
        // Plain Docker: both name the same container, once.
        let mountinfo = format!(
            "87 69 254:0 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
        );
        let cgroup = format!("12:memory:/docker/{ID}\n");
        assert_eq!(candidate_ids(&mountinfo, &cgroup), [ID.to_owned()]);
        assert!(candidate_ids("", "0::/\n").is_empty());
    }

    /// Docker 20.10 on a cgroup v1 host (from this project's machines), trimmed.
    fn mountinfo_cgroup_v1() -> String {
        format!(
            "69 45 0:39 / / rw,nodev,noatime master:2 - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0,group_id=0,default_permissions,allow_other
70 69 0:41 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
74 73 0:45 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
78 74 0:32 /docker/{ID} /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
86 69 254:0 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw,discard
87 69 254:0 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw,discard
88 69 254:0 /var/lib/docker/containers/{ID}/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw,discard
89 69 254:0 /srv/marina/staging /backup rw,relatime - ext4 /dev/vda rw,discard
"
        )
    }

    /// Docker 24 on a cgroup v2 host (private cgroup namespace), with `/var/lib/docker` on its
    /// own filesystem, so the source path starts at `/containers`.
    fn mountinfo_cgroup_v2() -> String {
        format!(
            "595 519 0:52 / / rw,relatime master:281 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/0a1b/diff,workdir=/var/lib/docker/overlay2/0a1b/work,nouserxattr
596 595 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
600 599 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
603 595 8:17 /containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sdb1 rw
604 595 8:17 /containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/sdb1 rw
605 595 8:17 /containers/{ID}/hosts /etc/hosts rw,relatime - ext4 /dev/sdb1 rw
606 595 8:1 /home/ops/marina\\040staging /backup rw,relatime - ext4 /dev/sda1 rw
"
        )
    }

    #[test]
    fn the_container_id_comes_from_the_engine_files_in_mountinfo() {
        assert_eq!(
            container_id_from_mountinfo(&mountinfo_cgroup_v1()).as_deref(),
            Some(ID)
        );
        assert_eq!(
            container_id_from_mountinfo(&mountinfo_cgroup_v2()).as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn a_host_process_has_no_container_id() {
        let host = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8131468k
60 22 8:1 /var/lib/docker/containers /var/lib/docker/containers rw,relatime - ext4 /dev/sda1 rw
";
        assert_eq!(container_id_from_mountinfo(host), None);
        assert_eq!(container_id_from_mountinfo(""), None);
        // A 64-hex-looking directory that is not the engine's container directory.
        let other = format!("1 0 8:1 /data/{ID}/hostname /etc/hostname rw - ext4 /dev/sda1 rw");
        assert_eq!(container_id_from_mountinfo(&other), None);
    }

    #[test]
    fn the_cgroup_fallback_reads_cgroupfs_and_systemd_paths() {
        let v1 = format!("12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/docker/{ID}\n");
        assert_eq!(container_id_from_cgroup(&v1).as_deref(), Some(ID));
        let v2_host_ns = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(container_id_from_cgroup(&v2_host_ns).as_deref(), Some(ID));
        let outer = "a".repeat(64);
        let nested = format!("0::/docker/{outer}/docker/{ID}\n");
        assert_eq!(container_id_from_cgroup(&nested).as_deref(), Some(ID));
        // cgroup v2 with a private namespace shows nothing, nor does a host service.
        assert_eq!(container_id_from_cgroup("0::/\n"), None);
        assert_eq!(
            container_id_from_cgroup("0::/system.slice/marina.service\n"),
            None
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
        assert_eq!(unescape("\\999"), "\\999");
    }

    fn mount(kind: MountKind, source: &str, destination: &str) -> ContainerMount {
        ContainerMount {
            kind,
            name: None,
            source: source.into(),
            destination: destination.into(),
            read_write: true,
        }
    }

    #[test]
    fn the_longest_containing_mount_decides_the_host_path() {
        let mounts = [
            mount(MountKind::Bind, "/srv/marina", "/backup"),
            mount(MountKind::Bind, "/mnt/fast", "/backup/hot"),
            mount(
                MountKind::Volume,
                "/var/lib/docker/volumes/v/_data",
                "/data",
            ),
            mount(MountKind::Other, "", "/tmp"),
        ];
        let host = |p: &str| host_path_in(&mounts, Path::new(p));
        assert_eq!(host("/backup"), Some("/srv/marina".into()));
        assert_eq!(host("/backup/"), Some("/srv/marina".into()));
        assert_eq!(host("/backup/inst/ts"), Some("/srv/marina/inst/ts".into()));
        assert_eq!(host("/backup/hot/inst"), Some("/mnt/fast/inst".into()));
        assert_eq!(
            host("/data/x"),
            Some("/var/lib/docker/volumes/v/_data/x".into())
        );
        // Component-wise: /backups is not inside /backup.
        assert_eq!(host("/backups"), None);
        assert_eq!(host("/tmp/x"), None);
        assert_eq!(host("/etc"), None);
    }
}
