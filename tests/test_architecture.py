"""The library's layout: rooms in a one-way order, no private names across modules, small parts.

``effnet_lib`` is split into rooms (sub-packages) by job. A module may import
from its own room and from rooms *before* it in :data:`ROOMS`, never from a room
after it, and the module graph has no cycle. The package's own ``__init__`` (the
public API) comes after every room. The checks read the source with ``ast``, so
imports inside functions count as much as those at the top.

The last tests copy the package, break each rule once, and check that the
checker notices: a rule that cannot fail is not a rule.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import effnet_lib

PACKAGE = "effnet_lib"
ROOT = Path(effnet_lib.__file__).parent
ROOMS = ("common", "models", "profiling", "data", "training", "bench", "paper", "lessons", "cli")
API = len(ROOMS)  # the package's __init__: the public API, after every room
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
EXEMPT_FROM_FUNCTION_LENGTH = ("cli",)  # argument tables


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return API
    if parts[1] not in ROOMS:
        return -1  # a module outside every room
    return ROOMS.index(parts[1])


def imported_modules(tree: ast.AST, module: str, is_package: bool, modules: set[str]):
    """(line, imported kit module, imported names) for every import of the kit in ``tree``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield node.lineno, _existing(alias.name, modules), []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                # `from . import folders` imports a module; `from .spec import X` a name.
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    yield node.lineno, submodule, []
                else:
                    yield node.lineno, _existing(target, modules), [alias.name]


def _existing(name: str, modules: set[str]) -> str:
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name


def read_package(root: Path):
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return files, set(files)


def import_violations(root: Path) -> list[str]:
    """Backward imports between rooms, modules outside the rooms, cycles, private names."""
    files, modules = read_package(root)
    problems, graph = [], {m: set() for m in modules}
    for module, path in files.items():
        tree = ast.parse(path.read_text())
        own = room_of(module)
        if own < 0:
            problems.append(f"{module}: not in any room ({', '.join(ROOMS)})")
        for line, target, names in imported_modules(tree, module, path.name == "__init__.py", modules):
            if target == module:
                continue
            graph[module].add(target)
            if room_of(target) > own:
                problems.append(f"{module}:{line} imports {target}, a later room "
                                f"({ROOMS[own] if own < API else 'the API'} -> "
                                f"{ROOMS[room_of(target)] if room_of(target) < API else 'the API'})")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                problems.append(f"{module}:{line} imports private name(s) {private} from {target}")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def size_violations(root: Path) -> list[str]:
    files, _ = read_package(root)
    problems = []
    for module, path in files.items():
        text = path.read_text()
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{module}: {lines} lines (at most {MAX_MODULE_LINES})")
        if module.split(".")[1:2] and module.split(".")[1] in EXEMPT_FROM_FUNCTION_LENGTH:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{module}.{node.name}: {length} lines "
                                    f"(at most {MAX_FUNCTION_LINES})")
    return problems


# ----------------------------------------------------------------------- the kit itself

def test_rooms_import_only_from_rooms_before_them_without_cycles():
    assert import_violations(ROOT) == []


def test_functions_and_modules_stay_small():
    assert size_violations(ROOT) == []


def test_every_room_exists_and_says_what_it_is_for():
    for room in ROOMS:
        init = ROOT / room / "__init__.py"
        assert init.is_file(), f"room {room} is missing"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{room}/__init__.py has no docstring"


def test_the_readme_layout_lists_every_room():
    readme = (ROOT.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    for room in ROOMS:
        assert f"{room}/" in layout, f"README's Layout section does not list {room}/"


# ----------------------------------------------------------------------- the checks can fail

@pytest.fixture
def copy(tmp_path):
    target = tmp_path / PACKAGE
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns("__pycache__", "*.yml", "*.json",
                                                                 "*.csv"))
    return target


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def test_a_backward_import_is_reported(copy):
    _append(copy / "models" / "spec.py", "def late():\n    from ..cli import main\n    return main")
    problems = import_violations(copy)
    assert any("effnet_lib.models.spec" in p and "effnet_lib.cli" in p and "later room" in p
               for p in problems), problems


def test_an_absolute_backward_import_and_its_cycle_are_reported(copy):
    _append(copy / "common" / "files.py", "import effnet_lib.training.train")
    problems = import_violations(copy)
    assert any("later room" in p and "effnet_lib.common.files" in p for p in problems), problems
    assert any(p.startswith("import cycle") for p in problems), problems


def test_a_private_import_is_reported(copy):
    _append(copy / "paper" / "tables.py", "from ..common.files import _hidden  # noqa")
    assert any("private name" in p for p in import_violations(copy))


def test_a_long_function_and_a_long_module_are_reported(copy):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    _append(copy / "models" / "spec.py", f"def long():\n{body}\n")
    _append(copy / "common" / "paths.py", "\n" * MAX_MODULE_LINES)
    problems = size_violations(copy)
    assert any("effnet_lib.models.spec.long" in p for p in problems), problems
    assert any(p.startswith("effnet_lib.common.paths:") for p in problems), problems
