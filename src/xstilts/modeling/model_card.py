"""The model card (``README.md``) every checkpoint carries, generated from ``checkpoint.json``.

It says what the model is (base model, intermediate and target tasks), what it was trained on
(data files and the hashes that key the stage), how (hyperparameters), how good it was on
English dev, and how to load it; Hugging Face's hub reads the YAML front matter."""

from __future__ import annotations

import json
from pathlib import Path

from xstilts import __version__


def _base_model(info: dict) -> str | None:
    inputs = info.get("inputs") or {}
    return inputs.get("model") or info.get("base_model")


def _front_matter(info: dict, arch: str | None) -> list[str]:
    lines = ["---", "library_name: transformers", "tags:", "- xstilts", "- x-stilts"]
    base = _base_model(info)
    # the hub links ``base_model`` only for a hub id, not a local path
    if base and not Path(base).is_absolute() and not base.startswith("."):
        lines.append(f"base_model: {json.dumps(base)}")
    pipeline = {
        "ForSequenceClassification": "text-classification",
        "ForTokenClassification": "token-classification",
        "ForQuestionAnswering": "question-answering",
    }
    for suffix, tag in pipeline.items():
        if arch and arch.endswith(suffix):
            lines.append(f"pipeline_tag: {tag}")
    return [*lines, "---", ""]


def _data_lines(info: dict) -> list[str]:
    """One line per data file: task, role, file, and the fingerprint (content hash) that is an
    input of the stage key."""
    out = []
    inputs = info.get("inputs") or {}
    prints = dict(inputs.get("tasks") or {})
    if "data" in inputs and info.get("tasks"):
        prints[info["tasks"][0]] = inputs["data"]
    if "corpus" in inputs:
        prints["mlm"] = inputs["corpus"]
    for task, proto in sorted((info.get("data") or {}).items()):
        fp = prints.get(task) or {}
        out.append(
            f"| {task} | train | `{proto.get('train_file')}` | "
            f"{proto.get('train_examples', '?')} | `{fp.get('train', '?')}` |"
        )
        if proto.get("dev_source"):
            out.append(
                f"| {task} | dev | `{proto.get('dev_source')}` | "
                f"{proto.get('dev_examples', '?')} | `{fp.get('dev') or '-'}` |"
            )
    return out


def model_card(info: dict, config=None) -> str:
    """Markdown with YAML front matter for a checkpoint described by ``info``."""
    weights = info.get("weights") or {}
    arch = weights.get("architecture")
    heads = info.get("heads") or {}
    inter = info.get("intermediate")
    tasks = info.get("tasks") or list(heads)
    phase = "target" if inter is not None else "intermediate"
    lines = _front_matter(info, arch)
    lines += [
        f"# xstilts {phase} checkpoint: {', '.join(tasks) or '-'}",
        "",
        "Trained with xstilts (X-STILTs: English intermediate-task training, zero-shot "
        "cross-lingual transfer).",
        "",
        f"- **Base model:** `{_base_model(info) or 'unknown'}`",
    ]
    if phase == "target":
        lines.append(f"- **Intermediate task(s):** {inter or 'none (direct fine-tuning)'}")
        lines.append(f"- **Target task:** {', '.join(tasks)}")
    else:
        lines.append(f"- **Intermediate task(s):** {', '.join(tasks)}")
    score = info.get("dev_score")
    lines.append(
        f"- **English dev score (model selection):** {score if score is not None else 'n/a'}"
    )
    step = info.get("step", info.get("averaged_steps"))
    lines += [
        f"- **Step:** {step if step is not None else 'n/a'}",
        f"- **Stage key:** `{info.get('stage', 'unknown')}`"
        + (
            f" (intermediate stage `{(info.get('inputs') or {})['intermediate']}`)"
            if (info.get("inputs") or {}).get("intermediate")
            else ""
        ),
        f"- **xstilts version:** {info.get('xstilts_version', __version__)}",
        "",
        "## Loading",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        'encoder = AutoModel.from_pretrained("PATH")  # the encoder alone',
        'tokenizer = AutoTokenizer.from_pretrained("PATH")',
    ]
    if arch:
        lines.append(f"from transformers import {arch}")
        lines.append(f'model = {arch}.from_pretrained("PATH")  # encoder + head')
    lines += ["```", ""]
    if not arch and heads:
        lines += [
            "The task head(s) "
            + ", ".join(f"`{t}` ({h['kind']})" for t, h in heads.items())
            + " have no identical Hugging Face class: their weights are in "
            "`xstilts_heads.safetensors` (xstilts names), read by `xstilts`.",
            "",
        ]
    data = _data_lines(info)
    if data:
        lines += [
            "## Training data",
            "",
            "| task | split | file | examples | content hash |",
            "|---|---|---|---|---|",
            *data,
            "",
        ]
    inputs = info.get("inputs") or {}
    hyper = {k: v for k, v in inputs.items() if k in ("training", "max_length", "head_dropout")}
    hyper.update({k: inputs[k] for k in ("seed", "sampling") if k in inputs})
    if hyper:
        lines += [
            "## Hyperparameters",
            "",
            "```json",
            json.dumps(hyper, indent=2, sort_keys=True, default=str),
            "```",
            "",
        ]
    if config is not None:
        lines += [f"Architecture: `{config.model_type}`, hidden size {config.hidden_size}.", ""]
    return "\n".join(lines)
