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
    ("model", 5), ("dtype", "int8"), ("precision", "float16"), ("exclude_bos", "yes"), ("blocks", "1,2"),
    ("seed", None),
])
def test_bad_fields_are_named(field, value):
    with pytest.raises(LinUtilsError, match=field):
        ScanConfig(**{"model": "stories260K", field: value})


def test_key_is_plain_json_and_from_params_ignores_other_keys():
    cfg = ScanConfig.from_params("m", {"max_tokens": 100, "models": ["a"], "profile": "cpu", "blocks": [1, 2]})
    assert cfg.max_tokens == 100 and cfg.blocks == (1, 2)
    key = cfg.key()
    assert key["layers"] == [1, 2] and key["model"] == "m" and "models" not in key
    assert ScanConfig(**{**{k: v for k, v in key.items() if k != "layers"}, "blocks": tuple(key["layers"])}) == cfg
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


def test_norms_ratio_and_cosine_equal_a_direct_computation():
    """Fig 3's columns: mean ||h_i||, mean ||h_{i+1} - h_i||, their ratio, and mean cosine."""
    import numpy as np

    from lin_utils.extract import iter_block_states
    from lin_utils.scan import load_scan_inputs, profile_model

    cfg = ScanConfig("stories260K", max_tokens=1500, seq_len=128, batch_size=4, exclude_bos=True)
    model, _, chunks = load_scan_inputs(cfg)
    res = profile_model(model, chunks.batches(4), exclude_bos=True, progress=False).result()
    H = {}
    for states, mask in iter_block_states(model, chunks.batches(4), exclude_bos=True, progress=False):
        for b, h in states.items():
            H.setdefault(b, []).append(h[mask].double().numpy())
    H = {b: np.concatenate(v) for b, v in H.items()}
    for row in res.itertuples():
        x, y = H[row.block], H[row.block + 1]
        resid, out = np.linalg.norm(x, axis=1).mean(), np.linalg.norm(y - x, axis=1).mean()
        cos = ((x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))).mean()
        assert row.norm_resid == pytest.approx(resid, rel=1e-9)
        assert row.norm_block == pytest.approx(out, rel=1e-9)
        assert row.norm_ratio == pytest.approx(out / resid, rel=1e-9)  # block output over the stream it adds to
        assert row.cosine == pytest.approx(cos, rel=1e-9)
