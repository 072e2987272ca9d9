"""Loading YAML written by users, with bounds, for every command that reads it.

PyYAML's safe loader builds no Python objects from tags, but it still trusts its input's
size: eight levels of aliases ("billion laughs") expand to 10^8 nodes for every walker
after it, 10^5 nested ``[`` exhaust Python's recursion (and crash libyaml's composer), and a
duplicate key silently wins. Here the parser (libyaml's when available, else PyYAML's) feeds
PyYAML's own composer, extended to count as it composes — so the bounds hold whichever
parser runs, and the work to reject an input is bounded by the limits, not by its expansion:

- a file is UTF-8 (a BOM is allowed) and at most :data:`MAX_FILE_BYTES`; kubectl reads
  nothing else either;
- at most :data:`MAX_DOCUMENTS` documents per file;
- at most :data:`MAX_DEPTH` levels of nesting;
- at most :data:`MAX_NODES` nodes per document once aliases are expanded, and no alias to a
  node that contains it (JSON, and so the Kubernetes API, has no cycles);
- no duplicate key in a mapping: the API server's strict field validation (kubectl's
  default) refuses them rather than keep either value.

Merge keys (``<<``) are allowed, as in the API server's YAML decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from mirage_operator.errors import MirageError

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest file read, in bytes: above the API server's 3 MiB request limit."""
MAX_DOCUMENTS = 10_000
"""Most documents in one file."""
MAX_DEPTH = 100
"""Deepest nesting of sequences and mappings; a Mirage resource needs about 12."""
MAX_NODES = 200_000
"""Most nodes in one document with every alias expanded (the largest CRD has about 15 000)."""

SUFFIXES = (".yaml", ".yml")
"""Names of the files read from a directory."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLInputError(MirageError):
    """A file or YAML text that cannot be loaded: where, and why, in one line.

    ``document`` is the 0-based index of the document in its file, or None when the fault
    is the file's own (unreadable, not UTF-8, too large).
    """

    def __init__(self, source: str, reason: str, *, document: int | None = None) -> None:
        self.source, self.reason, self.document = source, reason, document
        where = source if document is None else f"{source}#{document}"
        super().__init__(f"{where}: {reason}")


class _LimitExceeded(yaml.YAMLError):
    """Raised inside the composer; carries the mark where the limit was crossed."""

    def __init__(self, reason: str, mark: yaml.Mark | None) -> None:
        self.reason, self.mark = reason, mark
        super().__init__(reason)


class _BoundedComposer(Composer):
    """PyYAML's composer, counting depth and expanded size as it goes."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        # Expanded size of each finished node of the current document, by id; a node being
        # composed has no entry yet, so an alias to it is an alias to an ancestor.
        self._sizes: dict[int, int] = {}

    def compose_document(self) -> Node | None:
        self._sizes = {}
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        mark = self.peek_event().start_mark  # type: ignore[attr-defined]
        if self._depth >= MAX_DEPTH:
            raise _LimitExceeded(f"nested deeper than {MAX_DEPTH} levels", mark)
        alias = self.check_event(yaml.AliasEvent)  # type: ignore[attr-defined]
        self._depth += 1
        try:
            node = cast(Node, super().compose_node(parent, index))
        finally:
            self._depth -= 1
        if alias:
            self._size_of(node, mark)
            return node
        if isinstance(node, ScalarNode):
            size = 1
        elif isinstance(node, SequenceNode):
            size = 1 + sum(self._size_of(child, mark) for child in node.value)
        elif isinstance(node, MappingNode):
            _refuse_duplicate_keys(node)
            size = 1 + sum(
                self._size_of(key, mark) + self._size_of(value, mark) for key, value in node.value
            )
        else:  # pragma: no cover - PyYAML composes only the three node kinds
            raise TypeError(node)
        if size > MAX_NODES:
            raise _LimitExceeded(
                f"more than {MAX_NODES} nodes once aliases are expanded", node.start_mark
            )
        self._sizes[id(node)] = size
        return node

    def _size_of(self, node: Node, mark: yaml.Mark) -> int:
        size = self._sizes.get(id(node))
        if size is None:
            raise _LimitExceeded("an alias refers to a node that contains it", mark)
        return size


def _refuse_duplicate_keys(node: MappingNode) -> None:
    seen: set[str] = set()
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
            continue
        if key.value in seen:
            raise _LimitExceeded(f"duplicate key {key.value!r}", key.start_mark)
        seen.add(key.value)


class _JSONConstructor(SafeConstructor):
    """PyYAML's safe constructor, building only what JSON (and so the API server) has:
    timestamps stay strings, scalar mapping keys become their text (``1: a`` is ``"1"``, as
    kubectl's YAML-to-JSON conversion makes it), and ``!!binary``, ``!!set``, ``!!omap`` and
    ``!!pairs`` are refused."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, "expected a mapping", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a string", key_node.start_mark
                )
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def _refuse(self, node: Node) -> None:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag} has no JSON form", node.start_mark
        )


_JSONConstructor.add_constructor(
    "tag:yaml.org,2002:timestamp",
    SafeConstructor.construct_yaml_str,  # type: ignore[type-var]
)
for _tag in ("binary", "set", "omap", "pairs"):
    _JSONConstructor.add_constructor(
        f"tag:yaml.org,2002:{_tag}",
        _JSONConstructor._refuse,  # type: ignore[type-var]
    )


class _PureLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _BoundedComposer,
    _JSONConstructor,
    Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _JSONConstructor.__init__(self)
        Resolver.__init__(self)


_Loader: type[Any] = _PureLoader
if getattr(yaml, "__with_libyaml__", False):
    # libyaml parses; the composer above (listed first, so its get_node wins over CParser's
    # own) builds the nodes from libyaml's events, with its bounds.
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _CLoader(_BoundedComposer, CParser, _JSONConstructor, Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _JSONConstructor.__init__(self)
            Resolver.__init__(self)

    _Loader = _CLoader


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, _LimitExceeded):
        return exc.reason
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [exc.context, exc.problem]
        return " ".join(p for p in parts if p) or type(exc).__name__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_all(text: str, *, source: str) -> Iterator[Any]:
    """Every document of ``text`` as plain data (None for an empty document), in order.

    Raises :class:`YAMLInputError` naming ``source``, the document's index, the line and the
    reason, for invalid YAML or a bound crossed (the documents before it were yielded).
    """
    loader = None
    index = 0
    try:
        while True:
            try:
                loader = loader or _Loader(text)
                if not loader.check_node():
                    return
                if index >= MAX_DOCUMENTS:
                    raise _LimitExceeded(f"more than {MAX_DOCUMENTS} documents", None)
                document = loader.construct_document(loader.get_node())
            except yaml.YAMLError as exc:
                raise YAMLInputError(source, _reason(exc) + _where(exc), document=index) from None
            yield document
            index += 1
    finally:
        if loader is not None:
            loader.dispose()


def load_one(text: str, *, source: str) -> Any:
    """The single document of ``text`` (None when empty); more than one is an error."""
    documents = load_all(text, source=source)
    first = next(documents, None)
    if next(documents, None) is not None:
        raise YAMLInputError(source, "expected one YAML document, found more", document=1)
    return first


def decode(raw: bytes, *, source: str) -> str:
    """``raw`` as text: UTF-8, a leading BOM dropped; anything else is a YAMLInputError."""
    if len(raw) > MAX_FILE_BYTES:
        raise YAMLInputError(source, f"larger than {MAX_FILE_BYTES} bytes; not read")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YAMLInputError(source, "UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YAMLInputError(
            source, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None


def read_documents(path: Path) -> Iterator[Any]:
    """Every document of the YAML file at ``path``; see :func:`load_all` and :func:`decode`."""
    source = str(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise YAMLInputError(source, f"cannot read: {exc.strerror or exc}") from None
    yield from load_all(decode(raw, source=source), source=source)


@dataclass(frozen=True)
class Document:
    """One Kubernetes object read from a file, and where it came from."""

    source: str
    index: int
    body: dict[str, Any]
    item: int | None = None
    """Its index in the ``items`` of a list document (``kind: List``), else None."""

    @property
    def where(self) -> str:
        """``file#index``, or ``file#index items[i]``."""
        item = "" if self.item is None else f" items[{self.item}]"
        return f"{self.source}#{self.index}{item}"

    @property
    def label(self) -> str:
        """``file#index Kind/name`` for messages."""
        metadata = self.body.get("metadata")
        name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"
        return f"{self.where} {self.body['kind']}/{name}"


def yaml_files(path: Path) -> list[Path]:
    """``path`` itself, or when a directory its ``*.yaml``/``*.yml`` files, recursively, in
    name order. A missing path is a :class:`YAMLInputError`."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    if not path.exists():
        raise YAMLInputError(str(path), "no such file or directory")
    return [path]


def read_objects(
    paths: Iterable[Path], *, on_error: Callable[[YAMLInputError], None]
) -> Iterator[Document]:
    """Every Kubernetes object in the YAML files under ``paths``, in order; empty documents
    are passed over, and a list (``kind: List``, as ``kubectl get -o yaml`` prints) stands
    for its items, as kubectl reads it.

    Each fault goes to ``on_error`` and reading goes on: a missing path is left out, a file
    that cannot be read or parsed past a point is left there, a document that is not an
    object (a list, a scalar, a mapping without ``apiVersion`` and ``kind``) is left out.
    """
    for path in paths:
        try:
            files = yaml_files(path)
        except YAMLInputError as exc:
            on_error(exc)
            continue
        for file in files:
            try:
                for index, body in enumerate(read_documents(file)):
                    problem = _not_an_object(body)
                    if problem:
                        on_error(YAMLInputError(str(file), problem, document=index))
                    elif _is_list(body):
                        yield from _items(str(file), index, body["items"], on_error)
                    elif body is not None:
                        yield Document(str(file), index, body)
            except YAMLInputError as exc:
                on_error(exc)


def _is_list(body: Any) -> bool:
    # kubectl's rule (meta.IsListType): a kind ending in "List" with an items list.
    return (
        isinstance(body, dict)
        and str(body.get("kind", "")).endswith("List")
        and isinstance(body.get("items"), list)
    )


def _items(
    source: str, index: int, items: list[Any], on_error: Callable[[YAMLInputError], None]
) -> Iterator[Document]:
    for item, body in enumerate(items):
        problem = _not_an_object(body, what="item")
        if problem:
            on_error(YAMLInputError(source, f"items[{item}]: {problem}", document=index))
        else:
            yield Document(source, index, body, item=item)


def _not_an_object(body: Any, *, what: str = "document") -> str | None:
    if body is None and what == "document":  # an empty document: nothing to read
        return None
    if not isinstance(body, dict):
        kind = "a list" if isinstance(body, list) else f"the scalar {str(body)[:40]!r}"
        return f"not a Kubernetes object: the {what} is {kind}"
    missing = [key for key in ("apiVersion", "kind") if not isinstance(body.get(key), str)]
    if missing:
        return f"not a Kubernetes object: no {' and no '.join(missing)}"
    return None
