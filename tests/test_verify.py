"""``lin-utils book verify``: table comparison, per-computation rules, and a real re-run.

The real re-run builds its own "committed" tables (Fig 3 of the smoke profile) in a temporary
result root and verifies against them, so it needs nothing committed; a second test verifies the
repository's committed cpu tables of Fig 3 once they exist in the cache's layout.
"""
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lin_utils import paths, profiles, results, runner, verify
from lin_utils.cli import main
from lin_utils.verify import Rule, Tolerance, compare_tables, compare_trees

from tables import profile_table

ROOT = Path(__file__).resolve().parents[1]


def _table():
    t = pd.concat([profile_table([0.9, 0.8, 0.7], [0.5, 0.4, 0.3], [0.2, 0.3, 0.4], model=m) for m in ("a", "b")],
                  ignore_index=True)
    return t.assign(score=t.score + np.linspace(0, 1e-3, len(t)))  # distinct values


# -------------------------------------------------------------------------------------------------
# comparing two tables


def test_identical_and_noisy_tables_agree_and_name_the_largest_difference():
    c = _table()
    assert compare_tables(c, c.copy()).detail == "6 rows; identical"
    n = c.copy()
    n.loc[4, "score_nores"] += 8.5e-7  # model b, block 1: the size of machine-to-machine noise
    n["norm_resid"] *= 1 + 1e-7
    check = compare_tables(c, n, path="p.csv")
    assert check.ok, check.detail
    assert check.worst["column"] == "score_nores" and check.worst["row"] == "model=b, block=1"
    assert "largest difference 8.5e-07 in score_nores at model=b, block=1" in check.line()
    assert check.line().startswith("ok ")


def test_a_perturbed_number_is_named_by_column_and_row():
    c = _table()
    n = c.copy()
    n.loc[2, "score"] += 1e-3  # model a, block 2
    check = compare_tables(c, n, path="x/blocks.csv")
    assert check.status == "differs"
    assert check.problems == [check.problems[0]] and "score at model=a, block=2" in check.problems[0]
    assert "difference 0.001 > tolerance 1e-05, abs 1e-05" in check.line()
    assert check.line().startswith("DIFFERS x/blocks.csv: 6 rows; score at model=a, block=2")


def test_rows_are_matched_by_key_whatever_their_order():
    c = _table()
    assert compare_tables(c, c.iloc[::-1].copy()).ok
    check = compare_tables(c, c.iloc[:-1])
    assert not check.ok and check.detail == "5 rows now, 6 committed"
    n = c.copy()
    n.loc[5, "block"] = 7
    check = compare_tables(c, n)
    assert not check.ok and "not reproduced, first model=b, block=2" in check.detail


def test_counts_and_labels_are_compared_exactly_and_columns_must_match():
    c = _table()
    n = c.copy()
    n.loc[1, "n_tokens"] += 1
    check = compare_tables(c, n)
    assert not check.ok and "n_tokens at model=a, block=1: 5000 committed, 5001 now" in check.detail
    n = c.copy()
    n.loc[0, "arch"] = "encoder"
    assert "arch at model=a, block=0" in compare_tables(c, n).detail
    check = compare_tables(c, c.drop(columns="cosine").assign(extra=1))
    assert not check.ok and check.detail == "different columns: new extra; missing cosine"
    # a column that newer code adds is reported, not compared: the committed numbers are what is reproduced
    check = compare_tables(c, c.assign(extra=1))
    assert check.ok and check.detail.endswith("identical; new columns not in the committed table: extra")
    n = c.assign(extra=1)
    n.loc[0, "score"] += 1.0
    assert not compare_tables(c, n).ok


def test_duplicate_keys_are_compared_in_order():
    c = pd.DataFrame({"model": "m", "block": [0, 0, 1], "position": [3, 3, 5], "error": [0.1, 0.2, 0.3]})
    rule = verify.rule_for("token_errors", "sample")
    assert compare_tables(c, c.copy(), rule).ok
    n = c.copy()
    n.loc[1, "error"] *= 1 + 1e-5
    assert compare_tables(c, n, rule).ok
    n.loc[1, "error"] *= 1 + 1e-3
    check = compare_tables(c, n, rule)
    assert "error at model=m, block=0, position=3" in check.detail and "abs 1e-05 + rel 0.0001" in check.detail
    check = compare_tables(c, c.iloc[[0, 2, 1]].reset_index(drop=True), rule)
    assert not check.ok and check.detail.startswith("row 1 is model=m, block=1, position=5 now")


def test_nan_matches_only_nan():
    c = _table().assign(heldout=math.nan)
    assert compare_tables(c, c.copy()).ok
    n = c.copy()
    n.loc[0, "heldout"] = 0.5
    check = compare_tables(c, n)
    assert not check.ok and "heldout at model=a, block=0: nan committed, 0.5 now" in check.detail


def test_tolerances_by_column_pattern():
    rule = verify.DEFAULT_RULE
    assert rule.tolerance("score_nores") is verify.SCORE and rule.tolerance("heldout") is verify.SCORE
    assert rule.tolerance("norm_block") is verify.SCALE and rule.tolerance("p999") is verify.QUANTILE
    assert rule.tolerance("tail_ratio") is verify.QUANTILE and rule.tolerance("mean_sq_error") is verify.SCORE
    assert rule.tolerance("chance") is verify.EXACT
    assert rule.tolerance("val_loss") is verify.LOSS and rule.tolerance("accuracy") is verify.ACCURACY
    assert rule.tolerance("something_new").rel == 1e-5
    assert Tolerance().describe() == "exact" and Tolerance(abs=1e-5, rel=1e-6).describe() == "abs 1e-05 + rel 1e-06"


# -------------------------------------------------------------------------------------------------
# a computation declares what reproduced means (here: a synthetic training run)


def _same_best_recipe(committed, now):
    best = lambda t: t.groupby("recipe").loss.mean().idxmin()
    return [] if best(committed) == best(now) else [f"best recipe is {best(now)} now, {best(committed)} committed"]


TRAIN_RULE = Rule(
    "per seed and step: loss within 2 seed-to-seed standard deviations, verdicts identical, "
    "the same best recipe; wall times ignored",
    key=("recipe", "seed"),
    tolerances=(("loss", Tolerance(spread="loss_std", k=2.0)), ("loss_std", Tolerance(rel=0.5))),
    ignore=("wall_*",),
    checks=(_same_best_recipe,),
)


def _train_table():
    return pd.DataFrame({"recipe": ["base", "base", "cos", "cos"], "seed": [0, 1, 0, 1],
                         "loss": [2.00, 2.02, 1.90, 1.93], "loss_std": [0.014, 0.014, 0.021, 0.021],
                         "verdict": ["worse", "worse", "better", "better"], "wall_s": [10.0, 11, 12, 13]})


def test_a_computation_declares_its_own_rule(monkeypatch):
    monkeypatch.setattr(verify, "RULES", dict(verify.RULES))
    verify.register_rule("synthetic_train", TRAIN_RULE)
    verify.register_rule("synthetic_train/curve", Rule("curves: default tolerances"))
    assert verify.rule_for("synthetic_train", "final") is TRAIN_RULE
    assert verify.rule_for("synthetic_train", "curve").description == "curves: default tolerances"
    assert verify.rule_for("other", "t") is verify.DEFAULT_RULE
    with pytest.raises(TypeError):
        verify.register_rule("x", {"loss": 1e-3})

    c = _train_table()
    n = c.assign(loss=c.loss + [0.02, -0.01, 0.03, 0.0], wall_s=c.wall_s * 3)  # retrained elsewhere
    check = compare_tables(c, n, TRAIN_RULE)
    assert check.ok, check.detail
    assert check.worst["column"] == "loss" and check.worst["row"] == "recipe=base, seed=0"

    n2 = n.copy()
    n2.loc[3, "loss"] = 1.93 + 0.05  # beyond 2 x 0.021
    check = compare_tables(c, n2, TRAIN_RULE)
    assert not check.ok and "loss at recipe=cos, seed=1" in check.detail and "2x loss_std" in check.detail

    n3 = n.copy()
    n3.loc[0, "verdict"] = "better"
    assert "verdict at recipe=base, seed=0: 'worse' committed, 'better' now" in compare_tables(c, n3, TRAIN_RULE).detail

    wide = c.assign(loss_std=0.2)  # seeds spread so much that the best recipe may flip within tolerance
    flipped = wide.assign(loss=[1.80, 1.82, 1.90, 1.93])
    check = compare_tables(wide, flipped, TRAIN_RULE)
    assert not check.ok and check.detail.endswith("best recipe is base now, cos committed")


# -------------------------------------------------------------------------------------------------
# trees of stored tables, the report and its exit code


def _store(root, df, params, table="blocks"):
    return results.save_table(df, "linearity_scan", table, params, "smoke", root=root)


def test_trees_missing_unverifiable_and_report(tmp_path, capsys):
    now, committed = tmp_path / "now", tmp_path / "committed"
    rel = [_store(now, _table(), {"i": i}).relative_to(now).as_posix() for i in range(3)]
    _store(committed, _table(), {"i": 0})
    bad = _store(committed, _table(), {"i": 1})
    bad.write_text(bad.read_text().replace("0.9", "0.8", 1))  # hand-edited: fails its sha256
    checks = compare_trees(now, committed, rel)
    assert [c.status for c in checks] == ["ok", "differs", "missing"]
    assert "the committed table does not verify: content does not match the sha256" in checks[1].detail
    assert checks[2].detail.startswith("no committed table at ")
    assert verify.report(checks, "smoke") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "verify smoke: 1 of 3 table(s) reproduced within tolerance; 1 differs, 1 missing"
    assert verify.report(checks[:1], "smoke") == 0
    assert verify.report([], "smoke") == 1
    assert "nothing was compared" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--profile", "laptop"], "unknown profile 'laptop'"),
    (["--profile", "smoke", "--only", "fig99_nope"], "unknown notebook(s) 'fig99_nope'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    assert main(["book", "verify", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


# -------------------------------------------------------------------------------------------------
# for real: a cheap notebook, recomputed in scratch folders and compared


def _tree_digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def committed_smoke(tmp_path_factory):
    """Fig 3 of the smoke profile run once into a temporary result root: the "committed" tables."""
    tmp = tmp_path_factory.mktemp("verify")
    saved = os.environ.get("LIN_RESULTS_DIR")
    os.environ["LIN_RESULTS_DIR"] = str(tmp / "committed")
    try:
        runner.run_profile("smoke", only=["fig3_block_norms"], book_dir=tmp / "book",
                           toc=paths.book_dir() / "_toc.yml", log=lambda _: None)
    finally:
        os.environ.pop("LIN_RESULTS_DIR") if saved is None else os.environ.__setitem__("LIN_RESULTS_DIR", saved)
    return tmp


@pytest.mark.slow
def test_verify_reruns_a_notebook_and_compares_with_the_committed_tables(committed_smoke, capsys, monkeypatch):
    tmp = committed_smoke
    committed = tmp / "committed"
    before, book_before = _tree_digest(committed), _tree_digest(paths.book_dir())
    monkeypatch.setenv("LIN_RESULTS_DIR", str(committed))
    rc = main(["book", "verify", "--profile", "smoke", "--only", "fig3_block_norms", "--keep", str(tmp / "scratch")])
    out = capsys.readouterr().out.splitlines()
    table_lines = [l for l in out if l.startswith(("ok ", "DIFFERS", "MISSING"))]
    n_models = len(profiles.notebook_parameters("fig3_block_norms", "smoke")["models"])
    assert rc == 0, out
    assert len(table_lines) == n_models and all(l.startswith("ok      smoke/linearity_scan/blocks-") for l in table_lines)
    assert out[-1] == f"verify smoke: {n_models} of {n_models} table(s) reproduced within tolerance"
    # nothing committed and nothing of the book changed; the re-run went to the scratch folders
    assert _tree_digest(committed) == before and _tree_digest(paths.book_dir()) == book_before
    assert (tmp / "scratch" / "book" / "notebooks" / "fig3_block_norms.ipynb").is_file()
    fresh = sorted((tmp / "scratch" / "results" / "smoke" / "linearity_scan").glob("*.json"))
    assert len(fresh) == n_models and all(json.loads(p.read_text())["run_id"] for p in fresh)

    # a committed table one number away (1e-3 in score, stories260K block 2) is reported, exit 1
    perturbed = tmp / "perturbed"
    written = []
    for sidecar in fresh:
        meta = json.loads(sidecar.read_text())
        df = results.load_table(meta["computation"], meta["table"], meta["params"], "smoke", committed)
        if meta["params"]["model"] == "stories260K":
            df.loc[df.block == 2, "score"] += 1e-3
        path = results.save_table(df, meta["computation"], meta["table"], meta["params"], "smoke", root=perturbed)
        written.append(path.relative_to(perturbed).as_posix())
    checks = compare_trees(tmp / "scratch" / "results", perturbed, written)
    bad = [c for c in checks if not c.ok]
    assert len(bad) == 1 and len(checks) == n_models
    assert "score at model=stories260K, block=2" in bad[0].line() and "difference 0.001 > tolerance" in bad[0].line()
    assert bad[0].line().startswith("DIFFERS smoke/linearity_scan/blocks-")
    assert verify.report(checks, "smoke", log=lambda _: None) == 1


def _committed_cpu_fig3() -> list[Path]:
    from lin_utils.experiments import SCAN
    from lin_utils.scan import ScanConfig

    try:
        params = profiles.notebook_parameters("fig3_block_norms", "cpu")
    except Exception:  # the profile or notebook is broken: other tests say so
        return []
    return [results.table_paths(SCAN, "blocks", ScanConfig.from_params(m, params).key(), "cpu",
                                root=ROOT / "data" / "results")[0] for m in params["models"]]


_CPU_FIG3 = _committed_cpu_fig3()


@pytest.mark.slow
@pytest.mark.skipif(not _CPU_FIG3 or not all(p.exists() for p in _CPU_FIG3),
                    reason="the committed cpu tables of Fig 3 are not (yet) in data/results/cpu/linearity_scan")
def test_the_committed_cpu_fig3_tables_reproduce(capsys, monkeypatch, tmp_path):
    # The cpu profile as committed, less MiniLM and the zoo's models on this page: MiniLM's scan
    # (d = 384) is most of the page's cost, and the zoo's would first train them (the model cache
    # is empty on a clean machine). Each model's table is keyed by its own parameters, so the two
    # stories260K tables are the committed ones; `make verify` re-runs every model.
    import yaml

    profile = yaml.safe_load((ROOT / "profiles" / "cpu.yaml").read_text())
    models = [m for m in profile["fig3_block_norms"]["models"] if m != "minilm" and not m.startswith("zoo:")]
    profile["fig3_block_norms"]["models"] = models
    (tmp_path / "cpu.yaml").write_text(yaml.safe_dump(profile))
    monkeypatch.setenv("LIN_PROFILES_DIR", str(tmp_path))
    monkeypatch.setenv("LIN_RESULTS_DIR", str(ROOT / "data" / "results"))
    rc = main(["book", "verify", "--profile", "cpu", "--only", "fig3_block_norms"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert len(models) == 2 and "verify cpu: 2 of 2 table(s) reproduced" in out, out
