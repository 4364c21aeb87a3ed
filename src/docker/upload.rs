//! Putting a file into a container's filesystem with the engine's archive upload
//! (`PUT /containers/{id}/archive`), which works on a stopped container too — how a redis
//! restore replaces the server's RDB file while the server is down.
//!
//! The upload is a tar stream built on the fly: one header, the file's bytes as they are read,
//! the padding and the end-of-archive blocks. The file is never held in memory. The engine
//! applies the header's owner and mode (without `copyUIDGID`, which would impose the
//! container's configured user instead), so the file belongs to whoever the caller says — the
//! uid the database server runs as.

use std::fmt;
use std::io;

use bollard::Docker;
use bollard::query_parameters::UploadToContainerOptionsBuilder;
use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::{Result, RuntimeError, container_error};

/// A tar block.
const BLOCK: usize = 512;
/// The longest file name a plain ustar header holds.
const NAME_BYTES: usize = 100;
/// Bytes read from the file at a time.
const CHUNK: usize = 64 * 1024;
/// The largest size an 11-digit octal size field holds; larger sizes use the base-256 form
/// that GNU tar and Go's archive/tar (the engine's) read.
const OCTAL_SIZE_MAX: u64 = 0o777_7777_7777;

/// One regular file to put into a container.
pub struct UploadFile {
    /// The absolute directory in the container it goes into; it must exist.
    pub dir: String,
    /// The file's name in `dir` (no `/`, at most 100 bytes); an existing file is replaced.
    pub name: String,
    /// Its size in bytes: exactly what `content` yields.
    pub size: u64,
    /// The owner's uid.
    pub uid: u32,
    /// The owner's gid.
    pub gid: u32,
    /// The permission bits (e.g. `0o644`).
    pub mode: u32,
    /// The modification time, in seconds since the epoch.
    pub modified: u64,
    /// The bytes.
    pub content: Box<dyn AsyncRead + Send + Unpin>,
}

impl fmt::Debug for UploadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadFile")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .field("size", &self.size)
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish_non_exhaustive()
    }
}

impl UploadFile {
    /// Where the file ends up in the container.
    #[must_use]
    pub fn path(&self) -> String {
        format!("{}/{}", self.dir.trim_end_matches('/'), self.name)
    }
}

/// `Runtime::upload_file` on the engine.
pub(super) async fn upload_file(docker: &Docker, container: &str, file: UploadFile) -> Result<()> {
    let path = file.path();
    let header = tar_header(&file).map_err(|reason| RuntimeError::Upload {
        container: container.to_owned(),
        path: path.clone(),
        reason,
    })?;
    if !file.dir.starts_with('/') {
        return Err(RuntimeError::Upload {
            container: container.to_owned(),
            path,
            reason: "the directory is not an absolute path".to_owned(),
        });
    }
    tracing::debug!(container = %container, path = %path, bytes = file.size, uid = file.uid,
        gid = file.gid, "Uploading a file into a container.");
    let options = UploadToContainerOptionsBuilder::new()
        .path(&file.dir)
        .no_overwrite_dir_non_dir("true")
        .build();
    let body = bollard::body_try_stream(tar_stream(
        Bytes::copy_from_slice(&header),
        file.size,
        file.content,
    ));
    docker
        .upload_to_container(container, Some(options), body)
        .await
        .map_err(|e| container_error("upload a file into", container, e))
}

/// `Runtime::removes_itself_when_stopped` on the engine: `HostConfig.AutoRemove`.
pub(super) async fn auto_removes(docker: &Docker, container: &str) -> Result<bool> {
    let inspected = docker
        .inspect_container(container, None)
        .await
        .map_err(|e| container_error("inspect", container, e))?;
    Ok(inspected
        .host_config
        .and_then(|host| host.auto_remove)
        .unwrap_or(false))
}

/// The tar archive of one file: its header, its bytes (checked against the announced size),
/// the padding to a whole block, and two empty blocks.
fn tar_stream(
    header: Bytes,
    size: u64,
    content: Box<dyn AsyncRead + Send + Unpin>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    /// Where the archive is.
    enum Part {
        Header,
        Data,
        Trailer,
        Done,
    }
    let state = (Part::Header, content, 0_u64);
    futures::stream::try_unfold(state, move |(part, mut content, sent)| {
        let header = header.clone();
        async move {
            match part {
                Part::Header => Ok(Some((header, (Part::Data, content, 0)))),
                Part::Data if sent == size => {
                    // Nothing may follow the announced size: a longer file means it changed.
                    let mut probe = [0_u8; 1];
                    if content.read(&mut probe).await? != 0 {
                        return Err(io::Error::other(format!(
                            "the file is longer than the {size} bytes announced"
                        )));
                    }
                    Ok(Some((Bytes::new(), (Part::Trailer, content, sent))))
                }
                Part::Data => {
                    let room = usize::try_from(size - sent)
                        .unwrap_or(usize::MAX)
                        .min(CHUNK);
                    let mut chunk = vec![0_u8; room];
                    let count = content.read(&mut chunk).await?;
                    if count == 0 {
                        return Err(io::Error::other(format!(
                            "the file ended after {sent} of the {size} bytes announced"
                        )));
                    }
                    chunk.truncate(count);
                    Ok(Some((
                        Bytes::from(chunk),
                        (Part::Data, content, sent + count as u64),
                    )))
                }
                Part::Trailer => {
                    let padding = usize::try_from(size % BLOCK as u64)
                        .map_or(0, |rest| if rest == 0 { 0 } else { BLOCK - rest });
                    let trailer = vec![0_u8; padding + 2 * BLOCK];
                    Ok(Some((Bytes::from(trailer), (Part::Done, content, sent))))
                }
                Part::Done => Ok(None),
            }
        }
    })
}

/// The ustar header of `file`, or why it cannot have one.
fn tar_header(file: &UploadFile) -> std::result::Result<[u8; BLOCK], String> {
    let name = file.name.as_bytes();
    if name.is_empty() || name.len() > NAME_BYTES || file.name.contains('/') || file.name == ".." {
        return Err(format!(
            "{:?} is not a plain file name of at most {NAME_BYTES} bytes",
            file.name
        ));
    }
    let mut header = [0_u8; BLOCK];
    header[..name.len()].copy_from_slice(name);
    octal(&mut header[100..108], u64::from(file.mode & 0o7777));
    octal(&mut header[108..116], u64::from(file.uid));
    octal(&mut header[116..124], u64::from(file.gid));
    if file.size <= OCTAL_SIZE_MAX {
        octal(&mut header[124..136], file.size);
    } else {
        // Base-256: the first byte's high bit set, the number big-endian in the rest.
        header[124] = 0x80;
        header[128..136].copy_from_slice(&file.size.to_be_bytes());
    }
    octal(&mut header[136..148], file.modified.min(OCTAL_SIZE_MAX));
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    octal(&mut header[148..155], sum);
    header[155] = b' ';
    Ok(header)
}

/// Writes `value` as zero-padded octal digits filling `field` but its last byte, a NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let text = text.as_bytes();
    // A value too large for the field keeps its lowest digits; callers stay in range.
    field[..digits].copy_from_slice(&text[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    fn file(name: &str, content: &'static [u8]) -> UploadFile {
        UploadFile {
            dir: "/data".to_owned(),
            name: name.to_owned(),
            size: content.len() as u64,
            uid: 999,
            gid: 998,
            mode: 0o640,
            modified: 1_700_000_000,
            content: Box::new(content),
        }
    }

    #[tokio::test]
    async fn the_archive_is_one_header_the_bytes_and_whole_blocks() {
        let upload = file("dump.rdb", b"REDIS0010-data");
        let header = tar_header(&upload).unwrap();
        assert_eq!(&header[..8], b"dump.rdb");
        assert_eq!(&header[100..108], b"0000640\0");
        assert_eq!(&header[108..116], b"0001747\0");
        assert_eq!(&header[124..136], b"00000000016\0");
        assert_eq!(header[156], b'0');
        // The checksum: the sum of the header's bytes with the checksum field as spaces.
        let mut blank = header;
        blank[148..156].copy_from_slice(b"        ");
        let sum: u64 = blank.iter().map(|&b| u64::from(b)).sum();
        let written = std::str::from_utf8(&header[148..154]).unwrap();
        assert_eq!(u64::from_str_radix(written, 8).unwrap(), sum);

        let archive: Vec<u8> =
            tar_stream(Bytes::copy_from_slice(&header), upload.size, upload.content)
                .map_ok(|chunk| chunk.to_vec())
                .try_concat()
                .await
                .unwrap();
        assert_eq!(archive.len(), 4 * BLOCK);
        assert_eq!(&archive[BLOCK..BLOCK + 14], b"REDIS0010-data");
        assert!(archive[BLOCK + 14..].iter().all(|&b| b == 0));
    }

    #[tokio::test]
    async fn a_file_that_is_not_the_announced_size_breaks_the_upload() {
        for (announced, content) in [(20, &b"short"[..]), (3, &b"longer"[..])] {
            let mut upload = file("dump.rdb", content);
            upload.size = announced;
            let header = tar_header(&upload).unwrap();
            let result: io::Result<Vec<Bytes>> =
                tar_stream(Bytes::copy_from_slice(&header), upload.size, upload.content)
                    .try_collect()
                    .await;
            assert!(result.is_err(), "{announced}");
        }
    }

    #[test]
    fn names_must_fit_a_plain_header_and_huge_sizes_use_base_256() {
        for bad in ["", "a/b", "..", &"x".repeat(101)] {
            assert!(tar_header(&file(bad, b"")).is_err(), "{bad:?}");
        }
        let mut huge = file("dump.rdb", b"");
        huge.size = 20 * 1024 * 1024 * 1024;
        let header = tar_header(&huge).unwrap();
        assert_eq!(header[124], 0x80);
        assert_eq!(
            u64::from_be_bytes(header[128..136].try_into().unwrap()),
            huge.size
        );
    }
}
