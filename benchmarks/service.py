"""`sealion serve` under load: N concurrent clients on loopback sending DNN-30 batches.

One run measures, on the same prepared model and the same encrypted queries:

1. **direct**: ``Server(folder).run(public_context_bytes, query)`` in this process, the
   library without HTTP (median of ``--direct-repeats``);
2. **one client**: a single RemoteServer sending ``--requests`` queries one after another to a
   ``sealion serve`` subprocess: latency per query, and its overhead against direct;
3. **N clients**: ``--clients`` threads, each with its own connection, sending ``--requests``
   queries at once: throughput (queries/s, samples/s), p50/p95 latency, queue waits (503
   retries), and how fast ``/v1/health`` answers meanwhile.

The clients share one key set and one encrypted batch: a DNN-30 query is ~600 MB (784
features x 2 CRT primes of ciphertexts), and the service holds one body per admitted query
already; the service's work per query is the same as with separate keys.

Every answer is decrypted and checked against the discretised model bit for bit (BFV). The
model is DNN-30 (``configs/mnist_dnn30.yaml``, trained ``--epochs``) or, with ``--quick``, the
bundled digits quick-start model. Writes ``service.json`` and ``service.md``.

    python benchmarks/service.py --clients 3 --requests 2          # DNN-30, needs $SEALION_DATA
    python benchmarks/service.py --quick                           # digits, seconds
"""

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import DEFAULT_OUTPUT, machine, machine_line, markdown_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def prepare(config_path, epochs, batch):
    """Train and prepare the configured model; return (model, x test batch, config name)."""
    import heras  # noqa: F401 - registers the layers
    from experiments.config import load_config
    from experiments.runner import prepare as prepare_run
    config = load_config(config_path, [f"training.epochs={epochs}", f"evaluation.samples={batch}",
                                       "training.verbose=0"])
    model, plan, data = prepare_run(config, log=lambda line: print(line, file=sys.stderr), verbose=0)
    x = data[1][0][:batch]
    return model, x, config.name


def start_service(folder, clients, log_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "experiments.cli", "serve", str(folder), "--port", str(port),
               "--workers", "1", "--max-queue", str(clients), "--max-upload-mb", "8192"]
    log = open(log_path, "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    import httpx
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited: see {log_path}")
        try:
            if httpx.get(url + "/v1/health", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the service did not start in 600 s: see {log_path}")


def client_session(url, client, query, expected, requests, results, index, barrier, deadline):
    """One client connection: ``requests`` timed queries, each answer checked bit for bit."""
    from heras.deployment import RemoteServer
    with RemoteServer(url, max_wait=2.0) as remote:
        remote.upload_context(client.public_context())   # known after the first session: no upload
        latencies, exact = [], True
        if barrier is not None:
            barrier.wait()
        for _ in range(requests):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            answer = remote.run(client.public_context(), query)
            latencies.append(time.perf_counter() - start)
            exact &= bool((client.decrypt_raw(answer) == expected).all())
            del answer
        results[index] = {"latencies": latencies, "exact": exact, "busy_retries": remote.busy_retries,
                          "uploads": remote.uploads}


def poll_health(url, threads, every=0.5):
    """GET /v1/health every ``every`` s until ``threads`` end; return the answer times (s)."""
    import httpx
    times = []
    while any(thread.is_alive() for thread in threads):
        start = time.perf_counter()
        httpx.get(url + "/v1/health", timeout=60).raise_for_status()
        times.append(time.perf_counter() - start)
        time.sleep(every)
    for thread in threads:
        thread.join()
    return times


def percentile(values, q):
    return float(np.percentile(values, q)) if values else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "mnist_dnn30.yaml"))
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (timing does not depend on them)")
    parser.add_argument("--batch", type=int, default=256, help="samples per query (one ciphertext group up to n)")
    parser.add_argument("--clients", type=int, default=3, help="concurrent clients (1..8)")
    parser.add_argument("--requests", type=int, default=2, help="queries per client in each phase (1..20)")
    parser.add_argument("--direct-repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=900, help="stop sending new queries after this")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--quick", action="store_true", help="the digits quick-start model, 2 clients x 1 query")
    args = parser.parse_args(argv)
    if args.quick:
        args.config, args.epochs, args.clients, args.requests, args.direct_repeats = (
            str(ROOT / "configs" / "quickstart.yaml"), 1, 2, 1, 1)
    if not 1 <= args.clients <= 8 or not 1 <= args.requests <= 20:
        parser.error("--clients must be 1..8 and --requests 1..20")

    from heras.deployment import Client, Server, save_prepared
    model, x, name = prepare(args.config, args.epochs, args.batch)
    folder = Path(tempfile.mkdtemp(prefix="sealion-service-bench-")) / "deploy"
    save_prepared(model, folder)

    server, client = Server(folder), Client.from_folder(folder)
    context, query = client.public_context(), client.encrypt(x)
    direct = []
    for _ in range(args.direct_repeats):
        start = time.perf_counter()
        answer = server.run(context, query)
        direct.append(time.perf_counter() - start)
    expected = model.predict_discretized(x)
    assert (client.decrypt_raw(answer) == expected).all(), "direct run not exact"
    direct_s = statistics.median(direct)
    del server, answer

    process, url = start_service(folder, args.clients, folder.parent / "server.log")
    try:
        deadline = time.monotonic() + args.max_seconds
        single = {}
        client_session(url, client, query, expected, args.requests, single, 0, None, deadline)
        results, barrier = {}, threading.Barrier(args.clients + 1)
        threads = [threading.Thread(target=client_session,
                                    args=(url, client, query, expected, args.requests, results, i, barrier,
                                          deadline))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        health = poll_health(url, threads)      # does the service answer while batches compute?
        wall = time.perf_counter() - start
    finally:
        process.terminate()
        process.wait(120)

    one = single[0]["latencies"]
    many = [latency for r in results.values() for latency in r["latencies"]]
    exact = single[0]["exact"] and all(r["exact"] for r in results.values()) and len(results) == args.clients
    row = {"model": name, "n": model.encryption_plan.parameters.poly_modulus_degree,
           "primes": len(model.encryption_plan.parameters.plain_moduli), "batch": len(x),
           "query_mb": len(query) / 1e6, "context_mb": len(context) / 1e6,
           "direct_s": direct_s, "one_client_median_s": statistics.median(one),
           "one_client_overhead_s": statistics.median(one) - direct_s,
           "one_client_ratio": statistics.median(one) / direct_s,
           "clients": args.clients, "queries": len(many), "wall_s": wall,
           "queries_per_s": len(many) / wall, "samples_per_s": len(many) * len(x) / wall,
           "per_query_vs_direct": wall / len(many) / direct_s,
           "p50_s": percentile(many, 50), "p95_s": percentile(many, 95),
           "busy_retries": sum(r["busy_retries"] for r in results.values()),
           "health_p50_ms": 1000 * percentile(health, 50), "health_max_ms": 1000 * max(health), "exact": exact}
    columns = [("model", "model"), ("n", "n"), ("primes", "CRT primes"), ("batch", "batch"),
               ("query_mb", "query (MB)"), ("direct_s", "Server.run direct (s)"),
               ("one_client_median_s", "1 client, median (s)"), ("one_client_ratio", "1 client / direct"),
               ("clients", "clients"), ("queries", "queries"), ("queries_per_s", "queries/s"),
               ("samples_per_s", "samples/s"), ("per_query_vs_direct", "wall per query / direct"),
               ("p50_s", "p50 (s)"), ("p95_s", "p95 (s)"), ("busy_retries", "503 retries"), ("health_max_ms", "health while computing, max (ms)"),
               ("exact", "exact")]
    facts = machine()
    table = markdown_table([row], columns)
    markdown = "\n\n".join(["# sealion serve under load", table, machine_line(facts)])
    write_results(args.output, "service", {"results": row, "direct_s": direct, "one_client_s": one,
                                           "many_clients_s": many, "health_s": health, "args": vars(args), "machine": facts}, markdown)
    print(table)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
