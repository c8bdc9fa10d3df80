"""Typed metadata and filters: every operator against a pure-Python reading of the same rows,
property-based with hypothesis, and bad filters as ValueError / TypeError."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecindex

KEYS = ["lang", "year", "score", "draft", "tags", "mixed"]
WORDS = ["en", "fr", "de", "rust", "db", "ml"]


def number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def equal(a, b):
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return x == y
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return type(a) is type(b) and a == b


def reference(flt, doc_id, meta):
    """The documented semantics, written again in Python."""
    result = True
    for key, cond in flt.items():
        if key == "$and":
            ok = all(reference(f, doc_id, meta) for f in cond)
        elif key == "$or":
            ok = any(reference(f, doc_id, meta) for f in cond)
        elif key == "$not":
            ok = not reference(cond, doc_id, meta)
        elif key == "$doc_id":
            ok = doc_id in cond["$in"] if isinstance(cond, dict) else doc_id == cond
        elif isinstance(cond, dict):
            ok = all(apply(op, meta.get(key, MISSING), operand) for op, operand in cond.items())
        else:
            ok = apply("$eq", meta.get(key, MISSING), cond)
        result = result and ok
    return result


MISSING = object()


def apply(op, value, operand):
    present = value is not MISSING
    if op == "$eq":
        return present and equal(value, operand)
    if op == "$ne":
        return not (present and equal(value, operand))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        x = number(value) if present else None
        if x is None:
            return False
        return {"$gt": x > operand, "$gte": x >= operand, "$lt": x < operand, "$lte": x <= operand}[op]
    if op == "$in":
        return present and not isinstance(value, list) and any(equal(value, o) for o in operand)
    if op == "$nin":
        return not (present and not isinstance(value, list) and any(equal(value, o) for o in operand))
    if op == "$contains":
        return present and isinstance(value, list) and operand in value
    raise AssertionError(op)


scalars = st.one_of(
    st.sampled_from(WORDS),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([-1.5, 0.0, 0.5, 2.0]),
    st.booleans(),
)
values = st.one_of(scalars, st.lists(st.sampled_from(WORDS), max_size=3))
rows_strategy = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=4), min_size=1, max_size=30)
numbers = st.one_of(st.integers(min_value=-3, max_value=3), st.sampled_from([-1.5, 0.5, 2.0]))


def leaf():
    key = st.sampled_from(KEYS + ["nobody"])
    return st.one_of(
        st.builds(lambda k, v: {k: v}, key, values),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$eq", "$ne"]), values),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$in", "$nin"]), st.lists(scalars, max_size=3)),
        st.builds(lambda k, v: {k: {"$contains": v}}, key, st.sampled_from(WORDS)),
        st.builds(lambda ids: {"$doc_id": {"$in": ids}}, st.lists(st.sampled_from(["d0", "d1", "d2", "d9"]), max_size=3)),
    )


filters = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
    ),
    max_leaves=6,
)


def make_index(rows):
    index = vecindex.VectorIndex(dim=64, config={"segment_index": "exact", "head_capacity": 8})
    chunks = [
        {"chunk_id": f"c{i}", "doc_id": f"d{i % 3}", "content": f"row {i} words", "metadata": meta}
        for i, meta in enumerate(rows)
    ]
    index.add_chunks(chunks)
    return index


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, flt=filters)
def test_every_operator_matches_the_python_reference(rows, flt):
    index = make_index(rows)
    query = np.ones((1, 64), dtype=np.float32)
    ids, _ = index.search_vectors(query, k=len(rows), filter=flt)
    found = {i for i in ids[0] if i is not None}
    expected = {f"c{i}" for i, meta in enumerate(rows) if reference(flt, f"d{i % 3}", meta)}
    assert found == expected, flt


def test_typed_metadata_round_trips_and_survives_persist(tmp_path):
    meta = {"lang": "fr", "year": 2024, "score": 0.25, "draft": False, "tags": ["a", "b"]}
    index = vecindex.VectorIndex(dim=64)
    index.add_chunk({"chunk_id": "c1", "doc_id": "d", "content": "typed", "metadata": meta})
    chunk = index.get_chunk_by_id("c1")
    assert chunk.metadata == meta
    assert isinstance(chunk.metadata["year"], int) and isinstance(chunk.metadata["draft"], bool)
    index.persist(tmp_path / "i")
    again = vecindex.VectorIndex.open(tmp_path / "i")
    assert again.get_chunk_by_id("c1").metadata == meta
    hits = again.search("typed", top_k=1, filter={"year": {"$gte": 2020}, "tags": {"$contains": "b"}})
    assert [h["chunk_id"] for h in hits] == ["c1"] and hits[0]["metadata"] == meta
    assert again.search("typed", top_k=1, filter={"draft": True}) == []


@pytest.mark.parametrize(
    "flt, error",
    [
        ({"year": {"$near": 1}}, ValueError),
        ({"$xor": []}, ValueError),
        ({"year": {"$gt": "2020"}}, ValueError),
        ({"year": None}, ValueError),
        ({"$and": {"a": 1}}, ValueError),
        ({"score": {"$lt": math.nan}}, ValueError),
        ({1: "x"}, TypeError),
        ("lang = fr", TypeError),
        ({"tags": [1, 2]}, ValueError),
    ],
)
def test_bad_filters_raise_before_searching(flt, error):
    index = make_index([{"lang": "en"}])
    with pytest.raises(error):
        index.search("row", top_k=1, filter=flt)
    with pytest.raises(error):
        index.search_vectors(np.ones((1, 64), dtype=np.float32), k=1, filter=flt)


def test_bad_metadata_values_raise_and_add_nothing():
    index = vecindex.VectorIndex(dim=64)
    for bad in [{"k": None}, {"k": {"nested": 1}}, {"k": [1, 2]}, {"k": 2**70}, {"k": math.nan}]:
        with pytest.raises((TypeError, ValueError)):
            index.add_chunks([{"chunk_id": "ok", "doc_id": "d", "content": "x"}, {"chunk_id": "b", "doc_id": "d", "content": "y", "metadata": bad}])
        assert len(index) == 0
