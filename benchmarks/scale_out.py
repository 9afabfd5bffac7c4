"""Scale-out: encrypted batch inference as Ray tasks, against the in-process run.

For each model (a config from configs/), the script trains it briefly, prepares it for BFV,
encrypts G full ciphertext groups (G x n test images, repeated as needed) and times the
server's forward pass three ways on the same ciphertexts:

- in-process: the local executor (this machine's process pool: CRT primes and ciphertext
  groups in forked processes, ``SEALION_WORKERS`` unset, so one per core);
- Ray with 1 and with 2 worker CPUs (a local Ray instance started for each, no dashboard):
  one task per (ciphertext group, CRT prime).

Reported per run: the median forward time over ``--repeats`` passes after one cold pass (the
cold pass includes starting the workers and loading the model in them), throughput in samples
per hour (full groups / median time), its ratio to the in-process run, exact equality with the
in-process integers, the bytes each task moves (unit input and output, the model and public
context shipped once), and the workers' peak resident memory.

Usage:
    python benchmarks/scale_out.py                           # DNN-30 x 4 groups, CNN-16 x 1 group
    python benchmarks/scale_out.py --models dnn30 --repeats 3
    python benchmarks/scale_out.py --cnn-config mnist_cnn16_fast   # CNN-16 with 3 CRT primes
    python benchmarks/scale_out.py --quick                   # digits model, 2 groups, seconds
(needs mnist.npz via $SEALION_DATA except --quick; Ray via pip install -e ".[ray]")
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import primitives as P  # noqa: E402  (TenSEAL before TensorFlow)
from benchmarks._common import DEFAULT_OUTPUT, machine, machine_line, markdown_table, write_results  # noqa: E402
from experiments.config import load_config  # noqa: E402
from experiments.runner import prepare  # noqa: E402
from heras.execution.ray_executor import RayExecutor, import_ray  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
COLUMNS = [("model", "model"), ("n", "n"), ("primes", "CRT primes"), ("groups", "groups"),
           ("samples", "samples"), ("executor", "executor"), ("workers", "workers"), ("cold_s", "cold s"),
           ("median_s", "median s"), ("throughput_per_hour", "samples/h"), ("ratio", "vs in-process"),
           ("exact", "exact"), ("unit_input_mb", "unit in MB"), ("unit_output_mb", "unit out MB"),
           ("context_mb", "context MB"), ("model_kb", "model KB"), ("worker_peak_rss_mb", "worker peak MB")]


def prepared(config_name, epochs, log):
    """(model, plan, test images) for configs/<config_name>.yaml trained ``epochs`` epochs."""
    config = load_config(CONFIGS / f"{config_name}.yaml", [f"training.epochs={epochs}", "training.verbose=0"])
    model, plan, data = prepare(config, log=log, verbose=0)
    return model, plan, data[1][0], config.model.name


def timed_passes(forward, repeats):
    """(cold seconds, median seconds of ``repeats`` more passes, last output)."""
    start = time.perf_counter()
    out = forward()
    cold = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = forward()
        times.append(time.perf_counter() - start)
    return cold, statistics.median(times), out


def bench_model(config_name, groups, workers_list, repeats, epochs, log=print):
    model, plan, x_test, label = prepared(config_name, epochs, log)
    slots = plan.parameters.slot_count
    samples = groups * slots
    x = np.resize(x_test, (samples,) + x_test.shape[1:])   # full groups: test images repeated
    client = P.Context(plan.parameters)
    query = model.encrypt_inputs(client.public(), x)
    base = {"model": label, "config": config_name, "n": plan.parameters.poly_modulus_degree,
            "primes": len(plan.parameters.plain_moduli), "groups": query.groups, "samples": samples,
            "units": query.groups * len(plan.parameters.plain_moduli), "repeats": repeats}
    log(f"{label}: {samples:,} samples in {query.groups} group(s) x {base['primes']} CRT prime(s); in-process")
    cold, median, local = timed_passes(lambda: model.encrypted_forward(query), repeats)
    expected = P.decrypt(client, local)
    del local
    rows = [{**base, "executor": "in-process", "workers": "2 cores", "cold_s": cold, "median_s": median,
             "throughput_per_hour": samples / median * 3600, "ratio": 1.0, "exact": True}]
    in_process = median
    ray = import_ray()
    for workers in workers_list:
        log(f"{label}: Ray with {workers} worker CPU(s)")
        if ray.is_initialized():
            ray.shutdown()
        with RayExecutor(num_cpus=workers) as executor:
            cold, median, out = timed_passes(lambda: model.encrypted_forward(query, executor=executor), repeats)
            run = executor.last_run
        exact = bool(np.array_equal(P.decrypt(client, out).astype(object), expected.astype(object)))
        rows.append({**base, "executor": "ray", "workers": workers, "cold_s": cold, "median_s": median,
                     "throughput_per_hour": samples / median * 3600, "ratio": in_process / median,
                     "exact": exact, "unit_input_mb": run["unit_input_bytes"] / 1e6,
                     "unit_output_mb": run["unit_output_bytes"] / 1e6, "context_mb": run["context_bytes"] / 1e6,
                     "model_kb": run["model_bytes"] / 1e3, "worker_peak_rss_mb": run["worker_peak_rss_mb"],
                     "unit_seconds_median": statistics.median(run["unit_seconds"]),
                     "worker_pids": len(run["worker_pids"])})
        log(str(rows[-1]))
        if not exact:
            raise SystemExit(f"{label}: the Ray run's integers differ from the in-process run's")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--models", nargs="+", choices=["dnn30", "cnn16"], default=["dnn30", "cnn16"])
    parser.add_argument("--dnn-groups", type=int, default=4, help="ciphertext groups of DNN-30 (default 4)")
    parser.add_argument("--cnn-groups", type=int, default=1, help="ciphertext groups of CNN-16 (default 1)")
    parser.add_argument("--cnn-config", default="mnist_cnn16", choices=["mnist_cnn16", "mnist_cnn16_fast"],
                        help="mnist_cnn16 (8-bit, 5 CRT primes) or mnist_cnn16_fast (3 primes, lighter)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker CPUs to try")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes after the cold one")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (timings do not depend on them)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--quick", action="store_true", help="digits model (quickstart), 2 groups, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        plans = [("quickstart", 2)]
        args.repeats, args.epochs = 1, 2
    else:
        plans = [{"dnn30": ("mnist_dnn30", args.dnn_groups), "cnn16": (args.cnn_config, args.cnn_groups)}[m]
                 for m in args.models]
    facts = machine()
    rows = []
    for config_name, groups in plans:
        rows += bench_model(config_name, groups, args.workers, args.repeats, args.epochs)
    import_ray().shutdown()
    markdown = "\n\n".join([machine_line(facts), markdown_table(rows, COLUMNS)])
    name = "scale_out_quick" if args.quick else "scale_out"
    paths = write_results(args.output, name, {"machine": facts, "arguments": vars(args), "rows": rows}, markdown)
    print(markdown)
    print("wrote", *paths)
    return rows


if __name__ == "__main__":
    main()
