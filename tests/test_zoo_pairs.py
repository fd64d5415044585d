"""How the pages name the zoo seeds behind their models, from the zoo's metadata."""
from __future__ import annotations

from lin_utils.pages._scans import runs_text
from lin_utils.pages._zoo_pairs import seeds_text, zoo_seed_text


def test_a_page_with_one_seed_per_arm_says_which():
    assert zoo_seed_text(["zoo:cpu-large-baseline"]) == " (the zoo's seed 0 of three pretraining seeds per arm)"
    assert zoo_seed_text(["stories260K", "zoo:cpu-small-baseline-s2"]) == (
        " (the zoo's seed 2 of three pretraining seeds per arm)")
    assert zoo_seed_text(["zoo:smoke-small-baseline"]) == " (the zoo's seed 0 of two pretraining seeds per arm)"
    assert zoo_seed_text(["stories260K", "minilm", "zoo:nope"]) == ""


def test_scan_pages_say_how_many_runs_stand_behind_their_models():
    assert runs_text(["stories260K", "minilm"]) == "one training run per model (no seeds)"
    assert runs_text(["stories260K", "zoo:cpu-small-baseline"]) == (
        "one training run per model (of the zoo's arms, seed 0 only)")
    seeded = ["zoo:cpu-small-baseline", "zoo:cpu-small-baseline-s1", "zoo:cpu-small-baseline-s2", "stories260K"]
    assert runs_text(seeded) == f"zoo models with {seeds_text(seeded)}, any other model one run"
    assert seeds_text(seeded) == "three seeds per arm (0, 1, 2)"
