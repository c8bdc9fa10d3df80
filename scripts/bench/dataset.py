#!/usr/bin/env python3
"""Writes a benchmark dataset directory that the Rust benchmarks and scripts/peers read.

Contract of DIR (all little-endian, row-major):
  base.f32     n x dim float32, every row L2-normalized (inner product = cosine); zero-norm rows
               of the input are dropped
  queries.f32  q x dim float32, same encoding; q rows held out of the input with
               numpy.random.default_rng(seed) (default 42), none of them in base.f32
  gt.u32       q x gt_k uint32: for each query the rows of base.f32 of its exact top-gt_k by
               inner product, best first, ties broken by the lower row (scores in float64)
  meta.json    {"name", "n", "dim", "queries", "gt_k", "metric": "inner_product",
               "normalized": true, "source", "sha256_source", "seed", "dropped_zero_norm"}

CLI:
  dataset.py from-f32 --vectors FILE.f32 --dim D --out DIR --name NAME [--queries 1000]
             [--gt-k 100] [--seed 42] [--source TEXT] [--sha256-source HEX]
      FILE.f32 is a raw n x D little-endian float32 file (for example embeddings computed by
      the Rust side).
  dataset.py from-npy --npy FILE.npy --out DIR --name NAME [same options]
      A 2-D .npy array of any float dtype and memory order (C or Fortran).
  dataset.py synthetic --n N --dim D --clusters C --out DIR --name NAME [same options]
      N + queries vectors drawn from a mixture of C Gaussian clusters (random centres, cluster
      sizes Zipf-skewed, each point its centre plus noise of 0.6 times a centre's length),
      generated with numpy.random.default_rng(seed); the queries are held out of the draws, so
      none of them is a base row.

Needs numpy (scripts/bench-venv). The directory is written next to DIR and renamed into place,
so a crash never leaves a half-written dataset behind.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import time

import numpy as np


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalize(vectors):
    """float32 C-contiguous copy with unit rows; returns (array, number of zero-norm rows dropped)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    keep = norms > 0
    x = x[keep] / norms[keep, None].astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), int((~keep).sum())


def split_queries(x, queries, seed):
    """(base, queries): `queries` rows chosen with default_rng(seed), held out of base (order kept)."""
    if queries >= len(x):
        raise ValueError(f"{queries} queries but only {len(x)} vectors")
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(x), size=queries, replace=False)
    mask = np.ones(len(x), dtype=bool)
    mask[picked] = False
    return np.ascontiguousarray(x[mask]), np.ascontiguousarray(x[picked])


def exact_topk(base, queries, k, block=128):
    """uint32 (q x k): exact top-k rows of base by inner product (float64), ties -> lower row."""
    if k > len(base):
        raise ValueError(f"gt_k={k} but base has {len(base)} rows")
    b64 = base.astype(np.float64)
    out = np.empty((len(queries), k), dtype=np.uint32)
    for start in range(0, len(queries), block):
        q = queries[start:start + block].astype(np.float64)
        scores = q @ b64.T
        # k-th best score of every row, then every row at least that good (more than k on ties)
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
        for i in range(len(q)):
            cand = np.flatnonzero(scores[i] >= kth[i])
            order = np.lexsort((cand, -scores[i, cand]))  # by score desc, then row asc
            out[start + i] = cand[order[:k]]
    return out


def synthetic(n, dim, clusters, seed, block=100_000):
    """n x dim float32 rows from `clusters` Gaussian clusters (see the module docs)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32) / np.sqrt(dim)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.5
    which = rng.choice(clusters, size=n, p=weights / weights.sum())
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        end = min(start + block, n)
        noise = rng.standard_normal((end - start, dim), dtype=np.float32) * (0.6 / np.sqrt(dim))
        out[start:end] = centres[which[start:end]] + noise
    return out


def write_dataset(vectors, out, name, queries=1000, gt_k=100, seed=42, source="", sha256_source=""):
    """Normalizes `vectors` (n x dim), holds out queries, computes ground truth, writes DIR."""
    t0 = time.time()
    x, dropped = normalize(vectors)
    base, xq = split_queries(x, queries, seed)
    gt = exact_topk(base, xq, gt_k)
    out = out.rstrip("/")
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    base.astype("<f4").tofile(os.path.join(tmp, "base.f32"))
    xq.astype("<f4").tofile(os.path.join(tmp, "queries.f32"))
    gt.astype("<u4").tofile(os.path.join(tmp, "gt.u32"))
    meta = {
        "name": name,
        "n": int(len(base)),
        "dim": int(base.shape[1]),
        "queries": int(len(xq)),
        "gt_k": int(gt_k),
        "metric": "inner_product",
        "normalized": True,
        "source": source,
        "sha256_source": sha256_source,
        "seed": int(seed),
        "dropped_zero_norm": dropped,
    }
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(f"dataset: {out}: n={meta['n']} dim={meta['dim']} queries={meta['queries']} "
          f"gt_k={gt_k} dropped_zero_norm={dropped} ({time.time() - t0:.1f} s)")
    return meta


def load_dataset(path):
    """(meta, base, queries, gt) of a directory written by write_dataset."""
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    n, dim, q, k = meta["n"], meta["dim"], meta["queries"], meta["gt_k"]
    base = np.fromfile(os.path.join(path, "base.f32"), dtype="<f4").reshape(n, dim)
    xq = np.fromfile(os.path.join(path, "queries.f32"), dtype="<f4").reshape(q, dim)
    gt = np.fromfile(os.path.join(path, "gt.u32"), dtype="<u4").reshape(q, k)
    return meta, base, xq, gt


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="dataset directory to write")
    common.add_argument("--name", required=True)
    common.add_argument("--queries", type=int, default=1000)
    common.add_argument("--gt-k", type=int, default=100)
    common.add_argument("--seed", type=int, default=42)
    common.add_argument("--source", default=None, help="meta.json source (default: the input file)")
    common.add_argument("--sha256-source", default=None, help="meta.json sha256_source (default: of the input)")
    f32 = sub.add_parser("from-f32", parents=[common], help="raw n x D little-endian float32 file")
    f32.add_argument("--vectors", required=True)
    f32.add_argument("--dim", type=int, required=True)
    npy = sub.add_parser("from-npy", parents=[common], help="2-D .npy array")
    npy.add_argument("--npy", required=True)
    syn = sub.add_parser("synthetic", parents=[common], help="a clustered Gaussian mixture")
    syn.add_argument("--n", type=int, required=True, help="base rows (queries are drawn on top)")
    syn.add_argument("--dim", type=int, required=True)
    syn.add_argument("--clusters", type=int, default=1000)
    a = p.parse_args(argv)

    if a.cmd == "synthetic":
        vectors = synthetic(a.n + a.queries, a.dim, a.clusters, a.seed)
        write_dataset(
            vectors, a.out, a.name, queries=a.queries, gt_k=a.gt_k, seed=a.seed,
            source=a.source or f"synthetic: {a.clusters} Gaussian clusters in {a.dim} dimensions, seed {a.seed}",
            sha256_source=a.sha256_source or "",
        )
        return
    if a.cmd == "from-f32":
        src = a.vectors
        size = os.path.getsize(src)
        if a.dim <= 0 or size % (4 * a.dim):
            sys.exit(f"dataset: {src}: {size} bytes is not a whole number of {a.dim}-dim float32 rows")
        vectors = np.fromfile(src, dtype="<f4").reshape(-1, a.dim)
    else:
        src = a.npy
        vectors = np.load(src, mmap_mode="r")
        if vectors.ndim != 2 or vectors.dtype.kind != "f":
            sys.exit(f"dataset: {src}: expected a 2-D float array, got {vectors.dtype} {vectors.shape}")
    write_dataset(
        vectors, a.out, a.name, queries=a.queries, gt_k=a.gt_k, seed=a.seed,
        source=a.source if a.source is not None else os.path.basename(src),
        sha256_source=a.sha256_source if a.sha256_source is not None else sha256_file(src),
    )


if __name__ == "__main__":
    main()
