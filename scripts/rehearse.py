"""Dress rehearsal of the ``full`` profile, offline: every notebook through the hub code paths.

``make rehearse`` (or ``python scripts/rehearse.py``) does, in a temporary work folder:

1. **A hub cache** (``HF_HOME=<work>/hf``, ``HF_HUB_OFFLINE=1``): for every model id and revision
   that ``profiles/full.yaml`` names, a tiny random model of the same architecture family under
   that id and revision, and for every hub dataset the full profile's code paths load, a small
   stand-in in the hub's schema (``scripts/hub_standins.py``).
2. **A partial data mirror** (``LIN_DATA_DIR=<work>/mirror``) holding links to only what the
   ``full`` profile cannot take from the hub: ``stories260K/`` (the zoo page's reference model and
   Table 3's scorer) and the zoo's TinyStories training corpus (the zoo's keys name that exact
   corpus). Everything else the profile reads (WikiText-2, TinyStories validation, SuperGLUE,
   GLUE RTE, xStoryCloze, ARC, HH-RLHF) is absent from it, so it comes from the hub stand-ins.
3. **A rehearsal profile** ``<work>/profiles/full.yaml`` made from ``profiles/full.yaml`` by
   :func:`shrink`, which changes only sizes (tokens, steps, seeds, limits, stories, k_max, the
   scaling grid's extent) and the device: ``device: cuda`` -> ``cpu``, and bf16 training -> fp32
   where training runs (the zoo, the scaling grid; see :data:`ZOO_OVERRIDE`). Model ids,
   revisions, datasets, tasks and code paths are those of ``full``. The zoo's gpu entries, whose
   training budget is fixed in ``lin_utils/zoo.py``, get a smaller budget through
   ``$LIN_ZOO_OVERRIDE`` (:data:`ZOO_OVERRIDE`; same architectures, fewer tokens).
4. Runs every notebook with :func:`lin_utils.runner.run_profile` into ``<work>/book`` (results in
   ``<work>/results``, trained models in ``$LIN_CACHE=<work>/cache``) and builds the book with
   :func:`lin_utils.site.build_book`, strict.

``--slice`` runs the CI slice instead (``tests/test_rehearse.py``): one model id per family of the
full profile (Fig 1), one Pythia revision (Fig 2) and one lm-eval hub task (ARC-Easy, through the
pruning notebook of Fig 8), with no book build.

Exit status 0 when every notebook ran (and the book built); 1 with the failing notebook's one-line
error otherwise. The work folder is removed unless ``--keep`` or ``--work`` is given.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: the zoo's training budget in the rehearsal ($LIN_ZOO_OVERRIDE): 2 steps of 4 x 64 tokens, a BPE
#: and a token stream of the first 2,000 training stories; architectures and vocabularies unchanged.
#: ``precision`` bf16 -> fp32 is a device change like cuda -> cpu: bf16 autocast is the GPU's
#: precision, and on a CPU without bf16 units a bf16 matmul is ~80x slower than fp32 (measured).
ZOO_OVERRIDE = {"max_tokens": 512, "batch_size": 4, "seq_len": 64, "warmup_steps": 1,
                "tokenizer_stories": 2000, "data_stories": 2000, "val_tokens": 256, "eval_every": 0,
                "log_every": 1, "precision": "fp32"}
#: mirror files the full profile reads locally (see the module docstring); relative to $LIN_DATA_DIR
MIRROR_ONLY = ("stories260K", "tinystories-more/tinystories_train_head_2MiB.txt",
               "tinystories-more/new_distinct_stories.jsonl")


def _cap(n: int):
    return lambda v: v if v is None or v == 0 else min(v, n)


def _cap_none(n: int):
    """``None`` (= everything) becomes ``n`` too; 0 (= skip) stays 0."""
    return lambda v: n if v is None else v if v == 0 else min(v, n)


def _first(n: int):
    return lambda v: list(v)[:n]


#: numeric size keys of any section -> how the rehearsal shrinks them
SIZE_RULES = {
    "max_tokens": _cap(2048), "calib_tokens": _cap(2048), "ppl_tokens": _cap(2048), "sleb_tokens": _cap(512),
    "task_tokens": _cap(1024), "corpus_tokens": _cap(1024), "val_tokens": _cap(512),
    "seeds": _first(1), "random_seeds": _first(1),
    "steps": _cap(2), "warmup_steps": _cap(1), "distill_steps": _cap(2), "eval_examples": _cap(8),
    "limit": _cap_none(4), "arc_limit": _cap_none(4), "max_train": _cap_none(16), "max_test": _cap_none(16),
    "n_stories": _cap(2), "max_new_tokens": _cap(8), "sample_per_block": _cap(200), "k_max": _cap(2),
    "speed_reps": _cap(2), "cv": _cap(2), "max_len": _cap(128),
}


def _shrink_scaling(s: dict) -> dict:
    """The scaling study's grid: its two smallest depths and widths, a few steps of 2 x 128 tokens."""
    s = dict(s)
    depths, widths = sorted(s["depths"])[:2], sorted(s["widths"])[:2]
    s["depths"], s["widths"] = depths, widths
    cfg = dict(s.get("train_config") or {})
    cfg.update(batch_size=2, seq_len=128, tokenizer_stories=2000, data_stories=2000,
               val_tokens=min(cfg.get("val_tokens", 512), 512), warmup_steps=1, eval_every=2, log_every=1)
    if cfg.get("precision") == "bf16":  # a device change, as for the zoo (see ZOO_OVERRIDE)
        cfg["precision"] = "fp32"
    s["train_config"] = cfg
    step = cfg["batch_size"] * cfg["seq_len"]
    s["train_tokens"] = 4 * step
    if "token_shape" in s:
        s["token_shape"] = [depths[0], widths[0]]
    if "token_budgets" in s:
        s["token_budgets"] = [2 * step, 4 * step]
    if "norm_shapes" in s:
        s["norm_shapes"] = [[depths[0], widths[0]]]
    if "scan" in s:
        s["scan"] = shrink_section(s["scan"])
    s["jobs"] = 1
    return s


def shrink_section(section: dict) -> dict:
    """One section with :data:`SIZE_RULES` applied and ``device: cuda`` -> ``cpu``."""
    out = {}
    for key, value in section.items():
        if key in SIZE_RULES:
            value = SIZE_RULES[key](value)
        elif key == "device" and value == "cuda":
            value = "cpu"
        out[key] = value
    return out


def shrink(sections: dict[str, dict]) -> dict[str, dict]:
    """The rehearsal profile: ``sections`` (``lin_utils.profiles.load_profile("full")``) with sizes shrunk.

    Model ids, revisions, datasets, splits, tasks, criteria, dtypes and sequence lengths are kept;
    only the keys of :data:`SIZE_RULES`, the scaling grid and ``device`` change.
    """
    out = {}
    for name, section in sections.items():
        out[name] = _shrink_scaling(section) if name == "scaling" else shrink_section(section)
    return out


def slice_profile(sections: dict[str, dict]) -> dict[str, dict]:
    """The CI slice of a (shrunk) profile: Fig 1 with the first model of each family it names,
    Fig 2 with one Pythia model at one revision, Fig 8 (ARC-Easy through lm-eval's hub task,
    WikiText-2 and TinyStories from the hub) with one criterion and one pruned block."""
    from hub_standins import family_of

    fig1 = dict(sections["fig1_linearity_profiles"])
    seen, models = set(), []
    for m in fig1["models"]:
        fam = family_of(m.split("@")[0]).arch
        if fam not in seen:
            seen.add(fam)
            models.append(m)
    fig1.update(models=models, max_tokens=256, seq_len=128)
    fig2 = dict(sections["fig2_training_dynamics"])
    pythia = [m for m in fig2["models"] if m.startswith("EleutherAI/pythia-")][:1]
    revs = [r for r in fig2["revisions"] if r == "step1000"] or fig2["revisions"][:1]
    fig2.update(models=pythia, revisions=revs, max_tokens=256, seq_len=128)
    fig8 = dict(sections["fig8_pruning_arc_easy"])
    fig8.update(criteria=fig8["criteria"][:1], k_max=1, random_seeds=[], calib_tokens=256, seq_len=128,
                sleb_tokens=128, distill_steps=1, ppl_tokens=256, ppl_seq_len=128, arc_limit=2, speed_reps=1)
    return {"fig1_linearity_profiles": fig1, "fig2_training_dynamics": fig2, "fig8_pruning_arc_easy": fig8}


def _write_yaml(path: Path, data: dict, header: str) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=False, width=110))
    os.replace(tmp, path)


def partial_mirror(dest: Path, source: Path) -> Path:
    """``dest`` with symlinks to :data:`MIRROR_ONLY` under the real mirror ``source``."""
    for rel in MIRROR_ONLY:
        src = source / rel
        if not src.exists():
            raise SystemExit(f"rehearse: {src} not found; LIN_DATA_DIR must point at the project's data "
                             f"mirror (the full profile reads {', '.join(MIRROR_ONLY)} from it)")
        link = dest / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(src.resolve())
    return dest


def environment(work: Path, mirror: Path) -> dict[str, str]:
    """The environment of the rehearsal (applied to this process; the kernels inherit it)."""
    return {"HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "LIN_DATA_DIR": str(mirror), "LIN_CACHE": str(work / "cache"),
            "LIN_RESULTS_DIR": str(work / "results"), "LIN_PROFILES_DIR": str(work / "profiles"),
            "LIN_ZOO_OVERRIDE": json.dumps(ZOO_OVERRIDE)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=None, help="work folder (kept); default: a temporary one")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--slice", action="store_true", help="the CI slice (Figs 1, 2, 8), no book build")
    p.add_argument("--only", default=None, help="comma-separated notebooks of the rehearsal profile")
    p.add_argument("--no-build", action="store_true", help="run the notebooks, skip the book build")
    args = p.parse_args(argv)

    real_mirror = os.environ.get("LIN_DATA_DIR", "").strip()
    if not real_mirror:
        default = ROOT.parent / "shared" / "data"
        real_mirror = str(default) if default.is_dir() else ""
    if not real_mirror:
        print("rehearse: set LIN_DATA_DIR to the project's data mirror", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="lin-rehearse-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[rehearse {time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    # the user's vendored MathJax, found before $LIN_CACHE moves
    from lin_utils import paths

    mathjax = paths.cache_dir() / "mathjax"
    env = environment(work, partial_mirror(work / "mirror", Path(real_mirror).expanduser()))
    os.environ.update(env)
    try:
        status = _rehearse(args, work, mathjax, log)
        log(f"rehearsal {'passed' if status == 0 else 'FAILED'} in {time.perf_counter() - t0:.0f} s")
        return status
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work folder kept: {work}")


def _rehearse(args, work: Path, mathjax: Path, log) -> int:
    import hub_standins as hub
    from lin_utils import runner, site
    from lin_utils.errors import LinUtilsError
    from lin_utils.profiles import load_profile

    sections = shrink(load_profile("full", ROOT / "profiles"))
    if args.slice:
        sections = slice_profile(sections)
    elif args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        sections = {n: s for n, s in sections.items() if n in names}
    profiles = work / "profiles"
    _write_yaml(profiles / "full.yaml", sections,
                "# Generated by scripts/rehearse.py from profiles/full.yaml: sizes shrunk, device cpu.\n")

    hf_home = work / "hf"
    base = hub.build_tokenizer(work / "base-tokenizer")
    staged = hub.hub_models(sections)
    for hub_id, rev in staged:
        hub.stage_model(hf_home, hub_id, rev, base)
    log(f"hub cache: {len(staged)} model revisions of {len({h for h, _ in staged})} ids")
    log(f"hub datasets: {', '.join(hub.stage_datasets(hf_home))}")

    book = work / "book"
    if not book.exists():
        shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("notebooks", "_mathjax"))
        shutil.copy(ROOT / "_config.yml", work / "_config.yml")
    only = list(sections) if (args.slice or args.only) else None
    try:
        records = runner.run_profile("full", only=only, force=True, profiles_dir=profiles, book_dir=book,
                                     cwd=ROOT, log=log)
    except LinUtilsError as exc:
        log(f"FAILED: {exc}")
        return 1
    for r in records:
        log(f"{r.name}: {r.wall_time_s:.1f} s")
    if args.slice or args.no_build:
        return 0
    try:
        html = site.build_book(root=work, out_dir=work / "_build" / "html",
                               mathjax=site.ensure_mathjax(mathjax), log=log)
    except LinUtilsError as exc:
        log(f"book build FAILED: {exc}")
        return 1
    log(f"book built: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
