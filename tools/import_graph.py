"""The package-level import graph of ``src/xstilts`` (read with ``ast``, nothing imported).

A node is the first path component under ``xstilts/``: a subpackage (``tasks``, ``pipeline``)
or a top-level module (``config``, ``cli``). Every ``import`` counts — at module level and
inside functions (a lazy import is still a dependency), absolute (``xstilts.x``) and relative.
``if TYPE_CHECKING:`` imports count too: the layer rules are about what a module knows of.

    python tools/import_graph.py            # edges, then the cycles
    python tools/import_graph.py --modules  # module-level edges (xstilts.a.b -> xstilts.c)

``tests/architecture/test_import_layers.py`` loads this file and checks the graph against the layers.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "xstilts"


def module_name(path: Path, root: Path = ROOT) -> str:
    """``src/xstilts/tasks/base.py`` -> ``xstilts.tasks.base`` (``__init__`` -> the package)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    # a package's own __init__ is level 1 = itself; a module's level 1 = its package
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop] if drop else base
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """Every ``xstilts`` module ``path`` imports, with the line of the import."""
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "xstilts"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            if target.split(".")[0] != "xstilts":
                continue
            # `from xstilts.report import figures`: a name that is a module or a package is
            # that module (what the importer depends on); any other name is an attribute of
            # the package's __init__ (`from xstilts import __version__`: the root, no node)
            pkg = root.parent.joinpath(*target.split("."))
            for a in node.names:
                is_module = (pkg / f"{a.name}.py").exists() or (pkg / a.name).is_dir()
                out.append((f"{target}.{a.name}" if is_module else target, node.lineno))
    return out


def node_of(module: str) -> str | None:
    """``xstilts.tasks.readers.nli`` -> ``tasks``; ``xstilts`` itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def module_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(importer module, imported module) -> ['file:line', ...]."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        src = module_name(path, root)
        for target, line in imported_modules(path, root):
            if target != src:
                edges[(src, target)].append(f"{path.relative_to(root.parent.parent)}:{line}")
    return dict(edges)


def package_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(importer node, imported node) -> ['file:line', ...], self-edges dropped."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (src, dst), where in module_edges(root).items():
        a, b = node_of(src), node_of(dst)
        if a and b and a != b:
            edges[(a, b)] += where
    return dict(edges)


def cycles(edges) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="module-level edges")
    parser.add_argument("--where", action="store_true", help="the file:line of each edge")
    args = parser.parse_args(argv)
    edges = module_edges() if args.modules else package_edges()
    for (a, b), where in sorted(edges.items()):
        print(f"{a} -> {b}" + (f"    {', '.join(where)}" if args.where else f"  ({len(where)})"))
    found = cycles(edges)
    print(f"\n{len(found)} cycle(s)" + (":" if found else ""))
    for comp in found:
        print("  " + " <-> ".join(comp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
