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
//! Across processes ([`Trainer::distributed`], under `mpirun`): K ranks of T
//! threads hold K x T replicas, replica `rank * T + thread` taking the share
//! replica of that index takes in one process of K x T threads. After the
//! backward pass one allreduce per step sums the gradients, BatchNorm
//! statistics and losses of all replicas in one buffer, each rank adding its
//! replicas' one by one to the sum of the ranks before it ([`crate::dist`]):
//! the additions one process makes, in its order, so the weights agree bit
//! for bit with one process of K x T threads. Every rank then takes the
//! optimizer step itself.
//!
//! BatchNorm: each replica normalises its share with the share's own batch
//! statistics, as PyTorch's DistributedDataParallel does without SyncBatchNorm,
//! so training sees batches of `N / threads` rows. After every step the
//! replicas' running statistics are averaged (see [`Trainer::step`]), so all
//! replicas stay identical and evaluation uses statistics from all the data.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::{Dataset, Features};
use crate::dist::{self, Collective};
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
    /// The ranks of a job do not hold the same net or weights.
    #[error("the ranks of the job disagree: {0}")]
    RanksDisagree(String),
}

/// Activation values a worker's slice of inference holds in its widest
/// layer (2.5 MB of f32): the slice's activations stay in the cache from
/// layer to layer.
const INFER_VALUES: usize = 640_000;

/// Rows a worker takes at a time in inference (see [`Trainer::infer`]) for
/// a net whose widest activation, the input included, holds `widest` values
/// per example: [`INFER_VALUES`] of them, at most 1,000 rows. Measured over
/// the 10,000 test images in batches of 1,000 on two threads: DeepConvNet
/// (12,544 values after its first convolution) gets 51 rows, where 50 had
/// been measured best for it; the W1 MLP (784) 816, W3 1.17M images/s
/// against 0.87M at 50 rows.
pub(crate) fn infer_rows(widest: usize) -> usize {
    (INFER_VALUES / widest.max(1)).clamp(1, 1000)
}

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
    /// The other ranks of the job, when there are any.
    ranks: Option<Ranks<T>>,
    /// `Σ W²` of each piece of the last update.
    partials: Vec<f64>,
}

/// What a trainer on one rank of several shares with the others every step.
struct Ranks<T> {
    comm: Arc<dyn Collective>,
    /// Replicas on all ranks, and the index of this rank's first.
    replicas: usize,
    first: usize,
    /// The sum of all replicas' gradients (`grads` values, parameter by
    /// parameter), buffers, then data losses (an f64 in the last values).
    grads: usize,
    sum: Vec<T>,
    /// The data loss of the last step, from `sum`.
    loss: f64,
    /// Dropout generators of the other ranks' replicas, gathered on rank 0
    /// for a checkpoint by [`Trainer::gather_rngs`]; emptied by the next step.
    remote_rngs: Vec<Vec<Option<ChaCha8Rng>>>,
}

/// The values at the end of the allreduce's sum that hold the loss, an f64.
fn loss_words<T>() -> usize {
    std::mem::size_of::<f64>().div_ceil(std::mem::size_of::<T>())
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
/// a hand-written Adam training loop: 1.47x). No effect on the gradient
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
pub(crate) fn share(len: usize, parts: usize, j: usize) -> std::ops::Range<usize> {
    (len * j / parts)..(len * (j + 1) / parts)
}

impl<T: Float> Trainer<T> {
    /// A trainer for `net` on `threads` threads (clamped to 1..=[`MAX_THREADS`]),
    /// shuffling with `seed`.
    pub fn new(net: Network<T>, rule: Box<dyn Optimizer<T>>, threads: usize, seed: u64) -> Self {
        Self::with_first_replica(net, rule, threads, seed, 0)
    }

    /// A trainer for `net` on `threads` threads on each rank of `comm`,
    /// replica `rank * threads + thread` of all ranks' (see the module
    /// documentation); every rank calls it. The weights are rank 0's. Alone
    /// (a group of one), the same as [`Trainer::new`].
    ///
    /// Refused when the ranks run different numbers of threads or nets of
    /// different sizes.
    pub fn distributed(
        net: Network<T>,
        rule: Box<dyn Optimizer<T>>,
        threads: usize,
        seed: u64,
        comm: Arc<dyn Collective>,
    ) -> Result<Self, TrainError> {
        if comm.size() == 1 {
            return Ok(Self::new(net, rule, threads, seed));
        }
        let threads = threads.clamp(1, MAX_THREADS);
        let mut trainer = Self::with_first_replica(net, rule, threads, seed, comm.rank() * threads);
        let net = trainer.net();
        let grads = net.parameter_count();
        let buffers: usize = net
            .layers
            .iter()
            .flat_map(|l| l.buffers())
            .map(|(_, b)| b.len())
            .sum();
        let record = grads + buffers + loss_words::<T>();

        let mine = [threads as u64, record as u64]
            .map(u64::to_le_bytes)
            .concat();
        let mut all = vec![0u8; mine.len() * comm.size()];
        comm.allgather(&mine, &mut all);
        let shapes: Vec<(u64, u64)> = all
            .chunks_exact(16)
            .map(|c| {
                let word = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().expect("8 bytes"));
                (word(0), word(8))
            })
            .collect();
        for (rank, &(t, r)) in shapes.iter().enumerate() {
            if t != shapes[0].0 {
                return Err(TrainError::RanksDisagree(format!(
                    "rank 0 runs {} thread(s), rank {rank} {t}: pass the same --threads to every rank",
                    shapes[0].0
                )));
            }
            if r != shapes[0].1 {
                return Err(TrainError::RanksDisagree(format!(
                    "rank {rank} built a net of {r} values to share per step, rank 0 one of {}: \
                     every rank must run the same backprop with the same flags and data",
                    shapes[0].1
                )));
            }
        }

        // Rank 0's initial weights: a start from the same seed is the same
        // anyway, but a build that draws them otherwise is not. (Buffers
        // start as constants, BatchNorm's 0 and 1.)
        let mut weights = Vec::new();
        if comm.rank() == 0 {
            for p in trainer.net().layers.iter().flat_map(|l| l.params()) {
                weights.extend_from_slice(dist::bytes_of(p.value.data()));
            }
        }
        comm.broadcast(0, &mut weights);
        if comm.rank() != 0 {
            for w in &mut trainer.workers {
                let mut at = 0;
                for p in w.net.layers.iter_mut().flat_map(|l| l.params_mut()) {
                    let bytes = dist::bytes_of_mut(p.value.data_mut());
                    bytes.copy_from_slice(&weights[at..at + bytes.len()]);
                    at += bytes.len();
                }
            }
        }

        let replicas = threads * comm.size();
        trainer.ranks = Some(Ranks {
            first: comm.rank() * threads,
            comm,
            replicas,
            grads,
            sum: vec![T::zero(); record],
            loss: 0.0,
            remote_rngs: Vec::new(),
        });
        Ok(trainer)
    }

    /// A trainer whose replicas are those from `first` on of a larger set
    /// (their Dropout generators seeded by that index).
    fn with_first_replica(
        net: Network<T>,
        rule: Box<dyn Optimizer<T>>,
        threads: usize,
        seed: u64,
        first: usize,
    ) -> Self {
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
            .map(|t| Worker {
                net: {
                    let mut replica = net.clone();
                    replica.set_fast_order(true);
                    let r = first + t;
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
            ranks: None,
            partials: Vec::new(),
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

    /// Threads (and replicas) on this rank.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Ranks of the job (1 alone).
    pub fn ranks(&self) -> usize {
        self.ranks.as_ref().map_or(1, |r| r.comm.size())
    }

    /// Replicas on all ranks, and the index of this rank's first.
    fn replica_span(&self) -> (usize, usize) {
        self.ranks
            .as_ref()
            .map_or((self.workers.len(), 0), |r| (r.replicas, r.first))
    }

    /// Replicas on all ranks: ranks x threads.
    pub fn replica_count(&self) -> usize {
        self.replica_span().0
    }

    /// The index among all ranks' replicas of this rank's first.
    pub fn first_replica(&self) -> usize {
        self.replica_span().1
    }

    /// The generator of every layer (`None` for a layer without) of every
    /// replica of all ranks, replica 0 first. On a rank of several, rank 0
    /// has the other ranks' after [`Trainer::gather_rngs`]; without it, and
    /// on the other ranks, only this rank's.
    pub fn layer_rngs(&self) -> Vec<Vec<Option<ChaCha8Rng>>> {
        let local = self
            .replicas()
            .map(|net| net.layers.iter().map(|l| l.rng().cloned()).collect());
        let remote = self
            .ranks
            .iter()
            .flat_map(|r| r.remote_rngs.iter().cloned());
        local.chain(remote).collect()
    }

    /// Sends every rank's Dropout generators to rank 0, for the checkpoint it
    /// writes ([`Trainer::layer_rngs`]); every rank calls it. Alone, nothing.
    pub fn gather_rngs(&mut self) {
        let mine = serde_json::to_vec(&self.layer_rngs()).expect("generators serialise");
        let Some(ranks) = &mut self.ranks else {
            return;
        };
        ranks.remote_rngs.clear();
        if let Some(all) = ranks.comm.gather(0, &mine) {
            for bytes in &all[1..] {
                let rngs: Vec<Vec<Option<ChaCha8Rng>>> =
                    serde_json::from_slice(bytes).expect("a rank sends its generators");
                ranks.remote_rngs.extend(rngs);
            }
        }
    }

    /// Checks that every rank holds the weights, buffers and optimizer state
    /// of rank 0 (a hash of them, compared); every rank calls it, and all
    /// get the same answer. Alone, nothing to check.
    pub fn check_ranks_agree(&self) -> Result<(), TrainError> {
        let Some(ranks) = &self.ranks else {
            return Ok(());
        };
        let mut hash = Sha256::new();
        let net = self.net();
        for p in net.layers.iter().flat_map(|l| l.params()) {
            hash.update(dist::bytes_of(p.value.data()));
        }
        for (_, b) in net.layers.iter().flat_map(|l| l.buffers()) {
            hash.update(dist::bytes_of(b.data()));
        }
        for slot in self.optimizer.state.iter().flatten() {
            hash.update(dist::bytes_of(slot));
        }
        let mine = hash.finalize();
        let mut all = vec![0u8; mine.len() * ranks.comm.size()];
        ranks.comm.allgather(&mine, &mut all);
        let mut hashes = all.chunks_exact(mine.len());
        let first = hashes.next().expect("rank 0");
        match hashes.position(|h| h != first) {
            Some(r) => Err(TrainError::RanksDisagree(format!(
                "rank {} holds other weights than rank 0: every rank must run the same backprop \
                 build with the same flags on the same data (check --data on every machine)",
                r + 1
            ))),
            None => Ok(()),
        }
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
        let mut loss = 0.0;
        self.steps(data, &[batch], |_, l| loss = l)?;
        Ok(loss)
    }

    /// [`Trainer::step`] on each of `batches` in turn, handed to the worker
    /// threads once, as [`Trainer::train_epoch`] does (a hand-over per step is two
    /// sleeps and wake-ups); `on_step(i, loss)` after the `i`-th. Every batch
    /// is checked before the first step.
    pub fn steps(
        &mut self,
        data: &Dataset,
        batches: &[&[usize]],
        mut on_step: impl FnMut(usize, f64) + Send,
    ) -> Result<(), TrainError> {
        for batch in batches {
            self.check_batch(data, batch)?;
        }
        let pool = Arc::clone(&self.pool);
        pool.install(|| {
            for (i, batch) in batches.iter().enumerate() {
                on_step(i, self.step_in_pool(data, batch));
            }
        });
        Ok(())
    }

    /// What [`Trainer::step`] checks of a batch: the data's shape, the
    /// batch not empty, its indices and their labels in range.
    fn check_batch(&mut self, data: &Dataset, batch: &[usize]) -> Result<(), TrainError> {
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
        Ok(())
    }

    /// [`Trainer::step`], called from inside the pool.
    fn step_in_pool(&mut self, data: &Dataset, batch: &[usize]) -> f64 {
        let total = batch.len();
        let (parts, first) = self.replica_span();
        self.workers.par_iter_mut().enumerate().for_each(|(t, w)| {
            let rows = &batch[share(total, parts, first + t)];
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
            let (scores, loss_layer) = w.net.scores_and_loss_layer();
            let loss = loss_layer.forward(scores, Labels::Index(&w.t)).as_f64();
            w.loss = loss * rows.len() as f64 / total as f64;
            w.net.backward(T::of(rows.len() as f64 / total as f64));
        });
        let sum_w2 = self.update(total);
        let data_loss = match &self.ranks {
            None => self.workers.iter().map(|w| w.loss).sum::<f64>(),
            Some(ranks) => ranks.loss,
        };
        self.average_buffers(total);
        data_loss + 0.5 * self.workers[0].net.weight_decay_lambda * sum_w2
    }

    /// Sums the replicas' gradients, adds weight decay, steps the optimizer on
    /// replica 0 and copies the new weights to the others; in parallel by ranges
    /// (called from inside the pool). Returns `Σ W²` over the decayed weights before the step (for the loss),
    /// summed while they pass through anyway. On a rank of several, the sum
    /// is the allreduce's over all ranks' replicas (and their buffers and
    /// losses, of a batch of `total` rows).
    fn update(&mut self, total: usize) -> f64 {
        self.optimizer.rule.begin_step();
        let lambda = T::of(self.workers[0].net.weight_decay_lambda);
        let parts = self.workers.len();
        let replicas = self.replica_count();
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
                        grads: Vec::with_capacity(replicas),
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
        if let Some(ranks) = &mut self.ranks {
            ranks.allreduce(&self.views, &self.workers, total);
            // The sum of all ranks' replicas stands in for theirs.
            let sum = ranks.sum.as_mut_ptr();
            let mut offset = 0;
            for v in &mut self.views {
                v.grads.clear();
                // SAFETY: `sum` starts with the gradients, `v.len` of them
                // for this parameter at `offset`.
                v.grads.push(unsafe { sum.add(offset) });
                offset += v.len;
            }
        }

        let views = SharedViews(&self.views);
        let rule: &dyn Optimizer<T> = &*self.optimizer.rule;
        // One piece of every tensor per replica of all ranks, whatever
        // threads take them, and `Σ W²` added piece by piece in order: the
        // loss is the same bits on K ranks as in one process.
        let pieces = replicas;
        (0..pieces)
            .into_par_iter()
            .map(|j| {
                let views = &views;
                let mut sum_w2 = 0.0;
                let mut state: [&mut [T]; 2] = [&mut [], &mut []];
                for v in views.0 {
                    let range = share(v.len, pieces, j);
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
            .collect_into_vec(&mut self.partials);
        self.partials.iter().sum()
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
        if self.ranks.is_some() {
            return self.average_buffers_across_ranks(total);
        }
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

    /// [`Trainer::average_buffers`] over the replicas of all ranks: the
    /// allreduce summed their buffers, in the order one process does.
    fn average_buffers_across_ranks(&mut self, total: usize) {
        let ranks = self.ranks.as_ref().expect("ranks");
        if !self.has_buffers {
            return;
        }
        let count = (0..ranks.replicas)
            .filter(|&r| !share(total, ranks.replicas, r).is_empty())
            .count();
        let inv = T::of(1.0 / count as f64);
        for w in &mut self.workers {
            let mut sums = ranks.sum[ranks.grads..].iter();
            for (_, b) in w.net.layers.iter_mut().flat_map(|l| l.buffers_mut()) {
                for (a, &s) in b.data_mut().iter_mut().zip(&mut sums) {
                    *a = s * inv;
                }
            }
        }
    }

    /// Mean data loss and accuracy over `data`, in inference mode, in batches of
    /// `batch_size` split across the threads (of all ranks).
    pub fn evaluate(
        &mut self,
        data: &Dataset,
        batch_size: usize,
    ) -> Result<(f64, f64), TrainError> {
        let (mut total_loss, mut correct) = (0.0, 0);
        // On a rank of several: each thread's (loss, correct) per slice, to be
        // added up in the order one process adds them.
        let mut shares = Vec::new();
        let spread = self.ranks.is_some();
        let span = self.replica_span();
        self.infer(data, batch_size, span, |workers| {
            for w in workers.iter_mut() {
                // A worker without rows in this slice still holds the last
                // slice's scores. (Its zeros keep the ranks' shares in step;
                // added, they change no bit.)
                if w.t.is_empty() {
                    if spread {
                        shares.extend([0.0, 0.0]);
                    }
                    continue;
                }
                let rows = w.t.len() as f64;
                w.correct = w.predicted.iter().zip(&w.t).filter(|(p, t)| p == t).count();
                let (scores, loss_layer) = w.net.scores_and_loss_layer();
                let loss = loss_layer.forward(scores, Labels::Index(&w.t)).as_f64() * rows;
                if spread {
                    shares.extend([loss, w.correct as f64]);
                } else {
                    total_loss += loss;
                    correct += w.correct;
                }
            }
        })?;
        if let Some(ranks) = &self.ranks {
            let mut all = vec![0.0; shares.len() * ranks.comm.size()];
            ranks
                .comm
                .allgather(dist::bytes_of(&shares), dist::bytes_of_mut(&mut all));
            let per_batch = 2 * self.workers.len();
            for b in 0..shares.len() / per_batch.max(1) {
                for rank in all.chunks_exact(shares.len()) {
                    for pair in rank[b * per_batch..(b + 1) * per_batch].chunks_exact(2) {
                        total_loss += pair[0];
                        correct += pair[1] as usize;
                    }
                }
            }
        }
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
        // Every rank predicts all of `data` on its own threads.
        let span = (self.workers.len(), 0);
        self.infer(data, batch_size, span, |workers| {
            for w in workers {
                out.extend_from_slice(&w.predicted);
            }
        })?;
        Ok(out)
    }

    /// Runs `data` through the net in inference mode, batch by batch, each
    /// batch split across `span.0` replicas (in slices of [`infer_rows`]
    /// rows per replica) of which this rank's workers are those from `span.1`
    /// on; after each slice `collect` sees the workers in order, with their
    /// rows' labels and predictions. A batch larger than the data is the
    /// whole data.
    fn infer(
        &mut self,
        data: &Dataset,
        batch_size: usize,
        (parts, first): (usize, usize),
        mut collect: impl FnMut(&mut [Worker<T>]) + Send,
    ) -> Result<(), TrainError> {
        self.check_data(data)?;
        if batch_size == 0 {
            return Err(TrainError::BatchSize {
                batch: 0,
                examples: data.len(),
            });
        }
        let indices: Vec<usize> = (0..data.len()).collect();
        let pool = Arc::clone(&self.pool);
        let workers = &mut self.workers;
        // Each batch runs in slices of infer_rows rows per worker: inference
        // is example by example, so the slicing changes no result, and a
        // slice's activations stay in the cache from layer to layer.
        let widest = workers
            .first()
            .map_or(1, |w| w.net.widest_values(&data.shape));
        let slice = parts * infer_rows(widest);
        pool.install(|| {
            for batch in indices.chunks(batch_size).flat_map(|b| b.chunks(slice)) {
                workers.par_iter_mut().enumerate().for_each(|(t, w)| {
                    let rows = &batch[share(batch.len(), parts, first + t)];
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

impl<T: Float> Ranks<T> {
    /// The step's allreduce: this rank adds its replicas' gradients,
    /// buffers (of those with rows of the batch of `total`) and data losses,
    /// replica by replica, to the sum of the ranks before it, as
    /// [`Trainer::update`], [`Trainer::average_buffers`] and the loss add
    /// them in one process. `views` hold this rank's gradients.
    fn allreduce(&mut self, views: &[ParamViews<T>], workers: &[Worker<T>], total: usize) {
        self.remote_rngs.clear();
        let (grads, replicas, first) = (self.grads, self.replicas, self.first);
        let parts = workers.len();
        let views = SharedViews(views);
        let starts = self.comm.rank() == 0;
        dist::allreduce(&*self.comm, &mut self.sum, |sum| {
            let (grad_sum, rest) = sum.split_at_mut(grads);
            let grad_sum = SharedSum(grad_sum.as_mut_ptr());
            // In parallel by ranges, as `update` adds.
            (0..parts).into_par_iter().for_each(|j| {
                let (views, grad_sum) = (&views, &grad_sum);
                let mut offset = 0;
                for v in views.0 {
                    let range = share(v.len, parts, j);
                    // SAFETY: `grad_sum` holds `grads` values, `v.len` of
                    // them for this parameter at `offset`; thread `j` only
                    // touches its range, disjoint from the others'. The
                    // gradients are live tensors of `v.len` values, only read.
                    let s = unsafe {
                        std::slice::from_raw_parts_mut(
                            grad_sum.0.add(offset + range.start),
                            range.len(),
                        )
                    };
                    for &g in &v.grads {
                        let g =
                            unsafe { std::slice::from_raw_parts(g.add(range.start), range.len()) };
                        for (a, &b) in s.iter_mut().zip(g) {
                            *a += b;
                        }
                    }
                    offset += v.len;
                }
            });
            let (buffer_sum, loss_sum) = rest.split_at_mut(rest.len() - loss_words::<T>());
            for (t, w) in workers.iter().enumerate() {
                if share(total, replicas, first + t).is_empty() {
                    continue;
                }
                let mut at = 0;
                for (_, b) in w.net.layers.iter().flat_map(|l| l.buffers()) {
                    for (a, &b) in buffer_sum[at..at + b.len()].iter_mut().zip(b.data()) {
                        *a += b;
                    }
                    at += b.len();
                }
            }
            let loss_bytes = &mut dist::bytes_of_mut(loss_sum)[..8];
            // The f64 -0.0, not the two f32 ones the sum starts with.
            let mut sum = if starts {
                -0.0
            } else {
                f64::from_ne_bytes((&*loss_bytes).try_into().expect("8 bytes"))
            };
            for w in workers {
                sum += w.loss;
            }
            loss_bytes.copy_from_slice(&sum.to_ne_bytes());
        });
        let loss_bytes = &dist::bytes_of(&self.sum[self.sum.len() - loss_words::<T>()..])[..8];
        self.loss = f64::from_ne_bytes(loss_bytes.try_into().expect("8 bytes"));
    }
}

/// The gradient part of the allreduce's sum, shared by the threads that add
/// to disjoint ranges of it.
struct SharedSum<T>(*mut T);
unsafe impl<T> Sync for SharedSum<T> {}

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

/// K ranks of T threads (threads of this process standing in for the
/// ranks) against one process of K x T threads.
#[cfg(test)]
mod rank_tests {
    use super::*;
    use crate::data::spiral;
    use crate::dist::Local;
    use crate::nets::MultiLayerNet;
    use crate::optim::Adam;

    /// Weights, buffers, the loss of every epoch and the evaluation, as bits.
    type Outcome = (Vec<u64>, Vec<u64>);

    fn train(threads: usize, comm: Option<Arc<dyn Collective>>) -> Outcome {
        let data = spiral::split(7).train;
        let spec = MultiLayerNet::new(data.dim(), &[10, 10], data.classes())
            .batchnorm(true)
            .dropout(0.2)
            .weight_decay_lambda(1e-3);
        let net = spec.build::<f32>(3).unwrap();
        let rule = Box::new(Adam::new(0.01, 0.9, 0.999));
        let mut trainer = match comm {
            None => Trainer::new(net, rule, threads, 11),
            Some(comm) => Trainer::distributed(net, rule, threads, 11, comm).unwrap(),
        };
        let mut losses = Vec::new();
        for _ in 0..3 {
            // 31 rows: shares of unequal sizes on 4 and 6 replicas.
            losses.push(trainer.train_epoch(&data, 31, |_, _| {}).unwrap());
            trainer.check_ranks_agree().unwrap();
        }
        let (loss, accuracy) = trainer.evaluate(&data, 50).unwrap();
        losses.extend([loss, accuracy]);
        let net = trainer.net();
        let values = net
            .layers
            .iter()
            .flat_map(|l| l.params())
            .flat_map(|p| p.value.data().to_vec())
            .chain(
                net.layers
                    .iter()
                    .flat_map(|l| l.buffers())
                    .flat_map(|(_, b)| b.data().to_vec()),
            )
            .map(|v| u64::from(v.to_bits()))
            .collect();
        (values, losses.iter().map(|l| l.to_bits()).collect())
    }

    #[test]
    fn ranks_of_threads_train_bit_for_bit_as_one_process() {
        for (ranks, threads) in [(2, 1), (3, 1), (2, 2), (3, 2)] {
            let want = train(ranks * threads, None);
            let group = Local::group(ranks);
            let got: Vec<Outcome> = std::thread::scope(|s| {
                let handles: Vec<_> = group
                    .into_iter()
                    .map(|c| s.spawn(move || train(threads, Some(Arc::new(c)))))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (rank, outcome) in got.iter().enumerate() {
                assert!(
                    outcome == &want,
                    "{ranks} ranks x {threads} threads: rank {rank} differs from one process of {}",
                    ranks * threads
                );
            }
        }
    }

    #[test]
    fn ranks_that_run_different_thread_counts_are_refused() {
        let group = Local::group(2);
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .into_iter()
                .map(|c| {
                    s.spawn(move || {
                        let threads = 1 + c.rank();
                        let data = spiral::split(7).train;
                        let net = MultiLayerNet::new(data.dim(), &[4], data.classes())
                            .build::<f32>(3)
                            .unwrap();
                        let rule = Box::new(Adam::new(0.01, 0.9, 0.999));
                        matches!(
                            Trainer::distributed(net, rule, threads, 1, Arc::new(c)),
                            Err(TrainError::RanksDisagree(m)) if m.contains("--threads")
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results, [true, true]);
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
    fn steps_are_the_steps_one_by_one_and_check_every_batch_first() {
        let (mut one_by_one, data) = trainer(0.1);
        let (mut together, _) = trainer(0.1);
        let batches: Vec<&[usize]> = vec![&[0, 3, 5], &[1, 2], &[4, 6, 7, 8]];
        let want: Vec<f64> = batches
            .iter()
            .map(|b| one_by_one.step(&data, b).unwrap())
            .collect();
        let mut got = Vec::new();
        together
            .steps(&data, &batches, |i, loss| got.push((i, loss)))
            .unwrap();
        let want: Vec<(usize, f64)> = want.into_iter().enumerate().collect();
        assert_eq!(got, want);
        // A bad batch anywhere stops them all before the first.
        let before = together.net().params()[0].value.clone();
        let past_the_end = [data.len()];
        let bad: Vec<&[usize]> = vec![&[0, 1], &past_the_end];
        assert!(together.steps(&data, &bad, |_, _| {}).is_err());
        assert_eq!(together.net().params()[0].value, &before);
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
        // A hidden layer of 8,000 makes slices of 80 rows.
        let data = spiral::split(3).train;
        let net = MultiLayerNet::new(data.dim(), &[8000], data.classes())
            .build::<f32>(1)
            .unwrap();
        let rows = infer_rows(net.widest_values(&data.shape));
        assert_eq!(rows, 80);
        let mut t = Trainer::new(net, Box::new(Sgd::new(0.1)), 2, 1);
        let data = data.take(rows * 2 + 1);
        assert_eq!(data.len(), rows * 2 + 1);
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
