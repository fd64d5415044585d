"""Mutation score per module from mutmut's results, on all mutants or on a seeded random sample.

mutmut 3 tests every mutant of the modules in ``[tool.mutmut]``; on two cores that is hours.
A uniform random sample of each module's mutants estimates its score without bias: mutants the
run already decided cost nothing, and only the undecided ones of the sample need testing.

    python scripts/mutation_sample.py run --n 200      # `make mutate-sample`: test the sample, report
    python scripts/mutation_sample.py report --n 200   # per module: killed / covered
    python scripts/mutation_sample.py names --n 200    # the sample's mutants still to test

A module with at most ``n`` mutants is taken whole. The score is killed / (killed + survived +
timeout) over the sample's covered mutants (mutants no test reaches are reported beside it),
with a 95% Wilson interval when the sample is a part of the module.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

from mutmut.stats import status_by_exit_code  # mutmut's own reading of its exit codes


def _results(root: Path) -> dict[str, dict[str, int | None]]:
    """module -> mutant name -> mutmut exit code (None: not yet tested)."""
    out = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        module = meta.relative_to(root / "mutants").as_posix().removesuffix(".py.meta")
        out[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return out


def sample(codes: dict[str, int | None], n: int, seed: int) -> list[str]:
    names = sorted(codes)
    return names if len(names) <= n else sorted(random.Random(seed).sample(names, n))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    return mid - half, mid + half


def _names(args, wanted: set[str]) -> list[str]:
    """The sampled mutants of every module whose status is in ``wanted``."""
    out = []
    for codes in _results(args.root).values():
        out += [m for m in sample(codes, args.n or len(codes), args.seed) if status_by_exit_code[codes[m]] in wanted]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["run", "names", "report"])
    ap.add_argument("--n", type=int, default=200, help="mutants per module (default 200; 0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", type=Path, default=Path("."))
    ap.add_argument("--status", default="not checked",
                    help="names: the sampled mutants with these statuses, comma-separated (default 'not checked'; "
                         "after new tests, 'not checked,no tests,survived')")
    args = ap.parse_args(argv)
    if args.what == "run":
        mutmut = shutil.which("mutmut") or str(Path(sys.executable).with_name("mutmut"))
        # a filter that matches nothing: mutmut generates the mutants and maps tests to functions, then stops
        subprocess.run([mutmut, "run", "no-such-mutant"], cwd=args.root, capture_output=True)
        names = _names(args, {"not checked", "no tests", "survived", "timeout"})
        if names:  # (with no names, `mutmut run` would test every mutant)
            subprocess.run([mutmut, "run", *names], cwd=args.root, check=True)
        args.what = "report"
    if args.what == "names":
        print("\n".join(_names(args, set(args.status.split(",")))))
        return 0
    for module, codes in _results(args.root).items():
        picked = sample(codes, args.n or len(codes), args.seed)
        status = [status_by_exit_code[codes[m]] for m in picked]
        count = {s: status.count(s) for s in sorted(set(status))}
        # a crash is a kill; a timeout or a suspicious run counts against the score
        killed = count.get("killed", 0) + count.get("segfault", 0)
        covered = sum(v for s, v in count.items() if s not in ("no tests", "not checked", "skipped"))
        lo, hi = wilson(killed, covered)
        whole = len(picked) == len(codes)
        score = f"{killed / covered:.1%}" if covered else "n/a"
        ci = "" if whole else f" (95% CI {lo:.1%} to {hi:.1%})"
        print(f"{module}: {'all' if whole else 'sample of'} {len(picked)} of {len(codes)} mutants; "
              f"killed {killed} of {covered} covered = {score}{ci}; {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
