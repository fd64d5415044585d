"""The dress rehearsal of the ``full`` profile (scripts/rehearse.py): its CI slice, for real.

Tiny random models under the paper's hub ids and revisions and small stand-ins of the hub
datasets in an offline hub cache; the notebooks of Figs 1, 2 and 8 run through papermill against
it: one model id per family that ``profiles/full.yaml`` names (Fig 1, WikiText-2 from the hub),
one Pythia revision (Fig 2, TinyStories validation from the hub) and lm-eval's built-in
ARC-Easy task on the hub (Fig 8). ``make rehearse`` runs every notebook and builds the book.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lin_utils import profiles

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import hub_standins  # noqa: E402
import rehearse  # noqa: E402


def _full():
    return profiles.load_profile("full")


def test_shrink_changes_only_sizes_and_device():
    full = _full()
    small = rehearse.shrink(full)
    assert list(small) == list(full)
    for name, section in full.items():
        if name == "scaling":
            continue
        for key, value in section.items():
            if key in rehearse.SIZE_RULES:
                if isinstance(value, (int, float)) and value:
                    assert 0 < small[name][key] <= value, (name, key)
            elif key == "device":
                assert small[name][key] == "cpu"
            else:  # model ids, revisions, datasets, tasks, criteria, dtypes, sequence lengths
                assert small[name][key] == value, (name, key)
    assert small["fig2_training_dynamics"]["revisions"] == full["fig2_training_dynamics"]["revisions"]
    assert small["fig7_pruning_second_model"]["arc_limit"] == 0  # 0 = skip stays a skip
    assert small["table2_benchmarks"]["limit"] is not None  # None = everything becomes a limit
    scaling = small["scaling"]
    assert set(scaling["depths"]) <= set(full["scaling"]["depths"])
    assert set(scaling["widths"]) <= set(full["scaling"]["widths"])


def test_every_hub_id_of_the_full_profile_has_a_family():
    staged = hub_standins.hub_models(_full())
    ids = {h for h, _ in staged}
    assert {"gpt2", "facebook/opt-1.3b", "meta-llama/Llama-2-7b-hf", "bigscience/bloom-560m"} <= ids
    assert ("EleutherAI/pythia-160m", "step1000") in staged
    for hub_id in ids:
        hub_standins.family_of(hub_id)  # raises for an id no stand-in covers
    with pytest.raises(ValueError, match="no stand-in family"):
        hub_standins.family_of("someone/unknown-model")


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    """``scripts/rehearse.py --slice`` in a subprocess (its own HF_HOME and offline env)."""
    work = tmp_path_factory.mktemp("rehearse")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "rehearse.py"), "--slice", "--work", str(work)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return work, proc


def _table(work: Path, computation: str, prefix: str) -> list[pd.DataFrame]:
    return [pd.read_csv(p) for p in sorted((work / "results" / "full" / computation).glob(f"{prefix}-*.csv"))]


def test_slice_runs_the_full_profile_hub_paths(slice_run):
    work, proc = slice_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sections = yaml.safe_load((work / "profiles" / "full.yaml").read_text())
    for name in sections:
        assert (work / "book" / "notebooks" / f"{name}.ipynb").is_file()

    # one model id per family the full profile names, each scanned from the hub cache
    families = {hub_standins.family_of(h).arch for h, _ in hub_standins.hub_models(_full())}
    fig1 = sections["fig1_linearity_profiles"]["models"]
    assert set(fig1) <= set(_full()["fig1_linearity_profiles"]["models"])
    assert {hub_standins.family_of(m).arch for m in fig1} == families
    scans = pd.concat(_table(work, "linearity_scan", "blocks"))
    assert set(fig1) <= set(scans.model)

    # a Pythia revision, resolved through refs/<revision> of the hub cache
    fig2 = sections["fig2_training_dynamics"]
    (pythia,), (rev,) = fig2["models"], fig2["revisions"]
    refs = work / "hf" / "hub" / f"models--{pythia.replace('/', '--')}" / "refs" / rev
    assert refs.read_text() == hub_standins.commit_of(pythia, rev)
    assert f"{pythia}@{rev}" in set(scans.model)

    # lm-eval's hub task (ARC-Easy) and the hub's WikiText-2 / TinyStories, with no local copy of them
    mirror = work / "mirror"
    assert not (mirror / "arc-easy").exists() and not (mirror / "wikitext-2-raw").exists()
    assert not (mirror / "tinystories" / "tinystories_validation_head.txt").exists()
    pruned = pd.concat(_table(work, "pruning_criterion", "results"))  # one table per criterion
    assert len(_table(work, "pruning_study", "blocks")) == 1
    assert (pruned.model == sections["fig8_pruning_arc_easy"]["model"]).all()
    assert (pruned.arc_n == sections["fig8_pruning_arc_easy"]["arc_limit"]).all()
    assert pruned.ppl_wikitext.notna().all() and pruned.ppl_tinystories.notna().all()
    meta = json.loads(next((work / "results" / "full" / "pruning_criterion").glob("results-*.json")).read_text())
    assert meta["profile"] == "full"
