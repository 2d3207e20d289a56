"""Save / load round trips for every model kind and task, and the ways loading refuses a model directory."""
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops_nb.core import ModelError, atomic_write_json, file_md5, read_json
from mlops_nb.data import infer_schema
from mlops_nb.vocabulary import MODEL_NAMES, TASKS
from mlops_nb.models import (MODEL_CARD, NETWORK_CONFIG, NETWORK_WEIGHTS, PIPELINE_FILE,
                             TRUSTED_TYPES, load_model, make_model, read_model_card, save_model)

# small so that the whole matrix trains in seconds
SMALL = {"rf": {"n_estimators": 15}, "nn": {"hidden_layer_sizes": (16,), "max_epochs": 4, "batch_size": 64},
         "linear": {}, "dummy": {}}


def make_table(n=240, seed=0):
    "Numeric (with gaps), categorical (with gaps), datetime and an id column; one target per task."
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": np.arange(n),
        "x1": rng.normal(size=n),
        "x2": rng.gamma(2.0, 2.0, n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 24 * 200, n), unit="h"),
    })
    score = frame["x1"] + (frame["colour"] == "red") - frame["x2"] / 4 + rng.normal(0, 0.3, n)
    frame.loc[rng.choice(n, 10, replace=False), "x2"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "colour"] = None
    targets = {"binary": (score > 0).astype(int),
               "multiclass": pd.cut(score, [-np.inf, -0.5, 0.5, np.inf], labels=["low", "mid", "high"]).astype(str),
               "regression": score * 10}
    return frame, targets


FRAME, TARGETS = make_table()
X_TRAIN, X_TEST = FRAME.iloc[:180], FRAME.iloc[180:]


def fitted(name, task):
    schema = infer_schema(FRAME.assign(target=TARGETS[task]), target="target")
    model = make_model(name, task, schema, seed=0, **SMALL[name])
    return model.fit(X_TRAIN, TARGETS[task].iloc[:180]), schema


@pytest.fixture(scope="module")
def saved_rf(tmp_path_factory):
    model, schema = fitted("rf", "binary")
    directory = save_model(model, tmp_path_factory.mktemp("saved") / "rf", card={"schema": schema})
    return model, directory


def copy_of(directory, tmp_path):
    "A scratch copy of a saved model directory to damage."
    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return target


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_round_trip_predicts_identically(name, task, tmp_path):
    model, schema = fitted(name, task)
    card = {"name": name, "metrics": {"score": 0.5}, "data_md5": "d41d8cd98f00b204e9800998ecf8427e", "schema": schema}
    directory = save_model(model, tmp_path / name, card=card)
    loaded = load_model(directory)
    assert isinstance(loaded, Pipeline)
    assert np.array_equal(loaded.predict(X_TEST), model.predict(X_TEST))
    if task != "regression":
        assert np.array_equal(loaded.predict_proba(X_TEST), model.predict_proba(X_TEST))
        assert list(loaded.classes_) == list(model.classes_)
    # the card says what the model is
    card = read_model_card(directory)
    assert (card["name"], card["kind"], card["task"]) == (name, name, task)
    assert card["metrics"] == {"score": 0.5} and card["data_md5"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert card["input_schema"]["columns"] == ["x1", "x2", "colour", "when"]
    assert card["input_schema"]["dtypes"]["colour"] == schema["dtypes"]["colour"]
    assert card["input_schema"]["categories"]["colour"] == ["blue", "green", "missing", "red"]  # gaps seen in training
    if task == "regression": assert card["classes"] is None
    else: assert card["classes"] == [v.item() if hasattr(v, "item") else v for v in model.classes_]
    assert set(card["versions"]) >= {"python", "numpy", "pandas", "sklearn", "torch", "skops", "mlops_nb"}
    expected_files = {PIPELINE_FILE} | ({NETWORK_WEIGHTS, NETWORK_CONFIG} if name == "nn" else set())
    assert set(card["files"]) == expected_files
    assert all(file_md5(directory / f) == md5 for f, md5 in card["files"].items())
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected_files | {MODEL_CARD})
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no staging directory left behind
    # what skops stores lies within the fixed trusted list (no blanket trust needed)
    assert set(skops.io.get_untrusted_types(file=directory / PIPELINE_FILE)) <= set(TRUSTED_TYPES)


def test_card_hyperparameters_are_json(tmp_path):
    schema = infer_schema(FRAME.assign(target=TARGETS["binary"]), target="target")
    model = make_model("rf", "binary", schema, n_estimators=5, class_weight={0: 1, 1: 3}).fit(X_TRAIN, TARGETS["binary"].iloc[:180])
    card = read_model_card(save_model(model, tmp_path / "m"))
    assert card["hyperparameters"]["class_weight"] == {"0": 1, "1": 3}
    assert card["hyperparameters"]["n_estimators"] == 5 and card["hyperparameters"]["random_state"] == 0
    assert np.array_equal(load_model(tmp_path / "m").predict_proba(X_TEST), model.predict_proba(X_TEST))


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_tampered_skops_file_is_refused(saved_rf, tmp_path, damage):
    directory = copy_of(saved_rf[1], tmp_path)
    path = directory / PIPELINE_FILE
    data = bytearray(path.read_bytes())
    if damage == "flip": data[len(data) // 2] ^= 0x01
    elif damage == "truncate": data = data[: len(data) - 100]
    else: data = b""
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=PIPELINE_FILE.replace(".", r"\.")) as error:
        load_model(directory)
    assert "md5" in str(error.value)


@pytest.mark.parametrize("filename", [NETWORK_WEIGHTS, NETWORK_CONFIG])
def test_tampered_network_files_are_refused(tmp_path, filename):
    model, _ = fitted("nn", "binary")
    directory = save_model(model, tmp_path / "nn")
    path = directory / filename
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=filename.replace(".", r"\.")):
        load_model(directory)
    path.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(ModelError, match=filename.replace(".", r"\.")):
        load_model(directory)


def forge(directory, filename):
    "Rewrite the card's md5 of `filename` to match its new content, as an attacker replacing both would."
    card = read_json(directory / MODEL_CARD)
    card["files"][filename] = file_md5(directory / filename)
    atomic_write_json(directory / MODEL_CARD, card)


class Payload:
    "Stands for any class whose loading could run code."
    def __init__(self): self.command = "echo pwned"


def test_untrusted_class_is_refused_even_with_matching_md5(saved_rf, tmp_path):
    directory = copy_of(saved_rf[1], tmp_path)
    skops.io.dump(Payload(), directory / PIPELINE_FILE)
    forge(directory, PIPELINE_FILE)
    with pytest.raises(ModelError, match=r"pipeline\.skops.*Payload"):
        load_model(directory)


def test_untrusted_function_inside_a_pipeline_is_refused(saved_rf, tmp_path):
    model, directory = saved_rf
    directory = copy_of(directory, tmp_path)
    # a real pipeline whose first step would call os.system on the input when transforming
    evil = Pipeline([("hook", FunctionTransformer(os.system)), *model.steps])
    skops.io.dump(evil, directory / PIPELINE_FILE)
    forge(directory, PIPELINE_FILE)
    with pytest.raises(ModelError, match=r"pipeline\.skops.*system"):
        load_model(directory)


@pytest.mark.parametrize("filename", [PIPELINE_FILE, MODEL_CARD])
def test_missing_file_is_refused(saved_rf, tmp_path, filename):
    directory = copy_of(saved_rf[1], tmp_path)
    (directory / filename).unlink()
    with pytest.raises(ModelError, match=filename.replace(".", r"\.")):
        load_model(directory)


def test_missing_network_file_is_refused(tmp_path):
    model, _ = fitted("nn", "regression")
    directory = save_model(model, tmp_path / "nn")
    (directory / NETWORK_WEIGHTS).unlink()
    with pytest.raises(ModelError, match=r"network\.safetensors.*missing"):
        load_model(directory)


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format": "something else", "files": {}}'])
def test_malformed_card_is_refused(saved_rf, tmp_path, content):
    directory = copy_of(saved_rf[1], tmp_path)
    (directory / MODEL_CARD).write_text(content)
    with pytest.raises(ModelError, match=MODEL_CARD.replace(".", r"\.")):
        load_model(directory)


def test_card_cannot_point_outside_the_directory(saved_rf, tmp_path):
    directory = copy_of(saved_rf[1], tmp_path)
    card = read_json(directory / MODEL_CARD)
    card["files"]["../elsewhere.skops"] = card["files"][PIPELINE_FILE]
    atomic_write_json(directory / MODEL_CARD, card)
    with pytest.raises(ModelError, match="elsewhere"):
        load_model(directory)


def test_not_a_directory(tmp_path):
    with pytest.raises(ModelError, match="nowhere"):
        load_model(tmp_path / "nowhere")


def test_save_replaces_a_model_but_not_other_files(saved_rf, tmp_path):
    model = saved_rf[0]
    directory = save_model(model, tmp_path / "m", card={"metrics": {"v": 1}})
    save_model(model, directory, card={"metrics": {"v": 2}})
    assert read_model_card(directory)["metrics"] == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ModelError, match="refusing"):
        save_model(model, other)
    assert (other / "keep.txt").read_text() == "mine"


def test_failed_save_leaves_nothing(saved_rf, tmp_path, monkeypatch):
    def broken_dump(obj, file, **kwargs):
        with open(file, "wb") as f: f.write(b"half")
        raise OSError("disk full")
    monkeypatch.setattr(skops.io, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        save_model(saved_rf[0], tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_unfitted_model_is_refused(tmp_path):
    schema = infer_schema(FRAME.assign(target=TARGETS["binary"]), target="target")
    with pytest.raises(ModelError, match="not fitted"):
        save_model(make_model("rf", "binary", schema), tmp_path / "m")
