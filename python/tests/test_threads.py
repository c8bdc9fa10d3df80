"""Real parallelism from Python threads: 16 threads at once, and writers that keep going while
a persist runs (they could not if any call held the GIL)."""

import threading
import time

import numpy as np

import vecindex
from conftest import make_chunk


def test_sixteen_threads_add_search_remove_and_persist(tmp_path):
    index = vecindex.VectorIndex(config={"head_capacity": 128, "segment_index": "Flat"})
    per_thread = 300
    errors = []
    stop = threading.Event()
    persists = []

    def worker(t):
        try:
            for i in range(per_thread):
                n = t * per_thread + i
                index.add_chunk(make_chunk(n, f"t{t}-d{i // 10}"))
                if i % 10 == 9:
                    assert index.search(f"word{n}", top_k=3)
                if i % 30 == 29:  # every third document goes again
                    assert index.remove(f"t{t}-d{i // 10}") == 10
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def persister():
        while not stop.is_set():
            persists.append(index.persist(tmp_path / "idx"))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    background = threading.Thread(target=persister)
    background.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    background.join()
    assert not errors, errors[:3]
    expected = 16 * per_thread * 2 // 3
    assert len(index) == expected
    assert len(index.get_document_ids()) == 16 * per_thread // 10 * 2 // 3
    assert len(persists) >= 1
    index.persist(tmp_path / "idx")
    assert len(vecindex.VectorIndex.open(tmp_path / "idx")) == expected


def test_writers_progress_while_a_persist_runs(tmp_path):
    dim = 384
    index = vecindex.VectorIndex(dim=dim, config={"segment_index": "exact"})
    rng = np.random.default_rng(1)
    block = rng.standard_normal((20_000, dim)).astype(np.float32)
    for start in range(0, 200_000, 20_000):
        index.add_vectors([f"bulk{start + i}" for i in range(20_000)], ["bulk"] * 20_000, block)
    one = block[:1]
    adds_during = []
    persisting = threading.Event()
    finished = threading.Event()

    def writer():
        i = 0
        while not finished.is_set():
            index.add_vectors([f"w{i}"], ["w"], one)
            if persisting.is_set():
                adds_during.append(time.perf_counter())
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.05)
    persisting.set()
    started = time.perf_counter()
    index.persist(tmp_path / "big")  # hundreds of MB: long enough to see the writer run
    ended = time.perf_counter()
    persisting.clear()
    finished.set()
    thread.join()
    during = [t for t in adds_during if started <= t <= ended]
    assert len(during) > 100, f"only {len(during)} adds completed during a {ended - started:.3f} s persist"
