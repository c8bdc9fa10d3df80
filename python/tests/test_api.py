"""The seed's API and its semantics, round trips through persist/open, and vector-level calls."""

import numpy as np
import pytest

import vecindex
from conftest import RandomProjection, make_chunk


def test_seed_api_semantics(index):
    index.add_chunk(make_chunk(1, "a", source="a.md"))
    index.add_chunk({"chunk_id": "c2", "doc_id": "a", "content": "second chunk of a", "metadata": {"k": "v"}})
    index.add_chunks([make_chunk(3, "b"), make_chunk(4, "b")])
    assert len(index) == 4
    assert index.get_document_ids() == ["a", "b"]
    assert index.get_chunk_ids_for_document("a") == ["c1", "c2"]
    assert index.get_chunk_by_id("c2") == vecindex.Chunk("c2", "a", "second chunk of a", {"k": "v"})
    assert index.get_chunk_by_id("nope") is None

    # add() replaces a document's chunks atomically; dicts need no doc_id there.
    index.add("a", [{"chunk_id": "c5", "content": "a new a"}])
    assert index.get_chunk_ids_for_document("a") == ["c5"]
    assert index.get_chunk_by_id("c1") is None
    assert len(index) == 3

    hits = index.search("word3 topic3", top_k=2)
    assert hits[0]["chunk_id"] == "c3" and hits[0]["doc_id"] == "b"
    assert hits[0]["content"].startswith("chunk 3 of b")
    assert {"chunk_id", "doc_id", "score", "content", "metadata"} == set(hits[0])
    assert all(h["doc_id"] != "b" for h in index.search("word3 topic3", top_k=3, excluded_files=["b"]))

    assert index.remove_chunk("c4") is True
    assert index.remove_chunk("c4") is False
    assert index.remove("b") == 1
    assert index.remove("b") == 0
    assert index.get_document_ids() == ["a"]
    assert index.reconcile_mappings() == 0

    index.clear()
    assert len(index) == 0 and index.get_document_ids() == []


def test_persist_open_and_load_round_trip(tmp_path):
    index = vecindex.VectorIndex(config={"segment_index": "Flat", "head_capacity": 32})
    index.add_chunks([make_chunk(i, source=f"f{i % 3}") for i in range(300)])
    report = index.persist(tmp_path / "idx")
    assert report["chunks"] == 300 and report["files_written"] >= 1 and report["bytes_written"] > 0

    opened = vecindex.VectorIndex.open(tmp_path / "idx")
    assert len(opened) == 300 and opened.dim == index.dim
    assert opened.get_document_ids() == index.get_document_ids()
    for doc in index.get_document_ids():
        assert opened.get_chunk_ids_for_document(doc) == index.get_chunk_ids_for_document(doc)
    for i in range(0, 300, 17):
        assert opened.get_chunk_by_id(f"c{i}") == index.get_chunk_by_id(f"c{i}")
    for q in ["word7 topic0", "topic3", "word299"]:
        assert opened.search(q, top_k=5) == index.search(q, top_k=5)

    # One writer per directory: `opened` holds it until it goes.
    with pytest.raises(OSError, match="held for writing"):
        vecindex.VectorIndex.open(tmp_path / "idx")
    del opened
    other = vecindex.VectorIndex()
    other.add_chunk(make_chunk(9999))
    other.load(tmp_path / "idx")
    assert len(other) == 300 and other.get_chunk_by_id("c9999") is None


def test_callable_embedder_and_open_with_it(tmp_path):
    embed = RandomProjection(dim=64)
    index = vecindex.VectorIndex(embedder=embed)  # dim learned from one call
    assert index.dim == 64
    index.add_chunks([make_chunk(i) for i in range(50)])
    assert index.search("word42 topic0", top_k=1)[0]["chunk_id"] == "c42"
    index.persist(tmp_path / "idx")
    reopened = vecindex.VectorIndex.open(tmp_path / "idx", embedder=embed)
    assert reopened.search("word42 topic0", top_k=1)[0]["chunk_id"] == "c42"
    # One writer per directory: a second writable open is refused while the first lives.
    with pytest.raises(OSError, match="held for writing"):
        vecindex.VectorIndex.open(tmp_path / "idx")
    del reopened
    # An embedder of another dimension is refused at its first use, and nothing is added.
    wrong = vecindex.VectorIndex.open(tmp_path / "idx", embedder=RandomProjection(dim=16))
    with pytest.raises(ValueError, match="dimension 64"):
        wrong.add_chunk(make_chunk(1000))
    with pytest.raises(ValueError, match="dimension 64"):
        wrong.search("word42", top_k=1)
    assert len(wrong) == 50


def test_vectors_in_and_out():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((500, 24)).astype(np.float32)
    index = vecindex.VectorIndex(dim=24, config={"segment_index": "exact", "metric": "inner_product"})
    ids = [f"v{i}" for i in range(500)]
    assert index.add_vectors(ids, [f"d{i % 10}" for i in range(500)], vectors) == 500

    queries = vectors[:20]
    found, scores = index.search_vectors(queries, 5)
    assert found.shape == (20, 5) and scores.shape == (20, 5) and scores.dtype == np.float32
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    assert [[int(x[1:]) for x in row] for row in found] == expected.tolist()
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, expected, axis=1), rtol=1e-5)

    # Fewer live chunks than k: the arrays are as wide as the hits, not as k.
    small = vecindex.VectorIndex(dim=24)
    small.add_vectors(["x", "y"], ["d", "d"], vectors[:2])
    found, scores = small.search_vectors(vectors[:1], 4)
    assert found.shape == scores.shape == (1, 2) and sorted(found[0]) == ["x", "y"]
    assert not np.isnan(scores).any()


def test_force_merge_per_query_settings_and_segment_stats():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    ids = [f"v{i}" for i in range(3000)]
    queries = vectors[:50] + 0.1 * rng.standard_normal((50, 32)).astype(np.float32)
    exact = np.argsort(-(queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).T, axis=1)[:, :10]

    def recall(found):
        return np.mean([len(set(row) & {f"v{j}" for j in want}) / 10 for row, want in zip(found, exact)])

    for factory, option, low, high in (("HNSW32", "ef_search", 1, 400), ("IVF16,Flat", "nprobe", 1, 16)):
        index = vecindex.VectorIndex(dim=32, config={"segment_index": factory, "head_capacity": 512, "background": False})
        index.add_vectors(ids, [f"d{i % 30}" for i in range(3000)], vectors)
        before = index.stats()
        assert before["head_rows"] > 0 and len(before["segments"]) > 1, before
        assert index.force_merge() == 1
        after = index.stats()
        assert after["head_rows"] == 0 and after["chunks"] == 3000
        sealed = [s for s in after["segments"] if s["kind"] not in ("head", "frozen")]
        assert len(sealed) == 1 and sealed[0]["kind"] == factory and sealed[0]["rows"] == 3000, after
        assert sealed[0]["indexed_vectors"] == 3000 and sealed[0]["build_seconds"] > 0
        assert set(sealed[0]) == {"id", "kind", "rows", "live_rows", "bytes", "mapped", "build_seconds", "indexed_vectors"}
        narrow, _ = index.search_vectors(queries, 10, **{option: low})
        wide, _ = index.search_vectors(queries, 10, **{option: high})
        assert recall(wide) > 0.95 and recall(narrow) < recall(wide), (factory, recall(narrow), recall(wide))
        by_text = index.search("word", top_k=3, **{option: high})
        assert len(by_text) == 3


def test_minilm_embedder_when_the_model_is_present(tmp_path):
    import os

    model = os.environ.get("VECINDEX_MINILM_DIR", "target/models/all-MiniLM-L6-v2")
    if not os.path.isfile(os.path.join(model, "model.safetensors")):
        pytest.skip("no MiniLM model (scripts/fetch-minilm)")
    index = vecindex.VectorIndex(embedder="minilm", config={"model_dir": model})
    assert index.dim == 384
    index.add_chunks([
        vecindex.Chunk("cats", "d", "Cats are small domesticated felines."),
        vecindex.Chunk("rust", "d", "Rust is a systems programming language."),
    ])
    assert index.search("a kitten", top_k=1)[0]["chunk_id"] == "cats"


def test_minilm_backends_agree(tmp_path):
    import os

    model = os.environ.get("VECINDEX_MINILM_DIR", "target/models/all-MiniLM-L6-v2")
    if not os.path.isfile(os.path.join(model, "model.onnx")):
        pytest.skip("no MiniLM graph (scripts/make-minilm-onnx)")
    texts = ["Cats are small domesticated felines.", "", "Rust " * 400]
    onnx = vecindex.Embedder("minilm", model_dir=model)
    candle = vecindex.Embedder("minilm-candle", model_dir=model)
    int8 = vecindex.Embedder("minilm-int8", model_dir=model)
    assert onnx.name == candle.name == "minilm-l6-v2" and int8.name == "minilm-l6-v2-int8"
    a, b, c = onnx.embed(texts), candle.embed(texts), int8.embed(texts)
    assert a.shape == b.shape == c.shape == (3, 384)
    assert np.abs(a - b).max() <= 1e-4
    assert (a * c).sum(axis=1).min() > 0.97
    with pytest.raises(ValueError, match="unknown embedder"):
        vecindex.Embedder("minilm-fp16", model_dir=model)
    with pytest.raises(ValueError, match="makes 384-d vectors, not 128-d"):
        vecindex.Embedder("minilm-int8", dim=128, model_dir=model)


def test_module_docstring_example():
    import doctest

    failures, tried = doctest.testmod(vecindex)
    assert tried > 0 and failures == 0
