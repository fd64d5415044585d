"""The model zoo: named pretrained models, kept outside git and rebuilt on demand.

Each profile (smoke, cpu, gpu) declares two sizes and, per size, arms (a variant) with one or
more seeds (:data:`ARMS`)::

    {profile}-{small|large}-{baseline|cos0.5|mse0.5|mse2.0}[-s{seed}]

(seed 0 has no suffix: the names the pages have always used). ``baseline`` has no regularizer;
``cos0.5`` adds 0.5·Σ(1 − cos) and ``mse0.5`` / ``mse2.0`` add λ·Σ‖Δ‖² over consecutive block
boundaries (:mod:`lin_utils.train.regularizers`). Within a size every entry shares tokenizer,
data, token budget and schedule, and differs only in the regularizer and the seed; the seed sets
both the initialisation and the order of the training rows. Pages pair models by the metadata of
:func:`table` and :func:`pairs` (size, variant, seed), never by their names. A model lives in
``$LIN_CACHE/zoo/<key>/`` (default ``~/.cache/lin_utils``), where ``key`` hashes everything that
determines its weights (:meth:`TrainConfig.key`: architecture, tokenizer identity, data, token
budget, batch, schedule, optimizer, initialisation, seed, regularizer, λ, precision,
training-code version) and nothing else, so renaming an entry or changing how often it is
evaluated reuses the model, and changing any of those retrains it.

=========  ============================  ======  ==============  =========  =====  ==================
profile    sizes (small / large)         vocab   rows × seq_len  tokens     steps  models
=========  ============================  ======  ==============  =========  =====  ==================
smoke      smoke-small / smoke-large     512     8 × 64          24,576     48     2 arms × 2 seeds × 2
cpu        cpu-small / cpu-large         2,048   16 × 256        4,096,000  1000   12 + 6
gpu        gpu-small / mistral-150m      8,192   64 × 512        20.0M      610    8 + 4 (see below)
=========  ============================  ======  ==============  =========  =====  ==================

The cpu row is the ``swept`` recipe (:data:`CPU_RECIPES`), the one the book's cpu tables are
computed with. The earlier zoo, ``v1`` (1,499,136 tokens, 366 steps, learning rate 2e-3, 20
warmup steps, std 0.02, every training story, one seed per arm), stays selectable with
``$LIN_ZOO_CPU_RECIPE=v1`` (:data:`CPU_RECIPE`).

**The cpu zoo** is the paper's two scales with three seeds per arm: its 150M arms (baseline,
cosine 0.5, MSE 0.5 and 2.0) at cpu-small and its 650M arms (baseline, cosine 0.5) at cpu-large,
18 models. The
gpu zoo has three seeds of gpu-small's baseline and cosine arms and one of the rest.

**The recipe** of each cpu size was chosen by the recipe sweep (:data:`SWEEPS`,
:func:`lin_utils.experiments.recipe_sweep`, ``python -m lin_utils.zoo sweep cpu``; its table is
committed under ``data/results/cpu/recipe_sweep`` and shown on the zoo page): baselines of 160
steps over peak learning rate × warmup (and a larger initialisation std), scored by the loss on
the last 500 training stories, which no zoo model trains on (``data_stories`` =
:data:`~lin_utils.train.tokenizer.TRAINABLE_STORIES`). Chosen (held-out loss after 655,360
tokens, nats/token): cpu-small peak learning rate 4e-3, warmup 5% of the steps, initialisation
std 0.05 (3.624; the old recipe's neighbours, 2e-3 with std 0.02, 3.866–3.946); cpu-large 4e-3,
warmup 20%, std 0.02 (3.941; std 0.05 was tried at 5% warmup only: 4.043). At that budget the
8-block baseline is still worse than the 4-block one (3.941 against 3.624), and block 0's output
is 40–120× its input stream in the chosen runs (it grows with the learning rate). Trained to the
full 4,096,000 tokens (seed 0, 2026-12-07, one core, niced), the two swept baselines reach
validation loss 2.550 nats / 0.988 bits per byte (cpu-small; held-out 2.469) and 2.482 / 0.960
(cpu-large; held-out 2.379): the 8-block baseline is then better than the 4-block one, and both
beat the v1 zoo (3.222 / 1.257 and 3.331 / 1.303; stories260K 0.880).

**The cpu budget**, measured on this project's 2-core AMD EPYC machine (torch 2.13 CPU, one
thread per model, :data:`PROFILE_JOBS` = 2 models at once, :func:`train_many` longest first):
the 18 models of 4,096,000 tokens took 9,970 CPU-seconds of training in all (2026-12-07; tokens
per CPU-second 8,600–10,000 for cpu-small, 4,950–5,750 for cpu-large; the cosine term costs about
10%): 422–471 CPU-s a cpu-small model, 742–816 a cpu-large one, so about 85 minutes on two free
cores, within the 2-hour budget. Sharing the machine with the pages' computations, the run that
trained 16 of them took 122 minutes; a killed run resumes where it stopped. The whole trainable
corpus once (1,667 steps) would take about 140 minutes and does not fit. The seeded zoo reaches
validation loss 2.542 ± 0.019 nats (0.986 bits per byte, cpu-small baseline, mean ± sd over 3
seeds) and 2.481 ± 0.002 (0.960, cpu-large): the 8-block baseline beats the 4-block one, and the
regularized models differ from their baselines by −0.06 to +0.17 nats (the earlier zoo: 3.222 /
1.257 and 3.331 / 1.303 at 1.5M tokens, regularized models 0.20–0.39 nats better; stories260K
0.880).
The smoke zoo (BPE on 2,000 stories, eight models of 48 steps) trains in about 20 s. On one H100
(bf16, ``scripts/bench_train.py``, 64 × 512 tokens a step) gpu-small trains at about 600k
tokens/s and mistral-150m at about 257k. Measured on one H100 (torch 2.11, 2026-11-23,
``zoo.train(name, device="cuda")`` one model after another, evaluation and checkpoints included):
gpu-small 45.4–52.5 s per model (the first one also trains the BPE tokenizer), mistral-150m
98.3–106.7 s. No gpu result tables are committed yet.

Public API: :func:`names`, :func:`entry`, :func:`table`, :func:`pairs`, :func:`key`,
:func:`run_dir`, :func:`resolve`, :func:`checkpoints`, :func:`train`, :func:`train_many`,
:func:`train_profile`, :func:`sweep_runs`, :func:`sweep`, :func:`status`. From a shell:
``python -m lin_utils.zoo train NAME`` (or ``PROFILE``), also under ``torchrun``;
``python -m lin_utils.zoo sweep PROFILE``.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFoundError
from .jobs import Job, last_line, run_jobs
from .paths import cache_dir
from .train.configs import TrainConfig, zoo_config
from .train.tokenizer import TRAINABLE_STORIES

__all__ = ["ZooEntry", "ENTRIES", "ARMS", "PROFILES", "PROFILE_JOBS", "SWEEPS", "zoo_config", "names", "entry",
           "entry_name", "table", "pairs", "key", "zoo_dir", "run_dir", "resolve", "checkpoints", "train",
           "train_profile", "train_many", "sweep_runs", "sweep", "status"]

PROFILES = ("smoke", "cpu", "gpu")
VARIANTS = {"baseline": ("none", 0.0), "cos0.5": ("cosine", 0.5),
            "mse0.5": ("mse", 0.5), "mse2.0": ("mse", 2.0)}


@dataclass(frozen=True)
class ZooEntry:
    """A named zoo model: its profile, size (``"small"`` or ``"large"``), variant and seed, and
    the training config that determines its weights. Pages and claims pair models through these
    fields (:func:`table`, :func:`pairs`), never by parsing names."""

    name: str
    profile: str
    variant: str
    config: TrainConfig
    size: str = "small"
    seed: int = 0

    @property
    def arch(self) -> str:
        """The architecture's name (``cpu-small``, ``mistral-150m``, ...)."""
        return self.config.size


# One base config per (profile, size); the variants only set the regularizer.
_SMOKE = dict(vocab_size=512, tokenizer_stories=2000, data_stories=2000, seq_len=64, batch_size=8,
              max_tokens=48 * 8 * 64, lr=3e-3, warmup_steps=4, val_tokens=2048, log_every=8,
              precision="fp32", num_threads=1)
#: optimizer steps of the swept cpu zoo (16 × 256 tokens each): 4,096,000 tokens a model, 0.6 of
#: the trainable corpus (6.83M tokens), the most that lets its 20 models train in under 2 hours on
#: two free cores (see the module docstring)
CPU_STEPS = 1000
_CPU_V1 = dict(vocab_size=2048, seq_len=256, batch_size=16, max_tokens=1_500_000, lr=2e-3,
               warmup_steps=20, val_tokens=16_384, log_every=10, precision="fp32", num_threads=1)
_CPU_SWEPT = dict(vocab_size=2048, tokenizer_stories=TRAINABLE_STORIES, data_stories=TRAINABLE_STORIES,
                  seq_len=256, batch_size=16, max_tokens=CPU_STEPS * 16 * 256, val_tokens=16_384, log_every=10,
                  precision="fp32", num_threads=1)
#: the cpu recipes by name and size. ``v1``: the committed zoo's (1.5M tokens; its result tables
#: are keyed on it). ``swept``: the recipe sweep's choice for each size (the lowest held-out loss
#: of its size, ``data/results/cpu/recipe_sweep``; warmup as the same fraction of the run, 5% and
#: 20% of 160), on the stories before the held-out tail, 4,096,000 tokens.
CPU_RECIPES = {
    "v1": {"small": _CPU_V1, "large": _CPU_V1},
    "swept": {"small": dict(_CPU_SWEPT, lr=4e-3, warmup_steps=round(0.05 * CPU_STEPS), init_std=0.05),
              "large": dict(_CPU_SWEPT, lr=4e-3, warmup_steps=round(0.20 * CPU_STEPS), init_std=0.02)},
}
#: environment variable naming the cpu recipe (:data:`CPU_RECIPES`); unset: :data:`CPU_RECIPE`
RECIPE_ENV = "LIN_ZOO_CPU_RECIPE"
#: the cpu zoo's recipe: ``swept``, the committed tables' (``v1``, the earlier 1.5M-token zoo, for one
#: run with $LIN_ZOO_CPU_RECIPE=v1)
CPU_RECIPE = "swept"


def cpu_recipe() -> str:
    """The cpu recipe in force: ``$LIN_ZOO_CPU_RECIPE`` or :data:`CPU_RECIPE`."""
    name = os.environ.get(RECIPE_ENV, "").strip() or CPU_RECIPE
    if name not in CPU_RECIPES:
        raise ValueError(f"${RECIPE_ENV}={name!r}: expected one of {', '.join(CPU_RECIPES)}")
    return name


_GPU = dict(vocab_size=8192, seq_len=512, batch_size=64, max_tokens=20_000_000, warmup_steps=60,
            val_tokens=65_536, eval_every=100, log_every=20, precision="bf16")
_BASES: dict[tuple[str, str], TrainConfig] = {
    ("smoke", "small"): TrainConfig(size="smoke-small", **_SMOKE),
    ("smoke", "large"): TrainConfig(size="smoke-large", **_SMOKE),
    ("cpu", "small"): TrainConfig(size="cpu-small", **CPU_RECIPES["v1"]["small"]),
    ("cpu", "large"): TrainConfig(size="cpu-large", **CPU_RECIPES["v1"]["large"]),
    ("gpu", "small"): TrainConfig(size="gpu-small", lr=1e-3, **_GPU),
    ("gpu", "large"): TrainConfig(size="mistral-150m", lr=6e-4, **_GPU),
}


#: environment variable holding a JSON object of :class:`TrainConfig` fields that replace those of
#: every entry (e.g. ``{"max_tokens": 4096, "batch_size": 4, "seq_len": 128}``): a smaller training
#: budget for rehearsals of a profile on a machine too small for it (``scripts/rehearse.py``). The
#: fields are hashed like any others, so overridden models get their own keys and run folders and
#: never mix with the real ones. The regularizer and its lambda define an entry and cannot be set.
OVERRIDE_ENV = "LIN_ZOO_OVERRIDE"
_NOT_OVERRIDABLE = ("regularizer", "reg_lambda")


def _override() -> dict:
    """The :data:`OVERRIDE_ENV` fields (empty when unset); ValueError for a malformed value."""
    from .train.configs import settable_fields

    raw = os.environ.get(OVERRIDE_ENV, "").strip()
    if not raw:
        return {}
    try:
        fields = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"${OVERRIDE_ENV} is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"${OVERRIDE_ENV} must be a JSON object of TrainConfig fields, got {raw!r}")
    known = settable_fields(_NOT_OVERRIDABLE)
    bad = sorted(set(fields) - known)
    if bad:
        raise ValueError(f"${OVERRIDE_ENV}: cannot override {', '.join(bad)}; "
                         f"overridable fields: {', '.join(sorted(known))}")
    return fields


#: the arms of each (profile, size): variant -> number of seeds (seeds 0, 1, ...). The cpu zoo is
#: the paper's two scales with three seeds per arm: its 150M arms (baseline, cosine 0.5, MSE 0.5
#: and 2.0) at cpu-small and its 650M arms (baseline, cosine 0.5) at cpu-large, 18 models; the
#: smoke zoo exercises the same code with two seeds of baseline and cosine per size.
ARMS: dict[tuple[str, str], dict[str, int]] = {
    ("smoke", "small"): {"baseline": 2, "cos0.5": 2},
    ("smoke", "large"): {"baseline": 2, "cos0.5": 2},
    ("cpu", "small"): {"baseline": 3, "cos0.5": 3, "mse0.5": 3, "mse2.0": 3},
    ("cpu", "large"): {"baseline": 3, "cos0.5": 3},
    ("gpu", "small"): {"baseline": 3, "cos0.5": 3, "mse0.5": 1, "mse2.0": 1},
    ("gpu", "large"): {"baseline": 1, "cos0.5": 1, "mse0.5": 1, "mse2.0": 1},
}


def entry_name(profile: str, size: str, variant: str, seed: int = 0) -> str:
    """``{profile}-{size}-{variant}`` for seed 0 (the names the pages have always used), with
    ``-s{seed}`` appended for the other seeds."""
    return f"{profile}-{size}-{variant}" + (f"-s{seed}" if seed else "")


def _build() -> dict[str, ZooEntry]:
    out = {}
    override = _override()
    for (profile, size), base in _BASES.items():
        if profile == "cpu":
            base = TrainConfig(size=base.size, **CPU_RECIPES[cpu_recipe()][size])
        base = base.replace(**override)
        for variant, n_seeds in ARMS[(profile, size)].items():
            reg, lam = VARIANTS[variant]
            for seed in range(n_seeds):
                name = entry_name(profile, size, variant, seed)
                out[name] = ZooEntry(name, profile, variant, base.replace(regularizer=reg, reg_lambda=lam, seed=seed),
                                     size=size, seed=seed)
    return out


#: every zoo entry by name
ENTRIES: dict[str, ZooEntry] = _build()


def names(profile: str | None = None) -> list[str]:
    """Entry names, all or of one profile, in registry order."""
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown zoo profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return [n for n, e in ENTRIES.items() if profile is None or e.profile == profile]


def entry(name: str | ZooEntry) -> ZooEntry:
    """The entry called ``name``; :class:`ModelNotFoundError` for an unknown name."""
    if isinstance(name, ZooEntry):
        return name
    try:
        return ENTRIES[name]
    except KeyError:
        raise ModelNotFoundError(f"unknown zoo model {name!r}; `python -m lin_utils.zoo status` "
                                 f"lists the {len(ENTRIES)} known names") from None


def arm(name: str | ZooEntry) -> str:
    """The name of the entry's arm: its seed-0 entry (same profile, size and variant), from the
    registry's metadata (``cpu-small-cos0.5-s2`` -> ``cpu-small-cos0.5``)."""
    e = entry(name)
    return entry_name(e.profile, e.size, e.variant, 0)


def table(profile: str | None = None):
    """One row per entry (all, or of one profile), in registry order: ``name``, ``model`` (its
    ``zoo:`` spec), ``profile``, ``size``, ``arch``, ``variant``, ``regularizer``, ``reg_lambda``,
    ``seed`` and ``key``. A DataFrame; pages select and pair models from it."""
    import pandas as pd

    rows = [dict(name=n, model=f"zoo:{n}", profile=e.profile, size=e.size, arch=e.arch, variant=e.variant,
                 regularizer=e.config.regularizer, reg_lambda=e.config.reg_lambda, seed=e.seed, key=e.config.key())
            for n, e in ((n, ENTRIES[n]) for n in names(profile))]
    return pd.DataFrame(rows, columns=["name", "model", "profile", "size", "arch", "variant", "regularizer",
                                       "reg_lambda", "seed", "key"])


def pairs(profile: str, variant: str | None = None, *, baseline: str = "baseline"):
    """Every regularized entry of ``profile`` (of ``variant`` only, when given) beside the
    ``baseline`` entry of the same size and seed: ``size``, ``arch``, ``seed``, ``variant``,
    ``model``, ``baseline`` (``zoo:`` specs). A DataFrame, by size, variant and seed."""
    import pandas as pd

    t = table(profile)
    base = t[t.variant == baseline].set_index(["size", "seed"]).model
    rows = []
    for r in t[t.variant != baseline].itertuples():
        if (variant is None or r.variant == variant) and (r.size, r.seed) in base.index:
            rows.append(dict(size=r.size, arch=r.arch, seed=r.seed, variant=r.variant, model=r.model,
                             baseline=base[(r.size, r.seed)]))
    return pd.DataFrame(rows, columns=["size", "arch", "seed", "variant", "model", "baseline"])


def key(name: str | ZooEntry) -> str:
    """The entry's weight key (see :meth:`TrainConfig.key`)."""
    return entry(name).config.key()


def zoo_dir() -> Path:
    """``$LIN_CACHE/zoo`` (default ``~/.cache/lin_utils/zoo``)."""
    return cache_dir() / "zoo"


def run_dir(name: str | ZooEntry) -> Path:
    """The entry's run folder ``<zoo>/<key>/`` (checkpoints, resume state, ``final/``)."""
    return zoo_dir() / key(name)


def _how_to_train(e: ZooEntry) -> str:
    return (f"train it with `lin-utils book run --profile {e.profile} --only model_zoo` "
            f"or `python -m lin_utils.zoo train {e.name}`")


def resolve(name: str) -> Path:
    """The saved HF model folder of a trained entry (final weights + tokenizer).

    Loadable with ``AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)`` and
    ``PreTrainedTokenizerFast.from_pretrained(path)``. Raises :class:`ModelNotFoundError` with a
    one-line message saying how to train it when it is not trained yet.
    """
    e = entry(name)
    final = run_dir(e) / "final"
    if not (final / "meta.json").is_file():
        raise ModelNotFoundError(f"zoo model {e.name!r} is not trained yet; {_how_to_train(e)}")
    return final


def checkpoints(name: str) -> list[tuple[int, int, Path]]:
    """``(step, tokens_seen, path)`` of the entry's log-spaced checkpoints (Fig 2), by step.

    Each path is a HF model folder like :func:`resolve`'s; step 0 holds the initial weights.
    Available as soon as training has written them; raises :class:`ModelNotFoundError` when
    there are none.
    """
    from .train.checkpoints import list_checkpoints

    e = entry(name)
    found = list_checkpoints(run_dir(e))
    if not found:
        raise ModelNotFoundError(f"zoo model {e.name!r} has no checkpoints yet; {_how_to_train(e)}")
    return found


@contextmanager
def _lock(folder: Path):
    """An exclusive lock on ``folder/.lock``, so two processes never train the same entry."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def train(name: str, *, progress: bool = True, device: str | None = None) -> Path:
    """Train the entry if it is missing (resuming an interrupted run); return :func:`resolve`."""
    from .train.loop import train as train_loop

    e = entry(name)
    folder = run_dir(e)
    if (folder / "final" / "meta.json").is_file():
        return folder / "final"
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    with (_lock(folder) if not distributed else _nolock()):
        if int(os.environ.get("RANK", "0")) == 0:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "entry.json").write_text(json.dumps({"name": e.name, "profile": e.profile, "size": e.size,
                                                           "variant": e.variant, "seed": e.seed}, indent=1))
        train_loop(e.config, folder, progress=progress, device=device)
    return resolve(e.name)


@contextmanager
def _nolock():
    yield


def _cost(cfg: TrainConfig) -> float:
    """Relative training cost of a config: tokens × (blocks + 1.3, the embedding and output layer
    of the cpu sizes in block units), 5% more with a regularizer (the captured states)."""
    from .train.configs import architecture

    blocks = architecture(cfg.size)["num_hidden_layers"]
    return cfg.steps * cfg.tokens_per_step * (blocks + 1.3) * (1.05 if cfg.regularizer != "none" else 1.0)


#: models trained at once by :func:`train_profile` (cpu: one single-threaded process per core)
PROFILE_JOBS = {"smoke": 1, "cpu": 2, "gpu": 1}


def train_profile(profile: str, *, progress: bool = True, device: str | None = None,
                  jobs: int | None = None) -> dict[str, Path]:
    """Train every missing entry of ``profile``; ``{name: resolve(name)}`` (:func:`train_many`,
    ``jobs`` defaulting to :data:`PROFILE_JOBS`)."""
    names(profile)  # ValueError for an unknown profile
    return train_many(names(profile), progress=progress, device=device,
                      jobs=PROFILE_JOBS[profile] if jobs is None else jobs)


def train_many(wanted: list[str], *, progress: bool = True, device: str | None = None,
               jobs: int | None = None) -> dict[str, Path]:
    """Train every missing entry of ``wanted``; ``{name: resolve(name)}`` in the order given.

    ``jobs`` (default: :data:`PROFILE_JOBS` of the first entry's profile; at most the number of
    CPUs) > 1 trains that many entries at once, each in its own ``python -m lin_utils.zoo train
    NAME`` process, after this process has built the shared tokenizer and token stream, longest
    first. On a small CPU, one single-threaded process per core beats one process with a thread
    per core: these models' matrices are too small to split well, and a thread that waits for a
    descheduled sibling stalls the whole step. A killed run resumes: finished models are kept and
    each unfinished one resumes from its last state.
    """
    wanted = [entry(n).name for n in wanted]
    todo = [n for n in wanted if not (run_dir(n) / "final" / "meta.json").is_file()]
    # longest first (deeper models, regularized before baselines at a depth), so that the last
    # model to start is a short one and the workers finish together
    todo.sort(key=lambda n: (-_cost(ENTRIES[n].config), wanted.index(n)))
    if jobs is None:
        jobs = PROFILE_JOBS[ENTRIES[wanted[0]].profile] if wanted else 1
    jobs = min(jobs, os.cpu_count() or 1)
    if jobs <= 1 or len(todo) <= 1:
        return {n: train(n, progress=progress, device=device) for n in wanted}
    from .train.loop import prepare

    for cfg in {ENTRIES[n].config.replace(regularizer="none", reg_lambda=0.0) for n in todo}:
        prepare(cfg)  # tokenizer and token stream, once, before the workers start
    work = [Job(n, "lin_utils.zoo", ("train", n, "--no-progress", *(("--device", device) if device else ())),
                run_dir(n) / "train.log") for n in todo]
    failed = run_jobs(work, jobs=jobs, desc="zoo", progress=progress)
    if failed:
        raise RuntimeError(f"training failed for {', '.join(j.label for j in failed)} (see train.log in their run "
                           f"folders): {last_line(failed[0])}")
    return {n: resolve(n) for n in wanted}


# ------------------------------------------------------------------------------------------------
# the recipe sweep: short-budget baselines at each size, chosen on held-out training text

#: the sweep of each profile: ``steps`` optimizer steps of each size's base batch; every
#: combination of ``lr`` × ``warmup`` (an int is steps, a float a fraction of the steps) at
#: initialisation std 0.02, then ``init`` = ``(init_std, lrs, warmup)``: the same at a larger
#: initialisation for a few learning rates. Baselines only (the regularizer strengths are the
#: paper's and are not tuned); the order is the order of training.
SWEEPS = {
    "smoke": dict(steps=8, lr=(3e-3, 6e-3), warmup=(1, 0.25), init=(0.05, (3e-3,), 0.25)),
    "cpu": dict(steps=160, lr=(1e-3, 2e-3, 4e-3, 8e-3), warmup=(0.05, 0.2), init=(0.05, (2e-3, 4e-3), 0.05)),
    # not run yet: about 6 minutes on one H100 at the measured throughput (6.6M tokens a run)
    "gpu": dict(steps=100, lr=(3e-4, 6e-4, 1e-3, 2e-3), warmup=(0.05, 0.2), init=(0.01, (6e-4, 1e-3), 0.05)),
}
#: validation tokens of a sweep run: the held-out training tail it is chosen on (cadence only)
SWEEP_HELDOUT_TOKENS = {"smoke": 4096, "cpu": 32_768, "gpu": 65_536}


def _warmup_steps(warmup: int | float, steps: int) -> int:
    return max(1, round(warmup * steps)) if isinstance(warmup, float) else int(warmup)


def sweep_runs(profile: str) -> list[dict]:
    """The runs of ``profile``'s recipe sweep, in training order: ``size``, ``lr``, ``warmup``
    (as declared: steps, or a fraction of the steps), ``warmup_steps``, ``init_std`` and
    ``config`` (a baseline :class:`TrainConfig` of the size's base, on the sweep's budget)."""
    if profile not in SWEEPS:
        raise ValueError(f"no recipe sweep for profile {profile!r}; sweeps: {', '.join(SWEEPS)}")
    sw = SWEEPS[profile]
    grid = [(lr, w, 0.02) for w in sw["warmup"] for lr in sw["lr"]]
    init_std, init_lrs, init_w = sw["init"]
    grid += [(lr, init_w, init_std) for lr in init_lrs]
    out = []
    for (p, size), base in _BASES.items():
        if p != profile:
            continue
        for lr, w, std in grid:
            ws = _warmup_steps(w, sw["steps"])
            # trained on the stories before the held-out tail, on which the run is then scored
            cfg = base.replace(regularizer="none", reg_lambda=0.0, seed=0, lr=lr, warmup_steps=ws,
                               data_stories=min(base.data_stories or TRAINABLE_STORIES, TRAINABLE_STORIES),
                               tokenizer_stories=min(base.tokenizer_stories or TRAINABLE_STORIES, TRAINABLE_STORIES),
                               init_std=std, max_tokens=sw["steps"] * base.tokens_per_step, eval_every=0,
                               val_tokens=SWEEP_HELDOUT_TOKENS[profile],
                               num_threads=1 if profile != "gpu" else base.num_threads)
            out.append(dict(size=base.size, lr=lr, warmup=w, warmup_steps=ws, init_std=std, config=cfg))
    return out


def sweep(profile: str, *, force: bool = False, progress: bool = True, device: str | None = None):
    """Run (or load) ``profile``'s recipe sweep: :func:`lin_utils.experiments.recipe_sweep`."""
    from .experiments.pretraining import recipe_sweep

    return recipe_sweep(profile, profile=profile, force=force, progress=progress, device=device)


def status(profile: str | None = None) -> list[dict]:
    """One row per entry: name, profile, size, regularizer, λ, tokens, key, trained?, path."""
    rows = []
    for n in names(profile):
        e = ENTRIES[n]
        final = run_dir(e) / "final"
        rows.append({"name": n, "profile": e.profile, "size": e.config.size, "variant": e.variant, "seed": e.seed,
                     "regularizer": e.config.regularizer, "lambda": e.config.reg_lambda,
                     "tokens": e.config.steps * e.config.tokens_per_step, "key": e.config.key(),
                     "trained": (final / "meta.json").is_file(), "path": str(final)})
    return rows


def _main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m lin_utils.zoo", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a zoo entry, or every entry of a profile")
    t.add_argument("target", help="an entry name or a profile (smoke, cpu, gpu)")
    t.add_argument("--device", default=None)
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--jobs", type=int, default=None, help="entries trained at once for a profile")
    w = sub.add_parser("sweep", help="the recipe sweep of a profile (cached; resumes run by run)")
    w.add_argument("profile")
    w.add_argument("--force", action="store_true")
    w.add_argument("--device", default=None)
    w.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("status", help="which entries are trained")
    s.add_argument("profile", nargs="?", default=None)
    args = p.parse_args(argv)
    try:
        if args.cmd == "sweep":
            tables = sweep(args.profile, force=args.force, progress=not args.no_progress, device=args.device)
            import pandas as pd

            with pd.option_context("display.width", 200, "display.max_columns", 30):
                print(tables["runs"].drop(columns=["weights_key"]).to_string(index=False))
            return 0
        if args.cmd == "status":
            for r in status(args.profile):
                print(f"{r['name']:24s} {r['key']}  {'trained' if r['trained'] else 'missing'}")
            return 0
        if args.target in PROFILES:
            done = train_profile(args.target, progress=not args.no_progress, device=args.device,
                                 jobs=args.jobs)
            for path in done.values():
                print(path)
        else:
            print(train(entry(args.target).name, progress=not args.no_progress, device=args.device))
    except (ModelNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
