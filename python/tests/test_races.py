"""The seed's three race tests, on the binding: adds racing persists must never fail, and every
chunk whose add returned before a persist started must be in that persist's snapshot."""

import asyncio
import threading
import time

import vecindex
from conftest import make_chunk


def assert_snapshot_has(path, acknowledged):
    loaded = vecindex.VectorIndex.open(path)
    missing = [cid for cid in acknowledged if loaded.get_chunk_by_id(cid) is None]
    assert not missing, f"{len(missing)} acknowledged chunks missing from {path}, e.g. {missing[:3]}"
    return loaded


def test_concurrent_add_and_persist(tmp_path, index):
    acknowledged = []
    errors = []

    def add_chunks():
        try:
            for i in range(2000):
                index.add_chunk(make_chunk(i))
                acknowledged.append(f"c{i}")  # after add_chunk returned
        except Exception as e:  # noqa: BLE001 - the test reports any failure
            errors.append(e)

    writer = threading.Thread(target=add_chunks)
    writer.start()
    while len(acknowledged) < 200:
        time.sleep(0.001)
    before = list(acknowledged)
    index.persist(tmp_path / "snap")
    writer.join()
    assert not errors
    loaded = assert_snapshot_has(tmp_path / "snap", before)
    assert len(before) <= len(loaded) <= 2000
    assert loaded.search("word5 topic5", top_k=3)  # the loaded index answers queries


def test_concurrent_add_and_persist_async(tmp_path, index):
    acknowledged = []

    async def add_chunks():
        for start in range(0, 2000, 50):
            batch = [make_chunk(i) for i in range(start, start + 50)]
            await asyncio.to_thread(index.add_chunks, batch)
            acknowledged.extend(c.chunk_id for c in batch)

    async def persist_later():
        while len(acknowledged) < 300:
            await asyncio.sleep(0.001)
        before = list(acknowledged)
        await asyncio.to_thread(index.persist, tmp_path / "snap")
        return before

    async def main():
        return await asyncio.gather(add_chunks(), persist_later())

    _, before = asyncio.run(main())
    assert_snapshot_has(tmp_path / "snap", before)
    assert len(index) == 2000


def test_multiple_persists_during_indexing(tmp_path, index):
    """Twenty persists while one writer indexes. The two take turns by handshake, so the count
    does not depend on the machine's speed: every ``PER_ROUND`` adds the writer asks for a
    persist and waits until it has started; it then adds the next round while that persist
    runs. Each snapshot must hold every chunk acknowledged before its persist began."""
    rounds, per_round = 20, 150
    acknowledged = []
    wants_persist = threading.Semaphore(0)
    persist_started = threading.Semaphore(0)
    failures = []

    def add_chunks():
        try:
            for i in range(rounds * per_round):
                if i % per_round == 0:
                    wants_persist.release()
                    assert persist_started.acquire(timeout=120), "no persist started"
                index.add(f"doc{i // 5}", [make_chunk(j, f"doc{i // 5}") for j in range(i // 5 * 5, i + 1)])
                acknowledged.append(i)
        except BaseException as e:  # reported by the main thread
            failures.append(e)
            wants_persist.release()

    writer = threading.Thread(target=add_chunks)
    writer.start()
    snapshots = []
    for round_ in range(rounds):
        assert wants_persist.acquire(timeout=120), "the writer stopped asking"
        assert not failures, failures
        before = [f"c{i}" for i in list(acknowledged)]
        persist_started.release()  # the writer adds the next round while this persist runs
        path = tmp_path / f"snap{round_}"
        index.persist(path)
        snapshots.append((path, before))
    writer.join()
    assert not failures, failures
    assert len(snapshots) == rounds and len(acknowledged) == rounds * per_round
    for path, before in snapshots:
        assert_snapshot_has(path, before)
    # One directory persisted into again and again keeps working too.
    for _ in range(3):
        index.persist(tmp_path / "again")
    assert len(vecindex.VectorIndex.open(tmp_path / "again")) == len(index) == 3000
