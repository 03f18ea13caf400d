"""The floors of DESIGN.md: no import cycles, and no peer framework imported by the library."""

import ast
import os
import subprocess
import sys

import nablanet

ROOT = os.path.dirname(nablanet.__file__)


def _modules():
    mods = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = "nablanet." + os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                mods[name.removesuffix(".__init__")] = path
    return mods


def _import_graph(mods):
    """module -> modules it imports anywhere in its text (importing a.b.c runs a and a.b too)."""
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        package = m if path.endswith("__init__.py") else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                parts = t.split(".")
                for k in range(1, len(parts) + 1):
                    u = ".".join(parts[:k])
                    if u in mods and u != m and not m.startswith(u + "."):
                        graph[m].add(u)
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_above_the_engine():
    cycles = _cycles(_import_graph(_modules()))
    # the engine/numpy registration hook is the engine side of issue 10 (the jit helper's part)
    engine = ("nablanet.autodiff", "nablanet.numpy")
    above = [c for c in cycles if not all(m.startswith(engine) for m in c)]
    assert above == [], f"import cycles: {above}"
    assert "nablanet.train.loop" not in _import_graph(_modules())["nablanet.train.checkpoint"]


_NO_TORCH = (
    "import sys, importlib.abc\n"
    "class NoTorch(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError(f'No module named {name!r} (blocked by the test)')\n"
    "sys.meta_path.insert(0, NoTorch())\n"
)


def _run(code):
    out = subprocess.run([sys.executable, "-c", _NO_TORCH + code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.path.dirname(ROOT)})
    assert out.returncode == 0, out.stderr
    return out


def test_the_library_imports_torch_nowhere():
    out = _run(
        "import pkgutil, importlib, nablanet\n"
        "names = [m.name for m in pkgutil.walk_packages(nablanet.__path__, 'nablanet.')]\n"
        "for n in names:\n"
        "    if n != 'nablanet.baselines.pytorch':\n"
        "        importlib.import_module(n)\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules)\n"
        "print(len(names))\n"
    )
    assert int(out.stdout) > 20


def test_compare_without_torch_says_so_in_one_line():
    out = _run(
        "import warnings\n"
        "from nablanet import experiments\n"
        "warnings.simplefilter('ignore')\n"
        "warnings.filterwarnings('always', message='PyTorch')\n"
        "res = experiments.compare({'data': 'franke', 'n': 120, 'hidden': [4], 'epochs': 2}, include=('torch',))\n"
        "print([r['model'] for r in res['results']])\n"
    )
    lines = [ln for ln in out.stderr.splitlines() if "PyTorch" in ln]
    assert len(lines) == 1 and "torch is not installed" in lines[0] and "pip install" in lines[0], out.stderr
    assert "PyTorch" not in out.stdout and "nablanet MLP" in out.stdout


def test_the_autograd_compatibility_modules_stay_below_the_networks():
    # nablanet.misc (optimizers over nablanet.optim, fixed points), extend, builtins and differential_operators are
    # engine-level: importing them must not pull in the networks, training, data or experiments
    out = _run(
        "import nablanet.misc, nablanet.misc.optimizers, nablanet.misc.fixed_points, nablanet.extend\n"
        "import nablanet.builtins, nablanet.differential_operators\n"
        "import nablanet.core, nablanet.tracer, nablanet.wrap_util, nablanet.util\n"
        "high = ('nablanet.nn', 'nablanet.train', 'nablanet.data', 'nablanet.experiments', 'nablanet.cli')\n"
        "print(sorted(m for m in sys.modules if m.startswith(high)))\n"
    )
    assert out.stdout.strip() == "[]"
    graph = _import_graph(_modules())
    for m in ("nablanet.misc", "nablanet.misc.optimizers", "nablanet.misc.fixed_points", "nablanet.extend"):
        assert not any(d.startswith(("nablanet.nn", "nablanet.train")) for d in graph[m]), (m, graph[m])
    # autograd's layout (nablanet.core, .tracer, .wrap_util, .util) sits at the top: no library module imports it
    # but the package's lazy attributes (nablanet.core, nablanet.primitive as in autograd's top level)
    layout = {"nablanet.core", "nablanet.tracer", "nablanet.wrap_util", "nablanet.util"}
    assert layout <= set(graph)
    importers = {m: sorted(graph[m] & layout) for m in graph if m != "nablanet" and graph[m] & layout}
    assert importers == {}, importers
