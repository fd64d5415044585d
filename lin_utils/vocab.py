"""The book's vocabulary, in one place: which palette slot each model takes on every page, and the
label of each quantity in figures and tables alike."""
from __future__ import annotations

__all__ = ["MODEL_COLOURS", "MODEL_SLOTS", "QUANTITIES"]

#: palette entries (of seaborn's "colorblind") that models may take; grey (7) is for references
MODEL_SLOTS = [0, 1, 2, 3, 4, 5, 6, 8, 9]
#: one palette slot per model, everywhere; chosen so that the models of each profile (smoke/cpu,
#: gpu, full) get distinct colours. Models not listed get a slot by a stable hash of their name.
MODEL_COLOURS = {
    "stories260K": 0, "random:stories260K": 1, "minilm": 2, "random:minilm": 3,
    "gpt2": 4, "gpt2-medium": 5, "facebook/opt-125m": 6, "facebook/opt-350m": 8,
    "EleutherAI/pythia-160m": 9, "random:gpt2": 1,
    "gpt2-large": 5, "gpt2-xl": 0, "facebook/opt-1.3b": 8, "facebook/opt-2.7b": 9,
    "meta-llama/Llama-2-7b-hf": 3, "EleutherAI/pythia-1.4b": 2, "bigscience/bloom-560m": 1,
}
#: the scaling identity's three per-model quantities (geometric means over blocks)
QUANTITIES = {"one_minus_score": "1 − score", "one_minus_nores": "1 − score, no residual",
              "ratio_sq": "‖B_c‖² / ‖Y_c‖²"}
