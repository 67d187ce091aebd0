"""The import graph of ``bot/``, read from the source: layer violations and import cycles.

    .venv/bin/python tests/layers.py            # this checkout's bot/
    .venv/bin/python tests/layers.py SRC_ROOT   # the package ``bot`` under SRC_ROOT
    .venv/bin/python tests/layers.py --graph    # and first the graph between bot's parts

Every ``import`` and ``from … import`` counts, at module level and inside functions (a function-level
import is a dependency that is only paid later). Imports under ``if TYPE_CHECKING:`` count for the
layers (the module still depends on what it names) but not for cycles (they never run).
Prints one line per problem and exits 1 when there is any; prints the graph's size and exits 0
otherwise. ``tests/test_layers.py`` runs it in CI.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "bot"
STDLIB = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. bot.domain.offers
    target: str  # imported module: a bot module, or the top-level name of anything else (httpx)
    line: int
    runtime: bool  # False under ``if TYPE_CHECKING:``


@dataclass(frozen=True)
class Rule:
    """Modules under ``source`` may not import modules under any of ``forbidden`` (or, with
    ``only``, may import nothing but the standard library and those)."""

    source: str
    forbidden: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    why: str = ""

    def broken_by(self, edge: Edge) -> bool:
        if not within(edge.source, self.source):
            return False
        if self.only is not None:
            return edge.target.split(".")[0] not in STDLIB and not any(within(edge.target, ok) for ok in self.only)
        return any(within(edge.target, bad) for bad in self.forbidden)


RULES = (
    Rule("bot.domain", only=("bot.domain", "phonenumbers"),
         why="the domain imports only the standard library, phonenumbers and itself"),
    Rule("bot.slack.listeners", forbidden=("bot.store",), why="listeners reach the store only through the services"),
    Rule("bot.slack.render", forbidden=("bot.store", "bot.services", "bot.config"),
         why="rendering takes what it shows as arguments: no store, no services, no Settings"),
    Rule("bot.store", forbidden=("bot.slack", "bot.services"), why="the store knows nothing of its callers"),
    Rule("bot.providers", forbidden=("bot.slack", "bot.services"), why="providers know nothing of their callers"),
)


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def modules_of(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of ``package`` under ``root``: dotted name → file (a package is its ``__init__``)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return guarded


def _resolve(name: str, known: dict[str, Path]) -> str:
    """A bot module: the longest known prefix of ``name``; anything else: its top-level name."""
    if not within(name, PACKAGE):
        return name.split(".")[0]
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts) or name


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    guarded = _type_checking_only(tree)
    is_package = path.name == "__init__.py"
    edges = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from bot.slack import home`` imports the module bot.slack.home when there is one.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for name in dict.fromkeys(names):
            target = _resolve(name, known)
            if target != module:
                edges.append(Edge(module, target, node.lineno, id(node) not in guarded))
    return edges


def graph(root: Path, package: str = PACKAGE) -> list[Edge]:
    known = modules_of(root, package)
    return [edge for module, path in known.items() for edge in imports_of(module, path, known)]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Each group of bot modules that import one another at run time (Tarjan's strongly connected
    components), as one cycle through the group: ``[a, b, c, a]``."""
    succ: dict[str, list[str]] = {}
    for e in edges:
        if e.runtime and within(e.target, PACKAGE):
            succ.setdefault(e.source, []).append(e.target)
            succ.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (~150)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return [_one_cycle(sorted(g), succ) for g in groups]


def _one_cycle(group: list[str], succ: dict[str, list[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(succ[v]):
                if w == start:
                    return paths[v] + [start]
                if w in members and w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return group + [start]


def problems(root: Path, package: str = PACKAGE) -> list[str]:
    edges = graph(root, package)
    found = [
        f"layer: {e.source} imports {e.target} (line {e.line}): {rule.why}"
        for e in edges
        for rule in RULES
        if rule.broken_by(e)
    ]
    found += [f"cycle: {' -> '.join(c)}" for c in cycles(edges)]
    return found


def part(module: str, packages: set[str]) -> str:
    """The part of bot a module belongs to: ``bot.slack.render.kit`` → ``bot.slack.render`` (a
    package inside a part is a part of its own); ``bot.slack.app`` → ``bot.slack``; ``bot.worker``."""
    parts = module.split(".")
    return ".".join(parts[:3]) if ".".join(parts[:3]) in packages else ".".join(parts[:2])


def part_graph(root: Path) -> list[str]:
    """``bot.X -> bot.Y (n)``: how many imports each part of bot makes of each other part."""
    packages = {name for name, path in modules_of(root).items() if path.name == "__init__.py"}
    counts: dict[tuple[str, str], int] = {}
    for e in graph(root):
        key = (part(e.source, packages), part(e.target, packages))
        if within(e.target, PACKAGE) and key[0] != key[1]:
            counts[key] = counts.get(key, 0) + 1
    return [f"{a} -> {b} ({n})" for (a, b), n in sorted(counts.items())]


def main(argv: list[str]) -> int:
    show_graph = "--graph" in argv
    argv = [a for a in argv if a != "--graph"]
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    if show_graph:
        print("\n".join(part_graph(root)))
    found = problems(root)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} problem(s) in the import graph of {root / PACKAGE}")
        return 1
    edges = graph(root)
    print(f"ok: {len(modules_of(root))} modules, {len(edges)} imports, no layer violation, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
