"""Encrypted transfer learning through a server-side VAE (SEALion's second application).

A server trains a variational autoencoder on a large unlabelled pool and serves its encoder's
mean head encrypted; a client with a few labelled examples encrypts them, the server returns
encrypted latent codes, and the client decrypts them and trains a small classifier on the codes
instead of the pixels. Modules: ``vae`` (the HE-friendly VAE), ``splits`` (who sees which
images), ``classifier`` (the client's logistic regression), ``pipeline`` (the encrypted round
trip), ``experiment`` (``sealion run`` kind ``transfer_learning``), ``plots``; demo scripts
``server_train``, ``client_encrypt``, ``server_encode``, ``client_evaluate`` (run in that order,
``python -m applications.transfer_learning.<script> --help``).

Importing this package is light (no TensorFlow): import the modules you need.
"""
