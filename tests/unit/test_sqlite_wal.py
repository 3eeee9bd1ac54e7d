import multiprocessing
from pathlib import Path

from shared.sqlite_wal import connect_wal


def _open(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        conn = connect_wal(path, timeout=10)
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        conn.close()
        results.put(mode)
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put(f"{type(exc).__name__}: {exc}")


def test_many_processes_opening_a_new_file_at_once_all_get_wal(tmp_path: Path):
    ctx = multiprocessing.get_context("fork")
    for attempt in range(3):  # several fresh files: the race is on creation
        path = str(tmp_path / f"new-{attempt}.sqlite")
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, barrier, results)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert sorted(results.get(timeout=5) for _ in procs) == ["wal"] * 6


def test_creates_the_folder(tmp_path: Path):
    conn = connect_wal(tmp_path / "a" / "b" / "x.sqlite", timeout=1)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
