"""vecindex.llama_index: the LlamaIndex vector store and embedding model.

Filters are checked against llama-index-core's own reading of them (``build_metadata_filter_fn``,
what its SimpleVectorStore runs), and the operators vecindex cannot evaluate must raise before
anything is searched or deleted. The end-to-end test runs a ``VectorStoreIndex`` with the
binding's MiniLM, persists it, and asks a new Python process the same questions.

Nothing here touches the network: every index gets its node parser explicitly (LlamaIndex's
default one would load tiktoken's data, bundled with llama-index-core but looked up through
``TIKTOKEN_CACHE_DIR``), no LLM is ever resolved, and the embedding model is always given.
"""

import asyncio
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_index.core", reason="needs the llama-index extra (llama-index-core)")

from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402
from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn  # noqa: E402

import vecindex  # noqa: E402
from vecindex.llama_index import VecindexEmbedding, VecindexVectorStore, to_vecindex_filter  # noqa: E402

HERE = Path(__file__).resolve().parent
DIM = 4

# Twelve nodes of three documents: metadata of every type, some keys missing, vectors spread
# around the circle so that the nearest ones to QUERY are n0, n1, n2, ... in that order.
ROWS = {
    f"n{i}": meta
    for i, meta in enumerate(
        [
            {"topic": "a", "year": 2019, "score": 0.5, "tags": ["red", "blue"], "draft": True},
            {"topic": "b", "year": 2020, "score": 0.25, "tags": ["red"]},
            {"topic": "c", "year": 2021, "score": 0.75, "tags": ["blue"], "draft": False},
            {"topic": "a", "year": 2022, "tags": []},
            {"year": 2023, "score": 1.0, "tags": ["green", "red"]},
            {"topic": "b", "score": 0.0},
            {"topic": "c", "year": 2020, "score": 0.5, "tags": ["blue", "green"], "draft": True},
            {"topic": "a", "year": 2021.0, "tags": ["red"]},
            {},
            {"topic": "b", "year": 2024, "score": 2.5, "tags": ["green"], "draft": False},
            {"topic": "c", "year": 2018, "score": -1.0},
            {"topic": "a", "year": 2020, "score": 0.5, "tags": ["blue"]},
        ]
    )
}
QUERY = [1.0, 0.0, 0.0, 0.0]


def vector(i):
    angle = i * 0.25
    return [math.cos(angle), math.sin(angle), 0.1 * i, 0.0]


def text_node(node_id, doc_id, embedding, metadata=None, text=None):
    return TextNode(
        id_=node_id,
        text=text if text is not None else f"text of {node_id}",
        metadata=metadata or {},
        embedding=embedding,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)},
    )


def row_nodes():
    return [text_node(nid, f"doc{i % 3}", vector(i), meta) for i, (nid, meta) in enumerate(ROWS.items())]


@pytest.fixture
def store():
    store = VecindexVectorStore(dim=DIM, config={"segment_index": "exact", "head_capacity": 8})
    store.add(row_nodes())
    return store


def query(store, filters=None, k=None, **kwargs):
    k = len(ROWS) if k is None else k
    return store.query(VectorStoreQuery(query_embedding=QUERY, similarity_top_k=k, filters=filters, **kwargs))


def core_reading(filters):
    """The ids llama-index-core's own filter function accepts among ROWS."""
    accepts = build_metadata_filter_fn(lambda node_id: ROWS[node_id], filters)
    return {node_id for node_id in ROWS if accepts(node_id)}


def leaf(key, operator, value):
    return MetadataFilter(key=key, operator=operator, value=value)


F = FilterOperator
LEAVES = [
    leaf("topic", F.EQ, "a"),
    leaf("year", F.EQ, 2021),
    leaf("score", F.EQ, 0.5),
    leaf("topic", F.NE, "a"),
    leaf("year", F.NE, 2020),
    leaf("year", F.GT, 2020),
    leaf("year", F.GTE, 2020),
    leaf("score", F.LT, 0.5),
    leaf("score", F.LTE, 0.5),
    leaf("score", F.GT, 0.3),
    leaf("topic", F.IN, ["a", "c"]),
    leaf("year", F.IN, [2019, 2024]),
    leaf("topic", F.NIN, ["a"]),
    leaf("year", F.NIN, [2020, 2021]),
    leaf("tags", F.CONTAINS, "red"),
    leaf("tags", F.ANY, ["green", "blue"]),
    leaf("tags", F.ANY, []),
    leaf("tags", F.ALL, ["red", "blue"]),
    leaf("tags", F.ALL, ["green"]),
    leaf("missing", F.EQ, "x"),
    leaf("missing", F.NE, "x"),
]


@pytest.mark.parametrize("item", LEAVES, ids=lambda f: f"{f.key}-{f.operator.name}-{f.value}")
def test_every_operator_accepts_what_llama_index_core_accepts(store, item):
    filters = MetadataFilters(filters=[item])
    result = query(store, filters)
    assert set(result.ids) == core_reading(filters)
    assert result.ids == [nid for nid in ROWS if nid in core_reading(filters)], "nearest first"


@pytest.mark.parametrize("condition", [FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT])
def test_conditions_combine_as_llama_index_core_combines(store, condition):
    filters = MetadataFilters(
        filters=[leaf("topic", F.IN, ["a", "b"]), leaf("year", F.GTE, 2021), leaf("tags", F.CONTAINS, "red")],
        condition=condition,
    )
    expected = core_reading(filters)
    assert 0 < len(expected) < len(ROWS)
    assert set(query(store, filters).ids) == expected


def test_nested_filters_map_to_nested_dicts_with_the_same_meaning(store):
    """llama-index-core's reference function refuses nesting, so the expected set is built from
    its reading of each leaf."""
    a, b, c = leaf("year", F.GTE, 2021), leaf("topic", F.EQ, "a"), leaf("tags", F.CONTAINS, "blue")
    inner = MetadataFilters(filters=[b, c], condition=FilterCondition.OR)
    nested = MetadataFilters(filters=[a, inner], condition=FilterCondition.NOT)
    assert to_vecindex_filter(nested) == {
        "$not": {"$or": [{"year": {"$gte": 2021}}, {"$or": [{"topic": {"$eq": "a"}}, {"tags": {"$contains": "blue"}}]}]}
    }
    sets = [core_reading(MetadataFilters(filters=[f])) for f in (a, b, c)]
    assert set(query(store, nested).ids) == set(ROWS) - (sets[0] | sets[1] | sets[2])
    both = MetadataFilters(filters=[a, inner])
    assert set(query(store, both).ids) == sets[0] & (sets[1] | sets[2])


def test_no_filters_accept_every_node_as_in_llama_index_core(store):
    for condition in FilterCondition:
        filters = MetadataFilters(filters=[], condition=condition)
        assert set(query(store, filters).ids) == set(ROWS) == core_reading(filters)


def test_filters_run_inside_the_index_so_k_hits_come_back(store):
    """n0..n2 are the nearest and all fail the filter: a filter applied after the search would
    return fewer than k nodes."""
    filters = MetadataFilters(filters=[leaf("year", F.GTE, 2022)])
    result = query(store, filters, k=3)
    assert result.ids == ["n3", "n4", "n9"]
    assert result.similarities == sorted(result.similarities, reverse=True)
    assert [node.metadata["year"] for node in result.nodes] == [2022, 2023, 2024]


def test_doc_ids_restrict_the_query_and_combine_with_filters(store):
    assert query(store, doc_ids=["doc1"]).ids == ["n1", "n4", "n7", "n10"]
    filters = MetadataFilters(filters=[leaf("topic", F.EQ, "a")])
    assert query(store, filters, doc_ids=["doc1", "doc2"]).ids == ["n7", "n11"]
    assert query(store, doc_ids=[], node_ids=[]).ids == list(ROWS), "LlamaIndex's retriever sends []: no restriction"


UNSUPPORTED = [
    (leaf("topic", F.TEXT_MATCH, "a"), NotImplementedError),
    (leaf("topic", F.TEXT_MATCH_INSENSITIVE, "A"), NotImplementedError),
    (leaf("tags", F.IS_EMPTY, None), NotImplementedError),
    (leaf("topic", F.GT, "a"), ValueError),  # vecindex ranges are numeric
    (leaf("tags", F.CONTAINS, 3), ValueError),  # vecindex lists hold strings
    (leaf("tags", F.ANY, "red"), ValueError),
    (leaf("tags", F.ALL, []), ValueError),  # all of nothing: llama-index-core still wants the key
    (leaf("topic", F.IN, "a"), ValueError),
    (leaf("topic", F.EQ, None), ValueError),
    (leaf("$doc_id", F.IN, ["doc0"]), ValueError),
]


@pytest.mark.parametrize("item,error", UNSUPPORTED, ids=[f"{f.operator.name}-{f.value}" for f, _ in UNSUPPORTED])
def test_filters_vecindex_cannot_evaluate_raise_before_searching_or_deleting(store, item, error):
    filters = MetadataFilters(
        filters=[leaf("year", F.GT, 2000), MetadataFilters(filters=[leaf("topic", F.EQ, "b"), item], condition="or")]
    )
    with pytest.raises(error):
        query(store, filters)
    with pytest.raises(error):
        store.delete_nodes(filters=filters)
    with pytest.raises(error):
        asyncio.run(store.aquery(VectorStoreQuery(query_embedding=QUERY, filters=filters)))
    assert len(store.client) == len(ROWS)


def test_unsupported_operators_name_themselves():
    for operator in (F.TEXT_MATCH, F.TEXT_MATCH_INSENSITIVE, F.IS_EMPTY):
        with pytest.raises(NotImplementedError, match=operator.name):
            to_vecindex_filter(MetadataFilters(filters=[leaf("k", operator, "v")]))


@pytest.mark.parametrize("mode", [m for m in VectorStoreQueryMode if m != VectorStoreQueryMode.DEFAULT])
def test_query_modes_other_than_default_raise(store, mode):
    with pytest.raises(NotImplementedError, match=mode.value):
        query(store, mode=mode)


def test_queries_the_index_cannot_answer_as_asked_raise(store):
    with pytest.raises(NotImplementedError, match="node_ids"):
        query(store, node_ids=["n1", "n2"])
    with pytest.raises(ValueError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="no embedding", similarity_top_k=2))
    with pytest.raises(NotImplementedError):
        store.get_nodes(filters=MetadataFilters(filters=[leaf("topic", F.EQ, "a")]))
    with pytest.raises(NotImplementedError):
        store.delete_nodes(["n1"], filters=MetadataFilters(filters=[leaf("topic", F.EQ, "a")]))
    with pytest.raises(ValueError):
        store.delete_nodes()
    assert len(store.client) == len(ROWS)


def test_deletes_by_document_ids_and_filters(store):
    store.delete("doc0")
    assert {n.node_id for n in store.get_nodes()} == {f"n{i}" for i in range(12) if i % 3}
    store.delete_nodes(["n1", "n2", "nope"])
    store.delete_nodes(filters=MetadataFilters(filters=[leaf("tags", F.CONTAINS, "green")]))
    assert sorted(n.node_id for n in store.get_nodes()) == ["n10", "n11", "n5", "n7", "n8"]
    store.clear()
    assert store.get_nodes() == [] and query(store).ids == []
    store.add(row_nodes()[:2])
    assert query(store).ids == ["n0", "n1"], "a cleared store takes nodes again"


def test_nodes_come_back_whole_and_metadata_is_stored_flat():
    store = VecindexVectorStore(dim=DIM)
    metadata = {
        "title": "Notes",
        "pages": 12,
        "ratio": 0.5,
        "public": False,
        "authors": ["Ada", "Alan"],
        "reviewed": None,
        "extra": {"source": "scan", "dpi": 300},
        "chapters": [1, 2, 3],
        "huge": 2**70,
    }
    original = TextNode(
        id_="chunk-1",
        text="The body of the chunk.",
        metadata=metadata,
        excluded_embed_metadata_keys=["extra"],
        embedding=[0.0, 0.0, 0.0, 1.0],  # unit length: a cosine index keeps vectors normalized
        relationships={
            NodeRelationship.SOURCE: RelatedNodeInfo(node_id="notes.md"),
            NodeRelationship.NEXT: RelatedNodeInfo(node_id="chunk-2"),
        },
        start_char_idx=0,
        end_char_idx=22,
    )
    orphan = TextNode(id_="lonely", text="No document.", embedding=[0.0, 1.0, 0.0, 0.0])
    assert store.add([original, orphan]) == ["chunk-1", "lonely"]

    assert store.get_nodes(["chunk-1", "nope", "lonely"]) == [original, orphan]
    hit = query(store, k=1).nodes[0]
    assert hit == original.model_copy(update={"embedding": None})

    stored = store.client.get(["chunk-1"])[0]
    assert stored["doc_id"] == "notes.md" and stored["content"] == "The body of the chunk."
    flat = stored["metadata"]
    assert {k: flat[k] for k in ("title", "pages", "ratio", "public", "authors")} == {
        k: metadata[k] for k in ("title", "pages", "ratio", "public", "authors")
    }
    assert "reviewed" not in flat, "None is a missing key"
    assert json.loads(flat["extra"]) == metadata["extra"] and json.loads(flat["chapters"]) == [1, 2, 3]
    assert flat["huge"] == str(2**70)
    assert flat["ref_doc_id"] == "notes.md" and "The body" not in flat["_node_content"]

    assert store.client.get_chunk_ids_for_document("lonely") == ["lonely"], "its own document"
    store.add([text_node("long", "d", [3.0, 0.0, 0.0, 4.0])])
    assert store.get_nodes(["long"])[0].embedding == pytest.approx([0.6, 0.0, 0.0, 0.8]), "as the index holds it"
    store.delete("d")
    store.delete("lonely")
    assert store.get_nodes() == [original]


def test_chunks_added_without_llama_index_read_as_text_nodes():
    store = VecindexVectorStore(vecindex.VectorIndex(dim=DIM))
    vectors = np.array([vector(0), vector(5)], dtype=np.float32)
    store.client.add_vectors(["x", "y"], ["plain", "plain"], vectors, texts=["ex", "why"], metadatas=[{"n": 1}, None])
    node = query(store, k=1).nodes[0]
    assert (node.node_id, node.text, node.metadata, node.ref_doc_id) == ("x", "ex", {"n": 1}, "plain")


def test_l2_distances_become_similarities_higher_when_closer():
    store = VecindexVectorStore(dim=DIM, config={"metric": "l2"})
    store.add([text_node("far", "d", [3.0, 0.0, 0.0, 0.0]), text_node("near", "d", [1.5, 0.0, 0.0, 0.0])])
    result = query(store)
    assert result.ids == ["near", "far"]
    assert result.similarities == pytest.approx([1 / (1 + 0.25), 1 / (1 + 4.0)])


def test_persist_and_from_persist_dir(tmp_path, store):
    storage = StorageContext.from_defaults(vector_store=store)
    storage.persist(str(tmp_path))
    reopened = VecindexVectorStore.from_persist_dir(str(tmp_path))
    assert query(reopened).ids == query(store).ids
    assert reopened.get_nodes(["n4"]) == store.get_nodes(["n4"])

    store.persist(str(tmp_path / "other"))
    assert VecindexVectorStore.from_persist_path(str(tmp_path / "other")).get_nodes(["n4"]) == store.get_nodes(["n4"])
    with pytest.raises(NotImplementedError):
        store.persist("somewhere", fs=MemoryFileSystem())


def test_a_store_is_made_from_an_index_or_a_dimension():
    with pytest.raises(ValueError):
        VecindexVectorStore()
    with pytest.raises(ValueError):
        VecindexVectorStore(vecindex.VectorIndex(dim=DIM), dim=DIM)
    assert VecindexVectorStore(dim=DIM).add([]) == []


def test_async_methods(store):
    async def main():
        extra = [text_node(f"x{i}", "extra", vector(i), {"topic": "x", "year": 2030 + i}) for i in range(3)]
        assert await store.async_add(extra) == ["x0", "x1", "x2"]
        filters = MetadataFilters(filters=[leaf("topic", F.EQ, "x"), leaf("year", F.GT, 2030)])
        found = await store.aquery(VectorStoreQuery(query_embedding=QUERY, similarity_top_k=5, filters=filters))
        got = await store.aget_nodes(["x0", "n1"])
        await store.adelete_nodes(["x0"])
        await store.adelete("doc0")
        await store.adelete_nodes(filters=MetadataFilters(filters=[leaf("year", F.GTE, 2031)]))
        left = await store.aget_nodes()
        await store.aclear()
        return found, got, left, await store.aget_nodes()

    found, got, left, empty = asyncio.run(main())
    assert found.ids == ["x1", "x2"] and [n.metadata["year"] for n in found.nodes] == [2031, 2032]
    assert [n.node_id for n in got] == ["x0", "n1"] and got[0].embedding == pytest.approx(vector(0))
    assert sorted(n.node_id for n in left) == sorted(f"n{i}" for i in range(12) if i % 3)
    assert empty == []


# --- End to end: VectorStoreIndex, MiniLM, persist, a new process ------------------------------

TOPICS = {
    "astronomy": (
        "Jupiter is the largest planet and has dozens of moons. Its great red spot is a storm.",
        "Telescopes collect light from distant galaxies and nebulae across the night sky.",
        2019,
        ["science", "indoors"],
    ),
    "baking": (
        "Knead the bread dough for ten minutes until it is smooth and elastic.",
        "Let the dough rise in a warm place, then bake the loaf in a hot oven.",
        2021,
        ["food", "indoors"],
    ),
    "sailing": (
        "When the wind grows strong, sailors reef the mainsail to reduce its area.",
        "The helmsman steers the boat through waves while the crew trims the sheets.",
        2022,
        ["sport", "outdoors"],
    ),
    "gardening": (
        "Water tomato plants deeply at the roots in the morning, not on the leaves.",
        "Add compost to the soil in spring so vegetables grow strong.",
        2023,
        ["food", "outdoors"],
    ),
    "music": (
        "Tune the violin strings with the pegs before playing a concerto.",
        "An orchestra follows the conductor, who keeps the tempo with a baton.",
        2020,
        ["art", "indoors"],
    ),
}


def documents():
    return [
        Document(
            id_=topic,
            text=f"{first}\n\n{second}",
            metadata={"topic": topic, "year": year, "tags": tags},
            excluded_embed_metadata_keys=["topic", "year", "tags"],  # embed the prose alone
        )
        for topic, (first, second, year, tags) in TOPICS.items()
    ]


def flt(*items, condition="and"):
    return MetadataFilters(filters=list(items), condition=condition).model_dump(mode="json")


# Retrievals asked before and after the reopening.
MOONS = "Which planet has the most moons?"
WIND = "What do sailors do in strong wind?"
SPECS = {
    "moons": {"query": MOONS, "k": 2},
    "knead": {"query": "How long should I knead bread dough?", "k": 2},
    "wind": {"query": WIND, "k": 3},
    "water": {"query": "How should I water my tomatoes?", "k": 2},
    "violin": {"query": "How do I tune a violin?", "k": 1},
    "moons since 2021": {"query": MOONS, "k": 3, "filters": flt(leaf("year", F.GTE, 2021))},
    "moons outdoors": {"query": MOONS, "k": 4, "filters": flt(leaf("tags", F.CONTAINS, "outdoors"))},
    "wind in science, art or before 2020": {
        "query": WIND,
        "k": 4,
        "filters": flt(leaf("tags", F.ANY, ["science", "art"]), leaf("year", F.LT, 2020), condition="or"),
    },
    "wind not outdoors": {
        "query": WIND,
        "k": 4,
        "filters": flt(leaf("tags", F.CONTAINS, "outdoors"), leaf("year", F.EQ, 2019), condition="not"),
    },
    "wind in music or gardening": {"query": WIND, "k": 4, "doc_ids": ["music", "gardening"]},
}
# The topic each retrieval must rank first (MiniLM is deterministic), or the topics it must
# return (k is the number of nodes that pass).
TOP = {"moons": "astronomy", "wind": "sailing", "water": "gardening", "violin": "music"}
TOPICS_RETURNED = {
    "moons outdoors": {"sailing", "gardening"},
    "wind in science, art or before 2020": {"astronomy", "music"},
    "wind not outdoors": {"music"},
    "wind in music or gardening": {"music", "gardening"},
}


def minilm_dir():
    """Where the binding would look for MiniLM from the repository root, found from this file
    so that pytest may run from any directory."""
    configured = os.environ.get("VECINDEX_MINILM_DIR")
    model_dir = Path(configured) if configured else HERE.parents[1] / "target" / "models" / "all-MiniLM-L6-v2"
    if not (model_dir / "model.safetensors").is_file():
        pytest.skip(f"no MiniLM model in {model_dir}: run scripts/fetch-minilm")
    return model_dir


def load_child():
    """llama_index_child.py as a module, whatever pytest's import mode: the test answers with
    the same function the new process runs."""
    spec = importlib.util.spec_from_file_location("llama_index_child", HERE / "llama_index_child.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vector_store_index_end_to_end_with_minilm_persisted_and_reopened_in_a_new_process(tmp_path):
    model_dir = minilm_dir()
    child = load_child()
    embed_model = VecindexEmbedding("minilm", model_dir=str(model_dir))
    store = VecindexVectorStore(dim=embed_model.dim)
    docs = documents()
    index = VectorStoreIndex.from_documents(
        docs[:4],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed_model,
        transformations=[child.splitter()],
    )
    index.insert(docs[4])
    nodes = store.get_nodes()
    assert len(nodes) == 10, "two paragraphs, two nodes, per document"
    assert {n.ref_doc_id for n in nodes} == set(TOPICS)

    knead = {"query": "How long should I knead bread dough?", "k": 1}
    assert child.answer(index, [knead])[0][0][1] == "baking"
    index.delete_ref_doc("baking")
    assert len(store.client) == 8 and "baking" not in {n.ref_doc_id for n in store.get_nodes()}

    specs = list(SPECS.values())
    before = dict(zip(SPECS, child.answer(index, specs)))
    topics = {name: [topic for _, topic, _ in hits] for name, hits in before.items()}
    for name, spec in SPECS.items():
        assert "baking" not in topics[name], name
        if name in TOPICS_RETURNED:
            assert set(topics[name]) == TOPICS_RETURNED[name], (name, before[name])
        else:
            assert len(topics[name]) == spec["k"], name
    assert {name: topics[name][0] for name in TOP} == TOP, before
    assert all(TOPICS[t][2] >= 2021 for t in topics["moons since 2021"])
    assert len(topics["wind not outdoors"]) == 2, "music's two nodes: astronomy is 2019, baking is gone"

    async_hits = asyncio.run(index.as_retriever(similarity_top_k=3).aretrieve(WIND))
    assert [h.node.node_id for h in async_hits] == [hit[0] for hit in before["wind"]]
    assert [h.score for h in async_hits] == pytest.approx([hit[2] for hit in before["wind"]])

    index.storage_context.persist(persist_dir=str(tmp_path))
    run = subprocess.run(
        [sys.executable, str(HERE / "llama_index_child.py"), str(tmp_path), str(model_dir)],
        input=json.dumps(specs),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    after = dict(zip(SPECS, json.loads(run.stdout)))
    for name in SPECS:
        assert [hit[:2] for hit in after[name]] == [hit[:2] for hit in before[name]], name
        assert [hit[2] for hit in after[name]] == pytest.approx([hit[2] for hit in before[name]], abs=1e-5), name
