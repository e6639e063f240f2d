"""Every stage key of the CPU study's grids (and of a few configs with the rarer phases) is
what it was when ``tests/data/stage_keys.json`` was written: refactoring the planner or the
stage code re-runs nothing that is done. Regenerate (only for an intended key change):
``XSTILTS_SHARED_DATA=... PYTHONPATH=src python tests/_stage_keys.py``."""

from __future__ import annotations

import json

import pytest
from _stage_keys import FIXTURE, stage_keys  # tests/_stage_keys.py

pytestmark = pytest.mark.realdata


def test_stage_keys_unchanged(shared_data):
    want = json.loads(FIXTURE.read_text(encoding="utf-8"))
    got = json.loads(json.dumps(stage_keys(shared_data)))  # tuples as lists, like the file
    assert sorted(got["grids"]) == sorted(want["grids"])
    assert sorted(got["runs"]) == sorted(want["runs"])
    for name in want["grids"]:
        assert got["grids"][name] == want["grids"][name], f"grid {name}: stage keys changed"
    for name in want["runs"]:
        assert got["runs"][name] == want["runs"][name], f"config {name}: stage keys changed"
