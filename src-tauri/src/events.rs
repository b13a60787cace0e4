//! App-wide events for the screens: one `Channel<AppEvent>` per page, handed over by
//! `events_subscribe`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tauri::ipc::Channel;

use companion::app::CoreEvent;

use crate::logs::LogEntry;

/// What the `events_subscribe` channel carries (`AppEvent` in ui/src/api/types.ts): the
/// core's events, and log lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AppEvent {
    /// Devices, a device's display, a pushed confirmation (tag `type`).
    Core(CoreEvent),
    /// A new log line (`{ "type": "log", "entry": ... }`).
    Log(LogLine),
}

/// A log line event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LogLine {
    /// A new log line.
    Log {
        /// The line, secrets already redacted.
        entry: LogEntry,
    },
}

impl From<CoreEvent> for AppEvent {
    fn from(event: CoreEvent) -> Self {
        AppEvent::Core(event)
    }
}

/// The pages listening for app events, one channel per webview: a page that reloads and
/// subscribes again replaces its old channel.
#[derive(Clone, Default)]
pub struct Subscribers {
    channels: Arc<Mutex<BTreeMap<String, Channel<AppEvent>>>>,
}

impl std::fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribers")
            .field("webviews", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Subscribers {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Channel<AppEvent>>> {
        // Channels are inserted and removed whole; a poisoned map is still a valid map.
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends this webview's events to `channel` from now on.
    pub fn subscribe(&self, webview_label: &str, channel: Channel<AppEvent>) {
        self.lock().insert(webview_label.to_owned(), channel);
    }

    /// How many pages listen.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Sends an event to every page; a channel whose page is gone is dropped.
    pub fn emit(&self, event: &AppEvent) {
        // Send outside the lock: a send evaluates script in the webview.
        let channels: Vec<(String, Channel<AppEvent>)> = self
            .lock()
            .iter()
            .map(|(label, channel)| (label.clone(), channel.clone()))
            .collect();
        for (label, channel) in channels {
            if channel.send(event.clone()).is_err() {
                let mut map = self.lock();
                if map.get(&label).is_some_and(|c| c.id() == channel.id()) {
                    map.remove(&label);
                }
            }
        }
    }
}
