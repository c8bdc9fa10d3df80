"""The LangChain adapter (vecindex.langchain): LangChain's standard ``VectorStoreIntegrationTests``
suite unchanged, then what it does not cover: filters, scores and relevance per metric, MMR,
native async embedding, a save and load across processes, and bad input."""

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests

from vecindex.langchain import VecindexVectorStore

DIM = 6


# The suite's async tests are plain coroutines, and pytest-asyncio runs in strict mode here: the
# class mark runs them on an event loop. The sync tests ignore the mark, but pytest-asyncio warns
# about each of them, which the filter silences.
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test <Function .*> is marked with '@pytest.mark.asyncio' but it is not")
class TestStandardSuite(VectorStoreIntegrationTests):
    """The suite on the store as a user gets it: default config (cosine, HNSW32 segments), the
    dimension learned from the embedding, a new empty index per test."""

    @pytest.fixture
    def vectorstore(self) -> VectorStore:
        return VecindexVectorStore(self.get_embeddings())


class TableEmbeddings(Embeddings):
    """Each text's vector from a table, so a test fixes every angle it checks; an unknown text
    is a KeyError."""

    def __init__(self, table: dict):
        self.table = table

    def embed_documents(self, texts):
        return [list(self.table[text]) for text in texts]

    def embed_query(self, text):
        return list(self.table[text])


class AsyncOnlyEmbeddings(DeterministicFakeEmbedding):
    """Fails when embedding synchronously: an async method that ran the sync path in a thread
    (langchain-core's default) would fail here."""

    def embed_documents(self, texts):
        raise AssertionError("the sync embed_documents was called")

    def embed_query(self, text):
        raise AssertionError("the sync embed_query was called")

    async def aembed_documents(self, texts):
        return super().embed_documents(texts)

    async def aembed_query(self, text):
        return super().embed_query(text)


class CountingEmbeddings(DeterministicFakeEmbedding):
    """Counts the texts it embeds, to show what a call embedded (or did not)."""

    calls: int = 0

    def embed_documents(self, texts):
        self.calls += len(texts)
        return super().embed_documents(texts)

    def embed_query(self, text):
        self.calls += 1
        return super().embed_query(text)


LIBRARY = [
    ("en-2019", "a quick brown fox", {"lang": "en", "year": 2019, "tags": ["animal"], "draft": False}),
    ("en-2021", "the lazy dog sleeps", {"lang": "en", "year": 2021, "tags": ["animal", "sleep"], "draft": True}),
    ("fr-2022", "le renard brun", {"lang": "fr", "year": 2022, "tags": ["animal"], "draft": False}),
    ("fr-2018", "un chien paresseux", {"lang": "fr", "year": 2018, "tags": [], "draft": False}),
    ("de-2023", "ein schneller Fuchs", {"lang": "de", "year": 2023, "tags": ["sleep"], "score": 0.5, "draft": True}),
]


def library_store(config=None) -> VecindexVectorStore:
    ids, texts, metadatas = (list(column) for column in zip(*LIBRARY, strict=True))
    embedding = DeterministicFakeEmbedding(size=DIM)
    return VecindexVectorStore.from_texts(texts, embedding, metadatas, ids=ids, config=config)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"lang": "fr"}, {"fr-2022", "fr-2018"}),
        ({"year": {"$gte": 2021}, "draft": False}, {"fr-2022"}),
        ({"tags": {"$contains": "sleep"}}, {"en-2021", "de-2023"}),
        ({"$or": [{"lang": "de"}, {"year": {"$lt": 2019}}]}, {"de-2023", "fr-2018"}),
        ({"$not": {"lang": {"$in": ["en", "fr"]}}}, {"de-2023"}),
        ({"score": {"$gt": 0.1}}, {"de-2023"}),
        ({"$doc_id": {"$in": ["en-2019", "fr-2018", "nope"]}}, {"en-2019", "fr-2018"}),
    ],
)
def test_filters_select_before_the_top_k(flt, expected):
    """Every search accepts the index's filter dict, applied before the top k is chosen: k as
    large as the number of documents that pass gets all of them (a filter applied to the k
    nearest would miss those farther away), metadata intact."""
    store = library_store()
    by_id = {doc_id: metadata for doc_id, _, metadata in LIBRARY}
    k = len(expected)
    for docs in (
        store.similarity_search("fox", k=k, filter=flt),
        store.similarity_search("fox", k=k, filter=flt, ef_search=16, nprobe=2),
        [doc for doc, _ in store.similarity_search_with_relevance_scores("fox", k=k, filter=flt)],
        store.max_marginal_relevance_search("fox", k=k, fetch_k=k, filter=flt),
        asyncio.run(store.asimilarity_search("fox", k=k, filter=flt)),
    ):
        assert {doc.id for doc in docs} == expected
        assert all(doc.metadata == by_id[doc.id] for doc in docs)


def test_delete_by_filter_and_ids_and_get_by_ids():
    store = library_store()
    assert store.delete(filter={"lang": "fr"}) is True
    assert store.delete(["en-2019", "never-added"]) is True
    got = store.get_by_ids(["de-2023", "fr-2022", "en-2019", "en-2021"])
    assert [doc.id for doc in got] == ["de-2023", "en-2021"], "in the order asked, unknown ids skipped"
    assert got[0] == Document(id="de-2023", page_content="ein schneller Fuchs", metadata=LIBRARY[4][2])
    store.delete(filter={})
    assert store.similarity_search("fox", k=3) == []


@pytest.mark.parametrize(
    ("metric", "raw"),
    [("cosine", [1.0, 0.0, -1.0]), ("inner_product", [1.0, 0.0, -1.0]), ("l2", [0.0, 2.0, 4.0])],
)
def test_raw_scores_per_metric_and_relevance_in_0_1(metric, raw):
    """Raw scores are the metric's (similarity, or squared L2 distance); relevance rates the
    same unit vectors alike under every metric: same 1, orthogonal 0.5, opposite 0."""
    table = {"same": [1, 0, 0, 0], "orthogonal": [0, 1, 0, 0], "opposite": [-1, 0, 0, 0], "query": [1, 0, 0, 0]}
    store = VecindexVectorStore(TableEmbeddings(table), dim=4, config={"metric": metric})
    store.add_texts(["same", "orthogonal", "opposite"], ids=["s", "o", "x"])
    scored = store.similarity_search_with_score("query", k=3)
    assert [doc.id for doc, _ in scored] == ["s", "o", "x"]
    np.testing.assert_allclose([score for _, score in scored], raw, atol=1e-6)
    relevance = store.similarity_search_with_relevance_scores("query", k=3)
    np.testing.assert_allclose([score for _, score in relevance], [1.0, 0.5, 0.0], atol=1e-6)
    kept = store.similarity_search_with_relevance_scores("query", k=3, score_threshold=0.4)
    assert [doc.id for doc, _ in kept] == ["s", "o"]


def test_mmr_trades_a_near_duplicate_for_a_different_document():
    table = {
        "query": [1.0, 0.0, 0.0],
        "best": [1.0, 0.1, 0.0],
        "near duplicate of best": [1.0, 0.12, 0.0],
        "different": [0.7, 0.0, 0.7],
    }
    store = VecindexVectorStore(TableEmbeddings(table), dim=3)
    store.add_texts(list(table)[1:], ids=["best", "dup", "diff"])
    assert [doc.id for doc in store.similarity_search("query", k=2)] == ["best", "dup"]
    assert [doc.id for doc in store.max_marginal_relevance_search("query", k=2, fetch_k=3)] == ["best", "diff"]
    by_vector = store.max_marginal_relevance_search_by_vector(np.array(table["query"]), k=2, lambda_mult=0.5)
    assert [doc.id for doc in by_vector] == ["best", "diff"]
    assert [doc.id for doc in store.max_marginal_relevance_search("query", k=2, lambda_mult=1.0)] == ["best", "dup"]
    assert store.max_marginal_relevance_search("query", k=2, filter={"$doc_id": "nope"}) == []


def test_async_methods_await_async_embeddings():
    async def main():
        store = await VecindexVectorStore.afrom_texts(["foo", "bar"], AsyncOnlyEmbeddings(size=DIM), ids=["1", "2"])
        await store.aadd_documents([Document(page_content="baz", metadata={"n": 3})], ids=["3"])
        nearest = await store.asimilarity_search("baz", k=1)
        scored = await store.asimilarity_search_with_score("bar", k=1, filter={"$doc_id": {"$in": ["1", "2"]}})
        mmr = await store.amax_marginal_relevance_search("foo", k=2, fetch_k=3)
        return nearest, scored, mmr

    nearest, scored, mmr = asyncio.run(main())
    assert nearest == [Document(id="3", page_content="baz", metadata={"n": 3})]
    assert scored[0][0].id == "2" and scored[0][1] == pytest.approx(1.0)
    assert mmr[0].id == "1" and len(mmr) == 2


def test_from_texts_learns_the_dimension_from_the_texts_without_a_probe():
    embedding = CountingEmbeddings(size=DIM)
    store = VecindexVectorStore.from_documents(
        [Document(id="a", page_content="alpha"), Document(page_content="beta", metadata={"k": "v"})], embedding
    )
    assert embedding.calls == 2, "the two texts, and nothing more"
    assert store.index.dim == DIM and len(store.index) == 2
    assert store.get_by_ids(["a"]) == [Document(id="a", page_content="alpha")]
    empty = VecindexVectorStore.from_texts([], embedding, config={"metric": "l2"})
    assert empty.index.dim == DIM and empty.similarity_search("alpha") == []


CHILD = """
import json, sys
from langchain_core.embeddings import DeterministicFakeEmbedding
from vecindex.langchain import VecindexVectorStore

path = sys.argv[1]
store = VecindexVectorStore.load_local(path, DeterministicFakeEmbedding(size=6))
found = store.similarity_search_with_score("fox", k=3, filter={"draft": False})
store.add_texts(["added by the child"], [{"lang": "nl"}], ids=["child"])
store.delete(["en-2021"])
store.save_local(path)
print(json.dumps([[doc.id, doc.page_content, doc.metadata, score] for doc, score in found]))
"""


def test_save_and_load_in_a_new_process(tmp_path):
    """A store saved here loads in another Python process with its metric and metadata, answers
    the same filtered search with the same scores, and what that process changes and saves
    loads back here."""
    store = library_store(config={"metric": "l2"})
    expected = store.similarity_search_with_score("fox", k=3, filter={"draft": False})
    store.save_local(tmp_path / "store")

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "store")], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    found = json.loads(child.stdout)
    assert found == [[doc.id, doc.page_content, doc.metadata, score] for doc, score in expected]

    loaded = VecindexVectorStore.load_local(tmp_path / "store", DeterministicFakeEmbedding(size=DIM))
    assert loaded.index.stats()["metric"] == "l2"
    assert [doc.id for doc in loaded.get_by_ids(["child", "en-2021", "fr-2022"])] == ["child", "fr-2022"]
    assert loaded.get_by_ids(["child"])[0].metadata == {"lang": "nl"}


def test_bad_input_raises_and_changes_nothing():
    embedding = CountingEmbeddings(size=DIM)
    store = VecindexVectorStore(embedding, dim=DIM)
    store.add_texts(["kept"], ids=["kept"])
    before = embedding.calls

    # Checked before anything is embedded.
    with pytest.raises(ValueError, match="2 metadatas for 1 texts"):
        store.add_texts(["x"], [{}, {}])
    with pytest.raises(ValueError, match="2 ids for 1 texts"):
        store.add_texts(["x"], ids=["a", "b"])
    with pytest.raises(TypeError, match="where"):
        store.similarity_search("kept", where={"lang": "en"})
    with pytest.raises(TypeError, match="upsert"):
        store.add_texts(["x"], upsert=True)
    with pytest.raises(ValueError, match="give ids or a filter"):
        store.delete()
    assert embedding.calls == before

    # Refused by the index: nothing of the batch is added.
    with pytest.raises(TypeError):
        store.add_texts(["x", "y"], [{"ok": 1}, {"missing": None}])
    with pytest.raises(TypeError):
        store.add_texts(["x"], [{"nested": {"a": 1}}])
    with pytest.raises(ValueError):
        store.add_texts(["x", "y"], ids=["same", "same"])
    with pytest.raises(ValueError):
        store.add_texts(["x"], ids=[""])
    with pytest.raises(TypeError):
        store.similarity_search("kept", filter=lambda doc: True)
    with pytest.raises(ValueError):
        store.similarity_search("kept", filter={"n": {"$regex": "x"}})
    with pytest.raises(ValueError):
        store.similarity_search_by_vector([1.0, 0.0], k=1)
    with pytest.raises(ValueError):
        store.similarity_search_by_vector([[1.0] * DIM], k=1)
    with pytest.raises(ValueError):
        store.similarity_search("kept", k=0)
    with pytest.raises(ValueError):
        VecindexVectorStore(embedding, index=store.index, dim=DIM)
    assert [doc.id for doc in store.similarity_search("kept", k=10)] == ["kept"]

    wrong_dim = VecindexVectorStore(DeterministicFakeEmbedding(size=DIM + 1), index=store.index)
    with pytest.raises(ValueError, match="dimension"):
        wrong_dim.add_texts(["x"])
    assert len(store.index) == 1


def test_load_local_of_a_missing_directory_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        VecindexVectorStore.load_local(tmp_path / "nothing here", DeterministicFakeEmbedding(size=DIM))


def test_the_package_does_not_import_langchain():
    """``import vecindex`` must work without the langchain extra installed."""
    code = "import sys, vecindex; sys.exit('langchain_core' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
