//! Restoring a redis server: there is no load command, so the RDB file of the dump replaces
//! the server's own while the server is down, and the server reads it as it starts.
//!
//! The steps, each for a reason:
//!
//! 1. the running server is asked where its RDB file is (`CONFIG GET dir`, `dbfilename`) and
//!    whether it writes an append-only file: with `appendonly yes` the server would load the
//!    AOF at start and ignore the RDB, so the load refuses (and says what to do) before
//!    anything is touched;
//! 2. the RDB is kept in a file on Marina's side (`LoadOptions::spool_dir`), because the
//!    engine's archive upload must announce the size first; reading it whole before the
//!    server is stopped also means a dump that cannot be read leaves the server untouched;
//! 3. the container is stopped — the server saves its data on shutdown, so the upload comes
//!    after — and the RDB is uploaded over the server's file, owned by the uid the server
//!    runs as (the owner of its process);
//! 4. the container is started and the load waits until the server answers `PING` with a new
//!    run id (it restarted, and loading is done) and reports `DBSIZE`. A server that cannot
//!    read the file exits; the error says so and where its log is.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use super::command;
use super::{LoadError, LoadReport, PROBE_LIMIT, STEP_LIMIT, Target};
use crate::clock::Clock;
use crate::docker::{Runtime, UploadFile};

/// Every RDB file begins with these bytes.
const RDB_MAGIC: &[u8] = b"REDIS";

/// What the running server said about itself.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    /// `CONFIG GET dir`.
    dir: String,
    /// `CONFIG GET dbfilename`.
    dbfilename: String,
    /// `CONFIG GET appendonly`.
    appendonly: String,
    /// `INFO server`'s `process_id`.
    pid: Option<String>,
    /// `INFO server`'s `run_id`: a new one proves the server restarted.
    run_id: Option<String>,
}

impl Facts {
    fn parse(lines: &[String]) -> Self {
        let mut facts = Self::default();
        let info = info_fields(lines);
        for line in lines {
            let mut parts = line.splitn(3, ' ');
            if parts.next() != Some("config") {
                continue;
            }
            let (Some(name), value) = (parts.next(), parts.next().unwrap_or("").trim()) else {
                continue;
            };
            match name {
                "dir" => value.clone_into(&mut facts.dir),
                "dbfilename" => value.clone_into(&mut facts.dbfilename),
                "appendonly" => value.clone_into(&mut facts.appendonly),
                _ => {}
            }
        }
        facts.pid = info.get("process_id").cloned();
        facts.run_id = info.get("run_id").cloned();
        facts
    }
}

/// `name:value` lines of `INFO` output.
fn info_fields(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// Who owns what the file goes next to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Owners {
    /// The server process's uid and gid.
    process: Option<(u32, u32)>,
    /// The existing RDB file's uid, gid and mode.
    file: Option<(u32, u32, u32)>,
    /// The directory's uid, gid and mode.
    dir: Option<(u32, u32, u32)>,
}

impl Owners {
    fn parse(lines: &[String]) -> Self {
        let mut owners = Self::default();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
            let mode = |i: usize| fields.get(i).and_then(|f| u32::from_str_radix(f, 8).ok());
            match fields.first() {
                Some(&"process") => owners.process = number(1).zip(number(2)),
                Some(&"file") => {
                    owners.file = number(1)
                        .zip(number(2))
                        .zip(mode(3))
                        .map(|((u, g), m)| (u, g, m));
                }
                Some(&"dir") => {
                    owners.dir = number(1)
                        .zip(number(2))
                        .zip(mode(3))
                        .map(|((u, g), m)| (u, g, m));
                }
                _ => {}
            }
        }
        owners
    }

    /// The file's owner — the server's own uid first, as that is who writes it next — and
    /// its mode: the existing file's, else what redis itself creates (`0644` under the usual
    /// umask).
    fn for_upload(&self) -> (u32, u32, u32) {
        let (uid, gid) = self
            .process
            .or(self.file.map(|(u, g, _)| (u, g)))
            .or(self.dir.map(|(u, g, _)| (u, g)))
            .unwrap_or((0, 0));
        let mode = self.file.map_or(0o644, |(_, _, m)| m);
        (uid, gid, mode)
    }
}

/// Replaces the server's RDB file with the dump (see the module docs).
pub(super) async fn replace_rdb<R: Runtime, D: AsyncRead + Unpin + Send>(
    target: &Target<'_, R>,
    head: Vec<u8>,
    dump: &mut D,
) -> Result<LoadReport, LoadError> {
    if !head.starts_with(RDB_MAGIC) {
        return Err(LoadError::NotADump {
            container: target.name.clone(),
            kind: target.kind,
            reason: "an RDB file begins with REDIS".to_owned(),
        });
    }
    let (facts, (uid, gid, mode)) = inspect_server(target).await?;

    let spool = Spool::create(&target.options.spool_dir, &target.name).await?;
    let size = spool.fill(&target.name, head, dump).await?;

    info!(container = %target.name, dir = %facts.dir, file = %facts.dbfilename, bytes = size,
        "Stopping the redis container to replace its RDB file.");
    target
        .runtime
        .stop_container(&target.details.id, target.options.stop_timeout)
        .await?;
    let content = tokio::fs::File::open(spool.path())
        .await
        .map_err(|source| LoadError::Spool {
            container: target.name.clone(),
            path: spool.path().to_owned(),
            source,
        })?;
    let upload = UploadFile {
        dir: facts.dir.clone(),
        name: facts.dbfilename.clone(),
        size,
        uid,
        gid,
        mode,
        modified: u64::try_from(Clock::System.now().timestamp()).unwrap_or(0),
        content: Box::new(content),
    };
    let path = upload.path();
    let uploaded = target.runtime.upload_file(&target.details.id, upload).await;
    drop(spool);
    if let Err(error) = uploaded {
        // The server saved its own data when it stopped: started again, it has that.
        let restarted = target.runtime.start_container(&target.details.id).await;
        let state = match restarted {
            Ok(()) => "it was started again with the data it had".to_owned(),
            Err(e) => format!("starting it again failed too ({e}); start it by hand"),
        };
        return Err(LoadError::Redis {
            container: target.name.clone(),
            detail: format!("uploading the RDB file to {path} failed ({error}); {state}"),
        });
    }
    target.runtime.start_container(&target.details.id).await?;
    let keys = confirm_loaded(target, facts.run_id.as_deref()).await?;
    Ok(LoadReport {
        tool: "upload",
        bytes: size,
        keys: Some(keys),
        ..LoadReport::default()
    })
}

/// Asks the running server where its RDB file is and who owns it, refusing a server whose
/// restore would not work (append-only file, `--rm` container). Changes nothing.
async fn inspect_server<R: Runtime>(
    target: &Target<'_, R>,
) -> Result<(Facts, (u32, u32, u32)), LoadError> {
    let tools = target.tools(&["redis-cli", "stat"]).await?;
    target.pick(&tools, &["redis-cli"])?;
    target.pick(&tools, &["stat"])?;
    let env = &target.details.env;
    let server = &target.details.command;
    target
        .wait_ready(&command::redis_ready_probe(env, server))
        .await?;

    let ask = command::redis_facts(env, server);
    let answer = target.capture(&ask, None, STEP_LIMIT).await?;
    let facts = Facts::parse(&answer.stdout);
    if answer.code != 0 || facts.dir.is_empty() || facts.dbfilename.is_empty() {
        return Err(LoadError::Refused {
            container: target.name.clone(),
            reason: format!(
                "the redis server did not say where it keeps its data (CONFIG GET dir / dbfilename answered {:?}; is CONFIG renamed or disabled?): {}; nothing was changed",
                answer
                    .stdout
                    .iter()
                    .filter(|l| l.starts_with("config"))
                    .collect::<Vec<_>>(),
                answer.stderr
            ),
        });
    }
    if facts.appendonly.eq_ignore_ascii_case("yes") {
        return Err(LoadError::Refused {
            container: target.name.clone(),
            reason: "the redis server writes an append-only file (appendonly yes), which it would load at start instead of the restored RDB file. Restore into a new container, or turn the AOF off for the restore (CONFIG SET appendonly no, and `appendonly no` in its configuration), restore, then turn it on again (CONFIG SET appendonly yes writes the AOF from the restored data). Nothing was changed".to_owned(),
        });
    }
    if target
        .runtime
        .removes_itself_when_stopped(&target.details.id)
        .await?
    {
        return Err(LoadError::Refused {
            container: target.name.clone(),
            reason: "the container was started with --rm: stopping it to replace its RDB file would remove it (and its anonymous volumes). Restore into a new container instead. Nothing was changed".to_owned(),
        });
    }
    let stat = command::redis_owners(
        facts.pid.as_deref().unwrap_or("self"),
        &facts.dir,
        &facts.dbfilename,
    );
    let owners = Owners::parse(&target.capture(&stat, None, PROBE_LIMIT).await?.stdout);
    Ok((facts, owners.for_upload()))
}

/// Waits for the restarted server, checks that it is a new run and returns `DBSIZE`.
async fn confirm_loaded<R: Runtime>(
    target: &Target<'_, R>,
    old_run_id: Option<&str>,
) -> Result<u64, LoadError> {
    let env = &target.details.env;
    let server = &target.details.command;
    let not_started = |detail: String| LoadError::Redis {
        container: target.name.clone(),
        detail,
    };
    match target
        .wait_ready(&command::redis_ready_probe(env, server))
        .await
    {
        Ok(()) => {}
        Err(LoadError::NotRunning { state, .. }) => {
            return Err(not_started(format!(
                "the server stopped ({state}) after it was started with the restored RDB file; its log (docker logs {}) says why — a file from a newer redis version cannot be read",
                target.name
            )));
        }
        Err(LoadError::NotReady { last, .. }) => {
            return Err(not_started(format!(
                "the server did not answer after it was started with the restored RDB file ({last}); see docker logs {}",
                target.name
            )));
        }
        Err(other) => return Err(other),
    }
    let ask = command::redis_loaded(env, server);
    let answer = target.capture(&ask, None, STEP_LIMIT).await?;
    let fields = info_fields(&answer.stdout);
    let run_id = fields.get("run_id").map(String::as_str);
    if old_run_id.is_some() && run_id == old_run_id {
        return Err(not_started(
            "the server has the same run id as before the restore, so it did not restart and did not read the restored file".to_owned(),
        ));
    }
    let keys = answer
        .stdout
        .iter()
        .find_map(|line| line.strip_prefix("dbsize "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            not_started(format!(
                "the restarted server did not answer DBSIZE: {}",
                answer.stderr
            ))
        })?;
    if let Some(loaded) = fields.get("rdb_last_load_keys_loaded") {
        info!(container = %target.name, keys, loaded = %loaded, "The redis server loaded the restored RDB file.");
    }
    Ok(keys)
}

/// The RDB file on Marina's side between reading and uploading; removed when dropped.
struct Spool {
    path: PathBuf,
}

impl Spool {
    /// A new file in `dir`, named so that a leftover is recognisable.
    async fn create(dir: &Path, container: &str) -> Result<Self, LoadError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = dir.join(format!(
            ".marina-redis-restore-{}-{}.rdb",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        tokio::fs::File::create(&path)
            .await
            .map_err(|source| LoadError::Spool {
                container: container.to_owned(),
                path: path.clone(),
                source,
            })?;
        Ok(Self { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `head` and the rest of `dump` to the file; returns its size.
    async fn fill<D: AsyncRead + Unpin>(
        &self,
        container: &str,
        head: Vec<u8>,
        dump: &mut D,
    ) -> Result<u64, LoadError> {
        let spool_error = |source| LoadError::Spool {
            container: container.to_owned(),
            path: self.path.clone(),
            source,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path)
            .await
            .map_err(spool_error)?;
        file.write_all(&head).await.map_err(spool_error)?;
        let mut size = head.len() as u64;
        let mut chunk = vec![0_u8; 64 * 1024];
        loop {
            let count = match dump.read(&mut chunk).await {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(LoadError::DumpUnreadable {
                        container: container.to_owned(),
                        source,
                    });
                }
            };
            file.write_all(&chunk[..count]).await.map_err(spool_error)?;
            size += count as u64;
        }
        file.flush().await.map_err(spool_error)?;
        file.sync_all().await.map_err(spool_error)?;
        Ok(size)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != io::ErrorKind::NotFound
        {
            warn!(path = %self.path.display(), error = %error, "Cannot remove the RDB file kept for a restore; remove it by hand.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_servers_answers_are_read_as_redis_prints_them() {
        let facts = Facts::parse(&lines(
            "config dir /data\nconfig dbfilename dump.rdb\nconfig appendonly no\n# Server\nredis_version:7.0.15\nprocess_id:7\nrun_id:abc123\n",
        ));
        assert_eq!(
            facts,
            Facts {
                dir: "/data".into(),
                dbfilename: "dump.rdb".into(),
                appendonly: "no".into(),
                pid: Some("7".into()),
                run_id: Some("abc123".into()),
            }
        );
        // A disabled CONFIG answers nothing useful.
        let facts = Facts::parse(&lines("config dir \nconfig dbfilename \n"));
        assert!(facts.dir.is_empty());
    }

    #[test]
    fn the_file_belongs_to_the_server_process_first() {
        let owners = Owners::parse(&lines("process 999 998\nfile 0 0 600\ndir 1 1 755\n"));
        assert_eq!(owners.for_upload(), (999, 998, 0o600));
        let owners = Owners::parse(&lines("dir 5 6 755\n"));
        assert_eq!(owners.for_upload(), (5, 6, 0o644));
        assert_eq!(Owners::parse(&[]).for_upload(), (0, 0, 0o644));
    }
}
