"""Fine-tuning of pretrained models for the paper's Table 1 (Section 3.2).

- :mod:`.tasks`: MultiRC, BoolQ, CB (binary: entailment against the rest) and HH-RLHF helpful-base reward modelling in
  the paper's formatting; deterministic, disjoint fine-tune / held-out splits; encoding;
- :mod:`.heads`: a linear head on the last non-padding token (decoders) or [CLS] (encoders), the
  task losses (the reward model's −log σ(r_chosen − r_rejected)) and predictions;
- :mod:`.loop`: :func:`finetune`, full fine-tuning with AdamW on the pretraining loop's optimizer,
  schedule and checkpoints; held-out accuracy, the majority-class baseline and :func:`learned`;
- :mod:`.measure`: linearity without the residual before and after, on fixed tokens.

The cached computation behind the Table 1 page is :func:`lin_utils.experiments.finetuning_deltas`.
"""
from .heads import SequenceHead, last_token_index, pairwise_loss, pool, predictions, task_loss, trunk_of
from .loop import (FineTuneConfig, FineTuneResult, accuracy_from_features, evaluate, finetune, learned,
                   majority_baseline, pooled_features, step_indices)
from .measure import LinearityProbe, Measurement, delta
from .tasks import (CB_CLASSES, TASKS, EncodedSet, Example, Segment, TaskSpec, encode_examples, load_examples,
                    pad_right, shuffle_labels, split_examples, task_spec)

__all__ = [
    "CB_CLASSES", "TASKS", "EncodedSet", "Example", "FineTuneConfig", "FineTuneResult", "LinearityProbe", "Measurement",
    "Segment", "SequenceHead", "TaskSpec", "accuracy_from_features", "delta", "encode_examples", "evaluate",
    "finetune", "last_token_index", "learned", "load_examples", "majority_baseline", "pad_right", "pairwise_loss",
    "pool", "pooled_features", "predictions", "shuffle_labels", "split_examples", "step_indices", "task_loss",
    "task_spec", "trunk_of",
]
