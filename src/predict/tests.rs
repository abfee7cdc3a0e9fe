//! The classifier against the net it loaded: the same answers from a file,
//! from bytes, from many threads at once, for pixels and for table rows.

use super::*;
use crate::data::testutil::TempDir;
use crate::data::{self, DataSource, DatasetName, LoadOptions};
use crate::nets::MultiLayerNet;

#[test]
fn softmax_is_stable_and_sums_to_one() {
    let p = softmax(&[1000.0, 1000.0, -1000.0]);
    assert!((p[0] - 0.5).abs() < 1e-12 && p[2] < 1e-300);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn ties_keep_the_lower_class_first() {
    assert_eq!(
        top(&[0.25, 0.5, 0.25], 3),
        vec![(1, 0.5), (0, 0.25), (2, 0.25)]
    );
    assert_eq!(argmax(&[0.25, 0.5, 0.5]), 1);
}

/// A small MNIST-shaped model, saved into `dir`.
fn digit_model(dir: &TempDir) -> std::path::PathBuf {
    let net = MultiLayerNet::new(784, &[16], 10).build::<f32>(3).unwrap();
    let info = ModelInfo::builtin(DatasetName::Mnist, 10, [1, 28, 28], 3, 1);
    let path = dir.path().join("model.safetensors");
    checkpoint::save(&path, &net, &info).unwrap();
    path
}

/// The first `n` test images of the built-in MNIST sample (round again
/// past its end), as pixels.
fn sample_pixels(n: usize) -> Vec<f32> {
    let test = data::load(DatasetName::MnistSample, &LoadOptions::default())
        .unwrap()
        .test;
    let rows: Vec<usize> = (0..n).map(|i| i % test.len()).collect();
    let mut x = vec![0.0; n * test.dim()];
    test.gather(&rows, &mut x, &mut vec![0; n]);
    x
}

#[test]
fn open_and_from_bytes_give_the_answers_of_the_net() {
    let dir = TempDir::new("classifier-open");
    let path = digit_model(&dir);
    let opened = Classifier::open(&path).unwrap();
    let embedded = Classifier::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let x = sample_pixels(120);

    let (mut net, _) = checkpoint::load::<f32>(&path).unwrap();
    let scores = net
        .predict(
            &Tensor::from_vec(&[120, 1, 28, 28], x.clone()).unwrap(),
            false,
        )
        .unwrap();
    let want: Vec<usize> = scores.argmax_rows().collect();

    assert_eq!(opened.predict_classes(&x).unwrap(), want);
    assert_eq!(embedded.predict_classes(&x).unwrap(), want);
    let batch = opened.predict_batch(&x).unwrap();
    assert_eq!(batch, embedded.predict_batch(&x).unwrap());
    for (i, p) in batch.iter().enumerate() {
        assert_eq!(p.class, want[i]);
        assert_eq!(p.name, want[i].to_string());
        let one = opened.predict(&x[i * 784..(i + 1) * 784]).unwrap();
        assert_eq!(one.class, p.class);
        assert!((one.probability() - p.probability()).abs() < 1e-5);
    }
}

/// The bits of `scores`' softmax, as the classifier answers in f32.
fn softmax_bits(scores: &[f32]) -> Vec<u32> {
    softmax(scores)
        .iter()
        .map(|&p| (p as f32).to_bits())
        .collect()
}

/// Every example's probabilities from `classifier`, in batches of 1, 13 and
/// [`Classifier::slice_rows`] (the slices it runs), against `predict(x, false)` of `net`
/// on the same batches: bit for bit.
fn answers_as_the_net_predicts(classifier: &Classifier, net: &mut Network<f32>, x: &[f32]) {
    let values = classifier.values();
    let mut shape = vec![0];
    shape.extend(classifier.info().input_shape);
    for n in [1, 13, classifier.slice_rows()] {
        let batch = &x[..n * values];
        shape[0] = n;
        let scores = net
            .predict(&Tensor::from_vec(&shape, batch.to_vec()).unwrap(), false)
            .unwrap();
        let want: Vec<Vec<u32>> = scores
            .data()
            .chunks(scores.cols())
            .map(softmax_bits)
            .collect();
        let got: Vec<Vec<u32>> = classifier
            .predict_batch(batch)
            .unwrap()
            .iter()
            .map(|p| p.probabilities.iter().map(|v| v.to_bits()).collect())
            .collect();
        assert_eq!(got, want, "{n} examples");
    }
}

#[test]
fn the_classifier_answers_as_network_predict_bit_for_bit() {
    let x = sample_pixels(1000);
    let info = ModelInfo::builtin(DatasetName::Mnist, 10, [1, 28, 28], 3, 1);
    let nets = [
        MultiLayerNet::new(784, &[16], 10).build::<f32>(3).unwrap(),
        MultiLayerNet::new(784, &[16, 16], 10)
            .batchnorm(true)
            .dropout(0.2)
            .build::<f32>(4)
            .unwrap(),
        crate::nets::SimpleConvNet::new([1, 28, 28], 10)
            .build::<f32>(5)
            .unwrap(),
    ];
    for mut net in nets {
        let classifier = Classifier::new(net.clone(), info.clone(), "net".as_ref()).unwrap();
        answers_as_the_net_predicts(&classifier, &mut net, &x);
    }
}

/// A layer type of the user's own, without `infer`: `y = 2x`.
#[derive(Clone, Default)]
struct Doubling(Tensor<f32>);

impl crate::layers::Layer<f32> for Doubling {
    fn name(&self) -> &'static str {
        "Doubling"
    }
    fn forward(&mut self, x: &Tensor<f32>, _train: bool) -> &Tensor<f32> {
        self.0.copy_from(x);
        self.0.data_mut().iter_mut().for_each(|v| *v *= 2.0);
        &self.0
    }
    fn backward(&mut self, _dout: &Tensor<f32>) -> &Tensor<f32> {
        unimplemented!("a classifier never runs backward")
    }
    fn output(&self) -> &Tensor<f32> {
        &self.0
    }
    fn grad_input(&self) -> &Tensor<f32> {
        &self.0
    }
    fn box_clone(&self) -> Box<dyn crate::layers::Layer<f32>> {
        Box::new(self.clone())
    }
}

#[test]
fn a_net_with_a_layer_of_the_users_own_is_run_as_a_copy_per_thread() {
    let mut layers = MultiLayerNet::new(784, &[16], 10)
        .build::<f32>(6)
        .unwrap()
        .layers;
    layers.insert(1, Box::new(Doubling::default()));
    let mut net = Network::new(layers, 0.0);
    let x = Tensor::from_vec(&[1, 784], sample_pixels(1)).unwrap();
    assert!(!net.has_infer());
    let e = net.infer(&x, &mut NetScratch::new()).unwrap_err();
    assert_eq!(
        e,
        InputError::NoInfer {
            index: 2,
            layer: "Doubling"
        }
    );
    assert!(e.to_string().contains("implement it"), "{e}");
    let info = ModelInfo::builtin(DatasetName::Mnist, 10, [1, 28, 28], 6, 1);
    let classifier = Classifier::new(net.clone(), info, "own".as_ref()).unwrap();
    answers_as_the_net_predicts(&classifier, &mut net, &sample_pixels(1000));
}

#[test]
fn eight_threads_at_once_get_the_sequential_answers_bit_for_bit() {
    let dir = TempDir::new("classifier-threads");
    let classifier = Classifier::open(digit_model(&dir)).unwrap();
    let x = sample_pixels(64);
    let examples: Vec<&[f32]> = x.chunks_exact(784).collect();
    let bits =
        |p: Prediction<'_>| -> Vec<u32> { p.probabilities.iter().map(|v| v.to_bits()).collect() };
    let sequential: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| bits(classifier.predict(e).unwrap()))
        .collect();
    let batch = classifier.predict_classes(&x).unwrap();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (classifier, examples, batch, x) = (&classifier, &examples, &batch, &x);
                s.spawn(move || {
                    // Each thread starts at its own example, so that the
                    // calls overlap on different inputs.
                    let mut got = vec![Vec::new(); examples.len()];
                    for k in 0..examples.len() {
                        let i = (k + 8 * t) % examples.len();
                        got[i] = bits(classifier.predict(examples[i]).unwrap());
                    }
                    assert_eq!(&classifier.predict_classes(x).unwrap(), batch);
                    got
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), sequential);
        }
    });
}

#[test]
fn input_that_does_not_fit_is_the_nets_error() {
    let dir = TempDir::new("classifier-input");
    let classifier = Classifier::open(digit_model(&dir)).unwrap();
    let e = classifier.predict(&[0.5; 10]).unwrap_err();
    assert!(
        e.to_string().contains("expects 784 values per example"),
        "{e}"
    );
    // Two examples are not one.
    assert!(classifier.predict(&[0.5; 2 * 784]).is_err());
    assert!(classifier.predict_batch(&[0.5; 784 + 1]).is_err());
    assert_eq!(
        classifier.predict_classes(&[]).unwrap_err(),
        InputError::EmptyBatch
    );
    assert!(matches!(
        classifier.predict_row(&["1", "2"]),
        Err(RowError::NotRows(_))
    ));
    // And it still answers.
    assert_eq!(classifier.predict_batch(&[0.5; 3 * 784]).unwrap().len(), 3);
}

#[test]
fn a_file_that_is_not_a_model_is_the_checkpoint_loaders_error() {
    let dir = TempDir::new("classifier-not-a-model");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are notes, not a model").unwrap();
    let e = Classifier::open(&path).err().unwrap();
    assert!(matches!(e, CheckpointError::Format { .. }), "{e:?}");
    assert!(e.to_string().contains("notes.txt"), "{e}");
    let e = Classifier::from_bytes(b"not a model").err().unwrap();
    assert!(matches!(e, CheckpointError::Format { .. }), "{e:?}");
    let e = Classifier::open(dir.path().join("missing.safetensors"))
        .err()
        .unwrap();
    assert!(matches!(e, CheckpointError::Read { .. }), "{e:?}");
}

#[test]
fn a_table_model_takes_raw_rows_encoded_as_in_training() {
    let dir = TempDir::new("classifier-table");
    let csv = dir.path().join("fruit.csv");
    let mut text = String::from("weight,colour,kind\n");
    for i in 0..40 {
        let (colour, kind) = if i % 2 == 0 {
            ("red", "apple")
        } else {
            ("yellow", "banana")
        };
        text += &format!("{},{colour},{kind}\n", 100 + i * 3);
    }
    std::fs::write(&csv, text).unwrap();
    let source = DataSource::Csv(csv.clone());
    let split = data::load(source.clone(), &LoadOptions::default()).unwrap();
    let net = MultiLayerNet::new(split.train.dim(), &[8], split.train.classes())
        .build::<f32>(1)
        .unwrap();
    let info = ModelInfo::of(source, &split.train, 1, 0.2, 1);
    let path = dir.path().join("model.safetensors");
    checkpoint::save(&path, &net, &info).unwrap();

    let classifier = Classifier::open(&path).unwrap();
    let InputKind::Table(encoding) = &classifier.info().input else {
        panic!("a table model: {:?}", classifier.info().input);
    };
    let mut x = Vec::new();
    encoding.encode(&["130", "yellow"], &mut x).unwrap();
    let p = classifier.predict_row(&["130", "yellow"]).unwrap();
    assert_eq!(p, classifier.predict(&x).unwrap());
    assert_eq!(p.name, classifier.class_names()[p.class]);
    assert_eq!(classifier.class_names().len(), 2);
    let e = classifier.predict_row(&["heavy", "red"]).unwrap_err();
    assert!(e.to_string().contains("heavy"), "{e}");
    assert!(classifier.predict_row(&["130"]).is_err());
}
