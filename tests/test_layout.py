"""The shape of the code, checked: imports run one way, down the stages, with no circles.

Read from the source with ``ast`` (nothing is imported), so a circle through an import
inside a function counts too: it is only hidden until that function runs. Imports under
``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "ingest", "api", "ui", "rag_cli")

#: rag's stages, lowest first: a module may import its own stage and the stages below it.
#: ``models`` and ``store`` share a level and must not import each other.
RAG_LEVELS: dict[str, int] = {
    "rag.settings": 0,
    "rag.types": 0,
    "rag.text": 0,
    "rag.store": 1,
    "rag.models": 1,
    "rag.retrieval": 2,
    "rag.answer": 3,
    "rag.evaluation": 4,
    "rag.testing": 5,
}

#: Which top-level packages each may import (beside itself).
PACKAGE_DEPS: dict[str, set[str]] = {
    "rag": set(),
    "ingest": {"rag"},
    "api": {"rag", "ingest"},
    "ui": {"rag", "ingest"},
    "rag_cli": {"rag", "ingest", "api", "ui"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(roots: tuple[str, ...] = PACKAGES) -> list[Path]:
    return sorted(p for r in roots for p in (ROOT / r).rglob("*.py"))


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) for each import that runs, absolute or relative."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    out: list[tuple[str, list[str], int]] = []
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            out.append((base, [a.name for a in node.names], node.lineno))
    return out


def project_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from pkg import mod`` names ``pkg.mod``)."""
    files = source_files()
    known = {module_name(p) for p in files}
    graph: dict[str, set[str]] = {m: set() for m in known}
    for path in files:
        me = module_name(path)
        for mod, names, _ in imports_of(path):
            targets = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in known] or [mod]
            for t in targets:
                # A package's __init__ runs on any import below it; it is not an edge of
                # the importer's design, so only real modules (or a package itself) count.
                if t in known and t != me:
                    graph[me].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def stage_of(module: str) -> str | None:
    for stage in sorted(RAG_LEVELS, key=len, reverse=True):
        if module == stage or module.startswith(stage + "."):
            return stage
    return None


def test_no_import_circles() -> None:
    assert cycles(project_graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    # The check above is only worth something if it can fail.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_packages_import_one_way() -> None:
    bad = []
    for me, deps in project_graph().items():
        top = me.split(".")[0]
        if me.endswith(".__main__"):
            continue  # `python -m ingest` is a command line: it may call rag_cli
        for d in deps:
            other = d.split(".")[0]
            if other != top and other not in PACKAGE_DEPS[top]:
                bad.append(f"{me} -> {d}")
    assert bad == []


def test_rag_imports_run_down_the_stages() -> None:
    bad = []
    for me, deps in project_graph().items():
        if me == "rag" or not me.startswith("rag."):
            continue
        mine = stage_of(me)
        assert mine is not None, f"{me} belongs to no stage: add it to RAG_LEVELS"
        for d in deps:
            theirs = stage_of(d)
            if theirs is None or theirs == mine:
                continue
            if RAG_LEVELS[theirs] >= RAG_LEVELS[mine]:
                bad.append(f"{me} ({mine}) -> {d} ({theirs})")
    assert bad == []


@pytest.mark.parametrize("root", ["rag", "ingest", "api", "ui", "rag_cli", "tests", "benchmarks", "scripts"])
def test_no_private_name_is_imported_from_another_module(root: str) -> None:
    bad = []
    for path in source_files((root,)):
        for mod, names, line in imports_of(path):
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: from {mod} import {n}")
            if any(part.startswith("_") and not part.startswith("__") for part in mod.split(".")):
                bad.append(f"{path.relative_to(ROOT)}:{line}: import {mod}")
    assert bad == []


def test_every_rag_subpackage_says_what_it_does_and_may_import() -> None:
    for init in sorted((ROOT / "rag").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
        if init.parent.name != "store":
            assert "May import" in doc, f"{init.relative_to(ROOT)} does not say what it may import"


def test_the_langchain_names_come_from_rag_itself() -> None:
    import rag

    for name in rag.__all__:
        assert getattr(rag, name) is not None
    from rag import Settings, build_chain
    from rag.answer.build import build_chain as real_build_chain

    assert build_chain is real_build_chain
    assert Settings.__module__ == "rag.settings"
