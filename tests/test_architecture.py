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
    allowed = {"evpcli.cli", "evpcli.evaluate"}  # the CLI is a package: its command modules are the CLI
    offenders = {m: sorted(t for t in ts if t.startswith("evpcli.train")) for m, ts in graph.items()
                 if not m.startswith("evpcli.train") and m not in allowed and not m.startswith("evpcli.cli.")}
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


def _imported_names(path: Path) -> set[str]:
    """Every module a file imports, absolute, anywhere in the file (relative imports as written)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_infer_is_backend_free():
    """infer.py drives an engine (evpcli.torchinfer's interface) and knows neither backend: no torch, no engine
    module, and no test of which backend a network is."""
    names = _imported_names(PKG / "infer.py")
    assert not {n for n in names if n.split(".")[0] == "torch" or n.startswith(("evpcli.npinfer", "evpcli.torchinfer"))}
    source = (PKG / "infer.py").read_text()
    assert "parameters" not in source and "_is_numpy" not in source


# No import runs back up (models.load_renderer's bundle type, once render/neural.py's, is the inference layer's own).
KNOWN_UPWARD: set[tuple[str, str]] = set()


def test_the_inference_layer_imports_nothing_above_it():
    """infer, models and the engines are below the render stage and the CLI: none of them imports back up."""
    graph = import_graph()
    above = ("evpcli.render", "evpcli.cli", "evpcli.train", "evpcli.api", "evpcli.evaluate", "evpcli.demo",
             "evpcli.ui")
    upward = {(m, t) for m in ("evpcli.infer", "evpcli.models", "evpcli.npinfer", "evpcli.torchinfer")
              for t in graph[m] if t.startswith(above)}
    assert upward <= KNOWN_UPWARD, upward - KNOWN_UPWARD


def _calls(path: Path) -> set[str]:
    """The names a file calls (``f(...)`` and ``x.f(...)``), anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            f = node.func
            out.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return out


def _epoch_loops(path: Path) -> list[int]:
    """Lines of ``for epoch in ...`` loops in a file."""
    return [n.lineno for n in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and n.target.id == "epoch"]


def test_one_epoch_driver_and_evaluation_apart_from_training_stages():
    """Every stage of ``evp train`` (disentangle, audio2lm, renderer) is a StageRun whose epochs run through
    train/common.py's driver (run_epochs): no epoch loop of its own anywhere in train/; and evaluate reads clips
    through evpcli.clipdata, not through a training stage."""
    graph = import_graph()
    assert "evpcli.train.audio2lm" not in graph["evpcli.evaluate"]
    assert "evpcli.clipdata" in graph["evpcli.evaluate"]
    from evpcli.cli.train import Stage

    assert {s.value for s in Stage} == {"disentangle", "audio2lm", "renderer"}
    for stage in Stage:
        calls = _calls(PKG / "train" / f"{stage.value}.py")
        assert "StageRun" in calls and ({"train", "run_epochs"} & calls), stage.value
    assert "run_epochs" in _calls(PKG / "train" / "renderer.py")  # fit_renderer (no workspace) drives it directly
    loops = {str(p.relative_to(PKG)): _epoch_loops(p) for p in (PKG / "train").glob("*.py") if p.name != "common.py"}
    assert {k: v for k, v in loops.items() if v} == {}
    assert _epoch_loops(PKG / "train" / "common.py")  # the one driver's loop (the finder finds it)


MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines():
    """A module a reader takes in at once: every evpcli module is at most 600 lines (most at most about 500)."""
    sizes = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")}
    assert {k: n for k, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _module_assignments(path: Path):
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            yield node, [t.id for t in targets if isinstance(t, ast.Name)]


def test_one_frame_rate():
    """FPS is defined once (config.py) and no function takes a frame rate defaulting to a number of its own."""
    defined, literal_defaults = [], []
    for path in PKG.rglob("*.py"):
        rel = str(path.relative_to(PKG))
        for _, names in _module_assignments(path):
            defined += [rel for n in names if n == "FPS"]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults \
                    + node.args.kw_defaults
                literal_defaults += [f"{rel}:{node.name}" for a, d in zip(args, defaults, strict=True)
                                     if a.arg == "fps" and isinstance(d, ast.Constant) and isinstance(d.value, float)]
    assert defined == ["config.py"] and literal_defaults == []


def _index_literal(node) -> bool:
    """``np.arange(a[, b])`` of ints up to 68, or ``np.array([ints up to 67, ...])``: a set of landmark indices."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
        return False
    a = node.args
    if node.func.attr == "arange" and all(isinstance(x, ast.Constant) and type(x.value) is int for x in a):
        return max(x.value for x in a) <= 68
    if node.func.attr == "array" and isinstance(a[0], (ast.List, ast.Tuple)) and len(a[0].elts) >= 2:
        values = [e.value for e in a[0].elts if isinstance(e, ast.Constant) and type(e.value) is int]
        return len(values) == len(a[0].elts) and max(values) <= 67
    return False


def test_landmark_index_sets_are_named_only_in_face_parts():
    """No module but face/parts.py defines a set of landmark indices as a module constant (np.arange / np.array of
    point numbers, also inside an expression): the others import the names."""
    found = [f"{path.relative_to(PKG)}:{node.lineno}" for path in PKG.rglob("*.py") if path != PKG / "face" / "parts.py"
             for node, _ in _module_assignments(path) if any(_index_literal(n) for n in ast.walk(node.value))]
    assert found == []


def test_the_rule_finders_find_what_they_look_for():
    assert _index_literal(ast.parse("np.arange(48, 68)").body[0].value)
    assert _index_literal(ast.parse("np.array([61, 62, 63])").body[0].value)
    assert not _index_literal(ast.parse("np.array([190.0, 150.0, 130.0])").body[0].value)
    assert not _index_literal(ast.parse("np.arange(n)").body[0].value)
