"""numvgg's version, in a module of its own (as Keras' ``keras/src/version.py``).

Anything inside numvgg that needs the version imports it from here, never from
the package top (``numvgg/__init__.py`` imports every subpackage, so importing
it from inside one of them would be an import cycle). setup.cfg reads it too.
"""

__version__ = "0.1.0"
