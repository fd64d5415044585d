"""The "use it on your model" page: the command it prints runs for real and gives the API's numbers."""
from __future__ import annotations

import shlex

import numpy as np
import pandas as pd
import pytest
from shown import run_show

from lin_utils import pages, results, runner
from lin_utils.pages import use_your_model as page
from lin_utils.scan import ScanConfig

SMALL = dict(max_tokens=1024, seq_len=128, batch_size=4)


@pytest.fixture(scope="module")
def config():
    return page.CONFIG.with_params(SMALL)


def test_the_command_is_the_api_scan_in_arguments(config):
    args = page.command(config, "o.csv", "o.png")
    assert args == ["profile", "--model", "stories260K", "--model", "random:stories260K", "--dataset", config.dataset,
                    "--split", config.split, "--max-tokens", "1024", "--seq-len", "128", "--batch-size", "4",
                    "--device", config.device, *(["--exclude-bos"] if config.exclude_bos else []),
                    "--out", "o.csv", "--plot", "o.png"]
    assert page.command(config)[-4:] == ["--out", "profile.csv", "--plot", "profile.png"]
    flipped = page.CONFIG.with_params({**SMALL, "exclude_bos": not config.exclude_bos})
    assert ("--exclude-bos" in page.command(flipped)) is (not config.exclude_bos)


def test_numbers_refuse_a_command_that_scanned_other_blocks_or_scored_otherwise():
    t = pd.DataFrame(dict(model=["a", "a", "b"], block=[0, 1, 0], score=[0.9, 0.8, 0.5], score_nores=[0.5, 0.4, 0.2],
                          heldout=[0.85, 0.79, 0.45], heldout_nores=[0.45, 0.3, 0.1], chance=[0.01, 0.01, 0.02],
                          norm_ratio=[0.2, 0.4, 0.9]))
    n = page.numbers(t, t.copy(), 1.5)
    assert n == dict(model="a", score_mean=pytest.approx(0.85), nores_mean=pytest.approx(0.45),
                     gap_max=pytest.approx(0.1), chance_max=0.02, ratio_min=0.2, ratio_max=0.4, cli_seconds=1.5,
                     cli_diff=0.0)
    off = t.copy()
    off.loc[2, "heldout_nores"] += 0.000999
    assert page.numbers(t, off, 1.0)["cli_diff"] == pytest.approx(0.000999)
    off.loc[2, "heldout_nores"] += 0.000002
    with pytest.raises(AssertionError, match="differ from the API's by 1.00e-03"):
        page.numbers(t, off, 1.0)
    exact = t.assign(heldout_nores=[0.45, 0.3, 0.0])
    with pytest.raises(AssertionError, match="by 1.00e-03"):  # 1e-3 itself is too far
        page.numbers(exact, exact.assign(heldout_nores=[0.45, 0.3, 0.001]), 1.0)
    with pytest.raises(AssertionError, match="other blocks"):
        page.numbers(t, t.assign(block=[0, 2, 0]), 1.0)


def test_show_runs_the_command_and_glues_its_figure_text_and_numbers(config, tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path))
    table = page.tables(config, profile="cpu")  # the API's scans (real model, real data), cached
    scans = [results.table_paths("linearity_scan", "blocks", ScanConfig.from_params(m, config.params()).key(), "cpu")
             for m in config.models]
    returned, glued, shown = run_show("use_your_model", monkeypatch, tmp_path, config=config)
    assert returned.equals(table)
    assert sorted(glued) == sorted(["profile_figure", "cli_command", "cli_output", "summary", "table"] + [
        f"use_{k}" for k in ("model", "score_mean", "nores_mean", "gap_max", "chance_max", "ratio_min", "ratio_max",
                             "cli_seconds", "cli_diff")])
    assert len(glued["profile_figure"]["image/png"]) > 1000
    assert glued["cli_command"]["text/markdown"] == (
        "```bash\nlin-utils " + shlex.join(page.command(config)).replace(" --", " \\\n    --") + "\n```")
    assert glued["cli_command"]["text/markdown"].startswith(
        "```bash\nlin-utils profile \\\n    --model stories260K \\\n    --model random:stories260K \\\n")
    out = glued["cli_output"]["text/markdown"]
    assert out.startswith("```text\n") and out.endswith("\n```") and not out.endswith("\n\n```")
    num = {k.removeprefix("use_"): v["text/plain"] for k, v in glued.items() if k.startswith("use_")}
    first = table[table.model == "stories260K"]
    assert num["model"] == "stories260K"
    assert float(num["score_mean"]) == pytest.approx(first.score.mean(), rel=1e-12)
    assert float(num["nores_mean"]) == pytest.approx(first.score_nores.mean(), rel=1e-12)
    assert float(num["ratio_min"]) == pytest.approx(first.norm_ratio.min()) and float(num["ratio_max"]) == pytest.approx(
        first.norm_ratio.max())
    assert float(num["chance_max"]) == pytest.approx(table.chance.max())
    gap = max((table.score - table.heldout).max(), (table.score_nores - table.heldout_nores).max())
    assert float(num["gap_max"]) == pytest.approx(gap, rel=1e-12)
    assert 0 <= float(num["cli_diff"]) < 1e-3 and 0 < float(num["cli_seconds"]) < 300
    summary = glued["summary"]["text/markdown"].splitlines()
    assert len(summary) == 2 + 2 and "stories260K" in summary[2] and "random:stories260K" in summary[3]
    full = glued["table"]["text/markdown"]
    assert full.startswith(f"**stories260K**: n_tokens = {int(first.n_tokens.iloc[0]):,}, d = 64, chance = ")
    assert "| block | score | heldout | score nores | heldout nores | norm ratio | cosine |" in full
    assert "**random:stories260K**" in full
    text = shown[-1]["data"]["text/markdown"]
    assert all(c in text for c in runner.reproduce_commands("use_your_model", "cpu"))
    assert shown[-1]["metadata"]["lin_utils"]["downloads"] == [
        p.relative_to(tmp_path).as_posix() for csv, meta in scans for p in (csv, meta)]
    assert pages.get("use_your_model").CLAIMS == []
    assert np.isfinite(first.score).all()
