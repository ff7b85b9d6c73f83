"""Objects named by dotted strings, as exercise entries name their functions and checks."""

from __future__ import annotations

import importlib


def resolve(dotted: str):
    """``"package.module:name"`` (or ``"module:Class.method"``) -> the object."""
    module_name, _, attribute = dotted.partition(":")
    obj = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj
