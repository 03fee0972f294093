"""The imports of ``src/mailpass`` go one way: down the layers below, never up and never round.

Read from the source with ``ast`` (nothing is imported), counting every import: at module level,
inside functions and under ``TYPE_CHECKING`` alike, since each is an arrow a reader follows.
CONTRIBUTING.md draws the same layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "mailpass"

# Top to bottom. A module may import its own layer's package and any layer below; packages that
# share a layer may not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mailpass.__main__",),
    ("mailpass.cli",),
    ("mailpass.dev",),
    ("mailpass.server",),
    ("mailpass.api",),
    ("mailpass.dashboard",),
    ("mailpass.services",),  # builds the domain services a process holds for its whole life
    ("mailpass.relay",),  # the SMTP relay: submissions queued as messages
    ("mailpass.monitoring",),  # /metrics: the database's aggregates and the processes' measures
    ("mailpass.messages",),
    ("mailpass.delivery",),
    ("mailpass.intake",),  # provider webhooks: events recorded, statuses and suppressions set
    ("mailpass.tracking", "mailpass.idempotency", "mailpass.suppressions"),
    ("mailpass.webhooks",),  # outbound webhooks: every domain above puts its events in its outbox
    ("mailpass.domains",),  # sending domains: DKIM keys that direct delivery signs with
    ("mailpass.providers",),
    ("mailpass.accounts",),
    ("mailpass.storage",),
    ("mailpass.runtime",),  # how a process runs: the heap, uvicorn's protocol, the supervisor
    ("mailpass.config",),
    ("mailpass.core", "mailpass.clock", "mailpass.errors"),
)
# The SDK stands apart: it imports nothing of the server (``mailpass.__version__`` aside), and
# ``import mailpass`` gives it.
CLIENT = "mailpass.client"
ROOT = "mailpass"

# Entry points (api, cli, dashboard pages) reach the database through services, never through
# a domain package's repository. The dashboard's own sign-in and sessions are services of its
# own (with a repository of their own), and may.
ENTRY_POINT_SERVICES = ("mailpass.dashboard.sessions", "mailpass.dashboard.signin")
DOMAIN_PACKAGES = (
    "mailpass.relay",
    "mailpass.monitoring",
    "mailpass.messages",
    "mailpass.delivery",
    "mailpass.intake",
    "mailpass.tracking",
    "mailpass.idempotency",
    "mailpass.suppressions",
    "mailpass.webhooks",
    "mailpass.domains",
    "mailpass.providers",
    "mailpass.accounts",
)
ENTRY_POINTS = ("mailpass.api", "mailpass.cli", "mailpass.dashboard", "mailpass.dev")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every ``mailpass`` module ``path`` names in an import, resolved to its full name."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from mailpass.x import y`` names the module mailpass.x.y when there is one,
            # else a name defined by mailpass.x.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == ROOT or target.startswith(ROOT + "."):
                yield target


def source_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    }


MODULES = source_modules()


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports."""
    return {
        name: {target for target in imports_of(path) if target in MODULES and target != name}
        for name, path in MODULES.items()
    }


def owner(module: str, groups: tuple[str, ...]) -> str | None:
    """The group of ``groups`` that ``module`` belongs to (itself or a package above it)."""
    for group in groups:
        if module == group or module.startswith(group + "."):
            return group
    return None


def layer_of(module: str) -> tuple[int, str] | None:
    for depth, layer in enumerate(LAYERS):
        group = owner(module, layer)
        if group is not None:
            return depth, group
    return None


GRAPH = import_graph()
ARROWS = sorted((source, target) for source, targets in GRAPH.items() for target in targets)


def test_every_module_has_a_layer() -> None:
    unplaced = [
        module
        for module in GRAPH
        if module not in (ROOT,) and owner(module, (CLIENT,)) is None and layer_of(module) is None
    ]
    assert unplaced == [], "add these modules' package to LAYERS in tests/test_layers.py"


def against_the_layers(arrows: list[tuple[str, str]]) -> list[str]:
    """The arrows that go up the layers, or across between packages of one layer."""
    wrong = []
    for source, target in arrows:
        if ROOT in (source, target) or owner(source, (CLIENT,)) or owner(target, (CLIENT,)):
            continue  # the SDK's own test below
        placed_source, placed_target = layer_of(source), layer_of(target)
        assert placed_source is not None
        assert placed_target is not None
        (source_depth, source_group), (target_depth, target_group) = placed_source, placed_target
        if target_depth < source_depth or (
            target_depth == source_depth and target_group != source_group
        ):
            wrong.append(f"{source} -> {target}")
    return wrong


def test_imports_go_down_the_layers() -> None:
    assert against_the_layers(ARROWS) == []


def test_the_client_imports_nothing_of_the_server() -> None:
    wrong = [
        f"{source} -> {target}"
        for source, target in ARROWS
        if owner(source, (CLIENT,)) and not owner(target, (CLIENT,)) and target != ROOT
    ]
    assert wrong == []
    # And the root package, which ``import mailpass`` loads, imports only the client.
    assert {target for target in GRAPH[ROOT] if not owner(target, (CLIENT,))} == set()


def test_no_module_imports_itself_round_a_cycle() -> None:
    cycles = [sorted(component) for component in strongly_connected(GRAPH) if len(component) > 1]
    assert cycles == []


def test_repositories_do_not_call_services() -> None:
    wrong = [
        f"{source} -> {target}"
        for source, target in ARROWS
        if source.rsplit(".", 1)[-1] == "repository" and target.rsplit(".", 1)[-1] == "service"
    ]
    assert wrong == []


def test_storage_and_core_know_no_domain() -> None:
    domain = DOMAIN_PACKAGES
    wrong = [
        f"{source} -> {target}"
        for source, target in ARROWS
        if owner(source, ("mailpass.storage", "mailpass.core")) and owner(target, domain)
    ]
    assert wrong == []


def entry_points_calling_repositories(arrows: list[tuple[str, str]]) -> list[str]:
    return [
        f"{source} -> {target}"
        for source, target in arrows
        if owner(source, ENTRY_POINTS)
        and not owner(source, ENTRY_POINT_SERVICES)
        and target.rsplit(".", 1)[-1] == "repository"
        and owner(target, ENTRY_POINTS) is None
    ]


def test_entry_points_reach_repositories_only_through_services() -> None:
    assert entry_points_calling_repositories(ARROWS) == [], "call a service instead"
    caught = [("mailpass.dashboard.key_pages", "mailpass.accounts.repository")]
    assert entry_points_calling_repositories(caught) == [
        "mailpass.dashboard.key_pages -> mailpass.accounts.repository"
    ]
    allowed = [("mailpass.dashboard.signin", "mailpass.accounts.repository")]
    assert entry_points_calling_repositories(allowed) == []


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("mailpass.core.mime", "mailpass.messages.service"),
        ("mailpass.storage.database", "mailpass.providers.repository"),
        ("mailpass.providers.service", "mailpass.delivery.queue"),
        ("mailpass.tracking.service", "mailpass.idempotency.service"),
        ("mailpass.config", "mailpass.core.client_ip"),  # allowed: config is above core
    ],
)
def test_an_arrow_against_the_layers_is_caught(source: str, target: str) -> None:
    """The check above can fail: each arrow up (or across) is named, one down is not."""
    expected = [] if source == "mailpass.config" else [f"{source} -> {target}"]
    assert against_the_layers([*ARROWS, (source, target)]) == expected


def test_a_cycle_is_caught() -> None:
    graph = {name: set(targets) for name, targets in GRAPH.items()}
    graph["mailpass.core.outgoing"].add("mailpass.core.mime")  # mime imports outgoing
    assert ["mailpass.core.mime", "mailpass.core.outgoing"] in [
        sorted(component) for component in strongly_connected(graph)
    ]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = lowest[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                lowest[node] = min(lowest[node], lowest[target])
            elif target in on_stack:
                lowest[node] = min(lowest[node], index[target])
        if lowest[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_is_read_from_every_kind_of_import() -> None:
    assert ("mailpass.delivery.queue", "mailpass.core.stored") in ARROWS  # from x.y import z
    assert ("mailpass.dashboard.sessions", "mailpass.dashboard.repository") in ARROWS  # a module
    assert ("mailpass.core.mime", "mailpass.core.outgoing") in ARROWS
    assert len(ARROWS) > 200
