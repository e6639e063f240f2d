"""SIGTERM (``timeout``, ``kill``, a Slurm preemption) mid-training: the process removes its
temporary stage directory and its claim, exits 143, and a re-run finishes with exactly the
rows of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from _configs import write_config

from xstilts.cli import main
from xstilts.results.store import load_rows

# ``xstilts run`` with the training loop's checkpoint writer patched: after the first
# checkpoint of the run it says so (a marker file) and waits, so the test signals the process
# at a known point of training from outside, as ``timeout`` or Slurm would.
RUNNER = r"""
import sys, time
from pathlib import Path
cfg, out, marker = sys.argv[1:4]
import xstilts.training.loop as loop
real = loop.save_checkpoint
def save(*a, **k):
    real(*a, **k)
    if not Path(marker).exists():
        Path(marker).write_text("training")
        time.sleep(120)
loop.save_checkpoint = save
from xstilts.cli import main
sys.exit(main(["run", cfg, "--output-dir", out]))
"""


def _rows(out: Path) -> pd.DataFrame:
    rows = load_rows(out / "stages").drop(columns=["time", "git_sha"])
    rows = rows[rows["stage"] == "zero_shot"].copy()
    rows["protocol"] = rows["protocol"].map(lambda p: json.dumps(p, sort_keys=True))
    return rows.sort_values(list(rows.columns)).reset_index(drop=True)


def test_sigterm_mid_training_cleans_up_and_the_rerun_matches(tiny_model, demo_data, tmp_path):
    cfg = write_config(tmp_path / "cfg.yaml", tiny_model, demo_data)
    ref = tmp_path / "ref"
    assert main(["run", str(cfg), "--output-dir", str(ref)]) == 0

    out, marker = tmp_path / "out", tmp_path / "at-checkpoint"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    p = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(cfg), str(out), str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.time() + 300
    while not marker.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), p.communicate(timeout=60)[0][-3000:]
    stages = out / "stages"
    assert list(stages.glob(".tmp-*"))  # a stage is being built
    p.send_signal(signal.SIGTERM)
    log = p.communicate(timeout=120)[0]
    assert p.returncode == 143, log[-3000:]
    assert "terminated by SIGTERM; finished stages are kept" in log
    assert "Traceback" not in log
    assert not list(stages.glob(".tmp-*")), "temporary stage directory left behind"
    claims = list((stages / ".claims").iterdir()) if (stages / ".claims").is_dir() else []
    owners = [json.loads(c.read_text()).get("pid") for c in claims]
    assert p.pid not in owners and not claims, "claim left behind"
    assert not [d for d in stages.iterdir() if not d.name.startswith(".")]  # nothing published

    # resumable: the re-run builds every stage and gets the uninterrupted run's rows
    assert main(["run", str(cfg), "--output-dir", str(out)]) == 0
    pd.testing.assert_frame_equal(_rows(out), _rows(ref))
    assert len(_rows(out)) > 0
