"""Describe a configuration dataclass: every key with its type, value and one-line comment.

``--help`` and shell completion are generated from the schema itself, so they cannot drift from
the code: the keys come from :func:`dataclasses.fields`, the types from the annotations, and the
comments from the trailing ``# ...`` of each field's line in the dataclass source (or, for
classes that document fields in their docstring, from its ``Attributes:`` block). Section markers
``# --- name ---`` in the source become the groups of the help page; a nested dataclass field
(``env``, ``log``, ``proj``, ...) becomes a group of its own with dotted keys.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:\s*[^=#]+?(?:=.*?)?(?:#\s*(.*))?$")
_SECTION = re.compile(r"^\s+#\s*---\s*(.+?)\s*-*\s*$")
_ATTRIBUTE = re.compile(r"^\s+(\w+):\s*(.+)$")


@dataclass(frozen=True)
class KeyDoc:
    """One configuration key as the help page shows it."""

    key: str  # dotted key, e.g. ``env.precision``
    type: str  # e.g. ``int``, ``float or null``, ``list[int]``
    value: Any  # the value in the described instance (the named config's default)
    comment: str  # the one-line comment of the field ("" when it has none)


@dataclass(frozen=True)
class Group:
    """A titled run of keys (a ``# --- name ---`` section or a nested dataclass)."""

    title: str
    keys: tuple[KeyDoc, ...]


def type_name(kind: Any) -> str:
    """A short, readable name of an annotation: ``int | None`` -> ``int or null``."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if typing.get_origin(kind) is list:
        return f"list[{type_name(args[0])}]" if args else "list"
    return getattr(kind, "__name__", str(kind))


def _source_comments(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """(field -> trailing comment, field -> section title) from a dataclass's own source lines."""
    comments: dict[str, str] = {}
    sections: dict[str, str] = {}
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (e.g. a frozen build): the docstring still helps
        lines = []
    section, block = "", []  # block: the comment lines right above a field
    for line in lines:
        marker = _SECTION.match(line)
        if marker:
            section, block = marker.group(1), []
            continue
        if line.strip().startswith("#"):
            block.append(line.strip().lstrip("#").strip())
            continue
        m = _FIELD_LINE.match(line)
        if m and not line.strip().startswith(("def ", "@")):
            comments[m.group(1)] = (m.group(2) or "").strip() or " ".join(block)
            sections[m.group(1)] = section
        block = []
    for name, text in _docstring_attributes(cls).items():
        comments.setdefault(name, text)
        if not comments[name]:
            comments[name] = text
    return comments, sections


def _own_doc(cls: type) -> str:
    """The class's own docstring; "" for the signature that ``@dataclass`` writes when there is none."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    return "" if doc.startswith(f"{cls.__name__}(") else doc


def _docstring_attributes(cls: type) -> dict[str, str]:
    """``Attributes:`` entries of a Google-style class docstring (first line of each)."""
    doc = _own_doc(cls)
    out: dict[str, str] = {}
    inside = False
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if inside:
            m = _ATTRIBUTE.match(line)
            if m:
                out[m.group(1)] = m.group(2).strip()
            elif line.strip() and not line.startswith(" "):
                break
    return out


def _humanize(name: str) -> str:
    """``KnnOptions`` -> ``knn options``, ``EvalCommon`` -> ``eval common``."""
    return " ".join(w.lower() for w in re.findall(r"[A-Z][a-z0-9]*", name)) or name


def _comments_of(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """Comments of a dataclass and of its dataclass bases (a suite's class inherits the common keys).

    A field outside any section marker is titled after the base that declares it (``eval
    common``, ``knn options``); in ``cls`` itself it gets no title (the caller's default).
    """
    comments: dict[str, str] = {}
    sections: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            c, s = _source_comments(base)
            comments.update({k: v for k, v in c.items() if v or k not in comments})
            title = "" if base is cls else _humanize(base.__name__)
            sections.update({k: v or title for k, v in s.items()})
    return comments, sections


def describe(cls: type, instance: Any | None = None, prefix: str = "", default_title: str = "options") -> list[Group]:
    """The help groups of a configuration dataclass.

    Args:
        cls: the dataclass (e.g. :class:`~latentmim.config.schema.PretrainConfig`).
        instance: the values to show (a composed named config); None = the dataclass defaults.
        prefix: dotted prefix of every key (``knn.`` under ``eval all``).
        default_title: title of the keys before the first section marker.

    Returns:
        Groups in source order: each section, then one group per nested dataclass field.
    """
    hints = typing.get_type_hints(cls)
    comments, sections = _comments_of(cls)
    plain: dict[str, list[KeyDoc]] = {}
    nested: list[Group] = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        value = getattr(instance, f.name) if instance is not None else _default(f)
        if dataclasses.is_dataclass(kind):
            sub = describe(kind, value, f"{prefix}{f.name}.", default_title)  # type: ignore[arg-type]
            doc = _own_doc(kind).splitlines()
            title = f"{prefix}{f.name}" + (f": {doc[0].rstrip('.')}" if doc else "")
            nested.append(Group(title, tuple(k for g in sub for k in g.keys)))
            continue
        title = sections.get(f.name) or default_title
        plain.setdefault(title, []).append(KeyDoc(f"{prefix}{f.name}", type_name(kind), value,
                                                  comments.get(f.name, "")))
    return [Group(t, tuple(k)) for t, k in plain.items()] + nested


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted leaf key of a dataclass schema, in declaration order."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out += all_keys(kind, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        else:
            out.append(f"{prefix}{f.name}")
    return out


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str) and value == "???":
        return "(required)"
    if isinstance(value, str):
        return repr(value) if value == "" else value
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def format_groups(groups: list[Group]) -> str:
    """Plain-text help: one line per key, ``key  type  = default  comment``, under group titles."""
    docs = [k for g in groups for k in g.keys]
    if not docs:
        return ""
    wk = max(len(k.key) for k in docs)
    wt = max(len(k.type) for k in docs)
    wv = min(max(len(_show(k.value)) for k in docs), 24)
    lines: list[str] = []
    for g in groups:
        lines.append(f"\n{g.title}:")
        for k in g.keys:
            lines.append(f"  {k.key:<{wk}}  {k.type:<{wt}}  = {_show(k.value):<{wv}}  {k.comment}".rstrip())
    return "\n".join(lines).lstrip("\n")
