"""The portal's modules depend on one another in one direction only: no import cycles, and
the contracts of ARCHITECTURE.md (pyproject.toml's import-linter section) hold.

The graph is read from the source with `ast`, so it holds every import, at module level and
inside functions alike: an import moved into a function to get round a cycle is still a cycle.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import portal

# Flask's blueprint idiom: a feature package makes `bp`, then imports its `routes` so they
# register on it, and the routes import `bp` back. Python runs it safely because `bp` exists
# before the import; that one edge is left out of the graph.
BLUEPRINT_ROUTES = "routes"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module under `root` by dotted name; a package goes by its own name."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` imports anywhere in its file. `from a import b`
    imports the module a.b when there is one, else a (b is then a name defined in a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, path, node)
            found.update(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                         else source for alias in node.names)
    return {name for name in found if name in modules and name != module}


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module
    # Relative to the module's package: its own name when it is a package's __init__.
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = module_files(root, package)
    graph = {}
    for module, path in modules.items():
        graph[module] = imported_modules(module, path, modules)
        if path.name == "__init__.py":
            graph[module].discard(f"{module}.{BLUEPRINT_ROUTES}")
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle for every import that leads back to a module still being walked (a depth-first
    walk), each written as a path that ends where it starts."""
    found, path, done = [], [], set()

    def walk(module: str) -> None:
        path.append(module)
        for target in sorted(graph[module]):
            if target in path:
                found.append([*path[path.index(target):], target])
            elif target not in done:
                walk(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            walk(module)
    return found


def test_portal_has_no_import_cycles():
    graph = import_graph(Path(portal.__file__).parent, "portal")
    assert "portal.notifications.worker" in graph  # the walk really read the package
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "orders.py").write_text("from shop.mail import send\n")
    (package / "mail.py").write_text(
        "def send():\n    from . import orders  # late, to get round the cycle\n")
    (package / "prices.py").write_text("import shop.orders\n")
    assert cycles(import_graph(package, "shop")) == [["shop.mail", "shop.orders", "shop.mail"]]


def test_a_blueprint_importing_its_routes_is_not_a_cycle(tmp_path):
    package = tmp_path / "shop" / "orders"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("bp = object()\nfrom shop.orders import routes\n")
    (package / "routes.py").write_text("from shop.orders import bp\n")
    assert cycles(import_graph(package.parent, "shop")) == []


# --- the contracts of ARCHITECTURE.md, as `make lint` checks them (pyproject.toml) ---

PROJECT = Path(portal.__file__).parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """import-linter on the `portal` package found in `project`, with its pyproject's
    contracts."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(project / "pyproject.toml"), "--no-cache"],
        cwd=project, env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True, text=True, timeout=120,
    )


def test_the_layout_keeps_its_contracts():
    result = lint_imports(PROJECT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") >= 9


@pytest.mark.parametrize(("module", "violation", "contract"), [
    ("messages/routes.py", "from portal.feeds import routes as feed_routes",
     "Blueprints never import one another"),
    ("services/messages.py", "from portal.feed_component import query",
     "Services never import blueprints, the feed component or request-bound helpers"),
    ("services/audit.py", "from portal import unread",
     "Services never import blueprints, the feed component or request-bound helpers"),
    ("services/clients.py", "from flask_login import current_user",
     "Services take the person as an argument: no flask_login"),
    ("inbound/ingest.py", "from portal.replies import routes",
     "Inbound replies never import blueprints or request-bound helpers"),
    ("inbound/queue.py", "from portal import loaders",
     "Inbound replies never import blueprints or request-bound helpers"),
    ("inbound/queue.py", "from flask_login import current_user",
     "Inbound replies take no logged-in person: no flask_login"),
    ("services/messages.py", "from portal.inbound import queue",
     "Services never import blueprints, the feed component or request-bound helpers"),
    ("policy.py", "from portal.services import settings",
     "The policy imports only models and plain helpers"),
    ("feed_component/query.py", "from portal.files import routes",
     "The feed component never imports blueprints"),
    ("notifications/outbox.py", "from portal.settings import routes",
     "Notifications never import blueprints or the feed component"),
    ("models/messages.py", "from portal import policy",
     "Models import nothing above them"),
    ("notifications/email.py", "from portal.notifications import outbox",
     "Notification channels import no worker and no outbox"),
    ("notifications/notices.py", "from portal.notifications import sms",
     "Notifications import downwards only"),
])
def test_a_deliberate_violation_breaks_its_contract(tmp_path, module, violation, contract):
    shutil.copytree(PROJECT / "portal", tmp_path / "portal",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "pyproject.toml", tmp_path)
    with (tmp_path / "portal" / module).open("a") as source:
        source.write(f"\n{violation}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and f"{contract} BROKEN" in result.stdout, result.stdout
