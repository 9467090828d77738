//! A bounded on-disk queue of outgoing messages: what must not be lost while its destination
//! is unreachable (a cabinet's detector reports while the broker is down, the optimizer's
//! time-series batches while the database is) waits here and is sent in order later.
//! Synchronous std I/O; the async shells call it between awaits.
//!
//! Layout: `dir/queue.jsonl`, one JSON payload a line, and `dir/queue.head`, the number of
//! lines at the front already delivered. Appends are flushed before `push` returns; the head
//! moves only when the broker acknowledged delivery (MQTT PUBACK), so a crash re-sends at most
//! the one report in flight (the optimizer drops duplicates by `seq`). The file is compacted
//! when more than half of it is delivered.
//!
//! Bound: at most `max` undelivered entries. Past it the oldest is dropped and counted in
//! [`DiskQueue::dropped`] (`push` says so; the caller logs it): at one report a minute the
//! cabinet's default of 10,000 lasts about a week of outage.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BufferError + '_ {
    move |source| BufferError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub struct DiskQueue {
    file: PathBuf,
    head_file: PathBuf,
    /// Undelivered payloads, oldest first (mirrors the file past the head).
    items: VecDeque<String>,
    /// Lines in the file before the first undelivered one.
    head: usize,
    max: usize,
    dropped: u64,
}

impl DiskQueue {
    /// Open (or create) the queue in `dir`, recovering what a previous run left.
    pub fn open(dir: &Path, max: usize) -> Result<Self, BufferError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let file = dir.join("queue.jsonl");
        let head_file = dir.join("queue.head");
        let head: usize = fs::read_to_string(&head_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut items = VecDeque::new();
        if file.exists() {
            let f = File::open(&file).map_err(io(&file))?;
            for (i, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(io(&file))?;
                // A torn last line (crash mid-write) is not valid JSON: skip it.
                if i >= head && serde_json::from_str::<serde_json::Value>(&line).is_ok() {
                    items.push_back(line);
                }
            }
        }
        let mut q = DiskQueue {
            file,
            head_file,
            items,
            head: 0,
            max: max.max(1),
            dropped: 0,
        };
        q.rewrite()?; // start from a compact file
        while q.items.len() > q.max {
            q.items.pop_front();
            q.dropped += 1;
        }
        Ok(q)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Reports dropped because the bound was reached, since this queue was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The oldest undelivered payload.
    pub fn front(&self) -> Option<&str> {
        self.items.front().map(|s| s.as_str())
    }

    /// Append a payload (one line of JSON), durably. Returns whether the oldest entry was
    /// dropped to keep the bound.
    pub fn push(&mut self, payload: &str) -> Result<bool, BufferError> {
        let line = payload.replace('\n', " ");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .map_err(io(&self.file))?;
        writeln!(f, "{line}").map_err(io(&self.file))?;
        f.sync_data().map_err(io(&self.file))?;
        self.items.push_back(line);
        if self.items.len() > self.max {
            self.items.pop_front();
            self.dropped += 1;
            self.head += 1;
            self.save_head()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The front payload was delivered: forget it.
    pub fn pop(&mut self) -> Result<(), BufferError> {
        if self.items.pop_front().is_some() {
            self.head += 1;
            if self.head > 64 && self.head > self.items.len() {
                self.rewrite()?;
            } else {
                self.save_head()?;
            }
        }
        Ok(())
    }

    fn save_head(&self) -> Result<(), BufferError> {
        let tmp = self.head_file.with_extension("head.tmp");
        fs::write(&tmp, self.head.to_string()).map_err(io(&tmp))?;
        fs::rename(&tmp, &self.head_file).map_err(io(&self.head_file))
    }

    fn rewrite(&mut self) -> Result<(), BufferError> {
        let tmp = self.file.with_extension("jsonl.tmp");
        {
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            for l in &self.items {
                writeln!(f, "{l}").map_err(io(&tmp))?;
            }
            f.sync_data().map_err(io(&tmp))?;
        }
        // Head 0 first: a crash between the two steps re-sends, never loses.
        self.head = 0;
        self.save_head()?;
        fs::rename(&tmp, &self.file).map_err(io(&self.file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gw-buffer-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn survives_restart_in_order_and_bounds() {
        let d = tmpdir("restart");
        let mut q = DiskQueue::open(&d, 5).unwrap();
        for i in 0..4 {
            q.push(&format!("{{\"seq\":{i}}}")).unwrap();
        }
        q.pop().unwrap();
        drop(q);
        // A crash left a torn line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.join("queue.jsonl"))
            .unwrap();
        write!(f, "{{\"seq\":").unwrap();
        drop(f);
        let mut q = DiskQueue::open(&d, 5).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q.front(), Some("{\"seq\":1}"));
        for i in 4..10 {
            q.push(&format!("{{\"seq\":{i}}}")).unwrap();
        }
        assert_eq!(q.len(), 5);
        assert_eq!(q.dropped(), 4);
        assert_eq!(q.front(), Some("{\"seq\":5}"));
        drop(q);
        let q = DiskQueue::open(&d, 5).unwrap();
        assert_eq!(q.front(), Some("{\"seq\":5}"));
        assert_eq!(q.len(), 5);
        let _ = fs::remove_dir_all(&d);
    }
}
