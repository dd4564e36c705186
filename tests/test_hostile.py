"""Hostile submissions (issue 5): a class of attackers graded in ONE batch with honest controls.

Every hostile student has the SAME wrong function as the ``honest_wrong``
control (``rnn_step_forward`` that ignores the bias) plus one attack, so the
rule for every one of them is simple: **never more points than honest_wrong**.
Around the batch the suite also checks that

* the honest controls get exactly the grade (score, max, flags) they get when
  graded alone, also when they run next to a resource hog (``*_neighbour``);
* nothing outside the scratch copies changed: hashes of the course's
  ``source/``, ``release/``, ``submitted/`` (every student's, the attackers'
  own included), config and secret file; no file with the attack's marker
  anywhere in the course, the repository's packages, the Python environment
  or the host's ``/tmp``; no table or student planted in the gradebook;
* no connection reached the TCP (and no datagram the UDP) listener that the
  test runs on 127.0.0.1, nor the unix sockets it runs on the host (one only
  root may reach, one anyone may);
* neither secret (``$RNN_COURSE_SECRET`` of the grader, ``.grader_secret``)
  shows up in any autograded notebook or feedback file;
* no process an attacker forked outlives the grading.

Each attack also prints ``HOSTILE-REPORT {json}``: what each attempt met
inside the sandbox ("blocked: PermissionError", or "SUCCEEDED"); the suite
asserts that no attempt to reach beyond the submission succeeded.

The threat model (see docs/security.md): 1. code that changes what the tests
see, 2. code that reaches beyond its submission, 3. code that exhausts
resources, 4. malformed submissions, 5. code that looks for hidden tests and
inputs or replays the public answers of visible checks.
``RNN_HOSTILE_TABLE=path`` writes the table (student, attack, score, flags) to
``path``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from autograder.commands.demo import LoopbackListener, fill_solutions
from autograder.commands.release import nbgrader_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile")]

REPO = Path(__file__).resolve().parents[1]
A = "rnn_cell"
NB = f"{A}.ipynb"
TAG = secrets.token_hex(6)
MARKER = f"PWNED-{TAG}"  # only ever assembled at run time in student code
REPORT_TAG = "HOSTILE-REPORT "
SITE = sysconfig.get_paths()["purelib"]
ENV_SECRET = f"env-secret-{secrets.token_hex(16)}"
FILE_SECRET = f"file-secret-{secrets.token_hex(16)}"
FORK_NAME = f"hfork{TAG[:8]}"  # comm (15 chars max) of the fork bomb's children
# c.Execute.timeout of the test course: the real cells take < 2 s each, the memory bomb
# needs a few seconds to touch 2 GiB on a loaded machine
TIMEOUT = 20


# --------------------------------------------------------------------------- #
# Notebook surgery
# --------------------------------------------------------------------------- #
def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_test(cell) -> bool:
    md = cell.get("metadata", {}).get("nbgrader", {})
    return bool(md.get("grade")) and not md.get("solution")


def _index_of(nb, grade_id) -> int:
    return next(i for i, c in enumerate(nb.cells) if _gid(c) == grade_id)


WRONG = '''

# The honest mistake every hostile student shares: the bias is never added.
_rnn_step_forward_with_bias = rnn_step_forward


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """rnn_step_forward without the bias."""
    return _rnn_step_forward_with_bias(x, prev_h, Wx, Wh, 0 * b)
'''


def wrong_nb(ctx):
    """The honest_wrong submission: every solution filled in, rnn_step_forward ignores b."""
    nb = fill_solutions(ctx.release_nb, ctx.source_nb)
    cell = nb.cells[_index_of(nb, "rnn_step_forward_impl")]
    cell.source += WRONG
    return nb


PRELUDE = '''\
import json as _json, os as _os, sys as _sys
_M = "PWN" + "ED-" + "$TAG"
_report = {}
def _attempt(name, action):
    try:
        result = action()
    except BaseException as exc:  # refusal is the expected outcome
        _report[name] = "blocked: " + type(exc).__name__
    else:
        _report[name] = "SUCCEEDED" + ("" if result is None else ": " + str(result)[:120])
def _done():
    print("$REPORT_TAG" + _json.dumps(_report), flush=True)
'''


def attack_cell(ctx, body: str, *, report: bool = True):
    """A student-added code cell: the prelude, the attack, then the report line."""
    code = PRELUDE + body + ("\n_done()\n" if report else "\n")
    return new_code_cell(string.Template(code).substitute(ctx.subs))


def with_cell(ctx, body, where="after_forward", nb=None, report=True):
    """honest_wrong's notebook with an attack cell inserted.

    ``after_forward``: right after the rnn_step_forward solution (before every
    test); ``before_tests``: after the last solution cell's definitions but
    before the first test; ``end``: after everything.
    """
    nb = nb if nb is not None else wrong_nb(ctx)
    cell = attack_cell(ctx, body, report=report)
    if where == "after_forward":
        nb.cells.insert(_index_of(nb, "rnn_step_forward_impl") + 1, cell)
    elif where == "end":
        nb.cells.append(cell)
    else:
        raise ValueError(where)
    return nb


def write(ctx, student, nb=None, *, raw: bytes | None = None, name=NB, files=None):
    folder = ctx.course / "submitted" / student / A
    folder.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        (folder / name).write_bytes(raw)
    elif nb is not None:
        nbformat.write(nb, folder / name)
    (folder / "timestamp.txt").write_text("2026-01-10 12:00:00.000000 UTC")
    for rel, data in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


# --------------------------------------------------------------------------- #
# The attacks.  Each builder writes one student's submission folder.
# --------------------------------------------------------------------------- #
# 1. Code that changes what the tests see
def b_patch_numpy(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import numpy as np
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, bool)
np.array_equal = lambda *a, **k: True
np.all = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None
_report["patched"] = "allclose, isclose, array_equal, all, testing"
'''))


def b_patch_grading(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import rnn_course.grading as _g, rnn_course.checks as _c
_g.submit = lambda check_id, **outputs: print(check_id + ": passed")
_c.Check.__call__ = lambda self, *functions: print(self.id + ": passed")
_g.as_plain_arrays = lambda outputs: {}
_report["patched"] = "grading.submit, Check.__call__, as_plain_arrays"
'''))


def b_patch_thread(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import threading, time
import numpy as np
import rnn_course.grading as _g, rnn_course.checks as _c
def _keep_patching():
    while True:  # the kernel runs this between and during cells
        np.allclose = lambda *a, **k: True
        _c.Check.__call__ = lambda self, *functions: print(self.id + ": passed")
        _g.submit = lambda check_id, **outputs: None
        time.sleep(0.005)
threading.Thread(target=_keep_patching, daemon=True).start()
_report["thread"] = "started"
'''))


def b_lying_array(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import numpy as np
class _Liar(np.ndarray):
    """Equal to everything, close to everything, zero distance to everything."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __sub__(self, other): return np.zeros(np.shape(self)).view(_Liar)
    __rsub__ = __sub__
    def __abs__(self): return np.zeros(np.shape(self))
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc in (np.subtract, np.absolute): return np.zeros(np.shape(self))
        if ufunc in (np.isclose, np.equal, np.less_equal): return np.ones(np.shape(self), bool)
        inputs = [np.asarray(i) if isinstance(i, _Liar) else i for i in inputs]
        return getattr(ufunc, method)(*inputs, **kwargs)
_wrong_forward = rnn_step_forward
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h, cache = _wrong_forward(x, prev_h, Wx, Wh, b)
    return np.asarray(next_h).view(_Liar), cache
_report["liar"] = "rnn_step_forward returns an ndarray subclass"
'''))


def b_lying_object(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import numpy as np
class _Anything:
    """Not an array: compares equal to anything, converts to whatever is asked."""
    def __init__(self, value): self.value = np.asarray(value)
    def __eq__(self, other): return True
    def __array__(self, dtype=None, copy=None): return self.value
    def __getattr__(self, name): return getattr(self.value, name)
    def __len__(self): return len(self.value)
    def __getitem__(self, i): return self.value[i]
    def __float__(self): return 0.0
_wrong_forward = rnn_step_forward
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h, cache = _wrong_forward(x, prev_h, Wx, Wh, b)
    return _Anything(next_h), cache
_report["anything"] = "rnn_step_forward returns a custom object"
'''))


def b_input_transformer(ctx, s):
    write(ctx, s, with_cell(ctx, '''
def _rewrite(lines):
    text = "".join(lines)
    if "checks." in text or "grading." in text:  # a test cell: make it print a pass
        return ['print("passed (verified by the grader)")\\n']
    return lines
get_ipython().input_transformers_cleanup.append(_rewrite)
get_ipython().input_transformers_post.append(_rewrite)
_report["transformers"] = "installed"
'''))


def b_ast_transformer(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import ast
class _DropCalls(ast.NodeTransformer):
    """Replace every call to checks.* or grading.* by None."""
    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \\
                and f.value.id in ("checks", "grading"):
            return ast.copy_location(ast.Constant(None), node)
        return node
get_ipython().ast_transformers.append(_DropCalls())
_report["ast"] = "installed"
'''))


def b_event_hooks(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import glob
import numpy as np
def _after(result):
    # claim success in every cell's output, and forge any result left behind
    print("passed (verified by the grader)")
    folder = _os.environ.get("RNN_COURSE_GRADING_DIR")
    if folder:
        for path in glob.glob(_os.path.join(folder, "results", "*.npz")):
            try:
                with np.load(path) as data:
                    forged = {k: np.zeros_like(data[k]) for k in data.files}
                np.savez(path, **forged)
            except Exception:
                pass
    result.error_in_exec = None
    result.error_before_exec = None
get_ipython().events.register("post_run_cell", _after)
get_ipython().events.register("pre_run_cell", lambda info: None)
_report["hooks"] = "post_run_cell, pre_run_cell"
'''))


def b_custom_exc(ctx, s):
    write(ctx, s, with_cell(ctx, '''
def _silence(shell, etype, evalue, tb, tb_offset=None):
    return None
get_ipython().set_custom_exc((BaseException,), _silence)
_report["custom_exc"] = "every exception silenced"
'''))


def b_showtraceback(ctx, s):
    write(ctx, s, with_cell(ctx, '''
_ip = get_ipython()
_ip.showtraceback = lambda *a, **k: None
_ip.showsyntaxerror = lambda *a, **k: None
type(_ip).showtraceback = lambda *a, **k: None
_report["showtraceback"] = "no error is ever shown"
'''))


def b_forge_results(ctx, s):
    """After every test ran, replace each failed visible result with self-consistent zeros."""
    nb = with_cell(ctx, '''
import glob
import numpy as np
from rnn_course.checks import registry as _registry
_checks = _registry(["rnn_cell"])
_folder = _os.path.join(_os.environ.get("RNN_COURSE_GRADING_DIR", "."), "results")
_forged = []
for _path in sorted(glob.glob(_os.path.join(_folder, "*.npz"))):
    _id = _os.path.basename(_path)[:-4]
    if _id not in _checks or _checks[_id].hidden:
        continue
    with np.load(_path) as _data:
        _out = {k: _data[k].copy() for k in _data.files}
    if _checks[_id].judge(_out) is None:
        continue
    # zero gradients with zero "finite differences" agree with each other: submit
    # them, tables included (the stored oracle's names), whatever the local verdict
    _tables = {}
    try:
        _tables = _checks[_id].oracle_values()
    except Exception:
        pass
    _zeros = {k: np.zeros_like(v) for k, v in {**_out, **_tables}.items()}
    np.savez(_path, **_zeros)
    _forged.append(_id)
_report["forged"] = _forged
''', where="end")
    write(ctx, s, nb)


def b_patch_check_internals(ctx, s):
    """Before the tests: make the kernel-side half of the gradient checks produce zeros."""
    write(ctx, s, with_cell(ctx, '''
import numpy as np
import rnn_course.checks.rnn_cell as _rc
def _zeroing(run):
    def wrapped(*args, **kwargs):
        out = run(*args, **kwargs)
        return {k: np.zeros_like(np.asarray(v, dtype=float)) for k, v in out.items()}
    return wrapped
for _check in (_rc.rnn_step_backward_bias, _rc.rnn_step_backward_input,
               _rc.rnn_step_backward_recurrent):
    object.__setattr__(_check, "run", _zeroing(_check.run))
_report["patched"] = "rnn_course.checks.rnn_cell gradient checks return zeros"
'''))


FAKE_NUMPY = '''\
"""numpy.py shipped with the submission: the real numpy, with comparisons that always pass."""
import os, sys
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules["numpy"]
import numpy as _real
_real.allclose = lambda *a, **k: True
_real.isclose = lambda a, b, *r, **k: _real.ones(_real.broadcast(a, b).shape, bool)
sys.modules["numpy"] = _real
'''


def b_shadow_numpy(ctx, s):
    write(ctx, s, wrong_nb(ctx), files={"numpy.py": FAKE_NUMPY,
                                        "sitecustomize.py": "print('sitecustomize ran')\n"})


FAKE_PKG = {
    "rnn_course/__init__.py": "",
    "rnn_course/grading.py": "def submit(check_id, **o): print(check_id, 'passed')\n"
                             "def inputs(check_id): raise SystemExit\n",
    "rnn_course/checks/__init__.py": "",
    "rnn_course/checks/rnn_cell.py": "def __getattr__(name):\n"
                                     "    return lambda *a, **k: print(name, 'passed')\n",
    "autograder/__init__.py": "",
    "autograder/reference.py": "raise SystemExit('fake reference')\n",
}


def b_shadow_rnn_course(ctx, s):
    write(ctx, s, wrong_nb(ctx), files=FAKE_PKG)


def b_sys_modules(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import types, rnn_course, rnn_course.checks
_fake = types.ModuleType("rnn_course.grading")
_fake.submit = lambda check_id, **o: print(check_id, "passed")
_fake.inputs = lambda check_id: {}
_fake.grading_dir = lambda: None
_sys.modules["rnn_course.grading"] = _fake
rnn_course.grading = _fake
_fake_checks = types.ModuleType("rnn_course.checks.rnn_cell")
_fake_checks.__getattr__ = lambda name: (lambda *a, **k: print(name, "passed"))
_sys.modules["rnn_course.checks.rnn_cell"] = _fake_checks
rnn_course.checks.rnn_cell = _fake_checks
checks = _fake_checks
grading = _fake
for _name in ("autograder", "autograder.pipeline.worker.verify", "autograder.reference",
              "nbgrader"):
    _sys.modules[_name] = types.ModuleType(_name)
_report["planted"] = "rnn_course.grading, rnn_course.checks.rnn_cell, autograder, nbgrader"
'''))


# 2. Code that reaches beyond its submission
ADOPT = '''
def _adopt(path):
    """exec the code cells of a notebook that defines a working rnn_step_forward."""
    with open(path, "rb") as fh:
        nb = _json.loads(fh.read())
    code = "\\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                      for c in nb.get("cells", []) if c.get("cell_type") == "code"
                      and "def rnn_" in "".join(c["source"]))
    if "NotImplementedError" in code or "def rnn_step_forward" not in code:
        return "nothing usable"
    code = "\\n".join(l for l in code.splitlines() if "_rnn_step_forward_with_bias" not in l)
    exec(code, globals())
    return "ADOPTED solutions from " + path
'''


def b_read_course(ctx, s):
    write(ctx, s, with_cell(ctx, ADOPT + '''
_targets = {
    "source notebook": "$COURSE/source/rnn_cell/rnn_cell.ipynb",
    "../../source": "../../source/rnn_cell/rnn_cell.ipynb",
    "../source": "../source/rnn_cell/rnn_cell.ipynb",
    "release notebook": "$COURSE/release/rnn_cell/rnn_cell.ipynb",
    "gradebook": "$COURSE/gradebook.db",
    "grader secret file": "$COURSE/.grader_secret",
    "course config": "$COURSE/nbgrader_config.py",
    "grader secrets module": "$REPO/autograder/protocol/secrets.py",
    "reference solutions": "$REPO/autograder/reference.py",
    "reference in the sandbox's venv":
        "/opt/python-env/lib/python3.11/site-packages/autograder/reference.py",
    "/etc/shadow": "/etc/shadow",
    "root's home": "/root/.bash_history",
}
for _name, _path in _targets.items():
    _attempt("read " + _name, lambda p=_path: "%d bytes" % len(open(p, "rb").read()))
for _path in ("$COURSE/source/rnn_cell/rnn_cell.ipynb", "../../source/rnn_cell/rnn_cell.ipynb"):
    _attempt("adopt " + _path, lambda p=_path: _adopt(p))
_report["_visible /"] = sorted(_os.listdir("/"))
_report["_cwd"] = _os.getcwd()
'''))


def b_import_reference(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import importlib, importlib.util
def _plain():
    import autograder.reference as R
    return R
def _via(root):
    _sys.path.insert(0, root)
    try:
        _sys.modules.pop("autograder", None)
        return importlib.import_module("autograder.reference")
    finally:
        _sys.path.pop(0)
def _by_file(path):
    spec = importlib.util.spec_from_file_location("_ref", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
_found = None
for _name, _how in [("import autograder.reference", _plain),
                    ("sys.path += repo", lambda: _via("$REPO")),
                    ("sys.path += course", lambda: _via("$COURSE")),
                    ("sys.path += ../..", lambda: _via("../..")),
                    ("load repo file", lambda: _by_file("$REPO/autograder/reference.py"))]:
    try:
        _mod = _how()
        _found = _found or _mod
        _report[_name] = "SUCCEEDED"
    except BaseException as exc:
        _report[_name] = "blocked: " + type(exc).__name__
if _found is not None:  # cheat with the instructor's own functions
    rnn_step_forward = _found.rnn_step_forward
    rnn_step_backward = _found.rnn_step_backward
    rnn_forward = _found.rnn_forward
'''))


def b_other_students(ctx, s):
    write(ctx, s, with_cell(ctx, ADOPT + '''
import time as _time
import numpy as np
_own = _os.path.realpath(".")
_grading = _os.path.realpath(_os.environ.get("RNN_COURSE_GRADING_DIR", "."))
_seen, _foreign, _tampered = 0, [], []
_deadline = _time.monotonic() + 15
for _root in ("$COURSE/submitted/honest_correct", "$COURSE/autograded", "..", "../..", "/tmp", "/"):
    for _dir, _dirs, _files in _os.walk(_root):
        _dirs[:] = [d for d in _dirs if d not in ("proc", "sys", "dev", "usr", "lib", "opt")]
        if _time.monotonic() > _deadline or _seen > 30000:
            break
        _seen += len(_files)
        _real = _os.path.realpath(_dir)
        if _real.startswith(_own) or _real.startswith(_grading):
            continue
        for _f in _files:
            _p = _os.path.join(_dir, _f)
            if _f.endswith(".ipynb"):
                _foreign.append(_p)
                _attempt("adopt " + _p, lambda p=_p: _adopt(p))
            elif _f.endswith(".npz"):  # another submission's grading inputs or results
                def _zero(p=_p):
                    with np.load(p) as d:
                        z = {k: np.zeros_like(d[k]) for k in d.files}
                    np.savez(p, **z)
                _attempt("tamper " + _p, _zero)
_report["_files seen"] = _seen
_report["_foreign notebooks"] = _foreign[:20]
'''))


def b_secrets(ctx, s):
    write(ctx, s, with_cell(ctx, '''
_attempt("read the secret file", lambda: open("$COURSE/.grader_secret").read())
_attempt("secret in the environment", lambda: _os.environ["RNN_COURSE_SECRET"])
_environs = {}
for _pid in [p for p in _os.listdir("/proc") if p.isdigit()]:
    try:
        with open("/proc/%s/environ" % _pid, "rb") as fh:
            _environs[_pid] = fh.read().decode(errors="replace")
    except OSError:
        pass
_report["_visible pids"] = sorted(int(p) for p in _os.listdir("/proc") if p.isdigit())
_hits = [p for p, e in _environs.items() if "RNN_COURSE_SECRET" in e or "secret" in e.lower()]
_report["secret in a process environment"] = ("SUCCEEDED: " + ",".join(_hits)) if _hits \\
    else "blocked: not found"
print("ENVIRONMENT", dict(_os.environ))
print("ENVIRONS", _environs)
'''))


def b_write_outside(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import sqlite3
_targets = [
    "$COURSE/pwned-$TAG.txt",
    "$COURSE/source/rnn_cell/pwned-$TAG.py",
    "$COURSE/release/rnn_cell/pwned-$TAG.txt",
    "$COURSE/submitted/honest_correct/rnn_cell/pwned-$TAG.txt",
    "$COURSE/autograded/pwned-$TAG.txt",
    "$COURSE/feedback/pwned-$TAG.txt",
    "$REPO/autograder/protocol/zz_pwned_$TAG.py",
    "$REPO/rnn_course/zz_pwned_$TAG.py",
    "$SITE/zz_pwned_$TAG.pth",
    "/opt/course-lib/rnn_course/zz_pwned_$TAG.py",
    "/opt/python-env/lib/python3.11/site-packages/zz_pwned_$TAG.pth",
    "../pwned-$TAG.txt",
    "../../pwned-$TAG.txt",
    "/var/tmp/pwned-$TAG.txt",
    "/root/pwned-$TAG.txt",
]
def _create(path):
    with open(path, "x") as fh:
        fh.write(_M + "\\n")
for _t in _targets:
    _attempt("create " + _t, lambda p=_t: _create(p))
for _t in ("$COURSE/source/rnn_cell/rnn_cell.ipynb", "$COURSE/nbgrader_config.py",
           "$COURSE/.grader_secret", "$COURSE/submitted/honest_wrong/rnn_cell/rnn_cell.ipynb"):
    def _append(p=_t):
        with open(p, "a") as fh:
            fh.write("# " + _M + "\\n")
    _attempt("append to " + _t, _append)
_attempt("chmod the course", lambda: _os.chmod("$COURSE/source", 0o777))
def _sql():
    con = sqlite3.connect("$COURSE/gradebook.db", timeout=1)
    con.execute("create table pwned_$TAG (x)")
    con.execute("insert into pwned_$TAG values (?)", (_M,))
    con.execute("insert into student (id, first_name) values ('mallory_$TAG', ?)", (_M,))
    con.commit()
_attempt("write the gradebook", _sql)
def _private_tmp():
    with open("/tmp/pwned-$TAG.txt", "w") as fh:
        fh.write(_M)
_attempt("_write /tmp (private to the sandbox)", _private_tmp)
def _private_shm():
    with open("/dev/shm/pwned-$TAG.txt", "w") as fh:
        fh.write(_M)
_attempt("_write /dev/shm (private to the sandbox)", _private_shm)
'''))


def b_network(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import socket
def _tcp(host):
    socket.create_connection((host, $PORT), timeout=2).close()
for _host in ("127.0.0.1", "localhost", "::1", "127.1.2.3"):
    _attempt("tcp " + _host, lambda h=_host: _tcp(h))
def _udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(_M.encode(), ("127.0.0.1", $UDP_PORT))
_attempt("_udp sendto 127.0.0.1 (judged by the listener)", _udp)
def _ifaces():
    return [name for _, name in socket.if_nameindex()]
_report["_interfaces"] = _ifaces()
'''))


def b_kill_others(ctx, s):
    """Wait for neighbours, then signal every process it can see, then kill(-1)."""
    write(ctx, s, with_cell(ctx, '''
import signal, time
time.sleep(4)  # let another student's kernel start next to this one
_me = _os.getpid()
_ancestors = set()
_p = _me
while _p > 1:
    _ancestors.add(_p)
    try:
        _p = int(open("/proc/%d/stat" % _p).read().rsplit(")", 1)[1].split()[1])
    except Exception:
        break
_visible = [int(p) for p in _os.listdir("/proc") if p.isdigit()]
_report["_visible pids"] = _visible
_killed = []
for _pid in _visible:
    if _pid in _ancestors or _pid == 1:
        continue
    try:
        if b"ipykernel" in open("/proc/%d/cmdline" % _pid, "rb").read():
            _os.kill(_pid, signal.SIGKILL)
            _killed.append(_pid)
    except OSError:
        pass
_report["kill other kernels"] = ("SUCCEEDED: %s" % _killed) if _killed else "blocked: none visible"
''', where="end"))


# 3. Code that exhausts resources
def b_infinite_loop(ctx, s):
    write(ctx, s, with_cell(ctx, "while True:\n    pass\n", report=False))


def b_sleep_forever(ctx, s):
    write(ctx, s, with_cell(ctx, "import time\ntime.sleep(10**6)\n", report=False))


def b_memory_bomb(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import numpy as np
_blocks = []
try:
    while len(_blocks) < 96:  # at most 6 GiB: the host stays safe if the limit fails
        _blocks.append(np.ones(8 * 1024 * 1024))  # 64 MiB, touched
finally:
    _report["allocated MiB"] = 64 * len(_blocks)
    del _blocks
    _done()
'''))


def b_memory_children(ctx, s):
    """Three child processes hold 1 GiB each: the per-process limit does not add up."""
    write(ctx, s, with_cell(ctx, '''
import subprocess
_hold = ("import time; x = b'x' * (1 << 30); print('ready', flush=True); "  # 1 GiB, touched
         "time.sleep(2)")
_procs = [subprocess.Popen([_sys.executable, "-c", _hold], stdout=subprocess.PIPE)
          for _ in range(3)]
_ready = [_p.stdout.readline().strip() == b"ready" for _p in _procs]
_rss = 0
for _p in _procs:
    try:
        for _line in open("/proc/%d/status" % _p.pid):
            if _line.startswith("VmRSS:"):
                _rss += int(_line.split()[1]) // 1024
    except OSError:
        pass
for _p in _procs:
    _p.wait()
_report["_children holding 1 GiB each"] = sum(_ready)
_report["_resident MiB in 3 children"] = _rss
'''))


def b_fork_bomb(ctx, s):
    write(ctx, s, with_cell(ctx, '''
import ctypes, time
_libc = ctypes.CDLL(None)
_count = 0
try:
    while _count < 400:  # bounded: 400 sleeping children at most
        _pid = _os.fork()
        if _pid == 0:
            _libc.prctl(15, b"$FORK_NAME", 0, 0, 0)  # PR_SET_NAME: findable from the host
            time.sleep(40)
            _os._exit(0)
        _count += 1
finally:
    _report["forked"] = _count
    _done()
    time.sleep(6)  # hold the processes while a neighbour's kernel runs
'''))


def b_shm_fill(ctx, s):
    """Files in the sandbox's memory-backed /dev: not counted by any rlimit (bounded: 1 GiB)."""
    write(ctx, s, with_cell(ctx, '''
_block = b"\\1" * (1024 * 1024)
for _where in ("/dev/shm", "/dev"):
    _written = 0
    try:
        for _i in range(9):  # 9 x 60 MiB (each file under the 64 MiB file-size limit)
            with open("%s/fill-%d" % (_where, _i), "wb") as fh:
                for _ in range(60):
                    fh.write(_block)
            _written += 60
    except BaseException as exc:
        _report["_" + _where + " stopped by"] = type(exc).__name__
    finally:
        _report["_" + _where + " MiB written"] = _written
        for _i in range(9):
            try:
                _os.remove("%s/fill-%d" % (_where, _i))
            except OSError:
                pass
'''))


def b_output_flood(ctx, s):
    write(ctx, s, with_cell(ctx, '''
_chunk = "x" * (1024 * 1024)
for _i in range(100):  # 100 MB of output
    _sys.stdout.write(_chunk)
_sys.stdout.flush()
'''))


def b_huge_message(ctx, s):
    # one Jupyter message: a 200 MB buffer sent 12 times (each frame under the grader's
    # per-frame cap, 2.4 GB together; the kernel holds it once)
    write(ctx, s, with_cell(ctx, '''
_k = get_ipython().kernel
_buf = memoryview(bytearray(200 * 2**20))
_k.session.send(_k.iopub_socket, "display_data",
                {"data": {"text/plain": "huge"}, "metadata": {}},
                parent=_k.get_parent(), buffers=[_buf] * 12)
del _buf
'''))


def b_kill_kernel(ctx, s):
    write(ctx, s, with_cell(ctx, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
                            where="end", report=False))


def b_disk_fill(ctx, s):
    """Many files just under the per-file limit: there is no quota on the scratch folder."""
    write(ctx, s, with_cell(ctx, '''
_written = 0
_block = b"\\0" * (1024 * 1024)
try:
    for _i in range(8):  # bounded: 8 x 60 MiB
        with open("fill-%d.bin" % _i, "wb") as fh:
            for _ in range(60):
                fh.write(_block)
        _written += 60
finally:
    for _i in range(8):
        try:
            _os.remove("fill-%d.bin" % _i)
        except OSError:
            pass
    _report["_scratch MiB written"] = _written
'''))


def b_relay_socket_swap(ctx, s):
    """The kernel's ipc socket files swapped for links to sockets of the host (root's, and
    anyone's), then its heartbeat ended: a relay that reconnected by path would follow them."""
    write(ctx, s, with_cell(ctx, '''
import glob as _glob, time as _time
from ipykernel.kernelapp import IPKernelApp as _App
_app = _App.instance()
_run = _os.path.dirname(_app.connection_file)
_targets = ["$ROOT_SOCK", "$WORLD_SOCK"]
for _i, _p in enumerate(sorted(_glob.glob(_run + "/kernel-ipc-*"))):
    _os.unlink(_p)
    _os.symlink(_targets[_i % 2], _p)
_time.sleep(0.5)
_app.heartbeat.context.term()
_time.sleep(3)
''', where="end", report=False))


def b_runtime_fill(ctx, s):
    """1.2 GB into the kernel's runtime folder (its connection file's), which it may write."""
    write(ctx, s, with_cell(ctx, '''
from ipykernel.kernelapp import IPKernelApp as _App
_run = _os.path.dirname(_App.instance().connection_file)
_block = b"\\0" * (1024 * 1024)
_written = 0
try:
    for _i in range(20):  # 20 x 60 MiB, each file under the 64 MiB file-size limit
        _fd = _os.open("%s/fill-%d" % (_run, _i), _os.O_WRONLY | _os.O_CREAT, 0o600)
        try:
            for _ in range(60):
                _written += _os.write(_fd, _block)
        finally:
            _os.close(_fd)
except BaseException as exc:
    _report["_runtime stopped by"] = type(exc).__name__
finally:
    _report["_runtime bytes written"] = _written
    for _i in range(20):
        try:
            _os.remove("%s/fill-%d" % (_run, _i))
        except OSError:
            pass
'''))


# 4. Malformed submissions
def _tests(nb):
    return [c for c in nb.cells if _is_test(c)]


def b_invalid_json(ctx, s):
    write(ctx, s, raw=b'{"cells": [ {"cell_type": "code", ')


def b_empty_file(ctx, s):
    write(ctx, s, raw=b"")


def b_not_a_notebook(ctx, s):
    write(ctx, s, raw=b'{"hello": "world"}')


def b_renamed(ctx, s):
    write(ctx, s, wrong_nb(ctx), name="rnn_cell (1).ipynb")


def b_missing(ctx, s):
    write(ctx, s, files={"notes.txt": "I could not finish, sorry\n"})


def b_deleted_tests(ctx, s):
    nb = wrong_nb(ctx)
    nb.cells = [c for c in nb.cells if not _is_test(c)]
    write(ctx, s, nb)


def b_edited_tests(ctx, s):
    nb = wrong_nb(ctx)
    for cell in _tests(nb):
        cell.source = 'print("passed (verified by the grader)")'
    write(ctx, s, nb)


def b_tests_to_markdown(ctx, s):
    nb = wrong_nb(ctx)
    for i, cell in enumerate(nb.cells):
        if _is_test(cell):
            md = new_markdown_cell(cell.source)
            md.metadata = cell.metadata
            nb.cells[i] = md
    write(ctx, s, nb)


def b_duplicated_tests(ctx, s):
    nb = wrong_nb(ctx)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if _is_test(cell):
            twin = nbformat.from_dict(json.loads(json.dumps(cell)))
            twin.source = 'print("passed (verified by the grader)")'
            twin["id"] = secrets.token_hex(4)
            cells.insert(len(cells) - 1, twin)  # the forged twin comes first
    nb.cells = cells
    write(ctx, s, nb)


def b_points_1000(ctx, s):
    nb = wrong_nb(ctx)
    for cell in _tests(nb):
        cell.metadata.nbgrader["points"] = 1000
    write(ctx, s, nb)


def b_flags_flipped(ctx, s):
    """Solution cells claim to be graded (1000 points each), test cells claim not to be."""
    nb = wrong_nb(ctx)
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader")
        if not md:
            continue
        if md.get("solution"):
            md.update(grade=True, points=1000)
        elif md.get("grade"):
            md.update(grade=False, points=0)
    write(ctx, s, nb)


def b_grade_ids_changed(ctx, s):
    nb = wrong_nb(ctx)
    for cell in _tests(nb):
        cell.metadata.nbgrader["grade_id"] += "_mine"
        cell.source = 'print("passed (verified by the grader)")'
    write(ctx, s, nb)


def b_kernelspec(ctx, s):
    nb = wrong_nb(ctx)
    nb.metadata.kernelspec = {"name": "bash", "display_name": "evil", "language": "bash"}
    nb.metadata.language_info = {"name": "bash"}
    write(ctx, s, nb)


def b_too_large(ctx, s):
    nb = wrong_nb(ctx)
    blob = new_code_cell("pass")
    blob.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (130 * 2**20))]
    nb.cells.append(blob)
    write(ctx, s, nb)


def b_many_cells(ctx, s):
    nb = wrong_nb(ctx)
    nb.cells.extend(new_code_cell("") for _ in range(100_000))  # about 7 MB
    write(ctx, s, nb)


def b_deep_json(ctx, s):
    nb = wrong_nb(ctx)
    nb.metadata["deep"] = "DEEP"
    # under json's recursion limit, far over the precheck's cap (written as text: nbformat
    # itself could not copy it)
    raw = nbformat.writes(nb).replace('"DEEP"', "[" * 900 + '"x"' + "]" * 900)
    write(ctx, s, raw=raw.encode())


def b_bad_encodings(ctx, s):
    nb = wrong_nb(ctx)
    nb.cells.insert(0, new_markdown_cell("caf\udce9: a lone surrogate, as a broken editor saves"))
    raw = json.dumps(nb).encode()  # valid JSON holding the escape "\udce9"
    write(ctx, s, raw=raw, files={os.fsdecode(b"notes-\xe9\xff.txt"): b"\xe9t\xe9 \xff\xfe"})


ACTIVE = "ACTIVE_OUTPUT_RAN"


def b_active_outputs(ctx, s):
    # what a student's cell can display that a browser would run (issue 11): a script, an
    # event handler, a javascript: link, a widget view of a model that is not there
    write(ctx, s, with_cell(ctx, f'''
from IPython.display import HTML, Javascript, display
display(HTML("<script>document.title = '{ACTIVE}'</script>"
             "<img src=x onerror=\\"document.title='{ACTIVE}'\\">"
             "<a href=\\"javascript:document.title='{ACTIVE}'\\">link</a>"))
display(Javascript("document.title = '{ACTIVE}'"))
display({{"application/vnd.jupyter.widget-view+json": {{"model_id": "{ACTIVE}",
         "version_major": 2, "version_minor": 0}}, "text/plain": "w"}}, raw=True)
'''))


def b_symlinks(ctx, s):
    nb = with_cell(ctx, ADOPT + '''
for _name in ("leak_source.ipynb", "leak_correct.ipynb", "leak_secret", "leak_dir"):
    _attempt("read link " + _name, lambda n=_name: "%d entries/bytes" % (
        len(_os.listdir(n)) if _os.path.isdir(n) else len(open(n, "rb").read())))
for _name in ("leak_source.ipynb", "leak_correct.ipynb"):
    _attempt("adopt " + _name, lambda n=_name: _adopt(n))
''')
    folder = write(ctx, s, nb)
    links = {"leak_source.ipynb": ctx.course / "source" / A / NB,
             "leak_correct.ipynb": ctx.course / "submitted" / "honest_correct" / A / NB,
             "leak_secret": ctx.course / ".grader_secret",
             "leak_dir": REPO / "autograder"}
    for name, target in links.items():
        os.symlink(target, folder / name)


def b_symlinked_notebook(ctx, s):
    folder = write(ctx, s, None)
    os.symlink(ctx.course / "submitted" / "honest_correct" / A / NB, folder / NB)


def b_hardlink_course(ctx, s):
    """A hard link in the submission to the instructor's notebook: the same file by a name
    of the student's (the kernel read 32 KB of source/ through it)."""
    folder = write(ctx, s, with_cell(ctx, '''
print(_M, len(open("notes.txt", "rb").read()))
'''))
    os.link(ctx.course / "source" / A / NB, folder / "notes.txt")


def b_linked_student(ctx, s):
    """submitted/<student> a symlink to another student's folder (got their 19/19)."""
    os.symlink(ctx.course / "submitted" / "honest_correct", ctx.course / "submitted" / s)


def b_linked_submission(ctx, s):
    """submitted/<student>/<assignment> a symlink to another's (was skipped, no flag)."""
    (ctx.course / "submitted" / s).mkdir(parents=True)
    os.symlink(ctx.course / "submitted" / "honest_correct" / A, ctx.course / "submitted" / s / A)


# 5. Hidden tests and inputs reaching the student; visible checks special-cased (issue 11)
def b_read_grading_dir(ctx, s):
    """Before every test: list and read the shared folder (inputs, results) and the scratch."""
    write(ctx, s, with_cell(ctx, '''
import glob
import numpy as np
_shared = _os.environ.get("RNN_COURSE_GRADING_DIR", "")
_found = {}
_patterns = [_os.path.join(_shared, "**"), "**", _os.path.join("..", "*", "*.npz")]
for _pattern in _patterns:
    for _p in sorted(glob.glob(_pattern, recursive=True)):
        if not _p.endswith(".npz") or not _os.path.isfile(_p):
            continue
        try:
            with np.load(_p, allow_pickle=False) as _d:
                _found[_p] = {k: _d[k].ravel().tolist() for k in _d.files}
        except Exception as _e:
            _found[_p] = repr(_e)
print("GRADING-DIR", _shared, sorted(_os.listdir(_shared)) if _shared else None)
print("FOUND", _json.dumps(_found))
_report["_shared"] = _shared
_report["_files"] = sorted(_found)
'''))


def b_history_after(ctx, s):
    """After every test: print the kernel's history, its outputs and linecache."""
    write(ctx, s, with_cell(ctx, '''
import linecache
_ip = get_ipython()
_dump = [repr(_ip.user_ns.get(_k)) for _k in ("In", "_ih", "Out", "_oh")]
_dump += [_k + "=" + repr(_v) for _k, _v in list(_ip.user_ns.items())
          if _k.startswith("_i") and _k != "_ih"]
_hm = _ip.history_manager
_dump += [repr(_hm.input_hist_parsed), repr(_hm.input_hist_raw), repr(_hm.output_hist)]
for _name, _call in (("range", lambda: list(_hm.get_range(raw=True, output=True))),
                     ("tail", lambda: list(_hm.get_tail(10**6, raw=True))),
                     ("search", lambda: list(_hm.search("*")))):
    try:
        _dump.append(_name + "=" + repr(_call()))
    except Exception as _e:
        _dump.append(_name + " failed: " + repr(_e))
# the cells' code (not the modules' files on disk, which would flood the output)
_dump += [_k + ":" + "".join(_v[2]) for _k, _v in list(linecache.cache.items())
          if isinstance(_v, tuple) and len(_v) > 2 and _v[2] and not _os.path.exists(_k)]
_report["_history_cells"] = len(_ip.user_ns.get("In", []))
_report["_linecache_cells"] = len(_dump)
_done()  # first: the dump below may be long
print("HISTORY-DUMP")
print("\\n".join(_dump))
''', where="end", report=False))


REPLAY_KEY = '''
def _replay_key(name, args):
    """The lookup key of one call: the function's name and its arguments' values."""
    import hashlib as _hl
    import numpy as _np
    h = _hl.sha256(name.encode())
    for a in args:
        a = _np.asarray(a, dtype=float)
        h.update(repr(a.shape).encode() + a.tobytes())
    return h.hexdigest()
'''
REPLAYED = ("rnn_step_forward", "rnn_forward")


def public_answers() -> dict:
    """key -> the reference's answer, for every call a public visible check of rnn_cell makes."""
    import inspect
    import types

    from autograder import reference as R
    from rnn_course import checks

    space = {}
    exec(REPLAY_KEY, space)
    table = {}

    def recording(name):
        fn = getattr(R, name)

        def wrapped(*args, **kwargs):
            bound = inspect.signature(fn).bind(*args, **kwargs)
            answer = fn(*bound.args)
            table[space["_replay_key"](name, bound.args)] = answer
            return answer
        return wrapped

    impl = types.SimpleNamespace(**{**{n: getattr(R, n) for n in R.__all__},
                                    **{n: recording(n) for n in REPLAYED}})
    for check in checks.assignment_checks(A).values():
        if not check.hidden:
            check.run(check.inputs(), *checks.functions_named(check.run, impl))
    return table


def b_replay_public(ctx, s):
    """honest_wrong's functions, except that calls on the public inputs get the public answer."""
    import base64
    import pickle

    blob = base64.b64encode(pickle.dumps(public_answers())).decode()
    nb = wrong_nb(ctx)
    step = attack_cell(ctx, REPLAY_KEY + '''
import base64, pickle
_TABLE = pickle.loads(base64.b64decode("''' + blob + '''"))
_wrong_step = rnn_step_forward
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    key = _replay_key("rnn_step_forward", (x, prev_h, Wx, Wh, b))
    return _TABLE[key] if key in _TABLE else _wrong_step(x, prev_h, Wx, Wh, b)
''', report=False)
    seq = attack_cell(ctx, '''
from rnn_course import checks as _checks, grading as _grading
_wrong_seq = rnn_forward
def rnn_forward(x, h0, Wx, Wh, b):
    key = _replay_key("rnn_forward", (x, h0, Wx, Wh, b))
    return _TABLE[key] if key in _TABLE else _wrong_seq(x, h0, Wx, Wh, b)
_passed = []
for _id, _c in _checks.assignment_checks("rnn_cell").items():
    if not _c.hidden:  # judged in this kernel on the public inputs, as in Jupyter
        _fns = [globals()[n] for n in _c.functions]
        if _c.judge(_grading.as_plain_arrays(_c.run(_c.inputs(), *_fns))) is None:
            _passed.append(_id)
_report["_public_passed"] = _passed
_report["_table"] = len(_TABLE)
''')
    nb.cells.insert(_index_of(nb, "rnn_step_forward_impl") + 1, step)
    nb.cells.insert(_index_of(nb, "rnn_forward_impl") + 1, seq)
    write(ctx, s, nb)


def b_honest_correct(ctx, s):
    write(ctx, s, fill_solutions(ctx.release_nb, ctx.source_nb))


def b_honest_wrong(ctx, s):
    write(ctx, s, wrong_nb(ctx))


@dataclasses.dataclass(frozen=True)
class Student:
    """One student of the class: who, which attack, what the grade must be."""

    id: str
    attack: str
    build: Callable
    threat: int = 0  # 0: an honest control
    flags: frozenset = frozenset()  # flags that must be raised
    zero: bool = False  # the submission must get 0
    control: str = ""  # honest control whose grade this one must equal exactly
    report: bool = False  # its HOSTILE-REPORT must show no SUCCEEDED attempt


F = frozenset
CLASS = [
    Student("honest_correct", "none (every solution right)", b_honest_correct),
    Student("honest_wrong", "none (rnn_step_forward ignores b)", b_honest_wrong),
    # 1. changing what the tests see
    Student("t1_patch_numpy", "patch np.allclose/isclose/array_equal/all/testing",
            b_patch_numpy, 1),
    Student("t1_patch_grading", "patch grading.submit, Check.__call__, as_plain_arrays",
            b_patch_grading, 1),
    Student("t1_patch_thread", "a thread re-patching numpy and the grading API",
            b_patch_thread, 1),
    Student("t1_lying_array", "ndarray subclass whose ==, -, abs and ufuncs lie",
            b_lying_array, 1),
    Student("t1_lying_object", "a custom non-array object equal to everything",
            b_lying_object, 1),
    Student("t1_input_transformer", "input transformers rewrite test cells into a pass",
            b_input_transformer, 1),
    Student("t1_ast_transformer", "AST transformer drops checks.*/grading.* calls",
            b_ast_transformer, 1),
    Student("t1_event_hooks", "post_run_cell hook prints a pass and zeroes results",
            b_event_hooks, 1),
    Student("t1_custom_exc", "set_custom_exc silences every exception", b_custom_exc, 1),
    Student("t1_showtraceback", "showtraceback patched: no error output ever",
            b_showtraceback, 1),
    Student("t1_forge_results", "last cell forges failed results: zero gradients and tables",
            b_forge_results, 1),
    Student("t1_patch_check_internals", "patch the gradient checks' kernel-side run",
            b_patch_check_internals, 1),
    Student("t1_shadow_numpy", "ships numpy.py and sitecustomize.py", b_shadow_numpy, 1,
            flags=F({"shadowing_module"})),
    Student("t1_shadow_rnn_course", "ships rnn_course/ and autograder/ packages",
            b_shadow_rnn_course, 1, flags=F({"shadowing_module"})),
    Student("t1_sys_modules", "plants fakes in sys.modules (grading, checks, autograder)",
            b_sys_modules, 1),
    # 2. reaching beyond the submission
    Student("t2_read_course", "reads source/, gradebook, secret, grader modules, reference",
            b_read_course, 2, report=True),
    Student("t2_import_reference", "imports autograder.reference by every path",
            b_import_reference, 2, report=True),
    Student("t2_other_students", "walks the file system for others' notebooks and results",
            b_other_students, 2, report=True),
    Student("t2_secrets", "reads the secret file, env and every /proc/*/environ",
            b_secrets, 2, report=True),
    Student("t2_write_outside", "writes course, gradebook, repo, venv, host /tmp",
            b_write_outside, 2, report=True),
    Student("t2_network", "tcp/udp to the test's listeners on loopback", b_network, 2,
            report=True),
    Student("t2_kill_others", "SIGKILLs every other kernel it can see", b_kill_others, 2,
            report=True),
    Student("t2_kill_others_neighbour", "none (honest_correct next to t2_kill_others)",
            b_honest_correct, control="honest_correct"),
    Student("t2_relay_socket_swap", "its ipc sockets swapped for links to host sockets, "
            "heartbeat ended", b_relay_socket_swap, 2, control="honest_wrong"),
    # 3. exhausting resources
    Student("t3_infinite_loop", "while True: pass", b_infinite_loop, 3, flags=F({"timeout"})),
    Student("t3_infinite_loop_neighbour", "none (honest_correct next to the loop)",
            b_honest_correct, control="honest_correct"),
    Student("t3_sleep_forever", "time.sleep(10**6)", b_sleep_forever, 3, flags=F({"timeout"})),
    Student("t3_memory_bomb", "allocates 64 MiB blocks up to 6 GiB", b_memory_bomb, 3,
            flags=F({"memory_limit"})),
    Student("t3_memory_bomb_neighbour", "none (honest_correct next to the memory bomb)",
            b_honest_correct, control="honest_correct"),
    Student("t3_memory_children", "3 child processes hold 1 GiB each", b_memory_children, 3),
    Student("t3_shm_fill", "writes 1 GiB into /dev/shm and /dev (memory-backed)", b_shm_fill, 3),
    Student("t3_fork_bomb", "forks up to 400 sleeping children", b_fork_bomb, 3,
            flags=F({"process_limit"})),
    Student("t3_fork_bomb_neighbour", "none (honest_correct next to the fork bomb)",
            b_honest_correct, control="honest_correct"),
    Student("t3_output_flood", "prints 100 MB", b_output_flood, 3,
            flags=F({"output_truncated"})),
    Student("t3_output_flood_neighbour", "none (honest_correct next to the flood)",
            b_honest_correct, control="honest_correct"),
    Student("t3_huge_message", "one kernel message: a 200 MB buffer 12 times (2.4 GB)",
            b_huge_message, 3, flags=F({"output_truncated"})),
    Student("t3_huge_message_neighbour", "none (honest_correct next to the huge message)",
            b_honest_correct, control="honest_correct"),
    Student("t3_kill_kernel", "SIGKILLs its own kernel after the tests", b_kill_kernel, 3,
            flags=F({"kernel_died"})),
    Student("t3_disk_fill", "writes 8 x 60 MiB files in its scratch folder", b_disk_fill, 3),
    Student("t3_runtime_fill", "writes 1.2 GB into its runtime folder (connection file's)",
            b_runtime_fill, 3, control="honest_wrong"),
    # 4. malformed submissions
    Student("t4_invalid_json", "truncated JSON", b_invalid_json, 4,
            flags=F({"invalid_notebook"}), zero=True),
    Student("t4_empty_file", "an empty file", b_empty_file, 4,
            flags=F({"invalid_notebook"}), zero=True),
    Student("t4_not_a_notebook", 'JSON, but {"hello": "world"}', b_not_a_notebook, 4,
            flags=F({"invalid_notebook"}), zero=True),
    Student("t4_renamed", "notebook saved as 'rnn_cell (1).ipynb'", b_renamed, 4,
            flags=F({"renamed_notebook"}), control="honest_wrong"),
    Student("t4_missing", "no notebook at all", b_missing, 4,
            flags=F({"missing_notebook"}), zero=True),
    Student("t4_deleted_tests", "every test cell deleted", b_deleted_tests, 4,
            flags=F({"tampered_cells_restored"}), control="honest_wrong"),
    Student("t4_edited_tests", "every test cell replaced by a print", b_edited_tests, 4,
            control="honest_wrong"),
    Student("t4_tests_to_markdown", "every test cell turned into markdown",
            b_tests_to_markdown, 4, flags=F({"tampered_cells_restored"})),
    Student("t4_duplicated_tests", "every test cell preceded by a forged twin (same id)",
            b_duplicated_tests, 4, flags=F({"duplicate_grade_id"})),
    Student("t4_points_1000", "test cells claim 1000 points", b_points_1000, 4,
            control="honest_wrong"),
    Student("t4_flags_flipped", "solutions marked graded (1000 pts), tests marked ungraded",
            b_flags_flipped, 4),
    Student("t4_grade_ids_changed", "test cells renamed and replaced by a print",
            b_grade_ids_changed, 4, flags=F({"unknown_grade_id"})),
    Student("t4_kernelspec", "kernelspec says bash", b_kernelspec, 4, control="honest_wrong"),
    Student("t4_too_large", "a 130 MB output in the notebook", b_too_large, 4,
            flags=F({"too_large"}), zero=True),
    Student("t4_many_cells", "100,000 empty cells (7 MB)", b_many_cells, 4,
            flags=F({"too_large"}), zero=True),
    Student("t4_deep_json", "metadata nested 900 levels deep", b_deep_json, 4,
            flags=F({"too_large"}), zero=True),
    Student("t4_bad_encodings", "a lone surrogate in the JSON, a file name and text not UTF-8",
            b_bad_encodings, 4, control="honest_wrong"),
    Student("t6_active_outputs", "outputs a script, onerror, javascript: link, widget view",
            b_active_outputs, 6, control="honest_wrong"),
    Student("t4_symlinks", "symlinks to source, the secret, another student, autograder/",
            b_symlinks, 4, flags=F({"unsafe_file"}), report=True),
    Student("t4_symlinked_notebook", "the notebook is a symlink to honest_correct's",
            b_symlinked_notebook, 4, zero=True),
    Student("t4_hardlink_course", "a hard link to the instructor's notebook",
            b_hardlink_course, 4, flags=F({"unsafe_file"}), zero=True),
    Student("t4_linked_student", "submitted/<student> a symlink to honest_correct's folder",
            b_linked_student, 4, flags=F({"unsafe_file"}), zero=True),
    Student("t4_linked_submission", "submitted/<student>/rnn_cell a symlink to "
            "honest_correct's", b_linked_submission, 4, flags=F({"unsafe_file"}), zero=True),
    # 5. hidden tests and inputs; public answers replayed
    Student("t5_read_grading_dir", "before the tests: lists and reads .grading/ and scratch",
            b_read_grading_dir, 5),
    Student("t5_history_after", "after the tests: prints In, Out, _i*, history, linecache",
            b_history_after, 5),
    Student("t5_replay_public", "replays the public answers of rnn_cell's visible checks",
            b_replay_public, 5),
]
BY_ID = {s.id: s for s in CLASS}
CONTROLS = ("honest_correct", "honest_wrong")


# --------------------------------------------------------------------------- #
# Course, listeners, fingerprints
# --------------------------------------------------------------------------- #
def make_course(root: Path) -> Path:
    """A released copy of the course with only rnn_cell, a secret file and a short timeout."""
    root.mkdir(parents=True)
    config = (REPO / "nbgrader_config.py").read_text()
    (root / "nbgrader_config.py").write_text(config + f"\nc.Execute.timeout = {TIMEOUT}\n")
    shutil.copytree(REPO / "source" / A, root / "source" / A)
    env = _clean_env(nbgrader_env())
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", A,
                           "--force", "--log-level=ERROR"], cwd=root, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (root / ".grader_secret").write_text(FILE_SECRET)
    (root / ".grader_secret").chmod(0o600)
    return root


def _clean_env(env: dict) -> dict:
    for var in [v for v in env if v.startswith("RNN_COURSE_")]:
        env.pop(var)
    return env


def tree_digest(*roots: Path) -> dict[str, str]:
    """path -> sha256 of content, mode and link target, for every entry under ``roots``."""
    out = {}
    for root in roots:
        if not root.exists():
            out[str(root)] = "absent"
            continue
        paths = [root] if root.is_file() else [root, *sorted(root.rglob("*"))]
        for path in paths:
            st = path.lstat()
            h = hashlib.sha256(f"{st.st_mode:o}".encode())
            if path.is_symlink():
                h.update(os.readlink(path).encode())
            elif path.is_file():
                h.update(path.read_bytes())
            out[str(path)] = h.hexdigest()
    return out


def files_containing(marker: str, *roots: Path, limit_bytes=200 * 2**20) -> list[str]:
    """Files under ``roots`` whose name or content contains ``marker``."""
    hits = []
    needle = marker.encode()
    for root in roots:
        if not root.exists():
            continue
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                if marker in name:
                    hits.append(path)
                    continue
                try:
                    if os.path.islink(path) or os.path.getsize(path) > limit_bytes:
                        continue
                    with open(path, "rb") as fh:
                        if needle in fh.read():
                            hits.append(path)
                except OSError:
                    continue
    return hits


def processes_named(comm: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == comm:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def kernel_reports(nb_path: Path) -> dict:
    """Every ``HOSTILE-REPORT`` line printed in an executed notebook, merged."""
    merged = {}
    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:
        return merged
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                for line in str(out.get("text", "")).splitlines():
                    if line.startswith(REPORT_TAG):
                        try:
                            merged.update(json.loads(line[len(REPORT_TAG):]))
                        except ValueError:
                            pass
    return merged


@dataclasses.dataclass
class Ctx:
    course: Path
    release_nb: object
    source_nb: object
    subs: dict


@dataclasses.dataclass
class Outcome:
    """Everything the assertions need, gathered once around the batch."""

    course: Path
    results: dict
    alone: dict
    reports: dict
    before: dict
    after: dict
    tcp: int
    udp: int
    unix: int
    seconds: float
    leftovers: list
    marker_hits: list
    report_obj: object


def _grade(course, workers):
    from autograder.pipeline.coordinator.assignment import grade_assignment

    return grade_assignment(course, A, workers=workers, progress=False)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Build the class, grade the controls alone, then the whole class in one batch."""
    base = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("RNN_COURSE_")]:
            mp.delenv(var)
        # As a grading service would: the secret in the grader's environment.
        mp.setenv("RNN_COURSE_SECRET", ENV_SECRET)

        alone_course = make_course(base / "alone")
        course = make_course(base / "course")
        # sockets of the host: root's only (0600 in a 0700 folder), and anyone's
        sockets = {"ROOT_SOCK": (base / "root-only", 0o700, 0o600),
                   "WORLD_SOCK": (base / "anyone", 0o755, 0o666)}
        for folder, folder_mode, _ in sockets.values():
            folder.mkdir()
            folder.chmod(folder_mode)
        with LoopbackListener() as tcp, LoopbackListener(udp=True) as udp, \
                LoopbackListener(path=str(sockets["ROOT_SOCK"][0] / "s"),
                                 mode=sockets["ROOT_SOCK"][2]) as root_sock, \
                LoopbackListener(path=str(sockets["WORLD_SOCK"][0] / "s"),
                                 mode=sockets["WORLD_SOCK"][2]) as world_sock:
            subs = {"COURSE": str(course), "REPO": str(REPO), "SITE": SITE, "TAG": TAG,
                    "PORT": str(tcp.port), "UDP_PORT": str(udp.port),
                    "REPORT_TAG": REPORT_TAG, "FORK_NAME": FORK_NAME,
                    **{name: str(folder / "s") for name, (folder, _, _) in sockets.items()}}
            for root in (alone_course, course):
                ctx = Ctx(root, nbformat.read(root / "release" / A / NB, 4),
                          nbformat.read(root / "source" / A / NB, 4), subs)
                for student in CLASS if root is course else [BY_ID[c] for c in CONTROLS]:
                    student.build(ctx, student.id)

            alone = {r.student: r for r in _grade(alone_course, 2).results}
            watched = [course / "nbgrader_config.py", course / ".grader_secret",
                       course / "source", course / "release", course / "submitted"]
            before = tree_digest(*watched)
            started = time.monotonic()
            report = _grade(course, 2)
            seconds = time.monotonic() - started
            time.sleep(0.5)  # a late connection still gets counted
            after = tree_digest(*watched)
            tcp_count, udp_count = tcp.connections, udp.connections
            unix_count = root_sock.connections + world_sock.connections
        leftovers = processes_named(FORK_NAME)
        for pid in leftovers:  # recorded for the assertion; the host is cleaned up anyway
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        hits = files_containing(MARKER, course, REPO / "autograder", REPO / "rnn_course",
                                Path(SITE) / f"zz_pwned_{TAG}.pth")
        hits += [p for p in (f"/tmp/pwned-{TAG}.txt", f"/var/tmp/pwned-{TAG}.txt",
                             f"/dev/shm/pwned-{TAG}.txt", f"/root/pwned-{TAG}.txt")
                 if os.path.exists(p)]
    results = {r.student: r for r in report.results}
    reports = {s.id: kernel_reports(Path(report.autograded_dir) / s.id / A / NB) for s in CLASS}
    outcome = Outcome(course, results, alone, reports, before, after, tcp_count, udp_count,
                      unix_count, seconds, leftovers, hits, report)
    _write_table(outcome)
    return outcome


def _write_table(o: Outcome) -> None:
    lines = [f"{'student':<28} {'threat':<6} {'score':>9}  {'flags':<40} {'cpu s':>6} "
             f"{'MiB':>5}  attack"]
    for s in CLASS:
        r = o.results.get(s.id)
        score = f"{r.score:g}/{r.max_score:g}" if r else "-"
        flags = ",".join(r.flags) if r else "NOT GRADED"
        cpu = f"{r.usage['cpu_seconds']:.1f}" if r and r.usage else "-"
        peak = f"{r.usage['peak_rss_mib']:.0f}" if r and r.usage else "-"
        lines.append(f"{s.id:<28} {s.threat or '-':<6} {score:>9}  {flags:<40} {cpu:>6} "
                     f"{peak:>5}  {s.attack}")
    lines.append(f"batch of {len(CLASS)} graded in {o.seconds:.0f} s with 2 workers; "
                 f"tcp connections {o.tcp}, udp datagrams {o.udp}, "
                 f"host unix socket connections {o.unix}")
    text = "\n".join(lines)
    target = os.environ.get("RNN_HOSTILE_TABLE")
    if target:
        Path(target).write_text(text + "\n")
    print("\n" + text)


# --------------------------------------------------------------------------- #
# The assertions
# --------------------------------------------------------------------------- #
def test_every_student_was_graded(graded):
    assert sorted(graded.results) == sorted(s.id for s in CLASS)


def test_controls_are_meaningful(graded):
    right, wrong = graded.results["honest_correct"], graded.results["honest_wrong"]
    assert right.max_score > 0 and right.score == right.max_score
    assert 0 < wrong.score < wrong.max_score == right.max_score
    assert right.flags == [] and wrong.flags == []


@pytest.mark.parametrize("control", CONTROLS)
def test_controls_grade_as_when_graded_alone(graded, control):
    batch, alone = graded.results[control], graded.alone[control]
    assert (batch.score, batch.max_score, batch.flags) == (
        alone.score, alone.max_score, alone.flags)


def _params(keep):
    """pytest params of the students ``keep`` selects."""
    for s in CLASS:
        if keep(s):
            yield pytest.param(s.id, id=s.id)


@pytest.mark.parametrize("student", list(_params(lambda s: s.control)))
def test_equal_to_its_control(graded, student):
    got, want = graded.results[student], graded.results[BY_ID[student].control]
    assert (got.score, got.max_score) == (want.score, want.max_score), got


@pytest.mark.parametrize("student", list(_params(lambda s: s.threat)))
def test_hostile_never_beats_honest_wrong(graded, student):
    spec, got = BY_ID[student], graded.results[student]
    honest = graded.results["honest_wrong"]
    assert got.max_score == honest.max_score, "the maximum is the instructor's"
    assert got.score <= honest.score, (student, got.score, honest.score, graded.reports[student])
    if spec.zero:
        assert got.score == 0
    missing = spec.flags - set(got.flags)
    assert not missing, f"{student}: flags {got.flags}, missing {sorted(missing)}"
    assert "grader_error" not in got.flags


@pytest.mark.parametrize("student", list(_params(lambda s: s.report)))
def test_attempts_beyond_the_submission_were_blocked(graded, student):
    report = graded.reports[student]
    assert report, f"{student} printed no report (did its cell run?)"
    succeeded = {k: v for k, v in report.items()
                 if not k.startswith("_") and str(v).startswith("SUCCEEDED")}
    assert not succeeded, succeeded


def test_nothing_outside_the_scratch_copies_changed(graded):
    changed = sorted(k for k in set(graded.before) | set(graded.after)
                     if graded.before.get(k) != graded.after.get(k))
    assert not changed, changed[:20]


def test_no_marker_written_anywhere(graded):
    assert graded.marker_hits == []


def test_gradebook_holds_only_the_class(graded):
    import sqlite3

    con = sqlite3.connect(graded.course / "gradebook.db")
    try:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        students = {r[0] for r in con.execute("select id from student")}
        dump = "\n".join(con.iterdump())
    finally:
        con.close()
    assert not [t for t in tables if "pwned" in t]
    assert students <= {s.id for s in CLASS}
    assert MARKER not in dump


def test_no_loopback_connection(graded):
    assert graded.tcp == 0
    assert graded.udp == 0


def test_no_connection_to_a_host_socket(graded):
    """t2_relay_socket_swap's links lead there: nothing acting for a kernel followed them."""
    assert graded.unix == 0


def test_the_runtime_folder_is_bounded(graded):
    from autograder.sandbox.scratch import RUNTIME_BYTES

    report = graded.reports["t3_runtime_fill"]
    assert report.get("_runtime stopped by") == "OSError", report
    assert report["_runtime bytes written"] <= RUNTIME_BYTES, report


def test_linked_folders_are_recorded_under_their_own_name_with_a_reason(graded):
    import sqlite3

    con = sqlite3.connect(graded.course / "gradebook.db")
    try:
        dump = "\n".join(con.iterdump())
    finally:
        con.close()
    for student, reason in (
            ("t4_linked_student", "the student folder t4_linked_student is a symbolic link"),
            ("t4_linked_submission", f"the submission folder {A} is a symbolic link")):
        assert graded.results[student].score == 0 and "unsafe_file" in graded.results[student].flags
        assert f"{reason}: not graded" in dump, student


def test_secrets_never_reach_outputs(graded):
    leaked = files_containing(ENV_SECRET, graded.course / "autograded",
                              graded.course / "feedback")
    leaked += files_containing(FILE_SECRET, graded.course / "autograded",
                               graded.course / "feedback")
    assert leaked == []


def test_no_forked_process_outlives_grading(graded):
    assert graded.leftovers == []


def test_memory_backed_files_are_capped(graded):
    """bubblewrap's /dev is a tmpfs of half the RAM: it must not be writable storage."""
    report = graded.reports["t3_shm_fill"]
    assert report, "t3_shm_fill printed no report"
    for where in ("/dev/shm", "/dev"):
        assert report[f"_{where} MiB written"] <= 300, report


def test_output_flood_was_capped(graded):
    nb_path = Path(graded.report_obj.autograded_dir) / "t3_output_flood" / A / NB
    assert nb_path.stat().st_size < 10 * 2**20
    for html in (graded.course / "feedback" / "t3_output_flood").rglob("*.html"):
        assert html.stat().st_size < 20 * 2**20


# --------------------------------------------------------------------------- #
# Hidden tests and inputs, public answers (issue 11)
# --------------------------------------------------------------------------- #
LEAK_SEEKERS = ("t5_read_grading_dir", "t5_history_after")


def hidden_source_lines(source_nb) -> list[str]:
    """Every line of the hidden-test blocks of the instructor's notebook, delimiters included."""
    lines, inside = [], False
    for cell in source_nb.cells:
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            if inside and line.strip():
                lines.append(line.strip())
            if "END HIDDEN TESTS" in line:
                inside = False
    return lines


def hidden_input_needles(course: Path, student: str) -> list[str]:
    """The first digits of every non-integer value of the hidden inputs drawn for ``student``."""
    import numpy as np

    from autograder.course import Course
    from autograder.pipeline.coordinator.gradebook import CourseGradebook
    from autograder.pipeline.worker import verify
    from autograder.protocol.secrets import submission_secret
    from rnn_course import checks

    info = Course(course)
    digest = CourseGradebook(info.db_url, info.course_id).recorded(A)[student].digest
    secret = submission_secret(ENV_SECRET.encode(), A, student, digest)
    needles = set()
    for check in checks.assignment_checks(A).values():
        if check.hidden:
            for value in verify.drawn_inputs(check, secret, A, student).values():
                for v in np.abs(np.asarray(value, dtype=float)).ravel():
                    if 1e-3 < v and abs(v - round(v)) > 1e-3:
                        needles.add(repr(float(v))[:9])
    return sorted(needles)


def student_visible_text(graded, student) -> str:
    """The feedback HTML (tags stripped, entities decoded) and every output of the
    autograded notebook: what the student, or anyone shown their work, can read."""
    import html
    import re

    parts = []
    for page in (graded.course / "feedback" / student).rglob("*.html"):
        body = re.sub(r"<style.*?</style>|<script.*?</script>", "", page.read_text(), flags=re.S)
        parts.append(html.unescape(re.sub(r"<[^>]+>", "", body)))
    nb = nbformat.read(Path(graded.report_obj.autograded_dir) / student / A / NB, 4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(json.dumps(out, ensure_ascii=False))
            parts.append(str(out.get("text", "")))
            parts += [str(v) for v in out.get("data", {}).values()]
    return "\n".join(parts)


@pytest.mark.parametrize("student", LEAK_SEEKERS)
def test_hidden_code_and_inputs_never_reach_the_student(graded, student):
    assert graded.reports[student], f"{student} printed no report (did its cell run?)"
    text = student_visible_text(graded, student)
    source = nbformat.read(graded.course / "source" / A / NB, 4)
    lines = hidden_source_lines(source)
    assert len(lines) >= 6  # three hidden blocks: the test can fail
    leaked = [line for line in lines if line in text]
    assert not leaked, leaked
    needles = hidden_input_needles(graded.course, student)
    assert len(needles) > 20
    leaked = [n for n in needles if n in text]
    assert not leaked, leaked


def test_no_graded_input_is_on_disk_between_graded_cells(graded):
    report = graded.reports["t5_read_grading_dir"]
    assert report["_shared"], report  # the kernel knew where the shared folder is
    assert report["_files"] == [], report


def test_replayed_public_answers_pass_in_jupyter_but_earn_nothing(graded):
    """The replay beats honest_wrong on the public inputs (so the attack is real), yet
    its grade is no better (test_hostile_never_beats_honest_wrong)."""
    report = graded.reports["t5_replay_public"]
    assert report.get("_table", 0) > 0, report
    assert "rnn_step_forward_bias" in report["_public_passed"], report
    got, honest = graded.results["t5_replay_public"], graded.results["honest_wrong"]
    assert got.score <= honest.score


def test_the_graders_own_cost_per_submission_is_bounded(graded):
    """The worker's CPU and peak memory for every student, hostile or not, stay under the
    bounds docs/security.md states (budget.WORKER_BOUNDS)."""
    from autograder.pipeline.worker.budget import WORKER_BOUNDS

    over = {sid: r.usage for sid, r in graded.results.items()
            if r.usage and (r.usage["cpu_seconds"] > WORKER_BOUNDS["cpu_seconds"]
                            or r.usage["peak_rss_mib"] > WORKER_BOUNDS["peak_rss_mib"])}
    assert not over, over
    measured = [r.usage for r in graded.results.values() if r.usage]
    assert len(measured) >= len(CLASS) - 8  # the precheck's rejects never reach a worker


def test_no_active_student_output_reaches_a_page(graded):
    """What the student's cells displayed is stored and shown inert: no script of theirs,
    no event handler, no javascript: link, no widget view (tests/test_sanitize.py proves the
    same in chromium)."""
    import re

    from autograder.pipeline.worker.preprocessors.sanitize_outputs import SAFE_MIME, SANITIZED_MIME

    nb_path = Path(graded.report_obj.autograded_dir) / "t6_active_outputs" / A / NB
    stored = nbformat.read(nb_path, 4)
    kinds = {kind for c in stored.cells if c.cell_type == "code" for o in c.outputs
             for kind in o.get("data", {})}
    assert kinds and kinds <= set(SAFE_MIME) | set(SANITIZED_MIME), kinds
    html = [o.data["text/html"] for c in stored.cells if c.cell_type == "code"
            for o in c.outputs if "text/html" in o.get("data", {})]
    assert any(">link</a>" in h for h in html), html  # it ran; what is left is inert
    outputs = json.dumps([c.outputs for c in stored.cells if c.cell_type == "code"])
    page = (graded.course / "feedback" / "t6_active_outputs" / A / NB.replace(
        ".ipynb", ".html")).read_text()
    for text in (outputs, page):  # real tags only: the cell's source shows escaped
        assert not re.search(r"<script[^>]*>[^<]*" + ACTIVE, text)
        assert not re.search(r"<[a-z]+[^>]*\bonerror\s*=", text, re.I)
        assert not re.search(r"<a[^>]*href=[\"']?\s*javascript:", text, re.I)
