"""Type stubs of the native module (python/src); ``import vecindex`` re-exports them."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any, Literal, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

class CorruptIndexError(OSError):
    """An index directory's files are damaged beyond what opening it can heal."""

MetadataValue = Union[str, int, float, bool, list[str]]
"""A metadata value: ``int`` fits in 64 bits, a ``float`` is not NaN, a list holds only ``str``."""

Filter = Mapping[str, Any]
"""A filter in the JSON form: ``{"lang": "fr", "year": {"$gte": 2020}}``; operators ``$eq $ne
$gt $gte $lt $lte $in $nin $contains``, ``$and $or $not``, ``{"$doc_id": {"$in": [...]}}``."""

class Chunk:
    """One piece of a document: ids, text, and typed metadata."""

    chunk_id: str
    doc_id: str
    content: str
    metadata: dict[str, MetadataValue]
    def __init__(
        self, chunk_id: str, doc_id: str, content: str, metadata: Optional[Mapping[str, MetadataValue]] = None
    ) -> None: ...

class ChunkDict(TypedDict, total=False):
    chunk_id: str
    doc_id: str
    content: str
    metadata: dict[str, MetadataValue]

class Hit(TypedDict):
    chunk_id: str
    doc_id: str
    score: float
    content: str
    metadata: dict[str, MetadataValue]

class Found(TypedDict, total=False):
    """A hit of ``query`` or a chunk of ``get``: the ids (and ``score`` for a hit) always, the
    rest as ``include`` names them."""

    chunk_id: str
    doc_id: str
    score: float
    metadata: dict[str, MetadataValue]
    content: str
    vector: npt.NDArray[np.float32]

Field = Literal["metadata", "content", "vector"]

class PersistReport(TypedDict):
    generation: int
    chunks: int
    files_written: int
    bytes_written: int
    seconds: float

class SegmentStats(TypedDict):
    id: int
    kind: str  # "head", "frozen", "exact", or the FAISS factory string
    rows: int
    live_rows: int
    bytes: int
    mapped: bool
    build_seconds: Optional[float]
    indexed_vectors: Optional[int]

class Stats(TypedDict):
    dim: int
    metric: str
    chunks: int
    documents: int
    next_seq: int
    generation: int
    vocabulary_terms: int
    head_rows: int
    segments: list[SegmentStats]

class Config(TypedDict, total=False):
    metric: str  # "cosine" (default), "inner_product" or "l2"
    head_capacity: int
    segment_index: str  # "exact", or a FAISS factory string such as "HNSW32" (default) or "Flat"
    ef_search: int
    background: bool
    model_dir: str

EmbedderArg = Union[str, Callable[[list[str]], Any], None]
ChunkLike = Union[Chunk, ChunkDict, Mapping[str, Any]]
StrPath = Union[str, PathLike[str]]

class Embedder:
    """An embedder of the binding on its own: ``Embedder("minilm").embed(["text"])``."""

    def __init__(self, embedder: str = "hashing", dim: Optional[int] = None, model_dir: Optional[StrPath] = None) -> None: ...
    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """A ``(len(texts), dim)`` float32 array."""
    @property
    def dim(self) -> int: ...
    @property
    def name(self) -> str: ...

class VectorIndex:
    """A concurrent vector index of document chunks; safe to share between threads."""

    def __init__(self, dim: Optional[int] = None, embedder: EmbedderArg = None, config: Optional[Config] = None) -> None:
        """A new, empty index. ``embedder``: "hashing" (default), "minilm" (ONNX Runtime),
        "minilm-int8", "minilm-candle", or a callable
        taking ``list[str]`` and returning a 2-D array of shape ``(len(texts), dim)``."""
    @staticmethod
    def open(path: StrPath, embedder: EmbedderArg = None, config: Optional[Config] = None) -> VectorIndex:
        """Opens an index persisted with ``persist(path)``."""
    def load(self, path: StrPath) -> None:
        """Replaces this index with the one persisted in ``path``."""
    def add_chunk(self, chunk: ChunkLike) -> None: ...
    def add_chunks(self, chunks: Iterable[ChunkLike]) -> None:
        """Adds chunks of any documents in one atomic step: a bad one raises and adds nothing."""
    def add(self, doc_id: str, chunks: Iterable[ChunkLike]) -> None:
        """Replaces every chunk of ``doc_id`` with ``chunks``, atomically."""
    def remove(self, doc_id: str) -> int: ...
    def remove_chunk(self, chunk_id: str) -> bool: ...
    def search(
        self,
        query: str,
        top_k: int = 5,
        excluded_files: Optional[Sequence[str]] = None,
        *,
        filter: Optional[Filter] = None,
        ef_search: Optional[int] = None,
        nprobe: Optional[int] = None,
    ) -> list[Hit]:
        """The ``top_k`` nearest chunks that ``filter`` accepts; ``ValueError`` for a query with
        no word to search for, or a filter that cannot be evaluated."""
    def add_vectors(
        self,
        ids: Sequence[str],
        doc_ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        *,
        texts: Optional[Sequence[str]] = None,
        metadatas: Optional[Sequence[Optional[Mapping[str, MetadataValue]]]] = None,
    ) -> int:
        """Adds rows of a C-contiguous float32 array of shape ``(n, dim)``, with their texts and
        metadata if given, in one atomic step; returns ``n``."""
    def search_vectors(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        *,
        filter: Optional[Filter] = None,
        ef_search: Optional[int] = None,
        nprobe: Optional[int] = None,
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float32]]:
        """``(ids, scores)`` of shape ``(q, w)``, ``w`` the most hits a query got (at most ``k``
        and the chunks there are); ``None`` / ``nan`` past a query's last hit. One point in
        time for the whole batch."""
    def query(
        self,
        vectors: npt.NDArray[np.float32],
        k: int = 4,
        *,
        filter: Optional[Filter] = None,
        include: Optional[Iterable[Field]] = None,
        ef_search: Optional[int] = None,
        nprobe: Optional[int] = None,
    ) -> Any:
        """Hits of one query (1-D array: a list of dicts) or of a batch (2-D: a list of lists,
        one point in time); ``include`` defaults to metadata and content."""
    def get(self, ids: Sequence[str], *, include: Optional[Iterable[Field]] = None) -> list[Optional[Found]]:
        """The chunks of ``ids`` in order, ``None`` for an unknown id."""
    def delete(
        self, ids: Optional[Sequence[str]] = None, *, doc_ids: Optional[Sequence[str]] = None, filter: Optional[Filter] = None
    ) -> int:
        """Removes chunks by id, documents by id and chunks by filter; returns how many chunks."""
    async def aquery(self, *args: Any, **kwargs: Any) -> Any: ...
    async def aadd_vectors(self, *args: Any, **kwargs: Any) -> int: ...
    async def asearch(self, *args: Any, **kwargs: Any) -> list[Hit]: ...
    async def aget(self, *args: Any, **kwargs: Any) -> list[Optional[Found]]: ...
    async def adelete(self, *args: Any, **kwargs: Any) -> int: ...
    async def aadd(self, *args: Any, **kwargs: Any) -> None: ...
    async def apersist(self, *args: Any, **kwargs: Any) -> PersistReport: ...
    def get_chunk_by_id(self, chunk_id: str) -> Optional[Chunk]: ...
    def get_chunk_ids_for_document(self, doc_id: str) -> list[str]: ...
    def get_document_ids(self) -> list[str]: ...
    def reconcile_mappings(self) -> int: ...
    def persist(self, path: StrPath) -> PersistReport:
        """A crash-safe snapshot of every call that returned before this one."""
    def clear(self) -> None: ...
    def stats(self) -> Stats:
        """Counts, and one entry per head and segment."""
    def force_merge(self) -> int:
        """Merges everything into as few segments as possible and indexes them; returns how many
        are left. Call it after a bulk load."""
    def __len__(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def metric(self) -> str:
        """``"cosine"``, ``"inner_product"`` or ``"l2"``."""
    @property
    def embedder(self) -> str: ...
