//! Where the spool's files are, and how it writes them so that a crash
//! leaves either the old file or the new one: private files, replaced
//! atomically, their directory synced.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where the spool's files are.
#[derive(Debug, Clone)]
pub struct Layout {
    pub segments: PathBuf,
    pub outbox: PathBuf,
    pub(super) next_seq: PathBuf,
    cursor: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        Self {
            segments: dir.join("segments"),
            outbox: dir.join("outbox"),
            next_seq: dir.join("next_seq"),
            cursor: dir.join("cursor"),
        }
    }

    /// The spool's folders, readable by this user only: they hold the
    /// vehicle's raw CAN traffic.
    pub(super) fn create(&self) -> Result<()> {
        for dir in [&self.segments, &self.outbox] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        for dir in [
            &self.segments,
            &self.outbox,
            self.segments.parent().unwrap_or(Path::new(".")),
        ] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", dir.display()))?;
        }
        Ok(())
    }

    /// Sealed files in the outbox, oldest (lowest sequence number) first.
    pub fn outbox_files(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.outbox).with_context(|| format!("reading {}", self.outbox.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "parquet")
                && let Some(seq) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.rsplit('_').next())
                    .and_then(|s| s.parse().ok())
            {
                files.push((seq, path));
            }
        }
        files.sort();
        Ok(files)
    }

    pub(super) fn segments(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.segments).with_context(|| format!("reading {}", self.segments.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "seg")
                && let Some(seq) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok())
            {
                found.push((seq, path));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Bytes held in segments and the outbox.
    pub fn used_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for dir in [&self.segments, &self.outbox] {
            for entry in fs::read_dir(dir)? {
                total += entry?.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok(total)
    }

    pub fn read_cursor(&self) -> Option<u64> {
        fs::read_to_string(&self.cursor)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    pub(super) fn write_cursor(&self, position: u64) -> Result<()> {
        write_atomically(&self.cursor, position.to_string().as_bytes())
    }
}

/// Creates (or truncates) a file only this user may read or write.
pub(super) fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Replaces `path` with `bytes` so a crash leaves the old or the new file, never half of one.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = create_private(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_data()?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

pub(super) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
