"""Profiles: one YAML file of notebook parameters per scale, read and checked before anything runs.

A *profile* (smoke, cpu, gpu, full) is one YAML file ``profiles/<profile>.yaml`` with one section
per notebook, named after the notebook's file stem; each section maps parameter names to values::

    fig1_linearity_profiles:
      models: [stories260K]
      max_tokens: 4096
    claims: {}            # empty section: the notebook's own defaults

Top-level keys starting with ``_`` are ignored (use them for YAML anchors shared by sections).
Every parameter must be declared in the notebook's ``parameters``-tagged cell, and its value must
have the type of the declared default (an int is fine for a float; a ``None`` default takes
anything). On top of its section every notebook receives ``profile`` and ``force`` (recompute
cached results), so each notebook must declare those two as well.

Everything a kernel would otherwise find out minutes later is checked here, cheaply, first
(:func:`check_section`):

- the file: not empty (no sections would run the notebooks' own defaults, the cpu sizes, under
  this profile's label), readable UTF-8 text, valid YAML (errors give their line and column), no
  key given twice in one mapping (YAML would let the last one win silently);
- values: sizes and counts positive (``max_tokens``, ``seq_len``, ``batch_size``, ...), seeds
  and limits not negative, rates positive, fractions inside (0, 1) (:data:`POSITIVE` and the
  sets beside it), nested mappings (``scan``, ``train_config``) included;
- a number written ``1e12``, which YAML 1.1 reads as a string, is taken as the number it says for
  an int or float parameter (for an int only when it is a whole number);
- model specs (``models``, ``model``, ``reference``, ``scorer``) with
  :func:`lin_utils.models.validate_spec` (no weights loaded); a ``zoo:`` model may be trained
  earlier in the same run, so only its name must be a zoo entry;
- datasets and splits (``dataset``/``split``, ``calib_dataset``/``calib_split``,
  ``corpus``/``corpus_split``) against :data:`lin_utils.data.TEXT_SPLITS`, or a ``.txt`` file
  that exists; devices (``device``, ``train_device``) by name (:func:`lin_utils.models.check_device`;
  whether this machine has one is checked by :func:`lin_utils.runner.run_profile`).
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from lin_utils import paths
from lin_utils.errors import LinUtilsError, one_line

__all__ = ["INJECTED", "MODEL_PARAMETERS", "available_profiles", "load_profile", "read_yaml", "declared_parameters",
           "check_section", "notebook_parameters"]

INJECTED = ("profile", "force")  # parameters every notebook gets from the runner
MODEL_PARAMETERS = ("models", "model", "reference", "scorer")  # checked with lin_utils.models.validate_spec
DATASET_PARAMETERS = {"dataset": "split", "calib_dataset": "calib_split", "corpus": "corpus_split"}
DEVICE_PARAMETERS = ("device", "train_device")
ZOO_ENTRY_PARAMETERS = ("entries",)  # names of zoo entries (no "zoo:" prefix)

#: parameters (at any depth) that must be > 0 when set: sizes, counts, steps
POSITIVE = frozenset({
    "max_tokens", "seq_len", "batch_size", "n_stories", "max_new_tokens", "calib_tokens", "corpus_tokens",
    "sleb_tokens", "ppl_tokens", "ppl_seq_len", "arc_batch_size", "speed_batch", "speed_reps", "steps",
    "eval_examples", "task_tokens", "k_max", "max_len", "max_length", "jobs",
    "train_tokens", "sample_per_block", "max_train", "max_test", "limit", "vocab_size", "val_tokens",
    "log_every", "judge_max_failures", "judge_time_limit_s", "lr", "distill_lr", "C", "token_budgets",
    "widths", "depths",
})
#: parameters (at any depth) that must be >= 0 when set
NON_NEGATIVE = frozenset({"seed", "seeds", "random_seeds", "arc_limit", "warmup_steps", "warmup", "top_k",
                          "distill_steps", "ridge", "weight_decay", "temperature", "grad_clip",
                          "threads", "num_threads"})  # 0 threads: torch's default
#: parameters that must lie strictly between 0 and 1
FRACTIONS = frozenset({"heldout_fraction"})
AT_LEAST_TWO = frozenset({"cv"})  # cross-validation folds

_NO_DEFAULT = object()  # a default that is not a Python literal
_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")  # YAML 1.1 reads "1e12" as a string


# -------------------------------------------------------------------------------------------------
# the file


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (merge keys ``<<`` aside)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice (first on line {first.line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _yaml_error(path: Path, e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(p) for p in (getattr(e, "context", None), getattr(e, "problem", None)) if p) or one_line(e)
    return f"{path}{where}: {one_line(what, None)}"


def read_yaml(path: Path | str) -> Any:
    """Parse a YAML file safely: one-line LinUtilsError naming the file (and the line and column of a
    syntax error) for unreadable or binary files, invalid YAML and duplicate keys."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise LinUtilsError(f"{path} is not UTF-8 text (byte {e.start} is {e.object[e.start]:#04x}); "
                            "is it a binary file?") from None
    except OSError as e:
        raise LinUtilsError(f"cannot read {path}: {one_line(e.strerror or e)}") from None
    if "\x00" in text:
        raise LinUtilsError(f"{path} holds NUL bytes; is it a binary file?")
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise LinUtilsError(f"{_yaml_error(path, e)} (not valid YAML)") from None


def available_profiles(profiles_dir: Path | str | None = None) -> list[str]:
    """Profile names: the stems of ``*.yaml`` files in the profiles folder."""
    folder = Path(profiles_dir) if profiles_dir is not None else paths.profiles_dir()
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_profile(profile: str, profiles_dir: Path | str | None = None) -> dict[str, dict]:
    """Read ``<profiles_dir>/<profile>.yaml`` into ``{notebook: {param: value}}``.

    Refuses (one-line LinUtilsError) an unknown profile, an unreadable, binary or invalid file, a
    duplicate key, a file with no notebook section, and a section that is not a mapping.
    """
    folder = Path(profiles_dir) if profiles_dir is not None else paths.profiles_dir()
    valid = available_profiles(folder)
    if profile not in valid:
        raise LinUtilsError(
            f"unknown profile {profile!r}; valid profiles: {', '.join(valid) or '(none found)'}"
            f" (in {folder})"
        )
    path = folder / f"{profile}.yaml"
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LinUtilsError(f"{path} must be a mapping of notebook name -> parameters, "
                            f"not a {type(raw).__name__}")
    sections: dict[str, dict] = {}
    for name, section in raw.items():
        if str(name).startswith("_"):
            continue
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise LinUtilsError(f"{path}: section {name!r} must be a mapping of parameters")
        sections[str(name)] = section
    if not sections:
        raise LinUtilsError(f"{path} names no notebook: an empty profile would run every notebook with its "
                            f"own defaults under the label {profile!r}; give each notebook a section "
                            "(`name: {}` for its defaults)")
    return sections


# -------------------------------------------------------------------------------------------------
# the notebooks' declarations


def declared_parameters(notebook: Path | str) -> dict[str, dict]:
    """Parameters declared in the notebook's ``parameters``-tagged cell (papermill's view)."""
    import papermill  # heavy and optional: this module stays light (imported by the CLI and every page)

    return papermill.inspect_notebook(str(notebook))


def _defaults(declared: dict[str, dict]) -> dict[str, Any]:
    """Each declared parameter's default as a Python value (``_NO_DEFAULT`` if not a literal)."""
    out = {}
    for name, info in declared.items():
        try:
            out[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[name] = _NO_DEFAULT
    return out


def _type_name(value: Any) -> str:
    return type(value).__name__


def _fits(value: Any, default: Any) -> bool:
    """Whether a profile value has the type of the notebook's default. ``null`` fits a numeric
    default: the notebooks' "None: all" (lm-eval's ``limit``, ``arc_limit``, ``max_train``)."""
    if default is None or default is _NO_DEFAULT:
        return True
    if value is None and isinstance(default, (int, float)) and not isinstance(default, bool):
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _numeric(default: Any) -> type | None:
    if isinstance(default, bool) or default is None or default is _NO_DEFAULT:
        return None
    return int if isinstance(default, int) else float if isinstance(default, float) else None


def _coerce(value: Any, default: Any, label: str) -> Any:
    """``"1e12"`` (a string to YAML 1.1) as the number it says, for a numeric default; nested
    mappings and lists key by key. Anything else is returned as is."""
    kind = _numeric(default)
    if kind is not None and isinstance(value, str) and _SCIENTIFIC.match(value.strip()):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return value
        if kind is float:
            return float(number)
        if number != number.to_integral_value():
            raise LinUtilsError(f"{label} must be int like its default {default!r}, got {value!r}, "
                                "which is not a whole number")
        return int(number)
    if kind is int and isinstance(value, float) and not isinstance(value, bool):
        hint = f" (write it as {int(value)})" if value.is_integer() and abs(value) >= 1e6 else ""
        raise LinUtilsError(f"{label} must be int like its default {default!r}, got float {value!r}{hint}")
    if isinstance(value, dict) and isinstance(default, dict):
        return {k: _coerce(v, default.get(k, _NO_DEFAULT), f"{label}[{k!r}]") for k, v in value.items()}
    return value


def _check_value(key: str, value: Any, label: str) -> None:
    """Range checks by parameter name, at any depth (``scan: {max_tokens: ...}`` too)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_value(str(k), v, f"{label}[{k!r}]")
        return
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, (list, tuple)):
        if key in POSITIVE | NON_NEGATIVE:
            for v in value:
                if isinstance(v, (list, tuple)):
                    for w in v:
                        _check_value(key, w, label)
                else:
                    _check_value(key, v, label)
        return
    if not isinstance(value, (int, float)):
        return
    if value != value:  # NaN
        raise LinUtilsError(f"{label} must be a number, got {value!r}")
    if key in POSITIVE and not value > 0:
        raise LinUtilsError(f"{label} must be positive, got {value!r}")
    if key in NON_NEGATIVE and value < 0:
        raise LinUtilsError(f"{label} must not be negative, got {value!r}")
    if key in FRACTIONS and not 0 < value < 1:
        raise LinUtilsError(f"{label} must lie strictly between 0 and 1, got {value!r}")
    if key in AT_LEAST_TWO and value < 2:
        raise LinUtilsError(f"{label} must be at least 2, got {value!r}")


def _check_specs(key: str, value: Any, label: str) -> None:
    """Run ``lin_utils.models.validate_spec`` on a model parameter; no weights are loaded.

    ``zoo:`` models may be trained earlier in the same run: for them only the entry's name counts.
    """
    from lin_utils import models  # heavy (torch, transformers): this module stays light

    for spec in value if isinstance(value, (list, tuple)) else [value]:
        try:
            models.validate_spec(spec)
        except ValueError as e:
            raise LinUtilsError(f"{label}: {one_line(e, None)}") from None
        except LinUtilsError as e:
            if isinstance(spec, str) and spec.strip().removeprefix("random:").startswith("zoo:"):
                _check_zoo_name(spec.strip().removeprefix("random:")[len("zoo:"):].split("@")[0], label)
                continue
            raise LinUtilsError(f"{label}: {one_line(e, None)}") from None


def _check_zoo_name(name: str, label: str) -> None:
    from lin_utils import zoo  # heavy (torch, the training code): this module stays light

    try:
        zoo.entry(name)
    except LinUtilsError as e:
        raise LinUtilsError(f"{label}: {one_line(e, None)}") from None


def _check_dataset(name: Any, split: Any, label: str) -> None:
    from lin_utils.data import TEXT_SPLITS  # heavy (torch): this module stays light

    if not isinstance(name, str):
        return
    if Path(name).suffix in (".txt", ".raw"):
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = paths.REPO_ROOT / path  # the kernels run in the repository root
        if not path.is_file():
            raise LinUtilsError(f"{label}: text file {name} not found")
        return
    if name not in TEXT_SPLITS:
        raise LinUtilsError(f"{label}: unknown dataset {name!r}; choose one of: {', '.join(TEXT_SPLITS)}, "
                            "or a path to a .txt file")
    if isinstance(split, str) and split not in TEXT_SPLITS[name]:
        raise LinUtilsError(f"{label}: unknown split {split!r} for {name!r}; choose one of: "
                            f"{', '.join(TEXT_SPLITS[name])}")


def _check_device(value: Any, label: str) -> None:
    from lin_utils.models import check_device  # heavy (torch, transformers): this module stays light

    if isinstance(value, str):
        try:
            check_device(value, available=False)
        except LinUtilsError as e:
            raise LinUtilsError(f"{label}: {one_line(e, None)}") from None


def _check_meaning(merged: dict[str, Any], section: dict[str, Any], where: str) -> None:
    """Model specs, datasets and devices of a section (nested ``scan`` mappings included)."""
    for key, value in section.items():
        label = f"{where}: parameter {key!r}"
        if key in MODEL_PARAMETERS and value is not None:
            _check_specs(key, value, label)
        if key in ZOO_ENTRY_PARAMETERS and isinstance(value, (list, tuple)):
            for name in value:
                _check_zoo_name(str(name), label)
        if key in DEVICE_PARAMETERS:
            _check_device(value, label)
        if isinstance(value, dict):
            inner = {**(merged.get(key) if isinstance(merged.get(key), dict) else {}), **value}
            _check_meaning(inner, value, f"{where}: parameter {key!r}")
    for data_key, split_key in DATASET_PARAMETERS.items():
        if data_key in section or split_key in section:
            _check_dataset(merged.get(data_key), merged.get(split_key), f"{where}: parameter {data_key!r}")


def check_section(name: str, source: Path, section: dict, profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a profile section against the notebook; return ``(defaults, section)``, the
    notebook's literal defaults and the section with numbers written ``1e12`` read as numbers."""
    if not source.exists():
        raise LinUtilsError(f"notebook {name}: source {source} does not exist")
    declared = declared_parameters(source)
    if not declared:
        raise LinUtilsError(f"notebook {name}: no cell tagged 'parameters' in {source}")
    missing = [p for p in INJECTED if p not in declared]
    if missing:
        raise LinUtilsError(
            f"notebook {name} must declare {', '.join(missing)} in its parameters cell "
            f"(the runner injects {', '.join(INJECTED)})"
        )
    defaults = _defaults(declared)
    where = f"profile {profile}, notebook {name}"
    checked: dict[str, Any] = {}
    for key, value in section.items():
        if key in INJECTED:
            raise LinUtilsError(
                f"profile {profile}: section {name} sets {key!r}, which the runner injects itself"
            )
        if key not in declared:
            raise LinUtilsError(
                f"profile {profile}: parameter {key!r} is not declared by notebook {name} "
                f"(declared: {', '.join(sorted(declared))})"
            )
        label = f"{where}: parameter {key!r}"
        value = _coerce(value, defaults[key], label)
        if not _fits(value, defaults[key]):
            raise LinUtilsError(
                f"{label} must be {_type_name(defaults[key])} like its default "
                f"{defaults[key]!r}, got {_type_name(value)} {value!r}"
            )
        _check_value(key, value, label)
        checked[key] = value
    merged = {**{k: v for k, v in defaults.items() if v is not _NO_DEFAULT}, **checked}
    _check_meaning(merged, checked, where)
    return defaults, checked


def all_parameters(defaults: dict[str, Any], section: dict, profile: str, force: bool) -> dict[str, Any]:
    """Literal defaults, overridden by the section, plus ``profile`` and ``force`` (declared order)."""
    merged = {k: v for k, v in defaults.items() if v is not _NO_DEFAULT}
    return {**merged, **section, "profile": profile, "force": bool(force)}


def notebook_parameters(
    name: str,
    profile: str,
    *,
    force: bool = False,
    profiles_dir: Path | str | None = None,
    notebooks_dir: Path | str | None = None,
) -> dict[str, Any]:
    """The parameters notebook ``name`` runs with under ``profile``.

    The notebook's declared defaults (``ast.literal_eval`` of its ``parameters`` cell), overridden
    by the profile's section, plus ``profile`` and ``force``. This is how other code (the claims)
    knows which tables a profile selects. The section is validated as for a run.
    """
    folder = Path(notebooks_dir) if notebooks_dir is not None else paths.notebooks_dir()
    section = load_profile(profile, profiles_dir).get(name, {})
    defaults, section = check_section(name, folder / f"{name}.ipynb", section, profile)
    unresolved = [k for k, v in defaults.items() if v is _NO_DEFAULT and k not in section and k not in INJECTED]
    if unresolved:
        raise LinUtilsError(
            f"notebook {name}: the default of {', '.join(map(repr, unresolved))} is not a Python "
            "literal, so its value is only known by running the notebook"
        )
    return all_parameters(defaults, section, profile, force)
