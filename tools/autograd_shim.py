"""A stand-in ``autograd`` package served by nablanet, for running HIPS autograd's own test suite.

``tools/autograd_suite.py`` copies this file to ``<tmp>/shim/autograd/__init__.py`` and puts ``<tmp>/shim``
first on ``PYTHONPATH``, so ``import autograd`` in autograd's tests runs this file, never an installed
autograd. It is not part of the nablanet package and nothing in nablanet imports it.

A pure module mapping, nothing built here: ``autograd`` is ``nablanet`` itself (this module replaces itself in
``sys.modules``, so ``import autograd`` gives ``nablanet``), and each module of autograd 1.9.1's layout is
nablanet's module of the same name (``autograd.core is nablanet.core``, ``autograd.scipy.stats.norm is
nablanet.scipy.stats.norm``), registered in ``sys.modules`` before any test imports it. nablanet carries
autograd's layout itself (``core``, ``tracer``, ``wrap_util``, ``util`` included; see the README), so the
same tests also run with ``autograd`` renamed ``nablanet`` in their text (``autograd_suite.py --rename``).

autograd's private numpy modules (``numpy_boxes``, ``numpy_vjps``, ...), which its tests do not import, have
no counterpart and are left unmapped.
"""

import importlib
import sys

import nablanet
from nablanet.core import AUTOGRAD_MODULES

MODULES = {f"autograd.{m}": f"nablanet.{m}" for m in AUTOGRAD_MODULES}

for _ag_name, _nb_name in MODULES.items():
    sys.modules[_ag_name] = importlib.import_module(_nb_name)
sys.modules["autograd"] = nablanet  # what `import autograd` returns once this file has run
