"""Linear probes per layer boundary on xStoryCloze-en (the paper's Fig 5).

Each story gives two examples: its four context sentences followed by the right ending (label 1)
and by the wrong ending (label 0), as ``" ".join(sentences) + " " + ending``, tokenized with the
tokenizer's default special tokens (BOS for Llama). The residual stream is recorded at every
requested block boundary with :func:`lin_utils.extract.capture` (boundary 0 = the input of
block 0, boundary i+1 = the raw output of block i). **Pooling: the mean over the ending's
tokens** (the tokens whose character span reaches past the context; with a slow tokenizer, the
tokens after the context's own tokenization), averaged in float64.

At each boundary a scikit-learn pipeline (standardize, then ``LogisticRegression``) is trained
on ``en_train`` (360 stories, 720 examples) and scored on ``en_eval`` (1511 stories, 3022
examples). Next to it, a 5-fold cross-validated accuracy with its spread (std over folds),
folds grouped by story so a story's two endings never straddle train and test
(``StratifiedGroupKFold``), by default over ``en_train`` ∪ ``en_eval``. Chance is 0.5: every
story contributes one right and one wrong ending (the table reports the majority-class rate of
the test set).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from lin_utils.arch import decoder_blocks
from lin_utils.data import load_eval
from lin_utils.extract import capture, normalize_boundaries

__all__ = ["story_ending_features", "fit_probe", "linear_probes", "ending_examples"]


def ending_examples(rows: Sequence[dict]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """``(contexts, endings, labels, groups)`` for xStoryCloze rows: two examples per story, the
    right ending (label 1) and the wrong one (label 0); ``groups`` is the story index."""
    contexts, endings, labels, groups = [], [], [], []
    for i, r in enumerate(rows):
        ctx = " ".join(r[f"input_sentence_{k}"] for k in range(1, 5))
        right = int(r["answer_right_ending"])
        for j in (1, 2):
            contexts.append(ctx)
            endings.append(r[f"sentence_quiz{j}"])
            labels.append(int(j == right))
            groups.append(i)
    return contexts, endings, np.array(labels), np.array(groups)


def _encode(tokenizer, context: str, ending: str,
            max_len: int | None) -> tuple[list[int], list[int]]:
    """Token ids of ``context + " " + ending`` and the positions of the ending's tokens."""
    full = context + " " + ending
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(full, return_offsets_mapping=True)
        ids = enc["input_ids"]
        special = set(tokenizer.all_special_ids)
        pos = [i for i, (t, (_, e)) in enumerate(zip(ids, enc["offset_mapping"]))
               if e > len(context) and t not in special]
    else:
        ids = tokenizer(full)["input_ids"]
        n_ctx = len(tokenizer(context)["input_ids"])
        pos = list(range(n_ctx, len(ids)))
    if not pos:
        raise ValueError(f"the ending {ending!r} has no tokens of its own")
    if max_len is not None and len(ids) > max_len:  # keep the ending: cut on the left
        cut = len(ids) - max_len
        ids, pos = ids[cut:], [p - cut for p in pos if p >= cut]
    return ids, pos


def _context_length(model) -> int | None:
    cfg = getattr(model, "config", None)
    for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


@torch.no_grad()
def story_ending_features(model, tokenizer, contexts: Sequence[str], endings: Sequence[str],
                          boundaries: Sequence[int] | None = None, *, batch_size: int = 16,
                          device: torch.device | str | None = None,
                          progress: bool = True) -> dict[int, np.ndarray]:
    """Mean residual state over each ending's tokens: ``{boundary: (n_examples, d) float64}``.

    Runs the trunk only (no LM head), stopped after the last boundary needed; inputs are
    right-padded and padding never enters a mean.
    """
    if len(contexts) != len(endings):
        raise ValueError("contexts and endings differ in length")

    wanted = normalize_boundaries(boundaries, len(decoder_blocks(model)))
    if device is None:
        device = next(model.parameters()).device
    model.eval()
    max_len = _context_length(model)
    encoded = [_encode(tokenizer, c, e, max_len) for c, e in zip(contexts, endings)]
    pad = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    feats = {b: [] for b in wanted}
    with capture(model, wanted, stop_early=True) as cap:
        starts = range(0, len(encoded), batch_size)
        for s in tqdm(starts, desc="probe features", disable=not progress, leave=False):
            chunk = encoded[s:s + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            inp = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            pool = torch.zeros((len(chunk), width), dtype=torch.float64)
            for r, (ids, pos) in enumerate(chunk):
                inp[r, :len(ids)] = torch.tensor(ids)
                mask[r, :len(ids)] = 1
                pool[r, pos] = 1.0 / len(pos)
            states = cap.trunk(inp.to(device), mask.to(device))
            pool = pool.to(device)
            for b in wanted:
                feats[b].append(torch.einsum("bt,btd->bd", pool, states[b].double()).cpu().numpy())
    return {b: np.concatenate(v) for b, v in feats.items()}


def fit_probe(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray | None = None,
              y_test: np.ndarray | None = None, *, X_cv: np.ndarray | None = None,
              y_cv: np.ndarray | None = None, groups_cv: np.ndarray | None = None,
              cv: int = 5, C: float = 1.0, seed: int = 0) -> dict:
    """Fit one probe (standardize + logistic regression) and score it.

    Returns ``test_acc`` (trained on the train set, scored on the test set; NaN without one) and
    ``test_pred`` (the probe's prediction for each test example; None without a test set),
    ``cv_mean``/``cv_std`` (accuracy over ``cv`` folds of ``X_cv`` (default: the train set),
    grouped by ``groups_cv`` when given; NaN when ``cv < 2``), ``n_train``, ``n_test``,
    ``n_cv`` and ``chance`` (the majority-class rate of the test set, else of the CV set).
    """
    # heavy and optional (scikit-learn): only when a probe is fitted
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def make():
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))

    y_train = np.asarray(y_train)
    out = {"test_acc": np.nan, "test_pred": None, "n_train": len(y_train), "n_test": 0}
    if X_test is not None:
        y_test = np.asarray(y_test)
        pred = make().fit(X_train, y_train).predict(X_test)
        out["test_pred"] = pred
        out["test_acc"] = float(np.mean(pred == y_test))
        out["n_test"] = len(y_test)
    if X_cv is None:
        X_cv, y_cv = X_train, y_train
    y_cv = np.asarray(y_cv)
    out["n_cv"] = len(y_cv)
    out["cv_mean"] = out["cv_std"] = np.nan
    if cv >= 2:
        if groups_cv is not None:
            folds = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed)
        else:
            folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        scores = cross_val_score(make(), X_cv, y_cv, groups=groups_cv, cv=folds)
        out["cv_mean"], out["cv_std"] = float(scores.mean()), float(scores.std(ddof=1))
    ref = y_test if X_test is not None else y_cv
    out["chance"] = float(np.bincount(ref).max() / len(ref))
    return out


def linear_probes(model, tokenizer, boundaries: Sequence[int] | None = None, *,
                  max_train: int | None = None, max_test: int | None = None, cv: int = 5,
                  cv_on: str = "all", C: float = 1.0, batch_size: int = 16,
                  device: torch.device | str | None = None, seed: int = 0,
                  progress: bool = True, predictions: bool = False):
    """Per-boundary linear-probe accuracy on xStoryCloze-en (see the module docstring).

    Args:
        boundaries: block boundaries to probe (default: all, ``0..L``).
        max_train, max_test: use only the first stories of ``en_train`` / ``en_eval``.
        cv: folds for the cross-validated accuracy (grouped by story); ``< 2`` skips it.
        cv_on: ``"all"`` (``en_train`` ∪ ``en_eval``) or ``"train"``.
        predictions: also return each probe's test predictions.

    Returns:
        one row per boundary: ``boundary, test_acc, cv_mean, cv_std, n_train, n_test, n_cv,
        chance`` (n counts examples: two per story), plus ``pooling`` and ``d``. With
        ``predictions``, ``(that table, items)`` where ``items`` has one row per (boundary, test
        example): ``boundary, item`` (the example's index in ``en_eval``'s examples), ``story``
        (its story), ``label``, ``pred`` and ``correct`` (0/1), so that two models can be compared
        item by item (a paired test).
    """
    if cv_on not in ("all", "train"):
        raise ValueError(f"unknown cv_on {cv_on!r}; choose one of: all, train")
    train = load_eval("xstorycloze-en", "train")[:max_train]
    test = load_eval("xstorycloze-en", "eval")[:max_test]
    c_tr, e_tr, y_tr, g_tr = ending_examples(train)
    c_te, e_te, y_te, g_te = ending_examples(test)
    feats = story_ending_features(model, tokenizer, c_tr + c_te, e_tr + e_te, boundaries,
                                  batch_size=batch_size, device=device, progress=progress)
    n_tr = len(y_tr)
    rows, items = [], []
    for b, X in feats.items():
        X_tr, X_te = X[:n_tr], X[n_tr:]
        if cv_on == "all":
            cv_args = dict(X_cv=X, y_cv=np.concatenate([y_tr, y_te]),
                           groups_cv=np.concatenate([g_tr, g_te + len(train)]))
        else:
            cv_args = dict(X_cv=X_tr, y_cv=y_tr, groups_cv=g_tr)
        res = fit_probe(X_tr, y_tr, X_te, y_te, cv=cv, C=C, seed=seed, **cv_args)
        rows.append({"boundary": b, **res, "pooling": "mean over ending tokens",
                     "d": X.shape[1]})
        pred = np.asarray(res["test_pred"]).astype(int)
        items.append(pd.DataFrame({"boundary": b, "item": np.arange(len(y_te)), "story": g_te,
                                   "label": y_te.astype(int), "pred": pred,
                                   "correct": (pred == y_te).astype(int)}))
    cols = ["boundary", "test_acc", "cv_mean", "cv_std", "n_train", "n_test", "n_cv", "chance",
            "pooling", "d"]
    table = pd.DataFrame(rows)[cols]
    if predictions:
        return table, pd.concat(items, ignore_index=True)
    return table
