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


def test_each_profile_has_two_sizes_times_four_variants():
    for profile in zoo.PROFILES:
        names = zoo.names(profile)
        assert len(names) == 8
        assert {n.rsplit("-", 1)[1] for n in names} == {"baseline", "cos0.5", "mse0.5", "mse2.0"}
        for size in ("small", "large"):
            group = [zoo.entry(n).config for n in names if n.startswith(f"{profile}-{size}-")]
            assert len(group) == 4
            # within a size: same data, tokenizer, budget, schedule and seed; only the regularizer differs
            strip = [{k: v for k, v in c.weight_fields().items() if k not in ("regularizer", "reg_lambda")}
                     for c in group]
            assert all(s == strip[0] for s in strip)
            assert len({c.key() for c in group}) == 4
    assert zoo.entry("cpu-large-cos0.5").config.regularizer == "cosine"
    assert zoo.entry("cpu-large-mse2.0").config.reg_lambda == 2.0
    assert zoo.entry("cpu-large-baseline").config.steps * 16 * 256 <= 1_500_000


_WEIGHT_CHANGES = dict(size="smoke-large", vocab_size=1024, tokenizer_stories=1000, data_stories=3000,
                       seq_len=32, batch_size=4, micro_batch_size=4, max_tokens=32_768, lr=1e-3,
                       min_lr_ratio=0.0, warmup_steps=2, weight_decay=0.0, betas=(0.9, 0.99),
                       grad_clip=0.5, seed=1, regularizer="mse", reg_lambda=2.0, reg_boundaries=(1, 2),
                       precision="bf16")
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
