"""The C accelerator of bundle verification (libs/fasthash): the same RFC 6962 hashes as hashlib for
every input shape, and clear errors for inputs it cannot hash."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import reprolab_fasthash
from reprolab_fasthash import leaf_hashes, node_level


def test_the_extension_is_built() -> None:
    # make install compiles it; without it the verifier silently runs at hashlib's speed
    assert reprolab_fasthash.AVAILABLE and leaf_hashes is not None and node_level is not None


def test_leaf_hashes_equal_hashlib_for_every_length_around_the_block_size() -> None:
    rng = random.Random(6962)
    docs = [rng.randbytes(n) for n in [*range(0, 200), 447, 470, 1000, 4096, 65537]]
    assert leaf_hashes(docs) == [hashlib.sha256(b"\x00" + d).digest() for d in docs]


def test_leaf_hashes_take_any_bytes_like_object_and_any_sequence() -> None:
    data = b'{"seq":1,"workspace":"cs101"}'
    want = hashlib.sha256(b"\x00" + data).digest()
    assert leaf_hashes([bytearray(data), memoryview(b"xx" + data)[2:], data]) == [want] * 3
    assert leaf_hashes((data,)) == [want]
    assert leaf_hashes(iter([data])) == [want]
    assert leaf_hashes([]) == []


def test_node_level_equals_hashlib_pairwise() -> None:
    rng = random.Random(1)
    nodes = [rng.randbytes(32) for _ in range(4096)]
    want = [hashlib.sha256(b"\x01" + a + b).digest() for a, b in zip(nodes[::2], nodes[1::2], strict=True)]
    assert node_level(nodes) == want
    assert node_level([]) == []


@pytest.mark.parametrize(("call", "arg", "error", "text"), [
    ("node_level", [b"x" * 32], ValueError, "even number of hashes, not 1"),
    ("node_level", [b"x" * 32, b"y" * 31], ValueError, "item 1 is 31 bytes, not 32"),
    ("node_level", [b"x" * 33, b"y" * 32], ValueError, "item 0 is 33 bytes, not 32"),
    ("leaf_hashes", [b"ok", "text"], TypeError, "bytes-like object is required, not 'str'"),
    ("leaf_hashes", 5, TypeError, "not iterable"),
])
def test_bad_input_is_a_clear_error(call: str, arg: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        getattr(reprolab_fasthash, call)(arg)


def test_without_a_compiler_it_installs_and_verification_falls_back_to_hashlib(tmp_path) -> None:
    """A machine with no C compiler (or no OpenSSL headers) still installs the package, without the
    extension, and verifies bundles with hashlib."""
    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "fasthash"
    shutil.copytree(root / "libs" / "fasthash", src,
                    ignore=shutil.ignore_patterns("build", "*.so", "*.egg-info", "__pycache__"))
    uv = shutil.which("uv") or str(root / ".tools" / "bin" / "uv")
    env = {**os.environ, "CC": "/bin/false"}
    subprocess.run([uv, "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "dist"), str(src)],
                   check=True, env=env, timeout=300)
    [wheel] = (tmp_path / "dist").glob("*.whl")
    subprocess.run([uv, "pip", "install", "--quiet", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, timeout=120)
    assert not list((tmp_path / "site").rglob("*.so")), "the failed compile still left an extension"
    code = ("import reprolab_fasthash, io; from reprolab_common import auditlog; "
            "assert not reprolab_fasthash.AVAILABLE; print(auditlog.hash_implementation())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hashlib"
