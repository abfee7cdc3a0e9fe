//! Mini-batch training on several threads by data parallelism.
//!
//! Each worker thread holds a replica of the net and takes an equal share of
//! every batch: it gathers its rows, runs `loss` forward and `backward` from
//! `dout = n_r / N` (so that the shares add up to the batch mean), and leaves
//! its gradients on its layers. Then the threads split every parameter tensor
//! into equal ranges; each sums the replicas' gradients on its range, adds
//! `lambda * W`, applies the optimizer to replica 0 and copies the result into
//! the other replicas. Two joins per batch, no allocation once running.
//!
//! Why not threads inside each matrix product: at batch 100 the products are
//! small, and splitting every one of them costs a join per layer per pass
//! (measured: 1.2x on two threads against 1.4x for this scheme).
//!
//! BatchNorm: each replica normalises its share with the share's own batch
//! statistics, as PyTorch's DistributedDataParallel does without SyncBatchNorm,
//! so training sees batches of `N / threads` rows. After every step the
//! replicas' running statistics are averaged (see [`Trainer::step`]), so all
//! replicas stay identical and evaluation uses statistics from all the data.

use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::{Dataset, Features};
use crate::layers::Labels;
use crate::nets::{InputError, Network};
use crate::optim::{LrSchedule, Optimizer, OptimizerState};
use crate::tensor::{Float, Tensor};

/// Most worker threads a run may have (`--threads`, and a saved run's
/// configuration): each holds a replica of the net and a batch is split among
/// them, so beyond a few dozen they only cost memory.
pub const MAX_THREADS: usize = 256;

/// Data the trainer cannot use, or a run that diverged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("the {name} data set has no examples: expected at least one")]
    EmptyDataset { name: String },
    #[error(
        "batch size {batch} does not fit {examples} examples: expected 1 to {examples}; pass a smaller batch size"
    )]
    BatchSize { batch: usize, examples: usize },
    #[error("the {name} data does not fit the net: {source}")]
    Input {
        name: String,
        #[source]
        source: InputError,
    },
    #[error(
        "the {name} data set is inconsistent: {len} labels of examples of {dim} values need {} values, found {found}",
        len * dim
    )]
    Features {
        name: String,
        len: usize,
        dim: usize,
        found: usize,
    },
    #[error("example {index} is out of range: the {name} data set has {len} examples")]
    IndexOutOfRange {
        name: String,
        index: usize,
        len: usize,
    },
    /// The loss became NaN or infinite: the weights are lost from here on.
    #[error("the loss became {loss} at iteration {iteration} of {iterations}")]
    Diverged {
        /// 1-based batch number within the epoch.
        iteration: usize,
        iterations: usize,
        loss: f64,
    },
}

/// Rows a worker takes at a time in inference (see [`Trainer::infer`]).
/// Measured on DeepConvNet over the 10,000 test images in batches of 1,000
/// on two threads: see the README's "How it is fast".
const INFER_ROWS: usize = 50;

/// One thread's share of the work: a replica and its batch buffers.
struct Worker<T: Float> {
    net: Network<T>,
    x: Tensor<T>,
    t: Vec<usize>,
    /// Data loss (without decay) of this worker's rows in the last step.
    loss: f64,
    correct: usize,
    /// Predicted classes of this worker's rows (inference).
    predicted: Vec<usize>,
}

/// Raw views of one parameter in every replica, rebuilt each step (no
/// allocation: the vectors keep their capacity).
struct ParamViews<T> {
    len: usize,
    decay: bool,
    /// `values[r]`, `grads[r]`: the tensor's data in replica `r`.
    values: Vec<*mut T>,
    grads: Vec<*mut T>,
    state: Vec<*mut T>,
}

// SAFETY: the pointers are rebuilt at the start of every `update` and only
// dereferenced inside it; between updates they are stale and never read, so
// moving the trainer (with them) to another thread is harmless.
unsafe impl<T: Send> Send for ParamViews<T> {}

/// The pointers are only dereferenced inside [`Trainer::update`], where each
/// thread touches a disjoint range of every tensor.
struct SharedViews<'a, T>(&'a [ParamViews<T>]);
unsafe impl<T> Sync for SharedViews<'_, T> {}
unsafe impl<T> Send for SharedViews<'_, T> {}

pub struct Trainer<T: Float> {
    workers: Vec<Worker<T>>,
    pub optimizer: OptimizerState<T>,
    /// Shared so that a whole epoch can run inside `install` while `self` is borrowed.
    pool: Arc<rayon::ThreadPool>,
    views: Vec<ParamViews<T>>,
    /// Shuffling order, reused every epoch.
    order: Vec<usize>,
    /// Seeds the shuffles; saved with checkpoints so a resumed run continues alike.
    pub rng: ChaCha8Rng,
    /// Whether any layer keeps buffers (BatchNorm's running statistics) that
    /// the replicas must agree on after each step.
    has_buffers: bool,
    /// Sets the rate before every step of [`Trainer::train_epoch`]; `None`
    /// leaves the optimizer's rate alone.
    schedule: Option<Schedule>,
}

/// A learning-rate schedule over a run of `epochs` epochs, `epoch` of them done.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    kind: LrSchedule,
    base_lr: f64,
    epochs: usize,
    epoch: usize,
}

/// Sets flush-to-zero and denormals-are-zero on this thread: denormal floats
/// are ~100x slower, and Adam's second moments drift into them (measured on
/// the peers' hand-tuned loop: 1.47x for Adam). No effect on the gradient
/// checks, which run in f64 far from the denormal range.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads and writes this thread's MXCSR register only, setting the
    // FTZ (bit 15) and DAZ (bit 6) flags; every x86_64 CPU has SSE2 and both bits.
    unsafe {
        let mut csr: u32 = 0;
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
        csr |= 0x8040;
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
    }
}

fn input_error(data: &Dataset, source: InputError) -> TrainError {
    TrainError::Input {
        name: data.name.clone(),
        source,
    }
}

/// The range of `len` elements that part `j` of `parts` takes.
fn share(len: usize, parts: usize, j: usize) -> std::ops::Range<usize> {
    (len * j / parts)..(len * (j + 1) / parts)
}

impl<T: Float> Trainer<T> {
    /// A trainer for `net` on `threads` threads (clamped to 1..=[`MAX_THREADS`]),
    /// shuffling with `seed`.
    pub fn new(net: Network<T>, rule: Box<dyn Optimizer<T>>, threads: usize, seed: u64) -> Self {
        let threads = threads.clamp(1, MAX_THREADS);
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("backprop-worker-{i}"))
                .start_handler(|_| flush_denormals())
                .build()
                .expect("cannot start worker threads"),
        );
        // rayon starts its threads asynchronously: under load one could start
        // only after training began, and a starting worker allocates (its
        // name, its job deque). A no-op on every thread waits for them all.
        pool.broadcast(|_| ());
        let optimizer = OptimizerState::new(rule, &net);
        let has_buffers = net.layers.iter().any(|l| !l.buffers().is_empty());
        let workers = (0..threads)
            .map(|r| Worker {
                net: {
                    let mut replica = net.clone();
                    for (i, layer) in replica.layers.iter_mut().enumerate() {
                        layer.reseed(seed ^ ((r as u64) << 32 | i as u64));
                    }
                    replica
                },
                x: Tensor::default(),
                t: Vec::new(),
                loss: 0.0,
                correct: 0,
                predicted: Vec::new(),
            })
            .collect();
        Trainer {
            workers,
            optimizer,
            pool,
            views: Vec::new(),
            order: Vec::new(),
            // The weights are drawn from `seed` too; a different stream for shuffling.
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(0x9e37_79b9_7f4a_7c15)),
            has_buffers,
            schedule: None,
        }
    }

    /// Makes [`Trainer::train_epoch`] follow `schedule` from `base_lr` over a
    /// run of `epochs` epochs, the next one being epoch `epochs_done + 1`
    /// (non-zero when resuming). Single [`Trainer::step`]s are not scheduled.
    pub fn set_schedule(
        &mut self,
        schedule: LrSchedule,
        base_lr: f64,
        epochs: usize,
        epochs_done: usize,
    ) {
        self.schedule = Some(Schedule {
            kind: schedule,
            base_lr,
            epochs,
            epoch: epochs_done,
        });
        self.optimizer.rule.set_lr(self.next_lr());
    }

    /// The rate of the next epoch's first step.
    pub fn next_lr(&self) -> f64 {
        match self.schedule {
            Some(s) => s.kind.lr_at(s.base_lr, s.epoch, s.epochs, 0, 1),
            None => self.optimizer.rule.lr(),
        }
    }

    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// The trained net (replica 0; all replicas hold the same weights).
    pub fn net(&self) -> &Network<T> {
        &self.workers[0].net
    }

    /// Every replica's net (replica 0 first); checkpoints save their Dropout
    /// generators and BatchNorm statistics, which differ between replicas.
    pub fn replicas(&self) -> impl Iterator<Item = &Network<T>> {
        self.workers.iter().map(|w| &w.net)
    }

    pub fn replicas_mut(&mut self) -> impl Iterator<Item = &mut Network<T>> {
        self.workers.iter_mut().map(|w| &mut w.net)
    }

    /// Changes the weights (and buffers, such as BatchNorm's running
    /// statistics) of every replica, e.g. when loading a checkpoint.
    pub fn set_net(&mut self, net: &Network<T>) {
        for w in &mut self.workers {
            w.net.copy_params_from(net);
            for (dst, src) in w.net.layers.iter_mut().zip(&net.layers) {
                for ((_, d), (_, s)) in dst.buffers_mut().into_iter().zip(src.buffers()) {
                    d.copy_from(s);
                }
            }
        }
    }

    /// Checks that `data` can go through the net: not empty, features and
    /// labels consistent, examples of the shape the first layer takes, labels
    /// below the net's number of classes. Once per pass over the data (a scan
    /// of the labels), so that the batches themselves run unchecked.
    pub fn check_data(&mut self, data: &Dataset) -> Result<(), TrainError> {
        let classes = self.check_shapes(data)?;
        crate::nets::check_labels(data.labels.iter().map(|&l| usize::from(l)), classes)
            .map_err(|source| input_error(data, source))
    }

    /// [`Trainer::check_data`] without the labels, which cost a pass over the
    /// data: returns the net's number of classes.
    fn check_shapes(&mut self, data: &Dataset) -> Result<usize, TrainError> {
        let name = || data.name.clone();
        if data.is_empty() {
            return Err(TrainError::EmptyDataset { name: name() });
        }
        let found = match &data.features {
            Features::Pixels(p) => p.len(),
            Features::Dense(d) => d.len(),
        };
        if found != data.len() * data.dim() {
            return Err(TrainError::Features {
                name: name(),
                len: data.len(),
                dim: data.dim(),
                found,
            });
        }
        self.workers[0]
            .net
            .check_input(&data.shape)
            .map_err(|source| input_error(data, source))
    }

    /// One epoch over `data` in shuffled mini-batches of `batch_size` (the last
    /// one may be smaller). Calls `on_batch(done, total)` after each batch.
    /// Returns the mean training loss (data loss plus decay) over the batches,
    /// or [`TrainError::Diverged`] at the first batch whose loss is not finite.
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        batch_size: usize,
        mut on_batch: impl FnMut(usize, usize) + Send,
    ) -> Result<f64, TrainError> {
        self.check_data(data)?;
        let n = data.len();
        if batch_size == 0 || batch_size > n {
            return Err(TrainError::BatchSize {
                batch: batch_size,
                examples: n,
            });
        }
        self.order.clear();
        self.order.extend(0..n);
        self.order.shuffle(&mut self.rng);
        let order = std::mem::take(&mut self.order);
        let batches = n.div_ceil(batch_size);
        // The whole epoch runs on a pool thread: handing every batch over from
        // the main thread cost two sleeps and wake-ups per batch (perf: 15% of
        // a one-thread epoch in the scheduler).
        let pool = Arc::clone(&self.pool);
        let sum = pool.install(|| {
            let mut sum = 0.0;
            for (i, batch) in order.chunks(batch_size).enumerate() {
                if let Some(s) = self.schedule {
                    let lr = s.kind.lr_at(s.base_lr, s.epoch, s.epochs, i, batches);
                    self.optimizer.rule.set_lr(lr);
                }
                let loss = self.step_in_pool(data, batch);
                if !loss.is_finite() {
                    return Err(TrainError::Diverged {
                        iteration: i + 1,
                        iterations: batches,
                        loss,
                    });
                }
                sum += loss;
                on_batch(i + 1, batches);
            }
            Ok(sum)
        });
        self.order = order;
        let sum = sum?;
        if let Some(s) = &mut self.schedule {
            s.epoch += 1;
        }
        Ok(sum / batches as f64)
    }

    /// One gradient step on the examples `batch` of `data`; returns its loss.
    /// Afterwards the replicas' buffers (BatchNorm's running statistics) are averaged.
    /// Only the batch's own labels are checked, so a step costs no pass over
    /// the data.
    pub fn step(&mut self, data: &Dataset, batch: &[usize]) -> Result<f64, TrainError> {
        let classes = self.check_shapes(data)?;
        if batch.is_empty() {
            return Err(TrainError::BatchSize {
                batch: 0,
                examples: data.len(),
            });
        }
        if let Some(&index) = batch.iter().find(|&&i| i >= data.len()) {
            return Err(TrainError::IndexOutOfRange {
                name: data.name.clone(),
                index,
                len: data.len(),
            });
        }
        if let Some(&example) = batch
            .iter()
            .find(|&&i| usize::from(data.labels[i]) >= classes)
        {
            let label = usize::from(data.labels[example]);
            let source = InputError::LabelOutOfRange {
                example,
                label,
                classes,
            };
            return Err(input_error(data, source));
        }
        let pool = Arc::clone(&self.pool);
        Ok(pool.install(|| self.step_in_pool(data, batch)))
    }

    /// [`Trainer::step`], called from inside the pool.
    fn step_in_pool(&mut self, data: &Dataset, batch: &[usize]) -> f64 {
        let total = batch.len();
        let parts = self.workers.len();
        self.workers.par_iter_mut().enumerate().for_each(|(r, w)| {
            let rows = &batch[share(total, parts, r)];
            w.loss = 0.0;
            if rows.is_empty() {
                // Too few rows for every worker: contribute zero gradients.
                for p in w.net.params_mut() {
                    p.grad.fill(T::zero());
                }
                return;
            }
            gather(data, rows, &mut w.x, &mut w.t);
            // The data loss only: the decay term is summed once, in `update`.
            w.net.forward(&w.x, true);
            let scores = w.net.layers.last().expect("non-empty").output();
            let loss = w
                .net
                .last_layer
                .forward(scores, Labels::Index(&w.t))
                .as_f64();
            w.loss = loss * rows.len() as f64 / total as f64;
            w.net.backward(T::of(rows.len() as f64 / total as f64));
        });
        let data_loss = self.workers.iter().map(|w| w.loss).sum::<f64>();
        let sum_w2 = self.update();
        self.average_buffers(total);
        data_loss + 0.5 * self.workers[0].net.weight_decay_lambda * sum_w2
    }

    /// Sums the replicas' gradients, adds weight decay, steps the optimizer on
    /// replica 0 and copies the new weights to the others; in parallel by ranges
    /// (called from inside the pool). Returns `Σ W²` over the decayed weights before the step (for the loss),
    /// summed while they pass through anyway.
    fn update(&mut self) -> f64 {
        self.optimizer.rule.begin_step();
        let lambda = T::of(self.workers[0].net.weight_decay_lambda);
        let parts = self.workers.len();
        let slots = self.optimizer.rule.slots();

        // Collect raw views of every parameter in every replica.
        for v in &mut self.views {
            v.values.clear();
            v.grads.clear();
            v.state.clear();
        }
        for (r, w) in self.workers.iter_mut().enumerate() {
            // Layer by layer rather than `Network::params_mut`, which also
            // builds the textbook names: no allocation on the hot path.
            let params = w.net.layers.iter_mut().flat_map(|l| l.params_mut());
            for (p, param) in params.enumerate() {
                if r == 0 && p == self.views.len() {
                    self.views.push(ParamViews {
                        len: 0,
                        decay: false,
                        values: Vec::with_capacity(parts),
                        grads: Vec::with_capacity(parts),
                        state: Vec::with_capacity(slots),
                    });
                }
                let v = &mut self.views[p];
                v.len = param.value.len();
                v.decay = param.decay;
                v.values.push(param.value.data_mut().as_mut_ptr());
                v.grads.push(param.grad.data_mut().as_mut_ptr());
            }
        }
        for (v, state) in self.views.iter_mut().zip(&mut self.optimizer.state) {
            v.state.extend(state.iter_mut().map(|s| s.as_mut_ptr()));
        }

        let views = SharedViews(&self.views);
        let rule: &dyn Optimizer<T> = &*self.optimizer.rule;
        {
            (0..parts)
                .into_par_iter()
                .map(|j| {
                    let views = &views;
                    let mut sum_w2 = 0.0;
                    let mut state: [&mut [T]; 2] = [&mut [], &mut []];
                    for v in views.0 {
                        let range = share(v.len, parts, j);
                        let (start, len) = (range.start, range.len());
                        // SAFETY: every pointer addresses a live tensor of `v.len`
                        // elements (the replicas and optimizer state outlive this
                        // call and are not otherwise touched during it); thread `j`
                        // only touches `start..start + len`, and the ranges of the
                        // threads are disjoint. Replicas are distinct allocations.
                        let (w0, g0) = unsafe {
                            (
                                std::slice::from_raw_parts_mut(v.values[0].add(start), len),
                                std::slice::from_raw_parts_mut(v.grads[0].add(start), len),
                            )
                        };
                        for &g in &v.grads[1..] {
                            let gr = unsafe { std::slice::from_raw_parts(g.add(start), len) };
                            for (a, &b) in g0.iter_mut().zip(gr) {
                                *a += b;
                            }
                        }
                        if v.decay && lambda != T::zero() {
                            sum_w2 += add_decay(g0, w0, lambda);
                        }
                        for (s, &ptr) in state.iter_mut().zip(&v.state) {
                            *s = unsafe { std::slice::from_raw_parts_mut(ptr.add(start), len) };
                        }
                        rule.update(w0, g0, &mut state[..slots], v.decay);
                        for &w in &v.values[1..] {
                            let wr = unsafe { std::slice::from_raw_parts_mut(w.add(start), len) };
                            wr.copy_from_slice(w0);
                        }
                    }
                    sum_w2
                })
                .sum()
        }
    }

    /// Averages the buffers of the replicas that took part in the last step
    /// (those with rows), and gives every replica the average.
    ///
    /// Each replica's BatchNorm moved its running statistics towards its own
    /// share's statistics by `r ← m·r + (1 - m)·s`. That update is linear, so
    /// the average is the running average of the shares' mean statistics:
    /// exactly the whole batch's mean for the running mean; for the running
    /// variance the mean of the shares' variances, which leaves out the spread
    /// between the shares' means, a slight under-estimate (in expectation
    /// `(n - 1) / n` of the variance for shares of `n` rows: 2% at batch 100 on
    /// two threads, against 1% for one thread). Cost: one pass over the
    /// buffers, a few hundred numbers for the textbook's nets, and no
    /// allocation (the buffer lists are inline).
    fn average_buffers(&mut self, total: usize) {
        let parts = self.workers.len();
        if !self.has_buffers || parts < 2 {
            return;
        }
        let active = |r: usize| !share(total, parts, r).is_empty();
        let count = (0..parts).filter(|&r| active(r)).count();
        if count == 0 {
            return;
        }
        let inv = T::of(1.0 / count as f64);
        let (first, rest) = self.workers.split_first_mut().expect("one worker or more");
        for (i, layer) in first.net.layers.iter_mut().enumerate() {
            for (k, (_, sum)) in layer.buffers_mut().into_iter().enumerate() {
                if !active(0) {
                    sum.fill(T::zero());
                }
                for (r, w) in rest.iter().enumerate() {
                    if active(r + 1) {
                        let (_, other) = w.net.layers[i].buffers()[k];
                        for (a, &b) in sum.data_mut().iter_mut().zip(other.data()) {
                            *a += b;
                        }
                    }
                }
                for a in sum.data_mut() {
                    *a *= inv;
                }
                for w in rest.iter_mut() {
                    w.net.layers[i].buffers_mut()[k].1.copy_from(sum);
                }
            }
        }
    }

    /// Mean data loss and accuracy over `data`, in inference mode, in batches of
    /// `batch_size` split across the threads.
    pub fn evaluate(
        &mut self,
        data: &Dataset,
        batch_size: usize,
    ) -> Result<(f64, f64), TrainError> {
        let (mut total_loss, mut correct) = (0.0, 0);
        self.infer(data, batch_size, |workers| {
            // A worker without rows in this slice still holds the last
            // slice's scores.
            for w in workers.iter_mut().filter(|w| !w.t.is_empty()) {
                let rows = w.t.len() as f64;
                w.correct = w.predicted.iter().zip(&w.t).filter(|(p, t)| p == t).count();
                let scores = w.net.layers.last().expect("non-empty").output();
                total_loss += w
                    .net
                    .last_layer
                    .forward(scores, Labels::Index(&w.t))
                    .as_f64()
                    * rows;
                correct += w.correct;
            }
        })?;
        let n = data.len() as f64;
        Ok((total_loss / n, correct as f64 / n))
    }

    /// Predicted class of every example of `data`, in inference mode, in
    /// batches of `batch_size` split across the threads.
    pub fn predict_classes(
        &mut self,
        data: &Dataset,
        batch_size: usize,
    ) -> Result<Vec<usize>, TrainError> {
        let mut out = Vec::with_capacity(data.len());
        self.infer(data, batch_size, |workers| {
            for w in workers {
                out.extend_from_slice(&w.predicted);
            }
        })?;
        Ok(out)
    }

    /// Runs `data` through the net in inference mode, batch by batch, each
    /// batch split across the workers (in slices of [`INFER_ROWS`] rows per
    /// worker); after each slice `collect` sees the workers in order, with
    /// their rows' labels and predictions. A batch larger than the data is
    /// the whole data.
    fn infer(
        &mut self,
        data: &Dataset,
        batch_size: usize,
        mut collect: impl FnMut(&mut [Worker<T>]) + Send,
    ) -> Result<(), TrainError> {
        self.check_data(data)?;
        if batch_size == 0 {
            return Err(TrainError::BatchSize {
                batch: 0,
                examples: data.len(),
            });
        }
        let parts = self.workers.len();
        let indices: Vec<usize> = (0..data.len()).collect();
        let pool = Arc::clone(&self.pool);
        let workers = &mut self.workers;
        // Each batch runs in slices of INFER_ROWS rows per worker: inference
        // is example by example, so the slicing changes no result, and a
        // slice's activations stay in the cache from layer to layer.
        let slice = parts * INFER_ROWS;
        pool.install(|| {
            for batch in indices.chunks(batch_size).flat_map(|b| b.chunks(slice)) {
                workers.par_iter_mut().enumerate().for_each(|(r, w)| {
                    let rows = &batch[share(batch.len(), parts, r)];
                    w.predicted.clear();
                    gather(data, rows, &mut w.x, &mut w.t);
                    if !rows.is_empty() {
                        w.predicted.extend(w.net.forward(&w.x, false).argmax_rows());
                    }
                });
                collect(workers);
            }
        });
        Ok(())
    }
}

/// `g += lambda * w`, returning `Σ w²`. The sum runs in 16 independent lanes:
/// a single running sum is a chain of dependent additions that cannot be
/// vectorised, and cost 8% of a W1 epoch (perf, one thread).
fn add_decay<T: Float>(g: &mut [T], w: &[T], lambda: T) -> f64 {
    const LANES: usize = 16;
    let mut acc = [T::zero(); LANES];
    let mut gc = g.chunks_exact_mut(LANES);
    let mut wc = w.chunks_exact(LANES);
    for (gs, ws) in (&mut gc).zip(&mut wc) {
        for i in 0..LANES {
            gs[i] += lambda * ws[i];
            acc[i] += ws[i] * ws[i];
        }
    }
    let mut sum: f64 = acc.iter().map(|a| a.as_f64()).sum();
    for (g, &w) in gc.into_remainder().iter_mut().zip(wc.remainder()) {
        *g += lambda * w;
        sum += (w * w).as_f64();
    }
    sum
}

/// Copies rows `rows` of `data` into `x` (shaped `(n, C, H, W)`) and `t`.
fn gather<T: Float>(data: &Dataset, rows: &[usize], x: &mut Tensor<T>, t: &mut Vec<usize>) {
    let [c, h, w] = data.shape;
    x.resize(&[rows.len(), c, h, w]);
    t.resize(rows.len(), 0);
    data.gather(rows, x.data_mut(), t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::spiral;
    use crate::nets::MultiLayerNet;
    use crate::optim::Sgd;

    /// Two replicas with BatchNorm: after a step they hold the same running
    /// statistics, and the running mean is the one the whole batch gives.
    #[test]
    fn replicas_agree_on_batchnorm_running_statistics() {
        let data = spiral::split(3).train;
        let spec = MultiLayerNet::new(data.dim(), &[8, 8], data.classes()).batchnorm(true);
        let net = spec.build::<f64>(4).unwrap();
        let mut trainer = Trainer::new(net.clone(), Box::new(Sgd::new(0.1)), 2, 5);
        let batch: Vec<usize> = (0..20).collect();
        trainer.step(&data, &batch).unwrap();

        // Reference: the same first step on one replica and the whole batch.
        let mut whole = net;
        let (mut x, mut t) = (Tensor::default(), Vec::new());
        gather(&data, &batch, &mut x, &mut t);
        whole.predict(&x, true).unwrap();
        let first_bn = |n: &Network<f64>| n.layers[1].buffers()[0].1.clone();
        let want = first_bn(&whole);
        for w in &trainer.workers {
            let got = first_bn(&w.net);
            for (a, b) in got.data().iter().zip(want.data()) {
                assert!((a - b).abs() < 1e-12, "running mean {a} vs {b}");
            }
            for (l, l0) in w.net.layers.iter().zip(&trainer.workers[0].net.layers) {
                for ((_, a), (_, b)) in l.buffers().into_iter().zip(l0.buffers()) {
                    assert_eq!(a, b, "replicas disagree");
                }
            }
        }
        assert!(want.data().iter().any(|&v| v != 0.0));
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;
    use crate::data::spiral;
    use crate::nets::MultiLayerNet;
    use crate::optim::Sgd;

    fn trainer(lr: f64) -> (Trainer<f32>, Dataset) {
        let data = spiral::split(3).train;
        let net = MultiLayerNet::new(data.dim(), &[8], data.classes())
            .build(1)
            .unwrap();
        (Trainer::new(net, Box::new(Sgd::new(lr)), 2, 1), data)
    }

    #[test]
    fn batch_sizes_and_indices_that_do_not_fit_are_errors() {
        let (mut t, data) = trainer(0.1);
        let n = data.len();
        for batch in [0, n + 1] {
            assert_eq!(
                t.train_epoch(&data, batch, |_, _| {}),
                Err(TrainError::BatchSize { batch, examples: n })
            );
        }
        assert!(matches!(
            t.step(&data, &[0, n]),
            Err(TrainError::IndexOutOfRange { index, .. }) if index == n
        ));
        assert!(t.step(&data, &[]).is_err());
        assert!(t.evaluate(&data, 0).is_err());
        // A batch of all the data is fine, and so is evaluating in one batch larger than it.
        assert!(t.train_epoch(&data, n, |_, _| {}).is_ok());
        assert!(t.evaluate(&data, 10 * n).is_ok());
    }

    #[test]
    fn evaluation_with_a_last_slice_too_small_for_every_worker_counts_each_example_once() {
        // 101 examples on 2 workers: the last slice's single row goes to
        // worker 1, and worker 0 still holds the scores of the slice before.
        let (mut t, data) = trainer(0.1);
        let data = data.take(INFER_ROWS * 2 + 1);
        let (loss, accuracy) = t.evaluate(&data, 1000).unwrap();
        let predicted = t.predict_classes(&data, 1000).unwrap();
        assert_eq!(predicted.len(), data.len());
        let correct = predicted
            .iter()
            .zip(&data.labels)
            .filter(|(p, l)| **p == usize::from(**l))
            .count();
        assert_eq!(accuracy, correct as f64 / data.len() as f64);
        let (whole_loss, _) = t.evaluate(&data, 1).unwrap();
        assert!((loss - whole_loss).abs() < 1e-6, "{loss} vs {whole_loss}");
    }

    #[test]
    fn data_that_does_not_fit_the_net_is_an_error() {
        let (mut t, data) = trainer(0.1);
        let empty = data.take(0);
        assert_eq!(
            t.train_epoch(&empty, 10, |_, _| {})
                .unwrap_err()
                .to_string(),
            "the spiral data set has no examples: expected at least one"
        );
        let mut wide = data.clone();
        wide.shape = [1, 1, 1];
        assert!(matches!(
            t.evaluate(&wide, 10),
            Err(TrainError::Features { .. })
        ));
        let mut many_classes = data.clone();
        many_classes.labels[5] = 7;
        assert_eq!(
            t.predict_classes(&many_classes, 10)
                .unwrap_err()
                .to_string(),
            "the spiral data does not fit the net: label 7 of example 5 is out of range: the net has 3 classes (0 to 2)"
        );
        // A step looks at its own batch only.
        assert_eq!(
            t.step(&many_classes, &[0, 5]).unwrap_err().to_string(),
            "the spiral data does not fit the net: label 7 of example 5 is out of range: the net has 3 classes (0 to 2)"
        );
        assert!(t.step(&many_classes, &[0, 1]).is_ok());
        let mut other_shape = data.clone();
        other_shape.shape = [1, 2, 1];
        other_shape.features = crate::data::Features::Dense(vec![0.0; data.len() * 2]);
        assert!(
            t.step(&other_shape, &[0]).is_ok(),
            "2 values per example fit an Affine of 2"
        );
        other_shape.shape = [1, 1, 2];
        assert!(t.train_epoch(&other_shape, 10, |_, _| {}).is_ok());
    }

    #[test]
    fn a_loss_that_is_not_finite_stops_the_epoch_at_its_iteration() {
        let data = spiral::split(3).train;
        let net = MultiLayerNet::new(data.dim(), &[100; 3], data.classes())
            .build(1)
            .unwrap();
        let mut t = Trainer::<f32>::new(net, Box::new(Sgd::new(1e6)), 2, 1);
        match t.train_epoch(&data, 100, |_, _| {}) {
            Err(TrainError::Diverged {
                iteration,
                iterations,
                loss,
            }) => {
                assert!(iteration >= 2 && iteration <= iterations, "{iteration}");
                assert!(!loss.is_finite());
            }
            other => panic!("expected divergence, got {other:?}"),
        }
    }
}
