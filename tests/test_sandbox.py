"""The sandbox around student kernels: isolation, limits, outcome flags.

Every test runs real notebooks in real bubblewrap sandboxes (about a second
each).  When the suite runs as root, kernels run as uid 65534; the non-root
grader path is exercised by running a grader script as 65534 in a subprocess.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from other_accounts import as_account
from traitlets.config import Config

import autograder
import rnn_course
from autograder.sandbox import (
    CPU_LIMIT,
    DISK_LIMIT,
    KERNEL_DIED,
    MEMORY_LIMIT,
    OUTPUT_TRUNCATED,
    PROCESS_LIMIT,
    SANDBOX_HOME,
    STOPPED_ENAME,
    TIMEOUT,
    TRUNCATION_NOTICE,
    Limits,
    SandboxError,
    cgroups,
    execute_notebook,
    sandbox_available,
    scratch,
    uids,
)
from autograder.sandbox.bwrap import SANDBOX_LIB, SANDBOX_VENV, Mount, SandboxPlan, build_command
from autograder.sandbox.execute import payload_size, shrink_error
from autograder.sandbox.stale import sweep_runtime

COURSE_ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0
POOL = uids.pool_accounts()  # rnn-sbx-NN, created by `make setup` when root
# the uids a kernel may run as: a leased pool account (or nobody, when none is free)
KERNEL_UIDS = ({u for u, _ in POOL} | {65534}) if IS_ROOT else {os.geteuid()}


# --------------------------------------------------------------------------- helpers
def run(scratch: Path, *sources: str, limits: Limits | None = None, **kwargs):
    """Execute a notebook made of ``sources`` with ``scratch`` as its folder."""
    scratch.mkdir(parents=True, exist_ok=True)
    nb = new_notebook(cells=[new_code_cell(src) for src in sources])
    started = time.monotonic()
    nb, flags = execute_notebook(nb, str(scratch), limits or Limits(), **kwargs)
    return nb, flags, time.monotonic() - started


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def enames(cell) -> list[str]:
    return [o.ename for o in cell.outputs if o.output_type == "error"]


def report(cell) -> dict:
    """The JSON a probe cell printed on its last stdout line."""
    return json.loads(stdout(cell).strip().splitlines()[-1])


def host_processes_with(marker: str) -> list[str]:
    """Command lines of host processes that contain ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(cmdline.decode(errors="replace"))
    return found


# --------------------------------------------------------------------------- no kernel
def test_sandbox_is_available_here():
    ok, reason = sandbox_available()
    assert ok, reason
    assert "\n" not in reason


def test_command_line_has_every_isolation_option():
    plan = SandboxPlan(
        mounts=[Mount("/srv/scratch", SANDBOX_HOME, writable=True)],
        env={"HOME": SANDBOX_HOME},
        cwd=SANDBOX_HOME,
        tmp_bytes=1234,
    )
    argv = build_command(plan, ["python", "-c", "pass"])
    for option in (
        "--unshare-user",
        "--disable-userns",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert option in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    before_command = argv[: argv.index("--")]
    assert before_command[-4:-2] == ["--remount-ro", "/"], "freeze the root after the last mount"
    assert ["--remount-ro", "/dev"] == argv[argv.index("/dev") + 1 : argv.index("/dev") + 3]
    assert argv[argv.index("--size") + 1 : argv.index("--size") + 2] == ["1234"]
    assert "/etc" not in argv, "only chosen /etc files are bound, not /etc"

    root_plan = SandboxPlan(
        mounts=plan.mounts,
        env={},
        cwd=SANDBOX_HOME,
        tmp_bytes=1,
        drop_to=(65534, 65534),
        stage_dir="/run/x/stage",
    )
    argv = build_command(root_plan, ["true"])
    assert argv[:2] == ["unshare", "--mount"]
    setpriv = argv[argv.index("setpriv") :]
    assert "--reuid=65534" in setpriv and "--no-new-privs" in setpriv
    assert "--bounding-set=-all" in setpriv
    # the inner (unprivileged) sandbox binds the staged copy, never the host path
    inner = setpriv[setpriv.index("bwrap") :]
    assert "/srv/scratch" not in inner and "/run/x/stage/0" in inner
    assert "/srv/scratch" in argv[: argv.index("setpriv")], "staged as root, before the drop"


def test_output_accounting_helpers():
    assert payload_size({"text": "x" * 1000}) >= 1000
    nested: list = []
    for _ in range(100_000):  # deeper than the recursion limit
        nested = [nested]
    assert payload_size(nested) > 0
    assert payload_size({"data": "y" * 10**6}, limit=100) > 100
    content = {"ename": "E" * 1000, "evalue": "v" * 10**6, "traceback": ["t" * 100] * 10**4}
    shrink_error(content, 2000)
    assert len(content["evalue"]) < 2100
    assert sum(len(line) for line in content["traceback"]) < 4000
    assert len(content["ename"]) < 300


# --------------------------------------------------------------------------- isolation
@pytest.mark.slow
def test_runs_a_notebook_and_keeps_outputs_and_errors(tmp_path):
    nb, flags, _ = run(tmp_path / "s", "print(6 * 7)", "1 / 0", "x = 3\nx + 1")
    assert flags == []
    assert stdout(nb.cells[0]) == "42\n"
    assert enames(nb.cells[1]) == ["ZeroDivisionError"]
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == "4"
    assert [c.execution_count for c in nb.cells] == [1, 2, 3]


def test_kernels_load_the_student_packages_bytecode_and_no_debugger(tmp_path):
    """What a grading kernel need not do: compile the course package, import debugpy."""
    from autograder.sandbox import compile_student_packages

    assert compile_student_packages() == [str(Path(rnn_course.__file__).resolve().parent)]
    nb, flags, _ = run(tmp_path / "s", textwrap.dedent("""
        import importlib.util, json, os, sys
        import rnn_course.checks.rnn_cell as m
        print(json.dumps({"cached": os.path.exists(m.__cached__),
                          "debugpy": importlib.util.find_spec("debugpy.server") is not None,
                          "ipykernel": sys.modules["ipykernel.debugger"]._is_debugpy_available}))
    """))
    assert flags == []
    assert report(nb.cells[0]) == {"cached": True, "debugpy": False, "ipykernel": False}


def test_only_the_scratch_folder_is_writable(tmp_path):
    scratch = tmp_path / "scratch"
    marker = f"rnn-sbx-test-{uuid.uuid4().hex}"
    targets = {
        "scratch": "mine.txt",
        "tmp": f"/tmp/{marker}",
        "course_root": str(COURSE_ROOT / marker),
        "etc": f"/etc/{marker}",
        "root": f"/{marker}",
        "python": f"{SANDBOX_VENV}/{marker}",
        "usr": f"/usr/{marker}",
        "home_dir": f"/home/{marker}",
        "dev": f"/dev/{marker}",
        "dev_shm": f"/dev/shm/{marker}",
        "dev_null": "/dev/null",
    }
    probe = textwrap.dedent(
        f"""
        import json, os
        def can_write(path):
            try:
                with open(path, "w") as fh:
                    fh.write("x")
                return True
            except OSError:
                return False
        result = {{name: can_write(path) for name, path in {targets!r}.items()}}
        result["cwd"] = os.getcwd()
        result["home"] = os.environ.get("HOME")
        result["uid"] = os.getuid()
        print(json.dumps(result))
        """
    )
    nb, flags, _ = run(scratch, probe)
    assert flags == []
    got = report(nb.cells[0])
    assert got["cwd"] == SANDBOX_HOME and got["home"] == SANDBOX_HOME
    assert got["scratch"] and got["tmp"] and got["dev_null"], got
    for name in ("course_root", "etc", "root", "python", "usr", "home_dir", "dev", "dev_shm"):
        assert got[name] is False, f"{name} is writable inside the sandbox"
    # the scratch write is the only one that reached the host
    assert (scratch / "mine.txt").read_text() == "x"
    assert (scratch / "mine.txt").stat().st_uid in KERNEL_UIDS
    assert not Path(f"/tmp/{marker}").exists(), "/tmp is not private"
    assert not (COURSE_ROOT / marker).exists()
    assert got["uid"] in KERNEL_UIDS


@pytest.mark.skipif(not IS_ROOT, reason="the uid switch happens only when the grader is root")
def test_kernel_runs_as_a_pool_account_when_grader_is_root(tmp_path):
    assert POOL, "make setup creates the rnn-sbx-NN accounts when run as root"
    nb, flags, _ = run(
        tmp_path / "s",
        "import os; print(os.getuid(), os.getgid(), os.getgroups())",
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])",
    )
    assert flags == []
    uid, gid = (int(v) for v in stdout(nb.cells[0]).split()[:2])
    assert (uid, gid) in POOL or (uid, gid) == (65534, 65534)
    assert uid != 0
    assert int(stdout(nb.cells[1]), 16) == 0, "the kernel has capabilities"


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="the uid switch happens only when the grader is root")
def test_concurrent_kernels_get_distinct_uids(tmp_path):
    """RLIMIT_NPROC counts per uid: kernels running at the same time must not share one."""
    import concurrent.futures

    probe = "import os, time; time.sleep(3); print(os.getuid())"
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(run, tmp_path / f"s{k}", probe) for k in range(3)]
        results = [f.result() for f in futures]
    seen = [int(stdout(nb.cells[0])) for nb, flags, _ in results]
    assert all(flags == [] for _, flags, _ in results)
    assert len(set(seen)) == 3, seen
    assert set(seen) <= {u for u, _ in POOL}


def test_uid_leases_are_exclusive_and_released(tmp_path):
    """Unit test of the lease itself, with made-up accounts and a private lock folder."""
    accounts = [(5001, 6001), (5002, 6002)]
    lock_dir = str(tmp_path / "locks")
    a = uids.lease(accounts, (65534, 65534), lock_dir, start=0)
    b = uids.lease(accounts, (65534, 65534), lock_dir, start=0)
    assert {(a.uid, a.gid), (b.uid, b.gid)} == set(accounts)
    assert not a.shared and not b.shared
    c = uids.lease(accounts, (65534, 65534), lock_dir, start=0)
    assert (c.uid, c.shared) == (65534, True), "all leased: the shared fallback"
    a.release()
    d = uids.lease(accounts, (65534, 65534), lock_dir, start=0)
    assert (d.uid, d.gid) == accounts[0]
    b.release()
    d.release()
    with pytest.raises(uids.PoolMissing, match="rnn-sbx-"):
        uids.lease([], (65534, 65534), lock_dir)  # no account at all: refused, never shared


def test_root_grader_without_sandbox_accounts_refuses_to_start(monkeypatch):
    """A root grader with no rnn-sbx-* account: `grade` and `serve` refuse in one line
    (coordinator._require_sandbox), instead of running every kernel as uid nobody."""
    from autograder.errors import UsageError
    from autograder.pipeline.coordinator.assignment import _require_sandbox

    monkeypatch.setattr(uids.os, "geteuid", lambda: 0)
    monkeypatch.setattr(uids, "pool_accounts", lambda prefix=uids.POOL_PREFIX: [])
    with pytest.raises(uids.PoolMissing, match="install-system-deps"):
        uids.require_pool()
    if sandbox_available()[0]:
        with pytest.raises(UsageError, match="no sandbox accounts: no rnn-sbx-"):
            _require_sandbox()
    monkeypatch.setattr(uids, "pool_accounts", lambda prefix=uids.POOL_PREFIX: [(5001, 6001)])
    assert uids.pool_missing_reason() is None
    monkeypatch.setattr(uids.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(uids, "pool_accounts", lambda prefix=uids.POOL_PREFIX: [])
    assert uids.pool_missing_reason() is None, "a non-root grader's kernels run as itself"


def test_uid_lock_folder_others_could_tamper_with_is_refused(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o777)
    lock_dir.chmod(0o777)
    with pytest.raises(PermissionError, match="mode 0700"):
        uids.lease([(5001, 6001)], (65534, 65534), str(lock_dir))


def test_cannot_see_course_gradebook_or_other_students(tmp_path, monkeypatch):
    other = tmp_path / "other_student" / "rnn_cell"
    other.mkdir(parents=True)
    (other / "rnn_cell.ipynb").write_text("the other student's answers")
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("grades")
    monkeypatch.setenv("RNN_COURSE_DB_URL", "postgresql://grader:s3cret@db/grades")
    hidden = [
        str(other / "rnn_cell.ipynb"),
        str(other),
        str(gradebook),
        str(COURSE_ROOT),
        str(COURSE_ROOT / "source"),
        str(COURSE_ROOT / "autograder" / "reference.py"),
        str(COURSE_ROOT / "nbgrader_config.py"),
        "/root/.bash_history",
    ]
    probe = textwrap.dedent(
        f"""
        import json, os
        seen = [p for p in {hidden!r} if os.path.exists(p)]
        print(json.dumps({{
            "seen": seen,
            "root": sorted(os.listdir("/")),
            "env": sorted(os.environ),
            "db": os.environ.get("RNN_COURSE_DB_URL"),
            "extra": os.environ.get("RNN_COURSE_GRADING_DIR"),
        }}))
        """
    )
    nb, flags, _ = run(
        tmp_path / "scratch", probe, extra_env={"RNN_COURSE_GRADING_DIR": f"{SANDBOX_HOME}/g"}
    )
    assert flags == []
    got = report(nb.cells[0])
    assert got["seen"] == []
    assert "work" not in got["root"]
    assert got["db"] is None, "the grader's environment leaked into the kernel"
    assert got["extra"] == f"{SANDBOX_HOME}/g"


@pytest.mark.slow
def test_rnn_course_and_numpy_import_but_autograder_does_not(tmp_path):
    nb, flags, _ = run(
        tmp_path / "s",
        "import rnn_course, numpy\nprint(rnn_course.__file__)\nprint(numpy.ones(3).sum())",
        "import autograder",
        "from autograder import reference",
        "import sys\nprint([p for p in sys.path if 'work' in p])",
        "import glob, matplotlib.pyplot\n[font_list] = glob.glob('/tmp/matplotlib/fontlist-*')\n"
        "open(font_list, 'a')",
    )
    assert flags == []
    out = stdout(nb.cells[0]).split()
    assert out[0].startswith(SANDBOX_LIB + "/rnn_course/") and out[1] == "3.0"
    assert enames(nb.cells[1]) == ["ModuleNotFoundError"]
    assert enames(nb.cells[2]) == ["ModuleNotFoundError"]
    assert stdout(nb.cells[3]).strip() == "[]"
    # matplotlib found the shared font list (no rebuild) and may not change it
    assert enames(nb.cells[4]) == ["OSError"]
    assert "building the font cache" not in json.dumps(nb.cells[4].outputs)


def test_hidden_package_installed_in_the_environment_is_masked(tmp_path):
    # autograder is an editable install here (so simply not bound); a regular
    # install would sit in site-packages: tqdm stands in for that case.
    import tqdm

    inside = SANDBOX_VENV + str(Path(tqdm.__file__).parent)[len(sys.prefix) :]
    cfg = Config()
    cfg.SandboxedKernelManager.hidden_packages = ["autograder", "tqdm"]
    nb, flags, _ = run(
        tmp_path / "s",
        f"import os\nprint(os.listdir({inside!r}))",
        "import tqdm\ntqdm.tqdm",
        f"open({inside!r} + '/x.py', 'w')",
        config=cfg,
    )
    assert stdout(nb.cells[0]) == "[]\n"
    assert enames(nb.cells[1]) == ["AttributeError"], "the hidden package's code was importable"
    assert enames(nb.cells[2]) == ["OSError"]


def test_submission_files_cannot_take_over_kernel_start(tmp_path):
    scratch = tmp_path / "s"
    startup = scratch / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-hijack.py").write_text("print('HIJACKED')\n")
    (scratch / "ipykernel_launcher.py").write_text("raise SystemExit(3)\n")
    (scratch / "helper.py").write_text("VALUE = 11\n")
    nb, flags, _ = run(scratch, "import helper\nprint(helper.VALUE)")
    assert flags == []
    assert stdout(nb.cells[0]) == "11\n", "the student's own modules must stay importable"
    assert "HIJACKED" not in json.dumps(nb)


PRELOAD_PROBE = (
    # what the kernel had imported, and which names it had, before any cell
    "import json, sys\n"
    "print(json.dumps({'loaded': [m for m in PRELOAD if m in sys.modules],\n"
    "                  'names': [n for n in ('importlib', 'os', 'cwd', 'path', 'name', 'NAMES')\n"
    "                            if n in globals()]}))",
    # the notebook's own imports, against a submission's numpy.py and matplotlibrc
    "import numpy\nprint(json.dumps({'shadow': getattr(numpy, 'SHADOW', False)}))",
    "import os, matplotlib\n"
    "print(json.dumps({'linewidth': matplotlib.rcParams['lines.linewidth'], 'cwd': os.getcwd()}))",
)


def _preload_probe(folder: Path, files: dict[str, str], config=None, ahead=False):
    """The probe's reports, run in ``folder`` holding ``files`` (handed in after the start)."""
    from autograder.sandbox.execute import start_kernel
    from autograder.sandbox.kernel import PRELOAD_MODULES

    folder.mkdir()
    km = start_kernel(str(folder), Limits(), config=config) if ahead else None
    for name, text in files.items():
        (folder / name).write_text(text)
    sources = [src.replace("PRELOAD", repr(PRELOAD_MODULES)) for src in PRELOAD_PROBE]
    nb = new_notebook(cells=[new_code_cell(src) for src in sources])
    nb, flags = execute_notebook(nb, str(folder), Limits(), config=config, kernel=km)
    return [report(cell) if stdout(cell) else enames(cell) for cell in nb.cells]


SHADOWS = {"numpy.py": "SHADOW = True\n", "matplotlibrc": "lines.linewidth: 7\n"}


@pytest.mark.slow
@pytest.mark.parametrize("ahead", [False, True], ids=["on-demand", "started-ahead"])
def test_preloaded_modules_come_from_the_environment_only(tmp_path, ahead):
    """The kernel imports PRELOAD_MODULES before any cell, binding no name, from the
    Python environment (not a submission's numpy.py; its matplotlibrc not read), the
    same whether it was started ahead of need or on demand."""
    from autograder.sandbox.kernel import PRELOAD_MODULES

    loaded, own_numpy, mpl = _preload_probe(tmp_path / "s", SHADOWS, ahead=ahead)
    assert loaded == {"loaded": list(PRELOAD_MODULES), "names": []}
    assert own_numpy == {"shadow": False}
    assert mpl["linewidth"] == 1.5
    assert mpl["cwd"] != "/", "the kernel works in its scratch folder after the imports"


@pytest.mark.slow
def test_without_preloaded_modules_the_submissions_files_are_read(tmp_path):
    """The control of the test above: with ``preload_modules = []`` the same files win."""
    cfg = Config()
    cfg.SandboxedKernelManager.preload_modules = []
    loaded, own_numpy, _ = _preload_probe(tmp_path / "s", {"numpy.py": SHADOWS["numpy.py"]},
                                          config=cfg)
    assert loaded["loaded"] == [] and own_numpy == {"shadow": True}
    _, _, mpl = _preload_probe(tmp_path / "t", {"matplotlibrc": SHADOWS["matplotlibrc"]},
                               config=cfg)
    assert mpl["linewidth"] == 7


def test_host_loopback_is_unreachable(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    probe = textwrap.dedent(
        f"""
        import json, socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3)
            outcome = "connected"
        except OSError as exc:
            outcome = type(exc).__name__
        print(json.dumps({{"outcome": outcome,
                          "interfaces": [n for _, n in socket.if_nameindex()]}}))
        """
    )
    try:
        nb, flags, _ = run(tmp_path / "s", probe)
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    got = report(nb.cells[0])
    assert got["outcome"] != "connected"
    assert got["interfaces"] == ["lo"]
    assert accepted == [], "the sandbox reached a listener on the host's loopback"


def test_nothing_outlives_the_notebook(tmp_path):
    marker = f"{time.time() % 1000:.6f}"
    # the runtime folder must be reachable by the kernel's uid: not under tmp_path
    runtime = Path(tempfile.mkdtemp(prefix="rnn-sbx-test-rt-"))
    runtime.chmod(0o755)
    cfg = Config()
    cfg.SandboxedKernelManager.runtime_base = str(runtime)
    nb, flags, _ = run(
        tmp_path / "s",
        "import subprocess\n"
        f"p = subprocess.Popen(['sleep', '300{marker}'], start_new_session=True)\n"
        "print(p.pid)",
        config=cfg,
    )
    assert flags == [] and stdout(nb.cells[0]).strip().isdigit()
    deadline = time.monotonic() + 5
    while host_processes_with(f"sleep 300{marker}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert host_processes_with(f"sleep 300{marker}") == []
    assert list(runtime.iterdir()) == [], "the runtime folder (sockets, key) was left behind"
    runtime.rmdir()


@pytest.mark.slow
def test_sandbox_dies_with_the_grader(tmp_path):
    marker = f"{time.time() % 1000:.6f}"
    runtime = Path(tempfile.mkdtemp(prefix="rnn-sbx-test-rt-"))
    runtime.chmod(0o755)
    script = textwrap.dedent(
        f"""
        from nbformat.v4 import new_code_cell, new_notebook
        from traitlets.config import Config
        from autograder.sandbox import execute_notebook
        cfg = Config()
        cfg.SandboxedKernelManager.runtime_base = {str(runtime)!r}
        cell = (
            "import subprocess, time\\n"
            "subprocess.Popen(['sleep', '400{marker}'], start_new_session=True)\\n"
            "while True:\\n    time.sleep(1)"
        )
        execute_notebook(new_notebook(cells=[new_code_cell(cell)]), {str(tmp_path)!r}, config=cfg)
        """
    )
    grader = subprocess.Popen([sys.executable, "-c", script], cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while not host_processes_with(f"sleep 400{marker}"):
            assert time.monotonic() < deadline and grader.poll() is None, "kernel never started"
            time.sleep(0.2)
    finally:
        grader.kill()  # SIGKILL: no clean-up code of the grader runs
        grader.wait()
    deadline = time.monotonic() + 10
    while host_processes_with(f"sleep 400{marker}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert host_processes_with(f"sleep 400{marker}") == [], "the sandbox outlived its grader"
    # the dead grader could not delete its runtime folder nor unmount its
    # scratch tmpfs, nor remove its cgroups: the next grader does
    (leftover,) = runtime.iterdir()
    if IS_ROOT:
        assert scratch.mounts_under(str(leftover)), "the scratch tmpfs was never mounted"
        assert cgroups.default().groups_of(grader.pid), "the kernel had no cgroup"
    sweep_runtime(str(runtime))
    assert not leftover.exists()
    assert scratch.mounts_under(str(runtime)) == []
    cgroups.Cgroups().sweep()  # a new grader process's first sandbox runs this
    assert cgroups.default().groups_of(grader.pid) == []
    runtime.rmdir()


# --------------------------------------------------------------------------- limits and flags
@pytest.mark.slow
def test_memory_bomb_sets_memory_limit_and_kernel_survives(tmp_path):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    nb, flags, _ = run(
        tmp_path / "s",
        "import numpy as np\nbig = np.ones(8 * 10**9 // 8)",
        "data = bytearray(8 * 10**9)",
        "print('alive')",
    )
    assert MEMORY_LIMIT in flags
    assert "MemoryError" in enames(nb.cells[0])[0]
    assert enames(nb.cells[1]) == ["MemoryError"]
    assert stdout(nb.cells[2]) == "alive\n"
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 500


@pytest.mark.slow
def test_fork_bomb_sets_process_limit(tmp_path):
    bomb = textwrap.dedent(
        """
        import os, time
        children = 0
        for _ in range(300):  # bounded: each child sleeps 3 s, then exits
            if os.fork() == 0:
                time.sleep(3)
                os._exit(0)
            children += 1
        """
    )
    limits = Limits(max_processes=32)
    nb, flags, elapsed = run(tmp_path / "s", bomb, "print('alive')", limits=limits)
    assert PROCESS_LIMIT in flags
    assert enames(nb.cells[0]) == ["BlockingIOError"]
    assert elapsed < 30


@pytest.mark.slow
def test_a_broken_sandbox_raises_instead_of_grading(tmp_path):
    cfg = Config()
    cfg.SandboxedKernelManager.bwrap_path = "/nonexistent/bwrap"
    with pytest.raises(SandboxError):
        run(tmp_path / "s", "print(1)", config=cfg)


@pytest.mark.slow
def test_infinite_loop_is_interrupted_at_the_cell_timeout(tmp_path):
    nb, flags, elapsed = run(
        tmp_path / "s", "while True:\n    pass", "print('next')", limits=Limits(cell_timeout=2)
    )
    assert TIMEOUT in flags
    assert enames(nb.cells[0]), "the timed-out cell must show an error"
    assert stdout(nb.cells[1]) == "next\n", "execution goes on after an interrupted cell"
    assert elapsed < 2 + 10


@pytest.mark.slow
def test_loop_that_ignores_interrupts_is_stopped(tmp_path):
    nb, flags, elapsed = run(
        tmp_path / "s",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "print('never')",
        limits=Limits(cell_timeout=2, wall_seconds=60),
    )
    assert TIMEOUT in flags
    assert elapsed < 2 + 4 + 10  # cell timeout + nbclient's iopub wait + start/stop
    assert enames(nb.cells[1]) == [STOPPED_ENAME], "a cell that never ran must not pass"


@pytest.mark.slow
def test_wall_clock_limit_kills_the_notebook(tmp_path):
    nb, flags, elapsed = run(
        tmp_path / "s",
        "import time",
        "for _ in range(600):\n    time.sleep(0.1)",
        "print('never')",
        limits=Limits(cell_timeout=120, wall_seconds=4),
    )
    assert flags == [TIMEOUT]
    assert elapsed < 4 + 6
    assert enames(nb.cells[0]) == []
    assert enames(nb.cells[1]) == [STOPPED_ENAME] and enames(nb.cells[2]) == [STOPPED_ENAME]


@pytest.mark.slow
def test_killed_kernel_sets_kernel_died_and_stops(tmp_path):
    # It also writes what a broken sandbox would print to the real stderr: a
    # student must not pass for an infrastructure failure (which raises).
    suicide = textwrap.dedent(
        """
        import os, sys
        fd = getattr(sys.stderr, "_original_stdstream_copy", None) or 2
        os.write(fd, b"bwrap: Can't mount proc\\nsetpriv: failed\\n")
        os.kill(os.getpid(), 9)
        """
    )
    nb, flags, elapsed = run(tmp_path / "s", "print('before')", suicide, "print('never')")
    assert flags == [KERNEL_DIED]
    assert stdout(nb.cells[0]) == "before\n"
    assert enames(nb.cells[1]) == [STOPPED_ENAME]
    assert enames(nb.cells[2]) == [STOPPED_ENAME] and nb.cells[2].execution_count is None
    assert elapsed < 20


@pytest.mark.slow
def test_cpu_time_limit_sets_cpu_limit(tmp_path):
    nb, flags, elapsed = run(
        tmp_path / "s",
        "while True:\n    pass",
        limits=Limits(cpu_seconds=2, cell_timeout=60),
    )
    assert flags == [CPU_LIMIT]
    assert elapsed < 20


@pytest.mark.slow
def test_huge_print_is_truncated_while_it_arrives(tmp_path):
    nb, flags, _ = run(
        tmp_path / "s",
        "print('x' * 100_000_000)",
        "for i in range(50_000):\n    print('y' * 100)",
        "print('after')",
    )
    assert flags == [OUTPUT_TRUNCATED]
    stored = len(nbformat.writes(nb))
    assert stored < 3_000_000, f"{stored} bytes of output kept"
    assert TRUNCATION_NOTICE in stdout(nb.cells[0])
    assert TRUNCATION_NOTICE in stdout(nb.cells[1])
    assert stdout(nb.cells[2]) == "after\n"


@pytest.mark.slow
def test_message_over_the_size_cap_is_never_read(tmp_path):
    cfg = Config()
    cfg.SandboxedKernelManager.max_message_bytes = 2_000_000
    nb, flags, elapsed = run(tmp_path / "s", "print('z' * 10_000_000)", "print('after')",
                             config=cfg)
    # the relay drops the message; the notebook goes on
    assert flags == [OUTPUT_TRUNCATED]
    assert "z" * 1000 not in json.dumps(nb)
    assert stdout(nb.cells[1]) == "after\n"
    assert elapsed < 30


# One Jupyter message whose frames are each under the cap, all together far over it: the
# same buffer sent N times costs the kernel its size once and the receiver N times.
MANY_FRAMES = """
k = get_ipython().kernel
buf = memoryview(bytearray({mib} * 2**20))
content = {{"data": {{"text/plain": "big"}}, "metadata": {{}}}}
k.session.send(k.iopub_socket, "display_data", content, parent=k.get_parent(),
               buffers=[buf] * {count})
print("sent")
"""


def _peak_rss_mib_during(fn):
    from autograder.pipeline.worker.budget import Usage

    usage = Usage().start()
    out = fn()
    return out, usage.stop()["peak_rss_mib"]


@pytest.mark.slow
@pytest.mark.parametrize("mib, count, goes_on", [
    (8, 12, True),  # 96 MiB: the relay can hold it, and drops it; the notebook goes on
    (12, 100, False),  # 1.2 GiB: more than the relay may hold: its connection to the kernel
])                    # drops (zmq), and the cell stops
def test_a_message_is_bounded_as_a_whole_before_the_grader_holds_it(tmp_path, mib, count,
                                                                    goes_on):
    cfg = Config()
    cfg.SandboxedKernelManager.max_message_bytes = 16 * 2**20  # each frame is under this
    (nb, flags, elapsed), peak = _peak_rss_mib_during(lambda: run(
        tmp_path / "s", MANY_FRAMES.format(mib=mib, count=count), "print('after')",
        config=cfg))
    assert "big" not in json.dumps([o for c in nb.cells for o in c.outputs
                                    if o.output_type == "display_data"])
    if goes_on:
        assert flags == [OUTPUT_TRUNCATED] and stdout(nb.cells[1]) == "after\n"
    else:
        assert flags == [TIMEOUT, OUTPUT_TRUNCATED] and STOPPED_ENAME in enames(nb.cells[1])
    # the grader (this process) never held the message: far under mib * count
    assert peak < 600, f"grader peak {peak} MiB for a {mib * count} MiB message"
    assert elapsed < 40


# The kernel's runtime folder is the kernel's to write: it swaps its socket files for links to
# a socket of the host, then ends its heartbeat, so that a relay that reconnects by path
# would follow the links (it did, as root: 41 connections to a root-only socket).
SWAP_SOCKETS_FOR = """
import glob, os, time
from ipykernel.kernelapp import IPKernelApp
app = IPKernelApp.instance()
run = os.path.dirname(app.connection_file)
swapped = 0
for path in glob.glob(run + "/kernel-ipc-*"):
    os.unlink(path)
    os.symlink({target!r}, path)
    swapped += 1
print("swapped", swapped, flush=True)
time.sleep(1)  # the output is on its way before the heartbeat goes
app.heartbeat.context.term()  # the heartbeat's own context: its thread closes its socket
time.sleep(3)
"""


def relay_ids(km) -> tuple[list[str], list[str], str]:
    """The relay process's Uid and Gid lines (real, effective, saved, fs) and its groups."""
    lines = Path(f"/proc/{km._relay.pid}/status").read_text().splitlines()
    field = {line.split(":")[0]: line.split(":", 1)[1].split() for line in lines}
    return field["Uid"], field["Gid"], " ".join(field["Groups"])


@pytest.mark.slow
@pytest.mark.parametrize("mode", [0o600, 0o666])  # root's only; anyone's (the kernel's uid too)
def test_the_relay_never_follows_a_path_the_kernel_controls(tmp_path, mode):
    """No reconnection (so not to a world-writable socket either), and the kernel's uid."""
    from autograder.commands.demo import LoopbackListener

    host = Path(tempfile.mkdtemp(prefix="rnn-sbx-test-host-"))
    host.chmod(0o700 if mode == 0o600 else 0o755)
    target = host / "listener.sock"
    try:
        with LoopbackListener(path=str(target), mode=mode) as listener:
            nb, flags, elapsed = run(tmp_path / "s", "print('before')",
                                     SWAP_SOCKETS_FOR.format(target=str(target)),
                                     "print('after')")
            time.sleep(0.5)  # a late connection still gets counted
    finally:
        shutil.rmtree(host)
    assert stdout(nb.cells[0]) == "before\n"
    assert stdout(nb.cells[1]) == "swapped 5\n"  # the attack ran as written
    # the heartbeat's connection stays ended; the other channels go on as they were
    assert flags == [] and stdout(nb.cells[2]) == "after\n"
    assert listener.connections == 0, f"{listener.connections} connections to a host socket"
    assert elapsed < 60


def test_the_relay_runs_with_the_kernels_ids_only(tmp_path):
    from autograder.sandbox.execute import discard_kernel, start_kernel

    (tmp_path / "s").mkdir()
    km = start_kernel(str(tmp_path / "s"))
    try:
        uid, gid = km._kernel_ids()
        uids_seen, gids_seen, groups = relay_ids(km)
    finally:
        discard_kernel(km)
    assert uid in KERNEL_UIDS and uids_seen == [str(uid)] * 4 and gids_seen == [str(gid)] * 4
    if IS_ROOT:
        assert groups == "", "the relay kept supplementary groups"


@pytest.mark.skipif(not IS_ROOT, reason="only a root grader can mount the runtime tmpfs")
def test_the_kernels_runtime_folder_is_a_tiny_tmpfs_of_its_own(tmp_path):
    writer = textwrap.dedent(
        """
        import os
        from ipykernel.kernelapp import IPKernelApp
        run = os.path.dirname(IPKernelApp.instance().connection_file)
        try:
            with open(os.path.join(run, "junk.bin"), "wb") as fh:
                fh.write(b"x" * 2**20)
            print("written")
        except OSError as exc:
            print("errno", exc.errno, os.statvfs(run).f_blocks * os.statvfs(run).f_frsize)
        """
    )
    cfg, runtime = private_runtime()
    nb, flags, _ = run(tmp_path / "s", writer, config=cfg)
    assert stdout(nb.cells[0]) == f"errno 28 {scratch.RUNTIME_BYTES}\n"
    assert leftovers(runtime) == [] and list(runtime.iterdir()) == []
    shutil.rmtree(runtime)


FILL_TMP = """
written = 0
try:
    with open("/tmp/fill", "wb") as fh:
        for _ in range(64):
            fh.write(b"x" * 2**20)
            fh.flush()
            written += 1
except OSError as exc:
    print("errno", exc.errno, "MiB", written)
"""
# System V shared memory lives in the sandbox's ipc namespace, no file system: segments
# written then detached are held by no process (no RLIMIT_AS), but they are memory.
FILL_SYSV_SHM = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
size, made = 64 * 2**20, 0
for _ in range(8):  # 512 MiB together
    sid = libc.shmget(0, size, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    addr = libc.shmat(sid, None, 0)
    ctypes.memset(addr, 1, size)
    libc.shmdt(ctypes.c_void_p(addr))
    made += 64
print("MiB", made)
"""


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="only a root grader can make cgroups on this host")
def test_private_tmp_and_ipc_shared_memory_are_bounded(tmp_path):
    limits = Limits(tmp_bytes=8 * 2**20, submission_memory_bytes=SMALL_MEMORY)
    nb, flags, _ = run(tmp_path / "s", FILL_TMP, FILL_SYSV_SHM, "print('after')",
                       limits=limits)
    assert stdout(nb.cells[0]) == "errno 28 MiB 7\n"  # /tmp: its own tmpfs of tmp_bytes
    # System V segments are charged to the submission's memory group: stopped there
    assert flags == [MEMORY_LIMIT] and "MiB 512" not in stdout(nb.cells[1])


# --------------------------------------------------------------------------- whole submission
# Small limits: these tests must stay far from this host's memory.
SMALL_MEMORY = 256 * 1024**2
CHILD_BYTES = 96 * 1024**2  # six of them: well over SMALL_MEMORY, each far under RLIMIT_AS


def leftovers(runtime: Path | None = None) -> list[str]:
    """This grader's sandbox cgroups and scratch mounts that still exist."""
    left = cgroups.default().groups_of(os.getpid())
    return left + (scratch.mounts_under(str(runtime)) if runtime is not None else [])


def private_runtime() -> tuple[Config, Path]:
    """A config whose runtime folder (and so the scratch tmpfs) is a fresh one."""
    runtime = Path(tempfile.mkdtemp(prefix="rnn-sbx-test-rt-"))
    runtime.chmod(0o755)
    cfg = Config()
    cfg.SandboxedKernelManager.runtime_base = str(runtime)
    return cfg, runtime


@pytest.mark.skipif(not IS_ROOT, reason="only a root grader can make cgroups on this host")
def test_cgroups_are_available_on_this_host():
    assert cgroups.default().lost() == {}
    served = {c for place in cgroups.default().places() for c in place.controllers}
    assert served == set(cgroups.CONTROLLERS)


@pytest.mark.slow  # two kernels that hold memory for seconds
@pytest.mark.skipif(not IS_ROOT, reason="only a root grader can make cgroups on this host")
def test_children_together_hit_the_submission_memory_limit_and_a_neighbour_does_not(tmp_path):
    import concurrent.futures

    hog = textwrap.dedent(
        f"""
        import os, time
        kids = []
        for _ in range(6):
            pid = os.fork()
            if pid == 0:
                block = b"x" * {CHILD_BYTES}  # touched: every page is written
                time.sleep(4)
                os._exit(0)
            kids.append(pid)
        print(sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in kids))
        """
    )
    honest = "import numpy as np, time\nx = np.ones((512, 512))\ntime.sleep(3)\nprint(x.sum())"
    cfg, runtime = private_runtime()
    limits = Limits(submission_memory_bytes=SMALL_MEMORY)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        hogged = pool.submit(run, tmp_path / "hog", hog, "print('after')", limits=limits,
                             config=cfg)
        time.sleep(0.5)
        neighbour = pool.submit(run, tmp_path / "n", honest, limits=limits, config=cfg)
        (nb, flags, _), (nb_n, flags_n, _) = hogged.result(), neighbour.result()
    assert MEMORY_LIMIT in flags and KERNEL_DIED not in flags, flags
    out = stdout(nb.cells[0])
    if out:  # the OOM killer took children (else the kernel itself: the cells say so)
        assert "-9" in out, out
    else:
        assert STOPPED_ENAME in enames(nb.cells[1])
    assert flags_n == [] and stdout(nb_n.cells[0]) == f"{512 * 512}.0\n"
    assert leftovers(runtime) == []
    shutil.rmtree(runtime)


@pytest.mark.skipif(not IS_ROOT, reason="only a root grader can make cgroups on this host")
def test_thread_spree_stops_at_the_submission_task_limit(tmp_path):
    # The rlimit is far away: the cgroup stops it.  The student's code catches
    # the refusal, so only the cgroup's counter can tell.
    spree = textwrap.dedent(
        """
        import threading
        stop = threading.Event()
        started = 0
        try:
            for _ in range(200):
                threading.Thread(target=stop.wait, daemon=True).start()
                started += 1
        except RuntimeError as exc:
            print("refused after", started)
        stop.set()
        """
    )
    limits = Limits(submission_tasks=48, max_processes=10_000)
    nb, flags, elapsed = run(tmp_path / "s", spree, "print('alive')", limits=limits)
    assert flags == [PROCESS_LIMIT]
    refused = stdout(nb.cells[0]).split()
    assert refused[:2] == ["refused", "after"] and int(refused[2]) < 48
    assert stdout(nb.cells[1]) == "alive\n"
    assert elapsed < 30
    assert leftovers() == []


@pytest.mark.skipif(not IS_ROOT, reason="the scratch tmpfs needs a root grader")
def test_scratch_disk_is_bounded_and_results_reach_the_host(tmp_path):
    bound = 32 * 1024**2
    writer = textwrap.dedent(
        """
        import os
        chunk = b"x" * (8 * 2**20)
        try:
            for i in range(8):  # 64 MiB, each file under RLIMIT_FSIZE
                with open(f"junk{i}.bin", "wb") as fh:
                    fh.write(chunk)
        except OSError as exc:
            print("errno", exc.errno)
        os.makedirs("results", exist_ok=True)
        """
    )
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "given.txt").write_text("instructor's file")
    cfg, runtime = private_runtime()
    nb, flags, _ = run(folder, writer, "print(open('given.txt').read())", limits=Limits(
        scratch_bytes=bound), config=cfg)
    assert flags == [DISK_LIMIT]
    assert stdout(nb.cells[0]) == "errno 28\n"
    assert stdout(nb.cells[1]) == "instructor's file\n"
    written = sum(p.stat().st_size for p in folder.glob("junk*.bin"))
    assert 16 * 1024**2 < written <= bound, "what the kernel left is back on the host"
    assert (folder / "results").is_dir()
    assert leftovers(runtime) == []
    shutil.rmtree(runtime)


def test_copying_the_scratch_back_never_follows_links_and_stays_bounded(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "deep").mkdir(parents=True)
    (src / "deep" / "file.txt").write_text("kept")
    (src / "big.bin").write_bytes(b"b" * 1000)
    for k in range(50):  # a hard-link farm: copied once, then linked
        os.link(src / "big.bin", src / f"link{k}.bin")
    (src / "to_etc").symlink_to("/etc/passwd")
    os.mkfifo(src / "pipe")
    with open(src / "sparse.bin", "wb") as fh:  # 10 GB that take no space
        fh.truncate(10**10)
    dst.mkdir()
    scratch.copy_tree(str(src), str(dst), budget=10_000, lenient=True)
    assert (dst / "deep" / "file.txt").read_text() == "kept"
    assert os.readlink(dst / "to_etc") == "/etc/passwd"
    assert not (dst / "pipe").exists() and not (dst / "sparse.bin").exists()
    assert (dst / "link7.bin").stat().st_ino == (dst / "big.bin").stat().st_ino
    scratch.clear_folder(str(dst))
    assert list(dst.iterdir()) == []
    scratch.copy_tree(str(src), str(dst), max_entries=3, lenient=True)
    assert sum(1 for _ in dst.rglob("*")) <= 3


# Fake cgroup file systems: the file-writing logic of the hierarchy this host
# does not have (v2), and of the one it has (v1), without touching the real one.
V2_FILES = {"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "",
            "cgroup.procs": "", "cgroup.kill": "", "memory.max": "max",
            "memory.swap.max": "max", "memory.events": "oom_kill 0\n", "memory.peak": "0",
            "pids.max": "max", "pids.events": "max 0\n"}
V1_FILES = {
    "memory": {"cgroup.procs": "", "tasks": "", "memory.limit_in_bytes": "9223372036854771712",
               "memory.memsw.limit_in_bytes": "9223372036854771712",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
               "memory.max_usage_in_bytes": "0"},
    "pids": {"cgroup.procs": "", "tasks": "", "pids.max": "max", "pids.events": "max 0\n"},
}


def fake_kernel(monkeypatch, files_for):
    """Make group folders come with interface files, as the kernel's would."""
    def make_group(path, exist_ok=False):
        if os.path.isdir(path) and exist_ok:
            return
        os.mkdir(path)
        for name, text in files_for(path).items():
            Path(path, name).write_text(text)

    monkeypatch.setattr(cgroups, "make_group", make_group)
    monkeypatch.setattr(cgroups, "remove_group", shutil.rmtree)


def fake_proc(root: Path, mountinfo: list[str], own: str) -> str:
    proc = root / "proc"
    proc.mkdir()
    (proc / "mountinfo").write_text("\n".join(mountinfo) + "\n")
    (proc / "cgroup").write_text(own)
    return str(proc)


def read(path) -> str:
    return Path(path).read_text()


def test_cgroup_v2_files_written_under_a_delegated_group(tmp_path, monkeypatch):
    fake_kernel(monkeypatch, lambda path: V2_FILES)
    mount = tmp_path / "cg"
    (mount / "svc" / "grader").mkdir(parents=True)
    (mount / "svc" / "grader" / "cgroup.controllers").write_text("cpu memory pids")
    # the grader's own group holds the grader: it cannot enable controllers
    # (here it has no subtree_control), so its delegated parent is used
    (mount / "svc" / "cgroup.subtree_control").write_text("cpu")
    proc = fake_proc(tmp_path, [f"41 31 0:38 / {mount} rw,relatime - cgroup2 cgroup2 rw"],
                     "0::/svc/grader\n")
    groups = cgroups.Cgroups(proc)
    parent = mount / "svc" / cgroups.PARENT_NAME
    assert groups.places() == [cgroups.Place(2, str(parent), ("memory", "pids"))]
    assert groups.lost() == {}
    assert read(mount / "svc" / "cgroup.subtree_control") == "+memory +pids"
    assert read(parent / "cgroup.subtree_control") == "+memory +pids"

    group = groups.create(SMALL_MEMORY, 64, name="4000000-ab")
    folder = parent / "4000000-ab"
    assert group.paths == [str(folder)]
    assert read(folder / "memory.max") == str(SMALL_MEMORY)
    assert read(folder / "memory.swap.max") == "0"
    assert read(folder / "pids.max") == "64"
    group.join()
    assert read(folder / "cgroup.procs") == "0"
    assert group.usage() == cgroups.Usage(0, 0, 0)
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    (folder / "pids.events").write_text("max 3\n")
    (folder / "memory.peak").write_text("268435456\n")
    usage = group.usage()
    assert usage == cgroups.Usage(1, 3, SMALL_MEMORY)
    assert usage.memory_limit_hit and usage.task_limit_hit

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (folder / "cgroup.procs").write_text(f"{sleeper.pid}\n")
        group.kill(timeout=0.2)  # the fake never empties cgroup.procs: it times out
        assert read(folder / "cgroup.kill") == "1"
        assert sleeper.wait(timeout=5) == -9
    finally:
        sleeper.kill()
    (folder / "cgroup.procs").write_text("")
    assert group.remove() and not folder.exists()


def test_cgroup_v2_root_group_enables_its_own_controllers(tmp_path, monkeypatch):
    fake_kernel(monkeypatch, lambda path: V2_FILES)
    mount = tmp_path / "cg"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text("memory pids")
    (mount / "cgroup.subtree_control").write_text("memory")
    proc = fake_proc(tmp_path, [f"30 1 0:26 / {mount} rw - cgroup2 cgroup2 rw"], "0::/\n")
    groups = cgroups.Cgroups(proc)
    assert groups.places() == [cgroups.Place(2, str(mount / "rnn-course"), ("memory", "pids"))]
    assert read(mount / "cgroup.subtree_control") == "+pids"


def test_cgroup_v1_files_written_in_each_hierarchy_and_sweep(tmp_path, monkeypatch):
    def files_for(path):
        return V1_FILES["memory" if "/memory/" in path else "pids"]

    fake_kernel(monkeypatch, files_for)
    memory, pids = tmp_path / "memory", tmp_path / "pids"
    (memory / "api" / "x").mkdir(parents=True)
    pids.mkdir()
    proc = fake_proc(tmp_path, [
        f"35 31 0:32 / {memory} rw,relatime - cgroup cgroup rw,memory",
        f"39 31 0:36 / {pids} rw,relatime - cgroup cgroup rw,pids",
        f"41 31 0:38 / {tmp_path}/unified rw,relatime - cgroup2 cgroup2 rw",
    ], "8:pids:/\n4:memory:/api/x\n1:cpu,cpuacct:/\n0::/\n")
    groups = cgroups.Cgroups(proc)
    mem_parent, pid_parent = memory / "api" / "x" / "rnn-course", pids / "rnn-course"
    assert groups.places() == [cgroups.Place(1, str(mem_parent), ("memory",)),
                               cgroups.Place(1, str(pid_parent), ("pids",))]

    group = groups.create(SMALL_MEMORY, 64, name=f"{os.getpid()}-cd")
    mem, tasks = mem_parent / f"{os.getpid()}-cd", pid_parent / f"{os.getpid()}-cd"
    assert read(mem / "memory.limit_in_bytes") == str(SMALL_MEMORY)
    assert read(mem / "memory.memsw.limit_in_bytes") == str(SMALL_MEMORY), "no swap"
    assert read(tasks / "pids.max") == "64"
    group.join()
    assert read(mem / "cgroup.procs") == "0" and read(tasks / "cgroup.procs") == "0"
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (mem / "memory.max_usage_in_bytes").write_text("1234\n")
    (tasks / "pids.events").write_text("max 7\n")
    assert group.usage() == cgroups.Usage(2, 7, 1234)

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (tasks / "cgroup.procs").write_text(f"{sleeper.pid}\n")
        group.kill(timeout=0.2)  # no cgroup.kill on v1: each task is signalled
        assert sleeper.wait(timeout=5) == -9
    finally:
        sleeper.kill()
    (tasks / "cgroup.procs").write_text("")
    (mem / "cgroup.procs").write_text("")

    # the next grader's sweep removes the groups of dead graders only
    groups.create(SMALL_MEMORY, 64, name="4000000-ef")  # pid above pid_max: dead
    groups.create(SMALL_MEMORY, 64, name="1-ef")  # pid 1 is alive
    cgroups.Cgroups(proc).sweep()
    for parent in (mem_parent, pid_parent):
        groups_left = sorted(p.name for p in parent.iterdir() if p.is_dir())
        assert groups_left == ["1-ef", f"{os.getpid()}-cd"]
    assert groups.groups_of(1) == [str(mem_parent / "1-ef"), str(pid_parent / "1-ef")]
    assert group.remove() and groups.groups_of(os.getpid()) == []


def test_no_cgroup_support_says_so_once_and_grading_goes_on(tmp_path, caplog):
    proc = fake_proc(tmp_path, ["22 1 0:21 / / rw - ext4 /dev/sda1 rw"], "0::/\n")
    groups = cgroups.Cgroups(proc)
    with caplog.at_level("WARNING", logger=cgroups.__name__):
        assert groups.create(SMALL_MEMORY, 64) is None
        assert groups.create(SMALL_MEMORY, 64) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one per lost controller, once per process
    assert all(cgroups.HOW_TO_ENABLE in line for line in lines)
    assert any(cgroups.LOST[cgroups.MEMORY] in line for line in lines)
    assert any(cgroups.LOST[cgroups.PIDS] in line for line in lines)


# --------------------------------------------------------------------------- non-root grader
# What a grader account owns beside its Python: the course's packages (an editable install).
GRADER_PACKAGES = [str(Path(autograder.__file__).parent), str(Path(rnn_course.__file__).parent)]


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="as non-root the whole file already runs that path")
def test_grader_running_as_non_root_user(tmp_path):
    work = Path(tempfile.mkdtemp(prefix="rnn-sbx-nonroot-"))
    try:
        os.chown(work, 65534, 65534)
        script = textwrap.dedent(
            """
            import json, os, sys
            from nbformat.v4 import new_code_cell, new_notebook
            from autograder.sandbox import execute_notebook, sandbox_available
            ok, why = sandbox_available()
            scratch = os.path.join(sys.argv[1], "scratch")
            os.mkdir(scratch)
            nb = new_notebook(cells=[new_code_cell(s) for s in (
                "import os; print(os.getuid())",
                "open('made.txt', 'w').write('x')",
                "import autograder",
            )])
            nb, flags = execute_notebook(nb, scratch)
            print(json.dumps({"ok": ok, "why": why, "grader": os.getuid(), "flags": flags,
                              "uid": nb.cells[0].outputs[0]["text"].strip(),
                              "error": nb.cells[2].outputs[0]["ename"]}))
            """
        )
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
        proc = subprocess.run(
            # a grader account of its own: its Python and the course's packages
            as_account([sys.executable, "-c", script, str(work)], show=GRADER_PACKAGES),
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=str(work),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["ok"], got["why"]
        assert got["grader"] == 65534 and got["uid"] == "65534"
        assert got["flags"] == []
        assert got["error"] == "ModuleNotFoundError"
        assert (work / "scratch" / "made.txt").stat().st_uid == 65534
        # no cgroup, no tmpfs for this grader: said once each, grading went on
        for lost in (cgroups.LOST[cgroups.MEMORY], cgroups.LOST[cgroups.PIDS],
                     scratch.LOST):
            assert proc.stderr.count(lost) == 1, proc.stderr[-3000:]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_sweep_kills_what_a_dead_grader_left_running(tmp_path):
    """A sandbox that outlived its grader (pid gone) is killed when its folder is swept."""
    import subprocess
    import sys

    from autograder.sandbox import stale as stale_mod

    dead_pid = 4_000_000  # above pid_max's default: no such process
    stale = tmp_path / f"rnn-sbx-{dead_pid}-abc"
    (stale / "run").mkdir(parents=True)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               str(stale / "run" / "kernel.json")])
    try:
        # the sweep finds sandboxes by their command line: wait until the orphan shows it
        deadline = time.monotonic() + 10
        cmdline = Path(f"/proc/{orphan.pid}/cmdline")
        while str(stale).encode() not in cmdline.read_bytes():
            assert time.monotonic() < deadline, cmdline.read_bytes()
            time.sleep(0.05)
        stale_mod._swept.discard(str(tmp_path))
        stale_mod.sweep_runtime(str(tmp_path))
        assert orphan.wait(timeout=10) == -9
        assert not stale.exists()
    finally:
        orphan.kill()


def test_live_path_maps_the_scratch_folder_to_its_tmpfs_copy(tmp_path):
    """While a kernel runs in a bounded scratch (a tmpfs copy), a grader that hands
    it files per cell (GradedCells) must write there, not into the host folder."""
    import types

    from autograder.sandbox import SandboxedKernelManager
    from autograder.sandbox.bwrap import SandboxError

    host = tmp_path / "scratch"
    (host / ".grading").mkdir(parents=True)
    km = SandboxedKernelManager()
    km._scratch = str(host.resolve())
    assert km.live_path(str(host / ".grading")) == str(host / ".grading")  # no tmpfs
    km._bounded = types.SimpleNamespace(mountpoint="/run/sbx/scratch")
    assert km.live_path(str(host / ".grading")) == "/run/sbx/scratch/.grading"
    with pytest.raises(SandboxError):
        km.live_path(str(tmp_path / "elsewhere"))


# --------------------------------------------------------------------------- kernels started ahead
def _runtime_folder() -> Path:
    """A runtime base of the test's own (reachable by the kernel's uid: not under tmp_path)."""
    runtime = Path(tempfile.mkdtemp(prefix="rnn-sbx-test-rt-"))
    runtime.chmod(0o755)
    return runtime


@pytest.mark.slow
def test_a_kernel_started_ahead_sees_only_what_it_is_handed_then_ends(tmp_path):
    """start_kernel on an empty folder; the files written after it started are what the
    notebook sees (in its tmpfs copy when root), what it writes comes back, and nothing
    of the sandbox is left once execute_notebook has used it."""
    from autograder.sandbox.execute import start_kernel

    runtime = _runtime_folder()
    cfg = Config()
    cfg.SandboxedKernelManager.runtime_base = str(runtime)
    folder = tmp_path / "s"
    folder.mkdir()
    km = start_kernel(str(folder), Limits(), config=cfg)
    try:
        assert km.has_kernel and km.exit_status is None
        (folder / "answer.txt").write_text("handed in after the start")
        nb = new_notebook(cells=[new_code_cell(
            "import json, os\n"
            "print(json.dumps({'files': sorted(os.listdir('.')), 'uid': os.getuid(),\n"
            "                  'text': open('answer.txt').read()}))\n"
            "open('written.txt', 'w').write('by the kernel')")])
        nb, flags = execute_notebook(nb, str(folder), Limits(), config=cfg, kernel=km)
        assert flags == []
        seen = report(nb.cells[0])
        assert seen["files"] == ["answer.txt"] and seen["text"] == "handed in after the start"
        assert seen["uid"] in KERNEL_UIDS
        assert (folder / "written.txt").read_text() == "by the kernel"
        assert not km.has_kernel, "a kernel started ahead serves one notebook"
        assert list(runtime.iterdir()) == [], "the runtime folder was left behind"
        assert scratch.mounts_under(str(runtime)) == []
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.slow
def test_a_kernel_started_ahead_and_never_used_is_discarded_completely(tmp_path):
    from autograder.sandbox.execute import discard_kernel, start_kernel

    runtime = _runtime_folder()
    cfg = Config()
    cfg.SandboxedKernelManager.runtime_base = str(runtime)
    (tmp_path / "s").mkdir()
    try:
        km = start_kernel(str(tmp_path / "s"), Limits(), config=cfg)
        [base] = runtime.iterdir()
        deadline = time.monotonic() + 10
        while not host_processes_with(str(base)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert host_processes_with(str(base)), "the sandbox never started"
        discard_kernel(km)
        assert not km.has_kernel
        deadline = time.monotonic() + 5
        while host_processes_with(str(base)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert host_processes_with(str(base)) == []
        assert list(runtime.iterdir()) == [] and scratch.mounts_under(str(runtime)) == []
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_files_that_do_not_fit_the_scratch_tmpfs_are_refused_at_hand_in(tmp_path):
    """hand_in is where a kernel started ahead first gets the files: over the tmpfs
    size it says so (SandboxError, as a start would), and the kernel is gone."""
    if not IS_ROOT:
        pytest.skip("the scratch tmpfs exists only when the grader is root")
    from autograder.sandbox.execute import start_kernel

    runtime = _runtime_folder()
    cfg = Config()
    cfg.SandboxedKernelManager.runtime_base = str(runtime)
    folder = tmp_path / "s"
    folder.mkdir()
    limits = Limits(scratch_bytes=2 * 1024 * 1024)
    try:
        km = start_kernel(str(folder), limits, config=cfg)
        (folder / "big.bin").write_bytes(b"\0" * (4 * 1024 * 1024))
        with pytest.raises(SandboxError, match="tmpfs"):
            execute_notebook(new_notebook(cells=[new_code_cell("1")]), str(folder), limits,
                             config=cfg, kernel=km)
        assert not km.has_kernel and list(runtime.iterdir()) == []
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
