"""The data API a vector store needs: rows added with their own embeddings, texts and metadata;
queries by vector (one or a batch) returning what ``include`` names; get by ids; delete by ids,
documents or filter; the async variants; and all of them at once from threads and asyncio
tasks while a persist runs."""

import asyncio
import threading

import numpy as np
import pytest

import vecindex

DIM = 16


def rows(n, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"r{seed}-{i}" for i in range(n)]
    docs = [f"doc{seed}-{i // 4}" for i in range(n)]
    texts = [f"text of row {i}" for i in range(n)]
    metas = [{"group": ["a", "b", "c"][i % 3], "n": i, "even": i % 2 == 0} for i in range(n)]
    return ids, docs, vectors, texts, metas


def exact(vectors, query, passing, k):
    scores = vectors[passing] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [passing[i] for i in order]


@pytest.fixture
def loaded():
    index = vecindex.VectorIndex(dim=DIM, config={"segment_index": "exact", "head_capacity": 64})
    ids, docs, vectors, texts, metas = rows(300)
    assert index.add_vectors(ids, docs, vectors, texts=texts, metadatas=metas) == 300
    return index, (ids, docs, vectors, texts, metas)


def test_rows_come_back_with_their_text_metadata_and_vector(loaded):
    index, (ids, docs, vectors, texts, metas) = loaded
    got = index.get([ids[5], "nope", ids[7]], include=["metadata", "content", "vector"])
    assert got[1] is None
    assert got[0]["chunk_id"] == ids[5] and got[0]["doc_id"] == docs[5]
    assert got[0]["content"] == texts[5] and got[0]["metadata"] == metas[5]
    np.testing.assert_allclose(got[0]["vector"], vectors[5], rtol=1e-6)
    assert set(index.get([ids[7]], include=[])[0]) == {"chunk_id", "doc_id"}


def test_query_one_or_a_batch_with_filters_against_exact_search(loaded):
    index, (ids, docs, vectors, texts, metas) = loaded
    queries = vectors[:5] + 0.1
    flt = {"group": "b", "n": {"$gte": 30}}
    passing = [i for i, m in enumerate(metas) if m["group"] == "b" and m["n"] >= 30]
    batch = index.query(queries, k=6, filter=flt, include=["content", "vector"])
    assert len(batch) == 5
    for q, hits in enumerate(batch):
        assert [h["chunk_id"] for h in hits] == [ids[i] for i in exact(vectors, queries[q], passing, 6)]
        assert all("metadata" not in h and h["content"].startswith("text of row") for h in hits)
        single = index.query(np.ascontiguousarray(queries[q]), k=6, filter=flt, include=["content", "vector"])
        assert [h["chunk_id"] for h in single] == [h["chunk_id"] for h in hits]
        np.testing.assert_allclose(single[0]["vector"], hits[0]["vector"])
    default = index.query(queries[0], k=1)[0]
    assert set(default) == {"chunk_id", "doc_id", "score", "metadata", "content"}


def test_deletes_by_ids_documents_and_filter(loaded):
    index, (ids, docs, vectors, texts, metas) = loaded
    assert index.delete([ids[0], ids[1], "nope"]) == 2
    assert index.delete(doc_ids=[docs[8]]) == 4  # rows 8..11
    doomed = [i for i, m in enumerate(metas) if m["group"] == "c" and m["even"] and i not in (0, 1, 8, 9, 10, 11)]
    assert index.delete(filter={"group": "c", "even": True}) == len(doomed)
    gone = {0, 1, 8, 9, 10, 11, *doomed}
    got = index.get(ids)
    assert [g is None for g in got] == [i in gone for i in range(300)]
    assert len(index) == 300 - len(gone)
    with pytest.raises(ValueError):
        index.delete(filter={"n": {"$gt": "x"}})
    with pytest.raises(ValueError):
        index.delete()
    assert len(index) == 300 - len(gone), "bad deletes remove nothing"


def test_bad_input_raises_and_adds_nothing():
    index = vecindex.VectorIndex(dim=DIM, config={"segment_index": "exact"})
    ids, docs, vectors, texts, metas = rows(4)
    with pytest.raises(ValueError):
        index.add_vectors(ids, docs, vectors, texts=texts[:3])
    with pytest.raises(TypeError):
        index.add_vectors(ids, docs, vectors, metadatas=[{"x": object()}] * 4)
    with pytest.raises(ValueError):
        index.add_vectors(ids, docs, vectors, metadatas=[{"x": float("nan")}] * 4)
    assert len(index) == 0
    index.add_vectors(ids, docs, vectors, metadatas=[None, {"a": 1}, None, None])
    with pytest.raises(ValueError):
        index.query(vectors[0], include=["score"])
    with pytest.raises(TypeError):
        index.query(vectors[0], include="content")
    with pytest.raises(ValueError):
        index.query(np.zeros((2, DIM + 1), dtype=np.float32))
    with pytest.raises(TypeError):
        index.query(vectors.astype(np.float64))


def test_async_variants_run_off_the_event_loop(loaded):
    index, (ids, docs, vectors, texts, metas) = loaded

    async def main():
        extra = rows(8, seed=1)
        added = await index.aadd_vectors(extra[0], extra[1], extra[2], texts=extra[3], metadatas=extra[4])
        hits, got, removed = await asyncio.gather(
            index.aquery(vectors[:3], k=2, filter={"group": "a"}),
            index.aget([extra[0][0]]),
            index.adelete(filter={"n": {"$lt": 2}}),
        )
        return added, hits, got, removed

    added, hits, got, removed = asyncio.run(main())
    assert added == 8 and len(hits) == 3 and all(len(h) == 2 for h in hits)
    assert got[0]["content"] == "text of row 0"
    assert removed == 4, "rows 0 and 1 of both sets: the add was awaited first"


def test_threads_and_tasks_add_delete_and_search_while_persisting(tmp_path):
    """Writers (threads and asyncio tasks) add rows and delete by filter, readers search with
    filters, and a thread persists over and over: nothing raises, every hit passes its filter,
    and the index reopened from the last persist answers the same filtered query as before."""
    index = vecindex.VectorIndex(dim=DIM, config={"head_capacity": 128})
    stop = threading.Event()
    errors = []

    def guard(fn):
        def run():
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                errors.append(e)
                stop.set()

        return run

    def writer(seed):
        ids, docs, vectors, texts, metas = rows(400, seed=seed)
        for start in range(0, 400, 50):
            index.add_vectors(ids[start:start + 50], docs[start:start + 50], vectors[start:start + 50],
                              texts=texts[start:start + 50], metadatas=metas[start:start + 50])
            index.delete(filter={"$and": [{"group": "c"}, {"n": {"$lt": start}}], "$doc_id": {"$in": docs[:start]}})

    def reader():
        rng = np.random.default_rng(9)
        while not stop.is_set():
            queries = rng.standard_normal((4, DIM)).astype(np.float32)
            for hits in index.query(queries, k=5, filter={"group": {"$in": ["a", "c"]}, "even": True}):
                for hit in hits:
                    assert hit["metadata"]["group"] in ("a", "c") and hit["metadata"]["even"] is True

    def persister():
        while not stop.is_set():
            index.persist(tmp_path / "index")

    async def tasks():
        async def one(seed):
            ids, docs, vectors, texts, metas = rows(200, seed=seed)
            await index.aadd_vectors(ids, docs, vectors, texts=texts, metadatas=metas)
            await index.adelete(filter={"n": {"$gte": 190}, "$doc_id": {"$in": docs}})
            return await index.aquery(vectors[:2], k=3, filter={"group": "a"})

        return await asyncio.gather(*(one(seed) for seed in (10, 11, 12)))

    background = [threading.Thread(target=guard(reader)), threading.Thread(target=guard(persister))]
    writers = [threading.Thread(target=guard(lambda s=s: writer(s))) for s in (1, 2)]
    for t in background + writers:
        t.start()
    results = asyncio.run(tasks())
    for t in writers:
        t.join()
    stop.set()
    for t in background:
        t.join()
    assert not errors, errors
    assert all(h["metadata"]["group"] == "a" for hits in results for q in hits for h in q)

    # Each task deleted its last 10 rows; each writer's last delete took its group-c rows below 350.
    expected = 2 * 400 + 3 * 200 - 3 * 10 - 2 * sum(1 for i in range(350) if i % 3 == 2)
    assert len(index) == expected

    index.persist(tmp_path / "index")
    query = rows(1, seed=99)[2][0]
    flt = {"group": "b", "n": {"$lt": 100}}
    before = index.query(query, k=10, filter=flt)
    reopened = vecindex.VectorIndex.open(tmp_path / "index")
    assert [h["chunk_id"] for h in reopened.query(query, k=10, filter=flt)] == [h["chunk_id"] for h in before]
    assert len(reopened) == expected
