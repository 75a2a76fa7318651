"""Imports go one way (DESIGN.md): e.g. space imports no other hwnas module, nothing imports cli."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwnas"
BASE = {"errors", "registry", "workspace", "files", "progress", "__init__"}
ALLOWED = {
    "space": set(),
    "data": set(),
    "objective": set(),
    "supernet": {"space", "data"},
    "export": {"supernet", "space", "data"},
    "devices": set(),
    "profiling": {"space", "export", "devices", "supernet", "data"},
    "predictors": {"space"},
    "search": {"space", "predictors", "objective"},
}


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _is_module(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _hwnas_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "hwnas" and len(parts) > 1 and _is_module(parts[1]):
                found.add(parts[1])
    return found


def test_imports_go_one_way():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        imported = _hwnas_imports(path) - BASE - {layer}
        if layer == "cli":
            continue
        if "cli" in imported:
            problems.append(f"{path.relative_to(PACKAGE)} imports hwnas.cli")
        if layer in BASE:
            bad = imported
        elif layer in ALLOWED:
            bad = imported - ALLOWED[layer]
        else:  # a module outside the layers (e.g. deploy): anything but cli
            bad = set()
        if bad:
            problems.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {sorted(bad)}")
    assert not problems, "\n".join(problems)


def test_space_and_devices_do_not_import_torch():
    for layer in ("space", "devices"):
        for path in (PACKAGE / layer).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            for node in top_level:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "torch" for n in names), f"{path} imports torch at module level"


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_files(path: Path, name: str, modules: set[str]) -> set[str]:
    """The hwnas modules (files) `path` imports anywhere: at the top, inside functions or under TYPE_CHECKING,
    absolute or relative. `from hwnas.a import b` names hwnas.a.b where that is a module, else hwnas.a."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                stem = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import hwnas.a.b.Name`-like: the module holding it
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_circles(package: Path = PACKAGE) -> list[list[str]]:
    """Groups of hwnas modules that import each other, directly or round a longer loop (the strongly connected
    components of the import graph with more than one module), each listed as one loop: a -> b -> ... -> a."""
    files = {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    graph = {m: sorted(_imported_files(p, m, set(files))) for m, p in files.items()}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in graph[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in graph:
        if v not in order:
            visit(v)
    return [_loop(graph, set(c), c[0]) for c in sorted(components)]


def _loop(graph: dict[str, list[str]], component: set[str], start: str) -> list[str]:
    """A shortest import loop from `start` back to it inside one strongly connected component."""
    paths = {start: [start]}
    queue = [start]
    for v in queue:
        for w in graph[v]:
            if w == start:
                return paths[v] + [start]
            if w in component and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"no loop through {start}")  # pragma: no cover - a component always has one


def test_no_two_files_import_each_other():
    circles = import_circles()
    assert not circles, "modules that import each other (move the shared part to its own module):\n" + "\n".join(
        " -> ".join(loop) for loop in circles)


def test_import_circles_are_found_with_relative_and_function_level_imports(tmp_path):
    package = tmp_path / "hwnas"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from . import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from hwnas.c import thing\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.a import X\n")
    (package / "d.py").write_text("import hwnas.c\n")
    assert import_circles(package) == [["hwnas.c", "hwnas.sub.a", "hwnas.sub.b", "hwnas.c"]]
