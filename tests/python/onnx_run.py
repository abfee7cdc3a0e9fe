"""Checks a backprop ONNX export with the ONNX project's own checker and runs
it in onnxruntime on the first N MNIST test images (pixel / 255, as backprop
feeds them), once as one batch and the first three again one by one.

usage: onnx_run.py MODEL.onnx MNIST_DIR N  ->  JSON {"predictions": [...], "probabilities": [[...]], ...}
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

from mnist_idx import images


def shape(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def main():
    path, mnist_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_shape = json.loads(meta["input_shape"])
    x = images(mnist_dir, "t10k")[:n].reshape(n, *input_shape)
    logits, probabilities = session.run(["logits", "probabilities"], {"input": x})
    # The batch axis is dynamic: a batch of one gives that example's row.
    one_by_one = max(
        float(np.abs(session.run(["probabilities"], {"input": x[i : i + 1]})[0][0] - probabilities[i]).max())
        for i in range(3)
    )
    print(json.dumps({
        "predictions": probabilities.argmax(axis=1).tolist(),
        "probabilities": probabilities.astype(np.float64).tolist(),
        "logits_shape": list(logits.shape),
        "one_by_one_max_difference": one_by_one,
        "metadata": meta,
        "opset": [[o.domain, o.version] for o in model.opset_import],
        "inputs": [[v.name, shape(v)] for v in model.graph.input],
        "outputs": [[v.name, shape(v)] for v in model.graph.output],
        "initializer_types": sorted({onnx.TensorProto.DataType.Name(t.data_type) for t in model.graph.initializer}),
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
    }))


if __name__ == "__main__":
    main()
