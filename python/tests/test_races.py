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
    acknowledged = []
    done = threading.Event()

    def add_chunks():
        for i in range(3000):
            index.add(f"doc{i // 5}", [make_chunk(j, f"doc{i // 5}") for j in range(i // 5 * 5, i + 1)])
            acknowledged.append(i)
        done.set()

    writer = threading.Thread(target=add_chunks)
    writer.start()
    snapshots = []
    while not done.is_set() and len(snapshots) < 20:
        before = [f"c{i}" for i in list(acknowledged)]
        path = tmp_path / f"snap{len(snapshots)}"
        index.persist(path)
        snapshots.append((path, before))
        time.sleep(0.005)
    writer.join()
    assert len(snapshots) >= 3, "the writer finished before three persists ran"
    for path, before in snapshots:
        assert_snapshot_has(path, before)
    # One directory persisted into again and again keeps working too.
    for _ in range(3):
        index.persist(tmp_path / "again")
    assert len(vecindex.VectorIndex.open(tmp_path / "again")) == len(index) == 3000
