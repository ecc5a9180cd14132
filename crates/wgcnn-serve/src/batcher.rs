//! One GPU worker thread per model with a dynamic batcher (Triton's semantics): the worker
//! takes the oldest request, then keeps adding queued requests until the batch holds
//! `max_batch` images or `max_delay` has passed since it started forming, and runs them in one
//! call. A request that would overflow the batch waits for the next one. The queue is bounded:
//! a full queue refuses at once (503) instead of growing without limit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::ServeError;
use crate::metrics::ModelMetrics;
use crate::model::{Item, Model};
use crate::tensor::OutTensor;

type Reply = oneshot::Sender<Result<Vec<OutTensor>, ServeError>>;

struct Job {
    items: Vec<Item>,
    queued: Instant,
    reply: Reply,
}

/// The handle requests use to reach a model's worker.
pub struct Batcher {
    tx: SyncSender<Job>,
    pub metrics: Arc<ModelMetrics>,
}

impl Batcher {
    /// Starts the worker thread of `model`; it ends when every `Batcher` clone is dropped and
    /// the queue has drained.
    pub fn spawn(
        model: Arc<Model>,
        max_queue: usize,
        max_delay: Duration,
    ) -> std::io::Result<(Batcher, std::thread::JoinHandle<()>)> {
        let (tx, rx) = sync_channel(max_queue.max(1));
        let metrics = Arc::new(ModelMetrics::default());
        let worker_metrics = metrics.clone();
        let handle = std::thread::Builder::new()
            .name(format!("gpu-{}", model.name))
            .spawn(move || worker(&model, &rx, max_delay, &worker_metrics))?;
        Ok((Batcher { tx, metrics }, handle))
    }

    /// Queues decoded images and waits for their outputs.
    pub async fn infer(&self, items: Vec<Item>) -> Result<Vec<OutTensor>, ServeError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            items,
            queued: Instant::now(),
            reply,
        };
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ServeError::unavailable(
                    "the model's request queue is full; retry later",
                ));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ServeError::unavailable("the model is shutting down"));
            }
        }
        rx.await
            .map_err(|_| ServeError::internal("the model's worker stopped"))?
    }
}

fn worker(model: &Model, rx: &Receiver<Job>, max_delay: Duration, metrics: &ModelMetrics) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let started = Instant::now();
        let deadline = started + max_delay;
        let mut images = first.items.len();
        let mut jobs = vec![first];
        while images < model.max_batch {
            let next = match rx.try_recv() {
                Ok(job) => Ok(job),
                Err(_) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    rx.recv_timeout(deadline - now)
                }
            };
            match next {
                Ok(job) if images + job.items.len() <= model.max_batch => {
                    images += job.items.len();
                    jobs.push(job);
                }
                Ok(job) => {
                    held = Some(job);
                    break;
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let compute = Instant::now();
        for job in &jobs {
            let waited = compute.duration_since(job.queued).as_micros() as u64;
            metrics.queue_duration_us.fetch_add(waited, Relaxed);
        }
        let (mut items, replies): (Vec<Vec<Item>>, Vec<Reply>) =
            jobs.into_iter().map(|j| (j.items, j.reply)).unzip();
        // A panic in the library must fail this batch's requests, not the server.
        let results =
            catch_unwind(AssertUnwindSafe(|| model.run(&mut items))).unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                tracing::error!(model = %model.name, panic = %what, "model call panicked");
                items
                    .iter()
                    .map(|_| Err(ServeError::internal(format!("the model failed: {what}"))))
                    .collect()
            });
        metrics
            .compute_infer_duration_us
            .fetch_add(compute.elapsed().as_micros() as u64, Relaxed);
        metrics.record_batch(images);
        tracing::debug!(model = %model.name, images, requests = replies.len(), "batch ran");
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}
