//! A small tmpfs for full-disk faults: mounted on a directory (root only: `None` otherwise),
//! unmounted on drop even when the test fails, and filled until a given number of bytes is
//! free; and a read-only bind mount ([`ReadOnly`]) for a directory that takes no write.

use std::path::{Path, PathBuf};

/// A mounted tmpfs; unmounted (lazily) on drop.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB on `dir` (created first); `None` when it cannot (not
    /// root).
    pub fn mount(dir: &Path, size_kib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes the file `filler` until at most `keep` bytes are free (a page at a time: the
    /// tmpfs counts whole pages).
    pub fn fill(&self, keep: u64) -> std::io::Result<()> {
        let filler = self.filler();
        let _ = std::fs::remove_file(&filler);
        let stat = rustix::fs::statvfs(&self.dir)?;
        let free = stat.f_bavail * stat.f_frsize;
        std::fs::write(&filler, vec![0u8; free.saturating_sub(keep) as usize])
    }

    /// Removes the filler: the space is back.
    pub fn unfill(&self) {
        let _ = std::fs::remove_file(self.filler());
    }

    pub fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// A directory made read-only in place by a read-only bind mount over it (root only: `None`
/// otherwise): its files stay readable, nothing can be written into it, even by root. The
/// mount is removed (lazily) on drop.
pub struct ReadOnly {
    pub dir: PathBuf,
}

impl ReadOnly {
    pub fn bind(dir: &Path) -> Option<ReadOnly> {
        let mount = |args: &[&str], paths: &[&Path]| {
            std::process::Command::new("mount")
                .args(args)
                .args(paths)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !mount(&["--bind"], &[dir, dir]) {
            return None;
        }
        let guard = ReadOnly {
            dir: dir.to_path_buf(),
        };
        mount(&["-o", "remount,ro,bind"], &[dir]).then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}
