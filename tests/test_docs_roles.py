"""tools/docs_roles.py: the docstrings' Sphinx roles become the site's cross-references (or inline code) and their reST
literal blocks fenced code blocks, at build time.

The conversions and the resolution are pure functions, tested without the docs toolchain; the griffe extension that wires
them into mkdocstrings is tested on a small package when griffe is installed (the ``docs`` extra), skipped otherwise."""

import importlib.util
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "docs_roles.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("docs_roles_under_test", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dr = _load_tool()


def link(path, title):
    return f'<autoref identifier="{path}" optional><code>{title}</code></autoref>'


class Resolver:
    """``resolve(kind, target)`` from a table of targets; records what it was asked."""

    def __init__(self, table):
        self.table, self.asked = table, []

    def __call__(self, kind, target):
        self.asked.append((kind, target))
        return self.table.get(target)


# ----------------------------------------------------------------------------
# convert_roles
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*dr.ROLE_KINDS, "py:func", "py:class"])
def test_each_role_kind_becomes_a_link_to_the_resolved_path(kind):
    resolve = Resolver({"grad": "pkg.transforms.grad"})
    assert dr.convert_roles(f"See :{kind}:`grad` here.", resolve) == f"See {link('pkg.transforms.grad', 'grad')} here."
    assert resolve.asked == [(kind.removeprefix("py:"), "grad")]


def test_an_unresolved_target_is_inline_code():
    assert dr.convert_roles("Pickled by :mod:`pickle`; raises :exc:`ValueError`.", Resolver({})) == (
        "Pickled by `pickle`; raises `ValueError`."
    )


def test_a_tilde_shows_the_last_name_and_links_the_whole_path():
    resolve = Resolver({"pkg.train.Trainer": "pkg.train.loop.Trainer"})
    assert dr.convert_roles(":class:`~pkg.train.Trainer`", resolve) == link("pkg.train.loop.Trainer", "Trainer")
    assert resolve.asked == [("class", "pkg.train.Trainer")]
    assert dr.convert_roles(":class:`~pkg.train.Missing`", resolve) == "`Missing`"


def test_an_explicit_title_is_shown_even_when_wrapped_over_two_lines():
    resolve = Resolver({"pkg.train.Trainer.fit": "pkg.train.loop.Trainer.fit"})
    assert dr.convert_roles(":meth:`Trainer.fit <pkg.train.Trainer.fit>`", resolve) == link(
        "pkg.train.loop.Trainer.fit", "Trainer.fit"
    )
    assert dr.convert_roles("as :meth:`the trainer's\n    fit <pkg.train.Trainer.fit>` does", resolve) == (
        "as " + link("pkg.train.loop.Trainer.fit", "the trainer's fit") + " does"
    )
    assert dr.convert_roles(":func:`the loader <nowhere.load>`", resolve) == "`the loader`"


def test_a_bang_never_links_and_resolves_nothing():
    resolve = Resolver({"grad": "pkg.grad"})
    assert dr.convert_roles(":func:`!grad` and :func:`!~pkg.grad`", resolve) == "`grad` and `grad`"
    assert resolve.asked == []


def test_a_relative_name_is_shown_without_its_dot_and_resolved_with_it():
    resolve = Resolver({"._primitives": "pkg.numpy._primitives"})
    assert dr.convert_roles(":mod:`._primitives`", resolve) == link("pkg.numpy._primitives", "_primitives")
    assert resolve.asked == [("mod", "._primitives")]


def test_several_roles_on_one_line_each_convert():
    resolve = Resolver({"hvp": "pkg.hvp", "hessian": "pkg.hessian"})
    text = "products (:func:`hvp`), the Hessian (:func:`hessian`) and :class:`Nope`, :data:`hvp`."
    assert dr.convert_roles(text, resolve) == (
        f"products ({link('pkg.hvp', 'hvp')}), the Hessian ({link('pkg.hessian', 'hessian')}) and `Nope`, "
        f"{link('pkg.hvp', 'hvp')}."
    )
    assert [k for k, _ in resolve.asked] == ["func", "func", "class", "data"]


def test_html_in_a_title_or_a_path_is_escaped():
    assert dr.convert_roles(":func:`x & y <a<b>>`", Resolver({})) == "`x & y <a<b>>`"  # not a title form: code as written
    assert dr.convert_roles(":func:`x & y <a.b>`", Resolver({"a.b": 'pkg."b"'})) == (
        '<autoref identifier="pkg.&quot;b&quot;" optional><code>x &amp; y</code></autoref>'
    )


def test_roles_in_code_are_left_as_written():
    resolve = Resolver({"grad": "pkg.grad"})
    text = textwrap.dedent(
        """\
        Prose :func:`grad`; the literal ``:func:`grad``` stays.

        ```python
        doc = ":func:`grad`"
        ```

        >>> f = grad(g)  # :func:`grad`
        >>> print(":class:`Trainer`")
        :class:`Trainer`

        Written as::

            :func:`grad` in a literal block

        After it, :func:`grad` again.
        ~~~
        :func:`grad`
        ~~~
        """
    )
    out = dr.convert_roles(text, resolve)
    g = link("pkg.grad", "grad")
    assert out == text.replace("Prose :func:`grad`", f"Prose {g}").replace("After it, :func:`grad`", f"After it, {g}")
    assert resolve.asked == [("func", "grad"), ("func", "grad")]


def test_the_line_ending_in_a_double_colon_is_prose_and_its_block_ends_at_the_dedent():
    resolve = Resolver({"Objective": "pkg.Objective", "hvp": "pkg.hvp"})
    text = "given as an\n:class:`Objective`::\n\n    F(x) = f(x) + :func:`hvp`\n\nwhere :func:`hvp` is"
    assert dr.convert_roles(text, resolve) == (
        f"given as an\n{link('pkg.Objective', 'Objective')}::\n\n    F(x) = f(x) + :func:`hvp`\n\n"
        f"where {link('pkg.hvp', 'hvp')} is"
    )


def test_text_that_only_looks_like_a_role_is_left_alone():
    resolve = Resolver({"x": "pkg.x"})
    text = "The :math:`x^2` role, a :ref:`label`, a ratio 3:`x` and :funcs:`x` are not Python roles."
    assert dr.convert_roles(text, resolve) == text
    assert resolve.asked == []


def test_a_tilde_underline_is_a_section_title_not_a_fence():
    # reST underlines a title with a run of tildes at least as long: not a Markdown fence, the rest is prose
    resolve = Resolver({"grad": "pkg.grad"})
    g = link("pkg.grad", "grad")
    text = "Notes\n~~~~~\nSee :func:`grad`.\n\nParameters\n----------\nf : :func:`grad`\n"
    assert dr.convert_roles(text, resolve) == text.replace(":func:`grad`", g)
    indented = "Intro.\n\n    Notes\n    ~~~~~~~~\n    See :func:`grad`.\n"
    assert dr.convert_roles(indented, resolve) == indented.replace(":func:`grad`", g)


def test_a_fence_opener_without_a_closing_fence_is_prose():
    resolve = Resolver({"grad": "pkg.grad"})
    g = link("pkg.grad", "grad")
    for opener in ("```", "~~~", "```python"):
        text = f"Before.\n\n{opener}\nSee :func:`grad`.\n"
        assert dr.convert_roles(text, resolve) == text.replace(":func:`grad`", g)


def test_tildes_under_a_longer_line_or_a_blank_one_open_a_fence_when_closed():
    resolve = Resolver({"grad": "pkg.grad"})
    for text in ("A long title\n~~~\ncode :func:`grad`\n~~~\n", "Code:\n\n~~~~~~\n:func:`grad`\n~~~~~~\n"):
        assert dr.convert_roles(text, resolve) == text
    assert resolve.asked == []


def test_a_fence_is_closed_only_by_a_bare_run_of_its_character_at_least_as_long():
    # CommonMark: a closing fence has no info string; a shorter run, or the other character, is content
    resolve = Resolver({"grad": "pkg.grad"})
    for text in (
        "```\n```python\n:func:`grad`\n```\n",
        "````\n```\n:func:`grad`\n````\n",
        "```\n~~~\n:func:`grad`\n`````\n",
    ):
        assert dr.convert_roles(text, resolve) == text
    assert resolve.asked == []


# ----------------------------------------------------------------------------
# convert_literal_blocks
# ----------------------------------------------------------------------------


def test_a_paragraph_ending_in_a_double_colon_shows_one_colon_and_its_block_is_fenced():
    text = "The training loop.\n\nOne step::\n\n    batch -> forward\n          -> update\n\nThe model's parameters"
    assert dr.convert_literal_blocks(text) == (
        "The training loop.\n\nOne step:\n\n```\nbatch -> forward\n      -> update\n```\n\nThe model's parameters"
    )


def test_only_the_last_line_of_a_wrapped_paragraph_loses_a_colon():
    text = "as optax does, on a line\nthat wraps::\n\n    opt.step(p, g, s)\n"
    assert dr.convert_literal_blocks(text) == "as optax does, on a line\nthat wraps:\n\n```python\nopt.step(p, g, s)\n```\n"


def test_a_double_colon_after_a_space_is_dropped_with_the_space():
    assert dr.convert_literal_blocks("Like this ::\n\n    a -> b") == "Like this\n\n```\na -> b\n```"


def test_a_paragraph_that_is_only_a_double_colon_is_not_shown():
    text = "Some prose.\n\n::\n\n    a -> b\n\nAfter."
    assert dr.convert_literal_blocks(text) == "Some prose.\n\n\n```\na -> b\n```\n\nAfter."
    assert dr.convert_literal_blocks("::\n\n    a -> b") == "\n```\na -> b\n```"


def test_the_fence_is_languaged_python_or_pycon_when_the_block_is_and_plain_otherwise():
    python = dr.convert_literal_blocks("Call::\n\n    import nablanet as nb\n    nb.grad(f)(1.5)   # reverse\n")
    assert python == "Call:\n\n```python\nimport nablanet as nb\nnb.grad(f)(1.5)   # reverse\n```\n"
    session = dr.convert_literal_blocks("Run::\n\n    >>> f(nan)\n    Traceback (most recent call last):\n")
    assert session == "Run:\n\n```pycon\n>>> f(nan)\nTraceback (most recent call last):\n```\n"
    formula = dr.convert_literal_blocks("Given as::\n\n    F(x) = f(x) + sum_i l1_i |x_i|\n")
    assert formula == "Given as:\n\n```\nF(x) = f(x) + sum_i l1_i |x_i|\n```\n"


def test_an_indented_block_keeps_its_place_and_its_inner_indentation():
    # in a numpy section (a parameter's description) the fence sits at the description's indentation
    text = "x : int\n    The update::\n\n        if ok:\n\n            step()\n\n    More of x.\ny : int"
    assert dr.convert_literal_blocks(text) == (
        "x : int\n    The update:\n\n    ```python\n    if ok:\n\n        step()\n    ```\n\n    More of x.\ny : int"
    )


def test_the_block_ends_at_the_first_line_no_deeper_than_the_paragraph():
    text = "Both::\n\n    a -> b\nright under it (reST warns)\n\n    indented prose"
    assert dr.convert_literal_blocks(text) == (
        "Both:\n\n```\na -> b\n```\n\nright under it (reST warns)\n\n    indented prose"
    )


def test_a_block_holding_a_fence_gets_a_longer_one():
    text = "Markdown::\n\n    ```python\n    x = 1\n    ```\n"
    assert dr.convert_literal_blocks(text) == "Markdown:\n\n````\n```python\nx = 1\n```\n````\n"


def test_doctests_fenced_code_and_a_double_colon_with_no_block_are_left_as_written():
    text = textwrap.dedent(
        """\
        >>> d = {"a": 1}  # as::
        ...     # not a literal block
        {'a': 1}

        ```text
        Inside a fence::

            stays
        ```

        No block follows this::
        the paragraph goes on.

        ~~~
        Tildes::

            too
        ~~~
        """
    )
    assert dr.convert_literal_blocks(text) == text


def test_a_literal_block_under_a_tilde_underlined_title_is_fenced():
    text = "Notes\n~~~~~\nOne step::\n\n    a -> b\n"
    assert dr.convert_literal_blocks(text) == "Notes\n~~~~~\nOne step:\n\n```\na -> b\n```\n"


def test_roles_then_literal_blocks_leave_the_roles_inside_a_block_as_written():
    resolve = Resolver({"Objective": "pkg.Objective", "hvp": "pkg.hvp"})
    text = "given as an\n:class:`Objective`::\n\n    F(x) = f(x) + :func:`hvp`\n\nwhere :func:`hvp` is"
    assert dr.convert_literal_blocks(dr.convert_roles(text, resolve)) == (
        f"given as an\n{link('pkg.Objective', 'Objective')}:\n\n```\nF(x) = f(x) + :func:`hvp`\n```\n\n"
        f"where {link('pkg.hvp', 'hvp')} is"
    )


# ----------------------------------------------------------------------------
# resolve_target
# ----------------------------------------------------------------------------

OBJECTS = {
    # path -> canonical path (an imported name maps to its definition)
    "pkg.core.Thing": "pkg.core.Thing",
    "pkg.core.Thing.fit": "pkg.core.Thing.fit",
    "pkg.core.Thing.load": "pkg.core.Thing.load",
    "pkg.core.load": "pkg.core.load",
    "pkg.grad": "pkg.transforms.grad",
    "pkg.transforms.grad": "pkg.transforms.grad",
    "pkg.util.helper": "pkg.util.helper",
    "pkg.numpy._primitives": "pkg.numpy._primitives",
}


def test_a_name_is_looked_up_in_the_innermost_scope_first():
    scopes = ["pkg.core.Thing", "pkg.core", "pkg"]
    assert dr.resolve_target("load", scopes, OBJECTS.get) == "pkg.core.Thing.load"
    assert dr.resolve_target("load", scopes[1:], OBJECTS.get) == "pkg.core.load"
    assert dr.resolve_target("Thing.fit", scopes, OBJECTS.get) == "pkg.core.Thing.fit"


def test_the_top_package_is_a_scope_and_an_imported_name_resolves_to_its_definition():
    assert dr.resolve_target("grad", ["pkg.core", "pkg"], OBJECTS.get) == "pkg.transforms.grad"
    assert dr.resolve_target("grad", ["pkg.core"], OBJECTS.get) is None


def test_an_absolute_name_resolves_from_any_scope():
    assert dr.resolve_target("pkg.core.Thing", ["pkg.util", "pkg"], OBJECTS.get) == "pkg.core.Thing"


def test_a_leading_dot_looks_in_the_scopes_first_and_the_absolute_name_last():
    # Sphinx: "If you prefix the name with a dot, this order is reversed" (the scopes, then the name as written)
    assert dr.resolve_target("._primitives", ["pkg.numpy.arrays", "pkg.numpy", "pkg"], OBJECTS.get) == (
        "pkg.numpy._primitives"
    )
    assert dr.resolve_target(".load", ["pkg.core.Thing", "pkg.core", "pkg"], OBJECTS.get) == "pkg.core.Thing.load"
    assert dr.resolve_target(".pkg.core.Thing", ["pkg.util"], OBJECTS.get) == "pkg.core.Thing"
    assert dr.resolve_target(".", ["pkg"], OBJECTS.get) is None


def test_a_dotted_name_is_an_absolute_path_first():
    objects = {"other.tool": "other.tool", "pkg.other.tool": "pkg.other.tool"}
    assert dr.resolve_target("other.tool", ["pkg.core", "pkg"], objects.get) == "other.tool"
    # with a leading dot, the package's own comes first
    assert dr.resolve_target(".other.tool", ["pkg.core", "pkg"], objects.get) == "pkg.other.tool"
    # a dotted name found nowhere absolutely is still read in the scopes
    assert dr.resolve_target("core.Thing", ["pkg.util", "pkg"], OBJECTS.get) == "pkg.core.Thing"


def test_a_name_under_another_top_level_module_never_resolves_inside_the_package():
    # pkg has subpackages named like numpy and functools: numpy.exp written anywhere is NumPy's, not pkg.numpy.exp
    objects = {
        **OBJECTS,
        "pkg.numpy": "pkg.numpy",
        "pkg.numpy.exp": "pkg.numpy.exp",
        "pkg.numpy.ndarray": "pkg.numpy.ndarray",
        "pkg.functools.partial": "pkg.functools.partial",
    }
    external = {"numpy", "functools"}.__contains__
    scopes = ["pkg.core", "pkg"]
    for kind, target in [("func", "numpy.exp"), ("class", "numpy.ndarray"), ("func", "functools.partial"), ("mod", "numpy")]:
        assert dr.resolve_target(target, scopes, objects.get, kind=kind, is_external=external) is None, target
    # the package's own: written relative, or from inside it, or by its full name
    assert dr.resolve_target(".numpy.exp", scopes, objects.get, kind="func", is_external=external) == "pkg.numpy.exp"
    assert dr.resolve_target("exp", ["pkg.numpy", "pkg"], objects.get, kind="func", is_external=external) == (
        "pkg.numpy.exp"
    )
    assert dr.resolve_target("pkg.numpy.exp", scopes, objects.get, kind="func", is_external=external) == (
        "pkg.numpy.exp"
    )
    # an undotted function, class, ... named like a module is the package's own (only :mod: names a module)
    assert dr.resolve_target("load", scopes, objects.get, kind="func", is_external={"load"}.__contains__) == (
        "pkg.core.load"
    )


def test_the_suffix_search_is_the_last_resort_of_a_leading_dot_and_is_given_the_role_kind():
    asked = []

    def by_suffix(name, kind):
        asked.append((name, kind))
        return {"helper": "pkg.util.helper"}.get(name)

    scopes = ["pkg.core", "pkg"]
    assert dr.resolve_target(".helper", scopes, OBJECTS.get, by_suffix, kind="func") == "pkg.util.helper"
    assert dr.resolve_target(".load", scopes, OBJECTS.get, by_suffix, kind="func") == "pkg.core.load"
    assert dr.resolve_target(".nowhere", scopes, OBJECTS.get, by_suffix, kind="meth") is None
    # Sphinx searches by suffix only for a name written with a leading dot
    assert dr.resolve_target("helper", scopes, OBJECTS.get, by_suffix, kind="func") is None
    assert dr.resolve_target("util.helper", ["pkg.core"], OBJECTS.get, by_suffix, kind="func") is None
    assert asked == [("helper", "func"), ("nowhere", "meth")]


# ----------------------------------------------------------------------------
# convert_simple_tables
# ----------------------------------------------------------------------------


def test_a_simple_table_with_a_header_becomes_a_markdown_table():
    border = "=====  ==========\n"
    text = f"Before:\n\n{border}name   update\n{border}SGD    x <- x - eta g\nAdam   m, v; x\n{border}\nAfter."
    assert dr.convert_simple_tables(text) == (
        "Before:\n\n| name | update |\n| --- | --- |\n| SGD | x <- x - eta g |\n| Adam | m, v; x |\n\nAfter."
    )


def test_a_row_whose_first_column_is_blank_continues_the_row_above():
    text = "===  ===========\nabc  first line\n     second line\nde   other\n===  ===========\n"
    assert dr.convert_simple_tables(text) == "|   |   |\n| --- | --- |\n| abc | first line second line |\n| de | other |\n"


def test_the_last_column_runs_to_the_end_of_the_line_and_pipes_outside_code_are_escaped():
    text = "==  ===  ==\na   |x|  longer than its border, ``a|b``\n==  ===  ==\n"
    assert dr.convert_simple_tables(text).splitlines()[2] == "| a | \\|x\\| | longer than its border, ``a|b`` |"
    escaped = "==  ====\na   x \\| y\n==  ====\n"  # a pipe escaped already stays one escaped pipe
    assert dr.convert_simple_tables(escaped).splitlines()[2] == "| a | x \\| y |"


def test_an_indented_table_keeps_its_indentation():
    text = "x : int\n    Values:\n\n    ===  ===\n    a    1\n    ===  ===\n"
    assert dr.convert_simple_tables(text) == "x : int\n    Values:\n\n    |   |   |\n    | --- | --- |\n    | a | 1 |\n"


@pytest.mark.parametrize("text", [
    "==  ==\nabc d\n==  ==\n",  # text across the gap between the columns
    "==  ==\na   b\n",  # no closing border
    "==  ==\na   b\n===  ==\n",  # borders that disagree
    "    ==  ==\na   b\n    ==  ==\n",  # a row outside the table's indentation
    "Title\n=====\n",  # a section underline is one run
    "==  ==\na   b\n==  ==\nnext paragraph\n",  # text right under the closing border
    "==  ==\na   b\n==  ==\nc   d\n==  ==\nmore\n",  # ... of a table with a header too (two tables run together)
    "```\n==  ==\na   b\n==  ==\n```\n",  # in code
])
def test_what_is_not_a_simple_table_is_left_as_written(text):
    assert dr.convert_simple_tables(text) == text


def test_every_table_in_the_packages_docstrings_converts():
    """A table written in a docstring that the conversion does not read (text across a column's gap) would show on the
    site as its raw borders: each docstring with a border line is converted with none left."""
    import importlib
    import inspect
    import pkgutil

    import nablanet

    found = 0
    for info in pkgutil.walk_packages(nablanet.__path__, "nablanet."):
        module = importlib.import_module(info.name)
        objects = [module, *(v for _, v in inspect.getmembers(module) if getattr(v, "__module__", None) == info.name)]
        for obj in objects:
            text = inspect.getdoc(obj) or ""
            if any(dr._BORDER.match(line) for line in text.splitlines()):
                found += 1
                converted = dr.convert_simple_tables(text)
                assert not any(dr._BORDER.match(line) for line in converted.splitlines()), (info.name, obj)
                assert "| --- |" in converted
    assert found >= 3


def test_the_conversion_needs_neither_griffe_nor_mkdocs():
    code = textwrap.dedent(
        f"""\
        import importlib.util, sys
        sys.modules["griffe"] = None  # import griffe fails
        sys.modules["mkdocs"] = None
        spec = importlib.util.spec_from_file_location("dr", {str(TOOL)!r})
        dr = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dr)
        assert not hasattr(dr, "SphinxRoles")
        print(dr.convert_roles(":func:`f`", lambda kind, target: None))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "`f`\n"


# ----------------------------------------------------------------------------
# The griffe extension, on a small package (skipped without the docs extra)
# ----------------------------------------------------------------------------

PACKAGE = {
    "__init__.py": '''
        """The package: :func:`grad`, :mod:`.sub`."""
        from .core import grad
        ''',
    "core.py": '''
        """Core: :class:`Thing`, :func:`~pkg.core.grad`, :mod:`pickle`, :func:`nowhere`, :func:`.helper`, :func:`.twice`.

        >>> grad(f)  # :func:`grad`
        """
        import pickle


        def grad(f):
            """Gradient of ``f``: see :func:`load` and :meth:`Thing.fit`."""


        def load():
            """The module's load, of a :class:`Thing`::

                load()  # :func:`grad`

            Once.
            """


        class Thing:
            """A thing: :meth:`fit`, :meth:`load` (its own) and :func:`load` (the module's)."""

            def fit(self):
                """Fit, then :meth:`~Thing.load`."""

            def load(self):
                """The method."""

            def save(self):
                """The only save."""


        def store():
            """Not the method: :func:`save`, :func:`.save`; the method: :meth:`.save`."""


        def uses_numpy():
            """NumPy's :func:`numpy.exp`, :class:`numpy.ndarray`, :mod:`numpy`, :func:`functools.partial`;
            ours: :func:`.numpy.exp`."""


        class Outer:
            """Holds Inner."""

            def close(self):
                """Outer's."""

            class Inner:
                """Nested."""

                def run(self):
                    """Not the outer class's :meth:`close`; by its suffix, :meth:`.close`."""
        ''',
    "numpy/__init__.py": '''
        """The package's numpy: :func:`exp`, :class:`ndarray`, :func:`numpy.exp`."""


        def exp(x):
            """Ours."""


        class ndarray:
            """Ours."""
        ''',
    "util.py": '''
        """Helpers, used as::

            helper()

        (the docstring's last line sets its indentation).
        """


        def helper():
            """Only here."""


        def twice():
            """Here and in sub.deep."""
        ''',
    "sub/__init__.py": '''
        """Sub: :mod:`.deep`, :func:`deep.twice`."""
        ''',
    "sub/deep.py": '''
        """Deep: :class:`Thing`, :func:`grad`, :class:`pkg.Thing`."""
        from ..core import Thing


        def twice():
            """Here and in util."""
        ''',
}


@pytest.fixture
def loaded(tmp_path):
    griffe = pytest.importorskip("griffe")
    for name, source in PACKAGE.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    # loaded by its file path, as mkdocs.yml names it
    extensions = griffe.load_extensions(str(TOOL))
    return griffe.load("pkg", search_paths=[tmp_path], extensions=extensions, docstring_parser="numpy")


def doc(pkg, path):
    return (pkg[path] if path else pkg).docstring.value


def test_the_extension_rewrites_a_loaded_packages_docstrings(loaded):
    assert doc(loaded, "") == f"The package: {link('pkg.core.grad', 'grad')}, {link('pkg.sub', 'sub')}."
    assert doc(loaded, "core").splitlines() == [
        f"Core: {link('pkg.core.Thing', 'Thing')}, {link('pkg.core.grad', 'grad')}, `pickle`, `nowhere`, "
        f"{link('pkg.util.helper', 'helper')}, `twice`.",  # .twice: two objects end with it
        "",
        ">>> grad(f)  # :func:`grad`",
    ]
    assert doc(loaded, "core.grad") == (
        f"Gradient of ``f``: see {link('pkg.core.load', 'load')} and {link('pkg.core.Thing.fit', 'Thing.fit')}."
    )


def test_the_extension_fences_literal_blocks_with_or_without_roles(loaded):
    assert doc(loaded, "util") == (
        "Helpers, used as:\n\n```python\nhelper()\n```\n\n(the docstring's last line sets its indentation)."
    )
    assert doc(loaded, "core.load") == (
        f"The module's load, of a {link('pkg.core.Thing', 'Thing')}:\n\n```python\nload()  # :func:`grad`\n```\n\nOnce."
    )


def test_the_extension_reads_a_method_role_in_the_class_and_a_function_role_in_the_module(loaded):
    assert doc(loaded, "core.Thing") == (
        f"A thing: {link('pkg.core.Thing.fit', 'fit')}, {link('pkg.core.Thing.load', 'load')} (its own) and "
        f"{link('pkg.core.load', 'load')} (the module's)."
    )
    assert doc(loaded, "core.Thing.fit") == f"Fit, then {link('pkg.core.Thing.load', 'load')}."


def test_the_extension_follows_imports_and_resolves_relative_names_in_subpackages(loaded):
    assert doc(loaded, "sub") == f"Sub: {link('pkg.sub.deep', 'deep')}, {link('pkg.sub.deep.twice', 'deep.twice')}."
    # an imported class is its definition; a name only the top package imports is found there; an alias's target is
    # not something the package has
    assert doc(loaded, "sub.deep") == f"Deep: {link('pkg.core.Thing', 'Thing')}, {link('pkg.core.grad', 'grad')}, `pkg.Thing`."


def test_the_extension_searches_by_suffix_only_a_leading_dot_and_for_the_roles_kind(loaded):
    assert doc(loaded, "core.store") == f"Not the method: `save`, `save`; the method: {link('pkg.core.Thing.save', 'save')}."


def test_the_extension_does_not_read_a_role_in_an_enclosing_class(loaded):
    # Sphinx reads a role in the class being documented and its module, never an enclosing class
    assert doc(loaded, "core.Outer.Inner.run") == (
        f"Not the outer class's `close`; by its suffix, {link('pkg.core.Outer.close', 'close')}."
    )


def test_the_extension_reads_a_name_under_another_top_level_module_as_that_modules(loaded):
    assert doc(loaded, "core.uses_numpy") == (
        "NumPy's `numpy.exp`, `numpy.ndarray`, `numpy`, `functools.partial`;\nours: "
        f"{link('pkg.numpy.exp', 'numpy.exp')}."
    )
    assert doc(loaded, "numpy") == (
        f"The package's numpy: {link('pkg.numpy.exp', 'exp')}, {link('pkg.numpy.ndarray', 'ndarray')}, `numpy.exp`."
    )


def test_mkdocs_yml_loads_the_extension_into_the_python_handler():
    text = (ROOT / "mkdocs.yml").read_text()
    python = text[text.index("    python:\n") :]
    extensions = python[python.index("extensions:") :].splitlines()[1]
    assert extensions.strip() == "- !relative $config_dir/tools/docs_roles.py"
    assert (ROOT / "tools" / "docs_roles.py").is_file()
