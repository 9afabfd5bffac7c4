"""Demo applications built on sealion (L0 activity sparsifier, VAE transfer learning): to come."""
