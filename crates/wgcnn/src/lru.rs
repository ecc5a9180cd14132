//! A small least-recently-used list of plans, for models planned per input size.

use std::sync::Arc;

use crate::Error;

/// Entries most recently used last; at most `capacity`.
pub(crate) struct Lru<K, V> {
    entries: Vec<(K, Arc<V>)>,
    capacity: usize,
}

impl<K: PartialEq + Copy, V> Lru<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            entries: Vec::new(),
            capacity,
        }
    }

    /// The entry for `key`, made by `make` when missing (evicting the least recently used).
    pub(crate) fn get_or_try(
        &mut self,
        key: K,
        make: impl FnOnce() -> Result<V, Error>,
    ) -> Result<Arc<V>, Error> {
        if let Some(i) = self.entries.iter().position(|(k, _)| *k == key) {
            let entry = self.entries.remove(i);
            let value = entry.1.clone();
            self.entries.push(entry);
            return Ok(value);
        }
        let value = Arc::new(make()?);
        if self.entries.len() >= self.capacity {
            self.entries.remove(0);
        }
        self.entries.push((key, value.clone()));
        Ok(value)
    }

    /// The keys, least recently used first.
    pub(crate) fn keys(&self) -> Vec<K> {
        self.entries.iter().map(|(k, _)| *k).collect()
    }
}
