"""``sealion serve`` (run the service) and ``sealion query`` (one query from files, for shells).

    sealion serve DEPLOY_DIR [--host 127.0.0.1] [--port 8000] [--workers 1] [--max-queue 8]
                  [--max-upload-mb 2048] [--contexts DIR]
    sealion query URL --input X.npy --output Y.npy [--keys client.keys] [--raw] [--overwrite]

Registered through ``primitives.cli``'s extension mechanism (``experiments.cli.main``). This
module imports neither FastAPI nor heras until a command runs, so ``sealion`` starts fast.
"""

import logging
import sys
import time
from pathlib import Path


def add_service_commands(commands):
    """Register ``serve`` and ``query``."""
    serve = commands.add_parser(
        "serve", help="serve a prepared model's encrypted inference over HTTP",
        description="Answer encrypted queries for the prepared model in DEPLOY_DIR over HTTP "
                    "(OpenAPI page at /docs). Needs the serve extra: pip install 'sealion[serve]'.")
    serve.add_argument("folder", metavar="DEPLOY_DIR", help="a folder written by heras.deployment.save_prepared")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1,
                       help="forward passes computed at once (default 1: each already uses every core)")
    serve.add_argument("--max-queue", type=int, default=8,
                       help="queries that may wait for a worker; one more is answered 503 (default 8)")
    serve.add_argument("--max-upload-mb", type=float, default=2048,
                       help="largest request body in MiB, context or query; 413 past it (default 2048)")
    serve.add_argument("--contexts", metavar="DIR",
                       help="where uploaded public contexts are kept (default DEPLOY_DIR/contexts)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(run=run_serve)

    query = commands.add_parser(
        "query", help="encrypt a batch, have a sealion service compute on it, decrypt the answer",
        description="Fetch the model's client spec from URL, load (or make and keep) the client's keys, "
                    "upload the public context once, encrypt X.npy, send it, decrypt and save the logits.")
    query.add_argument("url", help="the service, e.g. http://127.0.0.1:8000")
    query.add_argument("--input", required=True, metavar="X.npy", help="a batch of inputs (batch, *input_shape)")
    query.add_argument("--output", required=True, metavar="Y.npy", help="where to write the decrypted outputs")
    query.add_argument("--keys", default="client.keys", metavar="PATH",
                       help="the client's private keys: reused if the file exists, else made and kept "
                            "there (default client.keys; never sent)")
    query.add_argument("--raw", action="store_true", help="save the model's raw outputs (BFV: exact integers)")
    query.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    query.set_defaults(run=run_query)


def run_serve(args):
    try:
        import uvicorn
        from .app import Settings, create_app
    except ImportError as error:
        print(f"sealion serve: error: {error.name} is not installed; install the serve extra: "
              "pip install 'sealion[serve]'", file=sys.stderr)
        return 2
    for name, value, minimum in (("--workers", args.workers, 1), ("--max-queue", args.max_queue, 0),
                                 ("--max-upload-mb", args.max_upload_mb, 0.001)):
        if value < minimum:
            print(f"sealion serve: error: {name} must be at least {minimum}. Received: {value}", file=sys.stderr)
            return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    settings = Settings(Path(args.folder), Path(args.contexts) if args.contexts else None, args.workers,
                        args.max_queue, int(args.max_upload_mb * 1024 ** 2))
    app = create_app(settings)
    logging.getLogger("sealion.serve").info(
        "serving %s at http://%s:%d (OpenAPI: /docs), contexts in %s", args.folder, args.host, args.port,
        app.store.folder)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level=args.log_level)
    return 0


def run_query(args):
    import numpy as np

    import primitives as P
    from heras.deployment import Client, RemoteServer
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        print(f"sealion query: error: {output} exists; pass --overwrite or choose another path.", file=sys.stderr)
        return 2
    x = np.load(args.input, allow_pickle=False)
    with RemoteServer(args.url) as remote:
        spec = remote.spec()
        keys = Path(args.keys)
        if keys.exists():
            client = Client(spec, P.Context.load(keys))
        else:
            client = Client(spec)
            client.save_keys(keys)
        start = time.perf_counter()
        answer = remote.run(client.public_context(), client.encrypt(x))
        result = client.decrypt_raw(answer) if args.raw else client.decrypt(answer)
    np.save(output, result, allow_pickle=result.dtype == object)
    print(f"{len(x)} samples -> {output} ({'raw' if args.raw else 'logits'}, shape {result.shape}, "
          f"{time.perf_counter() - start:.2f} s, context {remote.context_id(client.public_context())[:12]})")
    return 0
