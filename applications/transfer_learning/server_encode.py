"""Step 3 (server): encode the client's encrypted images with the VAE's encoder.

    python -m applications.transfer_learning.server_encode --server deploy/server \\
        --outbox outbox/ --inbox inbox/

Reads the client's public context and queries (bytes), refuses a context holding a secret key,
runs the prepared encoder on the ciphertexts with public keys only, and writes the encrypted
latent codes (labelled.answer, test.answer) into --inbox for the client. It never decrypts.
Next: client_evaluate.py.
"""

import argparse
import sys
import time
from pathlib import Path

from applications.transfer_learning import _demo


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Next: client_evaluate.py.")
    parser.add_argument("--server", required=True, help="the prepared encoder (server_train.py's server/)")
    parser.add_argument("--outbox", required=True, help="the client's files: public.ctx, *.query")
    parser.add_argument("--inbox", required=True, help="folder to write the answers into, for the client")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry; the work is the client's queries")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    from heras.deployment import Server
    server = Server(args.server)
    outbox, inbox = Path(args.outbox), _demo.fresh_folder(args.inbox, args.overwrite)
    context = server.load_context((outbox / "public.ctx").read_bytes())
    print(f"{server!r}")
    for name in _demo.QUERIES:
        start = time.perf_counter()
        answer = server.run(context, (outbox / f"{name}.query").read_bytes())
        (inbox / f"{name}.answer").write_bytes(answer)
        print(f"{name}: encoded in {time.perf_counter() - start:.2f} s")
    print(f"Encrypted latent codes written to {inbox}. Next: client_evaluate.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
