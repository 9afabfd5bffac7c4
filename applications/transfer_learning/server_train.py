"""Step 1 (server): train the VAE on unlabelled images and publish the encrypted encoder.

    python -m applications.transfer_learning.server_train --out deploy/ [--dataset mnist]
    python -m applications.transfer_learning.server_train --out deploy/ --quick   # digits, seconds

Trains the VAE on the unlabelled pool (the training images before the last
--labelled-samples, labels never read), extracts the encoder's mean head, prepares it for
BFV (exact) or CKKS, and writes into --out two folders: server/ (the prepared encoder: model,
plan, client.json; it stays with the server) and public/ (what the client gets: client.json =
parameters and input scales, no weights; decoder.keras, the plaintext decoder for its
reconstructions; split.json, which training images the server used). Next: client_encrypt.py.
"""

import argparse
import shutil
import sys

from applications.transfer_learning import _demo


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Next: client_encrypt.py.")
    parser.add_argument("--out", required=True, help="folder to write server/ and public/ into")
    parser.add_argument("--dataset", choices=_demo.DATASETS, default="mnist")
    parser.add_argument("--data-dir", help="folder holding <dataset>.npz (default: $SEALION_DATA)")
    parser.add_argument("--labelled-samples", type=int, default=10000,
                        help="last training images kept out of the pool for the client's labels")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden-units", type=int, default=64, help="encoder: Dense units before the Square")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--scheme", choices=("bfv", "ckks"), default="bfv")
    parser.add_argument("--security", type=int, choices=(128, 192, 256), default=128)
    parser.add_argument("--input-bits", type=int, default=8, help="BFV input quantisation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier publication in --out")
    parser.add_argument("--quick", action="store_true",
                        help="bundled 8x8 digits, small VAE (for tests: seconds, no files needed)")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.labelled_samples, args.epochs = "digits", 400, 30
        args.hidden_units, args.latent_dim = 32, 8
    return args


def main(argv=None):
    args = parse(argv)
    import keras
    import heras
    from heras.layers import Dense, Flatten, Square
    from heras.deployment.spec import CLIENT_FILE
    from applications.transfer_learning.splits import split
    from applications.transfer_learning.vae import VAE, build_decoder, build_encoder, mean_encoder, train_vae

    out = _demo.fresh_folder(args.out, args.overwrite)
    keras.utils.set_random_seed(args.seed)
    (x_train, _), _ = _demo.load_images(args.dataset, args.data_dir)  # the labels stay unread
    splits = split(len(x_train), args.labelled_samples)
    pool = x_train[splits.pool]
    encoder = build_encoder(pool.shape[1:], args.latent_dim, [Flatten(), Dense(args.hidden_units), Square()])
    decoder = build_decoder(args.latent_dim, pool.shape[1:], (64,) if args.quick else (256,))
    vae = VAE(encoder, decoder)
    print(f"Training {vae!r} on {len(pool):,} unlabelled {args.dataset} images")
    train_vae(vae, pool, epochs=args.epochs, batch_size=64 if args.quick else 128,
              verbose=1 if sys.stdout.isatty() else 2)
    served = mean_encoder(vae)
    plan = served.prepare_encryption(args.scheme, security=args.security, calibration=pool,
                                     input_bits=args.input_bits)
    print(plan)
    heras.deployment.save_prepared(served, out / "server", overwrite=args.overwrite)
    public = out / "public"
    public.mkdir(exist_ok=True)
    shutil.copyfile(out / "server" / CLIENT_FILE, public / CLIENT_FILE)
    decoder.save(public / "decoder.keras")
    _demo.write_split(public, args.dataset, splits)
    print(f"Wrote {out / 'server'} (the server keeps it) and {public} (client.json, decoder.keras, "
          "split.json: for the client). Next: client_encrypt.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
