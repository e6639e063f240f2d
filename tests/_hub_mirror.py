"""Local folders laid out like Hugging Face hub dataset repositories, for tests that go through
the real ``datasets.load_dataset`` (``XSTILTS_HUB_MIRROR=ROOT`` maps ``owner/name`` to
``ROOT/owner/name``).

Two layouts, as on the hub:

* ``configs``: data files ``<config>/<split>-00000-of-00001.<ext>`` and a ``README.md`` dataset
  card whose ``configs:`` YAML names them (what ``Convert dataset to Parquet`` commits write);
* ``folders``: the parquet-converter branch ``refs/convert/parquet``,
  ``<config>/<split>/0000.parquet`` and no card (read with ``data_dir=<config>``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml


def write_repo(
    root: Path,
    dataset: str,
    configs: Mapping[str, Mapping[str, Sequence[Mapping]]],
    *,
    features=None,
    layout: str = "configs",
    fmt: str = "parquet",
) -> Path:
    """Write ``configs`` (config -> split -> rows) as the repository ``root/dataset``.

    ``features`` (a ``datasets.Features``, or one per config) types the columns as the real
    repository does (``ClassLabel`` label ids …); parquet files carry them in their schema."""
    import datasets

    repo = Path(root) / dataset
    card: list[dict] = []
    for config, splits in configs.items():
        entry = {"config_name": config, "data_files": []}
        for split, rows in splits.items():
            if layout == "folders":
                path = repo / config / split / "0000.parquet"
            else:
                path = repo / config / f"{split}-00000-of-00001.{fmt}"
                entry["data_files"].append({"split": split, "path": f"{config}/{split}-*"})
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "jsonl":
                path.write_text(
                    "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8",
                )
            else:
                feats = features.get(config) if isinstance(features, Mapping) else features
                datasets.Dataset.from_list(list(rows), features=feats).to_parquet(str(path))
        card.append(entry)
    if layout == "configs":
        text = "---\n" + yaml.safe_dump({"configs": card}, sort_keys=False) + "---\n# mirror\n"
        (repo / "README.md").write_text(text, encoding="utf-8")
    return repo
