"""The second process of test_llama_index.py's end-to-end test: reopens the LlamaIndex index
that the test persisted and answers the same retrievals, to show the index directory alone
(no state of the process that wrote it) gives the same answers.

Usage: ``python llama_index_child.py PERSIST_DIR MODEL_DIR < specs.json``; prints the answers
as JSON. ``answer`` is also what the test runs in its own process, so both sides retrieve
alike.
"""

import json
import sys
from typing import Any

from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores.types import MetadataFilters

from vecindex.llama_index import VecindexEmbedding, VecindexVectorStore


def splitter() -> SentenceSplitter:
    """The test's node parser, given to every index so that LlamaIndex never builds its default
    one (which loads tiktoken's data). A whitespace tokenizer sizes the chunks, and paragraphs
    shorter than a chunk never reach nltk's sentence splitter: nothing reads tokenizer data,
    so nothing could try the network for it. 27 words hold one paragraph of the test's
    documents and their metadata (7 words), never two paragraphs."""
    return SentenceSplitter(chunk_size=27, chunk_overlap=0, paragraph_separator="\n\n", tokenizer=str.split)


def answer(index: VectorStoreIndex, specs: list[dict[str, Any]]) -> list[list[list[Any]]]:
    """For each spec (``query``, ``k``, and optional ``filters``, a ``MetadataFilters`` dict,
    and ``doc_ids``), the retrieved nodes as ``[node_id, topic, score]``, best first."""
    answers = []
    for spec in specs:
        filters = spec.get("filters")
        retriever = index.as_retriever(
            similarity_top_k=spec["k"],
            filters=MetadataFilters.model_validate(filters) if filters else None,
            doc_ids=spec.get("doc_ids"),
        )
        hits = retriever.retrieve(spec["query"])
        answers.append([[hit.node.node_id, hit.node.metadata["topic"], hit.score] for hit in hits])
    return answers


def main() -> None:
    persist_dir, model_dir = sys.argv[1:]
    specs = json.load(sys.stdin)
    embed_model = VecindexEmbedding("minilm", model_dir=model_dir)
    storage = StorageContext.from_defaults(
        persist_dir=persist_dir, vector_store=VecindexVectorStore.from_persist_dir(persist_dir)
    )
    index = load_index_from_storage(storage, embed_model=embed_model, transformations=[splitter()])
    json.dump(answer(index, specs), sys.stdout)


if __name__ == "__main__":
    main()
