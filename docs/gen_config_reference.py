"""Writes `reference/config.md` at build time (mkdocs-gen-files) from the typed schemas
(`distillab.config`) and the shipped YAML (`distillab/conf/`), so the reference cannot drift:
every group, option, key, type, default and range. `render()` is what tests check."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types as at
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:  # a fresh clone builds its own sources
    sys.path.insert(0, str(ROOT / "src"))

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from distillab.config import EvalConfig, RunConfig  # noqa: E402
from distillab.config.targets import HYDRA_KEYS, Target, parameters, resolve  # noqa: E402
from distillab.config.teacher import Teacher, TeacherTrain  # noqa: E402

CONF = ROOT / "src" / "distillab" / "conf"
NOT_CHECKED = "not checked by distillab"


def groups() -> list[str]:
    """Every config group: each folder under conf/ that holds YAML, nested ones as `a/b`."""
    found = {str(p.parent.relative_to(CONF)) for p in CONF.rglob("*.yaml")}
    return sorted(found - {"."})


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def default_options() -> dict[str, str]:
    """The option each root config (train.yaml, eval.yaml, chat.yaml) picks per group."""
    picks: dict[str, str] = {}
    for root in ("train", "eval", "chat"):
        for entry in OmegaConf.load(CONF / f"{root}.yaml").get("defaults", []):
            if isinstance(entry, dict) or OmegaConf.is_dict(entry):
                for k, v in dict(entry).items():
                    if v is not None and "@" not in k:
                        picks.setdefault(k.replace("override ", "").lstrip("/"), str(v))
    return picks


# ---- types and ranges from pydantic annotations -------------------------------------------


def bounds(meta: list) -> str:
    low = high = ""
    meta = [*meta, *(i for m in meta for i in getattr(m, "metadata", None) or [])]
    for m in meta:
        if isinstance(m, at.Ge):
            low = f"[{m.ge}"
        elif isinstance(m, at.Gt):
            low = f"({m.gt}"
        elif isinstance(m, at.Le):
            high = f"{m.le}]"
        elif isinstance(m, at.Lt):
            high = f"{m.lt})"
    if not (low or high):
        return ""
    return f"{low or '(-inf'}, {high or 'inf)'}"


def describe(ann: Any, meta: list | None = None) -> tuple[str, str]:
    """(type, range) of an annotation, ranges from Field bounds and Literal choices."""
    meta = list(meta or [])
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return describe(args[0], [*meta, *ann.__metadata__])
    if ann is type(None):
        return "null", ""
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a, meta) for a in args]
        kinds = " or ".join(dict.fromkeys(t for t, _ in parts))
        return kinds, "; ".join(dict.fromkeys(r for _, r in parts if r))
    if origin is typing.Literal:
        shown = ", ".join(str(a).lower() if isinstance(a, bool) else str(a) for a in args)
        return "choice", f"one of {shown}"
    if origin in (list, tuple):
        inner = [describe(a) for a in args if a is not Ellipsis]
        return f"list of {' and '.join(dict.fromkeys(t for t, _ in inner))}", "; ".join(
            dict.fromkeys(r for _, r in inner if r)
        )
    if origin is dict:
        return f"map of names to {describe(args[1])[0]}", ""
    if inspect.isclass(ann) and issubclass(ann, Target):
        return "plug-in node (`_target_`)", ""
    if inspect.isclass(ann) and issubclass(ann, BaseModel):
        return "node", ""
    if ann is Any or ann is inspect.Parameter.empty:
        return "any", bounds(meta)
    name = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
    return name, bounds(meta)


def node_class(ann: Any) -> tuple[str, Any]:
    """('model', cls) | ('dict', value annotation) | ('list', item) | ('leaf', ann)."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return node_class(args[0])
    if origin in (typing.Union, types.UnionType):
        for a in args:
            kind, inner = node_class(a)
            if kind != "leaf":
                return kind, inner
        return "leaf", ann
    if origin is dict:
        return "dict", args[1]
    if origin is list:
        return "list", args[0]
    if inspect.isclass(ann) and issubclass(ann, BaseModel):
        return "model", ann
    return "leaf", ann


def field(model: type[BaseModel], key: str):
    for name, f in model.model_fields.items():
        if (f.alias or name) == key:
            return f
    return None


def lookup(root: type[BaseModel], path: list[str], cfg: dict) -> tuple[str, str]:
    """(type, range) of the key at `path`, walking the schema (and a plug-in's signature)."""
    kind, here, node = "model", root, cfg
    for i, part in enumerate(path):
        node = node.get(part) if isinstance(node, dict) else None
        last = i == len(path) - 1
        if kind == "dict":
            kind, here = node_class(here)
            if kind == "leaf":
                return describe(here) if last else ("any", "")
            continue
        if kind != "model":
            return "any", ""
        f = field(here, part)
        if (here, part) == (Teacher, "train"):  # validated as TeacherTrain by Teacher itself
            kind, here = "model", TeacherTrain
            if last:
                return "node", ""
            continue
        if f is None:
            if part in HYDRA_KEYS:
                return ("dotted path" if part == "_target_" else "bool"), ""
            parent = cfg_at(cfg, path[:i])
            target = parent.get("_target_") if isinstance(parent, dict) else None
            if issubclass(here, Target) and isinstance(target, str) and last:
                try:
                    params, _ = parameters(resolve(target))
                except ValueError:
                    return "any", ""
                if part in params:
                    return describe(params[part])
            return "any", NOT_CHECKED if here.model_config.get("extra") == "allow" else ""
        if last:
            return describe(f.annotation, f.metadata)
        kind, here = node_class(f.annotation)
        if kind == "leaf":
            return "any", ""
    return "any", ""


def cfg_at(cfg: dict, path: list[str]) -> Any:
    for p in path:
        cfg = cfg.get(p) if isinstance(cfg, dict) else None
    return cfg


# ---- values -----------------------------------------------------------------------------


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "defaults":
                continue
            out |= flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return {prefix: node}


def kind_of(value: Any) -> str:
    """A key outside the schema: the type of its YAML value (interpolations: any)."""
    if value is None or (isinstance(value, str) and value.startswith(("${", "???"))):
        return "any"
    return type(value).__name__


def shown(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == {}:
        return "`{}`"
    if value == []:
        return "`[]`"
    return f"`{value}`".replace("|", "\\|")


def composed(root: str, group: str, option: str) -> dict:
    """The option as a job gets it (its defaults list applied), interpolations kept."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(root, overrides=[f"{group}={option}"])
    return OmegaConf.to_container(cfg, resolve=False)


def is_global(path: Path) -> bool:
    return "# @package _global_" in path.read_text()


def rows(group: str, option: str, root_name: str) -> tuple[list[str], str]:
    """The table rows of one option and where its keys live."""
    path = CONF / group / f"{option}.yaml"
    schema = EvalConfig if root_name == "eval" else RunConfig
    if group.startswith("hydra") or root_name == "chat":
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        prefix = group.replace("/", ".")
        flat, full, schema = flatten(raw, prefix), {}, None
        where = f"`{prefix}.*`"
    elif is_global(path):
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        flat, full = flatten(raw), composed(root_name, group, option)
        where = "anywhere (`# @package _global_`): it sets the keys below"
    else:
        full = composed(root_name, group, option)
        flat, where = flatten(full.get(group), group), f"`{group}.*`"
    out = []
    for key, value in flat.items():
        parts = key.split(".")
        if schema is None or parts[0] == "hydra":
            kind, rng = kind_of(value), NOT_CHECKED
        else:
            kind, rng = lookup(schema, parts, full)
        out.append(f"| `{key}` | {kind} | {shown(value)} | {rng or '-'} |")
    return out, where


def root_rows(name: str) -> list[str]:
    """The root config's own keys (not a group's)."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"), resolve=False)
    schema = {"train": RunConfig, "eval": EvalConfig}.get(name)
    out = []
    for key, value in flatten(raw).items():
        kind, rng = lookup(schema, key.split("."), raw) if schema else (kind_of(value), "-")
        out.append(f"| `{key}` | {kind} | {shown(value)} | {rng or '-'} |")
    return out


HEAD = "| key | type | default | range |\n|---|---|---|---|"


def render() -> str:
    picks = default_options()
    lines = [
        "# Configuration reference",
        "",
        "Generated when the site is built (`docs/gen_config_reference.py`), from the pydantic "
        "schemas in `src/distillab/config/` and the YAML options in `src/distillab/conf/`: it "
        "cannot drift from the code. **type** and **range** come from the schema (`[a, b]` "
        "closed, `(a, b)` open; a plug-in's own keys from its `_target_`'s signature); "
        "**default** is the option's value, before interpolation (`${...}` is resolved when "
        "the job starts). A key the schema leaves open (`null` in a schema) takes the "
        "constructor's default. How to override: [Configuration](../guides/configuration.md).",
        "",
        "Groups: " + ", ".join(f"[`{g}`](#{g.replace('/', '')})" for g in groups()) + ".",
        "",
    ]
    for root in ("train", "eval", "chat"):
        lines += [f"## Root config `{root}.yaml`", "", HEAD, *root_rows(root), ""]
    for group in groups():
        opts = options(group)
        pick = picks.get(group) or picks.get(group.split("/")[-1])
        lines += [
            f"## `{group}`",
            "",
            f"Options: {', '.join(f'`{o}`' for o in opts)}; default: "
            + (f"`{pick}`." if pick in opts else "none (opt in with `" + f"{group}=NAME`)."),
            "",
        ]
        for option in opts:
            table, where = rows(group, option, "train")
            lines += [f"### `{group}={option}`", "", f"Keys: {where}.", "", HEAD, *table, ""]
    return "\n".join(lines)


if __name__ == "<run_path>":  # run by mkdocs-gen-files
    import mkdocs_gen_files

    with mkdocs_gen_files.open("reference/config.md", "w") as f:
        f.write(render())
    mkdocs_gen_files.set_edit_path("reference/config.md", "gen_config_reference.py")
