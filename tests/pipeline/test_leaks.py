"""The pipeline refuses to train or select on what the evaluated split translates."""

import pytest

from xstilts.config import RunConfig, from_dict
from xstilts.errors import ConfigError
from xstilts.pipeline.run import plan_run


@pytest.mark.realdata
def test_xcopa_val_refuses_copa_val_for_model_selection(shared_data, tiny_model, tmp_path):
    raw = {
        "name": "leak",
        "model": {"name_or_path": str(tiny_model)},
        "target": {"task": "xcopa", "evaluation": {"split": "dev", "languages": ["et", "it"]}},
    }
    with pytest.raises(ConfigError, match="COPA"):
        plan_run(from_dict(RunConfig, raw), data_dir=shared_data, out_dir=tmp_path / "o")
    raw["target"]["evaluation"]["split"] = "test"  # test is fine with COPA val selection
    plan = plan_run(from_dict(RunConfig, raw), data_dir=shared_data, out_dir=tmp_path / "o")
    assert set(plan.evaluation) == {"et", "it"}
