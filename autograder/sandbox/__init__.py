"""Sandbox for student kernels: bubblewrap isolation, resource limits, output caps.

Public API (see each module for details):

- :func:`sandbox_available` -> ``(ok, reason)``: can kernels be sandboxed here?
  (:func:`unavailable_reason` -> ``None`` or the reason, for the same check.)
- :class:`Limits`: every limit of one notebook run (per process: memory, CPU,
  processes, file size; per submission: memory and tasks in a cgroup, scratch
  disk; /tmp size, cell timeout, wall clock, output caps).
- :class:`SandboxedKernelManager`: jupyter_client kernel manager that starts
  ipykernel inside bubblewrap (usable as nbclient/nbgrader
  ``kernel_manager_class`` or ``NotebookClient(nb, km=...)``).
- :func:`execute_notebook` -> ``(nb, flags)``: run a notebook with nbgrader's
  ``Execute`` in the sandbox; flags come from :data:`FLAGS`.
  (``execute.start_kernel`` starts its kernel ahead of need, on an empty
  folder, for ``execute_notebook(..., kernel=km)``; ``execute.discard_kernel``
  ends one never used.)
- :class:`SandboxExecute` / :class:`OutputLimitMixin`: the preprocessor and
  the output cap it adds to nbclient.
- :func:`compile_student_packages`: bytecode beside the student packages'
  sources, which kernels may not write themselves (call before grading);
  :func:`prebuild_font_list`: matplotlib's font list, built before forking.
"""

from .bwrap import SANDBOX_HOME, SandboxError, sandbox_available, unavailable_reason
from .execute import (
    CPU_LIMIT,
    DISK_LIMIT,
    FLAGS,
    KERNEL_DIED,
    MEMORY_LIMIT,
    OUTPUT_TRUNCATED,
    PROCESS_LIMIT,
    STOPPED_ENAME,
    TIMEOUT,
    TRUNCATION_NOTICE,
    OutputLimitMixin,
    SandboxExecute,
    execute_notebook,
)
from .kernel import SandboxedKernelManager, compile_student_packages, prebuild_font_list
from .limits import Limits

__all__ = [
    "CPU_LIMIT",
    "DISK_LIMIT",
    "FLAGS",
    "KERNEL_DIED",
    "MEMORY_LIMIT",
    "OUTPUT_TRUNCATED",
    "PROCESS_LIMIT",
    "SANDBOX_HOME",
    "STOPPED_ENAME",
    "TIMEOUT",
    "TRUNCATION_NOTICE",
    "Limits",
    "OutputLimitMixin",
    "SandboxError",
    "SandboxExecute",
    "SandboxedKernelManager",
    "compile_student_packages",
    "execute_notebook",
    "prebuild_font_list",
    "sandbox_available",
    "unavailable_reason",
]
