//! Everything `--resume` needs: the weights, the optimizer's moments and step
//! count, the shuffling generator, every replica's Dropout generators and
//! BatchNorm statistics, the epoch counter, the metrics so far and the run's
//! configuration.
//!
//! It lives in `train_state.safetensors` beside `model.safetensors`, so that the
//! model file holds exactly a PyTorch `state_dict`. The state file holds the
//! weights too: each file is replaced atomically, but a process killed between
//! the two replacements leaves files from different epochs, and a resume that
//! reads one file only is always consistent. Tensors: `replica0.<name>` for the
//! weights and buffers (PyTorch names, as in the model file),
//! `replica<r>.<name>` for the buffers of replicas 1.., and
//! `optimizer.<param>.<slot>` in backprop's own layout (`W1`, `b1`, ...; slot 0
//! is Momentum's `v` or Adam's `m`, slot 1 Adam's `v`). The rest is JSON in the
//! metadata key `train_state`.

use std::collections::HashMap;
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    CheckpointError, MODEL_FILE, ModelInfo, Named, fill_from, metadata, parse, read_file, save,
    state_dict, write_safetensors,
};
use crate::tensor::Float;
use crate::train::{EpochMetrics, MAX_THREADS, TrainConfig, Trainer};

pub const TRAIN_STATE_FILE: &str = "train_state.safetensors";

/// Training states saved before MPI jobs existed were saved by one process.
fn one() -> usize {
    1
}

/// The JSON part of the training state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    pub config: TrainConfig,
    /// The optimizer's name and step count (Adam's `t`).
    pub optimizer: String,
    pub steps: u64,
    pub shuffle_rng: ChaCha8Rng,
    /// The processes of the MPI job that saved it (1 without `mpirun`),
    /// each with `config.threads` replicas.
    #[serde(default = "one")]
    pub ranks: usize,
    /// `layer_rngs[r][i]`: the generator of layer `i` in replica `r` (of all
    /// ranks), if it has one.
    pub layer_rngs: Vec<Vec<Option<ChaCha8Rng>>>,
    /// The metrics of the epochs so far, from which a resumed run rewrites
    /// `metrics.jsonl` (a run killed between the two writes logs nothing twice
    /// and loses no line).
    #[serde(default)]
    pub history: Vec<EpochMetrics>,
}

/// Writes `train_state.safetensors` and `model.safetensors` into `dir` after
/// `info.epoch` epochs, each replaced atomically. The training state goes
/// first, so that a run killed at any moment resumes from the newest state it
/// completed; the model file is then at most one epoch behind.
pub fn save_training<T: Float>(
    dir: &Path,
    trainer: &Trainer<T>,
    config: &TrainConfig,
    info: &ModelInfo,
    history: &[EpochMetrics],
) -> Result<(), CheckpointError> {
    write_state(
        &dir.join(TRAIN_STATE_FILE),
        trainer,
        config,
        info.epoch,
        history,
    )?;
    save(&dir.join(MODEL_FILE), trainer.net(), info)
}

/// Writes the training state alone (the model goes in its own file).
pub(crate) fn write_state<T: Float>(
    path: &Path,
    trainer: &Trainer<T>,
    config: &TrainConfig,
    epoch: usize,
    history: &[EpochMetrics],
) -> Result<(), CheckpointError> {
    let net = trainer.net();
    let mut tensors = Vec::new();
    for (p, slots) in net.params().iter().zip(&trainer.optimizer.state) {
        for (s, slot) in slots.iter().enumerate() {
            tensors.push(Named {
                name: format!("optimizer.{}.{s}", p.name),
                shape: p.value.shape().to_vec(),
                data: slot.iter().map(|v| v.as_f64() as f32).collect(),
            });
        }
    }
    for (r, replica) in trainer.replicas().enumerate() {
        // Replica 0 holds the weights every replica shares; the others only
        // their own buffers.
        for mut t in state_dict(replica, r > 0) {
            t.name = format!("replica{r}.{}", t.name);
            tensors.push(t);
        }
    }
    let state = TrainState {
        epoch,
        config: config.clone(),
        optimizer: trainer.optimizer.rule.name().to_owned(),
        steps: trainer.optimizer.rule.steps(),
        shuffle_rng: trainer.rng.clone(),
        ranks: trainer.ranks(),
        layer_rngs: trainer.layer_rngs(),
        history: history.to_vec(),
    };
    let meta = HashMap::from([(
        "train_state".to_owned(),
        serde_json::to_string(&state).expect("training state serialises"),
    )]);
    write_safetensors(path, &tensors, meta)
}

/// Reads the JSON part of `dir/train_state.safetensors` (the run's configuration).
///
/// `--resume` builds its net from `dir/model.safetensors`, checked against that
/// file's tensors, which bounds what building it allocates; this checks that
/// the model file is there and whole first.
pub fn read_train_state(dir: &Path) -> Result<TrainState, CheckpointError> {
    let state = read_state(&dir.join(TRAIN_STATE_FILE))?;
    super::read_spec(&dir.join(MODEL_FILE))?;
    Ok(state)
}

pub(crate) fn read_state(path: &Path) -> Result<TrainState, CheckpointError> {
    train_state_from_bytes(path, &read_file(path)?)
}

/// The training state in the content of a `train_state.safetensors`; `path`
/// only names it in errors. Checks what would otherwise multiply memory before
/// the model is read: the thread count.
pub fn train_state_from_bytes(path: &Path, bytes: &[u8]) -> Result<TrainState, CheckpointError> {
    let meta = metadata(path, bytes)?;
    let json = meta
        .get("train_state")
        .ok_or_else(|| CheckpointError::BadState {
            path: path.to_owned(),
            reason: "no 'train_state' in its metadata".to_owned(),
        })?;
    let bad = |reason: String| CheckpointError::BadMetadata {
        path: path.to_owned(),
        key: "train_state",
        value: json.chars().take(200).collect(),
        reason,
    };
    let state: TrainState = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let threads = state.config.threads;
    let replicas = threads.checked_mul(state.ranks);
    if !(1..=MAX_THREADS).contains(&threads)
        || state.ranks == 0
        || replicas != Some(state.layer_rngs.len())
    {
        return Err(CheckpointError::BadState {
            path: path.to_owned(),
            reason: format!(
                "expected 1 to {MAX_THREADS} threads on each of 1 or more ranks with one list of generators each, \
                 found {threads} thread(s), {} rank(s) and {} list(s)",
                state.ranks,
                state.layer_rngs.len()
            ),
        });
    }
    Ok(state)
}

/// Puts a trainer built from the saved configuration back where the run in
/// `dir` stopped: weights, buffers, optimizer state, generators. Returns the
/// saved state (its `epoch` is the last completed one).
///
/// Reads the state file once. It does not check the configuration against
/// `model.safetensors` as [`read_train_state`] does: that bounds what building
/// the trainer allocates, and the trainer exists already; every tensor read
/// here is checked against it.
pub fn restore_training<T: Float>(
    dir: &Path,
    trainer: &mut Trainer<T>,
) -> Result<TrainState, CheckpointError> {
    let path = dir.join(TRAIN_STATE_FILE);
    let bytes = read_file(&path)?;
    let state = train_state_from_bytes(&path, &bytes)?;
    apply_state(&path, &bytes, &state, trainer)?;
    Ok(state)
}

fn mismatch(path: &Path, reason: &str) -> CheckpointError {
    CheckpointError::Mismatch {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Puts `state` and the tensors of `bytes` (the content of `state_path`,
/// which `state` was read from) into every replica of `trainer`.
pub(crate) fn apply_state<T: Float>(
    state_path: &Path,
    bytes: &[u8],
    state: &TrainState,
    trainer: &mut Trainer<T>,
) -> Result<(), CheckpointError> {
    if state.ranks != trainer.ranks() || state.layer_rngs.len() != trainer.replica_count() {
        // The shares of a batch and the order of the sums depend on both.
        let (ranks, threads) = (state.ranks, state.layer_rngs.len() / state.ranks.max(1));
        let how = |k: usize, t: usize| match k {
            1 => format!("one process of {t} thread(s)"),
            k => format!("{k} MPI ranks x {t} thread(s)"),
        };
        return Err(mismatch(
            state_path,
            &format!(
                "it was saved by {}, this run has {}; resume it as it ran ({})",
                how(ranks, threads),
                how(trainer.ranks(), trainer.threads()),
                match ranks {
                    1 => "without mpirun".to_owned(),
                    k => format!("mpirun -np {k}"),
                }
            ),
        ));
    }
    if state.optimizer != trainer.optimizer.rule.name() {
        return Err(mismatch(
            state_path,
            &format!(
                "it holds {} state, this run uses {}",
                state.optimizer,
                trainer.optimizer.rule.name()
            ),
        ));
    }

    let file = parse(state_path, bytes)?;
    let first_replica = trainer.first_replica();
    let mut replicas = trainer.replicas_mut();
    let first = replicas.next().expect("a trainer has one replica or more");
    fill_from(first, &file, "replica0.", false, state_path)?;
    let weights = first.clone();
    let replicas = std::iter::once(first).chain(replicas);
    // This rank's replicas' generators; every replica's buffers are the same
    // (averaged every step), rank 0's saved.
    let rngs = &state.layer_rngs[first_replica..];
    for (r, (replica, rngs)) in replicas.zip(rngs).enumerate() {
        if r > 0 {
            replica.copy_params_from(&weights);
            fill_from(replica, &file, &format!("replica{r}."), true, state_path)?;
        }
        if rngs.len() != replica.layers.len() {
            return Err(mismatch(
                state_path,
                &format!(
                    "generators for {} layers, the net has {}",
                    rngs.len(),
                    replica.layers.len()
                ),
            ));
        }
        for (layer, rng) in replica.layers.iter_mut().zip(rngs) {
            if let Some(rng) = rng {
                layer.set_rng(rng.clone());
            }
        }
    }

    let names: Vec<(String, usize)> = trainer
        .net()
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.value.len()))
        .collect();
    for ((name, len), slots) in names.iter().zip(&mut trainer.optimizer.state) {
        for (s, slot) in slots.iter_mut().enumerate() {
            let key = format!("optimizer.{name}.{s}");
            let view = file
                .tensor(&key)
                .map_err(|_| CheckpointError::MissingTensor {
                    path: state_path.to_owned(),
                    name: key.clone(),
                    expected: vec![*len],
                })?;
            if view.data().len() != *len * 4 || view.dtype() != safetensors::Dtype::F32 {
                return Err(CheckpointError::Shape {
                    path: state_path.to_owned(),
                    name: key,
                    expected: vec![*len],
                    found: view.shape().to_vec(),
                });
            }
            for (dst, b) in slot.iter_mut().zip(view.data().chunks_exact(4)) {
                *dst = T::of(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            }
        }
    }
    trainer.optimizer.rule.set_steps(state.steps);
    trainer.rng = state.shuffle_rng.clone();
    Ok(())
}
