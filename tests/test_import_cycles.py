"""No import cycles inside numvgg (issue 12), checked on the import graph read with ast.

A cycle works until someone moves one line (``from .. import __version__``
above or below the imports of ``numvgg/__init__.py``), then ``import numvgg``
breaks with a half-initialised module. The graph check fails on the cycle
itself, whatever the import order happens to be; the synthetic packages below
prove that it does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from import_graph import find_cycles, import_graph

NUMVGG = Path(__file__).resolve().parent.parent / "numvgg"

# Edges that close a cycle today, each owned by a pending change. Removing the
# edge from the code makes its test fail until the entry is deleted here too,
# so this list can only shrink.
KNOWN_EDGES: set = set()  # import cycles still to remove: none (it must not grow)
KNOWN_LAZY_EDGES = {
    # By design, as in Keras (whose Model.save imports its saving API inside the
    # method): saving sits above the models and rebuilds them, while Keras' API
    # puts save()/get_config()/from_config() on the model itself.
    ("numvgg.models.model", "numvgg.saving.serialization"),
    ("numvgg.models", "numvgg.saving"),  # numvgg.models.load_model, Keras' path
    ("numvgg.models.model", "numvgg.saving"),  # model.save()
}


def _without(graph, edges):
    return {m: targets - {t for (s, t) in edges if s == m} for m, targets in graph.items()}


def _check(graph, known):
    missing = sorted(edge for edge in known if edge[1] not in graph.get(edge[0], ()))
    assert not missing, f"These edges are gone: delete them from the known list: {missing}"
    cycles = find_cycles(_without(graph, known))
    assert not cycles, "Import cycle(s) inside numvgg:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_numvgg_module_level_imports_are_acyclic():
    _check(import_graph(NUMVGG, "numvgg"), KNOWN_EDGES)


def test_numvgg_imports_inside_functions_add_no_cycle():
    _check(import_graph(NUMVGG, "numvgg", lazy=True), KNOWN_EDGES | KNOWN_LAZY_EDGES)


def test_version_has_one_source():
    import numvgg
    from numvgg.version import __version__

    assert numvgg.__version__ == __version__
    setup_cfg = (NUMVGG.parent / "setup.cfg").read_text()
    assert "version = attr: numvgg.version.__version__" in setup_cfg


# -- the detector fails on real cycles: synthetic packages ---------------------------------
def _package(tmp_path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_detects_a_two_module_cycle(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from .b import g\ndef f(): pass\n",
            "b.py": "from . import a\ndef g(): pass\n",
        },
    )
    assert find_cycles(import_graph(root, "pkg")) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_detects_a_name_read_from_the_package_top(tmp_path):
    # The __version__ trap: sub/mod.py reads a name from the package that imports it.
    files = {
        "__init__.py": "from . import sub\n__version__ = '1'\n",
        "sub/__init__.py": "from . import mod\n",
        "sub/mod.py": "from .. import __version__\n",
    }
    root = _package(tmp_path, files)
    cycles = find_cycles(import_graph(root, "pkg"))
    assert cycles == [["pkg", "pkg.sub", "pkg.sub.mod", "pkg"]]
    # ... and the cycle is real: importing the package fails.
    run = subprocess.run([sys.executable, "-c", "import pkg"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0 and "partially initialized" in run.stderr
    # Reading it from a module of its own (numvgg/version.py's shape) has no cycle.
    files["__init__.py"] = "from .version import __version__\nfrom . import sub\n"
    files["version.py"] = "__version__ = '1'\n"
    files["sub/mod.py"] = "from ..version import __version__\n"
    assert find_cycles(import_graph(_package(tmp_path, files), "pkg")) == []


def test_lazy_imports_count_only_when_asked(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": "def f():\n    from .a import x\n    return x\n",
        },
    )
    assert find_cycles(import_graph(root, "pkg")) == []
    assert find_cycles(import_graph(root, "pkg", lazy=True)) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_packages_importing_their_own_modules_are_not_cycles(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "from .layers import Conv\n",
            "layers/__init__.py": "from .conv import Conv\n",
            "layers/conv.py": "from .base import Layer\nclass Conv(Layer): pass\n",
            "layers/base.py": "from ..ops import f\nclass Layer: pass\n",
            "ops.py": "def f(): pass\n",
        },
    )
    assert find_cycles(import_graph(root, "pkg")) == []


@pytest.mark.parametrize("guard", ["TYPE_CHECKING", "typing.TYPE_CHECKING"])
def test_type_checking_imports_are_not_edges(tmp_path, guard):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": f"import typing\nfrom typing import TYPE_CHECKING\nif {guard}:\n    from .a import x\n",
        },
    )
    assert find_cycles(import_graph(root, "pkg")) == []
