"""The layers of ``src/xstilts`` import one way only (docs/architecture.md).

Every import counts: module level, inside functions (a lazy import is still a dependency) and
under ``TYPE_CHECKING``. Two checks over the graph ``tools/import_graph.py`` reads with
``ast``: no cycle between packages (a package = the first name under ``xstilts/``; top-level
modules are their own node), and no import from a layer to a higher one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("_import_graph", ROOT / "tools" / "import_graph.py")
graph = importlib.util.module_from_spec(_spec)
sys.modules["_import_graph"] = graph
_spec.loader.exec_module(graph)

# Lowest first. A module belongs to the entry with the longest matching dotted prefix (under
# ``xstilts.``); a module may import its own layer and any layer below, never one above.
LAYERS: list[tuple[str, list[str]]] = [
    # no xstilts imports but errors: the error types, process state, the cache switch, YAML
    ("base", ["errors", "signals", "caching", "runtime", "config_yaml"]),
    # data only: language tables, example records, the demo data's vocabulary
    ("tables", ["tasks.languages", "tasks.examples", "data"]),
    # one reader per released format (files -> example records)
    ("readers", ["tasks.readers"]),
    # pure metrics: (refs, preds, *, language) -> {name: value}
    ("metrics", ["evaluation"]),
    # task specs and their registry: a spec holds its reader, its metric and its formats
    ("task specs", ["tasks"]),
    # the run / grid config schema and its validation (task names checked against the specs)
    ("config", ["config", "config_rules", "config_check"]),
    # what runs write and read back: rows, stage records, the XTREME layout and its scorer
    ("results", ["results"]),
    # encoding, embedding cache, exact search, BUCC mining: any encoder, no training
    ("retrieval", ["retrieval"]),
    # examples -> tensors, outputs -> predictions, per head family; tokenizer cache
    ("features", ["features"]),
    # encoder + heads, checkpoints, adaptation (LoRA, adapters)
    ("modeling", ["modeling"]),
    # the training loop, samplers, progress and experiment tracking
    ("training", ["tracking", "training"]),
    # stages of one run (plan, train, evaluate, publish); preparing data directories
    ("pipeline", ["pipeline", "data_prepare"]),
    # many runs: grid spec, stage graph, executors, status
    ("grid", ["grid"]),
    # statistics over result rows, then the report built from them
    ("analysis", ["analysis"]),
    ("report", ["report"]),
    # the command line
    ("commands", ["demo", "commands", "cli"]),
]

# (importer module, imported module) pairs allowed to go upward, each with why. Keep it empty.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def layer_of(module: str) -> int:
    name = module.removeprefix("xstilts.")
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best is None:
        raise AssertionError(f"module {module} is in no layer: add it to LAYERS")
    return best


def test_every_module_has_a_layer():
    for path in sorted(graph.ROOT.rglob("*.py")):
        module = graph.module_name(path)
        if module != "xstilts":
            layer_of(module)


def test_no_import_goes_up_a_layer():
    upward = []
    for (src, dst), where in sorted(graph.module_edges().items()):
        if dst == "xstilts" or (src, dst) in ALLOWED_UPWARD:
            continue
        a, b = layer_of(src), layer_of(dst)
        if b > a:
            upward.append(
                f"{src} ({LAYERS[a][0]}) imports {dst} ({LAYERS[b][0]}) at {', '.join(where)}"
            )
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_cycle_between_packages():
    found = graph.cycles(graph.package_edges())
    assert not found, f"package import cycles: {found}"


def test_no_cycle_between_modules():
    """Inside a package too, modules import one way (a lazy import is still an edge): each
    module can be read knowing only the ones it imports."""
    found = graph.cycles(graph.module_edges())
    assert not found, f"module import cycles: {found}"


def test_allowed_exceptions_are_still_needed():
    edges = graph.module_edges()
    stale = [pair for pair in ALLOWED_UPWARD if pair not in edges]
    assert not stale, f"ALLOWED_UPWARD lists imports that no longer exist: {stale}"


# --- the checker itself: it must see what it is meant to see ---------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "xstilts"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def test_graph_sees_lazy_relative_and_from_package_imports(tmp_path):
    root = _tree(
        tmp_path,
        {
            "__init__.py": "__version__ = '0'\n",
            "a/__init__.py": "",
            "a/x.py": "def f():\n    from ..b import y\n",  # lazy and relative
            "b/__init__.py": "",
            "b/y.py": "from xstilts import c\nfrom xstilts import __version__\n",
            "c.py": "import xstilts.a.x\n",
        },
    )
    edges = graph.package_edges(root)
    assert set(edges) == {("a", "b"), ("b", "c"), ("c", "a")}
    assert graph.cycles(edges) == [["a", "b", "c"]]


def test_from_package_import_submodule_is_an_edge_to_the_submodule(tmp_path):
    # `from xstilts.p import m` depends on p.m (a module), `from xstilts.p import f` on p
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "p/__init__.py": "from xstilts.p.m import f\n",
            "p/m.py": "def f():\n    from xstilts.p import n\n",
            "p/n.py": "from xstilts.p import f\n",
        },
    )
    edges = graph.module_edges(root)
    assert set(edges) == {
        ("xstilts.p", "xstilts.p.m"),
        ("xstilts.p.m", "xstilts.p.n"),
        ("xstilts.p.n", "xstilts.p"),
    }
    assert graph.cycles(edges) == [["xstilts.p", "xstilts.p.m", "xstilts.p.n"]]


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("xstilts.tasks.languages", "tables"),
        ("xstilts.tasks.readers.nli", "readers"),
        ("xstilts.tasks.base", "task specs"),
        ("xstilts.pipeline.plan", "pipeline"),
    ],
)
def test_longest_prefix_decides_the_layer(module, layer):
    assert LAYERS[layer_of(module)][0] == layer
