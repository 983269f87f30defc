//! When to read `--config` again: on SIGHUP, and when the file changes
//! (its folder is watched, so the kubelet's symlink swap of a mounted
//! ConfigMap is seen). A change is reported only when the text differs
//! from the text last read, so a burst of events is one reload.

use std::path::{Path, PathBuf};

use notify::Watcher;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use super::watch::{SETTLE, watch_folder};

/// The configuration file, and what wakes a reload.
pub struct ConfigWatch {
    path: PathBuf,
    last: Option<String>,
    hangup: Signal,
    events: mpsc::UnboundedReceiver<()>,
    /// Kept for its drop, which stops the watch.
    _watcher: Option<Box<dyn Watcher + Send>>,
}

/// Why the file was read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Hangup,
    Changed,
}

impl Trigger {
    pub fn label(self) -> &'static str {
        match self {
            Self::Hangup => "SIGHUP",
            Self::Changed => "file changed",
        }
    }
}

impl ConfigWatch {
    /// Watches `path`, whose text the running configuration came from.
    pub fn new(path: PathBuf, text: Option<String>) -> std::io::Result<Self> {
        let hangup = signal(SignalKind::hangup())?;
        let (tx, events) = mpsc::unbounded_channel();
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let watcher = match watch_folder(&folder, tx) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "cannot watch --config; it is read again on SIGHUP only");
                None
            }
        };
        Ok(Self {
            path,
            last: text,
            hangup,
            events,
            _watcher: watcher,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for a SIGHUP, or a change of the file's text; the new text, or
    /// why it could not be read.
    pub async fn next(&mut self) -> (Trigger, Result<String, String>) {
        loop {
            let trigger = tokio::select! {
                _ = self.hangup.recv() => Trigger::Hangup,
                Some(()) = self.events.recv() => {
                    // Let a burst of events (a write, a symlink swap) settle.
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(SETTLE) => break,
                            _ = self.events.recv() => {}
                        }
                    }
                    Trigger::Changed
                }
            };
            let text = std::fs::read_to_string(&self.path)
                .map_err(|e| format!("cannot read --config {}: {e}", self.path.display()));
            if trigger == Trigger::Changed && text.as_ref().ok() == self.last.as_ref() {
                continue;
            }
            if let Ok(t) = &text {
                self.last = Some(t.clone());
            }
            return (trigger, text);
        }
    }
}
