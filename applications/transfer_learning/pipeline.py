"""The encrypted round trip: the client encrypts images to bytes, the server encodes them with
public keys only, the client decrypts latent codes. Shared by the experiment and the demos.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from heras.deployment import Client, Server


@dataclass
class EncodedBatches:
    """What the client got back: latent codes (floats), the raw decryptions (BFV: the integers
    the discretised encoder computes) and the costs of each step."""

    latents: np.ndarray
    raw: np.ndarray
    latencies_s: list = field(default_factory=list)
    batch_size: int = 0
    encrypt_s: float = 0.0
    decrypt_s: float = 0.0
    query_bytes: int = 0

    def figures(self):
        """Cost figures for results.json (latency: median server time of one batch)."""
        latency = float(np.median(self.latencies_s))
        return {"encrypted_samples": int(len(self.latents)), "batch_size": self.batch_size,
                "batches": len(self.latencies_s), "latency_s": latency, "latencies_s": list(self.latencies_s),
                # SEALion's figure: a full batch of slots per latency; the measured rate beside it
                "throughput_per_hour": self.batch_size / latency * 3600,
                "measured_samples_per_hour": len(self.latents) / sum(self.latencies_s) * 3600,
                "encrypt_s": self.encrypt_s, "decrypt_s": self.decrypt_s, "query_bytes": self.query_bytes}


def encode_encrypted(client, server, x, batch_size=None, log=print):
    """Encrypt ``x`` batch by batch, let ``server`` encode each from bytes, decrypt.

    Args:
        client: a :class:`heras.deployment.Client` (holds the secret key).
        server: a :class:`heras.deployment.Server` (the prepared encoder; public keys only).
        x: images (n, *input_shape).
        batch_size: samples per encrypted batch (default: the slot count).
    """
    if not isinstance(client, Client) or not isinstance(server, Server):
        raise TypeError("Expected a heras.deployment.Client and Server. Received: "
                        f"{type(client).__name__}, {type(server).__name__}")
    batch = batch_size or client.context.slot_count
    public = server.load_context(client.public_context())  # bytes in, checked once
    result = EncodedBatches(np.zeros(0), np.zeros(0), batch_size=int(batch))
    raws = []
    batches = math.ceil(len(x) / batch)
    for b in range(batches):
        start = time.perf_counter()
        query = client.encrypt(x[b * batch:(b + 1) * batch])
        result.encrypt_s += time.perf_counter() - start
        result.query_bytes += len(query)
        start = time.perf_counter()
        answer = server.run(public, query)
        result.latencies_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        raws.append(np.asarray(client.decrypt_raw(answer)))
        result.decrypt_s += time.perf_counter() - start
        log(f"  batch {b + 1}/{batches}: {min(batch, len(x) - b * batch):,} images, server "
            f"{result.latencies_s[-1]:.2f} s")
    result.raw = np.concatenate(raws)
    result.latents = client.spec.decode(result.raw)
    return result


def check_against_plaintext(model, x, encoded):
    """BFV: ``exact`` (the decrypted integers equal the discretised encoder's on every example)
    and ``mismatched_samples``; both schemes: the largest |latent - float encoder latent|."""
    plan = model.encryption_plan
    figures = {}
    if plan.scheme == "bfv":
        reference = np.asarray(model.predict_discretized(x)).astype(object)
        differs = np.any(encoded.raw.astype(object) != reference, axis=-1)
        figures.update(exact=not bool(differs.any()), mismatched_samples=int(differs.sum()))
    else:
        figures.update(exact=None, error_bound=plan.error_bound)
    floats = model.predict(np.asarray(x, dtype=np.float32), batch_size=1024, verbose=0)
    figures["max_abs_latent_error"] = float(np.max(np.abs(encoded.latents - floats)))
    return figures


def parameters_figures(plan):
    """The encryption parameters as results.json reports them."""
    p = plan.parameters
    return {"scheme": plan.scheme, "security_bits": p.security, "poly_modulus_degree": p.poly_modulus_degree,
            "plain_moduli": list(p.plain_moduli), "coeff_mod_bit_sizes": list(p.coeff_mod_bit_sizes),
            "scale_bits": p.scale_bits, "depth": plan.depth, "proven_max_value": float(plan.max_value)}


__all__ = ["EncodedBatches", "encode_encrypted", "check_against_plaintext", "parameters_figures"]
