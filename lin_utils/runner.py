"""Run the book's notebooks with papermill for one profile.

A *profile* (smoke, cpu, gpu, full) is one YAML file ``profiles/<profile>.yaml`` with one section
per notebook: :mod:`lin_utils.profiles` reads it and checks every value (types, ranges, model
specs, datasets, devices) against the notebooks' ``parameters`` cells before any kernel starts.
On top of its section every notebook receives ``profile`` and ``force`` (recompute cached
results). ``LIN_PROFILE`` is set in the kernel's environment.

Which notebooks run, and in which order, comes from the book's table of contents
(``book/_toc.yml``, see :mod:`lin_utils.site`): ``glob: book/notebooks/fig*`` runs every
``notebooks/fig*.ipynb``, sorted. ``only`` runs just the named ones (still in that order) without
their predecessors, whose results are read from the cache.

Each notebook receives *every* parameter it runs with (its literal defaults, overridden by the
profile's section, plus ``profile`` and ``force``), so papermill's injected cell shows the values
that ran. The executed copy is then tagged for reading (:func:`present_page`): the defaults cell
is removed, and the injected cell and the code are folded behind toggles. The book's root page,
when it is an executed notebook (the landing page), summarises the others and runs last.

All notebooks of a run execute into a staging folder next to ``book/notebooks/``; only when every
one succeeded are they moved to ``book/notebooks/<name>.ipynb``, the executed copies that the book
renders, each recording its profile in its metadata. The kernels get ``$LIN_PAGES_DIRS``: the
staging folder, then ``book/notebooks/`` (where a page finds the executed pages before it). A
failure or Ctrl-C leaves the previous executed copies untouched and removes the staging folder (a
failing notebook's partial output is kept as ``book/notebooks/.failed/<name>.ipynb``). SIGTERM is
handled like Ctrl-C (the kernel killed, the staging folder and the kernel's temporary folder
removed), then the command exits 143.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from lin_utils import paths, site
from lin_utils.errors import LinUtilsError, Terminated, one_line
from lin_utils.profiles import DEVICE_PARAMETERS, all_parameters, check_section, load_profile, notebook_parameters

KERNEL = "python3"  # jupyter_client starts it with this interpreter (sys.executable)
PAGES_ENV = "LIN_PAGES_DIRS"  # os.pathsep-separated folders of this run's executed pages, newest first
# cell tags that already say how myst-nb shows a cell; present_page leaves such cells alone
DISPLAY_TAGS = frozenset({"hide-input", "hide-output", "hide-cell", "remove-input", "remove-output",
                          "remove-cell", "remove_input", "remove_output", "remove_cell", "show-input"})
PARAMETERS_PROMPT = "Show the parameters this page ran with"
CODE_PROMPT = "Show the code"


@dataclass
class RunRecord:
    """One executed notebook: where its executed copy is and how long it took."""

    name: str
    output: Path
    wall_time_s: float
    parameters: dict[str, Any] = field(default_factory=dict)


# -------------------------------------------------------------------------------------------------
# profiles, notebooks, run order


def run_order(
    only: list[str] | None = None,
    *,
    toc: Path | str | None = None,
    notebooks_dir: Path | str | None = None,
) -> list[str]:
    """The notebooks of the book in table-of-contents order, restricted to ``only``.

    ``toc`` defaults to ``book/_toc.yml``; its globs are expanded against the source notebooks
    ``notebooks_dir/*.ipynb`` (default ``notebooks/``). ``only`` selects notebooks without
    pulling in the ones before them: those are expected to have run before, and their results
    are read from the result cache.
    """
    toc = Path(toc) if toc is not None else paths.book_dir() / "_toc.yml"
    folder = Path(notebooks_dir) if notebooks_dir is not None else paths.notebooks_dir()
    sources = sorted(p.stem for p in folder.glob("*.ipynb"))
    contents = site.read_toc(toc)
    order = site.toc_notebooks(contents, sources, where=f" {toc}")
    root = site.root_notebook(contents)
    if root in order:  # the landing page summarises every other page: it runs last
        order = [n for n in order if n != root] + [root]
    if only is None:
        return order
    unknown = [n for n in only if n not in order]
    if unknown:
        raise LinUtilsError(
            f"unknown notebook(s) {', '.join(map(repr, unknown))}; valid: {', '.join(order)}"
        )
    return [n for n in order if n in set(only)]


def _shell_double_quoted(text: str) -> str:
    return '"' + "".join("\\" + c if c in '\\"$`' else c for c in text) + '"'


def reproduce_commands(
    name: str,
    profile: str,
    *,
    profiles_dir: Path | str | None = None,
    notebooks_dir: Path | str | None = None,
) -> list[str]:
    """The two shell commands that re-run notebook ``name`` as ``profile`` runs it (repository root).

    ``lin-utils book run --profile P --only NAME``, and the same run by hand with papermill,
    every parameter of :func:`notebook_parameters` passed as one YAML mapping (``-y``), one
    parameter per line inside the double quotes (a shell takes the line breaks as they are).
    """
    params = notebook_parameters(name, profile, profiles_dir=profiles_dir, notebooks_dir=notebooks_dir)
    block = yaml.safe_dump(params, default_flow_style=None, sort_keys=False, width=1 << 20,
                           allow_unicode=True).strip()
    return [f"lin-utils book run --profile {profile} --only {name}",
            f"papermill notebooks/{name}.ipynb out.ipynb -y {_shell_double_quoted(chr(10) + block)}"]


def _failed_cell(source: Path, error) -> str:
    """Describe the failing cell as 'cell N of M (In [k]: first line)', N counted in the source.

    papermill's ``cell_index`` counts cells of the executed notebook, which has one extra cell,
    the injected parameters, right after the ``parameters`` cell.
    """
    import nbformat  # heavy (jsonschema) and optional: only when notebooks run; this module stays light

    nb = nbformat.read(source, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    injected_at = tagged[0] + 1 if tagged else 0
    index = error.cell_index
    if index == injected_at:
        where = "the injected-parameters cell"
    else:
        src_index = index - 1 if index > injected_at else index
        where = f"cell {src_index + 1} of {len(nb.cells)}"
    return f"{where} (In [{error.exec_count}]: {one_line(error.source, 60)})"


# -------------------------------------------------------------------------------------------------
# executing


KERNEL_STDERR = "kernel-stderr.log"


def _tracking_kernel_manager(started: list, ipc_dir: str):
    """An AsyncKernelManager class that records its instances, so Ctrl-C can kill the kernel.

    The kernel talks over Unix sockets in ``ipc_dir`` rather than unencrypted localhost TCP
    (which also makes every kernel log a warning on stderr). The kernel process's own stderr
    (ipykernel's log lines, C-level messages; cell output goes to the notebook) goes to
    :data:`KERNEL_STDERR` in ``ipc_dir``, not to the terminal: after Ctrl-C the command prints
    one line, and a kernel that dies has its last words added to the error (:func:`_execute`).
    """
    from jupyter_client.manager import AsyncKernelManager  # heavy (zmq, tornado): only when notebooks run

    class TrackedKernelManager(AsyncKernelManager):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(ipc_dir, "kernel"))
            super().__init__(*args, **kwargs)
            started.append(self)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(os.path.join(ipc_dir, KERNEL_STDERR), "ab") as err:  # the child keeps its copy
                kw["stderr"] = err
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return TrackedKernelManager


def _kill_kernels(managers: list) -> None:
    """SIGKILL the kernels (and their process groups; jupyter starts each in its own session)."""
    for km in managers:
        provisioner = getattr(km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        pgid = getattr(provisioner, "pgid", None)
        try:
            if pgid and pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
            elif process is not None:
                process.kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _execute(source: Path, output: Path, params: dict, cwd: Path) -> None:
    """papermill.execute_notebook in a worker thread, so that Ctrl-C reaches this thread.

    In the main thread nbclient would take SIGINT over (it shuts the kernel down and the run goes
    on as a failed cell); here KeyboardInterrupt is raised in the caller, after the kernel is
    killed and the worker has finished.
    """
    import papermill  # heavy and optional: only when notebooks run

    managers: list = []
    outcome: dict[str, BaseException] = {}
    ipc_dir = tempfile.mkdtemp(prefix="lin-kernel-")  # short: Unix socket paths are limited

    def work() -> None:
        try:
            papermill.execute_notebook(
                str(source), str(output), parameters=params, kernel_name=KERNEL, cwd=str(cwd),
                progress_bar=False, log_output=False,
                kernel_manager_class=_tracking_kernel_manager(managers, ipc_dir),
                # the outputs are in once the last cell returns: a graceful shutdown only waits
                # (about a second per notebook) for an interpreter holding torch to tear down
                shutdown_kernel="immediate",
            )
        except BaseException as e:  # handed to the caller
            outcome["error"] = e

    worker = threading.Thread(target=work, name=f"papermill-{source.stem}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        # the worker's failure after the kill is expected: keep its log messages quiet
        quiet = [logging.getLogger(n) for n in ("papermill", "nbclient", "traitlets", "asyncio")]
        levels = [lg.level for lg in quiet]
        for lg in quiet:
            lg.setLevel(logging.CRITICAL + 1)
        try:
            _kill_kernels(managers)
            worker.join(30)
            for km in managers:  # a killed kernel's connection file (it holds the session key) stays
                try:
                    km.cleanup_connection_file()
                except Exception:  # noqa: BLE001 - best effort, the run is ending anyway
                    pass
        finally:
            for lg, level in zip(quiet, levels):
                lg.setLevel(level)
        raise
    else:
        try:
            last = Path(ipc_dir, KERNEL_STDERR).read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            last = []
    finally:
        if not worker.is_alive():
            shutil.rmtree(ipc_dir, ignore_errors=True)
    if "error" in outcome:
        from papermill.exceptions import PapermillExecutionError  # heavy and optional: see _execute

        e = outcome["error"]
        if last and not isinstance(e, (PapermillExecutionError, KeyboardInterrupt)):  # e.g. the kernel died
            raise RuntimeError(f"{one_line(e, None)}; the kernel's stderr ended: {' | '.join(last)}") from e
        raise e


@contextmanager
def _deferred_sigint():
    """Hold Ctrl-C and SIGTERM while files are swapped into place; raise them afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise Terminated if signal.SIGTERM in caught else KeyboardInterrupt


def _raise_terminated(signum, frame):
    raise Terminated


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises :class:`~lin_utils.errors.Terminated` (a KeyboardInterrupt) in the main
    thread, so that a terminated run kills its kernel and removes its folders as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_devices(plan) -> None:
    """Every device a notebook will use exists on this machine (``cuda`` on a CPU-only one fails
    here, not in its kernel)."""
    from lin_utils.models import check_device  # heavy (torch, transformers): this module stays light

    def walk(params: dict, where: str) -> None:
        for key, value in params.items():
            if key in DEVICE_PARAMETERS and isinstance(value, str):
                try:
                    check_device(value)
                except LinUtilsError as e:
                    raise LinUtilsError(f"{where}: parameter {key!r}: {one_line(e, None)}") from None
            elif isinstance(value, dict):
                walk(value, f"{where}: parameter {key!r}")

    for name, _, params in plan:
        walk(params, f"profile {params.get('profile')}, notebook {name}")


def present_page(nb) -> None:
    """Tag an executed notebook's cells (in place) so that the page reads like a paper's figure.

    - the ``parameters`` cell (the defaults) is removed: papermill's injected cell below it holds
      every value that ran, and stays, folded (``hide-input``);
    - every other code cell without a display tag of its own (:data:`DISPLAY_TAGS`; ``show-input``
      keeps the code in view) is folded the same way; outputs stay visible.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        if "parameters" in tags:
            tags.append("remove-cell")
        elif "injected-parameters" in tags:
            tags.append("hide-input")
            cell.metadata.setdefault("mystnb", {})["code_prompt_show"] = PARAMETERS_PROMPT
        elif not DISPLAY_TAGS.intersection(tags):
            tags.append("hide-input")
            cell.metadata.setdefault("mystnb", {})["code_prompt_show"] = CODE_PROMPT
        cell.metadata["tags"] = list(dict.fromkeys(tags))


def _mark_page(path: Path, profile: str, force: bool) -> None:
    """Record the profile in the executed notebook's metadata (papermill's stays as well) and tag
    its cells for reading (:func:`present_page`)."""
    import nbformat  # heavy (jsonschema) and optional: see _failed_cell

    nb = nbformat.read(path, as_version=4)
    nb.metadata[site.PAGE_METADATA] = {"profile": profile, "force": bool(force)}
    present_page(nb)
    nbformat.write(nb, path)


def run_profile(
    profile: str,
    only: list[str] | None = None,
    force: bool = False,
    log: Callable[[str], Any] = print,
    *,
    profiles_dir: Path | str | None = None,
    notebooks_dir: Path | str | None = None,
    book_dir: Path | str | None = None,
    toc: Path | str | None = None,
    cwd: Path | str | None = None,
) -> list[RunRecord]:
    """Execute the notebooks of a profile in table-of-contents order; one record per notebook.

    Everything is validated before the first notebook starts: the profile name, the section
    names, every parameter against the notebook's ``parameters`` cell (name, type, range), model
    specs, datasets, devices (present on this machine) and ``only`` (:mod:`lin_utils.profiles`).
    SIGTERM cleans up as Ctrl-C does and raises :class:`~lin_utils.errors.Terminated`. The first failing notebook stops the run with a one-line LinUtilsError
    naming the notebook, the cell and the exception (``ename: evalue``); no executed copy in
    ``book/notebooks/`` changes unless the whole run succeeded.

    The overrides default to the repository's ``profiles/``, ``notebooks/``, ``book/``,
    ``<book_dir>/_toc.yml`` and the repository root (the kernel's working directory).
    """
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else paths.notebooks_dir()
    book_dir = Path(book_dir) if book_dir is not None else paths.book_dir()
    toc = Path(toc) if toc is not None else book_dir / "_toc.yml"
    cwd = Path(cwd) if cwd is not None else paths.REPO_ROOT

    sections = load_profile(profile, profiles_dir)
    everything = run_order(toc=toc, notebooks_dir=notebooks_dir)
    unknown = [name for name in sections if name not in everything]
    if unknown:
        raise LinUtilsError(
            f"profile {profile} has section(s) for unknown notebook(s) {', '.join(unknown)}; "
            f"notebooks: {', '.join(everything)}"
        )
    order = run_order(only, toc=toc, notebooks_dir=notebooks_dir)
    plan = []
    for name in order:
        source = notebooks_dir / f"{name}.ipynb"
        defaults, section = check_section(name, source, sections.get(name, {}), profile)
        plan.append((name, source, all_parameters(defaults, section, profile, force)))
    _check_devices(plan)
    with _sigterm_as_interrupt():
        return _run_plan(plan, profile, force, log, order=order, everything=everything, book_dir=book_dir,
                         notebooks_dir=notebooks_dir, cwd=cwd)


def _run_plan(plan, profile: str, force: bool, log, *, order, everything, book_dir: Path, notebooks_dir: Path,
              cwd: Path) -> list[RunRecord]:
    from papermill.exceptions import PapermillExecutionError  # heavy and optional: only when notebooks run

    out_dir = book_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    log(f"profile {profile}: running {len(plan)} notebook(s): {', '.join(order)}"
        + (" (force)" if force else ""))

    records: list[RunRecord] = []
    # The kernel inherits this environment. Notebooks show no progress bars (the run log has the
    # wall times), and tqdm's "IProgress not found" warning would otherwise land in the book.
    kernel_env = {"LIN_PROFILE": profile, "LIN_RUN_ID": uuid.uuid4().hex, "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                  "PYTHONWARNINGS": "ignore:IProgress not found",
                  PAGES_ENV: os.pathsep.join([str(staging), str(out_dir)])}
    previous_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    try:
        for i, (name, source, params) in enumerate(plan, 1):
            staged = staging / f"{name}.ipynb"
            log(f"[{i}/{len(plan)}] {name} ...")
            start = time.perf_counter()
            try:
                _execute(source, staged, params, cwd)
            except PapermillExecutionError as e:
                if e.ename == "KeyboardInterrupt":
                    raise KeyboardInterrupt from None
                kept = _keep_failed(staged, out_dir)
                log(f"[{i}/{len(plan)}] {name} FAILED after {time.perf_counter() - start:.1f} s"
                    + (f"; partial output: {kept}" if kept else ""))
                raise LinUtilsError(
                    f"notebook {name} failed at {_failed_cell(source, e)}: "
                    f"{e.ename}: {one_line(e.evalue, None)}"
                ) from None
            except KeyboardInterrupt:
                raise
            except Exception as e:  # kernel died, timeout, unreadable notebook...
                kept = _keep_failed(staged, out_dir)
                log(f"[{i}/{len(plan)}] {name} FAILED after {time.perf_counter() - start:.1f} s"
                    + (f"; partial output: {kept}" if kept else ""))
                raise LinUtilsError(
                    f"notebook {name} failed: {type(e).__name__}: {one_line(e, None)}"
                ) from e
            _mark_page(staged, profile, force)
            wall = time.perf_counter() - start
            log(f"[{i}/{len(plan)}] {name} done in {wall:.1f} s")
            records.append(RunRecord(name, out_dir / f"{name}.ipynb", wall, params))
        with _deferred_sigint():
            for record in records:
                os.replace(staging / f"{record.name}.ipynb", record.output)
            # an executed page whose source notebook is gone (renamed or deleted) would still match
            # the table of contents' globs and reach the book
            for stale in sorted(set(out_dir.glob("*.ipynb")) - {out_dir / f"{n}.ipynb" for n in everything}):
                stale.unlink()
                log(f"removed {stale.name}: no notebook {stale.stem} in {notebooks_dir}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for k, v in previous_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    total = sum(r.wall_time_s for r in records)
    log(f"profile {profile}: {len(records)} notebook(s) done in {total:.1f} s -> {out_dir}")
    return records


def _keep_failed(staged: Path, out_dir: Path) -> Path | None:
    """Move a failed notebook's partial output to ``<out_dir>/.failed/`` for inspection."""
    if not staged.exists():
        return None
    target = out_dir / ".failed" / staged.name
    target.parent.mkdir(exist_ok=True)
    os.replace(staged, target)
    return target
