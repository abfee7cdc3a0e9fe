//! Round trips, PyTorch names and layouts, every way a file can be wrong, and
//! the bit-for-bit resume of a trainer whose replicas draw Dropout masks.

use std::collections::HashMap;
use std::path::PathBuf;

use super::train_state::{apply_state, read_state, write_state};
use super::*;
use crate::data::spiral;
use crate::layers::{Affine, Dropout, Layer, Relu};
use crate::nets::MultiLayerNet;
use crate::optim;
use crate::train::{TrainConfig, Trainer};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backprop-ckpt-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn info() -> ModelInfo {
    ModelInfo::builtin(DatasetName::Spiral, 3, [1, 1, 4], 5, 2)
}

fn saved(name: &str) -> (PathBuf, Network<f32>) {
    let net = MultiLayerNet::new(4, &[6, 5], 3).build::<f32>(11).unwrap();
    let path = temp(name);
    save(&path, &net, &info()).unwrap();
    (path, net)
}

/// Rewrites `path` with `edit` applied to its tensors and metadata.
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<Named>, &mut HashMap<String, String>)) {
    let bytes = fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut meta = metadata(path, &bytes).unwrap();
    let mut tensors: Vec<Named> = file
        .tensors()
        .into_iter()
        .map(|(name, v)| Named {
            name,
            shape: v.shape().to_vec(),
            data: v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        })
        .collect();
    edit(&mut tensors, &mut meta);
    write_safetensors(path, &tensors, meta).unwrap();
}

#[test]
fn names_and_layouts_follow_pytorch() {
    let (path, net) = saved("names.safetensors");
    let (shapes, meta) = describe(&path).unwrap();
    let names: Vec<_> = shapes.keys().cloned().collect();
    assert_eq!(
        names,
        [
            "0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"
        ]
    );
    // Linear.weight is (out, in): Affine's W (in, out) transposed.
    assert_eq!(shapes["0.weight"], [6, 4]);
    assert_eq!(shapes["4.weight"], [3, 5]);
    let bytes = fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let w = file.tensor("0.weight").unwrap();
    let at = |out: usize, inp: usize| {
        let i = 4 * (out * 4 + inp);
        f32::from_le_bytes(w.data()[i..i + 4].try_into().unwrap())
    };
    let w1 = net.params()[0].value.clone();
    assert_eq!(at(5, 2), w1.data()[2 * 6 + 5]);
    assert_eq!(at(0, 3), w1.data()[3 * 6]);
    // The metadata rebuilds the net: its layers, for the checkpoint's input shape.
    let spec = NetSpec::from_json(&meta["net"]).unwrap();
    assert_eq!(spec.layers, net.spec.unwrap().layers);
    assert_eq!(spec.input_shape, Some(vec![1, 1, 4]));
    assert_eq!(meta["input_shape"], "[1,1,4]");
    assert_eq!(meta["format_version"], "2");
}

#[test]
fn round_trip_gives_the_same_net() {
    let (path, mut net) = saved("round.safetensors");
    let (mut back, back_info) = load::<f32>(&path).unwrap();
    assert_eq!(back_info, info());
    let spec = |n: &Network<f32>| n.spec.clone().unwrap();
    assert_eq!(spec(&back).layers, spec(&net).layers);
    assert_eq!(spec(&back).input_shape, Some(vec![1, 1, 4]));
    for (a, b) in net.params().iter().zip(back.params()) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.value.data(), b.value.data());
    }
    let x = Tensor::from_vec(&[2, 4], vec![0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -0.5, 0.25]).unwrap();
    assert_eq!(
        net.predict(&x, false).unwrap().data(),
        back.predict(&x, false).unwrap().data()
    );
    // f64 nets load the same numbers.
    let (back64, _) = load::<f64>(&path).unwrap();
    assert_eq!(
        back64.params()[2].value.data()[3],
        f64::from(net.params()[2].value.data()[3])
    );
}

#[test]
fn textbook_dropout_keeps_its_inference_scaling_through_a_checkpoint() {
    use crate::layers::DropoutScaling;
    let spec = MultiLayerNet::new(4, &[6, 5], 3).dropout(0.5);
    let textbook = spec
        .clone()
        .dropout_scaling(DropoutScaling::Textbook)
        .build::<f32>(11)
        .unwrap();
    let path = temp("textbook-dropout.safetensors");
    save(&path, &textbook, &info()).unwrap();
    let (mut back, _) = load::<f32>(&path).unwrap();
    assert_eq!(
        back.spec.as_ref().unwrap().layers,
        textbook.spec.as_ref().unwrap().layers
    );
    let x = Tensor::from_vec(&[2, 4], vec![0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -0.5, 0.25]).unwrap();
    let mut textbook = textbook;
    let scores = textbook.predict(&x, false).unwrap().data().to_vec();
    assert_eq!(back.predict(&x, false).unwrap().data(), &scores[..]);
    // The same weights with inverted scaling answer differently at inference,
    // so the metadata must say which; inverted nets keep the old metadata.
    let mut inverted = spec.build::<f32>(11).unwrap();
    assert_ne!(inverted.predict(&x, false).unwrap().data(), &scores[..]);
    let (path, _) = saved("inverted-metadata.safetensors");
    let file = fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&file).unwrap();
    let net = &meta.metadata().as_ref().unwrap()["net"];
    assert!(!net.contains("scaling"), "{net}");
    let bytes = fs::read(temp("textbook-dropout.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert!(meta.metadata().as_ref().unwrap()["net"].contains(r#""scaling":"textbook""#));
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_file() {
    let (path, _) = saved("atomic.safetensors");
    let tmp = path.with_file_name("atomic.safetensors.tmp");
    assert!(path.is_file() && !tmp.exists());
}

fn error_of(path: &Path) -> String {
    match load::<f32>(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_and_corrupt_files_are_named() {
    let missing = temp("nope.safetensors");
    let e = error_of(&missing);
    assert!(
        e.contains("cannot read checkpoint") && e.contains("nope.safetensors"),
        "{e}"
    );

    let garbage = temp("garbage.safetensors");
    fs::write(&garbage, b"this is not a checkpoint at all").unwrap();
    let e = error_of(&garbage);
    assert!(
        e.contains("garbage.safetensors is not a valid safetensors file"),
        "{e}"
    );

    let (path, _) = saved("truncated.safetensors");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let e = error_of(&path);
    assert!(e.contains("is not a valid safetensors file"), "{e}");
    fs::write(&path, &bytes[..3]).unwrap();
    assert!(error_of(&path).contains("is not a valid safetensors file"));
}

#[test]
fn bad_metadata_says_what_is_expected() {
    let (path, _) = saved("nometa.safetensors");
    rewrite(&path, |_, m| {
        m.remove("net");
    });
    let e = error_of(&path);
    assert!(
        e.contains("has no 'net' in its metadata") && e.contains("backprop train"),
        "{e}"
    );

    let (path, _) = saved("badnet.safetensors");
    rewrite(&path, |_, m| {
        m.insert("net".into(), r#"{"kind":"transformer"}"#.into());
    });
    let e = error_of(&path);
    assert!(
        e.contains("metadata 'net'") && e.contains("transformer"),
        "{e}"
    );

    let (path, _) = saved("version.safetensors");
    rewrite(&path, |_, m| {
        m.insert("format_version".into(), "7".into());
    });
    assert!(error_of(&path).contains("format_version 7; this backprop reads versions 1 to 2"));

    let (path, _) = saved("classes.safetensors");
    rewrite(&path, |_, m| {
        m.insert("classes".into(), "10".into());
    });
    let e = error_of(&path);
    assert!(
        e.contains("classes = 10 but the last layer gives [3] scores"),
        "{e}"
    );

    let (path, _) = saved("shape.safetensors");
    rewrite(&path, |_, m| {
        m.insert("input_shape".into(), "[1, 28, 28]".into());
    });
    let e = error_of(&path);
    assert!(
        e.contains("input_shape [1, 28, 28] differs from the net's input shape [1, 1, 4]"),
        "{e}"
    );
}

#[test]
fn tensors_that_do_not_fit_the_architecture_are_named() {
    let (path, _) = saved("missing.safetensors");
    rewrite(&path, |t, _| t.retain(|t| t.name != "2.bias"));
    let e = error_of(&path);
    assert!(
        e.contains("tensor '2.bias' is missing") && e.contains("[5]"),
        "{e}"
    );

    let (path, _) = saved("wrongshape.safetensors");
    rewrite(&path, |t, _| {
        let w = t.iter_mut().find(|t| t.name == "2.weight").unwrap();
        w.shape = vec![6, 5]; // (in, out) instead of PyTorch's (out, in)
    });
    let e = error_of(&path);
    assert!(
        e.contains(
            "tensor '2.weight' has shape [6, 5], the architecture in the metadata expects [5, 6]"
        ),
        "{e}"
    );

    let (path, _) = saved("extra.safetensors");
    rewrite(&path, |t, _| {
        t.push(Named {
            name: "9.weight".into(),
            shape: vec![1],
            data: vec![0.0],
        })
    });
    let e = error_of(&path);
    assert!(
        e.contains("tensor '9.weight' is not part of the architecture"),
        "{e}"
    );

    // A float64 tensor: written by hand, since `Named` holds f32.
    let (path, net) = saved("dtype.safetensors");
    let mut tensors = state_dict(&net, false);
    tensors.retain(|t| t.name != "0.bias");
    let bias64: Vec<u8> = [0f64; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
    let f32_bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&f32_bytes)
        .map(|(t, b)| {
            (
                t.name.clone(),
                TensorView::new(Dtype::F32, t.shape.clone(), b).unwrap(),
            )
        })
        .collect();
    views.push((
        "0.bias".into(),
        TensorView::new(Dtype::F64, vec![6], &bias64).unwrap(),
    ));
    let meta = metadata(&path, &fs::read(&path).unwrap()).unwrap();
    fs::write(&path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    let e = error_of(&path);
    assert!(e.contains("tensor '0.bias' is F64, expected F32"), "{e}");
}

/// A net whose replicas draw Dropout masks, so that resuming needs every
/// replica's generator, not only the weights and the optimizer.
fn dropout_net() -> Network<f32> {
    let spec = MultiLayerNet::new(2, &[16, 16], 3);
    let built = spec.build::<f32>(3).unwrap();
    let w = |i: usize| built.params()[i].value.clone();
    let layers: Vec<Box<dyn Layer<f32>>> = vec![
        Box::new(Affine::from_params(w(0), w(1))),
        Box::new(Relu::new()),
        Box::new(Dropout::new(0.3, 1)),
        Box::new(Affine::from_params(w(2), w(3))),
        Box::new(Relu::new()),
        Box::new(Dropout::new(0.3, 2)),
        Box::new(Affine::from_params(w(4), w(5))),
    ];
    Network::new(layers, 0.01)
}

fn trainer() -> Trainer<f32> {
    Trainer::new(dropout_net(), optim::by_name("adam", 0.01).unwrap(), 2, 9)
}

fn config() -> TrainConfig {
    TrainConfig {
        dataset: DatasetName::Spiral.into(),
        read: Default::default(),
        validation: None,
        early_stop: None,
        net: crate::train::NetKind::Mlp,
        data_dir: None,
        hidden: vec![16, 16],
        activation: crate::nets::Activation::Relu,
        init: Some(crate::nets::WeightInit::He),
        weight_decay: Some(0.01),
        batchnorm: false,
        dropout: 0.3,
        dropout_scaling: crate::layers::DropoutScaling::Inverted,
        optimizer: "adam".into(),
        lr: 0.01,
        lr_schedule: crate::optim::LrSchedule::Constant,
        batch_size: 30,
        epochs: 6,
        train_size: None,
        seed: 9,
        threads: 2,
        out: PathBuf::from("unused"),
        progress: false,
        resume: false,
        no_sample: false,
    }
}

fn weights(t: &Trainer<f32>) -> Vec<Vec<f32>> {
    t.net()
        .params()
        .iter()
        .map(|p| p.value.data().to_vec())
        .collect()
}

#[test]
fn resumed_trainer_equals_uninterrupted_bit_for_bit() {
    let data = spiral::split(4).train;
    let mut straight = trainer();
    for _ in 0..6 {
        straight.train_epoch(&data, 30, |_, _| {}).unwrap();
    }

    let mut first = trainer();
    for _ in 0..3 {
        first.train_epoch(&data, 30, |_, _| {}).unwrap();
    }
    let path = temp("state.safetensors");
    write_state(&path, &first, &config(), 3, &[]).unwrap();
    let model = first.net().clone();
    drop(first);

    let state = read_state(&path).unwrap();
    let mut resumed = trainer();
    apply_state(&path, &read_file(&path).unwrap(), &state, &mut resumed).unwrap();
    assert_eq!(state.epoch, 3);
    for _ in 3..6 {
        resumed.train_epoch(&data, 30, |_, _| {}).unwrap();
    }
    assert_eq!(weights(&resumed), weights(&straight));

    // The Dropout generators matter: weights, moments and the shuffle alone do
    // not reproduce the run.
    let mut no_rngs = trainer();
    no_rngs.set_net(&model);
    no_rngs.optimizer.state = resumed_optimizer(&path, &state);
    no_rngs.optimizer.rule.set_steps(state.steps);
    no_rngs.rng = state.shuffle_rng.clone();
    for _ in 3..6 {
        no_rngs.train_epoch(&data, 30, |_, _| {}).unwrap();
    }
    assert_ne!(weights(&no_rngs), weights(&straight));
}

/// The optimizer state as `apply_state` restores it, for the control run.
fn resumed_optimizer(path: &Path, state: &TrainState) -> Vec<Vec<Vec<f32>>> {
    let mut t = trainer();
    apply_state(path, &read_file(path).unwrap(), state, &mut t).unwrap();
    t.optimizer.state.clone()
}

#[test]
fn a_state_from_another_setup_is_refused() {
    let mut t = trainer();
    let path = temp("other.safetensors");
    write_state(&path, &t, &config(), 1, &[]).unwrap();
    let state = read_state(&path).unwrap();
    let mut one_thread = Trainer::new(dropout_net(), optim::by_name("adam", 0.01).unwrap(), 1, 9);
    let e = apply_state(&path, &read_file(&path).unwrap(), &state, &mut one_thread)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("saved by one process of 2 thread(s), this run has one process of 1 thread(s)"),
        "{e}"
    );
    let mut sgd = Trainer::new(dropout_net(), optim::by_name("sgd", 0.01).unwrap(), 2, 9);
    let e = apply_state(&path, &read_file(&path).unwrap(), &state, &mut sgd)
        .unwrap_err()
        .to_string();
    assert!(e.contains("it holds adam state, this run uses sgd"), "{e}");
    // Still usable after the refusals.
    apply_state(&path, &read_file(&path).unwrap(), &state, &mut t).unwrap();
}

/// Parses `path` as a model without touching the disk again.
fn bytes_error(path: &Path) -> CheckpointError {
    let bytes = fs::read(path).unwrap();
    match load_bytes::<f32>(path, &bytes) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

#[test]
fn absurd_architectures_are_refused_before_building() {
    // Four billion hidden units would be 64 GB of weights: the file's tensors
    // say otherwise, and that is found before anything is allocated.
    let (path, _) = saved("huge.safetensors");
    rewrite(&path, |_, m| {
        let net = m["net"].replace("\"units\":6", "\"units\":4000000000");
        m.insert("net".into(), net);
    });
    let e = bytes_error(&path);
    assert!(matches!(e, CheckpointError::Shape { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("tensor '0.weight' has shape [6, 4], the architecture in the metadata expects [4000000000, 4]"),
        "{e}"
    );

    let (path, _) = saved("zero.safetensors");
    rewrite(&path, |_, m| {
        let net = m["net"].replace("\"units\":6", "\"units\":0");
        m.insert("net".into(), net);
    });
    let e = bytes_error(&path).to_string();
    assert!(
        e.contains("metadata 'net'") && e.contains("`units` must be at least 1"),
        "{e}"
    );

    // A convnet whose padding would make its buffers enormous.
    let cnn = crate::nets::SimpleConvNet::new([1, 12, 12], 3);
    let net = cnn.build::<f32>(1).unwrap();
    let path = temp("pad.safetensors");
    let mut i = info();
    i.input_shape = [1, 12, 12];
    save(&path, &net, &i).unwrap();
    load::<f32>(&path).unwrap();
    rewrite(&path, |_, m| {
        let net = m["net"].replace("\"filter_size\":5", "\"filter_size\":5,\"pad\":100000");
        m.insert("net".into(), net);
    });
    let e = bytes_error(&path).to_string();
    assert!(e.contains("values per example"), "{e}");

    let path = temp("dim.safetensors");
    save(&path, &net, &i).unwrap();
    rewrite(&path, |_, m| {
        m.insert("input_shape".into(), "[1, 12, 13]".into());
    });
    let e = bytes_error(&path).to_string();
    assert!(
        e.contains("input_shape [1, 12, 13] differs from the net's input shape [1, 12, 12]"),
        "{e}"
    );
}

#[test]
fn nan_weights_and_bare_files_are_refused() {
    let (path, _) = saved("nan.safetensors");
    rewrite(&path, |t, _| {
        let b = t.iter_mut().find(|t| t.name == "2.bias").unwrap();
        b.data[3] = f32::NAN;
    });
    let e = bytes_error(&path);
    assert!(
        matches!(e, CheckpointError::NonFinite { index: 3, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("tensor '2.bias' holds NaN at index 3, expected finite numbers"),
        "{e}"
    );

    // A safetensors file with tensors but no metadata at all (as torch writes).
    let (path, net) = saved("bare.safetensors");
    write_safetensors(&path, &state_dict(&net, false), HashMap::new()).unwrap();
    let e = bytes_error(&path);
    assert!(
        matches!(
            e,
            CheckpointError::MissingMetadata {
                key: "format_version",
                ..
            }
        ),
        "{e:?}"
    );

    let (path, _) = saved("json.safetensors");
    rewrite(&path, |_, m| {
        m.insert("net".into(), "{\"kind\":\"mlp\",\"input_size\":".into());
    });
    let e = bytes_error(&path).to_string();
    assert!(e.contains("metadata 'net'") && e.contains("EOF"), "{e}");

    // Bytes that are no checkpoint at all, of every short length.
    let bytes = fs::read(&path).unwrap();
    for n in 0..64 {
        let e = load_bytes::<f32>(&path, &bytes[..n]).err().unwrap();
        assert!(matches!(e, CheckpointError::Format { .. }), "{n}: {e:?}");
    }
}

#[test]
fn a_training_state_is_checked_before_the_trainer_is_built() {
    let t = trainer();
    let path = temp("threads.safetensors");
    let mut c = config();
    c.threads = 1_000_000;
    write_state(&path, &t, &c, 1, &[]).unwrap();
    let e = read_state(&path).unwrap_err().to_string();
    assert!(
        e.contains("expected 1 to 256 threads")
            && e.contains("found 1000000 thread(s), 1 rank(s) and 2 list(s)"),
        "{e}"
    );

    // The model beside it must be there and whole: the resumed net is built from it.
    let dir = temp("resume-dir");
    fs::create_dir_all(&dir).unwrap();
    let spec = MultiLayerNet::new(2, &[16, 16], 3).dropout(0.3);
    let t = Trainer::new(
        spec.build::<f32>(1).unwrap(),
        optim::by_name("adam", 0.01).unwrap(),
        2,
        9,
    );
    let mut i = info();
    i.input_shape = [1, 1, 2];
    save_training(&dir, &t, &config(), &i, &[]).unwrap();
    read_train_state(&dir).unwrap();
    fs::write(dir.join(MODEL_FILE), b"not a model").unwrap();
    let e = read_train_state(&dir).unwrap_err().to_string();
    assert!(
        e.contains("model.safetensors is not a valid safetensors file"),
        "{e}"
    );
}

/// A layer the library does not know: a checkpoint cannot describe it.
#[derive(Clone)]
struct Doubling(Tensor<f32>);

impl Layer<f32> for Doubling {
    fn name(&self) -> &'static str {
        "Doubling"
    }
    fn forward(&mut self, x: &Tensor<f32>, _train: bool) -> &Tensor<f32> {
        self.0 = x.clone();
        self.0.data_mut().iter_mut().for_each(|v| *v *= 2.0);
        &self.0
    }
    fn backward(&mut self, dout: &Tensor<f32>) -> &Tensor<f32> {
        self.0 = dout.clone();
        self.0.data_mut().iter_mut().for_each(|v| *v *= 2.0);
        &self.0
    }
    fn output(&self) -> &Tensor<f32> {
        &self.0
    }
    fn grad_input(&self) -> &Tensor<f32> {
        &self.0
    }
    fn box_clone(&self) -> Box<dyn Layer<f32>> {
        Box::new(self.clone())
    }
}

#[test]
fn a_net_built_in_code_saves_and_loads_unless_a_layer_is_the_users_own() {
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
    let affine = |i, o, rng: &mut _| {
        Box::new(Affine::from_params(
            Tensor::randn(&[i, o], 0.5, rng),
            Tensor::zeros(&[o]),
        ))
    };
    let layers: Vec<Box<dyn Layer<f32>>> = vec![
        affine(4, 6, &mut rng),
        Box::new(Relu::new()),
        Box::new(Dropout::new(0.2, 1)),
        affine(6, 3, &mut rng),
    ];
    let mut net = Network::new(layers.clone(), 0.01);
    assert!(net.spec.is_none());
    let path = temp("in-code.safetensors");
    save(&path, &net, &info()).unwrap();
    let (mut back, _) = load::<f32>(&path).unwrap();
    let names: Vec<_> = back.layers.iter().map(|l| l.name()).collect();
    assert_eq!(names, ["Affine", "Relu", "Dropout", "Affine"]);
    assert_eq!(back.weight_decay_lambda, 0.01);
    let x = Tensor::from_vec(&[1, 4], vec![0.5, -1.0, 2.0, 0.25]).unwrap();
    assert_eq!(
        back.predict(&x, false).unwrap().data(),
        net.predict(&x, false).unwrap().data()
    );

    let mut with_own = layers;
    with_own.insert(2, Box::new(Doubling(Tensor::default())));
    let e = save(
        &temp("own.safetensors"),
        &Network::new(with_own, 0.0),
        &info(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("layer 3 (Doubling) is not one of the library's layer types"),
        "{e}"
    );
}
