//! Durable JSON-lines files in the data directory: the audit log of every human action and
//! the history of decisions. A line is written and flushed to disk (`fsync`) before the call
//! returns, so what the console says it recorded survives a crash or a restart.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An append-only JSON-lines file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Open (create) the file, and read what it holds. A line that does not parse (a write cut
    /// by a crash) is skipped and logged, never fatal.
    pub fn open<T: DeserializeOwned>(path: &Path) -> std::io::Result<(Journal, Vec<T>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut entries = Vec::new();
        if let Ok(f) = File::open(path) {
            for (n, line) in BufReader::new(f).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str(&line) {
                    Ok(v) => entries.push(v),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), line = n + 1, error = %e, "journal line skipped")
                    }
                }
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // A line torn by a crash is ended, so the next entry starts on a line of its own.
        if file.metadata()?.len() > 0 {
            let mut f = File::open(path)?;
            f.seek(SeekFrom::End(-1))?;
            let mut last = [0u8];
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            entries,
        ))
    }

    /// Append one entry and flush it to disk.
    pub fn append<T: Serialize>(&mut self, entry: &T) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopening_and_a_torn_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("gw-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("x.jsonl");
        let (mut j, old): (Journal, Vec<u32>) = Journal::open(&p).unwrap();
        assert!(old.is_empty());
        j.append(&1u32).unwrap();
        j.append(&2u32).unwrap();
        drop(j);
        // A crash in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"cut").unwrap();
        drop(f);
        let (mut j, old): (Journal, Vec<u32>) = Journal::open(&p).unwrap();
        assert_eq!(old, vec![1, 2]);
        j.append(&3u32).unwrap();
        let (_, old): (Journal, Vec<u32>) = Journal::open(&p).unwrap();
        assert_eq!(old, vec![1, 2, 3]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
