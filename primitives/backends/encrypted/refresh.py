"""The masked refresh: new levels for the weights through one round trip with the key holder.

CKKS without bootstrapping runs out of levels after a few SGD steps. The server then adds to
every weight a uniform mask r on [-R, R], R = weight_bound * 2^mask_bits, one value per weight
(repeated over the slots that hold it, so averaging slots cannot strip it), switches the
ciphertexts to their last level (smallest bytes) and sends them. The key holder decrypts
w + r, averages each weight's copies, re-encrypts them at the top level and sends them back;
the server subtracts r. For |w| <= weight_bound the key holder's view of each weight is
within statistical distance |w - w'| / (2R) <= 2^-mask_bits of its view of any other weight
w' (the distance of two uniform distributions shifted by w - w'); over a run that is at most
(weights x refreshes) x 2^-mask_bits. The key holder refuses values beyond
R + weight_bound (the weights left the range the mask hides). Not hidden: the CKKS
decryption error of each slot (about 2^-25 here), which depends on the computation's
rounding, not on the weight values in any way we use.
"""

import numpy as np
from tenseal import sealapi

from ...errors import OverflowRiskError, SchemeError
from ...serialization import SealObjectIO, pack, unpack
from . import seal_ops
from .training import _decode, _encrypt


class RefreshStats:
    """Refreshes done and bytes exchanged (request + response)."""

    def __init__(self):
        self.refreshes, self.bytes_sent, self.bytes_received = 0, 0, 0

    @property
    def bytes_exchanged(self):
        return self.bytes_sent + self.bytes_received

    def as_dict(self):
        return {"refreshes": self.refreshes, "refresh_bytes": self.bytes_exchanged}


def masked_request(model, rng, mask_bits, weight_bound):
    """Server: mask every weight ciphertext; return (request bytes, masks)."""
    comp = model.context.components[0]
    radius = weight_bound * 2.0 ** mask_bits
    layout, io, blobs, masks = model.layout, SealObjectIO(), [], []
    last = model.context.parameters.base_primes - 1
    for ct in model.ciphertexts:
        values = rng.uniform(-radius, radius, size=layout.H)
        masks.append(values)
        while comp.chain_index(ct) > last:
            ct = seal_ops.switch_next(comp, ct)
        masked = seal_ops.add_plain(comp, ct, seal_ops.ckks_plain(comp, list(layout.unit_vector(values)),
                                                                  ct, ct.scale))
        blobs.append(io.to_bytes(masked))
    header = {"key_id": model.context.key_id, "hidden": layout.H, "limit": radius + weight_bound}
    return pack("refresh_request", header, blobs), masks


def apply_response(model, response, masks):
    """Server: unmask the key holder's fresh ciphertexts and adopt them as the weights."""
    comp = model.context.components[0]
    header, blobs = unpack(response, "refresh_response")
    if header["key_id"] != model.context.key_id or len(blobs) != len(masks):
        raise SchemeError("The refresh response does not answer this model's request (other keys or count).")
    io, fresh = SealObjectIO(), []
    for blob, values in zip(blobs, masks):
        ct = io.load(sealapi.Ciphertext(comp.seal_context), comp.seal_context, blob)
        plain = seal_ops.ckks_plain(comp, list(model.layout.unit_vector(-values)), ct, ct.scale)
        fresh.append(seal_ops.add_plain(comp, ct, plain))
    model.set_ciphertexts(fresh)


class KeyHolder:
    """The data owner's side of a refresh: a callable from request bytes to response bytes.

    Args:
        context: the private CKKS context (secret key). Wrap it in a process or a network call
            to run the key holder elsewhere: only bytes cross.

    Attributes:
        seen: what the key holder decrypted in each refresh (masked weights), kept for audits.
    """

    def __init__(self, context, keep_views=False):
        context.require_secret_key("refresh weights")
        self.context, self.keep_views, self.seen = context, keep_views, []

    def __call__(self, request):
        header, blobs = unpack(request, "refresh_request")
        if header["key_id"] != self.context.key_id:
            raise SchemeError("This refresh request was made under other keys than this key holder's.")
        from ...training.layout import SlotLayout
        hidden = int(header["hidden"])
        layout = SlotLayout(hidden, max(1, self.context.slot_count // hidden), self.context.slot_count)
        comp, io, out, views = self.context.components[0], SealObjectIO(), [], []
        for blob in blobs:
            ct = io.load(sealapi.Ciphertext(comp.seal_context), comp.seal_context, blob)
            values = layout.read_units(_decode(self.context, ct))
            if np.max(np.abs(values)) > header["limit"]:
                raise OverflowRiskError(
                    f"A masked weight decrypted to {np.max(np.abs(values)):.4g}, beyond the range "
                    f"{header['limit']:.4g} the mask hides: the weights left the declared weight_bound "
                    "(or the training diverged). Lower the learning rate or raise weight_bound.")
            views.append(values)
            out.append(io.to_bytes(_encrypt(self.context, layout.unit_vector(values))))
        if self.keep_views:
            self.seen.append(np.array(views))
        return pack("refresh_response", {"key_id": self.context.key_id}, out)


def refresh(model, key_holder, stats, rng, mask_bits, weight_bound):
    """One masked round trip: new top-level weight ciphertexts, counted in ``stats``."""
    request, masks = masked_request(model, rng, mask_bits, weight_bound)
    response = key_holder(request)
    if not isinstance(response, (bytes, bytearray)):
        raise TypeError("The key holder must return the response bytes (KeyHolder(context) does).")
    apply_response(model, bytes(response), masks)
    stats.refreshes += 1
    stats.bytes_sent += len(request)
    stats.bytes_received += len(response)
