"""LlamaIndex integration: a vector store over ``vecindex.VectorIndex`` and an embedding model
over ``vecindex.Embedder``.

Install the extra (``pip install "vecindex[llama-index]"``) and import this module explicitly;
``import vecindex`` does not import it, so the core package never needs llama-index-core.

Typical use (``documents`` being LlamaIndex ``Document`` objects)::

    from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
    from vecindex.llama_index import VecindexEmbedding, VecindexVectorStore

    embed_model = VecindexEmbedding("minilm")
    store = VecindexVectorStore(dim=embed_model.dim)
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed_model
    )
    index.storage_context.persist("storage")
    # later, in any process:
    storage = StorageContext.from_defaults(
        persist_dir="storage", vector_store=VecindexVectorStore.from_persist_dir("storage")
    )
    index = load_index_from_storage(storage, embed_model=embed_model)

How LlamaIndex's model maps onto vecindex:

- A node is one chunk: ``node_id`` is the chunk id, ``ref_doc_id`` the document id (a node
  without one is a document of its own, under its node id), its text the chunk's content.
- The chunk's metadata is the node's metadata plus what llama-index-core's
  ``node_to_metadata_dict`` adds: ``_node_content`` (the rest of the node as JSON, so that the
  node comes back whole: relationships, templates, excluded keys, metadata of any type) and
  ``_node_type``, ``doc_id``, ``document_id``, ``ref_doc_id``. vecindex stores ``str``,
  ``int``, ``float``, ``bool`` and ``list[str]``; a ``None`` value is left out (a missing key,
  which is how vecindex has "no value") and any other value (a dict, a list of numbers) is
  stored as its JSON text, so filters see that text.
- ``MetadataFilters`` become vecindex filters, evaluated inside the index before the top k is
  chosen. An operator vecindex cannot evaluate raises ``NotImplementedError`` and an operand it
  cannot compare raises ``ValueError``, before anything is searched; nothing is filtered in
  Python after the search (which would return fewer than k nodes, or the wrong ones).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.simple import DEFAULT_VECTOR_STORE, NAMESPACE_SEP
from llama_index.core.vector_stores.types import (
    DEFAULT_PERSIST_DIR,
    DEFAULT_PERSIST_FNAME,
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from ._native import Embedder, VectorIndex

if TYPE_CHECKING:  # a type of the stubs only
    from ._native import MetadataValue

__all__ = ["VecindexEmbedding", "VecindexVectorStore", "to_vecindex_filter"]

# Operators with a vecindex operator of the same meaning, taking the filter's value as it is.
_DIRECT_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}

# Why the others have no vecindex equivalent, for the error message.
_UNSUPPORTED_OPERATORS = {
    FilterOperator.TEXT_MATCH: "vecindex filters have no substring or text match on metadata values",
    FilterOperator.TEXT_MATCH_INSENSITIVE: "vecindex filters have no substring or text match on metadata values",
    FilterOperator.IS_EMPTY: "vecindex filters cannot test whether a key is missing or empty",
}

# What the store reads back of a chunk: enough to rebuild its node (and its vector for get_nodes).
_NODE_FIELDS = ["metadata", "content"]
_NODE_FIELDS_WITH_VECTOR = ["metadata", "content", "vector"]

_INT64 = range(-(2**63), 2**63)


def to_vecindex_filter(filters: MetadataFilters) -> dict[str, Any]:
    """The vecindex filter dict of LlamaIndex ``filters``, with llama-index-core's meaning.

    EQ, NE, GT, GTE, LT, LTE, IN, NIN and CONTAINS map to the vecindex operator of the same
    name (CONTAINS: a list of strings holding the value; a string field does not match, as
    vecindex has no substring match). ANY and ALL become an ``$or`` / ``$and`` of ``$contains``
    (ALL of an empty list raises: llama-index-core reads it as "has the key").
    AND and OR combine as they say; NOT passes a node that none of the filters accept, as
    llama-index-core's own stores read it. Filters with no filters accept every node, as in
    llama-index-core. TEXT_MATCH, TEXT_MATCH_INSENSITIVE and IS_EMPTY raise
    ``NotImplementedError``: evaluating them after the search would drop hits from the top k.
    """
    if not filters.filters:
        return {"$and": []}
    parts = [
        to_vecindex_filter(item) if isinstance(item, MetadataFilters) else _one_filter(item) for item in filters.filters
    ]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return {"$and": parts}
    if condition == FilterCondition.OR:
        return {"$or": parts}
    if condition == FilterCondition.NOT:
        return {"$not": {"$or": parts}}
    raise NotImplementedError(f"vecindex has no equivalent of the filter condition {condition!r}")


def _one_filter(item: MetadataFilter) -> dict[str, Any]:
    """One ``MetadataFilter`` as a vecindex filter; operand types are left to vecindex to check
    (it raises ``ValueError`` for, say, a range bound that is not a number)."""
    key, operator, value = item.key, item.operator, item.value
    if key.startswith("$"):
        # vecindex reads "$..." keys as operators ("$doc_id", "$and"), never as metadata keys.
        raise ValueError(f"vecindex filters cannot name a metadata key starting with '$': {key!r}")
    if operator in _DIRECT_OPERATORS:
        return {key: {_DIRECT_OPERATORS[operator]: value}}
    if operator in (FilterOperator.ANY, FilterOperator.ALL):
        if not isinstance(value, list):
            raise ValueError(f"filter operator {operator.name} on {key!r} takes a list of strings, not {value!r}")
        if operator == FilterOperator.ALL and not value:
            # llama-index-core passes a node that has the key; vecindex cannot test for a key.
            raise ValueError(f"filter operator ALL on {key!r} takes at least one value")
        contains = [{key: {"$contains": v}} for v in value]
        return {"$or": contains} if operator == FilterOperator.ANY else {"$and": contains}
    reason = _UNSUPPORTED_OPERATORS.get(operator, "vecindex has no equivalent")
    raise NotImplementedError(f"filter operator {operator.name} on {key!r}: {reason}")


def _storable(value: Any) -> bool:
    """Whether vecindex stores ``value`` as a metadata value of its own type."""
    if isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return value in _INT64
    if isinstance(value, float):
        return not math.isnan(value)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _chunk_metadata(node: BaseNode) -> dict[str, MetadataValue]:
    """The chunk metadata of ``node``: see the module's docstring. The text is left out of
    ``_node_content`` since the chunk's content holds it."""
    metadata: dict[str, MetadataValue] = {}
    for key, value in node_to_metadata_dict(node, remove_text=True).items():
        if value is not None:
            metadata[key] = value if _storable(value) else json.dumps(value, ensure_ascii=False)
    return metadata


def _to_node(found: Mapping[str, Any]) -> BaseNode:
    """The node of a hit or a chunk of ``get``. A chunk added without this store (no
    ``_node_content``: the plain vecindex API) becomes a ``TextNode`` of its content and
    metadata, its document as the source, so LlamaIndex can read any vecindex index."""
    metadata = found.get("metadata", {})
    node: BaseNode
    if "_node_content" in metadata:
        node = metadata_dict_to_node(metadata, text=found.get("content"))
    else:
        node = TextNode(
            id_=found["chunk_id"],
            text=found.get("content", ""),
            metadata=dict(metadata),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=found["doc_id"])},
        )
    if "vector" in found:
        node.embedding = found["vector"].tolist()
    return node


def _rows(nodes: Sequence[BaseNode]) -> dict[str, Any]:
    """The keywords of ``VectorIndex.add_vectors`` for ``nodes`` (see the module's docstring)."""
    return {
        "ids": [node.node_id for node in nodes],
        "doc_ids": [node.ref_doc_id or node.node_id for node in nodes],
        "vectors": np.asarray([node.get_embedding() for node in nodes], dtype=np.float32),
        "texts": [node.get_content(metadata_mode=MetadataMode.NONE) for node in nodes],
        "metadatas": [_chunk_metadata(node) for node in nodes],
    }


def _check_local(fs: Optional[AbstractFileSystem]) -> None:
    """vecindex writes its directory itself (crash-safe, with fsync): only a local path works."""
    if fs is not None and not isinstance(fs, LocalFileSystem):
        raise NotImplementedError(f"VecindexVectorStore persists to a local directory, not to {type(fs).__name__}")


class VecindexVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store in a ``vecindex.VectorIndex``.

    It stores text (``stores_text``), so a ``VectorStoreIndex`` keeps no node in its docstore:
    the index alone answers queries, and ``persist`` writes vecindex's own directory (no
    pickle, no JSON copy of the vectors). Filters run inside the index (see
    ``to_vecindex_filter``). Every method is safe to call from several threads; the async ones
    run the index's work on worker threads, the GIL released.
    """

    stores_text: bool = True

    _index: VectorIndex = PrivateAttr()
    _l2: bool = PrivateAttr()

    def __init__(
        self,
        index: Optional[VectorIndex] = None,
        *,
        dim: Optional[int] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Over ``index``, or over a new ``VectorIndex(dim=dim, config=config)``: ``config`` as
        vecindex takes it (``metric``, ``segment_index``, ``head_capacity``, ...)."""
        if index is not None and (dim is not None or config is not None):
            raise ValueError("give an index, or dim and config for a new one, not both")
        if index is None:
            if dim is None:
                raise ValueError("give the dimension of the embeddings (dim=...) or an index")
            index = VectorIndex(dim=dim, config=dict(config) if config is not None else None)
        super().__init__()
        self._index = index
        # An index keeps its metric for life; only L2 scores need turning into similarities.
        self._l2 = index.metric == "l2"

    @classmethod
    def class_name(cls) -> str:
        return "VecindexVectorStore"

    @property
    def client(self) -> VectorIndex:
        """The ``vecindex.VectorIndex``, for what LlamaIndex has no call for (stats, merges)."""
        return self._index

    @classmethod
    def from_persist_path(cls, persist_path: str) -> VecindexVectorStore:
        """The store of the vecindex directory ``persist_path`` (written by ``persist``)."""
        return cls(VectorIndex.open(persist_path))

    @classmethod
    def from_persist_dir(
        cls, persist_dir: str = DEFAULT_PERSIST_DIR, namespace: str = DEFAULT_VECTOR_STORE
    ) -> VecindexVectorStore:
        """The store that ``StorageContext.persist(persist_dir)`` wrote. LlamaIndex names the
        path of a vector store ``{namespace}__vector_store.json``; here it is a directory."""
        return cls.from_persist_path(os.path.join(persist_dir, f"{namespace}{NAMESPACE_SEP}{DEFAULT_PERSIST_FNAME}"))

    def persist(
        self,
        persist_path: str = os.path.join(DEFAULT_PERSIST_DIR, DEFAULT_PERSIST_FNAME),
        fs: Optional[AbstractFileSystem] = None,
    ) -> None:
        """Writes a crash-safe snapshot of the index into the directory ``persist_path``;
        writers and searches go on meanwhile."""
        _check_local(fs)
        self._index.persist(persist_path)

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Adds (or replaces, by node id) ``nodes``, which must carry their embeddings, all or
        none; returns their ids."""
        if not nodes:
            return []
        rows = _rows(nodes)
        self._index.add_vectors(**rows)
        return rows["ids"]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        if not nodes:
            return []
        rows = _rows(nodes)
        await self._index.aadd_vectors(**rows)
        return rows["ids"]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the document ``ref_doc_id``."""
        self._index.delete(doc_ids=[ref_doc_id])

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await self._index.adelete(doc_ids=[ref_doc_id])

    def delete_nodes(
        self,
        node_ids: Optional[list[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        """Deletes the nodes ``node_ids``, or the nodes ``filters`` accept (not both)."""
        self._index.delete(**self._delete_args(node_ids, filters))

    async def adelete_nodes(
        self,
        node_ids: Optional[list[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        await self._index.adelete(**self._delete_args(node_ids, filters))

    def get_nodes(
        self,
        node_ids: Optional[list[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> list[BaseNode]:
        """The nodes of ``node_ids`` that exist, in order (every node when ``node_ids`` is
        ``None``), with their embeddings as the index holds them: of unit length in a cosine
        index. ``filters`` raise ``NotImplementedError``: vecindex has no call that lists the
        chunks a filter accepts."""
        _check_no_get_filters(filters)
        ids = self._all_ids() if node_ids is None else list(node_ids)
        return _found_nodes(self._index.get(ids, include=_NODE_FIELDS_WITH_VECTOR))

    async def aget_nodes(
        self,
        node_ids: Optional[list[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> list[BaseNode]:
        _check_no_get_filters(filters)
        ids = await asyncio.to_thread(self._all_ids) if node_ids is None else list(node_ids)
        return _found_nodes(await self._index.aget(ids, include=_NODE_FIELDS_WITH_VECTOR))

    def clear(self) -> None:
        """Removes every node (the index keeps its dimension and settings)."""
        self._index.clear()

    async def aclear(self) -> None:
        await asyncio.to_thread(self._index.clear)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest ``query_embedding`` among those that
        ``filters`` and ``doc_ids`` accept, chosen inside the index. Only the DEFAULT mode, and
        no ``node_ids`` (vecindex has no filter on chunk ids). ``similarities`` are the
        index's scores (cosine, inner product), or ``1 / (1 + d)`` of the squared distance
        ``d`` in an L2 index: higher is closer, as LlamaIndex's postprocessors expect."""
        vector, search_kwargs = self._query_args(query)
        return self._result(self._index.query(vector, **search_kwargs))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        vector, search_kwargs = self._query_args(query)
        return self._result(await self._index.aquery(vector, **search_kwargs))

    def _query_args(self, query: VectorStoreQuery) -> tuple[np.ndarray, dict[str, Any]]:
        """The vector and keywords of ``VectorIndex.query`` for ``query``; raises for what the
        index cannot answer as asked."""
        if query.mode != VectorStoreQueryMode.DEFAULT:
            mode = VectorStoreQueryMode(query.mode).value
            raise NotImplementedError(f"VecindexVectorStore answers the DEFAULT query mode only, not {mode!r}")
        if query.query_embedding is None:
            raise ValueError("VecindexVectorStore needs the query's embedding (query_embedding)")
        # An empty list restricts nothing: VectorStoreIndex.as_retriever passes node_ids=[]
        # when the vector store holds the nodes (its own list of them is empty).
        if query.node_ids:
            raise NotImplementedError("vecindex filters cannot restrict a query to chunk ids (node_ids)")
        parts = []
        if query.filters is not None:
            parts.append(to_vecindex_filter(query.filters))
        if query.doc_ids:
            parts.append({"$doc_id": {"$in": list(query.doc_ids)}})
        kwargs: dict[str, Any] = {"k": query.similarity_top_k, "include": _NODE_FIELDS}
        if parts:
            kwargs["filter"] = {"$and": parts}
        return np.asarray(query.query_embedding, dtype=np.float32), kwargs

    def _result(self, hits: list[Mapping[str, Any]]) -> VectorStoreQueryResult:
        scores = [hit["score"] for hit in hits]
        return VectorStoreQueryResult(
            nodes=[_to_node(hit) for hit in hits],
            similarities=[1.0 / (1.0 + s) for s in scores] if self._l2 else scores,
            ids=[hit["chunk_id"] for hit in hits],
        )

    def _all_ids(self) -> list[str]:
        """Every chunk id, document by document."""
        index = self._index
        return [chunk for doc in index.get_document_ids() for chunk in index.get_chunk_ids_for_document(doc)]

    @staticmethod
    def _delete_args(node_ids: Optional[list[str]], filters: Optional[MetadataFilters]) -> dict[str, Any]:
        """The keywords of ``VectorIndex.delete``. llama-index-core deletes the nodes of
        ``node_ids`` that ``filters`` accept; vecindex would delete either (and has no filter
        on chunk ids), so both at once raise rather than delete more than asked."""
        if node_ids is not None and filters is not None:
            raise NotImplementedError("vecindex cannot delete the nodes of node_ids that filters accept: give one")
        if node_ids is not None:
            return {"ids": list(node_ids)}
        if filters is not None:
            return {"filter": to_vecindex_filter(filters)}
        raise ValueError("delete_nodes: give node_ids or filters (clear() removes every node)")


def _check_no_get_filters(filters: Optional[MetadataFilters]) -> None:
    """vecindex applies filters only to a search's candidates or to deletes; getting by filter
    would mean evaluating it in Python, with semantics of its own."""
    if filters is not None:
        raise NotImplementedError("vecindex cannot list the chunks a filter accepts: get_nodes takes node_ids only")


def _found_nodes(found: list[Optional[Mapping[str, Any]]]) -> list[BaseNode]:
    return [_to_node(chunk) for chunk in found if chunk is not None]


class VecindexEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model over ``vecindex.Embedder``: the binding's MiniLM
    (all-MiniLM-L6-v2 in Rust, weights from ``scripts/fetch-minilm``; no torch, no model hub) or
    its hashing embedder, so that LlamaIndex embeds nodes and queries with the same model a
    ``VectorIndex`` would. The Rust embedders release the GIL; the async methods embed on a
    worker thread."""

    _embedder: Embedder = PrivateAttr()

    def __init__(
        self,
        embedder: str = "minilm",
        *,
        dim: Optional[int] = None,
        model_dir: Optional[str] = None,
        embed_batch_size: int = 32,
    ) -> None:
        """``embedder``, ``dim`` and ``model_dir`` as ``vecindex.Embedder`` takes them
        (MiniLM's weights: ``model_dir``, else ``$VECINDEX_MINILM_DIR``, else
        ``target/models/all-MiniLM-L6-v2``)."""
        native = Embedder(embedder, dim=dim, model_dir=model_dir)
        super().__init__(model_name=f"vecindex/{native.name}", embed_batch_size=embed_batch_size)
        self._embedder = native

    @classmethod
    def class_name(cls) -> str:
        return "VecindexEmbedding"

    @property
    def dim(self) -> int:
        """The length of the embeddings, for ``VecindexVectorStore(dim=...)``."""
        return self._embedder.dim

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._aget_text_embeddings([query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embedder.embed(texts).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
