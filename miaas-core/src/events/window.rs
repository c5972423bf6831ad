//! The newest events, in memory, for followers to read without a query.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::Published;

/// How many events the window keeps.
const WINDOW: usize = 8_192;

/// A window of the log: every event with a cursor after `from`, newest last.
#[derive(Debug)]
pub(super) struct Window {
    state: RwLock<State>,
    newest: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// `None` until filled once: the window then holds nothing yet.
    from: Option<u64>,
    events: VecDeque<Arc<Published>>,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            newest: watch::Sender::new(0),
        }
    }
}

impl Window {
    /// Wakes on every event added.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// Begins the (empty) window after `cursor`.
    pub(super) fn start_at(&self, cursor: u64) {
        if let Ok(mut state) = self.state.write() {
            state.from = Some(cursor);
            state.events.clear();
        }
        self.newest.send_replace(cursor);
    }

    /// Adds events read after the window's end.
    pub(super) fn push(&self, events: Vec<Arc<Published>>) {
        let Some(last) = events.last().map(|e| e.event.cursor) else {
            return;
        };
        if let Ok(mut state) = self.state.write() {
            state.events.extend(events);
            while state.events.len() > WINDOW {
                if let Some(dropped) = state.events.pop_front() {
                    state.from = Some(dropped.event.cursor);
                }
            }
        }
        self.newest.send_replace(last);
    }

    /// Up to `limit` events after `after`; `None` when the window does not reach
    /// back that far (read the store).
    pub(super) fn after(&self, after: u64, limit: usize) -> Option<Vec<Arc<Published>>> {
        let state = self.state.read().ok()?;
        if after < state.from? {
            return None;
        }
        let start = state.events.partition_point(|e| e.event.cursor <= after);
        Some(state.events.range(start..).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Event;

    fn event(cursor: u64) -> Arc<Published> {
        let mut event = Event::new("node.registered", "node", "n", "x".into());
        event.cursor = cursor;
        Published::new(event)
    }

    #[test]
    fn the_window_answers_only_for_what_it_holds_whole() {
        let window = Window::default();
        assert!(window.after(0, 10).is_none(), "not filled yet");
        window.start_at(5);
        assert!(window.after(4, 10).is_none(), "before the window");
        assert_eq!(window.after(5, 10).map(|e| e.len()), Some(0));
        window.push(vec![event(6), event(8)]);
        let cursors = |after| -> Vec<u64> {
            window
                .after(after, 10)
                .unwrap()
                .iter()
                .map(|e| e.event.cursor)
                .collect()
        };
        assert_eq!(cursors(5), [6, 8]);
        assert_eq!(cursors(6), [8]);
        assert_eq!(cursors(7), [8], "a gap in cursors is no hole in the window");
        assert!(cursors(8).is_empty());
        window.push((9..9 + WINDOW as u64).map(event).collect());
        assert!(window.after(5, 10).is_none(), "the oldest fell out");
        assert_eq!(window.after(8, 1).unwrap()[0].event.cursor, 9);
    }
}
