"""The layering of docs/architecture.md: the import-linter contracts hold, and no import cycle is left.

``make test`` also runs ``lint-imports``; this test adds what import-linter does not check by itself:
no cycle between any two modules of ``gateway`` (imports made only for type checking left aside, as
they do not run), and no import hidden in a function to dodge one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
# What a comment just above a function-level import must say for it to stay there.
_REASONS = ("lazy", "start-up", "optional")


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("gateway", exclude_type_checking_imports=True)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.append(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_layer_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout and "KEPT" in run.stdout


def test_no_import_cycle_in_the_gateway() -> None:
    assert _cycles(_graph()) == []


def test_no_import_hides_in_a_function_from_a_cycle() -> None:
    """Imports inside functions are kept only where they say why (start-up time or an optional package)."""
    hidden = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        lines = path.read_text().splitlines()
        for func in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom):
                    inner = node.level > 0 or (node.module or "").startswith("gateway")
                elif isinstance(node, ast.Import):
                    inner = any(a.name.startswith("gateway") for a in node.names)
                else:
                    continue
                # The comment that says why stands just above the import, or above the block of imports it is in.
                i = node.lineno - 2
                while i >= 0 and lines[i].lstrip().startswith(("from ", "import ")):
                    i -= 1
                window = lines[max(0, i - 2):node.lineno]
                if inner and not any(why in line for line in window for why in _REASONS):
                    hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert hidden == []
