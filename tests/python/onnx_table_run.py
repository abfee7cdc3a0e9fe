"""Checks a backprop ONNX export of a table model with the ONNX project's own
checker and runs it in onnxruntime on the raw rows of a CSV file: the columns
the metadata's `numeric_columns` name as float64 `numeric`, those its
`categorical_columns` name as strings `categorical`, as a user would.

usage: onnx_table_run.py MODEL.onnx ROWS.csv  ->  JSON {"predictions": [...], "probabilities": [[...]], ...}
"""
import csv
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def shape(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def main():
    path, rows_path = sys.argv[1], sys.argv[2]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    with open(rows_path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    feeds = {}
    numeric = json.loads(meta["numeric_columns"])
    if numeric:
        feeds["numeric"] = np.array([[float(r[c]) for c in numeric] for r in rows], np.float64)
    categorical = json.loads(meta["categorical_columns"])
    if categorical:
        feeds["categorical"] = np.array([[r[c].strip() for c in categorical] for r in rows], object)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(["logits", "probabilities"], feeds)
    print(json.dumps({
        "predictions": probabilities.argmax(axis=1).tolist(),
        "probabilities": probabilities.astype(np.float64).tolist(),
        "logits_shape": list(logits.shape),
        "metadata": meta,
        "opset": sorted([o.domain, o.version] for o in model.opset_import),
        "inputs": [[v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type), shape(v)] for v in model.graph.input],
        "outputs": [[v.name, shape(v)] for v in model.graph.output],
    }))


if __name__ == "__main__":
    main()
