"""The stories260K files and a mean-NLL helper shared by the model and GGUF tests."""
import os
from pathlib import Path

import torch

STORIES = Path(os.environ.get("LIN_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data") / "stories260K"
GGUF = STORIES / "stories260K.gguf"
TOK512 = STORIES / "tok512.model"
# The sentence of SOURCE.md's "Verified behaviour" (31 tokens after BOS).
SENTENCE = " Once upon a time, there was a little girl named Lily. She loved to play outside in the park."


def mean_nll(model, ids: torch.Tensor) -> float:
    """Mean next-token cross-entropy (nats) of ``ids`` (B, T) under ``model``."""
    with torch.no_grad():
        logits = model(ids).logits
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)).item()
