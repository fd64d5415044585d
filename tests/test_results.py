"""The result cache: round trips, keys, cache hits, force, verification, atomic writes, provenance."""

import json
import os
import stat
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lin_utils import results
from lin_utils.errors import LinUtilsError

PARAMS = {"models": ["stories260K", "random-init"], "max_tokens": 4096, "exclude_bos": True}


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["stories260K", "stories260K", "NA", "001"],
            "layer": np.array([0, 1, 2, 3], dtype="int64"),
            "score": [0.991234567890123, 1 / 3, float("nan"), 1e-300],
            "residual": [True, False, True, False],
            "n_tokens": pd.array([10, None, 30, 40], dtype="Int64"),
            "note": pd.Series(["a", "", "c", "d"], dtype=object),
            "kind": pd.Categorical(["x", "y", "x", "y"]),
        }
    )


def test_round_trip_keeps_values_and_dtypes(tmp_path):
    df = _table()
    path = results.save_table(df, "fig1", "scores", PARAMS, "smoke", 1.5, root=tmp_path)
    assert path == tmp_path / "smoke" / "fig1" / f"scores-{results.param_hash(PARAMS)}.csv"
    assert path.with_suffix(".json").exists()
    back = results.load_table("fig1", "scores", PARAMS, "smoke", root=tmp_path)
    expected = df.copy()
    expected.loc[1, "note"] = np.nan  # CSV cannot tell an empty string from a missing value
    pd.testing.assert_frame_equal(back, expected)
    assert back["score"].iloc[0] == 0.991234567890123  # exact float round trip
    assert back["model"].tolist()[2:] == ["NA", "001"]  # strings stay strings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(st.characters(exclude_categories=["Cs"]), min_size=1), min_size=1, max_size=4))
def test_any_text_round_trips(tmp_path, texts):
    # model completions hold anything: a bare "\r" once split a row in two (full-profile rehearsal)
    df = pd.DataFrame({"completion": texts, "n": range(len(texts))})
    results.save_table(df, "t3", "items", PARAMS, "smoke", root=tmp_path)
    back = results.load_table("t3", "items", PARAMS, "smoke", root=tmp_path)
    assert back is not None and back["completion"].tolist() == texts and back["n"].tolist() == list(range(len(texts)))


def test_csv_is_plain_and_diffable(tmp_path):
    df = pd.DataFrame({"layer": [0, 1], "score": [0.5, 0.25]})
    path = results.save_table(df, "fig1", "scores", PARAMS, "cpu", root=tmp_path)
    assert path.read_text() == "layer,score\n0,0.5\n1,0.25\n"


def test_missing_table_is_none(tmp_path):
    assert results.load_table("fig1", "scores", PARAMS, "smoke", root=tmp_path) is None
    with pytest.raises(LinUtilsError, match="no stored result"):
        results.load_provenance("fig1", "scores", PARAMS, "smoke", root=tmp_path)


def test_param_hash_is_stable_and_sensitive():
    h = results.param_hash(PARAMS)
    assert len(h) == 12
    # the canonical form is part of the cache's contract: a change here orphans stored results
    assert results.canonical_json(PARAMS) == (
        '{"exclude_bos":true,"max_tokens":4096,"models":["stories260K","random-init"]}'
    )
    assert h == "4499216c5a14"  # pinned: a new hash function would orphan every stored result
    assert results.param_hash({}) == "44136fa355b3"
    assert h == results.param_hash(dict(reversed(list(PARAMS.items()))))  # key order is irrelevant
    assert h == results.param_hash({**PARAMS, "models": ("stories260K", "random-init")})
    assert results.param_hash({"p": Path("/a/b")}) == results.param_hash({"p": "/a/b"})
    assert results.param_hash({"n": np.int64(3)}) == results.param_hash({"n": 3})
    variants = [
        {**PARAMS, "max_tokens": 4097},
        {**PARAMS, "exclude_bos": False},
        {**PARAMS, "models": ["random-init", "stories260K"]},
        {**PARAMS, "seed": 0},
        {**PARAMS, "max_tokens": 4096.0},
    ]
    assert len({h, *map(results.param_hash, variants)}) == len(variants) + 1


def test_unserializable_params_are_refused():
    with pytest.raises(LinUtilsError, match="not JSON-serializable"):
        results.param_hash({"f": lambda: 0})
    with pytest.raises(LinUtilsError, match="finite"):
        results.param_hash({"x": float("nan")})


def test_names_with_slashes_are_refused(tmp_path):
    with pytest.raises(LinUtilsError, match="invalid computation name"):
        results.table_paths("../fig1", "scores", PARAMS, "smoke", root=tmp_path)
    with pytest.raises(LinUtilsError, match="invalid profile name"):
        results.table_paths("fig1", "scores", PARAMS, "a/b", root=tmp_path)


def test_cache_hit_does_not_recompute_and_force_does(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"layer": [0, 1], "score": [0.99, 0.98 + len(calls)]})

    first = results.cached("fig1", "scores", PARAMS, compute, profile="smoke", root=tmp_path)
    second = results.cached("fig1", "scores", PARAMS, compute, profile="smoke", root=tmp_path)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(first, second)

    # other parameters or another profile are other cache entries
    results.cached("fig1", "scores", {**PARAMS, "seed": 1}, compute, profile="smoke", root=tmp_path)
    results.cached("fig1", "scores", PARAMS, compute, profile="cpu", root=tmp_path)
    assert len(calls) == 3

    forced = results.cached(
        "fig1", "scores", PARAMS, compute, profile="smoke", force=True, root=tmp_path
    )
    assert len(calls) == 4
    assert forced["score"].iloc[1] == pytest.approx(4.98)
    again = results.cached("fig1", "scores", PARAMS, compute, profile="smoke", root=tmp_path)
    pd.testing.assert_frame_equal(again, forced)
    assert len(calls) == 4


def test_several_tables_per_notebook(tmp_path):
    a = results.cached("fig1", "scores", PARAMS, lambda: pd.DataFrame({"a": [1]}),
                       profile="smoke", root=tmp_path)
    b = results.cached("fig1", "norms", PARAMS, lambda: pd.DataFrame({"b": [2.0]}),
                       profile="smoke", root=tmp_path)
    assert list(a.columns) == ["a"] and list(b.columns) == ["b"]
    assert len(list((tmp_path / "smoke" / "fig1").glob("*.csv"))) == 2


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_failing_compute_writes_nothing_and_keeps_previous(tmp_path):
    def boom():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        results.cached("fig1", "scores", PARAMS, boom, profile="smoke", root=tmp_path)
    assert _all_files(tmp_path) == []

    good = results.cached("fig1", "scores", PARAMS, lambda: pd.DataFrame({"x": [1, 2]}),
                          profile="smoke", root=tmp_path)
    before = {p: p.read_bytes() for p in _all_files(tmp_path)}
    with pytest.raises(RuntimeError):
        results.cached("fig1", "scores", PARAMS, boom, profile="smoke", force=True, root=tmp_path)
    assert {p: p.read_bytes() for p in _all_files(tmp_path)} == before
    pd.testing.assert_frame_equal(
        results.load_table("fig1", "scores", PARAMS, "smoke", root=tmp_path), good
    )


def test_failing_write_leaves_no_partial_file(tmp_path):
    df = pd.DataFrame({"x": [1, 2]})
    with pytest.raises(TypeError):  # the sidecar cannot be serialized after the CSV was staged
        results.save_table(df, "fig1", "scores", PARAMS, "smoke", root=tmp_path,
                           extra={"device": object()})
    assert _all_files(tmp_path) == []  # neither the table nor a temp file


def test_compute_must_return_a_dataframe(tmp_path):
    with pytest.raises(LinUtilsError, match="expected a DataFrame"):
        results.cached("fig1", "scores", PARAMS, lambda: [1, 2], profile="smoke", root=tmp_path)
    assert _all_files(tmp_path) == []


def test_provenance_fields(tmp_path):
    results.cached("fig1", "scores", PARAMS, lambda: pd.DataFrame({"x": [1.0]}),
                   profile="smoke", root=tmp_path, extra={"device": "cpu"})
    meta = results.load_provenance("fig1", "scores", PARAMS, "smoke", root=tmp_path)
    assert meta["params"] == PARAMS
    assert meta["param_hash"] == results.param_hash(PARAMS)
    assert meta["profile"] == "smoke" and meta["computation"] == "fig1" and meta["table"] == "scores"
    assert meta["wall_time_s"] >= 0 and meta["timestamp"].endswith("+00:00")
    assert meta["rows"] == 1 and meta["columns"] == {"x": "float64"}
    csv = results.table_paths("fig1", "scores", PARAMS, "smoke", root=tmp_path)[0]
    assert meta["sha256"] == __import__("hashlib").sha256(csv.read_bytes()).hexdigest()
    assert set(meta["git"]) == {"commit", "dirty"}
    assert set(meta["versions"]) >= {"python", "torch", "transformers", "numpy", "pandas", "lin_utils"}
    assert meta["versions"]["pandas"] == pd.__version__
    hw = meta["hardware"]
    assert hw["cpu_count"] >= 1 and hw["platform"] and hw["cpu_model"]
    assert hw["torch"]["device"] in ("cpu", "cuda")
    assert meta["extra"] == {"device": "cpu"}
    assert isinstance(hw["blas"], list)


def test_provenance_holds_no_absolute_path_of_the_machine(tmp_path):
    results.cached("fig1", "scores", {"n": 1}, lambda: pd.DataFrame({"x": [1.0]}),
                   profile="smoke", root=tmp_path)
    text = results.table_paths("fig1", "scores", {"n": 1}, "smoke", root=tmp_path)[1].read_text()
    local = {sys.executable, sys.prefix, sys.base_prefix, str(Path.home()), str(results.REPO_ROOT),
             str(tmp_path)}
    assert not [p for p in local if p in text]

    def strings(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)
        elif isinstance(node, str):
            yield node

    assert not [s for s in strings(json.loads(text)) if s.startswith("/") or ":\\" in s]


def test_results_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path / "elsewhere"))
    assert results.results_root() == tmp_path / "elsewhere"
    results.cached("fig1", "t", {}, lambda: pd.DataFrame({"x": [1]}), profile="smoke")
    assert (tmp_path / "elsewhere" / "smoke" / "fig1" / f"t-{results.param_hash({})}.csv").exists()
    monkeypatch.delenv("LIN_RESULTS_DIR")
    assert results.results_root() == results.REPO_ROOT / "data" / "results"


def _stored(tmp_path, value=1.0, params=PARAMS):
    """Store a three-row table; return (compute calls, csv path, json path)."""
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"layer": [0, 1, 2], "score": [value, value / 2, value / 4]})

    results.cached("fig1", "scores", params, compute, profile="smoke", root=tmp_path)
    csv, sidecar = results.table_paths("fig1", "scores", params, "smoke", root=tmp_path)
    return compute, calls, csv, sidecar


def _recomputes(tmp_path, compute, calls, path) -> pd.DataFrame:
    """``cached`` warns once (naming ``path``) and recomputes."""
    with pytest.warns(results.CacheWarning) as caught:
        df = results.cached("fig1", "scores", PARAMS, compute, profile="smoke", root=tmp_path)
    messages = [str(w.message) for w in caught if issubclass(w.category, results.CacheWarning)]
    assert len(messages) == 1 and "\n" not in messages[0] and str(path) in messages[0]
    assert len(calls) == 2
    return df


def test_truncated_csv_is_a_miss_and_recomputed(tmp_path):
    compute, calls, csv, sidecar = _stored(tmp_path)
    meta_before = json.loads(sidecar.read_text())
    csv.write_text(csv.read_text().splitlines(keepends=True)[0] + "0,1.0\n")  # a row and a half lost
    with pytest.warns(results.CacheWarning, match="does not match the sha256"):
        assert results.load_table("fig1", "scores", PARAMS, "smoke", root=tmp_path) is None
    df = _recomputes(tmp_path, compute, calls, csv)
    assert len(df) == 3
    assert json.loads(sidecar.read_text())["sha256"] == meta_before["sha256"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verifies again: no warning
        pd.testing.assert_frame_equal(results.load_table("fig1", "scores", PARAMS, "smoke", root=tmp_path), df)


def test_rows_must_match_the_sidecar(tmp_path):
    compute, calls, csv, sidecar = _stored(tmp_path)
    meta = json.loads(sidecar.read_text())
    meta["rows"] = 4  # e.g. a CSV and sidecar from two different writes that hash alike
    sidecar.write_text(json.dumps(meta))
    with pytest.warns(results.CacheWarning, match="3 rows, its sidecar says 4"):
        assert results.load_table("fig1", "scores", PARAMS, "smoke", root=tmp_path) is None


@pytest.mark.parametrize("sidecar_text", ["{}", "", "{not json", "[1, 2]", '{"rows": 3}'])
def test_empty_or_unparsable_sidecar_is_a_miss(tmp_path, sidecar_text):
    compute, calls, csv, sidecar = _stored(tmp_path)
    sidecar.write_text(sidecar_text)
    df = _recomputes(tmp_path, compute, calls, sidecar)
    assert df["layer"].tolist() == [0, 1, 2]
    assert json.loads(sidecar.read_text())["rows"] == 3  # rewritten


def test_missing_csv_with_a_sidecar_is_a_miss(tmp_path):
    compute, calls, csv, sidecar = _stored(tmp_path)
    csv.unlink()
    _recomputes(tmp_path, compute, calls, csv)
    assert csv.exists()


def test_result_files_are_0644(tmp_path):
    _, _, csv, sidecar = _stored(tmp_path)
    assert stat.S_IMODE(csv.stat().st_mode) == 0o644
    assert stat.S_IMODE(sidecar.stat().st_mode) == 0o644
    out = results.atomic_write_text(tmp_path / "plain.txt", "x")
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_stale_temp_files_are_removed_when_the_folder_is_next_written(tmp_path):
    _, _, csv, _ = _stored(tmp_path)
    folder = csv.parent
    stale = folder / f".{csv.name}.k1ll3d_x.tmp"
    fresh = folder / ".scores-0123.json.abcd1234.tmp"  # a concurrent writer's, just created
    stale.write_text("half a tab")
    fresh.write_text("being written")
    old = time.time() - results.STALE_TMP_S - 60
    os.utime(stale, (old, old))
    keep = folder / ".notes"  # not ours
    keep.write_text("x")
    os.utime(keep, (old, old))
    results.save_table(pd.DataFrame({"v": [1]}), "fig1", "other", {}, "smoke", root=tmp_path)
    assert not stale.exists() and fresh.exists() and keep.exists()


def test_cached_tables_computes_once_and_writes_all_or_nothing(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"summary": pd.DataFrame({"block": [0], "p99": [2.5]}),
                "sample": pd.DataFrame({"block": [0, 0], "error": [0.1, 3.0]})}

    kw = dict(profile="smoke", root=tmp_path)
    first = results.cached_tables("fig9", ["summary", "sample"], PARAMS, compute, **kw)
    second = results.cached_tables("fig9", ["summary", "sample"], PARAMS, compute, **kw)
    assert len(calls) == 1 and set(first) == {"summary", "sample"}
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])
    results.cached_tables("fig9", ["summary", "sample"], PARAMS, compute, force=True, **kw)
    assert len(calls) == 2

    before = {p: p.read_bytes() for p in _all_files(tmp_path)}
    with pytest.raises(LinUtilsError, match="expected tables"):
        results.cached_tables("fig9", ["summary", "sample"], PARAMS,
                              lambda: {"summary": pd.DataFrame({"x": [1]})}, force=True, **kw)
    with pytest.raises(LinUtilsError, match="expected a pandas DataFrame"):
        results.cached_tables("fig9", ["summary", "sample"], PARAMS,
                              lambda: {"summary": pd.DataFrame({"x": [1]}), "sample": [1]},
                              force=True, **kw)
    assert {p: p.read_bytes() for p in _all_files(tmp_path)} == before  # no temp files, no change


def test_atomic_write_text(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    assert results.atomic_write_text(target, "a,b\n1,2\n") == target
    assert target.read_text() == "a,b\n1,2\n"
    inode = target.stat().st_ino
    results.atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n" and _all_files(tmp_path) == [target]
    assert target.stat().st_ino != inode  # a new file moved into place, not rewritten in place

    # a write that fails halfway (a lone surrogate cannot be encoded) leaves the old content;
    # a plain open(target, "w").write(...) would already have truncated it
    with pytest.raises(UnicodeEncodeError):
        results.atomic_write_text(target, "partial " * 10_000 + "\ud800")
    assert target.read_text() == "new\n" and _all_files(tmp_path) == [target]

    # the final rename fails (a folder is in the way): no temp file is left behind
    blocked = tmp_path / "blocked"
    (blocked / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        results.atomic_write_text(blocked, "x")
    assert blocked.is_dir() and _all_files(tmp_path) == [target]


def test_force_recomputes_once_per_run(tmp_path, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"x": [len(calls)]})

    monkeypatch.delenv(results.RUN_ID_ENV, raising=False)
    results.cached("c", "t", {"a": 1}, compute, profile="p", root=tmp_path)
    results.cached("c", "t", {"a": 1}, compute, profile="p", root=tmp_path, force=True)
    assert len(calls) == 2  # outside a run, force always recomputes
    monkeypatch.setenv(results.RUN_ID_ENV, "run-1")
    first = results.cached("c", "t", {"a": 1}, compute, profile="p", root=tmp_path, force=True)
    again = results.cached("c", "t", {"a": 1}, compute, profile="p", root=tmp_path, force=True)
    assert len(calls) == 3 and first.x.tolist() == again.x.tolist() == [3]  # Fig 3 reuses Fig 1's fresh scan
    monkeypatch.setenv(results.RUN_ID_ENV, "run-2")
    results.cached("c", "t", {"a": 1}, compute, profile="p", root=tmp_path, force=True)
    assert len(calls) == 4  # a new run recomputes
    tables = lambda: {"u": compute(), "v": compute()}  # noqa: E731
    results.cached_tables("c", ["u", "v"], {"a": 1}, tables, profile="p", root=tmp_path, force=True)
    results.cached_tables("c", ["u", "v"], {"a": 1}, tables, profile="p", root=tmp_path, force=True)
    assert len(calls) == 6


def test_every_committed_table_sits_where_its_parameters_hash_and_verifies():
    """Each committed sidecar's parameters hash to its file name, and the table loads (rows and
    sha256 verified): a change of the hash function or of the canonical form orphans no table
    silently."""
    import json

    from lin_utils.paths import REPO_ROOT

    sidecars = sorted((REPO_ROOT / "data" / "results").glob("*/*/*.json"))
    assert sidecars, "no committed result tables"
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["param_hash"] == results.param_hash(meta["params"]), path
        csv, json_path = results.table_paths(meta["computation"], meta["table"], meta["params"], meta["profile"],
                                             REPO_ROOT / "data" / "results")
        assert json_path == path and csv.is_file(), path
        table = results.load_table(meta["computation"], meta["table"], meta["params"], meta["profile"],
                                   REPO_ROOT / "data" / "results")
        assert table is not None and len(table) == meta["rows"], path


@pytest.mark.parametrize("text, reason", [("{not json", "Expecting property name"), ("[1, 2]", "not a JSON object")])
def test_an_unreadable_sidecar_is_an_error_naming_the_file_and_why(tmp_path, text, reason):
    results.save_table(_table(), "fig1", "scores", PARAMS, "smoke", root=tmp_path)
    _, sidecar = results.table_paths("fig1", "scores", PARAMS, "smoke", root=tmp_path)
    sidecar.write_text(text)
    with pytest.raises(LinUtilsError) as e:
        results.load_provenance("fig1", "scores", PARAMS, "smoke", root=tmp_path)
    assert str(e.value).startswith(f"unreadable sidecar {sidecar}: ") and reason in str(e.value)


def test_a_first_computation_inside_a_run_warns_of_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RUN_ID_ENV, "run-1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = results.cached("c", "t", {"a": 1}, lambda: pd.DataFrame({"x": [1]}), profile="p", root=tmp_path,
                            force=True)
    assert df.x.tolist() == [1]


def test_a_compute_that_returns_the_wrong_thing_is_named(tmp_path):
    with pytest.raises(LinUtilsError, match=r"^compute\(\) for c/t returned list, expected a DataFrame$"):
        results.cached("c", "t", {"a": 1}, lambda: [1, 2], profile="p", root=tmp_path)
    with pytest.raises(LinUtilsError, match=r"^compute\(\) for c returned list, expected tables \['u', 'v'\]$"):
        results.cached_tables("c", ["u", "v"], {"a": 1}, lambda: [1, 2], profile="p", root=tmp_path)
    with pytest.raises(LinUtilsError, match=r"^compute\(\) for c returned \['u', 'w'\], expected tables \['u', 'v'\]$"):
        results.cached_tables("c", ["u", "v"], {"a": 1}, lambda: {"w": pd.DataFrame(), "u": pd.DataFrame()},
                              profile="p", root=tmp_path)
    assert not any(tmp_path.rglob("*.csv"))


def test_atomic_write_creates_missing_folders(tmp_path):
    path = tmp_path / "a" / "b" / "c.txt"
    results.atomic_write_text(path, "x")
    assert path.read_text() == "x"


def test_a_named_index_is_stored_as_columns_and_a_row_selection_is_not(tmp_path):
    df = pd.DataFrame({"block": [0, 1, 2, 3], "score": [0.5, 0.6, 0.7, 0.8]})
    selected = df[df.score > 0.55]  # index 1, 2, 3: a selection, not data
    results.save_table(selected, "c", "sel", {"a": 1}, "p", root=tmp_path)
    back = results.load_table("c", "sel", {"a": 1}, "p", root=tmp_path)
    assert list(back.columns) == ["block", "score"] and back.block.tolist() == [1, 2, 3]
    results.save_table(df.set_index("block"), "c", "named", {"a": 1}, "p", root=tmp_path)
    back = results.load_table("c", "named", {"a": 1}, "p", root=tmp_path)
    pd.testing.assert_frame_equal(back, df)


def _edit_sidecar(sidecar: Path, **changes) -> None:
    meta = json.loads(sidecar.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    sidecar.write_text(json.dumps(meta))


@pytest.mark.parametrize("corrupt, culprit, reason", [
    (lambda csv, js: csv.unlink(), "csv", "table unreadable (FileNotFoundError)"),
    (lambda csv, js: _edit_sidecar(js, sha256=None), "json",
     "sidecar records no sha256 or row count (written by an older version)"),
    (lambda csv, js: _edit_sidecar(js, columns=None), "json", "sidecar records no column dtypes"),
    (lambda csv, js: _edit_sidecar(js, columns={}), "csv", "no columns but rows"),
    (lambda csv, js: _edit_sidecar(js, rows=5), "csv", "4 rows, its sidecar says 5"),
])
def test_every_kind_of_cache_miss_names_its_file_and_reason(tmp_path, corrupt, culprit, reason):
    results.save_table(_table(), "fig1", "scores", PARAMS, "smoke", root=tmp_path)
    csv, sidecar = results.table_paths("fig1", "scores", PARAMS, "smoke", root=tmp_path)
    corrupt(csv, sidecar)
    with pytest.warns(results.CacheWarning) as caught:
        assert results.load_table("fig1", "scores", PARAMS, "smoke", root=tmp_path) is None
    path = csv if culprit == "csv" else sidecar
    assert [str(w.message) for w in caught] == [f"result cache: {path}: {reason}; treated as missing"]


def test_text_like_values_dates_and_categories_round_trip(tmp_path):
    # numbers written as text must stay text in every text dtype; dates and categories come back typed
    df = pd.DataFrame({
        "id": pd.array(["001", "2", "30"], dtype="string"),
        "code": pd.Series(["007", "8", "9"], dtype="str"),
        "size": pd.Categorical(["010", "1", "010"]),
        "when": pd.to_datetime(["2026-11-23 10:00:01", "2026-11-22 00:00:00", "1999-01-01 23:59:59"]),
        "when_utc": pd.to_datetime(["2026-11-23 10:00:01", "2026-11-22 00:00:00", "1999-01-01 23:59:59"], utc=True),
    })
    results.save_table(df, "fig1", "dates", PARAMS, "smoke", root=tmp_path)
    back = results.load_table("fig1", "dates", PARAMS, "smoke", root=tmp_path)
    pd.testing.assert_frame_equal(back, df)
    assert back["size"].cat.categories.tolist() == ["010", "1"]


def test_a_table_that_cannot_round_trip_names_every_such_table(tmp_path):
    df = pd.DataFrame({"bins": pd.interval_range(0, 3)})  # intervals do not parse back from CSV text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", results.CacheWarning)
        with pytest.raises(LinUtilsError, match=r"^table\(s\) a, b of fig1 did not verify right after they were written$"):
            results.cached_tables("fig1", ["a", "b"], PARAMS, lambda: {"a": df, "b": df}, profile="smoke", root=tmp_path)


def test_the_sidecar_records_its_format_and_the_wall_time(tmp_path):
    results.save_table(pd.DataFrame({"x": [1.0]}), "fig1", "scores", PARAMS, "smoke", 12.345678, root=tmp_path)
    meta = results.load_provenance("fig1", "scores", PARAMS, "smoke", root=tmp_path)
    assert meta["format"] == results.FORMAT_VERSION and meta["wall_time_s"] == 12.346


def test_an_unserializable_value_says_which_types_are_allowed():
    with pytest.raises(LinUtilsError, match=r"^parameter value b'x' of type bytes is not JSON-serializable; "
                                            r"use str, int, float, bool, None, lists or dicts$"):
        results.param_hash({"f": b"x"})


def test_temp_files_are_written_beside_their_target_not_in_the_system_temp(tmp_path, monkeypatch):
    # a rename is atomic only within one file system: the temp file must sit in the target's folder
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    results.atomic_write_text(tmp_path / "out" / "a.txt", "x\n")
    results.save_table(pd.DataFrame({"x": [1.0]}), "fig1", "scores", PARAMS, "smoke", root=tmp_path)
    assert (tmp_path / "out" / "a.txt").read_text() == "x\n" and not (tmp_path / "no-such-folder").exists()


def test_an_unparsable_table_is_a_miss_that_quotes_the_parser_cut_to_80_characters(tmp_path):
    results.save_table(pd.DataFrame({"bins": pd.interval_range(0, 3)}), "fig1", "bins", PARAMS, "smoke", root=tmp_path)
    csv = results.table_paths("fig1", "bins", PARAMS, "smoke", root=tmp_path)[0]
    with pytest.warns(results.CacheWarning) as caught:
        assert results.load_table("fig1", "bins", PARAMS, "smoke", root=tmp_path) is None
    (message,) = [str(w.message) for w in caught]
    head, tail = f"result cache: {csv}: unparsable (TypeError: ", "); treated as missing"
    assert message.startswith(head) and message.endswith(tail)
    quoted = message[len(head):-len(tail)]
    assert "intervals" in quoted and len(quoted) == 80 and quoted.endswith("…")
