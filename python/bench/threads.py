#!/usr/bin/env python3
"""Python threads on vecindex against a faithful re-creation of the seed's design.

Four threads add chunks one at a time (a search every tenth call) while a fifth persists back
to back, for the same number of seconds on each design, with the same vectors:

- ``vecindex Flat``: ``vecindex.VectorIndex`` with exact FAISS ``Flat`` segments, the seed's kind of
  index (add_vectors / search_vectors, one row at a time);
- ``vecindex HNSW32``: the same with vecindex's default segments (HNSW32, built in the
  background on the index's own thread, which competes for the cores with everything else);
- ``seed``: the design the seed settled on, in Python: a faiss-cpu ``IndexFlatIP`` plus dicts
  (chunk id -> row, document -> rows, row -> chunk), one ``threading.Lock`` held for each
  mapping update with its FAISS insert, and for the whole persist (FAISS's file and the maps as
  JSON). Searches take the lock too: the seed's searches did not, but a FAISS flat index may
  reallocate during an add, and searching it meanwhile is not safe.

Prints a table and writes the numbers as JSON (``--out``), which ``vecindex-bench report``
turns into a section of docs/benchmarks.md. Every number there is one this script printed.

  threads.py --dataset DIR --out FILE.json [--seconds 10] [--preload N]

DIR is a dataset of scripts/bench/dataset.py (base.f32, queries.f32, meta.json).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

WRITERS = 4
SEARCH_EVERY = 10
K = 10


class SeedIndex:
    """The seed's design (see the module docs)."""

    def __init__(self, dim):
        import faiss

        self._faiss = faiss
        self._index = faiss.IndexFlatIP(dim)
        self._lock = threading.Lock()
        self._chunk_id_to_node_id = {}
        self._doc_id_to_node_ids = {}
        self._node_id_to_chunk = {}

    def add_vectors(self, ids, doc_ids, vectors):
        with self._lock:
            start = self._index.ntotal
            for offset, (chunk_id, doc_id) in enumerate(zip(ids, doc_ids)):
                node = start + offset
                self._chunk_id_to_node_id[chunk_id] = node
                self._doc_id_to_node_ids.setdefault(doc_id, []).append(node)
                self._node_id_to_chunk[node] = (chunk_id, doc_id)
            self._index.add(vectors)

    def search_vectors(self, queries, k):
        with self._lock:
            scores, rows = self._index.search(queries, k)
            ids = [[self._node_id_to_chunk[int(r)][0] if r >= 0 else None for r in row] for row in rows]
        return ids, scores

    def persist(self, path):
        with self._lock:
            os.makedirs(path, exist_ok=True)
            self._faiss.write_index(self._index, os.path.join(path, "index.faiss"))
            with open(os.path.join(path, "maps.json"), "w") as f:
                json.dump(
                    {
                        "chunk_id_to_node_id": self._chunk_id_to_node_id,
                        "doc_id_to_node_ids": self._doc_id_to_node_ids,
                        "node_id_to_chunk": {str(n): c for n, c in self._node_id_to_chunk.items()},
                    },
                    f,
                )

    def __len__(self):
        return self._index.ntotal


DESIGNS = ["vecindex Flat", "vecindex HNSW32", "seed"]


def make(design, dim):
    if design == "seed":
        return SeedIndex(dim)
    import vecindex

    segments = design.split()[1]
    return vecindex.VectorIndex(dim=dim, config={"metric": "inner_product", "segment_index": segments})


def percentile(values, p):
    return float(np.percentile(np.asarray(values), p)) if values else 0.0


def run(design, base, queries, seconds, preload, scratch):
    dim = base.shape[1]
    index = make(design, dim)
    for start in range(0, preload, 1000):
        end = min(start + 1000, preload)
        index.add_vectors([f"pre{i}" for i in range(start, end)], [f"doc{i // 16}" for i in range(start, end)], base[start:end])
    rows = [base[i : i + 1] for i in range(len(base))]  # contiguous one-row views
    query_rows = [queries[i : i + 1] for i in range(len(queries))]
    stop = threading.Event()
    adds, searches, persists = [[] for _ in range(WRITERS)], [[] for _ in range(WRITERS)], []
    errors = []

    def writer(w):
        i = 0
        try:
            while not stop.is_set():
                if i % SEARCH_EVERY == SEARCH_EVERY - 1:
                    q = query_rows[(w * 7919 + i) % len(query_rows)]
                    t = time.perf_counter()
                    index.search_vectors(q, K)
                    searches[w].append(time.perf_counter() - t)
                else:
                    row = rows[(preload + w * 100_003 + i) % len(rows)]
                    t = time.perf_counter()
                    index.add_vectors([f"w{w}-{i}"], [f"w{w}-doc{i // 16}"], row)
                    adds[w].append(time.perf_counter() - t)
                i += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    def persister():
        n = 0
        while not stop.is_set():
            t = time.perf_counter()
            index.persist(os.path.join(scratch, f"{design.replace(' ', '-')}-{n % 2}"))
            persists.append(time.perf_counter() - t)
            n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    threads.append(threading.Thread(target=persister))
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    add_all = [x for xs in adds for x in xs]
    search_all = [x for xs in searches for x in xs]
    return {
        "design": design,
        "seconds": elapsed,
        "preload": preload,
        "writers": WRITERS,
        "adds": len(add_all),
        "searches": len(search_all),
        "persists": len(persists),
        "ops_per_s": (len(add_all) + len(search_all)) / elapsed,
        "add_p50_us": percentile(add_all, 50) * 1e6,
        "add_p99_us": percentile(add_all, 99) * 1e6,
        "add_max_ms": max(add_all, default=0.0) * 1e3,
        "search_p50_us": percentile(search_all, 50) * 1e6,
        "search_max_ms": max(search_all, default=0.0) * 1e3,
        "persist_p50_ms": percentile(persists, 50) * 1e3,
        "errors": errors,
        "final_chunks": len(index),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--preload", type=int, default=None, help="rows added before the clock starts (default: half)")
    args = parser.parse_args()
    with open(os.path.join(args.dataset, "meta.json")) as f:
        meta = json.load(f)
    dim = meta["dim"]
    base = np.fromfile(os.path.join(args.dataset, "base.f32"), dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(os.path.join(args.dataset, "queries.f32"), dtype="<f4").reshape(-1, dim)
    preload = args.preload if args.preload is not None else len(base) // 2
    import faiss
    import vecindex

    print(
        f"python threads: {meta['name']} ({len(base)} x {dim}), {preload} rows preloaded, {WRITERS} threads adding "
        f"(a search of k={K} every {SEARCH_EVERY}th call) while one persists back to back, {args.seconds:.0f} s per design; "
        f"python {sys.version.split()[0]}, vecindex {vecindex.__version__}, faiss-cpu {faiss.__version__}"
    )
    results = []
    scratch = tempfile.mkdtemp(prefix="vecindex-threads-")
    try:
        for design in DESIGNS:
            r = run(design, base, queries, args.seconds, preload, scratch)
            results.append(r)
            print(
                f"  {design:<15} {r['ops_per_s']:>9.0f} ops/s  adds {r['adds']:>7}  searches {r['searches']:>6}  "
                f"add p50 {r['add_p50_us']:>7.1f} µs p99 {r['add_p99_us']:>8.1f} µs max {r['add_max_ms']:>8.2f} ms  "
                f"search p50 {r['search_p50_us']:>8.1f} µs max {r['search_max_ms']:>8.2f} ms  "
                f"persists {r['persists']:>4} (p50 {r['persist_p50_ms']:.1f} ms)  errors {len(r['errors'])}"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = {"dataset": meta["name"], "rows": len(base), "dim": dim, "k": K, "search_every": SEARCH_EVERY, "results": results}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}")
    if any(r["errors"] for r in results):
        sys.exit("errors: " + "; ".join(e for r in results for e in r["errors"][:3]))


if __name__ == "__main__":
    main()
