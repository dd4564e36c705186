"""Imports deferred until they are needed, so that every grader process starts quickly.

``nbformat`` validates notebooks with ``jsonschema``, whose format checkers
import ``rfc3987_syntax`` (installed for ``jupyter_events`` through
``jsonschema[format-nongpl]``).  That module compiles an Earley grammar for
IRIs when it is imported: 1.5 s of CPU on this project's machine, paid by
every grading command, worker start and test process, although no notebook
schema uses the ``iri`` formats.  :func:`defer_iri_grammar` puts a stand-in
in ``sys.modules`` whose ``is_valid_syntax`` imports the real module on its
first call, so IRI validation still works wherever it is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

IRI_MODULE = "rfc3987_syntax"


class _DeferredIriModule(types.ModuleType):
    """Stands in for ``rfc3987_syntax`` until a schema really checks an IRI."""

    @staticmethod
    def _real():
        if isinstance(sys.modules.get(IRI_MODULE), _DeferredIriModule):
            del sys.modules[IRI_MODULE]
        return importlib.import_module(IRI_MODULE)

    def is_valid_syntax(self, term: str, value: str) -> bool:
        return self._real().is_valid_syntax(term, value)

    def __getattr__(self, name: str):
        if name.startswith("__"):  # the import system probing (__path__, __file__...)
            raise AttributeError(name)
        return getattr(self._real(), name)


def defer_iri_grammar() -> None:
    """Install the stand-in, unless the real module is already imported or not installed."""
    if IRI_MODULE in sys.modules:
        return
    try:
        if importlib.util.find_spec(IRI_MODULE) is None:
            return
    except (ImportError, ValueError):
        return
    sys.modules[IRI_MODULE] = _DeferredIriModule(IRI_MODULE)
