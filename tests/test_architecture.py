"""The import structure of docs/DESIGN: no import circle between files, and packages import only
downwards (`benches → training, evaluation → tasks → scoring → budget`; training and evaluation
never import each other).

Read from the source with `ast`, so it is fast and imports nothing. Every import counts, also one
inside a function: a lazy import still ties the two files together, it only hides the circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package → the project packages it may import (thinkcap/ holds shared helpers: tiny model, video,
# http_wait; its dispatcher reaches the commands through importlib, by name)
ALLOWED: dict[str, set[str]] = {
    "budget": set(),
    "thinkcap": {"budget"},
    "scoring": {"budget"},
    "tasks": {"scoring", "budget", "thinkcap"},
    "vllm_adapter": {"budget", "thinkcap"},
    "training": {"tasks", "scoring", "budget", "vllm_adapter", "thinkcap"},
    "evaluation": {"tasks", "scoring", "budget", "vllm_adapter", "thinkcap"},
    "serving": {"budget", "vllm_adapter", "thinkcap"},
    "ui": {"thinkcap", "budget"},  # budget is pure Python: the demo shares budget.cuts with thinkcap eval
    "benches": {"training", "evaluation", "tasks", "scoring", "budget", "vllm_adapter", "thinkcap"},
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for package in ALLOWED:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module → the project modules it imports (`from a import b` counts as a.b when b is a module)."""

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = known(name)
                if target and target != mod:
                    edges[mod].add(target)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def forbidden(edges: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = mod.split(".")[0], target.split(".")[0]
            if a != b and b not in ALLOWED[a]:
                out.append(f"{mod} imports {target}: {a}/ may import only {sorted(ALLOWED[a])}")
    return out


# Circles known and owned elsewhere, each with its way out; the test fails once one is gone, so the
# entry goes with it.
KNOWN_CIRCLES: list[list[str]] = []


def test_no_import_circle_between_files():
    found = circles(import_graph(modules()))
    new = [c for c in found if c not in KNOWN_CIRCLES]
    assert not new, f"{len(new)} import circle(s): " + "; ".join(" ⇄ ".join(c) for c in new)
    gone = [c for c in KNOWN_CIRCLES if c not in found]
    assert not gone, f"no longer a circle, drop it from KNOWN_CIRCLES: {gone}"


def test_packages_import_only_downwards():
    bad = forbidden(import_graph(modules()))
    assert not bad, "\n".join(bad)


def test_the_checks_see_a_circle_and_a_wrong_direction(tmp_path):
    """The checker itself: a planted circle and an upward import are reported."""
    (tmp_path / "scoring").mkdir()
    (tmp_path / "training").mkdir()
    (tmp_path / "scoring" / "__init__.py").write_text("")
    (tmp_path / "scoring" / "a.py").write_text("def f():\n    from scoring import b\n")
    (tmp_path / "scoring" / "b.py").write_text("from scoring.a import f\nimport training.x\n")
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "training" / "x.py").write_text("from . import y\n")
    (tmp_path / "training" / "y.py").write_text("from .x import *\n")
    edges = import_graph(modules(tmp_path))
    assert sorted(circles(edges)) == [["scoring.a", "scoring.b"], ["training.x", "training.y"]]
    assert forbidden(edges) == ["scoring.b imports training.x: scoring/ may import only ['budget']"]


def test_no_package_holds_most_of_the_code():
    """One job per package: none grows past a third of the source lines (issue 23: ~30 %)."""
    lines = {p: sum(len(f.read_text().splitlines()) for f in (ROOT / p).rglob("*.py")) for p in ALLOWED}
    total = sum(lines.values())
    big = {p: round(n / total, 3) for p, n in lines.items() if n / total > 0.33}
    assert not big, f"share of source lines: {big}"
