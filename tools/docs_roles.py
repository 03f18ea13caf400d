"""Sphinx roles and reST literal blocks in docstrings, turned into the documentation site's Markdown at build time.

nablanet's docstrings name other objects with Sphinx's Python roles (``:func:`grad```, ``:class:`~nablanet.train.Trainer```,
``:meth:`Trainer.fit <nablanet.train.Trainer.fit>```) and introduce verbatim text with reST's ``::``, which suit
``help()`` and Sphinx; the site (mkdocstrings, Markdown) would print the roles and the ``::`` raw. The docstrings keep
them: this module rewrites them in the text griffe loaded, before mkdocstrings renders it, and nothing in the package
imports it.

- ``convert_roles(text, resolve)`` is the roles' conversion, pure (no mkdocs, no griffe): each role becomes a link to the
  path ``resolve(kind, target)`` returns, or inline code when it returns None. Fenced code, doctest blocks, reST literal
  blocks (after a line ending in ``::``) and ``inline literals`` are left as they are.
- ``convert_literal_blocks(text)``, pure too, makes each reST literal block a fenced code block and drops its ``::`` as
  reST does (``text::`` is shown ``text:``, ``text ::`` is ``text``, a lone ``::`` nothing).
- ``resolve_target(target, scopes, lookup, by_suffix)`` finds a target's full path by Sphinx's rules for a role written
  inside a module or class: a name as written (absolute) first, then in the scopes, innermost first (the class for
  ``:meth:`` and ``:attr:``, the module, then each enclosing package up to the top one); a name with a leading dot the
  other way round, then, for one found nowhere else, the one object of the role's kind whose path ends with it (none
  when two do). A dotted name under another top-level module (``numpy.exp``) is never looked up in the package.
- ``SphinxRoles``, a griffe extension (mkdocs.yml: ``extensions`` of the python handler), runs them on every docstring
  of a package griffe has just loaded; it exists only when griffe is importable.

A resolved role is written as autorefs' *optional* cross-reference, ``<autoref identifier="path" optional>``: autorefs, which
alone knows at the end of the build which objects have an anchor on some page, makes it a link when one does and plain
code when none does, so a role naming an undocumented (private, docstring-less) object never breaks the strict build and
never becomes a broken link. A name that does not resolve at all (``pickle``, a typo) is inline code from the start.
"""

from __future__ import annotations

import ast
import functools
import html
import importlib.util
import logging
import re
from collections.abc import Callable, Iterable, Sequence

#: The Python-domain roles rewritten (also with Sphinx's explicit ``py:`` domain, ``:py:func:``).
ROLE_KINDS = ("func", "meth", "class", "data", "attr", "mod", "exc", "obj", "const", "type")

# One alternation, scanned left to right: an inline literal (``...``) is consumed whole, so a role written inside one
# stays text; otherwise a role. A role's body may run over a line break (an explicit title wrapped by the docstring).
_INLINE = re.compile(
    r"(?P<literal>``(?:(?!``).)+``)"
    r"|:(?:py:)?(?P<kind>" + "|".join(ROLE_KINDS) + r"):`(?P<body>[^`]+)`",
    re.DOTALL,
)
_TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})")

Resolve = Callable[[str], "str | None"]
#: The roles whose target may be a member of the class the docstring belongs to (``:meth:`fit``` in a method of
#: ``Trainer``); other roles look in modules only (``:func:`load``` in ``Trainer.load`` is the module's function).
MEMBER_KINDS = ("meth", "attr", "obj")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _blocks(text: str) -> Iterable[tuple[str, str]]:
    """Split ``text`` into runs of whole lines, ``(kind, lines)``, concatenating back to ``text``.

    ``"code"``: a fenced block (```` ``` ```` or ``~~~`` to its closing fence, as ``_fence_end`` reads them: an
    unclosed opener or a title's tilde underline is prose) or a doctest block (a line starting ``>>>`` to the next
    blank line: its continuation and output lines). ``"literal"``: a reST literal block, the indented lines after a
    line ending in ``::`` (blank lines first), up to the first line indented no deeper than that one; the prose run
    before it ends with that line. ``"prose"``: the rest.
    """
    lines = text.splitlines(keepends=True)
    i, n = 0, len(lines)
    run: list[str] = []
    while i < n:
        line = lines[i]
        stripped = line.strip()
        title = run[-1].strip() if run else ""  # the prose line right above, if any
        end = _fence_end(lines, i, title)
        if end or stripped.startswith(">>>"):
            if run:
                yield "prose", "".join(run)
                run = []
            j = end or i + 1
            if not end:
                while j < n and lines[j].strip():
                    j += 1
            yield "code", "".join(lines[i:j])
            i = j
            continue
        run.append(line)
        i += 1
        if stripped.endswith("::"):
            base = _indent(line)
            j = i
            while j < n and (not lines[j].strip() or _indent(lines[j]) > base):
                j += 1
            while j > i and not lines[j - 1].strip():  # trailing blank lines belong to the prose after
                j -= 1
            if j > i:
                yield "prose", "".join(run)
                run = []
                yield "literal", "".join(lines[i:j])
                i = j
    if run:
        yield "prose", "".join(run)


def _fence_end(lines: Sequence[str], i: int, title: str) -> int | None:
    """The index after the closing fence when ``lines[i]`` opens a fenced block, else None.

    A fence opens at three or more backticks or tildes and closes at a line that is only a run of the same character,
    at least as long (CommonMark). Not a fence: an opener no line closes, and a bare run of tildes right under a prose
    line (``title``) no longer than it, which is reST's underline of a section title (``Notes`` over ``~~~~~``).
    """
    fence = _FENCE.match(lines[i])
    if not fence:
        return None
    run = fence["fence"]
    if run[0] == "~" and title and lines[i].strip() == run and len(title) <= len(run):
        return None
    close = re.compile(rf"\s*{re.escape(run[0])}{{{len(run)},}}\s*")
    for j in range(i + 1, len(lines)):
        if close.fullmatch(lines[j]):
            return j + 1
    return None


def parse_role(body: str) -> tuple[str, str, bool]:
    """A role's body -> ``(target, shown text, may link)``, as Sphinx reads it.

    ``title <target>`` shows the title; ``~a.b.c`` shows ``c``; ``!target`` never links; otherwise the target is shown,
    without the leading dots of a relative name (``.sub``). Whitespace runs (a wrapped title) become one space.
    """
    body = " ".join(body.split())
    titled = _TITLED.match(body)
    if titled:
        title, target = titled["title"], titled["target"].strip()
    else:
        title, target = None, body
    link = not target.startswith("!")
    target = target.lstrip("!")
    if title is None:
        title = target.lstrip("~").lstrip(".")
        if target.startswith("~"):
            title = title.rsplit(".", 1)[-1]
    target = target.lstrip("~")
    return target, title, link


def render(title: str, path: str | None) -> str:
    """The Markdown for a role shown as ``title``: autorefs' optional cross-reference to ``path``, else inline code."""
    if path is None:
        return f"`{title}`"
    return f'<autoref identifier="{html.escape(path)}" optional><code>{html.escape(title, quote=False)}</code></autoref>'


def convert_roles(text: str, resolve: Callable[[str, str], str | None]) -> str:
    """Rewrite every Python-domain Sphinx role in ``text`` outside code; ``resolve(kind, target)`` gives the target's
    path or None (``kind``: ``"func"``, ``"class"``, ... as in ``ROLE_KINDS``)."""

    def one(match: re.Match) -> str:
        if match["literal"]:
            return match[0]
        target, title, link = parse_role(match["body"])
        return render(title, resolve(match["kind"], target) if link and target else None)

    return "".join(_INLINE.sub(one, chunk) if kind == "prose" else chunk for kind, chunk in _blocks(text))


def _literal_marker(prose: str) -> tuple[str, str]:
    """The prose before a literal block without its ``::`` as reST shows it, and the ``::`` line's indentation.

    ``text::`` is shown ``text:``; ``text ::`` is shown ``text``; a line that is only ``::`` is not shown at all.
    """
    head, _, last = prose.rstrip("\r\n").rpartition("\n")
    head = head + "\n" if head else ""
    ending = prose[len(prose.rstrip("\r\n")) :]
    content = last.rstrip()
    indent = last[: _indent(last)]
    if content.strip() == "::":
        return head, indent
    before = content[:-2]
    content = before.rstrip() if before[-1:].isspace() else before + ":"
    return head + content + ending, indent


def _fence_language(code: str) -> str:
    """The fenced block's language: a console session when it starts with ``>>>``, Python when it parses as Python,
    none (plain text) otherwise."""
    if code.lstrip().startswith(">>>"):
        return "pycon"
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return ""
    return "python"


def _fenced(block: str, indent: str) -> str:
    """A reST literal block's lines as a Markdown fenced block at ``indent``: the blank lines before it kept (one
    at least, so the fence opens a block), its lines dedented together (their relative indentation kept)."""
    lines = block.splitlines()
    lead = 0
    while lead < len(lines) and not lines[lead].strip():
        lead += 1
    body = lines[lead:]
    depth = min(_indent(line) for line in body if line.strip())
    code = [line[depth:].rstrip() for line in body]
    # a line of the block that starts with as many backticks as the fence would close it: the fence is longer
    longest = max((len(line.lstrip()) - len(line.lstrip().lstrip("`")) for line in code), default=0)
    fence = "`" * max(3, longest + 1)
    language = _fence_language("\n".join(code))
    out = ["\n" * max(lead, 1)]
    out.append(f"{indent}{fence}{language}\n")
    out.extend(f"{indent}{line}\n" if line else "\n" for line in code)
    out.append(f"{indent}{fence}")
    if block.endswith(("\n", "\r")):
        out.append("\n")
    return "".join(out)


def convert_literal_blocks(text: str) -> str:
    """Rewrite every reST literal block in ``text`` as a Markdown fenced code block.

    The paragraph that introduces a block ends in ``::``; reST shows ``text::`` as ``text:``, ``text ::`` as ``text``
    and a paragraph that is only ``::`` not at all, and the indented lines after it verbatim. Fenced code, doctest
    blocks and a ``::`` with no indented block after it are left as they are.
    """
    out: list[str] = []
    after_literal = False
    for kind, chunk in _blocks(text):
        if after_literal and chunk.splitlines()[0].strip():  # text right under the block (reST warns): set apart
            chunk = "\n" + chunk
        after_literal = kind == "literal"
        if after_literal:  # always right after the prose run that ends with its ``::`` line
            out[-1], indent = _literal_marker(out[-1])
            chunk = _fenced(chunk, indent)
        out.append(chunk)
    return "".join(out)


_BORDER = re.compile(r"^(?P<indent>[ \t]*)=+(?:[ \t]+=+)+[ \t]*$")


def _columns(border: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each column a simple table's border line marks (its runs of ``=``)."""
    return [m.span() for m in re.finditer(r"=+", border)]


def _cells(line: str, columns: Sequence[tuple[int, int]]) -> list[str]:
    """One line of a simple table cut into its columns' texts; the last column runs to the end of the line."""
    starts = [start for start, _ in columns]
    return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line)])]


def _table_cell(text: str) -> str:
    """A cell's text for a Markdown table: its pipes escaped, outside inline code (which a pipe does not split)."""
    parts = re.split(r"(``(?:(?!``).)+``|`[^`]+`)", text)
    return "".join(part if k % 2 else re.sub(r"(?<!\\)\|", r"\\|", part) for k, part in enumerate(parts)) or " "


def _simple_table(lines: Sequence[str], i: int) -> tuple[int, str] | None:
    """When ``lines[i]`` opens a reST simple table, ``(index after it, the table in Markdown)``, else None.

    The table is a border, rows, and a border that a blank line or the end follows; with a header, a border between
    the header's rows and the body's. A line whose first column is blank continues the row above (its texts joined
    with a space), as a blank line between rows is skipped. A table with no header gets an empty one (Markdown
    tables have one). Anything else under a border (a row at another indentation, text across the gap between two
    columns, no closing border, text right under it) is not a table, and is left as written.
    """
    top = _BORDER.match(lines[i])
    if not top:
        return None
    indent, columns = top["indent"], _columns(lines[i])
    sections: list[list[list[str]]] = [[]]
    j = i + 1
    while j < len(lines):
        line = lines[j].rstrip("\r\n")
        if _BORDER.match(line):
            if _columns(line) != columns:
                return None
            j += 1
            if j == len(lines) or not lines[j].strip():
                break
            if len(sections) == 2:  # text right under the closing border: reST wants a blank line there
                return None
            sections.append([])
            continue
        if not line.strip():
            j += 1
            continue
        if not line.startswith(indent) or _indent(line) < len(indent):
            return None
        if any(line[end:start].strip() for (_, end), (start, _) in zip(columns, columns[1:])):
            return None  # text across the gap before a column: not a table reST reads either
        cells = _cells(line, columns)
        if cells[0] or not sections[-1]:
            sections[-1].append(cells)
        else:
            sections[-1][-1] = [f"{a} {b}".strip() for a, b in zip(sections[-1][-1], cells)]
        j += 1
    else:
        return None
    header, body = (sections[0], sections[1]) if len(sections) == 2 else ([[""] * len(columns)], sections[0])
    if len(header) > 1:  # a header of several rows: one row of Markdown
        header = [[" ".join(filter(None, col)) for col in zip(*header)]]

    def row(cells: Sequence[str]) -> str:
        return f"{indent}| " + " | ".join(_table_cell(c) for c in cells) + " |\n"

    rule = f"{indent}|" + "|".join(" --- " for _ in columns) + "|\n"
    return j, row(header[0]) + rule + "".join(row(r) for r in body)


def convert_simple_tables(text: str) -> str:
    """Rewrite every reST simple table (rows between borders of ``=`` runs) in ``text`` outside code as a Markdown
    table; fenced code, doctest and literal blocks are left as they are."""
    out: list[str] = []
    for kind, chunk in _blocks(text):
        if kind != "prose" or "==" not in chunk:
            out.append(chunk)
            continue
        lines = chunk.splitlines(keepends=True)
        i = 0
        while i < len(lines):
            table = _simple_table(lines, i)
            if table is None:
                out.append(lines[i])
                i += 1
            else:
                i, markdown = table
                out.append(markdown)
    return "".join(out)


def resolve_target(
    target: str,
    scopes: Sequence[str],
    lookup: Resolve,
    by_suffix: Callable[[str, str], str | None] | None = None,
    *,
    kind: str = "obj",
    is_external: Callable[[str], bool] | None = None,
) -> str | None:
    """The full path of the object a role's ``target`` names, or None, by Sphinx's rules for the Python domain.

    ``scopes``: the dotted paths a name written in the docstring is looked up in, innermost first (the class, its
    module, each enclosing package). ``lookup(path)`` is the canonical path of the object at ``path`` (an imported name
    followed to its definition), or None. ``kind`` is the role's (``"func"``, ``"meth"``, ...).

    - A name without a leading dot is tried as written (an absolute path) first, then in each scope. A dotted name
      whose first part ``is_external`` (an importable top-level module other than the package: ``numpy.exp``,
      ``functools.partial``) is that module's and is never looked up in the scopes, so never names a subpackage of
      the same name (``nablanet.numpy``); nor is a ``:mod:`` name that ``is_external`` (``:mod:`numpy```).
    - A leading dot (Sphinx's ``.name``) reverses the order: the scopes first, then the name as written, then, last,
      ``by_suffix(name, kind)``: the one object of the role's kind whose path ends with ``.name``, or None.
    """
    relative = target.startswith(".")
    name = target.lstrip(".")
    if not name:
        return None
    in_scopes = (f"{scope}.{name}" for scope in scopes)
    if relative:
        for path in (*in_scopes, name):
            if found := lookup(path):
                return found
        return by_suffix(name, kind) if by_suffix else None
    if found := lookup(name):
        return found
    if ("." in name or kind == "mod") and is_external and is_external(name.split(".", 1)[0]):
        return None
    for path in in_scopes:
        if found := lookup(path):
            return found
    return None


_log = logging.getLogger(__name__)

try:
    import griffe
except ImportError:  # the conversion above needs neither griffe nor mkdocs; the extension below needs griffe
    griffe = None

if griffe is not None:
    _LOOKUP_ERRORS = (KeyError, ValueError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError)

    class SphinxRoles(griffe.Extension):
        """Griffe extension: once a package is loaded, rewrite the Sphinx roles (``convert_roles``), then the reST
        literal blocks (``convert_literal_blocks``) in its docstrings."""

        def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
            collection = loader.modules_collection
            objects = list(_walk(pkg))
            objects_by_path = {obj.path: obj for obj in objects}

            def lookup(path: str) -> str | None:
                for get in (collection.get_member, collection.__getitem__):  # declared members, then inherited ones
                    try:
                        obj = get(path)
                        return obj.final_target.path if obj.is_alias else obj.path
                    except _LOOKUP_ERRORS:
                        continue
                return None

            def by_suffix(name: str, kind: str) -> str | None:
                hits = [
                    path
                    for path, obj in objects_by_path.items()
                    if path.endswith(f".{name}")
                    and not any(part.startswith("_") for part in path.split("."))
                    and _is_kind(obj, kind)
                ]
                _log.debug("%s %r by its suffix: %s", kind, name, hits)
                return hits[0] if len(hits) == 1 else None

            def is_external(top: str) -> bool:
                return top != pkg.name and _importable(top)

            for obj in objects:
                if obj.docstring is None:
                    continue
                value = obj.docstring.value
                if ":`" in value:

                    def resolve(kind: str, target: str, obj=obj) -> str | None:
                        scopes = _scopes(obj, classes=kind in MEMBER_KINDS)
                        path = resolve_target(target, scopes, lookup, by_suffix, kind=kind, is_external=is_external)
                        _log.debug("%s: %s %r -> %s", obj.path, kind, target, path)
                        return path

                    value = convert_roles(value, resolve)
                if "::" in value:
                    value = convert_literal_blocks(value)
                if "==" in value:
                    value = convert_simple_tables(value)
                obj.docstring.value = value

    def _walk(obj: griffe.Object) -> Iterable[griffe.Object]:
        """``obj`` and every object defined under it (aliases skipped: their docstring is their target's)."""
        yield obj
        for member in list(obj.members.values()):
            if not member.is_alias:
                yield from _walk(member)

    def _scopes(obj: griffe.Object, classes: bool) -> list[str]:
        """Where a name in ``obj``'s docstring is looked up: the class ``obj`` is or belongs to (when ``classes``),
        then the module and each enclosing package out to the top one. An enclosing class is not a scope (Sphinx reads
        a role in the class documented, and a nested class's body does not see its outer class's names either)."""
        node = obj if (obj.is_class or obj.is_module) else obj.parent
        scopes = []
        if node is not None and node.is_class:
            if classes:
                scopes.append(node.path)
            while node is not None and not node.is_module:
                node = node.parent
        while node is not None:
            scopes.append(node.path)
            node = node.parent
        return scopes

    def _is_kind(obj: griffe.Object, kind: str) -> bool:
        """Whether ``obj`` is an object a ``kind`` role names, as Sphinx's object types are: a function of a module for
        ``func``, of a class for ``meth`` (a property for ``attr``), a module's attribute for ``data``, ..."""
        in_class = obj.parent is not None and obj.parent.is_class
        prop = obj.is_function and "property" in obj.labels
        return {
            "func": obj.is_function and not in_class,
            "meth": obj.is_function and in_class and not prop,
            "attr": (obj.is_attribute and in_class) or prop,
            "data": obj.is_attribute and not in_class,
            "const": obj.is_attribute,
            "class": obj.is_class,
            "exc": obj.is_class,
            "type": obj.is_class or obj.kind.value in ("attribute", "type alias"),
            "mod": obj.is_module,
        }.get(kind, True)

    @functools.cache
    def _importable(name: str) -> bool:
        """Whether ``name`` is a top-level module Python can import (a namespace package, any folder on the path,
        is not counted)."""
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return False
        return spec is not None and spec.origin not in (None, "namespace")
