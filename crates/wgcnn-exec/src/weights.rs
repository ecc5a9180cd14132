//! [`WeightCache`]: weight buffers shared by the plans of one model.
//!
//! A model planned at several input sizes (a detector per image size, a classifier per batch
//! size) uploads the same weights each time; plans made with one cache upload each distinct
//! weight buffer once and bind the same GPU buffer. Entries are keyed by the buffer's name, its
//! length and a hash of its values (the values after plan-time rewrites: folded BatchNorm,
//! Winograd-transformed or re-laid-out weights), so a layer whose kernel variant, and hence
//! weight layout, differs between two plans gets its own buffer, and nothing is shared by name
//! alone.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use wgcnn_kernels::{Context, Precision, precision};

type Key = (String, usize, u64, Precision);

/// Weight buffers by name and content, shared by the plans made with it.
#[derive(Default)]
pub struct WeightCache {
    buffers: Mutex<HashMap<Key, Arc<wgpu::Buffer>>>,
}

impl std::fmt::Debug for WeightCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightCache")
            .field("buffers", &self.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl WeightCache {
    /// An empty cache, to share between plans.
    pub fn new() -> Arc<WeightCache> {
        Arc::new(WeightCache::default())
    }

    /// Distinct buffers held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of GPU memory the cache's buffers take.
    pub fn bytes(&self) -> u64 {
        self.lock().values().map(|b| b.size()).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<wgpu::Buffer>>> {
        self.buffers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The buffer holding `data` under `name`, stored at `precision`, uploaded on first use.
    /// Returns it and whether this call uploaded it.
    pub(crate) fn get_or_upload(
        &self,
        ctx: &Context,
        name: &str,
        data: &[f32],
        precision: Precision,
    ) -> (Arc<wgpu::Buffer>, bool) {
        let mut h = std::hash::DefaultHasher::new();
        h.write(bytemuck::cast_slice(data));
        let key = (name.to_string(), data.len(), h.finish(), precision);
        let mut map = self.lock();
        if let Some(b) = map.get(&key) {
            return (b.clone(), false);
        }
        let b = Arc::new(precision::upload(ctx, name, data, precision));
        map.insert(key, b.clone());
        (b, true)
    }
}
