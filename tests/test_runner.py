"""The papermill runner on real throwaway notebooks in tmp dirs (no mocks of papermill)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from lin_utils import paths, profiles, runner, site
from lin_utils.errors import LinUtilsError

REPO = Path(__file__).resolve().parents[1]
STEP = REPO / "tests" / "fixtures" / "notebooks" / "step.ipynb"
TOC = {
    "format": "jb-book",
    "root": "book/intro",
    "parts": [
        {"caption": "Figures", "chapters": [{"glob": "book/notebooks/fig*"}]},
        {"caption": "Claims", "chapters": [{"file": "book/notebooks/claims"}]},
    ],
}
NAMES = ["fig3_b", "claims", "fig1_a"]  # created out of order on purpose


def _project(tmp_path: Path, sections: dict, names=NAMES, profile="smoke", toc=TOC) -> dict:
    """Notebooks (copies of the fixture), a table of contents, one profile file: the overrides."""
    nb_dir, prof_dir, book = tmp_path / "notebooks", tmp_path / "profiles", tmp_path / "book"
    for d in (nb_dir, prof_dir, book):
        d.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(STEP, nb_dir / f"{name}.ipynb")
    (book / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    # a profile names at least one notebook (an empty one is refused): {} means "defaults everywhere"
    (prof_dir / f"{profile}.yaml").write_text(yaml.safe_dump(sections or {names[-1]: {}}))
    return dict(profiles_dir=prof_dir, notebooks_dir=nb_dir, book_dir=book)


def _logging_sections(tmp_path: Path, names=NAMES, **extra) -> dict:
    log = str(tmp_path / "run.log")
    return {n: {"name": n, "log_path": log, **extra.get(n, {})} for n in names}


def _ran(tmp_path: Path) -> list[str]:
    log = tmp_path / "run.log"
    return [ln.split()[0] for ln in log.read_text().splitlines()] if log.exists() else []


def _write_notebook(path: Path, parameters: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}")]
    nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_runs_in_toc_order_with_injected_parameters(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path, **{n: {"draw": True} for n in NAMES}))
    lines = []
    records = runner.run_profile("smoke", force=True, log=lines.append, **dirs)

    assert [r.name for r in records] == ["fig1_a", "fig3_b", "claims"]
    ran = (tmp_path / "run.log").read_text().splitlines()
    assert ran == [f"{n} profile=smoke force=True env=smoke" for n in ("fig1_a", "fig3_b", "claims")]
    for r in records:
        assert r.output == tmp_path / "book" / "notebooks" / f"{r.name}.ipynb"
        nb = nbformat.read(r.output, as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
        assert any(o.get("output_type") == "display_data" for c in nb.cells
                   for o in c.get("outputs", []))  # the figure was drawn
        assert nb.metadata["lin_utils"]["profile"] == "smoke" == site.page_profile(r.output)
        assert r.parameters["profile"] == "smoke" and r.parameters["force"] is True
        # every value that ran is injected, defaults included; the page shows that one cell only
        assert r.parameters == {"profile": "smoke", "force": True, "name": r.name,
                                "log_path": str(tmp_path / "run.log"), "fail": False, "draw": True}
        tags = [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"]
        assert "remove-cell" in tags[0] and "parameters" in tags[0]
        assert "injected-parameters" in tags[1] and "hide-input" in tags[1]
        injected = nb.cells[[i for i, c in enumerate(nb.cells) if c.cell_type == "code"][1]]
        assert all(f"{k} = " in injected.source for k in r.parameters)
        assert injected.metadata["mystnb"]["code_prompt_show"] == runner.PARAMETERS_PROMPT
        assert all("hide-input" in t for t in tags[2:])
        assert r.wall_time_s > 0
    assert sum(bool(re.search(rf"\] {r.name} done in \d+\.\d s", ln)) for r in records
               for ln in lines) == 3
    assert not [p for p in (tmp_path / "book" / "notebooks").iterdir() if p.name.startswith(".")]
    assert "LIN_PROFILE" not in os.environ


def test_run_order_comes_from_the_toc(tmp_path):
    dirs = _project(tmp_path, {})
    kw = dict(toc=dirs["book_dir"] / "_toc.yml", notebooks_dir=dirs["notebooks_dir"])
    assert runner.run_order(**kw) == ["fig1_a", "fig3_b", "claims"]
    # a new figure notebook joins the run in its sorted place, with no edit to the TOC
    shutil.copy(STEP, dirs["notebooks_dir"] / "fig2_new.ipynb")
    assert runner.run_order(**kw) == ["fig1_a", "fig2_new", "fig3_b", "claims"]
    assert runner.run_order(["claims", "fig2_new"], **kw) == ["fig2_new", "claims"]
    with pytest.raises(LinUtilsError, match=r"unknown notebook\(s\) 'nope'; valid: fig1_a, fig2_new"):
        runner.run_order(["nope"], **kw)

    # an explicit entry keeps its place and is not run twice by a later glob
    toc = {"format": "jb-book", "root": "book/intro", "chapters": [
        {"file": "book/methods"}, {"file": "book/notebooks/fig3_b.ipynb"},
        {"glob": "book/notebooks/*"}]}
    (dirs["book_dir"] / "_toc.yml").write_text(yaml.safe_dump(toc))
    assert runner.run_order(**kw) == ["fig3_b", "claims", "fig1_a", "fig2_new"]

    toc["chapters"].append({"file": "book/notebooks/fig7_missing"})
    (dirs["book_dir"] / "_toc.yml").write_text(yaml.safe_dump(toc))
    with pytest.raises(LinUtilsError, match="lists book/notebooks/fig7_missing, but there is no notebook"):
        runner.run_order(**kw)
    toc["chapters"][-1] = {"glob": "book/notebooks/table*"}
    (dirs["book_dir"] / "_toc.yml").write_text(yaml.safe_dump(toc))
    with pytest.raises(LinUtilsError, match="glob book/notebooks/table\\* matches no notebook"):
        runner.run_order(**kw)


def test_repository_toc_runs_every_figure_then_claims_then_the_landing_page():
    order = runner.run_order()
    assert order[-2:] == ["claims", "intro"]  # the landing page (the book's root) summarises the rest
    figures = sorted(p.stem for p in paths.notebooks_dir().glob("fig*.ipynb"))
    assert [n for n in order if n.startswith("fig")] == figures
    assert profiles.available_profiles() == ["cpu", "full", "gpu", "smoke"]
    for profile in profiles.available_profiles():
        assert set(profiles.load_profile(profile)) <= set(order), profile


def test_a_root_notebook_runs_last(tmp_path):
    dirs = _project(tmp_path, {})
    toc = {**TOC, "root": "book/notebooks/fig1_a"}
    (dirs["book_dir"] / "_toc.yml").write_text(yaml.safe_dump(toc))
    kw = dict(toc=dirs["book_dir"] / "_toc.yml", notebooks_dir=dirs["notebooks_dir"])
    assert runner.run_order(**kw) == ["fig3_b", "claims", "fig1_a"]
    assert site.root_notebook(toc) == "fig1_a" and site.root_notebook(TOC) is None


def test_present_page_keeps_explicit_display_tags():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("a = 2", metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("show()", metadata={"tags": ["remove-input"]}),
                nbformat.v4.new_code_cell("code()", metadata={"tags": ["show-input"]}),
                nbformat.v4.new_code_cell("more()"), nbformat.v4.new_markdown_cell("# text")]
    runner.present_page(nb)
    runner.present_page(nb)  # idempotent
    assert [c.metadata.get("tags") for c in nb.cells] == [
        ["parameters", "remove-cell"], ["injected-parameters", "hide-input"], ["remove-input"],
        ["show-input"], ["hide-input"], None]
    assert nb.cells[4].metadata["mystnb"]["code_prompt_show"] == runner.CODE_PROMPT


def test_reproduce_commands_rerun_the_notebook_with_its_profile_parameters(tmp_path):
    dirs = _typed_project(tmp_path, {"lr": 2, "label": 'say "$HOME" `x` \\', "models": ["random:stories260K"]})
    kw = dict(profiles_dir=dirs["profiles_dir"], notebooks_dir=dirs["notebooks_dir"])
    run, by_hand = runner.reproduce_commands("fig2_typed", "smoke", **kw)
    assert run == "lin-utils book run --profile smoke --only fig2_typed"
    # what bash passes to papermill: the command with papermill swapped for printing its arguments
    shell = subprocess.run(["bash", "-c", by_hand.replace("papermill", "printf '%s\\0' papermill", 1)],
                           capture_output=True, text=True, check=True)
    args = shell.stdout.split("\0")[:-1]
    assert args[:5] == ["papermill", "notebooks/fig2_typed.ipynb", "out.ipynb", "-y", args[4]]
    assert yaml.safe_load(args[4]) == profiles.notebook_parameters("fig2_typed", "smoke", **kw)
    assert yaml.safe_load(args[4])["label"] == 'say "$HOME" `x` \\'


def test_only_runs_the_selection_in_order(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path))
    records = runner.run_profile("smoke", only=["claims", "fig1_a"], log=lambda _: None, **dirs)
    assert [r.name for r in records] == ["fig1_a", "claims"]
    assert (tmp_path / "run.log").read_text().splitlines()[1] == "claims profile=smoke force=False env=smoke"
    assert sorted(p.name for p in (tmp_path / "book" / "notebooks").iterdir()) == ["claims.ipynb", "fig1_a.ipynb"]


def test_a_run_removes_pages_whose_notebook_is_gone(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path))
    runner.run_profile("smoke", log=lambda _: None, **dirs)
    (tmp_path / "notebooks" / "fig3_b.ipynb").rename(tmp_path / "notebooks" / "fig3_c.ipynb")  # renamed
    (dirs["profiles_dir"] / "smoke.yaml").write_text(yaml.safe_dump(_logging_sections(tmp_path, ["fig1_a", "claims"])))
    lines = []
    runner.run_profile("smoke", only=["fig1_a"], log=lines.append, **dirs)
    pages = sorted(p.name for p in (tmp_path / "book" / "notebooks").iterdir())
    assert pages == ["claims.ipynb", "fig1_a.ipynb"]  # fig3_c not run yet; claims kept
    assert any(ln.startswith("removed fig3_b.ipynb") for ln in lines)


def test_unknown_profile_lists_valid_ones(tmp_path):
    dirs = _project(tmp_path, {})
    (dirs["profiles_dir"] / "cpu.yaml").write_text("{}\n")
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("laptop", **dirs)
    msg = str(err.value)
    assert "\n" not in msg and "'laptop'" in msg and "cpu, smoke" in msg


def test_undeclared_parameter_names_notebook_and_parameter(tmp_path):
    sections = _logging_sections(tmp_path, fig3_b={"max_tokenz": 10})
    dirs = _project(tmp_path, sections)
    with pytest.raises(LinUtilsError, match=r"'max_tokenz' is not declared by notebook fig3_b"):
        runner.run_profile("smoke", **dirs)
    assert _ran(tmp_path) == []  # validated before anything ran


def test_unknown_names_and_reserved_parameters(tmp_path):
    dirs = _project(tmp_path, {"fig1_a": {}, "zz": {}})
    with pytest.raises(LinUtilsError, match="unknown notebook.*zz"):
        runner.run_profile("smoke", **dirs)
    dirs = _project(tmp_path, {"fig1_a": {"force": True}})
    with pytest.raises(LinUtilsError, match="sets 'force', which the runner injects"):
        runner.run_profile("smoke", **dirs)
    dirs = _project(tmp_path, {"_shared": {"anything": 1}, "claims": {}})  # '_' keys are for YAML anchors
    with pytest.raises(LinUtilsError, match=r"unknown notebook\(s\) 'nope'"):
        runner.run_profile("smoke", only=["nope"], **dirs)


def test_notebook_must_declare_profile_and_force(tmp_path):
    dirs = _project(tmp_path, {}, names=["fig1_a", "claims"])
    nb = nbformat.read(dirs["notebooks_dir"] / "fig1_a.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = "\n".join(ln for ln in params.source.splitlines() if "force" not in ln)
    nbformat.write(nb, dirs["notebooks_dir"] / "fig1_a.ipynb")
    with pytest.raises(LinUtilsError, match="notebook fig1_a must declare force"):
        runner.run_profile("smoke", **dirs)


TYPED_PARAMETERS = """\
profile = "cpu"
force = False
steps = 3
lr = 0.5
label = "x"
models = ["stories260K"]
flag = True
anything = None
log_path = ""
"""


def _typed_project(tmp_path: Path, section: dict) -> dict:
    """fig1_a (the fixture, logging) runs before fig2_typed, whose section is ``section``."""
    dirs = _project(tmp_path, _logging_sections(tmp_path, names=["fig1_a"]), names=["fig1_a", "claims"])
    _write_notebook(dirs["notebooks_dir"] / "fig2_typed.ipynb", TYPED_PARAMETERS,
                    "if log_path:\n    open(log_path, 'a').write('fig2_typed\\n')")
    sections = yaml.safe_load((dirs["profiles_dir"] / "smoke.yaml").read_text())
    sections["fig2_typed"] = {"log_path": str(tmp_path / "run.log"), **section}
    (dirs["profiles_dir"] / "smoke.yaml").write_text(yaml.safe_dump(sections))
    return dirs


@pytest.mark.parametrize("key, value, expected", [
    ("steps", "3", "must be int like its default 3, got str '3'"),
    ("steps", 2.5, "must be int like its default 3, got float 2.5"),
    ("steps", True, "must be int like its default 3, got bool True"),
    ("lr", "fast", "must be float like its default 0.5, got str 'fast'"),
    ("label", 7, "must be str like its default 'x', got int 7"),
    ("models", "stories260K", "must be list like its default ['stories260K'], got str 'stories260K'"),
    ("flag", "yes", "must be bool like its default True, got str 'yes'"),
])
def test_wrong_types_are_named_before_anything_runs(tmp_path, key, value, expected):
    dirs = _typed_project(tmp_path, {key: value})
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("smoke", log=lambda _: None, **dirs)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"profile smoke, notebook fig2_typed: parameter '{key}' {expected}")
    assert _ran(tmp_path) == []  # fig1_a, which comes first, did not run either


def test_compatible_types_and_notebook_parameters(tmp_path):
    dirs = _typed_project(tmp_path, {"lr": 2, "anything": {"a": [1]}, "models": []})
    params = profiles.notebook_parameters("fig2_typed", "smoke", profiles_dir=dirs["profiles_dir"],
                                        notebooks_dir=dirs["notebooks_dir"])
    assert params == {"profile": "smoke", "force": False, "steps": 3, "lr": 2, "label": "x",
                      "models": [], "flag": True, "anything": {"a": [1]},
                      "log_path": str(tmp_path / "run.log")}
    forced = profiles.notebook_parameters("fig1_a", "smoke", force=True, profiles_dir=dirs["profiles_dir"],
                                        notebooks_dir=dirs["notebooks_dir"])
    assert forced == {"profile": "smoke", "force": True, "name": "fig1_a",
                      "log_path": str(tmp_path / "run.log"), "fail": False, "draw": False}


def test_model_specs_are_checked_before_anything_runs(tmp_path):
    from lin_utils import models

    if not hasattr(models, "validate_spec"):
        pytest.skip("lin_utils.models.validate_spec does not exist yet")
    dirs = _typed_project(tmp_path, {"models": ["stories260K", "random:"]})
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("smoke", log=lambda _: None, **dirs)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("profile smoke, notebook fig2_typed: parameter 'models': ")
    assert "'random:'" in msg
    assert _ran(tmp_path) == []


def test_failed_run_leaves_the_previous_profile_pages_untouched(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path), profile="cpu")
    runner.run_profile("cpu", log=lambda _: None, **dirs)
    pages = tmp_path / "book" / "notebooks"
    before = {p.name: p.read_bytes() for p in pages.glob("*.ipynb")}
    assert len(before) == 3

    # smoke: the first notebook succeeds, the second fails
    (dirs["profiles_dir"] / "smoke.yaml").write_text(
        yaml.safe_dump(_logging_sections(tmp_path, fig3_b={"fail": True}))
    )
    lines = []
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("smoke", log=lines.append, **dirs)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("notebook fig3_b failed at cell 4 of 5")
    assert "DataNotFoundError: dataset 'tinystories' not found in the local mirror" in msg
    assert {p.name: p.read_bytes() for p in pages.glob("*.ipynb")} == before  # fig1_a too
    assert {site.page_profile(p) for p in pages.glob("*.ipynb")} == {"cpu"}
    assert _ran(tmp_path) == ["fig1_a", "fig3_b", "claims", "fig1_a", "fig3_b"]  # claims stopped
    # the staging folder is gone; the failed notebook's partial output is kept for inspection
    assert sorted(p.name for p in pages.iterdir() if p.name.startswith(".")) == [".failed"]
    assert (pages / ".failed" / "fig3_b.ipynb").exists()
    assert any("FAILED" in ln and ".failed/fig3_b.ipynb" in ln for ln in lines)


CTRL_C_SCRIPT = """
import faulthandler, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for the stacks if it hangs
# Ctrl-C as in an interactive terminal: a background job of a non-interactive shell
# (`make test &`) starts with SIGINT ignored, and the child would inherit that.
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
from lin_utils import cli, paths
tmp = Path(sys.argv[1])
paths.profiles_dir = lambda: tmp / "profiles"
paths.notebooks_dir = lambda: tmp / "notebooks"
paths.book_dir = lambda: tmp / "book"
sys.exit(cli.main(["book", "run", "--profile", sys.argv[2]]))
"""


@pytest.mark.slow
def test_a_kernel_that_dies_fails_its_notebook_in_one_line(tmp_path):
    dirs = _project(tmp_path, {}, names=["fig1_a", "claims"])
    _write_notebook(dirs["notebooks_dir"] / "fig1_a.ipynb", 'profile = "cpu"\nforce = False',
                    "import os\nos.write(2, b'last words of the kernel\\n')\nos._exit(3)")
    with pytest.raises(LinUtilsError) as err:
        runner.run_profile("smoke", log=lambda _: None, **dirs)
    msg = str(err.value)
    assert msg.startswith("notebook fig1_a failed") and "\n" not in msg, msg
    assert "last words of the kernel" in msg  # its stderr went to a file, not to the terminal
    assert not (tmp_path / "book" / "notebooks" / "fig1_a.ipynb").exists()


def test_ctrl_c_prints_one_line_exits_130_and_cleans_up(tmp_path):
    dirs = _project(tmp_path, _logging_sections(tmp_path, names=["fig1_a", "claims"]),
                    names=["fig1_a", "claims"], profile="cpu")
    runner.run_profile("cpu", log=lambda _: None, **dirs)
    pages = tmp_path / "book" / "notebooks"
    before = {p.name: p.read_bytes() for p in pages.glob("*.ipynb")}

    marker = tmp_path / "kernel.pid"
    _write_notebook(dirs["notebooks_dir"] / "fig2_sleep.ipynb", 'profile = "cpu"\nforce = False',
                    f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n"
                    "time.sleep(300)")
    (dirs["profiles_dir"] / "smoke.yaml").write_text("claims: {}\n")
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path), "smoke"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not (marker.exists() and marker.read_text()) and time.time() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert marker.exists(), "the notebook never started"
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no exit 90 s after Ctrl-C; stdout:\n{out}\nstacks:\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err == "lin-utils: interrupted\n"
    assert {p.name: p.read_bytes() for p in pages.glob("*.ipynb")} == before
    assert not [p for p in pages.iterdir() if p.name.startswith(".staging")]
    kernel = int(marker.read_text())
    for _ in range(50):  # the kernel is gone
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"kernel {kernel} still running")


@pytest.mark.parametrize("key", ["steps", "lr"])
def test_null_fits_a_numeric_default(tmp_path, key):
    # "None: all" (lm-eval's limit in the gpu and full profiles); a bool or a list stays typed
    dirs = _typed_project(tmp_path, {key: None})
    assert profiles.notebook_parameters("fig2_typed", "smoke", profiles_dir=dirs["profiles_dir"],
                                      notebooks_dir=dirs["notebooks_dir"])[key] is None
    for other in ("flag", "models"):
        dirs = _typed_project(tmp_path, {other: None})
        with pytest.raises(LinUtilsError, match=f"parameter '{other}' must be"):
            profiles.notebook_parameters("fig2_typed", "smoke", profiles_dir=dirs["profiles_dir"],
                                       notebooks_dir=dirs["notebooks_dir"])


def test_the_gpu_and_full_profiles_validate():
    for profile in ("gpu", "full"):
        for name in profiles.load_profile(profile):
            profiles.notebook_parameters(name, profile)


def test_sigterm_cleans_up_like_ctrl_c_and_exits_143(tmp_path):
    # issue 25: SIGTERM used to kill the command at once, leaving the staging folder, the kernel's
    # folder of sockets and its log in $TMPDIR, and the kernel itself running
    dirs = _project(tmp_path, _logging_sections(tmp_path, names=["fig1_a", "claims"]),
                    names=["fig1_a", "claims"], profile="cpu")
    pages = tmp_path / "book" / "notebooks"
    marker = tmp_path / "kernel.pid"
    _write_notebook(dirs["notebooks_dir"] / "fig2_sleep.ipynb", 'profile = "cpu"\nforce = False',
                    f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n"
                    "time.sleep(300)")
    (dirs["profiles_dir"] / "smoke.yaml").write_text("claims: {}\n")
    # a short $TMPDIR: the kernel's IPC socket path must fit the 107 bytes of a Unix socket name,
    # which pytest-xdist's deeper tmp_path (".../popen-gw1/...") does not leave room for
    tmp = Path(tempfile.mkdtemp(prefix="lt"))
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path), "smoke"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    try:
        deadline = time.time() + 180
        while not (marker.exists() and marker.read_text()) and time.time() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert marker.exists(), "the notebook never started"
        assert [p.name for p in tmp.iterdir() if p.name.startswith("lin-kernel-")]  # the kernel's folder
        assert [p for p in pages.iterdir() if p.name.startswith(".staging")]
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no exit 90 s after SIGTERM; stdout:\n{out}\nstacks:\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err == "lin-utils: terminated\n"
    assert not [p for p in pages.iterdir() if p.name.startswith(".staging")]
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("lin-kernel-")]
    assert sorted(p.name for p in tmp.iterdir()) == []  # nor its connection file (it holds the session key)
    tmp.rmdir()
    kernel = int(marker.read_text())
    for _ in range(50):
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"kernel {kernel} still running")
