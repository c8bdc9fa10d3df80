#!/usr/bin/env python3
"""hnswlib's search cost against rows, the peer of `vecindex-bench scaling`: for each size (the
same first rows, the same first queries, the same efSearch sweep), one hnswlib index (M=16,
ef_construction 80, all cores) grown to the first `size` rows, as vecindex's grows, queried one
at a time on one thread, with recall@10 against exact search over those rows.

  scaling_peers.py DATASET_DIR OUT.json [--quick]

--quick: as `vecindex-bench --quick scaling`: the first 20,000 rows, 50 queries, ef 16 and 64.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import dataset  # noqa: E402
import peers  # noqa: E402

SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000]  # as bench/src/scaling.rs
# Every size sweeps up to ALWAYS_SWEPT_UP_TO; larger settings only while recall 0.95 is unreached.
EFS, ALWAYS_SWEPT_UP_TO = peers.FULL_SWEEP, 256  # as bench/src/scaling.rs
M, EF_CONSTRUCTION = 16, peers.EF_CONSTRUCTION


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    import hnswlib
    import numpy as np
    meta, base, xq, _ = dataset.load_dataset(a.dataset)
    n = min(meta["n"], peers.QUICK_N) if a.quick else meta["n"]
    queries = 50 if a.quick else 200
    efs = peers.QUICK_SWEEP if a.quick else EFS
    if a.quick:
        peers.MIN_TIME_S = peers.QUICK_MIN_TIME_S
    xq = np.ascontiguousarray(xq[:queries])
    sizes = [s for s in SIZES if s < n] + [n]
    out = {"dataset": meta["name"], "queries": queries, "library": "hnswlib",
           "config": {"M": M, "ef_construction": EF_CONSTRUCTION}, "sizes": []}
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=n, ef_construction=EF_CONSTRUCTION, M=M, random_seed=100)
    added, build_s = 0, 0.0
    for size in sizes:
        rows = np.ascontiguousarray(base[:size])
        gt10 = dataset.exact_topk(rows, xq, peers.K).astype(np.int64)
        t0 = time.perf_counter()
        index.set_num_threads(os.cpu_count())
        index.add_items(rows[added:], np.arange(added, size), num_threads=os.cpu_count())
        build_s += time.perf_counter() - t0
        added = size
        index.set_num_threads(1)
        sweep = []
        for ef in efs:
            if ef > ALWAYS_SWEPT_UP_TO and any(p["recall_at_10"] >= 0.95 for p in sweep):
                break
            index.set_ef(ef)
            point = peers.measure(lambda i: index.knn_query(xq[i], k=peers.K, num_threads=1),
                                  lambda: index.knn_query(xq, k=peers.K, num_threads=1)[0], xq, gt10)
            sweep.append({"ef": ef, **point})
            print(f"scaling_peers: {size:>8} rows  ef {ef:>4}  recall@10 {point['recall_at_10']:.4f}  "
                  f"{point['single_qps']:>8.0f} QPS", flush=True)
        out["sizes"].append({"rows": size, "build_s": round(build_s, 1), "sweep": sweep})
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"scaling_peers: wrote {a.out}")


if __name__ == "__main__":
    main()
