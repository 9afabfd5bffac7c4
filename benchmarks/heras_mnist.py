"""heras acceptance on real MNIST: train, prepare, encrypt, infer, decrypt, report.

Models: DNN-30 (784 -> Dense 30 -> Square -> Dense 10) and a CryptoNets-style CNN
(Conv2D 5x5 stride 2 -> Square -> Dense 100 -> Square -> Dense 10). For each scheme: plaintext
accuracy, discretised accuracy (BFV), encrypted accuracy on N test images, exact equality with
the discretised model (BFV) or argmax agreement with the float model (CKKS), latency of the
server forward pass per batch, throughput, and the parameters chosen at 128-bit security.

Usage: python benchmarks/heras_mnist.py [--model dnn30|cnn] [--scheme bfv|ckks|both]
       [--samples 4096] [--epochs 15]   (needs mnist.npz via SEALION_DATA)
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import primitives as P  # noqa: E402,F401  (TenSEAL before TensorFlow)
import keras  # noqa: E402

import heras  # noqa: E402
from benchmarks._common import DEFAULT_OUTPUT, machine, markdown_table, peak_memory_mb, write_results  # noqa: E402
from heras.layers import Conv2D, Dense, Flatten, Input, Square  # noqa: E402
from heras.models import Sequential  # noqa: E402


def build(name):
    small = keras.initializers.RandomNormal(stddev=0.02)
    if name == "dnn30":
        return Sequential([Input((784,)), Dense(30, kernel_initializer=small), Square(), Dense(10)]), (784,)
    return Sequential([Input((28, 28, 1)), Conv2D(5, 5, strides=2, padding="same", kernel_initializer=small),
                       Square(), Flatten(), Dense(100, kernel_initializer=small), Square(), Dense(10)]), (28, 28, 1)


def train(name, epochs):
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = heras.datasets.mnist.load_data()
    model, shape = build(name)
    x_train = x_train.reshape((-1,) + shape).astype("float32") / 255
    x_test = x_test.reshape((-1,) + shape).astype("float32") / 255
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * (len(x_train) // 128))
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=128, verbose=2)
    return model, x_train, x_test, y_test


def run(model_name, scheme, model, x_train, x_test, y_test, samples):
    plain_accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    plan = model.prepare_encryption(scheme, calibration=x_train[:2000], batch_size=samples)
    row = {"model": model_name, "scheme": scheme, "plaintext_accuracy": plain_accuracy,
           "n": plan.parameters.poly_modulus_degree, "plain_moduli": len(plan.parameters.plain_moduli),
           "depth": plan.depth}
    if scheme == "bfv":  # on the evaluated samples: the oracle needs Python ints past 2^62 (slow)
        discretised = np.asarray(model.predict_discretized(x_test[:samples]), dtype=np.float64)
        row["discretized_accuracy"] = float(np.mean(discretised.argmax(axis=1) == y_test[:samples]))
    result = model.evaluate(x_test[:samples], y_test[:samples], encrypted=True)
    row.update({"encrypted_accuracy": result["accuracy"], "samples": result["samples"],
                "agreement": result["agreement"], "exact": result["exact"], "latency_s": result["latency_s"],
                "throughput_per_hour": result["throughput_per_hour"], "encrypt_s": result["encrypt_s"],
                "decrypt_s": result["decrypt_s"], "parameters": result["parameters"],
                "peak_memory_mb": peak_memory_mb()})
    print(row, flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["dnn30", "cnn"], default="dnn30")
    parser.add_argument("--scheme", choices=["bfv", "ckks", "both"], default="both")
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = parser.parse_args(argv)
    model, x_train, x_test, y_test = train(args.model, args.epochs)
    schemes = ["bfv", "ckks"] if args.scheme == "both" else [args.scheme]
    rows = [run(args.model, s, model, x_train, x_test, y_test, args.samples) for s in schemes]
    columns = [("model", "model"), ("scheme", "scheme"), ("n", "n"), ("plain_moduli", "t count"),
               ("plaintext_accuracy", "plain acc"), ("discretized_accuracy", "discretised acc"),
               ("encrypted_accuracy", "encrypted acc"), ("samples", "samples"), ("agreement", "agreement"),
               ("exact", "exact"), ("latency_s", "latency s"), ("throughput_per_hour", "throughput /h"),
               ("encrypt_s", "encrypt s"), ("peak_memory_mb", "peak MiB")]
    markdown = markdown_table(rows, columns)
    paths = write_results(args.output, f"heras_mnist_{args.model}", {"machine": machine(), "rows": rows}, markdown)
    print(markdown)
    print("wrote", *paths)


if __name__ == "__main__":
    main()
