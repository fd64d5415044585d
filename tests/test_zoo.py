"""lin_utils.zoo: the registry, weight keys, resolve() errors, and one real smoke model end to end."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from lin_utils import zoo
from lin_utils.errors import ModelNotFoundError, one_line
from lin_utils.train import TrainConfig, log_spaced_steps


@pytest.fixture(scope="module")
def zoo_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo_cache")


@pytest.fixture(autouse=True)
def private_cache(zoo_cache, monkeypatch):
    """$LIN_CACHE is a fresh folder of this module's own, never the user's zoo."""
    monkeypatch.setenv("LIN_CACHE", str(zoo_cache))


def test_each_arm_has_its_seeds_and_within_a_size_only_regularizer_and_seed_differ():
    for profile in zoo.PROFILES:
        t = zoo.table(profile)
        assert list(t.name) == zoo.names(profile) and set(t["size"]) == {"small", "large"}
        for (p, size), arms in zoo.ARMS.items():
            if p != profile:
                continue
            group = t[t["size"] == size]
            assert {v: int((group.variant == v).sum()) for v in arms} == arms
            configs = [zoo.entry(n).config for n in group.name]
            strip = [{k: v for k, v in c.weight_fields().items() if k not in ("regularizer", "reg_lambda", "seed")}
                     for c in configs]
            assert all(x == strip[0] for x in strip)
            assert len(set(group.key)) == len(group)  # every (variant, seed) is its own model
            for r in group.itertuples():  # metadata, not names, says what a model is
                e = zoo.entry(r.name)
                assert (e.size, e.variant, e.seed, e.config.seed) == (r.size, r.variant, r.seed, r.seed)
                assert zoo.VARIANTS[r.variant] == (e.config.regularizer, e.config.reg_lambda)
    cpu = zoo.table("cpu")
    assert len(cpu) == 18 and sorted(set(cpu.seed)) == [0, 1, 2]  # the paper's two scales, three seeds per arm
    assert set(cpu[cpu["size"] == "large"].variant) == {"baseline", "cos0.5"}
    # seed 0 keeps the names that the pages use; the other seeds append -s<seed>
    for name in ("cpu-small-baseline", "cpu-small-cos0.5", "cpu-small-mse0.5", "cpu-small-mse2.0",
                 "cpu-large-baseline", "cpu-large-cos0.5", "smoke-small-baseline", "smoke-large-cos0.5"):
        assert zoo.entry(name).seed == 0
    assert zoo.entry("cpu-large-cos0.5-s2").seed == 2 and zoo.entry("cpu-large-cos0.5-s2").variant == "cos0.5"
    assert zoo.entry("cpu-large-cos0.5").config.regularizer == "cosine"
    assert zoo.entry("cpu-small-mse2.0").config.reg_lambda == 2.0
    assert len(zoo.table("smoke")) == 8 and set(zoo.table("smoke").variant) == {"baseline", "cos0.5"}


def test_every_profile_trains_its_whole_zoo_and_shows_a_sweep():
    import yaml

    from lin_utils.paths import REPO_ROOT

    for profile, zoo_profile in (("smoke", "smoke"), ("cpu", "cpu"), ("gpu", "gpu"), ("full", "gpu")):
        section = yaml.safe_load((REPO_ROOT / "profiles" / f"{profile}.yaml").read_text())["model_zoo"]
        assert section["entries"] == zoo.names(zoo_profile), profile
        assert section["sweep"] in zoo.SWEEPS


def test_the_swept_cpu_recipe_is_the_committed_sweeps_choice(monkeypatch):
    """Under the ``swept`` recipe every cpu arm trains with its size's recipe as the committed
    sweep chose it (lowest loss on the held-out training tail), the warmup as the same fraction of
    the longer run, on the stories before the tail."""
    from lin_utils.experiments.pretraining import recipe_sweep
    from lin_utils.train.tokenizer import TRAINABLE_STORIES

    tables = recipe_sweep("cpu", profile="cpu", cache_only=True)
    assert tables is not None, "the cpu recipe sweep's table is committed under data/results/cpu"
    runs = tables["runs"]
    assert set(runs["size"]) == {"cpu-small", "cpu-large"} and len(runs) == len(zoo.sweep_runs("cpu"))
    monkeypatch.setenv(zoo.RECIPE_ENV, "swept")
    swept = zoo._build()
    assert zoo.cpu_recipe() == "swept"
    for name in zoo.names("cpu"):
        cfg = swept[name].config
        best = runs[(runs["size"] == cfg.size) & runs.chosen.astype(bool)]
        assert len(best) == 1
        best = best.iloc[0]
        assert best.heldout_loss == runs[runs["size"] == cfg.size].heldout_loss.min()
        assert (cfg.lr, cfg.init_std) == (best.lr, best.init_std), name
        assert cfg.warmup_steps == round(best.warmup_steps / best.steps * cfg.steps), name
        assert cfg.data_stories == cfg.tokenizer_stories == TRAINABLE_STORIES and cfg.steps == zoo.CPU_STEPS
        assert cfg.key() != zoo.ENTRIES[name].config.key() or zoo.CPU_RECIPE == "swept"
    monkeypatch.setenv(zoo.RECIPE_ENV, "nope")
    with pytest.raises(ValueError, match="LIN_ZOO_CPU_RECIPE"):
        zoo._build()


def test_pairs_match_each_regularized_model_to_the_baseline_of_its_size_and_seed():
    p = zoo.pairs("cpu")
    assert len(p) == 12  # small: 3 variants x 3 seeds; large: cosine x 3 seeds
    for r in p.itertuples():
        m, b = zoo.entry(r.model[4:]), zoo.entry(r.baseline[4:])
        assert (m.size, m.seed) == (b.size, b.seed) == (r.size, r.seed) and b.variant == "baseline"
        assert m.variant == r.variant != "baseline"
    cos = zoo.pairs("cpu", "cos0.5")
    assert set(cos.variant) == {"cos0.5"} and len(cos) == 6
    assert zoo.pairs("smoke", "mse0.5").empty


def test_train_many_trains_the_longest_first_and_a_profile_is_its_names(monkeypatch):
    started = []
    monkeypatch.setattr(zoo, "train", lambda n, **kw: started.append(n) or n)
    out = zoo.train_many(["cpu-small-baseline", "cpu-large-cos0.5", "cpu-small-cos0.5-s1"], jobs=1)
    assert list(out) == ["cpu-small-baseline", "cpu-large-cos0.5", "cpu-small-cos0.5-s1"]  # order kept
    costs = [zoo._cost(zoo.entry(n).config) for n in ("cpu-large-baseline", "cpu-large-cos0.5",
                                                       "cpu-small-baseline", "cpu-small-mse2.0")]
    assert costs[1] > costs[0] > costs[3] > costs[2]
    with pytest.raises(ValueError, match="unknown zoo profile"):
        zoo.train_profile("nope")


def test_the_seed_sets_both_initialisation_and_data_order():
    from lin_utils.arch import from_config
    from lin_utils.train.configs import zoo_config
    from lin_utils.train.packing import PackedRows
    import numpy as np

    a, b = zoo.entry("cpu-small-baseline").config, zoo.entry("cpu-small-baseline-s1").config
    assert (a.seed, b.seed) == (0, 1) and a.replace(seed=1).key() == b.key()
    cfg = zoo_config("smoke-small", 512, max_position_embeddings=64)
    w0, w1 = (from_config(cfg, seed=s).model.embed_tokens.weight for s in (a.seed, b.seed))
    assert not torch.equal(w0, w1)
    stream = np.arange(64 * 40, dtype=np.uint16)
    r0, r1 = PackedRows(stream, 64, a.seed), PackedRows(stream, 64, b.seed)
    assert not torch.equal(r0.batch(0, 8), r1.batch(0, 8))


def test_the_recipe_sweep_is_baselines_on_a_short_budget_of_each_base():
    runs = zoo.sweep_runs("cpu")
    sw = zoo.SWEEPS["cpu"]
    assert len(runs) == 2 * (len(sw["lr"]) * len(sw["warmup"]) + len(sw["init"][1]))
    assert len({r["config"].key() for r in runs}) == len(runs)
    for r in runs:
        c = r["config"]
        base = zoo.entry(f"cpu-{r['size'].split('-')[1]}-baseline").config
        assert c.regularizer == "none" and c.seed == 0 and c.steps == sw["steps"] and c.lr == r["lr"]
        assert (c.size, c.batch_size, c.seq_len, c.vocab_size) == (base.size, base.batch_size, base.seq_len,
                                                                    base.vocab_size)
        assert c.warmup_steps == r["warmup_steps"] and c.init_std == r["init_std"]
    with pytest.raises(ValueError, match="no recipe sweep"):
        zoo.sweep_runs("full")


def test_the_smoke_sweep_runs_one_model_at_a_time_and_is_cached(tmp_path, monkeypatch):
    from lin_utils.experiments.pretraining import recipe_sweep

    monkeypatch.setenv("LIN_RESULTS_DIR", str(tmp_path / "results"))
    n = torch.get_num_threads()
    try:
        t = recipe_sweep("smoke", profile="smoke", progress=False)
    finally:
        torch.set_num_threads(n)
    runs = t["runs"]
    assert len(runs) == len(zoo.sweep_runs("smoke")) and runs.heldout_loss.notna().all()
    assert (runs.groupby("size").chosen.sum() == 1).all()
    best = runs[runs.chosen]
    assert all(best.heldout_loss.to_numpy() == runs.groupby("size").heldout_loss.min().loc[best["size"]].to_numpy())
    assert (runs.block0_ratio > 0).all() and (runs.tokens_per_cpu_s > 0).all()
    assert set(t["curves"].step) == set(range(1, zoo.SWEEPS["smoke"]["steps"] + 1))
    again = recipe_sweep("smoke", profile="smoke", cache_only=True)
    assert again is not None and again["runs"].equals(runs)
    from lin_utils.experiments.pretraining import sweep_numbers
    from lin_utils.plots import recipe_sweep as plot_sweep

    nums = sweep_numbers(runs)
    assert nums["small_size"] == "smoke-small" and nums["large_size"] == "smoke-large" and nums["n_runs"] == len(runs)
    assert nums["small_heldout"] == runs[runs["size"] == "smoke-small"].heldout_loss.min() <= nums["small_worst"]
    fig = plot_sweep(runs)
    assert len(fig.axes) == 2


_WEIGHT_CHANGES = dict(size="smoke-large", vocab_size=1024, tokenizer_stories=1000, data_stories=3000,
                       seq_len=32, batch_size=4, micro_batch_size=4, max_tokens=32_768, lr=1e-3,
                       min_lr_ratio=0.0, warmup_steps=2, weight_decay=0.0, betas=(0.9, 0.99),
                       grad_clip=0.5, seed=1, regularizer="mse", reg_lambda=2.0, reg_boundaries=(1, 2),
                       precision="bf16", init_std=0.05)
_CADENCE_CHANGES = dict(eval_every=7, val_tokens=99, log_every=3, state_every_s=1.0, num_threads=2)


def test_the_key_changes_with_every_weight_field_and_only_with_them():
    base = TrainConfig(regularizer="cosine", reg_lambda=0.5)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(_WEIGHT_CHANGES) | set(_CADENCE_CHANGES) == fields  # every field is classified here
    keys = {base.key()}
    for name, value in _WEIGHT_CHANGES.items():
        changed = base.replace(**{name: value})
        assert changed.key() not in keys, name
        keys.add(changed.key())
    for name, value in _CADENCE_CHANGES.items():
        assert base.replace(**{name: value}).key() == base.key(), name
    assert TrainConfig(regularizer="cosine", reg_lambda=0.5).key() == base.key()  # stable
    e = zoo.entry("smoke-small-baseline")
    assert zoo.key(e.name) == e.config.key() and zoo.run_dir(e.name).name == e.config.key()
    # a field added later is hashed only away from its default, so older models keep their keys
    assert "init_std" not in base.weight_fields() and "init_std" in base.replace(init_std=0.05).weight_fields()


def test_resolve_says_how_to_train_a_missing_model(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        zoo.resolve("cpu-large-cos0.5")
    msg = str(err.value)
    assert msg == one_line(msg)  # one line, short enough for the CLI
    assert "cpu-large-cos0.5" in msg and "lin-utils book run --profile cpu --only model_zoo" in msg
    assert "python -m lin_utils.zoo train cpu-large-cos0.5" in msg
    with pytest.raises(ModelNotFoundError, match="no checkpoints"):
        zoo.checkpoints("cpu-large-cos0.5")
    with pytest.raises(ModelNotFoundError, match="unknown zoo model 'nope'"):
        zoo.resolve("nope")


def test_a_smoke_model_trains_resolves_loads_and_has_fig2_checkpoints():
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    name = "smoke-small-cos0.5"
    n = torch.get_num_threads()
    try:
        path = zoo.train(name, progress=False)
    finally:
        torch.set_num_threads(n)
    assert path == zoo.resolve(name) == zoo.run_dir(name) / "final"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tok = PreTrainedTokenizerFast.from_pretrained(path)
    assert model.config.model_type == "mistral" and len(tok) == model.config.vocab_size == 512
    meta = json.loads((path / "meta.json").read_text())
    assert meta["key"] == zoo.key(name) and meta["config"]["regularizer"] == "cosine"
    assert meta["history"][-1]["loss"] < meta["history"][0]["loss"] - 0.5 and meta["val_bpb"] > 0
    cfg = zoo.entry(name).config
    ckpts = zoo.checkpoints(name)
    assert [s for s, _, _ in ckpts] == log_spaced_steps(cfg.steps)
    assert [t for _, t, _ in ckpts] == [s * cfg.tokens_per_step for s in log_spaced_steps(cfg.steps)]
    assert AutoModelForCausalLM.from_pretrained(ckpts[1][2], dtype=torch.float32).config.vocab_size == 512
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert zoo.train(name, progress=False) == path  # trained once: nothing is redone
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime
    rows = {r["name"]: r for r in zoo.status("smoke")}
    assert rows[name]["trained"] and not rows["smoke-small-baseline"]["trained"]


def test_override_env_shrinks_every_entry_under_its_own_key(monkeypatch):
    import json

    from lin_utils import zoo

    monkeypatch.setenv(zoo.OVERRIDE_ENV, json.dumps({"max_tokens": 1024, "batch_size": 4, "seq_len": 64}))
    shrunk = zoo._build()
    monkeypatch.delenv(zoo.OVERRIDE_ENV)
    real = zoo._build()
    assert set(shrunk) == set(real)
    for name, e in shrunk.items():
        cfg = e.config
        assert (cfg.max_tokens, cfg.batch_size, cfg.seq_len, cfg.steps) == (1024, 4, 64, 4)
        # architecture and regularizer are the entry's; the key (and run folder) is not the real one
        assert (cfg.size, cfg.regularizer, cfg.reg_lambda) == (real[name].config.size, real[name].config.regularizer,
                                                               real[name].config.reg_lambda)
        assert cfg.key() != real[name].config.key()


@pytest.mark.parametrize("value,match", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                                         ('{"reg_lambda": 1.0}', "cannot override reg_lambda"),
                                         ('{"steps_per_day": 3}', "cannot override steps_per_day")])
def test_override_env_errors_are_one_line(monkeypatch, value, match):
    from lin_utils import zoo

    monkeypatch.setenv(zoo.OVERRIDE_ENV, value)
    with pytest.raises(ValueError, match=match):
        zoo._build()
