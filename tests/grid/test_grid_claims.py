"""Stage claims: exclusive creation, heartbeat, stale takeover (raced), lost claims, cleanup."""

import json
import multiprocessing as mp
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from xstilts.pipeline import claims
from xstilts.pipeline import stages as st
from xstilts.pipeline.stages import (
    ClaimLost,
    ClaimSettings,
    Stage,
    build_stage,
    checkpoints_deleted,
    clean_stale_tmp,
    delete_checkpoints,
    live_claim,
    run_stage,
    try_claim,
)

FAST = ClaimSettings(heartbeat_s=0.05, stale_after_s=0.4, poll_s=0.02)


def _stage(root: Path, key: str = "abc") -> Stage:
    return Stage("target", key, {"x": 1}, root)


def _claim_files(stage: Stage) -> list[str]:
    d = stage.root / "stages" / st.CLAIMS_DIR
    return sorted(p.name for p in d.glob(f"{stage.name}.*")) if d.is_dir() else []


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()  # reaped: the pid is free (not even a zombie)
    return p.pid


def _fake_claim(stage: Stage, gen: int, *, host: str, pid: int, age_s: float = 0.0) -> Path:
    d = stage.root / "stages" / st.CLAIMS_DIR
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{stage.name}.{gen}"
    path.write_text(json.dumps({"host": host, "pid": pid, "start": None, "token": "x" * 32}))
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def test_claim_is_exclusive_until_released(tmp_path):
    s = _stage(tmp_path)
    a = try_claim(s, FAST)
    assert a is not None and _claim_files(s) == [f"{s.name}.0"]
    assert try_claim(s, FAST) is None  # held by a live worker (this process)
    assert live_claim(s, FAST)["pid"] == os.getpid()
    a.release()
    assert _claim_files(s) == []
    b = try_claim(s, FAST)
    assert b is not None and b.gen == 0
    b.release()


def test_claim_of_dead_worker_on_this_host_is_taken_over_at_once(tmp_path):
    s = _stage(tmp_path)
    _fake_claim(s, 0, host=st.HOST, pid=_dead_pid())
    c = try_claim(s, ClaimSettings(heartbeat_s=10, stale_after_s=3600))
    assert c is not None and c.gen == 1
    assert _claim_files(s) == [f"{s.name}.1"]  # the superseded generation is removed
    c.release()


def test_claim_of_other_host_is_stale_only_after_its_heartbeat_stops(tmp_path):
    s = _stage(tmp_path)
    _fake_claim(s, 0, host="elsewhere", pid=1)
    assert try_claim(s, FAST) is None  # fresh mtime: a live worker on another host
    _fake_claim(s, 0, host="elsewhere", pid=1, age_s=1.0)
    c = try_claim(s, FAST)
    assert c is not None and c.gen == 1
    c.release()


def test_heartbeat_keeps_a_long_claim_fresh(tmp_path, monkeypatch):
    s = _stage(tmp_path)
    a = try_claim(s, FAST)
    # judge by mtime only, as a worker on another host would
    monkeypatch.setattr(claims, "HOST", "another-host")
    t_end = time.time() + 4 * FAST.stale_after_s
    while time.time() < t_end:
        assert try_claim(s, FAST) is None
        time.sleep(0.05)
    a._stop.set()  # the holder hangs: no more heartbeats
    a._thread.join()
    time.sleep(FAST.stale_after_s * 1.5)
    b = try_claim(s, FAST)
    assert b is not None and b.gen == 1
    assert not a.check()  # the hung holder sees it lost the stage
    b.release()


def _race(root: str, barrier, results) -> None:
    s = _stage(Path(root))
    barrier.wait()
    c = try_claim(s, ClaimSettings(heartbeat_s=10, stale_after_s=3600))
    results.put(c is not None)
    if c is not None:
        time.sleep(0.5)  # hold it while the others look
        c.release()


@pytest.mark.parametrize("round_", range(3))
def test_racing_takeover_of_one_stale_claim_has_one_winner(tmp_path, round_):
    s = _stage(tmp_path)
    _fake_claim(s, 0, host=st.HOST, pid=_dead_pid())
    ctx = mp.get_context("fork")  # the children only touch files
    n = 6
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    wins = [results.get(timeout=30) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
    assert sum(wins) == 1, wins


def test_lost_claim_does_not_publish(tmp_path):
    s = _stage(tmp_path)
    a = try_claim(s, FAST)

    def work(tmp: Path) -> dict:
        (tmp / "out.txt").write_text("x")
        _fake_claim(s, a.gen + 1, host="elsewhere", pid=1)  # taken over meanwhile
        return {}

    with pytest.raises(ClaimLost):
        build_stage(s, work, a)
    a.release()
    assert not s.dir.exists()
    assert not list((tmp_path / "stages").glob(".tmp-*"))


def test_run_stage_waits_for_the_worker_holding_the_claim(tmp_path):
    s = _stage(tmp_path)
    holder = try_claim(s, FAST)

    def other_worker():
        time.sleep(0.3)
        build_stage(s, lambda tmp: {"by": "other"}, holder)
        holder.release()

    t = threading.Thread(target=other_worker)
    t.start()

    def work(tmp: Path) -> dict:
        raise AssertionError("built twice")

    info = run_stage(s, work, settings=FAST)
    t.join()
    assert info["by"] == "other" and s.done


def test_stale_temporary_dirs_are_removed(tmp_path):
    s = _stage(tmp_path)
    stages = tmp_path / "stages"
    dead = stages / f".tmp-{s.name}@{st.HOST}@{_dead_pid()}@deadbeef"
    live = stages / f".tmp-{s.name}@{st.HOST}@{os.getpid()}@cafecafe"
    for d in (dead, live):
        (d / "best").mkdir(parents=True)
    removed = clean_stale_tmp(tmp_path, FAST)
    assert removed == [dead] and live.is_dir()
    # once the stage is published, any temporary dir of it is garbage
    build_stage(s, lambda tmp: {}, None)
    assert live in clean_stale_tmp(tmp_path, FAST) and not live.exists()


def test_delete_checkpoints_keeps_results(tmp_path):
    s = _stage(tmp_path)

    def work(tmp: Path) -> dict:
        for ck in ("best", "last"):
            (tmp / ck).mkdir()
            (tmp / ck / "model.safetensors").write_bytes(b"0" * 1000)
            (tmp / ck / "checkpoint.json").write_text(json.dumps({"step": 3}))
        (tmp / "rows.jsonl").write_text("{}\n")
        (tmp / "predictions").mkdir()
        (tmp / "predictions" / "p.jsonl").write_text("{}\n")
        return {}

    build_stage(s, work, None)
    assert delete_checkpoints(s) >= 2000
    assert checkpoints_deleted(s) and s.done
    assert not (s.dir / "best").exists() and not (s.dir / "last").exists()
    assert (s.dir / "rows.jsonl").is_file() and (s.dir / "predictions" / "p.jsonl").is_file()
    record = json.loads((s.dir / st.CHECKPOINTS_DELETED).read_text())
    assert record["checkpoints"]["best"] == {"step": 3}
