"""Full fine-tuning vs LoRA, side by side, on the cells the LoRA addendum finished.

Reads the addendum's zero-shot rows and stage records (its output folder), its report's
language-averaged deltas (``xstilts report``: ``<report>/tables/averages.csv``), the CPU
study's per-seed scores and averages, and ``bench.json`` (bench.py: per-step time, memory and
checkpoint size of both modes under the same load). Compares like with like: the same
languages and seeds for both columns, plus the CPU study's own 3-seed, all-language figures.

    python studies/cpu-minilm-peft/compare.py OUT REPORT_DIR --full scores.csv [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

PRIMARY = {"xnli": "accuracy", "udpos": "f1"}


def md(df: pd.DataFrame, index: bool = False) -> str:
    """A markdown table (pandas' ``to_markdown`` needs tabulate, not a dependency)."""
    if index:
        df = df.reset_index()

    def cell(v) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.2f}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def lora_scores(out: Path) -> pd.DataFrame:
    from xstilts.results.store import load_rows

    rows = load_rows(out)
    rows = rows[(rows["stage"] == "zero_shot") & rows["task"].isin(list(PRIMARY))]
    rows = rows[rows.apply(lambda r: r["metric"] == PRIMARY[r["task"]], axis=1)]
    return rows.rename(columns={"intermediate": "system", "value": "score"})[
        ["task", "language", "system", "seed", "score"]
    ]


def stage_costs(out: Path) -> pd.DataFrame:
    recs = []
    for d in sorted((out / "stages").glob("*-*")):
        f = d / "stage.json"
        if not f.is_file() or d.name.startswith("."):
            continue
        info = json.loads(f.read_text())
        task = info["inputs"].get("task") or (
            "+".join(info["inputs"].get("tasks", {})) if info["kind"] == "intermediate" else "-"
        )
        disk = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        recs.append({"kind": info["kind"], "task": task, "wall_s": info.get("wall_s"),
                     "cpu_s": info.get("cpu_s"), "disk_mb": disk / 2**20})  # fmt: skip
    return pd.DataFrame(recs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("report", type=Path)
    ap.add_argument("--full", type=Path, required=True)
    ap.add_argument("--seeds", default=None)
    ap.add_argument("--bench", type=Path, default=None)
    ap.add_argument("--log", type=Path, nargs="*", default=[], help="grid run logs ([mem ] lines)")
    a = ap.parse_args()
    here = Path(__file__).parent
    # zero-shot averages leave English out, as the report's (its CIs are beside them)
    lora = lora_scores(a.out)
    lora = lora[lora["language"] != "en"]
    if a.seeds:
        lora = lora[lora["seed"].isin([int(s) for s in a.seeds.split(",")])]
    full = pd.read_csv(a.full, dtype={"seed": str})
    # seed "-": a seed-independent score (Tatoeba's pretrained baseline), not among these tasks
    full = full[full["seed"] != "-"].astype({"seed": int})
    full_avgs = pd.read_csv(a.full.parent / "averages.csv")
    lora_avgs_path = a.report / "tables" / "averages.csv"
    lora_avgs = pd.read_csv(lora_avgs_path) if lora_avgs_path.is_file() else pd.DataFrame()
    lines, table = [], []
    for task in PRIMARY:
        lt = lora[lora["task"] == task]
        if lt.empty:
            continue
        langs = sorted(set(lt["language"]))
        seeds = sorted(set(lt["seed"]))
        ft = full[(full["task"] == task) & full["language"].isin(langs)]
        base_l = lt[lt["system"] == "none"]
        for system in sorted(set(lt["system"]), key=lambda s: (s != "none", s)):
            ls = lt[lt["system"] == system]
            if set(ls["language"]) != set(langs):
                continue  # an unfinished cell
            fs_same = ft[(ft["system"] == system) & ft["seed"].isin(seeds)]
            fs_all = ft[ft["system"] == system]
            row = {
                "task": task,
                "system": system,
                "languages": len(langs),
                "seeds": ",".join(map(str, seeds)),
                "lora_avg": ls.groupby("seed")["score"].mean().mean(),
                "full_avg_same_seeds": fs_same.groupby("seed")["score"].mean().mean(),
                "full_avg_3_seeds": fs_all.groupby("seed")["score"].mean().mean(),
                # spread: standard deviation over seeds of the language average
                "lora_seed_sd": ls.groupby("seed")["score"].mean().std(),
                "full_seed_sd": fs_all.groupby("seed")["score"].mean().std(),
            }
            if system != "none" and not base_l.empty:
                fb_same = ft[(ft["system"] == "none") & ft["seed"].isin(seeds)]
                fb_all = ft[ft["system"] == "none"]
                row["lora_delta"] = row["lora_avg"] - base_l.groupby("seed")["score"].mean().mean()
                row["full_delta_same"] = row["full_avg_same_seeds"] - (
                    fb_same.groupby("seed")["score"].mean().mean()
                )
                row["full_delta_3_seeds"] = row["full_avg_3_seeds"] - (
                    fb_all.groupby("seed")["score"].mean().mean()
                )
                la = lora_avgs[(lora_avgs.get("task") == task) & (lora_avgs.get("system") == system)] \
                    if not lora_avgs.empty else pd.DataFrame()  # fmt: skip
                if not la.empty:
                    row["lora_ci"] = f"[{la.iloc[0]['ci_lo']:.2f}, {la.iloc[0]['ci_hi']:.2f}]"
                fa = full_avgs[(full_avgs["task"] == task) & (full_avgs["system"] == system)]
                if not fa.empty:
                    r = fa.iloc[0]
                    row["full_ci_study"] = (
                        f"{r['delta_avg']:+.2f} [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}] "
                        f"({int(r['n_languages'])} langs, 3 seeds)"
                    )
            table.append(row)
    df = pd.DataFrame(table)
    a.report.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.report / "compare.csv", index=False)
    costs = stage_costs(a.out)
    costs.to_csv(a.report / "stage_costs.csv", index=False)
    bench_path = a.bench or a.report / "bench.json"
    lines.append("# Full fine-tuning vs LoRA (addendum cells)\n")
    lines.append(md(df) if len(df) else "(no finished cell)")
    lines.append("\n## Seconds and disk per stage (LoRA, this machine, shared)\n")
    if len(costs):
        agg = costs.groupby(["kind", "task"]).agg(
            n=("wall_s", "size"), wall_s=("wall_s", "mean"), cpu_s=("cpu_s", "mean"),
            disk_mb=("disk_mb", "mean"),
        )  # fmt: skip
        lines.append(md(agg, index=True))
    if bench_path.is_file():
        bench = pd.DataFrame(json.loads(bench_path.read_text()))
        b = bench.groupby("mode").agg(
            wall_s_per_step=("wall_s_per_step", "median"),
            cpu_s_per_step=("cpu_s_per_step", "median"),
            peak_rss_mb=("peak_rss_mb", "max"),
            trainable_params=("trainable_params", "first"),
            checkpoint_mb=("checkpoint_bytes", lambda x: x.iloc[0] / 2**20),
        )
        lines.append("\n## Same-load benchmark (bench.py: batch 32 x 128, one thread)\n")
        lines.append(md(b, index=True))
    mem = [
        line.split("] ", 2)[-1].strip()
        for log in a.log
        if log.is_file()
        for line in log.read_text(errors="replace").splitlines()
        if "[mem ]" in line
    ]
    if mem:
        lines.append("\n## Worker memory after each stage (grid log; peak is per worker process)\n")
        lines += [f"- {m}" for m in mem]
    (a.report / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    del here


if __name__ == "__main__":
    main()
