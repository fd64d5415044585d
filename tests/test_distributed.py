"""Sharded scoring under torchrun (gloo, 2 CPU processes) equals one pass over all tokens."""
import subprocess
import sys

import numpy as np
import pandas as pd
import torch
from pathlib import Path

from lin_utils.linearity import PRECISIONS, LinearityAccumulator


def test_all_reduce_under_torchrun_matches_a_single_pass(tmp_path):
    rng = np.random.default_rng(0)
    H = rng.normal(size=(4, 12, 50, 8))
    H[1:] += np.tanh(H[:-1] @ rng.normal(size=(8, 8)))  # some structure between boundaries
    H[:, 6:] += 20.0  # rank 1's shard has other means, hence another reference in "mixed"
    np.save(tmp_path / "H.npy", H)
    worker = Path(__file__).with_name("dist_worker.py")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(worker), str(tmp_path / "H.npy"), str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    single = LinearityAccumulator().update(list(torch.tensor(H))).result()
    cols = ["n_tokens", "score", "score_nores", "heldout", "heldout_nores", "procrustes", "cosine", "norm_resid", "norm_block"]
    # float64 shards sum to the single pass up to rounding; "mixed" ones also carry float32 products
    # of float32-rounded states (~1e-8 here).
    atol = {"float64": 1e-10, "mixed": 1e-6}
    for precision in PRECISIONS:
        for rank in (0, 1):
            shard = pd.read_csv(tmp_path / f"rank{rank}_{precision}.csv")
            np.testing.assert_allclose(shard[cols].to_numpy(float), single[cols].to_numpy(float), rtol=0,
                                       atol=atol[precision], err_msg=f"{precision}, rank {rank}")
