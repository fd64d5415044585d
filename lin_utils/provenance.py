"""Provenance of a result: the git commit, package versions and the hardware that decides the last
bits of a float32 forward pass (CPU flags, torch threads and BLAS), without any absolute path of
the machine. Every table the result cache (:mod:`lin_utils.results`) saves carries it."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import lin_utils
from lin_utils.paths import REPO_ROOT

__all__ = ["provenance", "KERNEL_CPU_FLAGS", "KERNEL_ENV"]

VERSIONED_PACKAGES = ("torch", "transformers", "numpy", "pandas")




def _git_info() -> dict:
    """Commit of the repository and whether tracked files have uncommitted changes.

    The result tables themselves (``data/results``) do not count: a run that rewrites them
    should not mark its own provenance dirty.

    Either value is None when git or the commit is unavailable (e.g. a source tarball).
    """

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)data/results")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_info() -> dict:
    try:
        import torch  # heavy: only when a table is saved
    except ImportError:
        return {"device": "cpu", "cuda": None}
    info: dict[str, Any] = {
        "device": "cpu", "cuda": None, "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        # the vectorized kernels ATen dispatches to (AVX512, AVX2, DEFAULT...), and torch's own BLAS
        # (statically linked MKL is invisible to threadpoolctl)
        "cpu_capability": _call(lambda: torch.backends.cpu.get_cpu_capability()),
        **_torch_blas(torch),
    }
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["cuda"] = {
            "version": torch.version.cuda,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        }
    return info


def _call(f: Callable[[], Any]) -> Any:
    """``f()``, or None when it fails (provenance never fails a save)."""
    try:
        return f()
    except Exception:
        return None


def _torch_blas(torch) -> dict:
    """torch's BLAS/LAPACK and oneDNN builds, from ``torch.__config__.show()``."""
    text = _call(torch.__config__.show) or ""
    found = dict(re.findall(r"\b(BLAS_INFO|LAPACK_INFO)=([^,\s]+)", text))
    mkl = re.search(r"Math Kernel Library Version ([^\n]+?) for", text)
    dnn = re.search(r"MKL-DNN (v[0-9.]+)", text)
    return {"blas": found.get("BLAS_INFO"), "lapack": found.get("LAPACK_INFO"),
            "mkl": mkl.group(1).strip() if mkl else None, "onednn": dnn.group(1) if dnn else None}


# CPU features that select float kernels (MKL, oneDNN, OpenBLAS and ATen dispatch on them)
KERNEL_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
                    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")
# environment variables that change thread counts or kernel choice
KERNEL_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR",
              "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
              "OPENBLAS_CORETYPE", "TORCH_MKLDNN_MATMUL_MIN_DIM")


def _cpu_flags() -> list[str] | None:
    """Which of :data:`KERNEL_CPU_FLAGS` the CPU has (Linux ``/proc/cpuinfo``; None elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return [f for f in KERNEL_CPU_FLAGS if f in have]
    except OSError:
        pass
    return None


def _blas_info() -> list[dict]:
    """The BLAS/OpenMP libraries loaded in this process with their thread counts (no paths)."""
    try:
        from threadpoolctl import threadpool_info  # optional: not our dependency (scikit-learn's), guarded
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture")
    try:
        return [{k: lib.get(k) for k in keep if k in lib} for lib in threadpool_info()]
    except Exception:  # threadpoolctl inspects native libraries; never fail a save over it
        return []


def provenance() -> dict:
    """Where and with what a result is being computed: git, package versions, hardware.

    The hardware part records what decides the last bits of a float32 forward pass, so that a
    re-run that differs (``lin-utils book verify``) can be explained: the CPU's kernel-selecting
    flags (``cpu_flags``), torch's thread counts, dispatch level (``cpu_capability``) and BLAS,
    the BLAS/OpenMP libraries loaded and their threads (``blas``, via threadpoolctl), and the
    environment variables that change either (``env``, only those set).

    Holds no absolute path of the machine (no interpreter path, no library locations).
    """
    versions = {"python": platform.python_version()}
    versions.update({name: _package_version(name) for name in VERSIONED_PACKAGES})
    versions["lin_utils"] = lin_utils.__version__
    return {
        "git": _git_info(),
        "versions": versions,
        "hardware": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpu_flags": _cpu_flags(),
            "torch": _torch_info(),
            "blas": _blas_info(),
            "env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
        },
    }
