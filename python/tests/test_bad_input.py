"""Bad input raises a clear Python exception and leaves the index unchanged; nothing crashes."""

import os

import numpy as np
import pytest

import vecindex
from conftest import RandomProjection, make_chunk


def test_bad_chunks(index):
    index.add_chunk(make_chunk(1, "a"))
    with pytest.raises(TypeError, match="vecindex.Chunk or a dict"):
        index.add_chunk(42)
    with pytest.raises(ValueError, match="chunk_id"):
        index.add_chunk({"doc_id": "a", "content": "no id"})
    with pytest.raises(TypeError, match="must be a str"):
        index.add_chunk({"chunk_id": 5, "doc_id": "a", "content": "x"})
    with pytest.raises(TypeError, match="metadata"):  # int, float, bool and list[str] are fine; None is not
        index.add_chunk({"chunk_id": "m", "doc_id": "a", "content": "x", "metadata": {"k": None}})
    with pytest.raises(ValueError, match="must not be empty"):
        index.add_chunk(vecindex.Chunk("", "a", "empty id"))
    with pytest.raises(ValueError, match="belongs to document"):
        index.add_chunk(vecindex.Chunk("c1", "b", "c1 is a's"))
    with pytest.raises(ValueError, match="more than once"):
        index.add_chunks([make_chunk(7, "z"), make_chunk(7, "z")])
    with pytest.raises(TypeError, match="list of chunks"):
        index.add_chunks(3)
    assert len(index) == 1 and index.get_document_ids() == ["a"]


def test_bad_search_arguments(index):
    index.add_chunk(make_chunk(1))
    queries = np.ones((1, index.dim), np.float32)
    for k in (0, -1, -(2**70)):
        with pytest.raises(ValueError, match="top_k"):
            index.search("word1", top_k=k)
        with pytest.raises(ValueError, match="k must be at least 1"):
            index.search_vectors(queries, k)
    for k in ("3", 1.5, True, None):
        with pytest.raises(TypeError, match="must be an int"):
            index.search_vectors(queries, k)
    for option in ("ef_search", "nprobe"):
        with pytest.raises(ValueError, match=option):
            index.search("word1", **{option: 0})
        with pytest.raises(TypeError, match=option):
            index.search_vectors(queries, 3, **{option: "16"})


def test_a_huge_k_is_sized_by_the_hits_not_by_k():
    index = vecindex.VectorIndex(dim=4, config={"segment_index": "exact"})
    index.add_vectors(["a", "b"], ["d", "d"], np.eye(4, dtype=np.float32)[:2].copy())
    queries = np.eye(4, dtype=np.float32)[:3].copy()
    for k in (10**8, 10**10, 2**61, 2**64, 2**100):
        ids, scores = index.search_vectors(queries, k)
        assert ids.shape == scores.shape == (3, 2), k
        assert ids[0, 0] == "a" and ids[1, 0] == "b"
        assert index.search("anything at all", top_k=k) is not None
    ids, _ = index.search_vectors(queries, 1)
    assert ids.shape == (3, 1)


def test_queries_with_nothing_to_search_for_are_refused(index):
    index.add_chunks([make_chunk(i) for i in range(5)])
    for query in ("", "   ", "\n\t", "the", "how do I", "?!"):
        with pytest.raises(ValueError, match="no word to search for"):
            index.search(query)
    # Two words: "word3" alone shares its hash bucket with a feature of c0, so the two tie
    # exactly and the order would rest on the last bit of rounding.
    assert index.search("word3 topic3", top_k=1)[0]["chunk_id"] == "c3"


def test_multi_row_calls_are_all_or_nothing():
    index = vecindex.VectorIndex(dim=4, config={"segment_index": "exact"})
    index.add_vectors(["a", "b"], ["x", "y"], np.eye(4, dtype=np.float32)[:2].copy())
    before = (len(index), index.get_document_ids(), index.stats()["next_seq"])
    rows = np.eye(4, dtype=np.float32)[2:].copy()
    # "n9" would join document y, "a" belongs to x, not z: the call adds neither.
    with pytest.raises(ValueError, match="belongs to document"):
        index.add_vectors(["n9", "a"], ["y", "z"], rows)
    with pytest.raises(ValueError, match="not a finite number"):
        index.add_vectors(["n9", "n10"], ["y", "z"], np.array([[1, 0, 0, 0], [np.nan, 0, 0, 0]], np.float32))
    assert (len(index), index.get_document_ids(), index.stats()["next_seq"]) == before
    assert index.get_chunk_by_id("n9") is None
    texts = vecindex.VectorIndex(config={"segment_index": "exact"})
    texts.add_chunk(make_chunk(1, "x"))
    with pytest.raises(ValueError, match="belongs to document"):
        texts.add_chunks([make_chunk(2, "y"), make_chunk(1, "z")])
    with pytest.raises(ValueError, match="belongs to document"):
        texts.add("z", [make_chunk(3, "z"), make_chunk(1, "z")])
    assert len(texts) == 1 and texts.get_document_ids() == ["x"]


def test_bad_arrays():
    index = vecindex.VectorIndex(dim=8)
    good = np.ones((3, 8), np.float32)
    with pytest.raises(TypeError, match="float32"):
        index.add_vectors(["a", "b", "c"], ["d"] * 3, good.astype(np.float64))
    with pytest.raises(TypeError, match="2-D"):
        index.add_vectors(["a"], ["d"], np.ones(8, np.float32))
    with pytest.raises(TypeError, match="float32"):
        index.add_vectors(["a"], ["d"], [[1.0] * 8])
    with pytest.raises(ValueError, match="C-contiguous"):
        index.add_vectors(["a", "b", "c"], ["d"] * 3, np.ones((8, 3), np.float32).T)
    with pytest.raises(ValueError, match="dimension 8"):
        index.add_vectors(["a"], ["d"], np.ones((1, 7), np.float32))
    with pytest.raises(ValueError, match="one of each per row"):
        index.add_vectors(["a", "b"], ["d"] * 3, good)
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        index.add_vectors(["a", "b", "c"], ["d"] * 3, bad)
    zero = np.zeros((1, 8), np.float32)
    with pytest.raises(ValueError, match="zeros"):
        index.add_vectors(["z"], ["d"], zero)
    with pytest.raises(ValueError, match="dimension 8"):
        index.search_vectors(np.ones((2, 9), np.float32), 3)
    assert len(index) == 0


def test_bad_construction_and_embedders(tmp_path):
    with pytest.raises(ValueError, match="unknown embedder"):
        vecindex.VectorIndex(embedder="word2vec")
    with pytest.raises(TypeError, match="callable"):
        vecindex.VectorIndex(embedder=3.5)
    with pytest.raises(ValueError, match="unknown config key"):
        vecindex.VectorIndex(config={"colour": "blue"})
    with pytest.raises(ValueError, match="unknown metric"):
        vecindex.VectorIndex(config={"metric": "manhattan"})
    with pytest.raises(ValueError, match="FAISS|factory|invalid"):
        vecindex.VectorIndex(config={"segment_index": "NoSuchIndex"})
    with pytest.raises(ValueError, match="shape"):
        vecindex.VectorIndex(dim=16, embedder=RandomProjection(32)).add_chunk(make_chunk(1))

    def wrong_shape(texts):
        return np.ones((len(texts) + 1, 4), np.float32)

    index = vecindex.VectorIndex(dim=4, embedder=wrong_shape)
    with pytest.raises(ValueError, match="shape"):
        index.add_chunk(make_chunk(1))

    def failing(texts):
        raise RuntimeError("model server down")

    index = vecindex.VectorIndex(dim=4, embedder=failing)
    with pytest.raises(RuntimeError, match="model server down"):
        index.add_chunk(make_chunk(1))
    assert len(index) == 0


def test_disk_errors(tmp_path):
    with pytest.raises(OSError):
        vecindex.VectorIndex.open(tmp_path / "missing")
    (tmp_path / "file").write_text("not a directory")
    index = vecindex.VectorIndex()
    index.add_chunk(make_chunk(1))
    with pytest.raises(OSError, match="not a vecindex index"):
        index.persist(tmp_path / "file")
    index.persist(tmp_path / "idx")
    # Damage every manifest: nothing left to open from.
    for name in os.listdir(tmp_path / "idx"):
        if name.startswith("MANIFEST"):
            path = tmp_path / "idx" / name
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
    with pytest.raises(vecindex.CorruptIndexError):
        vecindex.VectorIndex.open(tmp_path / "idx")
    assert issubclass(vecindex.CorruptIndexError, OSError)
