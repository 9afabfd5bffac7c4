"""Client and server in separate processes that exchange only files: the server computes on
public material and nothing it holds contains the secret key."""

import subprocess
import sys
import textwrap

import numpy as np

from primitives import Context, EncryptedTensor, decrypt, encrypt, matmul, square
from tests.helpers import secret_key_bytes

SERVER = textwrap.dedent("""
    import sys
    import numpy as np
    from primitives import Context, EncryptedTensor, matmul, square
    folder = sys.argv[1]
    context = Context.load(folder + "/public.ctx")
    assert not context.has_secret_key
    weights = np.load(folder + "/weights.npz")
    x = EncryptedTensor.load(folder + "/query.tensor", context)
    y = matmul(square(matmul(x, weights["w1"], weights["b1"])), weights["w2"])
    y.save(folder + "/answer.tensor")
""")


def test_server_process_computes_on_public_material_only(bfv_context, tmp_path, rng):
    x = rng.integers(0, 8, size=(10, 12))
    w1, b1, w2 = rng.integers(-3, 4, size=(12, 4)), rng.integers(-5, 5, size=4), rng.integers(-3, 4, size=(4, 2))
    np.savez(tmp_path / "weights.npz", w1=w1, b1=b1, w2=w2)
    bfv_context.save(tmp_path / "public.ctx")                      # no secret key by default
    encrypt(bfv_context, x, bound=7).save(tmp_path / "query.tensor")

    run = subprocess.run([sys.executable, "-c", SERVER, str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr

    answer = EncryptedTensor.load(tmp_path / "answer.tensor", bfv_context)
    np.testing.assert_array_equal(decrypt(bfv_context, answer), ((x @ w1 + b1) ** 2) @ w2)
    keys = secret_key_bytes(bfv_context)
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert not any(key in data for key in keys), f"{path.name} holds a secret key"
    assert not Context.load(tmp_path / "public.ctx").has_secret_key


def test_contexts_serialise_when_tensorflow_was_imported_first():
    """TenSEAL's protobuf serialisation segfaults after TensorFlow loads its protobuf; sealion
    serialises keys in SEAL's own format, so import order does not matter."""
    script = textwrap.dedent("""
        import keras  # noqa: F401  (TensorFlow first)
        import primitives as P
        client = P.Context(P.select_parameters("bfv", depth=1, max_value=2 ** 20, trial=False))
        server = client.public()
        assert not server.has_secret_key
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-2000:]
