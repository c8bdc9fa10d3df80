#!/usr/bin/env python3
"""hnswlib's filtered search, the peer of `vecindex-bench filtered`: the same rows with the same
attributes (drawn from the row number with splitmix64, as bench/src/filtered.rs draws them), the
same filters, queries and efSearch sweep. One hnswlib index (M=16, ef_construction 80, built on
all cores) is queried one at a time on one thread, unfiltered and with `knn_query(...,
filter=f)`, where f is a Python callable over labels (hnswlib's filter callback; it calls back
into Python for every node the walk considers keeping). Recall@10 is against exact search over
the rows that pass (against all of them when fewer than 10 pass).

  filtered_peers.py DATASET_DIR OUT.json [--quick]

--quick: as `vecindex-bench --quick filtered`: the first 20,000 rows, 100 queries, ef 16 and 64.
"""
import argparse
import importlib.metadata
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import dataset  # noqa: E402
import peers  # noqa: E402

M, EF_CONSTRUCTION = 16, peers.EF_CONSTRUCTION
# As bench/src/filtered.rs: the shares of rows the filters keep, each with the colour that has
# that share; the seed of the attribute draws; where a sweep stops; the queries of a full run
# (the timed passes repeat for peers.MIN_TIME_S, as vecindex-bench's do).
SELECTIVITIES = [(0.5, "red"), (0.1, "green"), (0.01, "blue"), (0.001, "gray")]
SEED = 0x5EED_F11E
ENOUGH_RECALL = 0.99
FULL_QUERIES = 200


def splitmix64(seed, i):
    """Output `i` of splitmix64 seeded with `seed`, for a numpy uint64 array `i` (wrapping)."""
    import numpy as np
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (i + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def attributes(n):
    """Every row's (colour, price), as bench/src/filtered.rs's `attributes`: draws 2 row and
    2 row + 1, each taken to [0, 1) by its top 53 bits; the colours take their shares of [0, 1) in
    order (the bounds summed in the same order, so the same doubles), "other" the rest."""
    import numpy as np
    rows = np.arange(n, dtype=np.uint64)
    unit = lambda x: (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # noqa: E731
    pick = unit(splitmix64(SEED, np.uint64(2) * rows))
    price = unit(splitmix64(SEED, np.uint64(2) * rows + np.uint64(1)))
    color = np.full(n, "other", dtype=object)
    below = 0.0
    for share, name in SELECTIVITIES:
        low, below = below, below + share
        color[(pick >= low) & (pick < below)] = name
    return color, price


def cases(color, price):
    """(kind, filter as the report names it, target share, mask of the rows that pass)."""
    import numpy as np
    out = [("none", "none", 1.0, np.ones(len(color), dtype=bool))]
    out += [("keyword", f"color = {name}", share, color == name) for share, name in SELECTIVITIES]
    out += [("range", f"price < {share}", share, price < share) for share, _ in SELECTIVITIES]
    return out


def filtered_truth(base, xq, passing):
    """Each query's exact top 10 among the rows `passing` (fewer when fewer pass), as rows."""
    import numpy as np
    k = min(peers.K, len(passing))
    if k == 0:
        return [[] for _ in xq]
    top = dataset.exact_topk(np.ascontiguousarray(base[passing]), xq, k)
    return [passing[t].tolist() for t in top]


def sweep(index, xq, truth, efs, keep, min_time_s):
    """Single-query QPS (timed passes over the queries, after a warm-up, until they have taken
    min_time_s) and recall@10 (of the first pass) per efSearch, stopping at the first setting
    that reaches ENOUGH_RECALL."""
    k = min(peers.K, max(len(t) for t in truth))
    points = []
    for ef in efs:
        index.set_ef(ef)
        search = lambda q: index.knn_query(q, k=k, num_threads=1, filter=keep)[0][0]  # noqa: E731
        for q in xq[:min(len(xq), 10)]:
            search(q)
        found, done, t0 = None, 0, time.perf_counter()
        while found is None or time.perf_counter() - t0 < min_time_s:
            results = []
            for q in xq:
                try:
                    results.append(search(q))
                except RuntimeError:  # hnswlib found fewer than k rows that pass
                    results.append([])
            found = found or results
            done += len(xq)
        elapsed = time.perf_counter() - t0
        recall = sum(len(set(map(int, f)) & set(t)) / max(len(t), 1) for f, t in zip(found, truth)) / len(xq)
        points.append({"ef": ef, "recall_at_10": round(recall, 5), "single_qps": round(done / elapsed, 1),
                       "mean_latency_us": round(elapsed / done * 1e6, 2)})
        if recall >= ENOUGH_RECALL:
            break
    return points


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    import hnswlib
    import numpy as np
    assert int(splitmix64(0, np.array([0], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF, "splitmix64"
    meta, base, xq, _ = dataset.load_dataset(a.dataset)
    n = min(meta["n"], peers.QUICK_N) if a.quick else meta["n"]
    queries = peers.QUICK_Q if a.quick else FULL_QUERIES
    efs = peers.QUICK_SWEEP if a.quick else peers.FULL_SWEEP
    min_time_s = peers.QUICK_MIN_TIME_S if a.quick else peers.MIN_TIME_S
    base = np.ascontiguousarray(base[:n])
    xq = np.ascontiguousarray(xq[:queries])
    color, price = attributes(n)

    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=n, ef_construction=EF_CONSTRUCTION, M=M, random_seed=100)
    index.set_num_threads(cores)
    index.add_items(base, np.arange(n), num_threads=cores)
    build_s = time.perf_counter() - t0
    index.set_num_threads(1)
    print(f"filtered_peers: hnswlib M={M} over {n} rows built in {build_s:.1f} s", flush=True)

    out = {"dataset": meta["name"], "n": n, "queries": len(xq), "library": "hnswlib",
           "version": importlib.metadata.version("hnswlib"),
           "config": {"M": M, "ef_construction": EF_CONSTRUCTION},
           "machine": {"cpu": peers.cpu_model(), "cores": cores},
           "build_s": round(build_s, 1), "cases": []}
    for kind, name, target, mask in cases(color, price):
        passing = np.flatnonzero(mask)
        truth = filtered_truth(base, xq, passing)
        # A list indexed by label: its bound __getitem__ is the cheapest callable Python has.
        keep = None if kind == "none" else mask.tolist().__getitem__
        points = sweep(index, xq, truth, efs, keep, min_time_s)
        for pt in points:
            print(f"filtered_peers: {name:<14} {len(passing):>7} rows ({len(passing) / n * 100:>6.2f}%)  "
                  f"ef {pt['ef']:>4}  recall@10 {pt['recall_at_10']:.4f}  {pt['single_qps']:>8.0f} QPS", flush=True)
        out["cases"].append({"kind": kind, "filter": name, "target": target, "passing": int(len(passing)),
                             "sweep": points})
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"filtered_peers: wrote {a.out}")


if __name__ == "__main__":
    main()
