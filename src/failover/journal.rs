//! The events journal: one JSON object per line, appended as events happen
//! and change, read back at start so a restart loses nothing. A line that
//! does not parse (a torn write at a crash, a corrupt disk block) is
//! reported and skipped, never fatal.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::event::Event;

/// Where events are kept; `None` keeps them in memory only.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    path: Option<PathBuf>,
}

/// What reading a journal found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last version of each event, oldest first.
    pub events: Vec<Event>,
    /// Lines skipped, with their line number and why.
    pub skipped: Vec<(usize, String)>,
}

impl Journal {
    pub fn new(path: Option<PathBuf>) -> Journal {
        Journal { path }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Every event in the journal (none if it does not exist yet).
    pub fn load(&self) -> std::io::Result<Loaded> {
        let Some(path) = &self.path else { return Ok(Loaded::default()) };
        match std::fs::read(path) {
            Ok(bytes) => Ok(parse(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Loaded::default()),
            Err(e) => Err(e),
        }
    }

    /// Append one version of an event. A failure is logged, not fatal: the
    /// event stays in memory and is served.
    pub fn append(&self, event: &Event) {
        let Some(path) = &self.path else { return };
        let write = || -> std::io::Result<()> {
            let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
            line.push(b'\n');
            let mut file = OpenOptions::new().create(true).append(true).open(path)?;
            // One write per line: a crash tears at most the last line.
            file.write_all(&line)?;
            file.sync_data()
        };
        if let Err(e) = write() {
            tracing::error!(path = %path.display(), error = %e, event = event.id, "cannot append to the events journal");
        }
    }
}

/// Parse journal bytes: the last version of each event id, by id.
pub fn parse(bytes: &[u8]) -> Loaded {
    let mut by_id = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(event) => {
                by_id.insert(event.id, event);
            }
            Err(e) => skipped.push((i + 1, e.to_string())),
        }
    }
    Loaded { events: by_id.into_values().collect(), skipped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::event::EventKind;
    use crate::model::System;

    #[test]
    fn later_versions_win_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(Some(dir.path().join("events.jsonl")));
        let mut event = Event::new(1, EventKind::Failover, System::Postgres, "42", 1000.0);
        journal.append(&event);
        event.lost_bytes = Some(54_000);
        journal.append(&event);
        journal.append(&Event::new(2, EventKind::SplitBrain, System::Postgres, "42", 1010.0));
        let mut file = OpenOptions::new().append(true).open(journal.path().unwrap()).unwrap();
        file.write_all(b"{\"id\":3,\"kind\":\"fail").unwrap();
        let loaded = journal.load().unwrap();
        assert_eq!(loaded.events.len(), 2);
        assert_eq!(loaded.events[0].lost_bytes, Some(54_000), "the last version of event 1");
        assert_eq!(loaded.skipped.len(), 1);
        assert_eq!(loaded.skipped[0].0, 4, "the torn line is named");
    }

    #[test]
    fn no_journal_yet_is_no_events() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = Journal::new(Some(dir.path().join("missing.jsonl"))).load().unwrap();
        assert!(loaded.events.is_empty() && loaded.skipped.is_empty());
    }
}
