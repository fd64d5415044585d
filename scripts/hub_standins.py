"""Offline stand-ins for the Hugging Face hub: tiny models under real ids, small datasets in the
hub's schemas. Used by ``scripts/rehearse.py`` (the dress rehearsal of the ``full`` profile).

Models go into a hub cache laid out as ``huggingface_hub`` lays it out::

    <HF_HOME>/hub/models--<org>--<name>/snapshots/<commit>/{config.json, model.safetensors,
                                                           tokenizer.json, tokenizer_config.json}
    <HF_HOME>/hub/models--<org>--<name>/refs/<revision>     (holds <commit>)

so ``AutoModelForCausalLM.from_pretrained("org/name", revision=...)`` resolves there with
``HF_HUB_OFFLINE=1``. Each (id, revision) is a random model of the id's architecture family
(same ``model_type`` and config class: GPT-2, OPT, Llama, GPT-NeoX/Pythia, BLOOM, Mistral) at a
tiny size (d=48, 4 blocks) with the family's real context length and a 512-token byte-level BPE
dressed as the family's tokenizer (its class, special tokens and BOS convention).

Datasets go where ``datasets`` 5 looks when the hub is offline: its prepared-Arrow cache
``<HF_HOME>/datasets/<org>___<name>/<config id>/0.0.0/<commit>/`` (``datasets`` never reads a
dataset repo from the hub cache offline; it falls back to this cache). Each stand-in has the hub
dataset's columns, feature types (``ClassLabel`` labels included) and split names, filled with
seeded synthetic text.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["FAMILIES", "family_of", "hub_models", "build_tokenizer", "stage_model", "DATASETS",
           "stage_dataset", "stage_datasets", "commit_of"]

# --------------------------------------------------------------------------------------------
# text


_WORDS = ("the a little big red happy sad girl boy dog cat bird tree park ball house mom dad friend "
          "sun rain day night toy box car boat fish cake apple garden river hill forest school "
          "played ran jumped saw found wanted liked loved said looked helped shared smiled went "
          "and but so then because when with in on under near very too again together").split()
_NAMES = ("Lily Tom Sue Max Ben Mia Sam Anna Leo Zoe").split()


def _sentence(rng: random.Random, n: int | None = None) -> str:
    words = [rng.choice(_WORDS) for _ in range(n or rng.randint(6, 14))]
    if rng.random() < 0.5:
        words.insert(rng.randint(0, len(words)), rng.choice(_NAMES))
    return " ".join(words).capitalize() + rng.choice(".!.?")


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _story(rng: random.Random) -> str:
    opener = rng.choice(["Once upon a time", "Once there was", "Once upon a time, there was"])
    paras = [f"{opener} {_paragraph(rng, rng.randint(3, 6))}"]
    paras += [_paragraph(rng, rng.randint(2, 5)) for _ in range(rng.randint(0, 2))]
    return "\n\n".join(paras)


def sample_texts(n: int = 400, seed: int = 0) -> list[str]:
    """``n`` synthetic stories: the training text of the stand-in tokenizer."""
    rng = random.Random(seed)
    return [_story(rng) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# models


@dataclass(frozen=True)
class Family:
    """How to dress a tiny model as one architecture family.

    ``arch``: the :func:`lin_utils.arch.tiny_config` family; ``context``: the family's real
    context length (None: no position limit, BLOOM's ALiBi); ``tokenizer_class``: the
    ``transformers`` class the tokenizer is saved as; ``specials``: its special tokens and flags.
    """

    arch: str
    context: int | None
    tokenizer_class: str
    specials: dict


_EOT = "<|endoftext|>"
#: hub id pattern -> family, tried in order
FAMILIES: tuple[tuple[str, Family], ...] = (
    (r"(openai-community/)?gpt2(-medium|-large|-xl)?", Family(
        "gpt2", 1024, "GPT2TokenizerFast", dict(bos_token=_EOT, eos_token=_EOT, unk_token=_EOT))),
    (r"facebook/opt-[0-9.]+[mb]", Family(
        "opt", 2048, "GPT2TokenizerFast", dict(bos_token="</s>", eos_token="</s>", unk_token="</s>",
                                               pad_token="<pad>", add_bos_token=True))),
    (r"meta-llama/Llama-2-[0-9]+b(-chat)?-hf", Family(
        "llama", 4096, "LlamaTokenizerFast", dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                                 add_bos_token=True))),
    (r"EleutherAI/pythia-[0-9.]+[mb](-deduped)?", Family(
        "gpt_neox", 2048, "GPTNeoXTokenizerFast", dict(bos_token=_EOT, eos_token=_EOT, unk_token=_EOT))),
    (r"bigscience/bloom(-[0-9a-z]+)?", Family(
        "bloom", None, "PreTrainedTokenizerFast", dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                                      pad_token="<pad>"))),
    (r"mistralai/Mistral-7B(-v0\.[0-9])?", Family(
        "mistral", 32768, "LlamaTokenizerFast", dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                                    add_bos_token=True))),
)
_SPECIALS = [_EOT, "<pad>", "<s>", "</s>", "<unk>"]
TOKENIZER_VOCAB = 512
TINY_BLOCKS = 4  # the pruning notebooks remove up to half of them


def family_of(hub_id: str) -> Family:
    """The :class:`Family` of a hub id; ValueError naming the id when no pattern matches."""
    for pattern, fam in FAMILIES:
        if re.fullmatch(pattern, hub_id):
            return fam
    raise ValueError(f"no stand-in family for hub id {hub_id!r}; add its pattern to "
                     f"scripts/hub_standins.py FAMILIES")


_SPEC_KEYS = ("models", "model", "scorer", "reference")
_LOCAL = {"stories260k", "minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def _hub_id(spec: str) -> tuple[str, str | None] | None:
    """``(id, revision)`` of a hub spec, None for local, zoo and bundled specs."""
    spec = spec.strip()
    if spec.startswith("random:"):
        spec = spec[len("random:"):].strip()
    if spec.startswith("zoo:") or spec.lower() in _LOCAL or spec.startswith(("/", ".", "~")):
        return None
    name, _, rev = spec.partition("@")
    return name, (rev or None)


def hub_models(sections: dict[str, dict]) -> list[tuple[str, str | None]]:
    """Every ``(hub id, revision)`` a profile names (revision None = the default branch).

    Model specs are read from the keys ``models``, ``model``, ``scorer`` and ``reference`` of
    every section; a section's ``revisions`` apply to each of its hub models (Fig 2).
    """
    out: set[tuple[str, str | None]] = set()
    for section in sections.values():
        specs = []
        for key in _SPEC_KEYS:
            value = section.get(key)
            specs += value if isinstance(value, list) else [value] if isinstance(value, str) else []
        for spec in specs:
            found = _hub_id(spec)
            if found is None:
                continue
            out.add(found)
            for rev in section.get("revisions") or []:
                out.add((found[0], rev))
    return sorted(out, key=lambda t: (t[0], t[1] or ""))


def build_tokenizer(folder: Path, texts: list[str] | None = None) -> Path:
    """Train the shared byte-level BPE (``TOKENIZER_VOCAB`` tokens, ids 0-4 the specials
    ``<|endoftext|> <pad> <s> </s> <unk>``) and save it as ``folder/tokenizer.json``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts or sample_texts(), trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder


def commit_of(hub_id: str, revision: str | None) -> str:
    """A deterministic 40-hex commit id for ``hub_id`` at ``revision``."""
    return hashlib.sha1(f"{hub_id}@{revision or 'main'}".encode()).hexdigest()


def _seed(hub_id: str, revision: str | None) -> int:
    return int(commit_of(hub_id, revision)[:8], 16)


def _repo_dir(hf_home: Path, kind: str, hub_id: str) -> Path:
    return Path(hf_home) / "hub" / f"{kind}--{hub_id.replace('/', '--')}"


def stage_model(hf_home: Path, hub_id: str, revision: str | None, base_tokenizer: Path) -> Path:
    """Save a tiny random model of ``hub_id``'s family as ``hub_id`` at ``revision`` (None: main)
    in the hub cache under ``hf_home``; return its snapshot folder. Idempotent."""
    import torch
    import transformers

    from lin_utils.arch import from_config, tiny_config

    transformers.utils.logging.disable_progress_bar()

    fam = family_of(hub_id)
    commit = commit_of(hub_id, revision)
    repo = _repo_dir(hf_home, "models", hub_id)
    snap = repo / "snapshots" / commit
    if not (snap / "config.json").is_file():
        repo.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".stage-", dir=repo.parent))  # same filesystem: atomic rename
        cls = getattr(transformers, fam.tokenizer_class)
        tok = cls.from_pretrained(str(base_tokenizer), **fam.specials)
        vocab = -(-len(tok) // 64) * 64  # padded like the real models' embeddings (50257 -> 50304 ...)
        ids = {k: tok.convert_tokens_to_ids(fam.specials[t]) for k, t in
               (("bos_token_id", "bos_token"), ("eos_token_id", "eos_token"), ("pad_token_id", "pad_token"))
               if t in fam.specials}
        overrides = dict(num_hidden_layers=TINY_BLOCKS, vocab_size=vocab, **ids)
        if fam.context is not None:
            overrides["max_position_embeddings"] = fam.context
        config = tiny_config(fam.arch, **overrides)
        model = from_config(config, seed=_seed(hub_id, revision))
        with torch.no_grad():  # a little structure, so the scores are not those of pure noise
            model.get_input_embeddings().weight.mul_(4.0)
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        snap.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    _atomic_text(repo / "refs" / (revision or "main"), commit)
    return snap


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# datasets


def _features(spec: dict):
    import datasets

    def one(v):
        if isinstance(v, dict):
            return {k: one(x) for k, x in v.items()}
        if isinstance(v, list) and v and isinstance(v[0], str) and v[0].startswith("class:"):
            return datasets.ClassLabel(names=[x[len("class:"):] for x in v])
        if isinstance(v, list):
            return datasets.List(one(v[0]))
        return datasets.Value(v)

    return datasets.Features({k: one(v) for k, v in spec.items()})


def _labels(*names: str) -> list[str]:
    return [f"class:{n}" for n in names]


_BOOL = _labels("False", "True")


def _wikitext(rng: random.Random, split: str) -> list[dict]:
    # wikitext-2-raw-v1 rows: "" (blank line), " = Title = \n", then paragraph lines " ... \n"
    rows = []
    for a in range({"train": 40, "validation": 12, "test": 24}[split]):
        rows += ["", f" = {' '.join(rng.choice(_WORDS) for _ in range(2)).title()} = \n", ""]
        for _ in range(rng.randint(2, 4)):
            rows.append(f" {_paragraph(rng, rng.randint(4, 8))} \n")
    return [{"text": r} for r in rows]


def _stories(rng: random.Random, split: str) -> list[dict]:
    return [{"text": _story(rng)} for _ in range({"train": 60, "validation": 120}[split])]


def _boolq(rng, split, i):
    return {"question": " ".join(rng.choice(_WORDS) for _ in range(6)), "passage": _paragraph(rng, 4),
            "idx": i, "label": -1 if split == "test" else rng.randint(0, 1)}


def _cb(rng, split, i):
    return {"premise": _paragraph(rng, 2), "hypothesis": _sentence(rng), "idx": i,
            "label": -1 if split == "test" else i % 3}


def _copa(rng, split, i):
    return {"premise": _sentence(rng), "choice1": _sentence(rng), "choice2": _sentence(rng),
            "question": rng.choice(["cause", "effect"]), "idx": i,
            "label": -1 if split == "test" else rng.randint(0, 1)}


def _multirc(rng, split, i):
    # one row per (paragraph, question, answer); paragraphs have 2 questions of 2 answers
    p, q, a = i // 4, i // 2, i
    prng = random.Random(p)
    return {"paragraph": _paragraph(prng, 5), "question": _sentence(random.Random(1000 + q)),
            "answer": _sentence(rng, 4), "idx": {"paragraph": p, "question": q, "answer": a},
            "label": -1 if split == "test" else rng.randint(0, 1)}


def _record(rng, split, i):
    ents = rng.sample(_NAMES, 4)
    passage = f"{ents[0]} and {ents[1]} {_paragraph(rng, 2)} {ents[2]} met {ents[3]}.\n@highlight\n{_sentence(rng)}"
    spans = [{"text": e, "start": passage.index(e), "end": passage.index(e) + len(e) - 1} for e in ents]
    return {"passage": passage, "query": f"@placeholder {' '.join(rng.choice(_WORDS) for _ in range(5))}",
            "entities": ents, "entity_spans": {k: [s[k] for s in spans] for k in ("text", "start", "end")},
            "answers": [] if split == "test" else [ents[rng.randint(0, 3)]], "idx": {"passage": i, "query": i}}


def _wic(rng, split, i):
    word = rng.choice(_WORDS[:40])
    s1 = f"{_sentence(rng, 4)[:-1]} {word} {_sentence(rng, 3)}"
    s2 = f"{word.capitalize()} {_sentence(rng, 5)}"
    return {"word": word, "sentence1": s1, "sentence2": s2, "start1": s1.index(f" {word} ") + 1,
            "start2": 0, "end1": s1.index(f" {word} ") + 1 + len(word), "end2": len(word), "idx": i,
            "label": -1 if split == "test" else rng.randint(0, 1)}


def _rte(rng, split, i):
    return {"sentence1": _paragraph(rng, 2), "sentence2": _sentence(rng),
            "label": -1 if split == "test" else rng.randint(0, 1), "idx": i}


def _xstory(rng, split, i):
    return {"story_id": f"{split}-{i:04d}", **{f"input_sentence_{k}": _sentence(rng) for k in range(1, 5)},
            "sentence_quiz1": _sentence(rng), "sentence_quiz2": _sentence(rng),
            "answer_right_ending": rng.randint(1, 2)}


def _arc(rng, split, i):
    n = rng.choice([3, 4, 4, 5])
    labels = list("ABCDE")[:n] if rng.random() < 0.9 else [str(k) for k in range(1, n + 1)]
    return {"id": f"Mercury_{split}_{i}", "question": " ".join(rng.choice(_WORDS) for _ in range(9)) + "?",
            "choices": {"text": [" ".join(rng.choice(_WORDS) for _ in range(3)) for _ in labels],
                        "label": labels}, "answerKey": rng.choice(labels)}


def _hh(rng, split, i):
    def dialogue(last):
        return f"\n\nHuman: {_sentence(rng)}\n\nAssistant: {_sentence(rng)}\n\nHuman: {_sentence(rng)}\n\nAssistant: {last}"
    return {"chosen": dialogue(_paragraph(rng, 2)), "rejected": dialogue(_sentence(rng))}


def _rows(make: Callable, n: int) -> Callable[[random.Random, str], list[dict]]:
    return lambda rng, split: [make(rng, split, i) for i in range(n)]


_SG_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DatasetStandIn:
    """One hub dataset configuration: ``load_dataset(repo_id, config_name, data_dir=data_dir)``."""

    repo_id: str
    config_name: str | None
    splits: tuple[str, ...]
    features: dict
    rows: Callable[[random.Random, str], list[dict]]
    data_dir: str | None = None

    @property
    def label(self) -> str:
        extra = self.config_name or (f"data_dir={self.data_dir}" if self.data_dir else "")
        return f"{self.repo_id}" + (f" ({extra})" if extra else "")


_S = "string"
#: every hub dataset the ``full`` profile's code paths load (lin_utils.data's hub fallbacks and
#: the lm-eval tasks of Table 2 and Fig 8: their built-in YAMLs' dataset_path / dataset_name)
DATASETS: tuple[DatasetStandIn, ...] = (
    DatasetStandIn("wikitext", "wikitext-2-raw-v1", ("train", "validation", "test"), {"text": _S}, _wikitext),
    DatasetStandIn("roneneldan/TinyStories", None, ("train", "validation"), {"text": _S}, _stories),
    DatasetStandIn("aps/super_glue", "boolq", _SG_SPLITS,
                   {"question": _S, "passage": _S, "idx": "int32", "label": _BOOL}, _rows(_boolq, 24)),
    DatasetStandIn("aps/super_glue", "cb", _SG_SPLITS,
                   {"premise": _S, "hypothesis": _S, "idx": "int32",
                    "label": _labels("entailment", "contradiction", "neutral")}, _rows(_cb, 24)),
    DatasetStandIn("aps/super_glue", "copa", _SG_SPLITS,
                   {"premise": _S, "choice1": _S, "choice2": _S, "question": _S, "idx": "int32",
                    "label": _labels("choice1", "choice2")}, _rows(_copa, 16)),
    DatasetStandIn("aps/super_glue", "multirc", _SG_SPLITS,
                   {"paragraph": _S, "question": _S, "answer": _S,
                    "idx": {"paragraph": "int32", "question": "int32", "answer": "int32"}, "label": _BOOL},
                   _rows(_multirc, 32)),
    DatasetStandIn("aps/super_glue", "record", _SG_SPLITS,
                   {"passage": _S, "query": _S, "entities": [_S],
                    "entity_spans": {"text": [_S], "start": ["int32"], "end": ["int32"]},
                    "answers": [_S], "idx": {"passage": "int32", "query": "int32"}}, _rows(_record, 12)),
    DatasetStandIn("aps/super_glue", "wic", _SG_SPLITS,
                   {"word": _S, "sentence1": _S, "sentence2": _S, "start1": "int32", "start2": "int32",
                    "end1": "int32", "end2": "int32", "idx": "int32", "label": _BOOL}, _rows(_wic, 16)),
    DatasetStandIn("nyu-mll/glue", "rte", _SG_SPLITS,
                   {"sentence1": _S, "sentence2": _S, "label": _labels("entailment", "not_entailment"),
                    "idx": "int32"}, _rows(_rte, 16)),
    DatasetStandIn("juletxara/xstory_cloze", "en", ("train", "eval"),
                   {"story_id": _S, **{f"input_sentence_{k}": _S for k in range(1, 5)},
                    "sentence_quiz1": _S, "sentence_quiz2": _S, "answer_right_ending": "int32"},
                   _rows(_xstory, 30)),
    DatasetStandIn("allenai/ai2_arc", "ARC-Easy", ("train", "validation", "test"),
                   {"id": _S, "question": _S, "choices": {"text": [_S], "label": [_S]}, "answerKey": _S},
                   _rows(_arc, 16)),
    DatasetStandIn("allenai/ai2_arc", "ARC-Challenge", ("train", "validation", "test"),
                   {"id": _S, "question": _S, "choices": {"text": [_S], "label": [_S]}, "answerKey": _S},
                   _rows(_arc, 16)),
    DatasetStandIn("Anthropic/hh-rlhf", None, ("train", "test"), {"chosen": _S, "rejected": _S},
                   _rows(_hh, 24), data_dir="helpful-base"),
)


def _config_id(d: DatasetStandIn) -> str:
    import datasets

    if d.data_dir is None:
        return d.config_name or "default"
    return datasets.BuilderConfig(d.config_name or "default").create_config_id(
        config_kwargs={"data_dir": d.data_dir})


def stage_dataset(hf_home: Path, d: DatasetStandIn) -> Path:
    """Prepare ``d`` in ``<hf_home>/datasets`` the way ``datasets`` caches a hub download; return
    the prepared folder. Idempotent."""
    import datasets
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules.parquet.parquet import Parquet

    ns, _, name = d.repo_id.rpartition("/")
    commit = hashlib.sha1(f"dataset:{d.label}".encode()).hexdigest()
    root = Path(hf_home) / "datasets"
    target = root / "___".join(x for x in (ns, camelcase_to_snakecase(name)) if x) / _config_id(d) / "0.0.0" / commit
    if (target / "dataset_info.json").is_file():
        return target
    features = _features(d.features)
    rng = random.Random(int(commit[:8], 16))
    work = Path(tempfile.mkdtemp(prefix=".stage-"))
    try:
        files = {}
        for split in d.splits:
            path = work / "src" / f"{split}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(d.rows(rng, split), features=features).to_parquet(str(path))
            files[split] = [str(path)]
        builder = Parquet(cache_dir=str(work / "cache"), dataset_name=name, config_name=_config_id(d),
                          data_files=files, features=features, hash=commit)
        builder.download_and_prepare()
        info_path = Path(builder.cache_dir) / "dataset_info.json"
        info = json.loads(info_path.read_text())
        info.update(config_name=_config_id(d), dataset_name=camelcase_to_snakecase(name))
        info_path.write_text(json.dumps(info))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(builder.cache_dir, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def stage_datasets(hf_home: Path, which: list[str] | None = None) -> list[str]:
    """Stage every stand-in of :data:`DATASETS` (or those whose ``label`` is in ``which``)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    done = []
    for d in DATASETS:
        if which is None or d.label in which or d.repo_id in which:
            stage_dataset(hf_home, d)
            done.append(d.label)
    return done
