#!/usr/bin/env python3
"""Peer-library baseline for the benchmarks report: faiss-cpu, hnswlib and usearch on a dataset
directory written by scripts/bench/dataset.py (run through scripts/peers, which uses the venv of
scripts/bench-venv).

  peers.py DATASET_DIR OUT.json [--quick]

Every index is built in its own subprocess (so its RSS growth is its own), with all cores, then
queried single-threaded, k=10, sweeping the query-time beam width (faiss efSearch, hnswlib ef,
usearch expansion_search). Per setting: recall@10 against the dataset's exact ground truth,
"single-query QPS" (one search call per query from a Python loop, like a server), "batch QPS"
(one search call for all queries, 1 thread), mean/p50/p99 latency of the single-query calls.

Index configurations, matched to vecindex (FAISS HNSW, M=32, efConstruction=80):
  faiss-cpu  IndexFlatIP (exact) and IndexHNSWFlat(dim, 32, METRIC_INNER_PRODUCT), efConstruction 80
  hnswlib    Index(space='ip'), M=32 (32 links on upper layers, 64 on layer 0, as faiss HNSW32)
             and M=16 (hnswlib's usual default), ef_construction 80
  usearch    Index(metric='ip', dtype='f32', connectivity=32, expansion_add=80)

FAISS SIMD: faiss-cpu >= 1.13 wheels are one "dynamic dispatch" (DD) build: a single
_swigfaiss module whose kernels pick the SIMD level at run time from the environment variable
FAISS_SIMD_LEVEL (NONE, AVX2, AVX512, AVX512_VPOPCNT, ...). FAISS_OPT_LEVEL only chooses among
_swigfaiss_avx2/_swigfaiss_avx512 modules, which such wheels do not ship, so it changes nothing.
The faiss indexes are therefore measured once per level the CPU and the build support, each in
its own process with FAISS_SIMD_LEVEL set; level NONE is the scalar ("generic") code, the
counterpart of the Rust faiss crate's default build. With an older, statically dispatched wheel
the script falls back to FAISS_OPT_LEVEL over the modules it finds.

--quick: first 20,000 base rows, first 100 queries, exact ground truth recomputed for that
subset, sweep [16, 64]; well under 30 s.
"""
import argparse
import glob
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
K = 10
FULL_SWEEP = [10, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256, 384, 512]  # as vecindex-bench's FULL_EFS
QUICK_SWEEP = [16, 64]
QUICK_N, QUICK_Q = 20_000, 100
MIN_TIME_S = 0.3  # repeat a timed pass until it has run this long (cheap settings are noisy)
QUICK_MIN_TIME_S = 0.1
M_FAISS, EF_CONSTRUCTION = 32, 80
DD_LEVELS = ["NONE", "AVX2", "AVX512", "AVX512_VPOPCNT", "AVX512_SPR"]


# ---------------------------------------------------------------------------------------------
# worker side: one index per process
# ---------------------------------------------------------------------------------------------

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def load(dataset_dir, quick):
    import numpy as np
    sys.dont_write_bytecode = True  # no __pycache__ in scripts/bench
    sys.path.insert(0, HERE)
    import dataset
    meta, base, xq, gt = dataset.load_dataset(dataset_dir)
    if quick:
        base = np.ascontiguousarray(base[:QUICK_N])
        xq = np.ascontiguousarray(xq[:QUICK_Q])
        gt = dataset.exact_topk(base, xq, K)
    return meta, base, xq, np.ascontiguousarray(gt[:, :K]).astype(np.int64)


def recall_at_k(found, gt10):
    import numpy as np
    found = np.asarray(found, dtype=np.int64)[:, :K]
    hits = (found[:, :, None] == gt10[:, None, :]).any(axis=2).sum(axis=1)
    return float(hits.mean() / K)


def measure(single, batch, xq, gt10):
    """single(i) searches query i alone; batch() searches all at once and returns ids (q x K)."""
    import numpy as np
    nq = len(xq)
    for i in range(min(nq, 50)):  # warm-up
        single(i)
    lat = np.empty(nq, dtype=np.int64)
    done, t0 = 0, time.perf_counter()
    while True:
        for i in range(nq):
            s = time.perf_counter_ns()
            single(i)
            lat[i] = time.perf_counter_ns() - s  # latencies of the last pass
        done += nq
        elapsed = time.perf_counter() - t0
        if elapsed >= MIN_TIME_S:
            break
    single_qps = done / elapsed
    ids = batch()
    done, t0 = 0, time.perf_counter()
    while True:
        batch()
        done += nq
        b_elapsed = time.perf_counter() - t0
        if b_elapsed >= MIN_TIME_S:
            break
    return {
        "recall_at_10": round(recall_at_k(ids, gt10), 5),
        "single_qps": round(single_qps, 1),
        "batch_qps": round(done / b_elapsed, 1),
        "mean_latency_us": round(1e6 / single_qps, 2),
        "p50_latency_us": round(float(np.percentile(lat, 50)) / 1e3, 2),
        "p99_latency_us": round(float(np.percentile(lat, 99)) / 1e3, 2),
    }


def timed_build(fn):
    rss0 = rss_mb()
    t0 = time.perf_counter()
    index = fn()
    build_s = time.perf_counter() - t0
    return index, round(build_s, 3), round(rss_mb() - rss0, 1)


def worker_faiss(kind, base, xq, gt10, sweep, cores):
    import faiss
    dd = hasattr(faiss, "SIMDConfig") and faiss.SIMDConfig.has_dynamic_dispatch()
    if dd:
        level = faiss.SIMDConfig.get_level_name()
    else:
        level = os.environ.get("FAISS_OPT_LEVEL", "generic")
    dim = base.shape[1]

    def build():
        faiss.omp_set_num_threads(cores)
        if kind == "Flat":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, M_FAISS, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(base)
        return index

    index, build_s, mem = timed_build(build)
    threads = faiss.omp_get_max_threads()
    index_mb = round(faiss.serialize_index(index).size / 2**20, 1)
    faiss.omp_set_num_threads(1)
    rows = [xq[i:i + 1] for i in range(len(xq))]

    def single(i):
        return index.search(rows[i], K)

    def batch():
        return index.search(xq, K)[1]

    points = []
    if kind == "Flat":
        p = measure(single, batch, xq, gt10)
        points.append({"param": "exact", "value": None, **p})
    else:
        for ef in sweep:
            index.hnsw.efSearch = ef
            points.append({"param": "efSearch", "value": ef, **measure(single, batch, xq, gt10)})
    res = {
        "library": "faiss-cpu",
        "index": "FlatIP" if kind == "Flat" else "HNSW32",
        "config": {} if kind == "Flat" else {"M": M_FAISS, "efConstruction": EF_CONSTRUCTION},
        "simd": "generic" if level.upper() in ("NONE", "GENERIC") else level.lower(),
        "simd_level": level,
        "simd_via": ("FAISS_SIMD_LEVEL" if dd else "FAISS_OPT_LEVEL") + "="
                    + (os.environ.get("FAISS_SIMD_LEVEL" if dd else "FAISS_OPT_LEVEL") or "(unset)"),
        "build_s": build_s,
        "build_threads": threads,
        "memory_mb": mem,
        "index_mb": index_mb,
        "index_mb_how": "faiss.serialize_index size",
        "sweep": points,
    }
    return res


def worker_hnswlib(m, base, xq, gt10, sweep, cores):
    import hnswlib
    import numpy as np
    n, dim = base.shape

    def build():
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, ef_construction=EF_CONSTRUCTION, M=m, random_seed=100)
        index.set_num_threads(cores)
        index.add_items(base, np.arange(n), num_threads=cores)
        return index

    index, build_s, mem = timed_build(build)
    threads = index.num_threads
    index.set_num_threads(1)

    def single(i):
        return index.knn_query(xq[i], k=K, num_threads=1)

    def batch():
        return index.knn_query(xq, k=K, num_threads=1)[0]

    points = []
    for ef in sweep:
        index.set_ef(ef)
        points.append({"param": "ef", "value": ef, **measure(single, batch, xq, gt10)})
    return {
        "library": "hnswlib",
        "index": f"HNSW M={m}",
        "config": {"M": m, "ef_construction": EF_CONSTRUCTION},
        "simd": "-march=native (built from sdist)",
        "build_s": build_s,
        "build_threads": threads,
        "memory_mb": mem,
        "index_mb": round(index.index_file_size() / 2**20, 1),
        "index_mb_how": "hnswlib index_file_size()",
        "sweep": points,
    }


def worker_usearch(base, xq, gt10, sweep, cores):
    import numpy as np
    from usearch.index import Index
    n, dim = base.shape

    def build():
        index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=M_FAISS,
                      expansion_add=EF_CONSTRUCTION)
        index.add(np.arange(n, dtype=np.uint64), base, threads=cores)
        return index

    index, build_s, mem = timed_build(build)

    def single(i):
        return index.search(xq[i], K, threads=1)

    def batch():
        return index.search(xq, K, threads=1).keys.astype(np.int64)

    points = []
    for ef in sweep:
        index.expansion_search = ef
        points.append({"param": "expansion_search", "value": ef, **measure(single, batch, xq, gt10)})
    return {
        "library": "usearch",
        "index": "HNSW connectivity=32",
        "config": {"connectivity": M_FAISS, "expansion_add": EF_CONSTRUCTION},
        "simd": str(index.hardware_acceleration),
        "build_s": build_s,
        "build_threads": cores,
        "memory_mb": mem,
        "index_mb": round(index.memory_usage / 2**20, 1),
        "index_mb_how": "usearch Index.memory_usage",
        "sweep": points,
    }


def faiss_probe():
    """What the installed faiss offers: the SIMD levels to run and how to select them."""
    import faiss
    pkg = os.path.dirname(faiss.__file__)
    modules = sorted(os.path.basename(p) for p in glob.glob(os.path.join(pkg, "_swigfaiss*.so")))
    info = {"version": faiss.__version__, "compile_options": faiss.get_compile_options().strip(),
            "swig_modules": modules}
    if hasattr(faiss, "SIMDConfig") and faiss.SIMDConfig.has_dynamic_dispatch():
        supported = faiss.SIMDConfig().supported_simd_levels  # compiled in AND CPU-supported
        levels = [n for n in DD_LEVELS
                  if hasattr(faiss, "SIMDLevel_" + n) and supported >> getattr(faiss, "SIMDLevel_" + n) & 1]
        info.update(mechanism="dynamic dispatch", env="FAISS_SIMD_LEVEL", levels=levels,
                    default_level=faiss.SIMDConfig.get_level_name())
    else:
        names = {"_swigfaiss": "generic", "_swigfaiss_avx2": "AVX2", "_swigfaiss_avx512": "AVX512"}
        levels = [lvl for mod, lvl in names.items() if any(m.startswith(mod + ".") for m in modules)]
        info.update(mechanism="static modules", env="FAISS_OPT_LEVEL", levels=levels, default_level=None)
    return info


def worker_main(a):
    global MIN_TIME_S
    if a.quick:
        MIN_TIME_S = QUICK_MIN_TIME_S
    cores = os.cpu_count() or 1
    if a.job == "faiss-probe":
        out = faiss_probe()
    else:
        _, base, xq, gt10 = load(a.dataset, a.quick)
        sweep = QUICK_SWEEP if a.quick else FULL_SWEEP
        if a.job in ("faiss-Flat", "faiss-HNSW32"):
            out = worker_faiss(a.job.split("-", 1)[1], base, xq, gt10, sweep, cores)
        elif a.job.startswith("hnswlib-M"):
            out = worker_hnswlib(int(a.job[len("hnswlib-M"):]), base, xq, gt10, sweep, cores)
        elif a.job == "usearch":
            out = worker_usearch(base, xq, gt10, sweep, cores)
        else:
            sys.exit(f"peers: unknown job {a.job}")
    with open(a.result, "w") as f:
        json.dump(out, f)


# ---------------------------------------------------------------------------------------------
# driver side
# ---------------------------------------------------------------------------------------------

def run_job(job, dataset_dir, quick, env_extra=None):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"  # queries are single-threaded; builds raise their own thread counts
    env.pop("FAISS_SIMD_LEVEL", None)
    env.pop("FAISS_OPT_LEVEL", None)
    env.update(env_extra or {})
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = tmp.name
    try:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", job, "--result", path, dataset_dir]
        if quick:
            cmd.append("--quick")
        subprocess.run(cmd, env=env, check=True)
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_table(results, out=sys.stdout):
    w = out.write
    for r in results:
        w(f"\n{r['library']} {r['index']}  simd={r['simd']}  build {r['build_s']:.1f} s "
          f"({r['build_threads']} threads)  RSS +{r['memory_mb']:.0f} MB  index {r['index_mb']:.0f} MB\n")
        w(f"  {'param':>17} {'value':>5} {'recall@10':>9} {'1-query QPS':>11} {'batch QPS':>10} "
          f"{'mean us':>8} {'p99 us':>8}\n")
        for p in r["sweep"]:
            v = "-" if p["value"] is None else str(p["value"])
            w(f"  {p['param']:>17} {v:>5} {p['recall_at_10']:>9.4f} {p['single_qps']:>11.0f} "
              f"{p['batch_qps']:>10.0f} {p['mean_latency_us']:>8.1f} {p['p99_latency_us']:>8.1f}\n")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def driver_main(a):
    t_start = time.time()
    load_start = loadavg()
    with open(os.path.join(a.dataset, "meta.json")) as f:
        meta = json.load(f)
    if a.quick:
        meta = dict(meta, n=min(meta["n"], QUICK_N), queries=min(meta["queries"], QUICK_Q), gt_k=K,
                    subset=f"quick: first {QUICK_N} base rows, first {QUICK_Q} queries, "
                           f"ground truth recomputed")
    probe = run_job("faiss-probe", a.dataset, a.quick)
    levels = probe["levels"]
    if a.faiss_levels:
        levels = [lvl for lvl in a.faiss_levels.split(",") if lvl]
    print(f"peers: faiss {probe['version']} ({probe['mechanism']}, {probe['compile_options']}); "
          f"SIMD levels via {probe['env']}: {', '.join(levels)}", flush=True)

    jobs = []
    for kind in ("Flat", "HNSW32"):
        for lvl in levels:
            jobs.append((f"faiss-{kind}", {probe["env"]: lvl}))
    jobs += [("hnswlib-M16", None), ("hnswlib-M32", None), ("usearch", None)]
    results = []
    for job, env in jobs:
        t0 = time.time()
        r = run_job(job, a.dataset, a.quick, env)
        best = max(r["sweep"], key=lambda p: p["recall_at_10"])
        print(f"peers: {job:<13} {'' if not env else ','.join(env.values()):<15} "
              f"build {r['build_s']:6.1f} s, best recall {best['recall_at_10']:.4f} ({time.time() - t0:.0f} s)",
              flush=True)
        results.append(r)

    warnings = []
    for r in results:
        if r["index"] == "FlatIP" and r["sweep"][0]["recall_at_10"] < 0.999:
            warnings.append(f"faiss FlatIP ({r['simd']}) recall@10 {r['sweep'][0]['recall_at_10']} < 0.999")
    versions = {"python": platform.python_version()}
    for pkg in ("numpy", "faiss-cpu", "hnswlib", "usearch"):
        versions[pkg] = importlib.metadata.version(pkg)
    doc = {
        "dataset": meta,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "loadavg_start": load_start, "loadavg_end": loadavg()},
        "versions": versions,
        "faiss_simd": {k: probe[k] for k in ("mechanism", "env", "compile_options", "swig_modules",
                                             "default_level")} | {"levels_run": levels},
        "settings": {"k": K, "query_threads": 1, "min_time_s": QUICK_MIN_TIME_S if a.quick else MIN_TIME_S,
                     "sweep": QUICK_SWEEP if a.quick else FULL_SWEEP, "quick": a.quick},
        "warnings": warnings,
        "total_s": round(time.time() - t_start, 1),
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"\npeers: {meta['name']} n={meta['n']} dim={meta['dim']} queries={meta['queries']} k={K}, "
          f"queries single-threaded; {doc['machine']['cpu']}, {doc['machine']['cores']} cores")
    print_table(results)
    if load_start and load_start[0] > 1.0:
        print(f"peers: note: load average was {load_start[0]:.2f} at the start: other work on this "
              f"machine may skew the timings")
    for wmsg in warnings:
        print(f"peers: WARNING: {wmsg}")
    print(f"\npeers: wrote {a.out} ({doc['total_s']} s)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="dataset directory (scripts/bench/dataset.py)")
    p.add_argument("out", nargs="?", help="output JSON")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--faiss-levels", help="comma-separated SIMD levels to run (default: all supported)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        a.job = a.worker
        worker_main(a)
    else:
        if not a.out:
            p.error("OUT.json is required")
        driver_main(a)


if __name__ == "__main__":
    main()
