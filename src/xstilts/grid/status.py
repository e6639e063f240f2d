"""``xstilts grid status``: one snapshot of a grid's progress, as text or a self-contained HTML
page, refreshed with ``--watch``.

A snapshot reads only files: ``stage.json`` of finished stages (with their measured wall
seconds), claim files (owner and heartbeat age), failure records and the rows of finished
zero-shot stages. Finished stages never change, so what was read of them is kept between
refreshes of one ``--watch``; the graph itself is built (and the data checked) once.
"""

from __future__ import annotations

import html
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from xstilts.grid.graph import KINDS, Graph, grid_rows
from xstilts.grid.report import axes_line, node_label
from xstilts.grid.worker import recorded_failure, recorded_failures
from xstilts.pipeline.claims import claim_is_stale, generations, read_claim
from xstilts.pipeline.stages import StageKind, checkpoints_deleted
from xstilts.results.store import atomic_write_text
from xstilts.training.progress import duration

KIND_NAMES = {"mlm": "masked-LM", "intermediate": "intermediate", "target": "target",
              "zero_shot": "zero-shot"}  # fmt: skip


@dataclass
class NodeState:
    """What one stage is doing now."""

    state: str  # done | done* | running | failed | rebuild | ready | waiting
    owner: str = ""  # host:pid of a live claim
    beat_age_s: float | None = None  # seconds since the claim's heartbeat touched its file
    running_s: float | None = None  # seconds since the claim was taken
    error: str = ""  # a failed stage's one-line error
    late: bool = False  # heartbeat older than two beats: the worker may be stuck

    def text(self) -> str:
        if self.state != "running":
            return self.state
        beat = f", beat {duration(self.beat_age_s)} ago" if self.beat_age_s is not None else ""
        since = f", for {duration(self.running_s)}" if self.running_s is not None else ""
        return f"running ({self.owner}{beat}{since}{', LATE' if self.late else ''})"


@dataclass
class Memo:
    """What a ``--watch`` keeps between refreshes: facts of finished stages."""

    wall_s: dict[str, float] = field(default_factory=dict)  # node -> measured wall seconds
    scores: dict[str, float] = field(default_factory=dict)  # zero-shot node -> mean primary
    rows: dict[str, pd.DataFrame] = field(default_factory=dict)  # zero-shot node -> its rows


def node_state(graph: Graph, nid: str, todo: set[str], failures: set[str]) -> NodeState:
    node = graph.nodes[nid]
    if nid not in todo:
        return NodeState("done*" if checkpoints_deleted(node.stage) else "done")
    settings = graph.spec.execution.claims
    gens = generations(node.stage)
    if gens:
        path = gens[max(gens)]
        if not claim_is_stale(path, settings):
            owner = read_claim(path) or {}
            now = time.time()
            try:
                age = max(0.0, now - path.stat().st_mtime)
            except OSError:
                age = None
            since = owner.get("since")
            return NodeState(
                "running",
                owner=f"{owner.get('host', '?')}:{owner.get('pid', '?')}",
                beat_age_s=age,
                running_s=now - since if isinstance(since, (int, float)) else None,
                late=age is not None and age > 2 * settings.heartbeat_s,
            )
    if nid in failures:
        return NodeState("failed", error=recorded_failure(graph.out_dir, nid) or "failed")
    if node.stage.done:
        return NodeState("rebuild")  # done, but its checkpoints were deleted and a node reads them
    return NodeState("ready" if all(d not in todo for d in node.deps) else "waiting")


@dataclass
class Snapshot:
    graph: Graph
    states: dict[str, NodeState]
    groups: list[dict]  # one per (model, intermediate, target, source language)
    eta_s: float | None
    eta_note: str
    rows: pd.DataFrame  # zero-shot rows of the finished stages, with grid labels
    at: float

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = defaultdict(int)
        for s in self.states.values():
            c[s.state] += 1
        return dict(sorted(c.items()))


def _stage_seconds(graph: Graph, nid: str, memo: Memo) -> float | None:
    if nid not in memo.wall_s:
        try:
            wall = json.loads((graph.nodes[nid].stage.dir / "stage.json").read_text()).get("wall_s")
        except (OSError, ValueError):
            return None
        if wall is None:
            return None
        memo.wall_s[nid] = float(wall)
    return memo.wall_s[nid]


def estimate(graph: Graph, states: dict[str, NodeState], memo: Memo) -> tuple[float | None, str]:
    """Seconds until every buildable stage is done: per kind, the mean measured wall time of
    its finished stages times the stages left, over the number of stages running now (the
    workers). Stages blocked by a failure are not counted."""
    blocked: set[str] = set()
    for nid, node in graph.nodes.items():  # dependency order
        if states[nid].state == "failed" or any(d in blocked for d in node.deps):
            blocked.add(nid)
    left: dict[str, int] = defaultdict(int)
    measured: dict[str, list[float]] = defaultdict(list)
    for nid, node in graph.nodes.items():
        st = states[nid].state
        if st.startswith("done"):
            s = _stage_seconds(graph, nid, memo)
            if s is not None:
                measured[node.kind].append(s)
        elif nid not in blocked:
            left[node.kind] += 1
    if not left:
        return 0.0, "nothing left to build"
    unknown = [k for k in left if not measured[k]]
    if unknown:
        names = ", ".join(KIND_NAMES[k] for k in KINDS if k in unknown)
        return None, f"unknown until a {names} stage has finished"
    running = sum(s.state == "running" for s in states.values())
    workers = max(1, running)
    total = sum(n * sum(measured[k]) / len(measured[k]) for k, n in left.items())
    parts = ", ".join(
        f"{left[k]} {KIND_NAMES[k]} x {duration(sum(measured[k]) / len(measured[k]))}"
        for k in KINDS
        if left.get(k)
    )
    at_once = f"{running} running at once" if running else "none running now: one at a time"
    return total / workers, f"{parts}; {at_once}"


def snapshot(graph: Graph, memo: Memo | None = None) -> Snapshot:
    memo = memo or Memo()
    todo = set(graph.todo())
    failures = recorded_failures(graph.out_dir)
    states = {nid: node_state(graph, nid, todo, failures) for nid in graph.nodes}
    # rows and scores of finished zero-shot stages, read once per stage
    fresh = [
        nid
        for nid, node in graph.nodes.items()
        if node.kind is StageKind.ZERO_SHOT and nid not in todo and nid not in memo.rows
    ]
    if fresh:
        new = grid_rows(graph, kinds=(StageKind.ZERO_SHOT,))
        for nid in fresh:
            key = graph.nodes[nid].stage.key
            sub = new[new["stage_key"] == key] if not new.empty else new
            memo.rows[nid] = sub
            metric = graph.primary_metric(graph.nodes[nid].cells[0].target)
            vals = sub[sub["metric"] == metric]["value"] if not sub.empty else []
            if len(vals):
                memo.scores[nid] = float(vals.mean())
    groups: dict[tuple, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for cell, ids in graph.cells.items():
        g = groups[(cell.model, cell.system_name, cell.target, cell.source_language or "-")]
        for nid in ids:
            g[graph.nodes[nid].kind].add(nid)
    out = []
    for (model, system, target, src), g in groups.items():
        done = {
            k: (sum(i not in todo for i in g[k]), len(g[k])) if g.get(k) else None for k in KINDS
        }
        zs = [memo.scores[i] for i in g[StageKind.ZERO_SHOT] if i in memo.scores]
        now = [
            states[i].text()
            for k in KINDS
            for i in sorted(g.get(k, ()))
            if states[i].state in ("running", "failed")
        ]
        out.append(
            {
                "model": model,
                "intermediate": system,
                "target": target,
                "source": src,
                "done": done,
                "score": sum(zs) / len(zs) if zs else None,
                "now": now,
            }
        )
    eta, note = estimate(graph, states, memo)
    frames = [df for df in memo.rows.values() if not df.empty]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Snapshot(graph, states, out, eta, note, rows, time.time())


def _frac(v: tuple[int, int] | None) -> str:
    return "-" if v is None else f"{v[0]}/{v[1]}"


def eta_text(snap: Snapshot) -> str:
    if snap.eta_s is None:
        return f"ETA: {snap.eta_note}"
    if snap.eta_s == 0:
        failed = snap.counts().get("failed", 0)
        return f"ETA: nothing left that can be built ({failed} failed)" if failed else "ETA: done"
    return f"ETA: ~{duration(snap.eta_s)} ({snap.eta_note}; mean measured stage times)"


def status_table(graph: Graph) -> str:
    """One line per (model, intermediate, target, source language): stages done per kind
    over the seeds, what runs now (with heartbeat age) or failed, and the mean primary score
    over seeds and languages; then the running and failed stages and the ETA."""
    return status_text(snapshot(graph))


def status_text(snap: Snapshot) -> str:
    """The table of ``xstilts grid status``."""
    head = f"{'model':22} {'intermediate':22} {'target':12} {'src':4} {'inter':>6} {'target':>7} {'eval':>6} {'score':>7}  now"
    lines = [axes_line(snap.graph), "", head]
    for g in snap.groups:
        score = f"{g['score']:.1f}" if g["score"] is not None else "-"
        lines.append(
            f"{g['model'][:22]:22} {g['intermediate'][:22]:22} {g['target'][:12]:12} "
            f"{g['source']:4} {_frac(g['done']['intermediate']):>6} "
            f"{_frac(g['done']['target']):>7} {_frac(g['done']['zero_shot']):>6} "
            f"{score:>7}  {', '.join(g['now'])}"
        )
    total = ", ".join(f"{k}: {v}" for k, v in snap.counts().items())
    lines += ["", f"stages: {total}  ({time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(snap.at))})"]  # fmt: skip
    running = [(nid, s) for nid, s in snap.states.items() if s.state == "running"]
    for nid, s in running:
        lines.append(f"  running: {node_label(snap.graph.nodes[nid])} ({nid}) {s.text()[8:]}")
    for nid, s in snap.states.items():
        if s.state == "failed":
            lines.append(f"  failed:  {node_label(snap.graph.nodes[nid])} ({nid}): {s.error}")
    lines.append(eta_text(snap))
    lines.append("score: mean over seeds and languages of the target's primary metric (zero-shot)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.3em 0 1em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}
th{background:#f2f2f2} td.l,th.l{text-align:left}
.running{background:#fff4c2} .failed{background:#ffd6d6} .done{background:#e3f5e1}
.muted{color:#666} .track{display:inline-block;width:300px;height:.7em;background:#ddd;vertical-align:middle}
.bar{display:block;height:100%;background:#4a9}
"""


def _esc(v: object) -> str:
    return html.escape(str(v))


def _score_tables(snap: Snapshot) -> list[str]:
    """Per (model, target, source language): the per-language table of its finished cells."""
    from xstilts.results.tables import language_table

    rows, out = snap.rows, []
    if rows.empty:
        return ["<p class='muted'>no zero-shot stage has finished yet</p>"]
    for (model, target, src), sub in rows.groupby(
        ["grid_model", "grid_target", rows["source_language"].fillna("-")], sort=False
    ):
        metric = snap.graph.primary_metric(str(target))
        table = language_table(pd.DataFrame(sub), metric=metric)
        if table.empty:
            continue
        n = sub["seed"].nunique()
        out.append(
            f"<h3>{_esc(target)} <span class='muted'>model {_esc(model)}, source {_esc(src)}: "
            f"{_esc(metric)}, mean over {n} seed{'s' if n != 1 else ''} so far</span></h3>"
        )
        out.append(table.to_html(float_format=lambda v: f"{v:.2f}", na_rep="-", border=0))
    return out


def status_html(snap: Snapshot, *, refresh_s: float | None = None) -> str:
    """A self-contained page (inline CSS, no scripts): the status table, what runs and what
    failed, the ETA, and the per-task score tables so far."""
    spec = snap.graph.spec
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap.at))
    meta = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    counts = snap.counts()
    n = sum(counts.values())
    done = counts.get("done", 0) + counts.get("done*", 0)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>grid {_esc(spec.name)}: {done}/{n} stages</title>{meta}<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>grid {_esc(spec.name)}</h1>",
        f"<p class='muted'>{_esc(axes_line(snap.graph))}<br>output: {_esc(snap.graph.out_dir)}"
        f" &middot; updated {when}</p>",
        f"<p><span class='track'><span class='bar' style='width:{100 * done / max(n, 1):.1f}%'>"
        "</span></span> "
        f"{done}/{n} stages done &middot; "
        + " &middot; ".join(f"{_esc(k)}: {v}" for k, v in counts.items())
        + f"<br><b>{_esc(eta_text(snap))}</b></p>",
        "<h2>Cells</h2><table><tr><th class='l'>model</th><th class='l'>intermediate</th>"
        "<th class='l'>target</th><th>src</th><th>inter</th><th>target</th><th>eval</th>"
        "<th>score</th><th class='l'>now</th></tr>",
    ]
    for g in snap.groups:
        cls = (
            "failed"
            if any(s.startswith("failed") for s in g["now"])
            else "running"
            if g["now"]
            else "done"
            if all(v is None or v[0] == v[1] for v in g["done"].values())
            else ""
        )
        score = f"{g['score']:.1f}" if g["score"] is not None else "-"
        parts.append(
            f"<tr class='{cls}'><td class='l'>{_esc(g['model'])}</td>"
            f"<td class='l'>{_esc(g['intermediate'])}</td><td class='l'>{_esc(g['target'])}</td>"
            f"<td>{_esc(g['source'])}</td><td>{_frac(g['done']['intermediate'])}</td>"
            f"<td>{_frac(g['done']['target'])}</td><td>{_frac(g['done']['zero_shot'])}</td>"
            f"<td>{score}</td><td class='l'>{_esc(', '.join(g['now']))}</td></tr>"
        )
    parts.append("</table>")
    active = [(nid, s) for nid, s in snap.states.items() if s.state in ("running", "failed")]
    if active:
        parts.append("<h2>Running and failed stages</h2><table><tr><th class='l'>stage</th>"
                     "<th class='l'>label</th><th class='l'>state</th></tr>")  # fmt: skip
        for nid, s in active:
            text = s.text() if s.state == "running" else f"failed: {s.error}"
            parts.append(
                f"<tr class='{s.state}'><td class='l'>{_esc(nid)}</td>"
                f"<td class='l'>{_esc(node_label(snap.graph.nodes[nid]))}</td>"
                f"<td class='l'>{_esc(text)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Zero-shot scores so far</h2>")
    parts += _score_tables(snap)
    parts.append(
        "<p class='muted'>score: mean over seeds and languages of the target's primary metric; "
        "Δ: system minus the baseline <i>none</i>.</p></body></html>"
    )
    return "\n".join(parts)


def watch(
    graph: Graph,
    every_s: float | None,
    *,
    html_path: Path | None = None,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    rounds: int | None = None,
    clear: bool = False,
) -> Snapshot:
    """Print the status (and write the HTML page atomically) every ``every_s`` seconds until
    interrupted, ``rounds`` refreshes were made, or nothing is left to build; once when
    ``every_s`` is None. ``clear``: redraw in place (a terminal)."""
    memo = Memo()
    n = 0
    while True:
        snap = snapshot(graph, memo)
        text = status_text(snap)
        if html_path is not None:
            atomic_write_text(html_path, status_html(snap, refresh_s=every_s))
        echo(("\x1b[H\x1b[2J" if clear else "") + text)
        n += 1
        finished = snap.eta_s == 0
        if every_s is None or finished or (rounds is not None and n >= rounds):
            return snap
        sleep(every_s)
