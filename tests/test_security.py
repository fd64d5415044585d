"""Trust boundaries (issue 25): resume states that could run code, tampered downloads, and paths
that reach a page. The judge's boundary is tested in test_judge.py, profile checks in
test_profiles.py, one-line errors in test_cli.py."""
import json
import random
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lin_utils import paths, results
from lin_utils.errors import LinUtilsError
from lin_utils.train.checkpoints import load_state, rng_state, save_state


class _Payload:
    """Unpickling this creates a file: what a planted resume state would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _trained(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    return model, opt


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_a_resume_state_round_trips_without_pickle(tmp_path):
    model, opt = _trained()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = save_state(tmp_path, 5, model, opt, {"note": "x"})
    expected = _draws()
    assert sorted(p.name for p in state.iterdir()) == ["model.safetensors", "optimizer.pt", "rng.json", "state.json"]
    json.loads((state / "rng.json").read_text())  # plain JSON
    fresh, fresh_opt = _trained(seed=9)
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    assert load_state(state, fresh, fresh_opt) == {"step": 5, "note": "x"}
    assert _draws() == expected
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert fresh_opt.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])


@pytest.mark.parametrize("planted", ["rng.pt", "optimizer.pt"])
def test_a_planted_resume_state_runs_no_code(tmp_path, planted):
    model, opt = _trained()
    state = save_state(tmp_path, 5, model, opt, {})
    marker = tmp_path / "pwned"
    if planted == "rng.pt":
        (state / "rng.json").unlink()  # an old-format state, or one made to look like it
        torch.save({"python": _Payload(marker), "numpy": None, "torch": torch.get_rng_state()}, state / "rng.pt")
    else:
        torch.save({"state": {}, "param_groups": [_Payload(marker)]}, state / planted)
    with pytest.raises(LinUtilsError) as err:
        load_state(state, model, opt)
    msg = str(err.value)
    assert not marker.exists(), "unpickling ran the planted code"
    assert "\n" not in msg and str(state / planted) in msg and "delete" in msg


def test_a_legacy_rng_pt_still_resumes(tmp_path):
    model, opt = _trained()
    random.seed(4), np.random.seed(5), torch.manual_seed(6)
    state = save_state(tmp_path, 3, model, opt, {})
    legacy = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    expected = _draws()
    (state / "rng.json").unlink()
    torch.save(legacy, state / "rng.pt")  # what save_state wrote before rng.json
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    load_state(state, model, opt)
    assert _draws() == expected


def test_rng_state_is_json():
    assert json.loads(json.dumps(rng_state())).keys() >= {"python", "numpy", "torch"}


def test_a_cache_warning_names_its_file_relative_to_the_repository():
    # printed into an executed notebook, the warning reaches the published page
    import shutil
    import tempfile

    (paths.REPO_ROOT / ".pytest_cache").mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="issue25-", dir=paths.REPO_ROOT / ".pytest_cache"))
    try:
        csv = results.save_table(pd.DataFrame({"a": [1, 2]}), "comp", "t", {"p": 1}, "smoke", root=root)
        csv.write_text("a\n1\n3\n")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert results.load_table("comp", "t", {"p": 1}, "smoke", root=root) is None
        [message] = [str(w.message) for w in caught if issubclass(w.category, results.CacheWarning)]
        assert str(paths.REPO_ROOT) not in message
        assert message.startswith(f"result cache: {csv.relative_to(paths.REPO_ROOT)}: content does not match")
    finally:
        shutil.rmtree(root, ignore_errors=True)
