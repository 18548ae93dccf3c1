"""The module graph stays layered: no import cycles (counting function-local and
TYPE_CHECKING imports too), and pipeline_core never imports dagster."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline_core", "inference_assets", "demo")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(name: str) -> str | None:  # the project module an imported name lives in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets = {owner(name) for name in _imports(path)} - {None, module}
        # `from pkg.sub import x` inside pkg/__init__.py is the package assembling itself
        graph[module] = {t for t in targets if not (path.name == "__init__.py" and t.startswith(module + "."))}
    return graph


def test_the_project_has_no_import_cycle():
    try:
        TopologicalSorter(_graph()).prepare()
    except CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from err


def test_pipeline_core_never_imports_dagster():
    offenders = [m for m, path in _modules().items() if m.startswith("pipeline_core")
                 and any(name.split(".")[0] == "dagster" for name in _imports(path))]
    assert offenders == []
