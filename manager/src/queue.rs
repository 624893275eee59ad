//! A work queue of cluster names with client-go's semantics: a key queued twice is synced
//! once; a key added while being synced is synced again afterwards; never two workers on
//! the same key.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    queued: HashSet<String>,
    active: HashSet<String>,
    again: HashSet<String>,
}

/// A deduplicating queue of keys.
#[derive(Default)]
pub struct WorkQueue {
    state: Mutex<State>,
    notify: Notify,
}

impl WorkQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks for `key` to be synced.
    pub fn add(&self, key: &str) {
        let mut s = self.lock();
        if s.active.contains(key) {
            s.again.insert(key.to_owned());
        } else if s.queued.insert(key.to_owned()) {
            s.queue.push_back(key.to_owned());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Waits for the next key; the caller must call [`WorkQueue::done`] with it.
    pub async fn next(&self) -> String {
        loop {
            {
                let mut s = self.lock();
                if let Some(k) = s.queue.pop_front() {
                    s.queued.remove(&k);
                    s.active.insert(k.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return k;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Marks `key` synced; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &str) {
        let again = {
            let mut s = self.lock();
            s.active.remove(key);
            s.again.remove(key)
        };
        if again {
            self.add(key);
        }
    }

    /// Keys waiting or being synced.
    pub fn len(&self) -> usize {
        let s = self.lock();
        s.queue.len() + s.active.len()
    }

    /// Whether nothing is waiting or being synced.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_requeues_while_active() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        q.add("a");
        assert_eq!(q.next().await, "b", "a is active: it waits");
        q.done("b");
        q.done("a");
        assert_eq!(q.next().await, "a", "added while active: synced again");
        q.done("a");
        assert!(q.is_empty());
    }
}
