"""vecindex: a lock-free concurrent vector index for embedding servers and RAG systems.

The seed's ``VectorIndex`` API on a Rust index whose writers never wait for a persist or a
search: every call that touches the index releases the GIL, so Python threads (and
``asyncio.to_thread`` workers) add, search and persist in parallel.

>>> import vecindex
>>> index = vecindex.VectorIndex()  # the hashing embedder, 384-d
>>> index.add("guide.md", [{"chunk_id": "guide-0", "content": "Threads share one index."}])
>>> [hit["chunk_id"] for hit in index.search("index threads", top_k=1)]
['guide-0']
"""

from ._native import Chunk, CorruptIndexError, Embedder, VectorIndex, __version__

__all__ = ["Chunk", "CorruptIndexError", "Embedder", "VectorIndex", "__version__"]
