"""Imports go one way (DESIGN.md): e.g. space imports no other hwnas module, nothing imports cli."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwnas"
BASE = {"errors", "registry", "workspace", "files", "progress", "__init__"}
ALLOWED = {
    "space": set(),
    "data": set(),
    "objective": set(),
    "benchmarks": {"space", "objective"},
    "supernet": {"space", "data"},
    "export": {"supernet", "space", "data"},
    "devices": set(),
    "profiling": {"space", "export", "devices", "supernet", "data"},
    "predictors": {"space"},
    "search": {"space", "predictors", "objective", "benchmarks"},
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
