"""Run a page's ``show()`` in the test process and compare what it glues with a real notebook run.

A page's ``show()`` is what its notebook runs. Here it runs inside an IPython shell (no kernel) and
every ``display_data`` it publishes is captured: the glue records (myst-nb's
``application/papermill.record/`` prefix and ``scrapbook`` name) and the closing re-run commands.

The oracle is a snapshot (``tests/fixtures/pages/<page>.json``) of the glue records: for Fig 9 and
the scaling page those of the executed notebook after a real papermill run (``make book``,
:func:`freeze`); for Figs 1, 3, 6-8 and Table 1, whose text changed after their last notebook run
(the seeded zoo), those of ``show()`` on the committed tables at commit 6aa28e3 (:func:`freeze_show`),
reviewed against the notebook run's snapshot they replaced. The result tables a page read are frozen
beside it (``tests/fixtures/results/<profile>/``, under the keys they
were computed with). A test stages those tables into a temporary result cache under the keys the
code asks for today (a zoo model's weight key changes with its training recipe) and runs
``show()`` there: it must glue the same names and the same numbers, text and markdown. So the test
does not depend on the committed ``data/results`` being recomputed, and never computes a table.

:func:`freeze` (run by hand, see its docstring) writes a page's snapshot and frozen tables.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from lin_utils import pages, paths, results
from lin_utils.scan import model_key

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FROZEN = FIXTURES / "results"
SNAPSHOTS = FIXTURES / "pages"
EXECUTED = paths.REPO_ROOT / "book" / "notebooks"


def _records(outputs) -> tuple[dict[str, dict], list[dict]]:
    """``(glued: name -> {mime: data}, shown: the other display outputs)``."""
    glued, shown = {}, []
    for data, metadata in outputs:
        scrap = (metadata or {}).get("scrapbook")
        if scrap:
            assert scrap["name"] not in glued, f"{scrap['name']} glued twice"
            glued[scrap["name"]] = {k.removeprefix(scrap["mime_prefix"]): v for k, v in data.items()}
        else:
            shown.append(dict(data=data, metadata=metadata or {}))
    return glued, shown


def _current(params: dict) -> dict:
    """``params`` with a zoo model's weight key as the code computes it today."""
    model = params.get("model")
    if isinstance(model, str) and model.startswith("zoo:") and "weights" in params:
        return {**params, **model_key(model)}
    return dict(params)


def stage(tmp: Path, computations, profile: str = "cpu", frozen: Path = FROZEN,
          as_profile: str | None = None) -> tuple[Path, dict[str, str]]:
    """A result cache under ``tmp`` holding the frozen tables of ``computations`` under today's
    keys (in the folder of profile ``as_profile``, default ``profile``). Returns the root and the
    renames ``{frozen file name: staged file name}``."""
    root, renames = Path(tmp) / "results", {}
    out = as_profile or profile
    for comp in computations:
        folder = root / out / comp
        folder.mkdir(parents=True, exist_ok=True)
        for meta_path in sorted((frozen / profile / comp).glob("*.json")):
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            old, new = meta["params"], _current(meta["params"])
            if new == old and out == profile:
                shutil.copy2(meta_path, folder)
                shutil.copy2(meta_path.with_suffix(".csv"), folder)
                continue
            df = results.load_table(comp, meta["table"], old, profile, root=frozen)
            assert df is not None, meta_path
            csv = results.save_table(df, comp, meta["table"], new, out, root=root, extra=meta.get("extra"))
            renames[meta_path.stem] = csv.stem
    return root, renames


def run_show(name: str, monkeypatch, root: Path, profile: str = "cpu", config=None):
    """Run page ``name``'s ``show()`` on the result cache ``root``, its tables all there.

    Returns ``(what show returned, glued: name -> {mime: data}, shown: the other displays)``.
    """
    monkeypatch.setenv("LIN_RESULTS_DIR", str(root))
    page = pages.get(name)
    cfg = pages.config(page, profile) if config is None else config
    if cfg is not None:  # never compute inside a test
        assert page.tables(cfg, profile=profile, cache_only=True) is not None, f"{name}: a {profile} table is missing"
    return capture(lambda: page.show(cfg, profile=profile))


def capture(call):
    """``(call(), glued, shown)``: what ``call`` returned, glued and displayed in an IPython shell."""
    import matplotlib

    matplotlib.use("Agg")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    results.forget_reads()
    try:
        with capture_output(stdout=False, stderr=False) as cap:
            returned = call()
    finally:
        results.forget_reads()
    glued, shown = _records([(o.data, o.metadata) for o in cap.outputs])
    return returned, glued, shown


def snapshot(name: str) -> dict:
    return json.loads((SNAPSHOTS / f"{name}.json").read_text(encoding="utf-8"))


def show_frozen(name: str, monkeypatch, tmp_path: Path):
    """Stage page ``name``'s frozen tables and run its ``show()``: ``(returned, glued, shown,
    snapshot, renames)``."""
    snap = snapshot(name)
    root, renames = stage(tmp_path, snap["computations"], snap["profile"])
    returned, glued, shown = run_show(name, monkeypatch, root, snap["profile"])
    return returned, glued, shown, snap, renames


def _is_number(bundle: dict) -> bool:
    return set(bundle) == {"text/plain"}


def assert_same_glue(glued: dict, want: dict, rel: float = 1e-9) -> None:
    """The same glue names; numbers equal to ``rel``, text and markdown identical; a PNG where the
    notebook had one (its bytes depend on the plotting stack, not compared)."""
    assert sorted(glued) == sorted(want)
    for key, bundle in want.items():
        got = glued[key]
        assert set(bundle) <= set(got) and set(got) - set(bundle) <= {"text/plain"}, key
        for mime, value in bundle.items():
            if mime == "image/png":
                assert isinstance(got[mime], str) and len(got[mime]) > 1000, key
            elif mime == "text/plain" and _is_number(bundle):
                try:
                    expected = float(value)
                except ValueError:  # glued text
                    assert got[mime] == value, key
                    continue
                actual = float(got[mime])
                assert (math.isnan(expected) and math.isnan(actual)) or math.isclose(
                    actual, expected, rel_tol=rel, abs_tol=1e-12), (key, actual, expected)
            elif mime != "text/plain" or "text/markdown" not in bundle:  # the Markdown object's repr: an address
                assert got[mime] == value, (key, mime)


def assert_same_reproduce(shown: list[dict], want: dict, renames: dict[str, str]) -> None:
    """The page's last display: the re-run commands and links to the tables it read (renamed
    where a table was staged under today's key), with the downloads in its metadata."""
    assert len(shown) == 1, [s["data"].keys() for s in shown]
    text, meta = want["data"]["text/markdown"], want["metadata"]
    for old, new in renames.items():
        text = text.replace(old, new)
        meta = json.loads(json.dumps(meta).replace(old, new))
    assert shown[0]["data"]["text/markdown"] == text
    assert shown[0]["metadata"] == meta


def freeze(name: str, profile: str = "cpu", source: Path | None = None) -> None:
    """Write page ``name``'s snapshot from its executed notebook (``book/notebooks``) and freeze
    the tables its ``show()`` reads from ``source`` (default the committed ``data/results``)::

        .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); import shown; shown.freeze('fig7_pruning_second_model')"

    A table the notebook read under another zoo weight key is found by its other parameters.
    Only for a notebook that ran on the tables being frozen.
    """
    import os
    import tempfile

    source = Path(source or paths.REPO_ROOT / "data" / "results")
    nb = json.loads((EXECUTED / f"{name}.ipynb").read_text(encoding="utf-8"))
    outs = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if o.get("output_type") == "display_data":
                data = {k: "".join(v) if isinstance(v, list) else v for k, v in o["data"].items()}
                outs.append((data, o.get("metadata", {})))
    glued, shown = _records(outs)
    for bundle in glued.values():
        if "image/png" in bundle:
            bundle["image/png"] = True
    page = pages.get(name)
    cfg = pages.config(page, profile)
    computations = sorted({Path(p).parent.name for p in shown[-1]["metadata"][next(iter(shown[-1]["metadata"]))]["downloads"]})
    with tempfile.TemporaryDirectory() as tmp:  # every table of those computations under today's keys
        origin = {}
        for comp in computations:
            for meta_path in sorted((source / profile / comp).glob("*.json")):
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                new = _current(meta["params"])
                staged = results.table_paths(comp, meta["table"], new, profile, root=tmp)[0]
                if new == meta["params"] or not staged.exists():
                    if new != meta["params"]:
                        df = results.load_table(comp, meta["table"], meta["params"], profile, root=source)
                        results.save_table(df, comp, meta["table"], new, profile, root=tmp)
                    else:
                        staged.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(meta_path, staged.with_suffix(".json"))
                        shutil.copy2(meta_path.with_suffix(".csv"), staged)
                    origin[staged.resolve()] = meta_path.with_suffix(".csv")
        old_env = os.environ.get("LIN_RESULTS_DIR")
        os.environ["LIN_RESULTS_DIR"] = tmp
        try:
            results.forget_reads()
            assert page.tables(cfg, profile=profile, cache_only=True) is not None
            read = [origin[Path(c).resolve()] for c, _ in results.files_read()]
        finally:
            results.forget_reads()
            if old_env is None:
                os.environ.pop("LIN_RESULTS_DIR")
            else:
                os.environ["LIN_RESULTS_DIR"] = old_env
    for csv in read:
        dest = FROZEN / profile / csv.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(csv, dest)
        shutil.copy2(csv.with_suffix(".json"), dest)
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    (SNAPSHOTS / f"{name}.json").write_text(json.dumps(dict(
        page=name, profile=profile, computations=computations,
        note="glue records of the executed notebook (make book) on the frozen tables; PNGs not stored",
        glue=glued, reproduce=shown[-1]), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def freeze_show(name: str, profile: str = "cpu", source: Path | None = None) -> None:
    """Write page ``name``'s snapshot from its ``show()`` run on the committed tables (``source``,
    default ``data/results``) and freeze those tables: after an intended change of what a page
    shows, when no executed notebook of the new code is at hand (review the snapshot's diff)::

        .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); import shown; shown.freeze_show('fig1_linearity_profiles')"
    """
    import os

    source = Path(source or paths.REPO_ROOT / "data" / "results")
    old_env = os.environ.get("LIN_RESULTS_DIR")
    os.environ["LIN_RESULTS_DIR"] = str(source)
    try:
        page = pages.get(name)
        _, glued, shown = capture(lambda: page.show(pages.config(page, profile), profile=profile))
    finally:
        if old_env is None:
            os.environ.pop("LIN_RESULTS_DIR")
        else:
            os.environ["LIN_RESULTS_DIR"] = old_env
    for bundle in glued.values():
        if "image/png" in bundle:
            bundle["image/png"] = True
        if "text/markdown" in bundle:
            bundle.pop("text/plain", None)  # the Markdown object's repr: an address
    downloads = shown[-1]["metadata"]["lin_utils"]["downloads"]
    for rel in downloads:
        dest = FROZEN / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, dest)
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    (SNAPSHOTS / f"{name}.json").write_text(json.dumps(dict(
        page=name, profile=profile, computations=sorted({Path(r).parent.name for r in downloads}),
        note="glue records of show() on the frozen tables (freeze_show); PNGs not stored",
        glue=glued, reproduce=shown[-1]), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
