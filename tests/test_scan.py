"""One scan configuration for the CLI, the figures and the cache key."""
import pandas as pd
import pytest

from lin_utils import experiments
from lin_utils.cli import main
from lin_utils.errors import LinUtilsError
from lin_utils.scan import ScanConfig

SMALL = dict(max_tokens=1500, seq_len=128, batch_size=4, exclude_bos=True)


@pytest.mark.parametrize("field, value", [
    ("max_tokens", "lots"), ("max_tokens", 0), ("seq_len", 2.5), ("batch_size", True), ("model", ""),
    ("model", 5), ("dtype", "int8"), ("precision", "float16"), ("exclude_bos", "yes"), ("layers", "1,2"),
    ("seed", None),
])
def test_bad_fields_are_named(field, value):
    with pytest.raises(LinUtilsError, match=field):
        ScanConfig(**{"model": "stories260K", field: value})


def test_key_is_plain_json_and_from_params_ignores_other_keys():
    cfg = ScanConfig.from_params("m", {"max_tokens": 100, "models": ["a"], "profile": "cpu", "layers": [1, 2]})
    assert cfg.max_tokens == 100 and cfg.layers == (1, 2)
    key = cfg.key()
    assert key["layers"] == [1, 2] and key["model"] == "m" and "models" not in key
    assert ScanConfig(**{**key, "layers": tuple(key["layers"])}) == cfg
    assert cfg.replace(seed=3).seed == 3


def test_cli_and_fig1_computation_give_identical_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path / "results"))
    out = tmp_path / "cli.csv"
    argv = ["profile", "--model", "stories260K", "--max-tokens", "1500", "--seq-len", "128", "--batch-size", "4",
            "--exclude-bos", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    cli = pd.read_csv(out)
    fig1 = experiments.linearity_profiles(["stories260K"], SMALL, profile="test", progress=False)
    assert list(cli.columns) == list(fig1.columns)
    numeric = [c for c in cli.columns if pd.api.types.is_numeric_dtype(fig1[c])]
    pd.testing.assert_frame_equal(cli[numeric], fig1[numeric], check_exact=True, check_dtype=False)
    assert (cli.model == "stories260K").all() and (fig1.arch == "decoder").all() and fig1.trained.all()
