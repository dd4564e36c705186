"""What every grader process pays before it does anything: imports deferred until needed.

One fresh interpreter (the import state is per process) imports the grader and
nbformat's validator, reports whether the IRI grammar is still deferred, then asks
jsonschema to check IRIs and reports again.
"""

import subprocess
import sys

import pytest

from autograder._imports import IRI_MODULE

PROBE = (
    "import sys, autograder, nbformat, nbformat.validator, jsonschema._format\n"
    f"print(type(sys.modules[{IRI_MODULE!r}]).__name__)\n"
    "from jsonschema import FormatChecker\n"
    "fc = FormatChecker()\n"
    "print(fc.conforms('http://example.org/a', 'iri'), fc.conforms('http:// not an iri', 'iri'),"
    f" type(sys.modules[{IRI_MODULE!r}]).__name__)\n"
)


@pytest.fixture(scope="module")
def probe() -> list[str]:
    """The probe's two lines: before and after an IRI is checked."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout
    return out.strip().splitlines()


def test_nbformat_through_the_grader_does_not_compile_the_iri_grammar(probe):
    assert probe[0] == "_DeferredIriModule"


def test_iri_validation_still_works_once_asked_for(probe):
    assert probe[1] == "True False module"
