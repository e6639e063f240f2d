"""Shared check: a run's xtreme-layout export rescores to exactly the run's own rows."""

from __future__ import annotations

import json
from pathlib import Path

from xstilts.results.score import score_file
from xstilts.results.store import load_rows


def check_export(out: Path, *, labelled: bool = True) -> list[dict]:
    """Rescore every exported language file of ``out/xtreme`` with ``xstilts score``'s scorer and
    compare with the zero-shot rows of the same stage; return the manifest's file entries."""
    manifest = json.loads((out / "xtreme" / "manifest.json").read_text())
    rows = load_rows(out / "stages")
    compared = 0
    for f in manifest["files"]:
        sub = out / "xtreme" / f["submission"]
        pred = sub / "predictions" / f["task"] / f["file"]
        gold = sub / "labels" / f["task"] / f["file"]
        assert pred.is_file() and f["file"] == f"test-{f['language']}.{pred.suffix[1:]}"
        assert gold.is_file() == f["labels"] == labelled
        if not labelled:
            continue
        mine = rows[
            (rows["stage_key"] == f["stage_key"])
            & (rows["task"] == f["task"])
            & (rows["language"] == f["language"])
        ]
        want = dict(zip(mine["metric"], mine["value"]))
        got = score_file(f["task"], f["language"], pred, gold, strict=True)
        shared = set(want) & set(got)
        assert shared, (f, want, got)
        for metric in shared:
            assert abs(got[metric] - want[metric]) < 1e-9, (f, metric, got[metric], want[metric])
            compared += 1
    assert manifest["files"] and (compared > 0 or not labelled)
    return manifest["files"]
