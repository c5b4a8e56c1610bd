//! Crash-safe file writes and bounded reads, shared by topology, render, state and edge; outside
//! the data-flow chain because all of them need it. A reader (HAProxy loading a map, a playbook reading `active-color-<env>`, vezasock
//! itself) sees the old content or the new one, never a torn file, even when the writer is
//! killed with SIGKILL or the machine loses power.
//!
//! [`write_atomic`]: write a temp file in the same directory (a rename is only atomic within one
//! file system), fsync it (so the rename cannot reach the disk before the data), rename it over
//! the target, fsync the directory (so the rename itself is durable). [`write_atomic_whole`]
//! skips the directory fsync, [`write_atomic_volatile`] both fsyncs, for files that need less.
//!
//! A writer killed before the rename leaves its temp file behind
//! (`.<name>.vezasock-tmp.<pid>.<n>`). Readers never see it (they open the target by name), and
//! the next write in the same directory removes leftovers whose process is gone.
//!
//! [`read_bounded`]: every file vezasock reads (the topology, the fleet file, a PEM file, its own
//! state files) is read only when it is a regular file, and never past a size bound, so that a
//! name like `/dev/zero`, `/dev/urandom`, a FIFO or a directory is refused at once instead of
//! filling memory or blocking.
//!
//! Errors say what was being done to which path; each caller maps them to its own error type.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file system call that failed, with what it was doing and on which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct Error {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl Error {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The size bounds of the files vezasock reads (bytes). Each is far above what a real file of
/// its kind holds; a file past it is refused, not read.
pub mod limit {
    /// A topology or fleet file (a real one is a few KiB).
    pub const CONFIG: u64 = 1 << 20;
    /// A PEM file given to `cert update` (a chain with its key is a few KiB; HAProxy's own
    /// payload limit is checked after the read).
    pub const PEM: u64 = 1 << 20;
    /// A file of vezasock's own state or a map file it wrote (a map of thousands of hosts, a
    /// journal before its rotation, a long history).
    pub const STATE: u64 = 64 << 20;
}

/// Reads the whole of `path` when it is a regular file of at most `limit` bytes. Anything else
/// is an error whose kind says why: [`ErrorKind::InvalidInput`] for a device, FIFO, socket or
/// directory (opened without blocking, never read), [`ErrorKind::FileTooLarge`] past `limit`
/// (checked before the read, and again while reading, for a file that grows meanwhile).
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    let too_large = || {
        std::io::Error::new(
            ErrorKind::FileTooLarge,
            format!("larger than the {limit} bytes read for such a file"),
        )
    };
    if len > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    (&file).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// At most `max` bytes of the regular file `path` from `offset` (none past its end): an
/// append-only file read in steps.
pub fn read_chunk(path: &Path, offset: u64, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let (mut file, len) = open_regular(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::with_capacity(len.saturating_sub(offset).min(max) as usize);
    (&file).take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `path` opened for reading when it is a regular file, with its length. A device, FIFO,
/// socket or directory is [`ErrorKind::InvalidInput`], opened without blocking, never read.
fn open_regular(path: &Path) -> std::io::Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores it.
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nonblock)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            format!("not a regular file ({})", file_kind(kind)),
        ));
    }
    Ok((file, meta.len()))
}

/// [`read_bounded`] for a UTF-8 text file.
pub fn read_bounded_text(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

/// True for the errors of [`read_bounded`] that say the file is not one to read (not a regular
/// file, or too large), as opposed to a failing read.
pub fn is_refused_read(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::FileTooLarge)
}

fn file_kind(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Makes temp names unique between threads of one process (the pid separates processes).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` atomically and durably. A file that already exists keeps its
/// permission bits (HAProxy must still be able to read a map file after vezasock rewrites it).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace(path, bytes, Fsyncs::FileAndDir)
}

/// Like [`write_atomic`] without the directory fsync: after a power cut the file is whole
/// (its data reached the disk before the rename) but may be the old one or missing. For a
/// transaction's own files (`transaction.json`, the pending map file), which a power cut makes
/// moot: HAProxy restarts from the map files and the version it staged is gone.
pub fn write_atomic_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace(path, bytes, Fsyncs::File)
}

/// Like [`write_atomic`] (readers see the old file or the new one, never a part), without the
/// fsyncs: for files that only inform (the lock holder), where a power cut losing the last
/// write costs nothing and a flip should not pay two fsyncs for it.
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace(path, bytes, Fsyncs::Nothing)
}

/// What a replace fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fsyncs {
    FileAndDir,
    File,
    Nothing,
}

fn replace(path: &Path, bytes: &[u8], sync: Fsyncs) -> Result<(), Error> {
    let dir = parent_dir(path);
    let name = file_name(path)?;
    remove_dead_leftovers(&dir);

    let tmp = dir.join(format!(
        "{}{}.{}",
        temp_prefix(&name),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_then_rename(path, &tmp, bytes, sync != Fsyncs::Nothing);
    if result.is_err() {
        // Best effort: the error that matters is the one already in `result`.
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if sync == Fsyncs::FileAndDir {
        sync_dir(&dir)?;
    }
    Ok(())
}

fn write_then_rename(path: &Path, tmp: &Path, bytes: &[u8], sync_file: bool) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| Error::io("create the temp file", tmp, e))?;
    match std::fs::metadata(path) {
        Ok(meta) => file
            .set_permissions(meta.permissions())
            .map_err(|e| Error::io("set the permissions of", tmp, e))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read the metadata of", path, e)),
    }
    file.write_all(bytes)
        .map_err(|e| Error::io("write", tmp, e))?;
    if sync_file {
        file.sync_all().map_err(|e| Error::io("fsync", tmp, e))?;
    }
    drop(file);
    std::fs::rename(tmp, path).map_err(|e| Error::io("rename the temp file over", path, e))
}

/// Fsyncs a directory, making a rename or a file creation in it durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync the directory", dir, e))
}

/// The temp files a killed writer left behind for `path` (for `status` and tests).
pub fn leftovers(path: &Path) -> Vec<PathBuf> {
    let dir = parent_dir(path);
    let Ok(name) = file_name(path) else {
        return Vec::new();
    };
    let prefix = temp_prefix(&name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Removes every temp file in `dir` (of any target) whose writer process no longer exists: a
/// writer killed mid-write may have been writing a file that nobody writes again soon (the
/// history of another env, `server-admin.json`). Best effort: a file that cannot be removed is
/// only clutter, never read. `apply` calls it on the maps and state dirs; every atomic write
/// calls it on its own dir.
pub fn remove_dead_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if !file_name.starts_with('.') {
            continue;
        }
        let Some(at) = file_name.rfind(TEMP_MARK) else {
            continue;
        };
        let rest = &file_name[at + TEMP_MARK.len()..];
        let pid = rest.split('.').next().and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = pid {
            if !process_alive(pid) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// True when a process with this pid exists (signal 0; EPERM still means it exists).
pub(crate) fn process_alive(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}

/// What marks a temp file: `.<name>.vezasock-tmp.<pid>.<n>`.
const TEMP_MARK: &str = ".vezasock-tmp.";

fn temp_prefix(name: &str) -> String {
    format!(".{name}{TEMP_MARK}")
}

/// The longest temp name a write of a file named `name` can use, in bytes: its prefix, the
/// longest pid (`u32`) and the longest counter (`u64`). A caller checks it against the file
/// system's 255-byte limit before it changes anything.
pub fn longest_temp_name(name: &str) -> usize {
    temp_prefix(name).len() + u32::MAX.to_string().len() + 1 + u64::MAX.to_string().len()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> Result<String, Error> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::io(
                "write",
                path,
                std::io::Error::new(ErrorKind::InvalidInput, "the path has no file name"),
            )
        })
}
