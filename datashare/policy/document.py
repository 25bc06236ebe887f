"""A policy file read as YAML, keeping where every key and value is written, with every problem at once.

PyYAML's events carry the line and column of every scalar, mapping and
sequence, so no second YAML library is needed: the document is built here from
the events of the safe loader (its own resolver and constructor make the
numbers, booleans and dates), and what a plain load would silently accept is
reported with its position, and reading goes on:

- a key given twice (a plain load keeps the last: fail open); the first is kept;
- a date that does not exist (``2027-13-45``);
- a tag other than YAML's plain ones (``!!python/…``, ``!!binary``, ``!!set``),
  and merge keys (``<<``: a merged key is overridden silently);
- an alias to a value that is not complete yet (a value inside itself);
- nesting deeper than :data:`MAX_DEPTH`, more than one document, and a syntax
  error, after which nothing more can be read.

A document with a syntax error is ``complete=False``: its schema is not checked
(half a document would only add false problems).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datashare.policy.problems import NOT_READ, KeyPath, Position, Problem, key_path_text

MAX_DEPTH = 32  # a policy needs five levels; deeper is refused before anything recurses over it
_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_YAML + name for name in ("null", "bool", "int", "float", "str", "timestamp")}
_MAPPING_TAGS, _SEQUENCE_TAGS = {None, "!", _YAML + "map"}, {None, "!", _YAML + "seq"}
_MERGE = _YAML + "merge"
_IGNORED = object()  # the key of a value that is reported and not kept (a key given twice, a merge key)


@dataclass
class Document:
    """The value read, where each key and value is (key path → line and column), and the problems found."""

    value: Any = None
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    complete: bool = True
    replaced: list[KeyPath] = field(default_factory=list)  # values reported and kept as their text

    def position(self, path: KeyPath) -> Position:
        """Where to point for ``path``: its key (its value in a list); for a key not written, its mapping's key."""
        for end in range(len(path), -1, -1):
            at = path[:end]
            found = self.keys.get(at) or self.values.get(at)
            if found is not None:
                return found
        return (1, 1)


@dataclass
class _Open:
    """A mapping or list being read: its value, key path (None inside a reported value), and pending key."""

    value: dict[Any, Any] | list[Any]
    path: KeyPath | None
    anchor: str | None
    key: Any = None
    has_key: bool = False
    key_position: Position | None = None


def read_document(text: str) -> Document:
    """Read one YAML document from ``text``; never raises for what the text holds."""
    # deferred: only reading a policy needs YAML
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    reader = _Reader(loader, yaml)
    try:
        reader.run()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reader.stop(f"not valid YAML: {exc.problem or exc.context or 'syntax error'}", mark)
    except yaml.YAMLError as exc:  # a character YAML does not allow: its place is an offset in the text
        offset = getattr(exc, "position", None)
        reader.stop("not valid YAML: a character that YAML does not allow",
                    text_position(text, offset) if isinstance(offset, int) else None)
    finally:
        loader.dispose()
    return reader.document


def text_position(text: str | bytes, offset: int) -> Position:
    """The line and column (from 1) of the character (or byte) at ``offset``."""
    newline = "\n" if isinstance(text, str) else b"\n"
    before = text[:offset]
    return (before.count(newline) + 1, offset - (before.rfind(newline) + 1) + 1)


def _position(mark: Any) -> Position:
    if isinstance(mark, tuple):
        return mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _tag(tag: str) -> str:
    return _shown("!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag)


def _shown(text: str) -> str:
    """A value of the file quoted in a message, cut short."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


class _Reader:
    def __init__(self, loader: Any, yaml: Any) -> None:
        self.loader, self.yaml = loader, yaml
        self.document = Document()
        self.stack: list[_Open] = []
        self.anchors: dict[str, Any] = {}
        self.documents = 0

    def stop(self, message: str, mark: Any) -> None:
        self.document.problems.append(Problem((), message, kind=NOT_READ, position=_position(mark)))
        self.document.complete = False

    def problem(self, path: KeyPath | None, message: str, mark: Any, hint: str | None = None) -> None:
        self.document.problems.append(Problem(path or (), message, hint=hint, position=_position(mark)))

    def replaced(self, path: KeyPath | None) -> None:
        if path:
            self.document.replaced.append(path)

    def run(self) -> None:
        yaml = self.yaml
        while self.loader.check_event():
            event = self.loader.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    self.stop("a policy is one YAML document (this file holds more)", event.start_mark)
                    return
            elif isinstance(event, yaml.ScalarEvent):
                self.scalar(event)
            elif isinstance(event, yaml.AliasEvent):
                self.alias(event)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(self.stack) >= MAX_DEPTH:
                    self.stop(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
                    return
                self.open(event, {} if isinstance(event, yaml.MappingStartEvent) else [])
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                done = self.stack.pop()
                if done.anchor is not None:
                    self.anchors[done.anchor] = done.value
                self.add(done.value, None, closing=done)

    # -- what each event adds ------------------------------------------------------------------------------

    def scalar(self, event: Any) -> None:
        yaml, tag = self.yaml, event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        path = self.child_path()
        value: Any = event.value
        if tag == _MERGE and self.expecting_key():
            value = _IGNORED
            self.problem(self.stack[-1].path, "merge keys (<<) are not allowed in a policy", event.start_mark,
                         hint="write each key out")
        elif tag not in _SCALAR_TAGS:
            self.problem(path, f"the YAML tag {_tag(tag)} is not allowed in a policy", event.start_mark)
            self.replaced(path)
        else:
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            try:
                value = self.loader.construct_object(node, deep=True)
            except (ValueError, OverflowError, yaml.YAMLError):  # 2027-13-45 looks like a date and is none
                what = "is not a date that exists" if tag == _YAML + "timestamp" else "cannot be read as a number"
                self.problem(path, f"{_shown(event.value)} {what}", event.start_mark)
                self.replaced(path)
        if event.anchor is not None:
            self.anchors[event.anchor] = value
        self.add(value, event.start_mark)

    def alias(self, event: Any) -> None:
        if event.anchor not in self.anchors:
            self.problem(self.child_path(), f"the alias *{event.anchor} names no complete value before it",
                         event.start_mark)
            self.add(None, event.start_mark)
        else:
            self.add(self.anchors[event.anchor], event.start_mark)

    def open(self, event: Any, value: dict[Any, Any] | list[Any]) -> None:
        tags = _MAPPING_TAGS if isinstance(value, dict) else _SEQUENCE_TAGS
        path = self.child_path()
        if event.tag not in tags:
            self.problem(path, f"the YAML tag {_tag(event.tag)} is not allowed in a policy", event.start_mark)
            self.replaced(path)
        if self.expecting_key():
            self.problem(self.stack[-1].path, "a key must be a plain name, not a list or mapping", event.start_mark)
            path = None
        elif path is not None:
            self.document.values[path] = _position(event.start_mark)
        self.stack.append(_Open(value, path, event.anchor))

    # -- placing a value ----------------------------------------------------------------------------------

    def expecting_key(self) -> bool:
        top = self.stack[-1] if self.stack else None
        return top is not None and isinstance(top.value, dict) and not top.has_key

    def child_path(self) -> KeyPath | None:
        """The key path the next value gets (None when it is a key, or inside a value not kept)."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.path is None or self.expecting_key():
            return None
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        return None if top.key is _IGNORED else (*top.path, top.key)

    def add(self, value: Any, mark: Any, closing: _Open | None = None) -> None:
        if not self.stack:
            self.document.value = value
            self.document.values.setdefault((), _position(mark) if mark is not None else (1, 1))
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            if top.path is not None and closing is None:
                self.document.values[(*top.path, len(top.value))] = _position(mark)
            top.value.append(value)
        elif not top.has_key:
            self.take_key(top, value, mark, closing)
        else:
            path = None if top.path is None or top.key is _IGNORED else (*top.path, top.key)
            if path is not None:
                if closing is None:
                    self.document.values[path] = _position(mark)
                top.value[top.key] = value
            top.has_key, top.key = False, None

    def take_key(self, top: _Open, key: Any, mark: Any, closing: _Open | None) -> None:
        top.has_key = True
        if closing is not None or key is _IGNORED:
            top.key = _IGNORED
            return
        try:
            given_before = key in top.value
        except TypeError:  # an unhashable value made by an alias: reported like a list used as a key
            self.problem(top.path, "a key must be a plain name, not a list or mapping", mark)
            top.key = _IGNORED
            return
        path = (*top.path, key) if top.path is not None else None
        if given_before:
            first = self.document.keys.get(path) if path is not None else None
            where = f", here and on line {first[0]}" if first else ""
            self.problem(path, f"the key {key_path_text((key,))!r} is given twice{where}", mark,
                         hint="keep one: a plain YAML reader would use the last one silently")
            top.key = _IGNORED
            return
        top.key = key
        if path is not None:
            self.document.keys[path] = _position(mark)
