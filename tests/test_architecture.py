"""The package's shape: its import graph has no cycle, and inference never needs training code."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "evpcli"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the evpcli modules it imports (anywhere in the file, function-level imports included)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[:len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t.startswith("evpcli") and t != "evpcli":
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_outside_train_imports_train_except_cli_and_evaluation():
    graph = import_graph()
    allowed = {"evpcli.cli", "evpcli.evaluate"}
    offenders = {m: sorted(t for t in ts if t.startswith("evpcli.train")) for m, ts in graph.items()
                 if not m.startswith("evpcli.train") and m not in allowed}
    assert {m: ts for m, ts in offenders.items() if ts} == {}
    # nets/ hold torch modules only: no IO, no training
    for m, ts in graph.items():
        if m.startswith("evpcli.nets"):
            assert all(t.startswith(("evpcli.nets", "evpcli.config")) for t in ts), (m, ts)


def test_the_engines_know_nothing_of_the_stage_the_workspace_or_the_cli():
    """evpcli.engines (a frame and landmarks in, a frame out) sit below the render stage and the inference layer:
    they import only face/, nets/, config, errors and the atomic writes."""
    graph = import_graph()
    allowed = ("evpcli.engines", "evpcli.face", "evpcli.nets", "evpcli.config", "evpcli.errors", "evpcli.atomic")
    offenders = {m: sorted(t for t in ts if not t.startswith(allowed)) for m, ts in graph.items()
                 if m.startswith("evpcli.engines")}
    assert {m: ts for m, ts in offenders.items() if ts} == {}
    # and the inference layer does not reach up into the render stage
    for m in ("evpcli.models", "evpcli.infer", "evpcli.npinfer"):
        assert not any(t.startswith("evpcli.render") for t in graph.get(m, ())), (m, graph.get(m))
