//! Prometheus text exposition with Triton's metric names (`nv_inference_*`), per model and
//! version, plus a histogram of the batch sizes the dynamic batcher formed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the batch-size histogram's buckets.
const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// Counters of one model, updated by the handlers and its worker.
#[derive(Debug, Default)]
pub struct ModelMetrics {
    pub success: AtomicU64,
    pub failure: AtomicU64,
    /// Images inferred (Triton counts batch elements).
    pub inference_count: AtomicU64,
    /// Batches run (GPU submissions).
    pub exec_count: AtomicU64,
    pub request_duration_us: AtomicU64,
    pub queue_duration_us: AtomicU64,
    pub compute_infer_duration_us: AtomicU64,
    /// Requests accepted and not yet answered.
    pub pending: AtomicU64,
    batch_buckets: [AtomicU64; BATCH_BUCKETS.len()],
    batch_sum: AtomicU64,
}

impl ModelMetrics {
    pub fn record_batch(&self, images: usize) {
        self.exec_count.fetch_add(1, Relaxed);
        self.inference_count.fetch_add(images as u64, Relaxed);
        self.batch_sum.fetch_add(images as u64, Relaxed);
        for (bound, bucket) in BATCH_BUCKETS.iter().zip(&self.batch_buckets) {
            if images as u64 <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Writes every model's metrics in Prometheus' text format (version 0.0.4).
pub fn render<'a>(models: impl Iterator<Item = (&'a str, &'a ModelMetrics)> + Clone) -> String {
    let mut out = String::new();
    type Get = fn(&ModelMetrics) -> &AtomicU64;
    let counters: [(&str, &str, Get); 8] = [
        (
            "nv_inference_request_success",
            "Number of successful inference requests",
            |m| &m.success,
        ),
        (
            "nv_inference_request_failure",
            "Number of failed inference requests",
            |m| &m.failure,
        ),
        (
            "nv_inference_count",
            "Number of inferences performed (batch elements)",
            |m| &m.inference_count,
        ),
        (
            "nv_inference_exec_count",
            "Number of model executions performed (batches)",
            |m| &m.exec_count,
        ),
        (
            "nv_inference_request_duration_us",
            "Cumulative inference request duration in microseconds",
            |m| &m.request_duration_us,
        ),
        (
            "nv_inference_queue_duration_us",
            "Cumulative inference queuing duration in microseconds",
            |m| &m.queue_duration_us,
        ),
        (
            "nv_inference_compute_infer_duration_us",
            "Cumulative compute inference duration in microseconds",
            |m| &m.compute_infer_duration_us,
        ),
        (
            "nv_inference_pending_request_count",
            "Instantaneous number of pending requests awaiting execution",
            |m| &m.pending,
        ),
    ];
    for (name, help, get) in counters {
        let kind = if name == "nv_inference_pending_request_count" {
            "gauge"
        } else {
            "counter"
        };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (model, m) in models.clone() {
            let _ = writeln!(
                out,
                "{name}{{model=\"{model}\",version=\"1\"}} {}",
                get(m).load(Relaxed)
            );
        }
    }
    let name = "wgcnn_inference_batch_size";
    let _ = writeln!(
        out,
        "# HELP {name} Images per model execution formed by the dynamic batcher\n# TYPE {name} histogram"
    );
    for (model, m) in models {
        let labels = format!("model=\"{model}\",version=\"1\"");
        for (bound, bucket) in BATCH_BUCKETS.iter().zip(&m.batch_buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = m.exec_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", m.batch_sum.load(Relaxed));
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
    out
}
