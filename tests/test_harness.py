"""lin_utils.evaluate.harness: lm-eval on the local mirror, offline, checked independently."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lin_utils import data
from lin_utils.evaluate import harness
from lin_utils.evaluate.harness import TASKS, resolve_tasks, run_harness, write_task_dir
from lin_utils.evaluate.tasks import utils as tu

lm_eval = pytest.importorskip("lm_eval")
BUILTIN = Path(lm_eval.__file__).parent / "tasks"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stories():
    from lin_utils.models import load_model

    return load_model("stories260K")


@pytest.fixture(scope="module")
def stories64():
    from lin_utils.models import load_model

    return load_model("stories260K", dtype=torch.float64)


def _guard(mp, attempts: list) -> None:
    """Record and refuse every attempt to resolve a host or open a connection."""
    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted in an offline test")

    mp.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    mp.setattr(socket.socket, "connect_ex", lambda self, *a: refuse(*a))
    mp.setattr(socket, "create_connection", lambda *a, **k: refuse(*a))
    mp.setattr(socket, "getaddrinfo", lambda *a, **k: refuse(*a))


@pytest.fixture
def no_network(monkeypatch):
    attempts: list = []
    _guard(monkeypatch, attempts)
    return attempts


@pytest.fixture(scope="module")
def small_run(stories):
    """One offline lm-eval run over every local task (2 docs each), shared by several tests."""
    model, tok = stories
    attempts: list = []
    with pytest.MonkeyPatch.context() as mp:
        _guard(mp, attempts)
        run = run_harness(model, tok, list(TASKS), limit=2, batch_size=8, source="local")
    return run, attempts


# ------------------------------------------------------------------ the YAMLs mirror the built-ins

def _yaml(path: Path) -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda ld, node: "!function " + ld.construct_scalar(node))
    return yaml.load(path.read_text(), Loader=Loader)


@pytest.mark.parametrize("task,builtin", [
    ("boolq", "super_glue/boolq/default.yaml"), ("cb", "super_glue/cb/default.yaml"),
    ("multirc", "super_glue/multirc/default.yaml"), ("rte", "glue/rte/default.yaml"),
    ("wic", "super_glue/wic/default.yaml"), ("xstorycloze_en", "xstorycloze/default_ar.yaml"),
    ("arc_easy", "arc/arc_easy.yaml"), ("arc_challenge", "arc/arc_easy.yaml"),
    ("record", "super_glue/record/default.yaml"), ("copa", "super_glue/copa/default.yaml"),
])
def test_local_yaml_mirrors_builtin(task, builtin):
    ours = _yaml(harness._TASKS_SRC / "local" / f"{task}.yaml")
    ref = _yaml(BUILTIN / builtin)
    assert ours["task"] == task and ours["dataset_path"] == "json"
    assert ours["output_type"] == ref["output_type"] == "multiple_choice"
    assert [m["metric"] for m in ours["metric_list"]] == [m["metric"] for m in ref["metric_list"]]
    assert ours["metadata"]["version"] == ref["metadata"]["version"]
    for key in ("doc_to_text", "doc_to_target", "doc_to_choice"):
        if not str(ref[key]).startswith("!function"):
            if task == "rte" and key == "doc_to_text":  # GLUE: sentence1/2, SuperGLUE: premise/...
                ref[key] = ref[key].replace("sentence1", "premise").replace("sentence2",
                                                                             "hypothesis")
            assert ours[key] == ref[key], key
    if task == "rte":
        sg = _yaml(BUILTIN / "super_glue/rte/default.yaml")
        for key in ("doc_to_text", "doc_to_choice"):
            assert ours[key] == sg[key]


def test_copa_functions_equal_builtin():
    import importlib.util

    path = BUILTIN / "super_glue/copa/utils.py"
    spec = importlib.util.spec_from_file_location("copa_builtin", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    for doc in data.load_eval("copa"):
        assert tu.copa_doc_to_text(doc) == ref.doc_to_text(doc)
        assert tu.copa_doc_to_choice(doc) == ref.doc_to_choice(doc)
        assert tu.copa_doc_to_target(doc) == ref.doc_to_target(doc)


def test_multirc_corrected_only_swaps_choices():
    a = _yaml(harness._TASKS_SRC / "local" / "multirc.yaml")
    b = _yaml(harness._TASKS_SRC / "local" / "multirc_corrected.yaml")
    assert a["doc_to_choice"].index("yes") < a["doc_to_choice"].index("no")
    assert b["doc_to_choice"].index("no") < b["doc_to_choice"].index("yes")
    assert {k: v for k, v in a.items() if k not in ("task", "doc_to_choice")} == \
        {k: v for k, v in b.items() if k not in ("task", "doc_to_choice")}


# ------------------------------------------------------------------ process_docs on the real files

def _ds(rows):
    import datasets

    return datasets.Dataset.from_list(rows)


def test_process_docs_convert_to_hub_layout():
    boolq = tu.process_boolq(_ds(data.load_eval("boolq")))
    raw = data.load_eval("boolq")
    assert [r["label"] for r in boolq] == [int(r["label"] == "true") for r in raw]
    few = tu.process_boolq(_ds(data.load_eval("boolq", "train32")))
    assert set(few["label"]) <= {0, 1}
    cb = tu.process_cb(_ds(data.load_eval("cb")))
    assert [r["label"] for r in cb] == [("entailment", "contradiction", "neutral").index(r["label"])
                                        for r in data.load_eval("cb")]
    rte = tu.process_rte(_ds(data.load_eval("rte")))
    assert set(rte["label"]) == {0, 1}
    wic = tu.process_wic(_ds(data.load_eval("wic")))
    assert sum(wic["label"]) == sum(r["label"] == "true" for r in data.load_eval("wic"))

    mrc = tu.process_multirc(_ds(data.load_eval("multirc")))
    assert len(mrc) == 4848  # one row per answer option (SOURCE.md)
    first = data.load_eval("multirc")[0]["passage"]
    row = mrc[0]
    assert row["paragraph"] == first["text"]
    assert row["question"] == first["questions"][0]["question"]
    assert row["answer"] == first["questions"][0]["answers"][0]["text"]
    assert row["label"] == first["questions"][0]["answers"][0]["label"]

    rec = tu.process_record(_ds(data.load_eval("record", "train32")))
    assert len(rec) >= 32
    for doc in rec:
        assert doc["answers"] and set(doc["answers"]) <= set(doc["entities"])
        assert doc["entities"] == sorted(set(doc["entities"]))
        assert "@placeholder" in doc["query"]

    arc = tu.process_arc(_ds(data.load_eval("arc-easy", "dev")))
    doc = arc[0]
    assert doc["id"] == "MCAS_2000_4_6" and doc["answerKey"] == "A"
    assert doc["choices"]["text"][0] == "cellular telephone" and doc["choices"]["label"][0] == "A"


def test_each_dataset_is_converted_once_and_never_mixed_up():
    # lm-eval calls process_docs on the whole split for every access; the conversion is done once
    rows = data.load_eval("arc-easy", "dev")
    first = tu.process_arc(_ds(rows))
    assert tu.process_arc(_ds(rows)) is first  # same content, same fingerprint: no second pass
    head = tu.process_arc(_ds(rows[:3]))
    assert len(head) == 3 and len(first) == len(rows) and head[2] == first[2]
    labels = [{"label": v} for v in ("true", "false", "true")]
    assert tu.process_boolq(_ds(labels))["label"] == [1, 0, 1]
    assert tu.process_wic(_ds(labels)) is not tu.process_boolq(_ds(labels))  # keyed by the task too


def test_squad_metrics_and_cb_f1():
    assert tu.squad_f1("The Cat sat.", "cat sat") == 1.0
    assert tu.squad_exact("an Apple", "apple") == 1
    assert tu.squad_f1("New York City", "York") == pytest.approx(0.5)
    assert tu.squad_f1("", "") == 1.0 and tu.squad_f1("a", "b") == 0.0
    rng = np.random.default_rng(0)
    preds, golds = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    assert harness._macro_f1(preds, golds) == pytest.approx(tu.cb_multi_f1(list(zip(preds, golds))))


# ------------------------------------------------------------------ task folders and resolution

def test_write_task_dir_renders_absolute_existing_paths(tmp_path):
    folders = write_task_dir(["boolq", "arc_easy"], out=tmp_path)
    text = (folders["arc_easy"] / "arc_easy.yaml").read_text()
    assert "${LIN_DATA_DIR}" not in text
    files = re.findall(r'"(/[^"]+\.jsonl)"', text)
    assert len(files) == 3 and all(Path(f).is_file() for f in files)
    assert "lin_utils.evaluate.tasks.utils" in (folders["boolq"] / "utils.py").read_text()
    # idempotent, and the folders index as lm-eval tasks
    assert write_task_dir(["boolq", "arc_easy"], out=tmp_path) == folders
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=[str(f) for f in folders.values()], include_defaults=False)
    assert {"boolq", "arc_easy"} <= set(tm.all_tasks)


def test_resolve_tasks(monkeypatch, tmp_path):
    plan = resolve_tasks(["boolq", "record", "xstorycloze_en"])
    assert plan.source.tolist() == ["local"] * 3
    assert plan.set_index("task").loc["record", "split"] == "fewglue_train32"
    hub = resolve_tasks(["boolq", "rte", "record", "arc_easy"], source="hub").set_index("task")
    assert hub.lm_eval_task.tolist() == ["boolq", "rte", "record", "arc_easy"]
    for t in ("boolq", "rte", "arc_easy"):  # built-in folders exist in the installed lm_eval
        assert (BUILTIN / TASKS[t].builtin_dir).is_dir()
    assert TASKS["record"].builtin_dir is None  # built-in record needs transformers<5
    # the hub plan indexes exactly the built-in tasks by name (plus the project's two variants)
    from lm_eval.tasks import TaskManager

    plan = resolve_tasks(list(TASKS), source="hub")
    tm = TaskManager(include_path=[str(p) for p in harness._include_paths(plan)],
                     include_defaults=False)
    assert set(plan.lm_eval_task) <= set(tm.all_tasks)
    assert len(tm.all_tasks) < 100  # not lm-eval's ~14k built-in configs
    monkeypatch.setenv("LIN_DATA_DIR", str(tmp_path))  # an empty mirror: auto falls back to hub
    assert resolve_tasks(["copa"]).source.tolist() == ["hub"]
    with pytest.raises(data.DataNotFoundError, match="COPA/val.jsonl"):
        resolve_tasks(["copa"], source="local")
    with pytest.raises(ValueError, match="unknown task"):
        resolve_tasks(["superglue"])


# ------------------------------------------------------------------ runs

def test_no_network_and_table(small_run):
    run, attempts = small_run
    assert attempts == []
    tab = run.table
    assert list(tab.columns[:6]) == ["task", "metric", "value", "stderr", "n", "n_total"]
    assert set(tab.task) == set(TASKS) and (tab.source == "local").all()
    assert (tab.n == 2).all() and tab.value.between(0, 1).all()
    assert len(tab) == sum(len(s.metrics) for s in TASKS.values())
    rows = tab.set_index(["task", "metric"])
    assert rows.loc[("boolq", "acc"), "chance"] == 0.5
    assert rows.loc[("cb", "acc"), "chance"] == pytest.approx(1 / 3)
    assert rows.loc[("arc_easy", "acc_norm"), "chance"] == pytest.approx(0.25, abs=0.1)
    assert rows.loc[("record", "f1"), "n_total"] == 32
    assert rows.loc[("record", "em"), "split"] == "fewglue_train32"
    # cb macro-F1 chance with expected counts: mean_c 2 n_c / (N + 3 n_c)
    gold = np.array([s["target"] for s in run.samples["cb"]])
    n_c = np.array([(gold == c).sum() for c in range(3)])
    expect = np.mean(2 * n_c / (len(gold) + 3 * n_c))
    assert rows.loc[("cb", "f1"), "chance"] == pytest.approx(expect)
    assert np.isfinite(rows.loc[("cb", "f1"), "stderr"])  # bootstrapped here, lm-eval gives N/A


def _independent_loglik(model, tok, context: str, continuation: str) -> float:
    """Sum of the continuation's token log-probs in float64, lm-eval's tokenization convention:
    encode context+continuation and context with the tokenizer's defaults, split by length."""
    whole = tok(context + continuation)["input_ids"]
    n_ctx = len(tok(context)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([whole])).logits[0].double(), -1)
    return float(sum(logp[p - 1, whole[p]] for p in range(n_ctx, len(whole))))


def test_arc_and_copa_logliks_match_independent_computation(stories64, no_network):
    model, tok = stories64
    run = run_harness(model, tok, ["arc_easy", "copa"], limit=3, batch_size=4)
    assert no_network == []
    # prompts written here from the raw files, as the built-in tasks build them
    arc = data.load_eval("arc-easy", "test")[:3]
    copa = data.load_eval("copa")[:3]
    expected = []
    for i, r in enumerate(arc):
        ctx = f"Question: {r['question']['stem']}\nAnswer:"
        for j, c in enumerate(r["question"]["choices"]):
            expected.append(("arc_easy", i, j, ctx, " " + c["text"]))
    for i, r in enumerate(copa):
        ctx = r["premise"][:-1] + (" because" if r["question"] == "cause" else " therefore")
        for j, c in enumerate((r["choice1"], r["choice2"])):
            expected.append(("copa", i, j, ctx, "  " + c[0].lower() + c[1:]))  # delimiter + " "
    for task, doc_id, choice, ctx, cont in expected:
        ll = run.loglikelihoods(task).set_index(["doc_id", "choice"]).loc[(doc_id, choice)]
        assert (ll.context, ll.continuation) == (ctx, cont)
        assert ll.loglik == pytest.approx(_independent_loglik(model, tok, ctx, cont), abs=1e-8)
    # acc is the argmax agreement with the gold index
    for task in ("arc_easy", "copa"):
        ll = run.loglikelihoods(task)
        pred = ll.loc[ll.groupby("doc_id").loglik.idxmax()]
        acc = float((pred.choice == pred.gold).mean())
        assert acc == run.table.set_index(["task", "metric"]).loc[(task, "acc"), "value"]


@pytest.mark.slow
def test_multirc_corrected_is_the_complement(stories):
    model, tok = stories
    run = run_harness(model, tok, ["multirc", "multirc_corrected"], limit=16, batch_size=16)
    acc = run.table.set_index("task").value
    ll = run.loglikelihoods("multirc")
    ties = (ll.groupby("doc_id").loglik.nunique() == 1).sum()
    assert ties == 0
    assert acc["multirc_corrected"] == pytest.approx(1 - acc["multirc"])
    # the gold of a correct answer (label 1) is "... no" in the built-in order, "... yes" once
    # corrected
    for task, word_if_correct in (("multirc", "no"), ("multirc_corrected", "yes")):
        for smp in run.samples[task]:
            word = smp["arguments"][smp["target"]][1].rsplit(" ", 1)[-1]
            other = {"yes": "no", "no": "yes"}[word_if_correct]
            assert word == (word_if_correct if smp["doc"]["label"] == 1 else other)


def test_hub_mode_offline_fails_fast_without_network(stories, monkeypatch, tmp_path, no_network):
    model, tok = stories
    monkeypatch.setenv("LIN_DATA_DIR", str(tmp_path))  # no mirror: the built-in hub task
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    assert resolve_tasks(["copa"]).source.tolist() == ["hub"]
    with pytest.raises(data.DataNotFoundError, match="aps/super_glue") as err:
        run_harness(model, tok, ["copa"], limit=2)
    assert "copa" in str(err.value)
    assert no_network == []
