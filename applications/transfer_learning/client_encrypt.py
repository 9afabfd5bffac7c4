"""Step 2 (client): draw k labelled images per class, encrypt them and the test images.

    python -m applications.transfer_learning.client_encrypt --public deploy/public \\
        --client me/ --outbox outbox/ [--labels-per-class 10]

Reads only what the server published (public/: client.json, split.json). Draws k images per
class from the client's labelled split (training images the server's VAE never saw), generates
keys, and writes into --outbox what goes to the server: public.ctx (public and
relinearisation keys, no secret key), labelled.query and test.query (ciphertexts). The secret
key and the labels stay in --client. Next: server_encode.py.
"""

import argparse
import json
import sys

import numpy as np

from applications.transfer_learning import _demo


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Next: server_encode.py.")
    parser.add_argument("--public", required=True, help="the server's public/ folder (client.json, split.json)")
    parser.add_argument("--client", required=True, help="the client's private folder (keys, labels)")
    parser.add_argument("--outbox", required=True, help="folder of files to send to the server")
    parser.add_argument("--labels-per-class", "-k", type=int, default=10)
    parser.add_argument("--test-samples", type=int, help="test images to encrypt (default: all)")
    parser.add_argument("--data-dir", help="folder holding <dataset>.npz (default: $SEALION_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the labelled draw")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quick", action="store_true", help="at most 5 labels per class and 120 test images")
    args = parser.parse_args(argv)
    if args.labels_per_class < 1:
        parser.error(f"--labels-per-class must be >= 1; got {args.labels_per_class}")
    if args.quick:
        args.labels_per_class, args.test_samples = min(args.labels_per_class, 5), 120
    return args


def main(argv=None):
    args = parse(argv)
    from heras.deployment import Client
    from applications.transfer_learning.splits import draw_per_class

    split = _demo.read_split(args.public)
    client_dir, outbox = _demo.fresh_folder(args.client, args.overwrite), _demo.fresh_folder(args.outbox, args.overwrite)
    (x_train, y_train), (x_test, y_test) = _demo.load_images(split["dataset"], args.data_dir)
    start, stop = split["labelled"]
    chosen = start + draw_per_class(y_train[start:stop], args.labels_per_class, args.seed,
                                    int(y_train.max()) + 1)
    pool = set(range(*split["pool"]))
    if pool.intersection(chosen.tolist()):
        raise SystemExit("The drawn labelled images overlap the server's pool; split.json is inconsistent.")
    test = np.arange(len(x_test) if args.test_samples is None else min(args.test_samples, len(x_test)))
    client = Client.from_folder(args.public)
    client.save_keys(client_dir / "client.keys", overwrite=args.overwrite)
    np.savez(client_dir / "labels.npz", train_indices=chosen, y_labelled=y_train[chosen], test_indices=test,
             y_test=y_test[test])
    (client_dir / "dataset.json").write_text(json.dumps({"dataset": split["dataset"]}), encoding="utf-8")
    (outbox / "public.ctx").write_bytes(client.public_context())
    for name, images in zip(_demo.QUERIES, (x_train[chosen], x_test[test])):
        (outbox / f"{name}.query").write_bytes(client.encrypt(images))
    print(f"Encrypted {len(chosen)} labelled images ({args.labels_per_class} per class, training images "
          f"{start}-{stop - 1}) and {len(test)} test images into {outbox}; keys and labels stay in "
          f"{client_dir}. Next: server_encode.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
