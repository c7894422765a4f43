"""The layers and who may import whom, checked on the source (AST) of every
.py file in the product packages, counting every import: top-level,
function-local and under `if TYPE_CHECKING:` alike.

The rules are data (LAYERS); a module belongs to the first layer whose
prefix it has. Two checks: no forbidden import, and no import cycle between
modules. The last tests feed the checker synthetic sources to show that it
fails where it should.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("protocol", "server", "agents", "client_demo")
# First-party code no product module may import.
NOT_PRODUCT = ("tests", "bench")


@dataclass(frozen=True)
class Layer:
    prefix: str                              # the modules it holds
    rule: str                                # the rule, in words
    first_party: tuple[str, ...]             # first-party prefixes it may import
    third_party: tuple[str, ...] | None = None  # the only third-party packages it may use; None: any
    never: tuple[str, ...] = ()              # third-party packages it must not use


LAYERS = (
    Layer("server.world", "the world model imports only itself and protocol: no websockets, no agents",
          first_party=("server.world", "protocol"), never=("websockets",)),
    Layer("protocol", "sans-I/O: only the standard library and msgpack",
          first_party=("protocol",), third_party=("msgpack",)),
    Layer("client_demo", "clients speak the protocol only",
          first_party=("client_demo", "protocol")),
    Layer("agents", "minds and the engine see the world model, nothing else of the server",
          first_party=("agents", "server.world")),
    Layer("server", "the composition roots: protocol, agents and itself",
          first_party=("server", "protocol", "agents")),
)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str) -> Layer:
    return next(layer for layer in LAYERS if _within(module, layer.prefix))


# -- reading the sources -----------------------------------------------------
def product_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    """module name -> (source, is a package's __init__)."""
    out = {}
    for package in PRODUCT:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = list(rel.parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            out[".".join(parts)] = (path.read_text(encoding="utf-8"), is_package)
    return out


def _resolve(name: str, modules: set[str]) -> str:
    """The most specific known module that `name` names (a module, or an
    attribute of a module): `server.world.world.World` -> `server.world.world`."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return name


def imports_of(module: str, source: str, is_package: bool, modules: set[str]) -> list[tuple[str, int]]:
    """Every (imported module, line) in a module's source, wherever it sits."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(_resolve(a.name, modules), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "__future__":
                continue
            found += [(_resolve(f"{target}.{a.name}", modules), node.lineno) for a in node.names]
    return found


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, list[tuple[str, int]]]:
    modules = set(sources)
    return {m: imports_of(m, src, pkg, modules) for m, (src, pkg) in sources.items()}


# -- the checks --------------------------------------------------------------
def forbidden_imports(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    problems = []
    stdlib = sys.stdlib_module_names
    for module, imports in graph.items():
        layer = layer_of(module)
        for target, line in imports:
            top = target.split(".")[0]
            if top in PRODUCT or top in NOT_PRODUCT:
                ok = any(_within(target, p) for p in layer.first_party)
            elif top in stdlib:
                ok = True
            else:
                ok = top not in layer.never and (layer.third_party is None or top in layer.third_party)
            if not ok:
                problems.append(f"{module}:{line} imports {target} ({layer.prefix}: {layer.rule})")
    return problems


def import_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges = {m: sorted({t for t, _ in imports if t in graph and t != m}) for m, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return components


# -- the product -------------------------------------------------------------
def test_every_product_module_belongs_to_a_layer():
    sources = product_sources()
    assert len(sources) > 50
    for module in sources:
        assert layer_of(module) is not None


def test_no_forbidden_imports():
    assert forbidden_imports(import_graph(product_sources())) == []


def test_no_import_cycles():
    assert import_cycles(import_graph(product_sources())) == []


# -- the checker itself ------------------------------------------------------
def test_the_checker_finds_a_cycle_even_through_type_checking_and_local_imports():
    sources = {
        "server.a": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from server.b import B\n", False),
        "server.b": ("def f():\n    from server import c\n", False),
        "server.c": ("import server.a\n", False),
        "server.d": ("from server.a import thing\n", False),   # points into the cycle, not part of it
        "server": ("", True),
    }
    assert import_cycles(import_graph(sources)) == [["server.a", "server.b", "server.c"]]


def test_the_checker_finds_forbidden_imports():
    sources = {
        "agents.mind": ("from server.world.world import World\nfrom server.game import Game\n", False),
        "protocol.codec": ("import msgpack\nimport json\nimport asyncio\nimport numpy\n", False),
        "server.world.world": ("from . import grid\nimport websockets\n", False),
        "server.world.grid": ("def f():\n    from ...agents import minds\n", False),
        "server.game": ("", False),
        "client_demo.bots": ("import websockets\nfrom protocol.codec import encode\nfrom tests import helpers\n",
                             False),
        "agents.minds": ("", False),
        "protocol": ("", True),
        "agents": ("", True),
    }
    problems = forbidden_imports(import_graph(sources))
    assert [p.split(" (")[0] for p in problems] == [
        "agents.mind:2 imports server.game",
        "protocol.codec:4 imports numpy",
        "server.world.world:2 imports websockets",
        "server.world.grid:2 imports agents.minds",
        "client_demo.bots:3 imports tests.helpers",
    ]
