"""LangChain's ``VectorStore`` on a vecindex ``VectorIndex`` (``pip install "vecindex[langchain]"``).

```python
from vecindex.langchain import VecindexVectorStore

store = VecindexVectorStore(embeddings, config={"metric": "cosine"})  # any LangChain Embeddings
ids = store.add_texts(["Threads share one index."], [{"lang": "en", "year": 2024}])
docs = store.similarity_search("threads", k=4, filter={"lang": "en", "year": {"$gte": 2020}})
store.save_local("data/store")
store = VecindexVectorStore.load_local("data/store", embeddings)
```

How LangChain's model maps onto the index:

- One LangChain document is one chunk, and its id (a uuid4 when none is given) is both the chunk
  id and the document id. LangChain groups nothing above a document: its id is the unit that
  ``add_documents`` upserts and ``delete`` removes. With ``doc_id == id``, re-adding an id
  replaces its chunk in one atomic step (the index replaces a chunk id within its own
  document), and ``{"$doc_id": {"$in": ids}}`` in a filter selects by LangChain id. An index
  filled through the native API (chunks grouped under other document ids) can be wrapped and
  searched; re-adding one of its chunk ids here raises ``ValueError``, since the index never
  moves a chunk from one document to another.
- Metadata values are stored typed, so that filters can compare them: ``str``, ``int``
  (64-bit), ``float`` (not NaN), ``bool`` and ``list[str]``. Any other value (``None``, a nested
  dict) raises ``TypeError`` and adds nothing.
- ``filter=`` is the index's Mongo-style dict: ``{"lang": "fr", "year": {"$gte": 2020}}``,
  operators ``$eq $ne $gt $gte $lt $lte $in $nin $contains $and $or $not``. It is applied
  inside the index before the top k is chosen: a search returns the k best documents that
  pass, never fewer because documents that fail took their places.
- Scores of ``similarity_search_with_score`` are the index's own: cosine or inner-product
  similarity (higher is closer), or the squared L2 distance (lower is closer).
- Persistence is the index's own directory format (``save_local`` / ``load_local``), never
  pickle, so loading a store executes nothing from the file. The embedding model is not
  saved: pass it again to ``load_local``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, Union, cast

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from ._native import VectorIndex

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._native import Config, Field, Filter, Found, PersistReport, StrPath

__all__ = ["VecindexVectorStore"]

Vector = Union[Sequence[float], npt.NDArray[np.floating]]

# What a search may pass to the index besides the filter; anything else is a mistake (such as
# another store's ``where=``) that would otherwise go unnoticed as an unfiltered search.
_SEARCH_OPTIONS = frozenset({"ef_search", "nprobe"})
# MMR compares the candidates with one another, so it needs their vectors as well.
_MMR_FIELDS: tuple[Field, ...] = ("metadata", "content", "vector")
# Embedded once to learn the dimension when neither ``dim`` nor ``index`` is given.
_PROBE_TEXT = "vecindex dimension probe"


def _similarity_relevance(score: float) -> float:
    """Cosine or inner-product similarity in [-1, 1] (unit vectors) onto [0, 1]."""
    return (1.0 + score) / 2.0


def _squared_l2_relevance(score: float) -> float:
    """A squared L2 distance in [0, 4] (unit vectors) onto [1, 0]: ``1 - d²/4`` equals
    ``(1 + cos) / 2``, so every metric rates the same pair of unit vectors alike."""
    return 1.0 - score / 4.0


_RELEVANCE: dict[str, Callable[[float], float]] = {
    "cosine": _similarity_relevance,
    "inner_product": _similarity_relevance,
    "l2": _squared_l2_relevance,
}


def _reject_unknown(method: str, kwargs: dict[str, Any], allowed: frozenset[str] = frozenset()) -> None:
    """Raises ``TypeError`` for keywords this store does not use, instead of ignoring them."""
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"{method}() got unexpected keyword arguments {unknown}")


def _search_options(method: str, filter: Optional[Filter], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keywords of ``VectorIndex.query``, checked before anything is embedded."""
    _reject_unknown(method, kwargs, _SEARCH_OPTIONS)
    return {"filter": filter, **kwargs}


class _Batch(NamedTuple):
    """The rows of an add: each id is both the chunk's and its document's (see the module)."""

    texts: list[str]
    metadatas: Optional[list[dict[str, Any]]]
    ids: list[str]


def _batch(
    method: str,
    texts: Iterable[str],
    metadatas: Optional[Sequence[dict[str, Any]]],
    ids: Optional[Sequence[Optional[str]]],
    kwargs: dict[str, Any],
) -> _Batch:
    """Texts, metadatas and ids of an add, checked before any text is embedded (an embedding
    call may cost money); a missing id becomes a uuid4."""
    _reject_unknown(method, kwargs)
    text_list = list(texts)
    for name, values in (("metadatas", metadatas), ("ids", ids)):
        if values is not None and len(values) != len(text_list):
            raise ValueError(f"{method}: {len(values)} {name} for {len(text_list)} texts")
    given = ids if ids is not None else [None] * len(text_list)
    return _Batch(
        text_list,
        list(metadatas) if metadatas is not None else None,
        [i if i is not None else str(uuid.uuid4()) for i in given],
    )


def _rows(vectors: Any, count: int) -> npt.NDArray[np.float32]:
    """The embeddings of ``count`` texts as the C-contiguous float32 matrix the index reads."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] != count:
        raise ValueError(f"the embedding returned an array of shape {rows.shape} for {count} texts")
    return rows


def _vector(embedding: Vector) -> npt.NDArray[np.float32]:
    """One query vector as the 1-D float32 array the index reads (the index checks its size)."""
    vector = np.ascontiguousarray(embedding, dtype=np.float32)
    if vector.ndim != 1:
        raise ValueError(f"a query vector is 1-D, got shape {vector.shape}")
    return vector


def _document(found: Found) -> Document:
    return Document(id=found["chunk_id"], page_content=found["content"], metadata=found["metadata"])


def _mmr(query: npt.NDArray[np.float32], hits: list[Found], k: int, lambda_mult: float) -> list[Document]:
    # Typed as lists, the candidates are read with numpy: their arrays serve as they are.
    candidates = cast("list[list[float]]", [hit["vector"] for hit in hits])
    picked = maximal_marginal_relevance(query, candidates, lambda_mult=lambda_mult, k=k)
    return [_document(hits[i]) for i in picked]


class VecindexVectorStore(VectorStore):
    """A LangChain vector store whose rows live in a vecindex ``VectorIndex``.

    The index is safe to share between threads and releases the GIL, so one store serves
    concurrent requests. Async methods that embed (``aadd_texts`` and so ``aadd_documents``,
    ``asimilarity_search`` and its ``_with_score`` variant, ``amax_marginal_relevance_search``,
    ``afrom_texts``) await the embedding's own async methods and then the index's async
    variants: the event loop never waits on an embedding call. The rest (``aget_by_ids``,
    ``adelete``, searches by vector) only touch the index, and langchain-core's defaults already
    run them in a worker thread.
    """

    def __init__(
        self,
        embedding: Embeddings,
        *,
        index: Optional[VectorIndex] = None,
        dim: Optional[int] = None,
        config: Optional[Config] = None,
    ) -> None:
        """Wraps ``index``, or makes a new one of dimension ``dim`` with ``config`` (the
        ``metric``, ``segment_index`` and the rest of ``VectorIndex``'s config). Without
        ``dim``, the embedding embeds one probe text to learn it."""
        if index is not None and (dim is not None or config is not None):
            raise ValueError("give an index, or dim and config for a new one, not both")
        if index is None:
            if dim is None:
                dim = len(embedding.embed_query(_PROBE_TEXT))
            index = VectorIndex(dim=dim, config=config)
        self.embedding = embedding
        self.index = index

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[list[dict[str, Any]]] = None,
        *,
        ids: Optional[list[str]] = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embeds and adds ``texts`` in one atomic step (a bad one adds none); an id already in
        the store is replaced. Returns the ids, generated (uuid4) where none was given."""
        batch = _batch("add_texts", texts, metadatas, ids, kwargs)
        if batch.texts:
            vectors = _rows(self.embedding.embed_documents(batch.texts), len(batch.texts))
            self.index.add_vectors(batch.ids, batch.ids, vectors, texts=batch.texts, metadatas=batch.metadatas)
        return batch.ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[list[dict[str, Any]]] = None,
        *,
        ids: Optional[list[str]] = None,
        **kwargs: Any,
    ) -> list[str]:
        batch = _batch("aadd_texts", texts, metadatas, ids, kwargs)
        if batch.texts:
            vectors = _rows(await self.embedding.aembed_documents(batch.texts), len(batch.texts))
            await self.index.aadd_vectors(batch.ids, batch.ids, vectors, texts=batch.texts, metadatas=batch.metadatas)
        return batch.ids

    def delete(self, ids: Optional[Sequence[str]] = None, *, filter: Optional[Filter] = None, **kwargs: Any) -> bool:
        """Removes the documents of ``ids`` (unknown ids are skipped) and those ``filter``
        accepts. With neither it raises ``ValueError`` rather than empty the store, as
        LangChain's standard indexer tests ask of ``delete()``; ``delete(filter={})`` removes
        everything."""
        _reject_unknown("delete", kwargs)
        if ids is None and filter is None:
            raise ValueError("delete: give ids or a filter (filter={} removes every document)")
        self.index.delete(list(ids) if ids is not None else None, filter=filter)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of ``ids`` in their order; unknown ids are skipped."""
        return [_document(found) for found in self.index.get(list(ids)) if found is not None]

    def similarity_search(
        self, query: str, k: int = 4, *, filter: Optional[Filter] = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to ``query`` that ``filter`` accepts, nearest first.
        ``ef_search`` and ``nprobe`` keywords tune the index's search of its segments."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, *, filter: Optional[Filter] = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, filter=filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, *, filter: Optional[Filter] = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """As ``similarity_search``, with each document's score: the similarity (cosine,
        inner product; higher is closer) or squared L2 distance (lower is closer)."""
        options = _search_options("similarity_search_with_score", filter, kwargs)
        hits = self.index.query(_vector(self.embedding.embed_query(query)), k, **options)
        return [(_document(hit), hit["score"]) for hit in hits]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, *, filter: Optional[Filter] = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        options = _search_options("asimilarity_search_with_score", filter, kwargs)
        hits = await self.index.aquery(_vector(await self.embedding.aembed_query(query)), k, **options)
        return [(_document(hit), hit["score"]) for hit in hits]

    def similarity_search_by_vector(
        self, embedding: Vector, k: int = 4, *, filter: Optional[Filter] = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter=filter, **kwargs)]

    def similarity_search_with_score_by_vector(
        self, embedding: Vector, k: int = 4, *, filter: Optional[Filter] = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """As ``similarity_search_with_score``, for a vector embedded by the caller."""
        options = _search_options("similarity_search_with_score_by_vector", filter, kwargs)
        return [(_document(hit), hit["score"]) for hit in self.index.query(_vector(embedding), k, **options)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Maps the index's score onto [0, 1] for its metric, exactly for unit vectors (what
        most embedding models make); for others inner-product relevance can leave [0, 1], and
        LangChain then warns. Read from the index each time: ``index.load`` may change it."""
        return _RELEVANCE[self.index.metric]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Optional[Filter] = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents among the ``fetch_k`` nearest to ``query`` that ``filter`` accepts,
        each chosen for its similarity to the query less its similarity to those chosen before
        (weighed by ``lambda_mult``: 1 is plain similarity, 0 most diverse)."""
        options = _search_options("max_marginal_relevance_search", filter, kwargs)
        return self._mmr_search(_vector(self.embedding.embed_query(query)), k, fetch_k, lambda_mult, options)

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Optional[Filter] = None,
        **kwargs: Any,
    ) -> list[Document]:
        options = _search_options("amax_marginal_relevance_search", filter, kwargs)
        query_vector = _vector(await self.embedding.aembed_query(query))
        hits = await self.index.aquery(query_vector, max(k, fetch_k), include=_MMR_FIELDS, **options)
        return _mmr(query_vector, hits, k, lambda_mult)

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: Vector,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Optional[Filter] = None,
        **kwargs: Any,
    ) -> list[Document]:
        options = _search_options("max_marginal_relevance_search_by_vector", filter, kwargs)
        return self._mmr_search(_vector(embedding), k, fetch_k, lambda_mult, options)

    def _mmr_search(
        self, query_vector: npt.NDArray[np.float32], k: int, fetch_k: int, lambda_mult: float, options: dict[str, Any]
    ) -> list[Document]:
        """The ``fetch_k`` nearest hits with their vectors, then MMR's choice of ``k`` of them."""
        hits = self.index.query(query_vector, max(k, fetch_k), include=_MMR_FIELDS, **options)
        return _mmr(query_vector, hits, k, lambda_mult)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: Optional[list[dict[str, Any]]] = None,
        *,
        ids: Optional[list[str]] = None,
        config: Optional[Config] = None,
        **kwargs: Any,
    ) -> Self:
        """A new store of ``texts``, its dimension that of their embeddings (no probe text),
        its index made with ``config``."""
        batch = _batch("from_texts", texts, metadatas, ids, kwargs)
        if not batch.texts:
            return cls(embedding, config=config)
        vectors = _rows(embedding.embed_documents(batch.texts), len(batch.texts))
        store = cls(embedding, dim=vectors.shape[1], config=config)
        store.index.add_vectors(batch.ids, batch.ids, vectors, texts=batch.texts, metadatas=batch.metadatas)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: Optional[list[dict[str, Any]]] = None,
        *,
        ids: Optional[list[str]] = None,
        config: Optional[Config] = None,
        **kwargs: Any,
    ) -> Self:
        batch = _batch("afrom_texts", texts, metadatas, ids, kwargs)
        if not batch.texts:
            return cls(embedding, dim=len(await embedding.aembed_query(_PROBE_TEXT)), config=config)
        vectors = _rows(await embedding.aembed_documents(batch.texts), len(batch.texts))
        store = cls(embedding, dim=vectors.shape[1], config=config)
        await store.index.aadd_vectors(batch.ids, batch.ids, vectors, texts=batch.texts, metadatas=batch.metadatas)
        return store

    def save_local(self, folder_path: StrPath) -> PersistReport:
        """Persists the index into the directory ``folder_path``, crash-safe, while other
        threads go on adding. A store loaded from that directory already logs each change
        there as it is made; saving into it compacts the log into a snapshot."""
        return self.index.persist(folder_path)

    @classmethod
    def load_local(cls, folder_path: StrPath, embedding: Embeddings, *, config: Optional[Config] = None) -> Self:
        """The store saved in ``folder_path``, with its metric and dimension; ``embedding``
        must make vectors of that dimension, and ``config`` overrides search settings such as
        ``ef_search``. The store holds the directory's writer lock until it is dropped: one
        writer per directory, in any process."""
        return cls(embedding, index=VectorIndex.open(folder_path, config=config))
