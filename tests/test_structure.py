"""The package's structure, read from its source (an AST scan of src/distillab, module-level and
function-level imports alike): dependencies point one way down the layers below, no import
cycle, one `torch.load` call site, no private API of another library, no module over 300 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

# Bottom to top: a module may import its own layer and those below it, never one above.
# Each entry names the top-level packages/modules of `distillab` in that layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("errors", ("errors",)),
    ("small helpers", ("utils",)),
    ("typed config schemas", ("config",)),
    ("data, networks, decoding, losses", ("data", "models", "decoding", "losses")),
    ("checkpoint I/O", ("checkpoint",)),
    ("teachers", ("teachers",)),
    ("LightningModules", ("modules",)),
    ("model tools", ("compress", "export", "analysis", "report")),
    ("pipelines (take built objects)", ("pipelines",)),
    ("composition root (config -> objects)", ("compose",)),
    ("jobs (take a composed run)", ("jobs",)),
    ("run lifecycle (status.json, resume, requeue)", ("runs",)),
    ("CLI-level checks", ("validate",)),
    ("CLIs", ("train", "evaluate", "chat", "serve")),
]
ONE_TORCH_LOAD = "distillab.checkpoint"  # the one module that calls torch.load
MAX_LINES = 300
LOAD_CALLS = {"torch.load", "torch.serialization.load"}
# builtins that reach an attribute by its name: getattr(x, "_name") is x._name
NAME_BUILTINS = {"getattr", "setattr", "hasattr", "delattr"}

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "distillab"


def private(name: str) -> bool:
    """`_name`; not a dunder, nor a Hydra key such as `cfg._target_`."""
    return name.startswith("_") and not name.endswith("_")


@dataclass
class Module:
    """One parsed module: the distillab modules it imports (anywhere in it) and the dotted
    origin of each name it imports."""

    name: str
    path: Path
    lines: int
    tree: ast.Module
    imports: dict[str, int] = field(default_factory=dict)  # distillab module -> first line
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> dotted origin


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(mod: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    if mod.path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        mod = Module(module_name(path), path, len(text.splitlines()), ast.parse(text))
        found[mod.name] = mod
    for mod in found.values():
        for node in ast.walk(mod.tree):  # every import, inside functions too
            if isinstance(node, ast.Import):
                for a in node.names:
                    local = a.asname or a.name.split(".")[0]  # `import a.b` binds `a`
                    mod.aliases[local] = a.name if a.asname else local
                add_imports(mod, found, [a.name for a in node.names], node.lineno)
            elif isinstance(node, ast.ImportFrom):
                src = absolute(mod, node)
                targets = []
                for a in node.names:
                    mod.aliases[a.asname or a.name] = f"{src}.{a.name}"
                    sub = f"{src}.{a.name}"
                    targets.append(sub if sub in found else src)
                add_imports(mod, found, targets, node.lineno)
    return found


def add_imports(mod: Module, found: dict[str, Module], targets: list[str], line: int) -> None:
    for t in targets:
        if t.split(".")[0] == "distillab" and t != mod.name:
            while t not in found and "." in t:  # `import distillab.x.y` of a name
                t = t.rsplit(".", 1)[0]
            mod.imports.setdefault(t, line)


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else None
    for i, (_, members) in enumerate(LAYERS):
        if top in members:
            return i
    return None


def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """`torch.serialization.load` for an attribute chain on an imported name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


@cache
def own_names() -> frozenset[str]:
    """Every name distillab defines itself (functions, classes, attributes, variables): a
    leading underscore on one of these is the package's own business."""
    names: set[str] = set()
    for mod in modules().values():
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return frozenset(names)


def private_uses(mod: Module) -> list[str]:
    """Private names of other libraries this module touches: imports of `_private` modules or
    names, attribute chains through one (`torch._VF`, `sys._getframe`), `x._attr` and
    `getattr(x, "_attr")` for an attribute distillab does not define itself."""
    out, ours = [], own_names()
    for node in ast.walk(mod.tree):
        where = f"{mod.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            src = absolute(mod, node) if isinstance(node, ast.ImportFrom) else ""
            for a in node.names:
                full = f"{src}.{a.name}" if src else a.name
                if full.split(".")[0] != "distillab" and any(map(private, full.split("."))):
                    out.append(f"{where} imports {full}")
        elif isinstance(node, ast.Attribute) and private(node.attr):
            origin = dotted(node, mod.aliases)
            if origin and origin.split(".")[0] != "distillab":
                out.append(f"{where} uses {origin}")
            elif origin is None and node.attr not in ours:
                out.append(f"{where} uses .{node.attr} (not defined by distillab)")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in NAME_BUILTINS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and private(node.args[1].value)
            and node.args[1].value not in ours
        ):
            out.append(f"{where} {node.func.id}(..., {node.args[1].value!r})")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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


def test_every_module_has_a_layer():
    missing = [m for m in modules() if m != "distillab" and layer_of(m) is None]
    assert not missing, f"place these in LAYERS (tests/test_structure.py): {missing}"
    assert not modules()["distillab"].imports, "the package root imports nothing"


def upward(mod: Module) -> list[str]:
    """This module's imports of a higher layer than its own."""
    out = []
    for target, line in mod.imports.items():
        low, high = layer_of(mod.name), layer_of(target)
        if low is not None and high is not None and high > low:
            out.append(f"{mod.name}:{line} ({LAYERS[low][0]}) imports {target} ({LAYERS[high][0]})")
    return out


def test_no_import_from_a_lower_layer_to_a_higher_one():
    found = [line for mod in modules().values() for line in upward(mod)]
    assert not found, "\n".join(found)


def test_the_layer_check_finds_an_upward_import_and_only_that():
    mod = Module("distillab.teachers.example", PACKAGE / "teachers" / "example.py", 3, ast.Module())
    mod.imports = {"distillab.checkpoint": 1, "distillab.teachers.base": 2, "distillab.modules": 3}
    assert upward(mod) == [
        "distillab.teachers.example:3 (teachers) imports distillab.modules (LightningModules)"
    ]


def test_no_import_cycle():
    graph = {m.name: set(m.imports) for m in modules().values()}
    assert not cycles(graph)


def test_the_cycle_finder_finds_a_cycle_through_three_modules():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_torch_load_is_called_in_one_place_only():
    sites = [
        f"{mod.name}:{node.lineno}"
        for mod in modules().values()
        for node in ast.walk(mod.tree)
        if isinstance(node, ast.Call) and dotted(node.func, mod.aliases) in LOAD_CALLS
    ]
    assert len(sites) == 1 and sites[0].startswith(f"{ONE_TORCH_LOAD}:"), sites


def test_no_private_api_of_another_library():
    uses = [use for mod in modules().values() for use in private_uses(mod)]
    assert not uses, "\n".join(uses)


def test_the_private_api_scan_finds_what_it_names():
    code = (
        "import sys\nimport torch\nfrom hydra._internal.utils import x\n"
        "def f(trainer, gru):\n"
        "    sys._getframe(1)\n    torch._VF.gru\n    trainer._signal_connector\n"
        "    getattr(gru, '_flat_weights')\n"
    )
    mod = Module("distillab.example", PACKAGE / "example.py", 8, ast.parse(code))
    mod.aliases = {"sys": "sys", "torch": "torch", "x": "hydra._internal.utils.x"}
    found = private_uses(mod)
    assert len(found) == 5, found
    for name in ("hydra._internal", "sys._getframe", "torch._VF", "_signal_connector", "_flat"):
        assert any(name in use for use in found), (name, found)


def test_no_module_is_over_300_lines():
    long = {m.name: m.lines for m in modules().values() if m.lines > MAX_LINES}
    assert not long, long


@pytest.mark.parametrize("module", ["distillab.chat.app", "distillab.serve.app"])
def test_the_chat_and_serving_entry_points_start_without_lightning(module):
    """They need a tokenizer and a model, not the training stack: importing Lightning (and
    torchmetrics with it) would add about 1.5 s to every start."""
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('pytorch_lightning', 'torchmetrics') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
