"""The house rules: imports point down only, no import circle, no job function over 80 lines.

Rooms, from the ground floor up (README, "Contributing"):
    platform  cdp, schemas                       imports nothing above it
    stages    ingest identity tags audiences effect quality   platform, and identity's identifier vocabulary
    jobs      jobs                               stages + platform
    top       apps runners demo bench            anything below, and each other
    dags      dags                               runners + platform only (DAGs stay thin)
"""

from __future__ import annotations

import ast
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ROOMS = {
    "cdp": "platform",
    "schemas": "platform",
    "ingest": "stage",
    "identity": "stage",
    "tags": "stage",
    "audiences": "stage",
    "effect": "stage",
    "creators": "stage",
    "quality": "stage",
    "jobs": "jobs",
    "apps": "top",
    "runners": "top",
    "demo": "top",
    "bench": "top",
    "dags": "dags",
}
ALLOWED = {
    "platform": {"platform"},
    "stage": {"platform", "stage"},
    "jobs": {"platform", "stage", "jobs"},
    "top": {"platform", "stage", "jobs", "top"},
    "dags": {"platform", "top"},
}
# Stages are independent of each other except for identity's identifier vocabulary (normalisation and the
# keyed hashes), which ingest applies at the door and audiences applies to uploaded seed lists.
STAGE_EDGES = {("ingest", "identity"), ("audiences", "identity")}
MAX_JOB_FUNCTION_LINES = 80


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """Every project module that ``path`` imports, at module level or inside functions.

    ``from pkg import name`` is an import of the submodule ``pkg.name`` when there is one, else of ``pkg``.
    """
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            for alias in node.names:
                sub = f"{stem}.{alias.name}"
                found.add(sub if sub in modules else stem)
    return {n for n in found if n in modules}


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages under ``root``, by dotted name."""
    modules = {}
    for top in ROOMS:
        for path in (root / top).rglob("*.py") if (root / top).is_dir() else []:
            modules[_module_name(path, root)] = path
    return modules


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports (names resolved to modules that exist)."""
    modules = project_modules(root)
    graph = defaultdict(set)
    for name, path in modules.items():
        graph[name] |= _imports(path, root, set(modules)) - {name}
    return graph


def direction_violations(root: Path) -> list[str]:
    """Imports that point up the house or sideways between stages outside ``STAGE_EDGES``."""
    bad = []
    for module, targets in sorted(import_graph(root).items()):
        src = module.split(".")[0]
        for target in sorted(targets):
            dst = target.split(".")[0]
            if ROOMS[dst] not in ALLOWED[ROOMS[src]]:
                bad.append(f"{module} ({ROOMS[src]}) imports {target} ({ROOMS[dst]})")
            elif ROOMS[src] == ROOMS[dst] == "stage" and src != dst and (src, dst) not in STAGE_EDGES:
                bad.append(f"{module} (stage {src}) imports {target} (stage {dst})")
    return bad


def import_circles(root: Path) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph = import_graph(root)

    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, set()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def long_functions(folder: Path, limit: int) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name} {lines} lines")
    return found


def test_imports_point_down_only() -> None:
    assert direction_violations(ROOT) == []


def test_no_import_circle() -> None:
    assert import_circles(ROOT) == []


def test_no_job_function_over_80_lines() -> None:
    assert long_functions(ROOT / "jobs", MAX_JOB_FUNCTION_LINES) == []


def _plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"tags/build.py": "from jobs.tags import run\n", "jobs/tags.py": "def run(): ...\n"},
            "tags.build (stage) imports jobs.tags (jobs)",
        ),
        (
            {"identity/graph.py": "def f():\n    from apps.cli import main\n", "apps/cli.py": "main = 1\n"},
            "identity.graph (stage) imports apps.cli (top)",
        ),
        (
            {"cdp/lake.py": "import runners.local\n", "runners/local.py": "x = 1\n"},
            "cdp.lake (platform) imports runners.local (top)",
        ),
        (
            {"tags/views.py": "from audiences.rules import Rule\n", "audiences/rules.py": "Rule = 1\n"},
            "tags.views (stage tags) imports audiences.rules (stage audiences)",
        ),
        (
            {"dags/daily.py": "from jobs import ingest\n", "jobs/ingest.py": "x = 1\n"},
            "dags.daily (dags) imports jobs.ingest (jobs)",
        ),
    ],
)
def test_the_direction_check_catches_an_upward_import(tmp_path: Path, files: dict, expected: str) -> None:
    assert direction_violations(_plant(tmp_path, files)) == [expected]


def test_the_circle_check_catches_a_circle(tmp_path: Path) -> None:
    _plant(tmp_path, {"apps/a.py": "from apps import b\n", "apps/b.py": "def f():\n    import apps.a\n"})
    assert import_circles(tmp_path) == [["apps.a", "apps.b"]]


def test_the_length_check_catches_a_long_job_function(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(80))
    _plant(tmp_path, {"jobs/big.py": f"def run():\n{body}"})
    assert long_functions(tmp_path / "jobs", MAX_JOB_FUNCTION_LINES) == ["jobs/big.py:1 run 81 lines"]
