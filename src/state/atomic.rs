//! State's file helpers: atomic replacement (the crash-safe writes of [`crate::files`], with
//! their errors as state [`Error`]s) and reads where a missing file is not an error.

use std::io::ErrorKind;
use std::path::Path;

use super::Error;
use crate::files;

pub use crate::files::leftovers;
pub(crate) use crate::files::process_alive;

/// Replaces `path` with `bytes` atomically and durably, keeping an existing file's permission
/// bits ([`files::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    files::write_atomic(path, bytes).map_err(from_files)
}

/// Puts `path` back to what a read before a change found: `old`'s bytes, or no file.
pub fn put_file_back(path: &Path, old: Option<&[u8]>) -> Result<(), String> {
    match old {
        Some(bytes) => write_atomic(path, bytes).map_err(|e| e.to_string()),
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
        },
    }
}

/// [`files::write_atomic_whole`] (whole after a power cut, its rename not durable), with the
/// state module's error.
pub fn write_atomic_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    files::write_atomic_whole(path, bytes).map_err(from_files)
}

/// [`files::write_atomic_volatile`] (atomic, not durable), with the state module's error.
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    files::write_atomic_volatile(path, bytes).map_err(from_files)
}

/// Fsyncs a directory, making a rename or a file creation in it durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    files::sync_dir(dir).map_err(from_files)
}

fn from_files(e: files::Error) -> Error {
    Error::io(e.action, &e.path, e.source)
}

/// Reads a whole file, bounded ([`files::read_bounded`], [`files::limit::STATE`]); `Ok(None)`
/// when it does not exist. Something that is not a regular file, or too large, is
/// [`Error::NotReadable`].
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match files::read_bounded(path, files::limit::STATE) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if files::is_refused_read(&e) => Err(Error::NotReadable {
            path: path.to_path_buf(),
            why: e.to_string(),
        }),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Reads a whole UTF-8 file; `Ok(None)` when it does not exist.
pub fn read_optional_string(path: &Path) -> Result<Option<String>, Error> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::io(
                "read",
                path,
                std::io::Error::new(ErrorKind::InvalidData, "the file is not UTF-8 text"),
            )
        }),
    }
}
