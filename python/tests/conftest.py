"""Shared helpers of the pytest suite: small deterministic embedders and chunk factories."""

import zlib

import numpy as np
import pytest

import vecindex


def make_chunk(i: int, doc: str = None, **metadata: str) -> vecindex.Chunk:
    """Chunk ``c{i}`` of document ``doc`` (default ``d{i // 10}``), with distinct content."""
    doc = doc if doc is not None else f"d{i // 10}"
    return vecindex.Chunk(f"c{i}", doc, f"chunk {i} of {doc}: word{i} topic{i % 7}", dict(metadata))


class RandomProjection:
    """A deterministic callable embedder: a hash of each word, projected to ``dim`` floats.

    The hash is CRC-32, not ``hash()``: Python salts string hashes per process, which made the
    vectors, and so the nearest chunk at small ``dim``, differ from run to run. At 64 floats a
    chunk's six words still leave its two query words the nearest (32 lost one seed in eight).
    """

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float64)  # float64: the binding converts
        for row, text in enumerate(texts):
            for word in text.split():
                rng = np.random.default_rng(zlib.crc32(word.encode()))
                out[row] += rng.standard_normal(self.dim)
        out[np.all(out == 0, axis=1), 0] = 1.0
        return out.tolist() if self.calls % 2 else out  # lists and arrays both accepted


@pytest.fixture
def index():
    return vecindex.VectorIndex(config={"segment_index": "exact", "head_capacity": 64})
