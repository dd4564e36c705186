"""What every grader process pays before it does anything: imports deferred until needed."""

import subprocess
import sys

from autograder._imports import IRI_MODULE


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_nbformat_through_the_grader_does_not_compile_the_iri_grammar():
    out = _run("import sys, autograder, nbformat, nbformat.validator, jsonschema._format\n"
               f"print(type(sys.modules[{IRI_MODULE!r}]).__name__)")
    assert out == "_DeferredIriModule"


def test_iri_validation_still_works_once_asked_for():
    out = _run("import sys, autograder\n"
               "from jsonschema import FormatChecker\n"
               "fc = FormatChecker()\n"
               "print(fc.conforms('http://example.org/a', 'iri'),"
               " fc.conforms('http:// not an iri', 'iri'),"
               f" type(sys.modules[{IRI_MODULE!r}]).__name__)")
    assert out == "True False module"
