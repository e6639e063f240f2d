"""``xstilts export-model STAGE_DIR --output DIR``: one checkpoint as a Hugging Face model
folder (weights, config, tokenizer, model card) ready for ``push_to_hub``.

Any checkpoint, of either on-disk format (``modeling/hf_format.py``), is read with
``load_checkpoint`` and written again with ``save_checkpoint``, so the output is always the
current format, and its model card also gets what the stage's ``stage.json`` records (the key
inputs: base model, data hashes, hyperparameters). Nothing is uploaded: pushing is the user's
step (``huggingface-cli upload`` or ``AutoModel...push_to_hub``)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from xstilts.errors import ConfigError

# Which checkpoint of a stage to export when none is named: the English-dev best when the
# stage selected on dev, else the weight average, else the last one.
PREFERENCE = ("best", "average", "last")


def pick_checkpoint(stage_dir: Path, name: str | None) -> Path:
    from xstilts.modeling.hf_format import INFO

    if (stage_dir / INFO).is_file():
        if name:
            raise ConfigError(f"{stage_dir}: is a checkpoint itself; --checkpoint is for stages")
        return stage_dir
    names = (name,) if name else PREFERENCE
    for n in names:
        if (stage_dir / n / INFO).is_file():
            return stage_dir / n
    have = sorted(p.name for p in stage_dir.iterdir() if (p / INFO).is_file())
    raise ConfigError(
        f"{stage_dir}: no checkpoint {' or '.join(names)} (has: {', '.join(have) or 'none'})"
    )


def export_model(src: Path, out: Path, *, checkpoint: str | None = None) -> Path:
    """Write the chosen checkpoint of stage (or checkpoint) ``src`` to the new folder ``out``
    atomically (a sibling temporary folder renamed at the end); refuses an existing ``out``."""
    from xstilts.modeling.model import load_checkpoint, save_checkpoint

    if not src.is_dir():
        raise ConfigError(f"{src}: not a directory")
    if out.exists():
        raise ConfigError(f"{out}: exists; choose a new --output folder (nothing is overwritten)")
    ckpt = pick_checkpoint(src, checkpoint)
    try:
        model, tokenizer, info = load_checkpoint(ckpt)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{ckpt}: cannot read checkpoint ({e})") from None
    meta = {k: v for k, v in info.items() if k not in ("heads", "weights", "tokenizer_files")}
    meta.pop("format", None)
    stage_file = ckpt.parent / "stage.json"
    if stage_file.is_file():  # key inputs of the stage (older checkpoints lack them)
        stage = json.loads(stage_file.read_text())
        meta.setdefault("inputs", stage.get("inputs"))
        meta.setdefault("stage", stage.get("key"))
    meta["exported_from"] = f"{ckpt.parent.name}/{ckpt.name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)  # our own leftover from a crashed export of this process id
    try:
        save_checkpoint(model, tokenizer, tmp, meta)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _cmd(args: argparse.Namespace) -> int:
    out = export_model(Path(args.stage_dir), Path(args.output), checkpoint=args.checkpoint)
    info = json.loads((out / "checkpoint.json").read_text())
    arch = info["weights"]["architecture"]
    print(f"written: {out}")
    print(
        "loads with: AutoModel / AutoTokenizer"
        + (f", {arch} (head)" if arch else "; head(s) in xstilts_heads.safetensors")
    )
    print(
        f"push (your step): huggingface-cli upload <user>/<name> {out}  "
        "or model.push_to_hub(...) after from_pretrained"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-model",
        help="write a stage's checkpoint as a Hugging Face model folder (with a model card)",
        description=(
            "Copy one checkpoint of STAGE_DIR (default: best, else average, else last) to "
            "--output as a Hugging Face model folder: AutoModel and AutoTokenizer load it, "
            "AutoModelFor<Head> too where the head maps, README.md is its model card. "
            "Old-format checkpoints are converted. Nothing is uploaded."
        ),
    )
    p.add_argument(
        "stage_dir", help="a stage directory (runs/.../stages/<kind>-<key>) or checkpoint"
    )
    p.add_argument("--output", required=True, help="new folder to write (must not exist)")
    p.add_argument("--checkpoint", help="which checkpoint of the stage: best, last, step-N, ...")
    p.set_defaults(func=_cmd)
