"""Tools: async functions with a pydantic argument model, a description and a `safe` flag.

A catalog is a module that exposes `CATALOG: Catalog` (see `configs/catalogs/demo.py`); the
settings name it by import path. A `ToolBox` binds a catalog to one session: its own state, its own
random generator for simulated latency, and any tools the client declared for itself.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import itertools
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

ToolFn = Callable[[Any, "ToolContext"], Awaitable[Any]]
_REF = re.compile(r"^\$(\d+)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)$")
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class ToolError(Exception):
    """A tool failed in a way the model should hear about (bad arguments, not found, ...)."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    state: Any
    rng: random.Random


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    fn: ToolFn
    safe: bool
    timeout_s: float | None = None

    def schema(self) -> dict[str, Any]:
        params = self.args.model_json_schema()
        params.pop("title", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        return {"name": self.name, "description": self.description, "safe": self.safe, "parameters": params}


def tool(*, safe: bool, name: str | None = None, timeout_s: float | None = None) -> Callable[[ToolFn], Tool]:
    """Make a `Tool` from `async def fn(args: SomeModel, ctx: ToolContext)`; the docstring describes it."""

    def wrap(fn: ToolFn) -> Tool:
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
        args_model = params[0].annotation if params else None
        if not (inspect.isclass(args_model) and issubclass(args_model, BaseModel)):
            raise TypeError(f"{fn.__name__}: the first parameter must be annotated with a pydantic model")
        doc = inspect.getdoc(fn)
        if not doc:
            raise TypeError(f"{fn.__name__}: a tool needs a docstring; the model reads it")
        return Tool(name or fn.__name__, doc.strip(), args_model, fn, safe, timeout_s)

    return wrap


_JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                               "array": list[Any], "object": dict[str, Any]}


def model_from_schema(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """An argument model for a tool declared by a JSON schema (a client's tool): top-level properties
    with their JSON types, enums and descriptions (the prompt shows them: "the zipcode of the first
    city", a door's allowed values), required ones required; anything deeper is left to the client."""
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        kind: Any = Any
        if isinstance(prop.get("enum"), list) and prop["enum"]:
            kind = Literal[tuple(prop["enum"])]
        elif isinstance(prop.get("type"), str):
            kind = _JSON_TYPES.get(prop["type"], Any)
        about = prop["description"] if isinstance(prop.get("description"), str) else None
        fields[key] = ((kind, Field(description=about)) if key in required
                       else (kind | None, Field(None, description=about)))
    model: type[BaseModel] = create_model(f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields)
    return model


def client_tool(name: str, description: str, parameters: dict[str, Any], fn: ToolFn,
                timeout_s: float = 120.0) -> Tool:
    """A tool the client runs (Realtime `function_call`): never speculated, since the server cannot know
    whether it changes anything."""
    return Tool(name, description or name, model_from_schema(name, parameters), fn, safe=False, timeout_s=timeout_s)


@dataclass(frozen=True)
class Catalog:
    name: str
    tools: tuple[Tool, ...]
    new_state: Callable[[], Any] = field(default=lambda: None)
    example: str = ""  # a worked trace shown in the system prompt (small models follow examples best)


def load_catalog(spec: str) -> Catalog:
    """`package.module` (which defines CATALOG) or `package.module:attribute`."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import tool catalog {spec!r}: {e}") from e
    catalog = getattr(module, attr or "CATALOG", None)
    if not isinstance(catalog, Catalog):
        raise ValueError(f"{spec!r} does not name a Catalog")
    return catalog


def references(value: Any) -> set[int]:
    """The call ids that `$N` strings anywhere in `value` point to."""
    if isinstance(value, str):
        m = _REF.match(value)
        return {int(m.group(1))} if m else set()
    if isinstance(value, dict):
        return set().union(*(references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(references(v) for v in value))
    return set()


def _fields(value: Any, most: int = 12) -> str:
    """The fields a result has, for an error about one it lacks: the model can then fix its reference
    ("$1.phone_number": it has name, phone, email)."""
    if not isinstance(value, dict) or not value:
        return ""
    names = [str(k) for k in itertools.islice(value, most)]
    return f"; it has: {', '.join(names)}{', ...' if len(value) > most else ''}"


def resolve(value: Any, results: dict[int, Any]) -> Any:
    """Replace `$N` / `$N.key[0]` strings with the referenced result (or a part of it)."""
    if isinstance(value, str):
        m = _REF.match(value)
        if not m:
            return value
        current = results[int(m.group(1))]
        for key, index in _PATH_PART.findall(m.group(2)):
            try:
                current = current[key] if key else current[int(index)]
            except (KeyError, IndexError, TypeError) as e:
                raise ToolError(f"{value} does not exist in the result of call {m.group(1)}{_fields(current)}") from e
        return current
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    return value


def describe_validation_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:4]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class ToolBox:
    """A catalog bound to one session."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        latency_s: tuple[float, float] = (0.0, 0.0),
        timeout_s: float = 10.0,
        seed: int | None = None,
        extra: Iterable[Tool] = (),
    ) -> None:
        self.catalog = catalog
        self.tools = {t.name: t for t in (*catalog.tools, *extra)}
        self.state = catalog.new_state()
        self.latency_s = latency_s
        self.timeout_s = timeout_s
        self.rng = random.Random(seed)

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def set_client_tools(self, tools: Iterable[Tool]) -> None:
        """Replace the client's tools; the catalog's own tools keep their names."""
        own = {t.name for t in self.catalog.tools}
        self.tools = {t.name: t for t in self.catalog.tools}
        for t in tools:
            if t.name in own:
                raise ValueError(f"tool {t.name!r} is already a server tool")
            self.tools[t.name] = t

    def check(self, name: str, arguments: dict[str, Any], known_ids: set[int], call_id: int) -> str | None:
        """Why a call cannot be issued, or None. Arguments with `$N` are fully checked once resolved."""
        found = self.tools.get(name)
        if found is None:
            return f"unknown tool {name!r}; the tools are: {', '.join(sorted(self.tools))}"
        refs = references(arguments)
        bad = sorted(r for r in refs if r >= call_id or r not in known_ids)
        if bad:
            return f"call {call_id} references ${bad[0]}, which is not an earlier call"
        fields = found.args.model_fields
        unknown = sorted(set(arguments) - set(fields))
        if unknown:
            return f"{name} has no argument {unknown[0]!r}; it takes: {', '.join(fields) or 'none'}"
        if not refs:
            try:
                found.args.model_validate(arguments)
            except ValidationError as e:
                return f"invalid arguments for {name}: {describe_validation_error(e)}"
        else:
            missing = [k for k, f in fields.items() if f.is_required() and k not in arguments]
            if missing:
                return f"invalid arguments for {name}: {missing[0]}: Field required"
        return None

    async def execute(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run one call (arguments already resolved), with simulated latency and a timeout."""
        found = self.tools[name]
        try:
            args = found.args.model_validate(arguments)
        except ValidationError as e:
            raise ToolError(f"invalid arguments for {name}: {describe_validation_error(e)}") from e
        timeout = found.timeout_s if found.timeout_s is not None else self.timeout_s
        lo, hi = self.latency_s
        delay = self.rng.uniform(lo, hi) if hi > 0 else 0.0
        try:
            async with asyncio.timeout(timeout):
                if delay:
                    await asyncio.sleep(delay)
                return await found.fn(args, ToolContext(self.state, self.rng))
        except TimeoutError as e:
            raise ToolError(f"{name} timed out after {timeout:g} s") from e
