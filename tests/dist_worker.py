"""Worker for tests/test_distributed.py, launched by torchrun: each rank scores one shard."""
import sys

import numpy as np
import torch
import torch.distributed as dist

from lin_utils.linearity import PRECISIONS, LinearityAccumulator

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
H = np.load(sys.argv[1])  # (L+1, B, T, d), the whole data set
per_rank = H.shape[1] // world  # contiguous, even-sized shards keep the held-out halves of one pass
for precision in PRECISIONS:
    acc = LinearityAccumulator(precision=precision).update(list(torch.tensor(H[:, rank * per_rank:(rank + 1) * per_rank])))
    acc.all_reduce()  # "mixed": each rank's reference is its own shard's first batch mean; rank 0's wins
    acc.result().to_csv(f"{sys.argv[2]}/rank{rank}_{precision}.csv", index=False)
dist.destroy_process_group()
