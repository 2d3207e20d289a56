"""Crafted model files, built by code from a real saved model: each holds only trusted types, its md5 in the card
is rewritten to match (as whoever replaced it would), and one field that compiled code trusts is damaged.
`load_model` must refuse each with a `ModelError` naming the file and the field. The first tests show that
such files are really harmful when loaded the way `load_model` loaded them before it checked fitted arrays."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import skops.io
import torch
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import ExtraTreeClassifier
from sklearn.tree._tree import Tree

from mlops_nb.core import ModelError, atomic_write_json, file_md5, read_json
from mlops_nb.data import infer_schema
from mlops_nb.models import (MODEL_CARD, NETWORK_CONFIG, NETWORK_WEIGHTS, PIPELINE_FILE, TRUSTED_TYPES, load_model,
                             make_model, save_model, verify_model)
from mlops_nb.neural import build_mlp

SMALL = {"rf": {"n_estimators": 8}, "nn": {"hidden_layer_sizes": (16,), "max_epochs": 3, "batch_size": 64},
         "linear": {}, "dummy": {}}


def make_table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x1": rng.normal(size=n),
        "x2": rng.gamma(2.0, 2.0, n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 24 * 200, n), unit="h"),
    })
    frame.loc[rng.choice(n, 10, replace=False), "x2"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "colour"] = None
    score = frame["x1"] + (frame["colour"] == "red") + rng.normal(0, 0.3, n)
    targets = {"binary": (score > 0.5).astype(int),
               "multiclass": pd.cut(score, [-np.inf, 0, 1, np.inf], labels=["low", "mid", "high"]).astype(str)}
    return frame, targets


FRAME, TARGETS = make_table()


def save(name, directory, task="binary"):
    schema = infer_schema(FRAME.assign(target=TARGETS[task]), target="target")
    model = make_model(name, task, schema, seed=0, **SMALL[name]).fit(FRAME, TARGETS[task])
    return save_model(model, directory)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    "One saved model of each kind, made once; tests damage copies."
    root = tmp_path_factory.mktemp("saved")
    return {name: save(name, root / name) for name in ("rf", "nn", "linear", "dummy")}


def copy_of(directory, tmp_path):
    import shutil
    return shutil.copytree(directory, tmp_path / "crafted")


def forge(directory, *filenames):
    "Rewrite the card's md5 of each file to match its new content."
    card = read_json(directory / MODEL_CARD)
    for name in filenames: card["files"][name] = file_md5(directory / name)
    atomic_write_json(directory / MODEL_CARD, card)


def craft(directory, change):
    "Load the pipeline file as skops does, let `change` damage it in place, dump it again and forge the md5."
    path = directory / PIPELINE_FILE
    head = skops.io.load(path, trusted=list(TRUSTED_TYPES))
    change(head)
    skops.io.dump(head, path)
    forge(directory, PIPELINE_FILE)
    assert set(skops.io.get_untrusted_types(file=path)) <= set(TRUSTED_TYPES)  # only trusted types: skops lets it in
    return directory


# --- damages to a forest's trees, made the way skops rebuilds a tree: a fresh Tree and __setstate__

def splits(tree):
    return np.flatnonzero(tree.children_left != -1)


def tree_change(index, edit):
    "Replace tree `index` of the forest by a copy whose node array `edit(tree, nodes)` changed."
    def change(head):
        estimator = head.named_steps["model"].estimators_[index]
        state = estimator.tree_.__getstate__()
        nodes = state["nodes"].copy()
        edit(estimator.tree_, nodes)
        fresh = Tree(*estimator.tree_.__reduce__()[1])
        fresh.__setstate__({**state, "nodes": nodes})
        estimator.tree_ = fresh
    return change


def set_node(field, pick, value):
    "An `edit` setting `nodes[field][pick(tree)] = value(tree)`."
    def edit(tree, nodes):
        nodes[field][pick(tree)] = value(tree) if callable(value) else value
    return edit


def first_split(tree): return splits(tree)[0]
def second_split(tree): return splits(tree)[1]
def first_leaf(tree): return np.flatnonzero(tree.children_left == -1)[0]


def other_tree(n_features_delta=0, classes=None):
    "A change replacing tree 2 by one whose constructor arguments (n_features, n_classes) differ from the forest's."
    def change(head):
        estimator = head.named_steps["model"].estimators_[2]
        state = estimator.tree_.__getstate__()
        n_features, n_classes, n_outputs = estimator.tree_.__reduce__()[1]
        n_classes = n_classes if classes is None else np.array(classes, dtype=n_classes.dtype)
        fresh = Tree(n_features + n_features_delta, n_classes, n_outputs)
        values = np.zeros((state["node_count"], n_outputs, int(n_classes.max())))
        fresh.__setstate__({**state, "values": values})
        estimator.tree_ = fresh
    return change


def understate_depth(head):
    tree = head.named_steps["model"].estimators_[1].tree_
    fresh = Tree(*tree.__reduce__()[1])
    fresh.__setstate__({**tree.__getstate__(), "max_depth": tree.max_depth - 1})
    head.named_steps["model"].estimators_[1].tree_ = fresh


def attribute(path, value):
    "A change setting an attribute reached by `path` ('step.sub.attr' through named steps) to `value(old)`."
    *steps, name = path.split(".")
    def change(head):
        target = head
        for step in steps:
            target = target.named_steps[step] if hasattr(target, "named_steps") else \
                     target.named_transformers_[step] if hasattr(target, "named_transformers_") else getattr(target, step)
        setattr(target, name, value(getattr(target, name, None)))
    return change


def replace_tree_estimator(head):
    forest = head.named_steps["model"]
    fake = ExtraTreeClassifier(random_state=0).fit(np.zeros((4, forest.n_features_in_)), [0, 1, 0, 1])
    forest.estimators_[4] = fake


def replace_model(head):
    X = head.named_steps["preprocess"].transform(FRAME)
    head.steps[-1] = ("model", GaussianNB().fit(X, TARGETS["binary"]))


def group_colours(mapping):
    "The one-hot encoder of the colour column, grouping categories through `mapping` (4 categories -> 2 outputs)."
    def change(head):
        encoder = head.named_steps["preprocess"].named_transformers_["categorical"].named_steps["one_hot"]
        encoder._infrequent_enabled = True
        encoder._infrequent_indices = [None]
        encoder._default_to_infrequent_mappings = [np.array(mapping, dtype=np.intp)]
        encoder._n_features_outs = [2]
    return change


ONE_HOT = "preprocess.categorical.one_hot"
FOREST_CASES = {
    "child out of range": (tree_change(3, set_node("left_child", first_split, 10**9)),
                           r"model\.estimators_\[3\]\.tree_\.children_left\[\d+\] = 1000000000 is outside \[\d+, \d+\)"),
    "child back to the root (a cycle)": (tree_change(3, set_node("left_child", second_split, 0)),
                                         r"model\.estimators_\[3\]\.tree_\.children_left\[\d+\] = 0 is outside"),
    "negative child": (tree_change(0, set_node("right_child", first_split, -5)),
                       r"model\.estimators_\[0\]\.tree_\.children_right\[0\] = -5 is outside \[1, \d+\)"),
    "two parents, one orphan": (tree_change(1, set_node("right_child", first_split, lambda t: t.children_left[0])),
                                r"model\.estimators_\[1\]\.tree_\.children_left/right give node \d+ 2 parents"),
    "leaf with one child": (tree_change(1, set_node("right_child", first_leaf, lambda t: t.node_count - 1)),
                            r"model\.estimators_\[1\]\.tree_\.children_right\[\d+\] = \d+ but children_left\[\d+\] = -1"),
    "feature out of range": (tree_change(5, set_node("feature", first_split, 10**9)),
                             r"model\.estimators_\[5\]\.tree_\.feature\[0\] = 1000000000 is outside \[0, 11\)"),
    "negative feature": (tree_change(5, set_node("feature", second_split, -3)),
                         r"model\.estimators_\[5\]\.tree_\.feature\[\d+\] = -3 is outside \[0, 11\)"),
    "threshold nan": (tree_change(6, set_node("threshold", first_split, np.nan)),
                      r"model\.estimators_\[6\]\.tree_\.threshold\[0\] = nan is not a finite number"),
    "tree values for 3 classes": (other_tree(classes=[3]), r"model\.estimators_\[2\]\.tree_\.n_classes = \[3\] disagrees"),
    "tree built for more features": (other_tree(n_features_delta=5),
                                     r"model\.estimators_\[2\]\.tree_\.n_features = 16, but the estimator has n_features_in_ = 11"),
    "max_depth understated": (understate_depth, r"model\.estimators_\[1\]\.tree_\.max_depth = \d+, but the deepest node is at depth"),
    "a tree's width": (attribute("model.estimators_", lambda trees: [*trees[:2], _with(trees[2], n_features_in_=12), *trees[3:]]),
                       r"model\.estimators_\[2\]\.n_features_in_ = 12, but the forest has n_features_in_ = 11"),
    "forest width missing": (attribute("model.n_features_in_", lambda old: None), r"model\.n_features_in_ = None"),
    "forest width vs preprocessing": (
        attribute("model.n_features_in_", lambda old: old + 1),
        r"model\.n_features_in_ = 12, but the step before it outputs 11 columns"),
    "no trees": (attribute("model.estimators_", lambda old: []), r"model\.estimators_ is not a non-empty list"),
    "another tree type": (replace_tree_estimator, r"model\.estimators_\[4\] is a ExtraTreeClassifier, expected a DecisionTreeClassifier"),
    "a model type with no check": (replace_model, r"model is a sklearn\.naive_bayes\.GaussianNB, which load_model cannot check"),
    "one-hot index out of range": (group_colours([0, 1, 10**9, 1]),
                                   rf"{ONE_HOT}\._default_to_infrequent_mappings\[0\]\[2\] = 1000000000 is outside \[0, 2\)"),
    "one-hot mapping too short": (group_colours([0, 1]), rf"{ONE_HOT}\._default_to_infrequent_mappings\[0\] has shape \(2,\)"),
    "one-hot outputs too few": (attribute(f"{ONE_HOT}._n_features_outs", lambda old: [2]),
                                rf"{ONE_HOT}\._n_features_outs\[0\] = 2 is fewer than the 4 categories"),
    "imputer statistics": (attribute("preprocess.numeric.impute.statistics_", lambda old: old[:1]),
                           r"preprocess\.numeric\.impute\.statistics_ has shape \(1,\), expected \(2,\)"),
    "scaler mean": (attribute("preprocess.datetime.scale.mean_", lambda old: np.append(old, 0.0)),
                    r"preprocess\.datetime\.scale\.mean_ has shape \(6,\), expected \(5,\)"),
    "function step": (attribute("preprocess.categorical.as_text.func", lambda old: None),
                      r"preprocess\.categorical\.as_text\.func = None"),
    "datetime parts": (attribute("preprocess.datetime.parts.parts", lambda old: ("year", "tz_localize")),
                       r"preprocess\.datetime\.parts\.parts = \('year', 'tz_localize'\)"),
}


def _with(estimator, **attributes):
    for name, value in attributes.items(): setattr(estimator, name, value)
    return estimator


@pytest.mark.parametrize("case", FOREST_CASES)
def test_crafted_pipeline_file_is_refused(saved, tmp_path, case):
    change, field = FOREST_CASES[case]
    directory = craft(copy_of(saved["rf"], tmp_path), change)
    with pytest.raises(ModelError, match=rf"crafted/pipeline\.skops: {field}"):
        load_model(directory)
    with pytest.raises(ModelError, match=field):
        verify_model(directory)


@pytest.mark.parametrize("name, change, field", [
    ("linear", attribute("model.coef_", lambda old: old[:, :-1]), r"model\.coef_ has shape \(1, 10\), expected \(1, 11\)"),
    ("linear", attribute("model.intercept_", lambda old: old * np.nan), r"model\.intercept_ holds values that are not finite"),
    ("dummy", attribute("model.class_prior_", lambda old: np.ones(7)), r"model\.class_prior_ has shape \(7,\), expected \(2,\)"),
    ("nn", attribute("preprocess.numeric.scale.scale_", lambda old: old[:1]), r"preprocess\.numeric\.scale\.scale_ has shape"),
])
def test_crafted_floor_and_preprocessing_are_refused(saved, tmp_path, name, change, field):
    directory = craft(copy_of(saved[name], tmp_path), change)
    with pytest.raises(ModelError, match=rf"crafted/pipeline\.skops: {field}"):
        load_model(directory)


# --- what such files do when nothing checks them: load them the way load_model did before, then predict

HARM = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    import pandas as pd
    from mlops_nb.models import PIPELINE_FILE, _load_skops, _verify_files, read_model_card
    directory = Path(sys.argv[1])
    _verify_files(directory, read_model_card(directory))  # the md5s, as load_model checked them
    model = _load_skops(directory / PIPELINE_FILE)        # the types, as load_model checked them
    print("loaded", flush=True)
    rows = pd.read_parquet(sys.argv[2])
    worker = threading.Thread(target=lambda: print("predicted", model.predict_proba(rows)[:1], flush=True), daemon=True)
    worker.start()
    worker.join(5)
    os._exit(3 if worker.is_alive() else 0)  # 3: still predicting after 5 s
""")


SLOW = pytest.mark.slow  # each case starts a Python that imports torch and scikit-learn: several seconds


@pytest.mark.parametrize("case, outcome", [("child out of range", "crash"),  # the case of issue 10
                                           pytest.param("feature out of range", "crash", marks=SLOW),
                                           pytest.param("one-hot index out of range", "crash", marks=SLOW),
                                           pytest.param("child back to the root (a cycle)", "hang", marks=SLOW)])
def test_crafted_files_are_harmful_without_the_checks(saved, tmp_path, case, outcome):
    directory = craft(copy_of(saved["rf"], tmp_path), FOREST_CASES[case][0])
    FRAME.to_parquet(tmp_path / "rows.parquet")
    run = subprocess.run([sys.executable, "-c", HARM, str(directory), str(tmp_path / "rows.parquet")],
                         capture_output=True, text=True, timeout=120)
    assert "loaded" in run.stdout, run.stderr  # md5 and type checks alone let the file in
    if outcome == "crash": assert run.returncode < 0, (run.returncode, run.stdout, run.stderr[-2000:])  # killed by a signal
    else: assert run.returncode == 3, (run.returncode, run.stdout, run.stderr[-2000:])
    with pytest.raises(ModelError): load_model(directory)


# --- the network: config and weights must describe one network, fed by the preprocessing's output

def craft_network(directory, config_change=None, tensors_change=None):
    config = read_json(directory / NETWORK_CONFIG)
    tensors = safetensors.torch.load_file(str(directory / NETWORK_WEIGHTS))
    if config_change: config_change(config)
    if tensors_change: tensors_change(tensors)
    atomic_write_json(directory / NETWORK_CONFIG, config)
    safetensors.torch.save_file(tensors, str(directory / NETWORK_WEIGHTS))
    forge(directory, NETWORK_CONFIG, NETWORK_WEIGHTS)
    return directory


def wider_input(config):
    config["layer_sizes"][0] += 1
    config["n_features_in"] += 1


def wider_weights(tensors):
    tensors["0.weight"] = torch.cat([tensors["0.weight"], torch.zeros(len(tensors["0.weight"]), 1)], dim=1)


NETWORK_CASES = {
    "tensor shape": (None, lambda t: t.update({"0.weight": t["0.weight"][:, :5].contiguous()}),
                     r"tensor '0\.weight' has shape \(16, 5\), but layer_sizes \[11, 16, 1\] implies \(16, 11\)"),
    "extra tensor": (None, lambda t: t.update({"9.weight": torch.zeros(2, 2)}), r"\['9\.weight'\] are not part of a network"),
    "missing tensor": (None, lambda t: t.pop("3.bias"), r"\['3\.bias'\] missing"),
    "integer weights": (None, lambda t: t.update({"0.bias": t["0.bias"].to(torch.int64)}), r"'0\.bias' has dtype torch\.int64"),
    "double weights": (None, lambda t: t.update({"3.weight": t["3.weight"].double()}), r"'3\.weight' has dtype torch\.float64"),
    "hidden sizes disagree": (lambda c: c["params"].update({"hidden_layer_sizes": [32]}),
                              None, r"params\.hidden_layer_sizes = \[32\] disagrees with layer_sizes"),
    "huge layer": (lambda c: c.update({"layer_sizes": [11, 10**9, 1]}), None, r"layer_sizes\[1\] = 1000000000 is not an integer"),
    "classes vs outputs": (lambda c: c["classes"].update({"values": [0, 1, 2]}), None,
                           r"layer_sizes\[-1\] = 1 outputs, but 3 classes need\(s\) 3"),
    "width vs preprocessing": (wider_input, wider_weights,
                               r"crafted/network\.json: n_features_in = 12, but the preprocessing saved beside it outputs 11 columns"),
}


@pytest.mark.parametrize("case", NETWORK_CASES)
def test_crafted_network_is_refused(saved, tmp_path, case):
    config_change, tensors_change, field = NETWORK_CASES[case]
    directory = craft_network(copy_of(saved["nn"], tmp_path), config_change, tensors_change)
    with pytest.raises(ModelError, match=field) as error:
        load_model(directory)
    assert "crafted/network.safetensors" in str(error.value) or "crafted/network.json" in str(error.value)


def test_torch_alone_would_accept_integer_weights():
    "Why the dtype is checked: load_state_dict casts a tensor of any dtype into the float parameter, silently."
    network = build_mlp([3, 2])
    state = {name: value.to(torch.int64) for name, value in network.state_dict().items()}
    network.load_state_dict(state, strict=True)  # no error
    assert network[0].weight.dtype == torch.float32


def test_verify_model_summarises_a_good_model(saved):
    for name, directory in saved.items():
        summary = verify_model(directory)
        assert summary["kind"] == name and summary["task"] == "binary" and summary["directory"] == str(directory)
        assert set(summary["files"]) == set(read_json(directory / MODEL_CARD)["files"])


def test_verify_model_refuses_a_changed_file(saved, tmp_path):
    directory = copy_of(saved["rf"], tmp_path)
    data = bytearray((directory / PIPELINE_FILE).read_bytes())
    data[len(data) // 2] ^= 1
    (directory / PIPELINE_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="md5"):
        verify_model(directory)


def test_multiclass_forest_and_network_pass(tmp_path):
    for name in ("rf", "nn"):
        directory = save(name, tmp_path / name, task="multiclass")
        assert verify_model(directory)["task"] == "multiclass"
