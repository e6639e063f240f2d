"""StageKind: a str-valued enum, so stage keys, directory names and stage.json read as before."""

from __future__ import annotations

import pytest

from xstilts.pipeline.stages import Stage, StageKind, make_stage


def test_stage_kind_is_its_string_everywhere(tmp_path):
    stage = make_stage(StageKind.ZERO_SHOT, {"x": 1}, tmp_path)
    assert stage == make_stage("zero_shot", {"x": 1}, tmp_path)
    assert stage.name.startswith("zero_shot-") and stage.kind == "zero_shot"
    assert Stage("target", "k", {}, tmp_path).kind is StageKind.TARGET
    with pytest.raises(ValueError):
        Stage("zero-shot", "k", {}, tmp_path)
