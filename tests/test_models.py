"""Model families: learning, persistence without pickle, native parity, determinism, errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from pipeline_core.errors import BundleError, ConfigError, DataValidationError, NotFittedError
from pipeline_core.models import MODEL_FAMILIES, create_model, load_model
from pipeline_core.models.families import SEQUENCE_FAMILIES
from pipeline_core.models.base import CONFIG_FILE

TABULAR = ["xgboost", "lightgbm", "catboost"]
SEQUENCE = ["lstm", "gru", "tcn"]
N_ROWS, N_FEATURES, SEQ_LEN, SEQ_FEATURES = 2000, 10, 10, 4
TRAIN, VAL = slice(0, 1400), slice(1400, 1700)
TEST = slice(1700, None)
# One thread each: the test machine is shared, and oversubscribed OpenMP spins.
FAST_PARAMS = {
    **{f: {"n_estimators": 100, "n_jobs": 1} for f in TABULAR},
    **{f: {"max_epochs": 12, "learning_rate": 1e-2, "patience": 3, "num_threads": 1}
       for f in SEQUENCE},
}


def _labels(score: np.ndarray) -> np.ndarray:
    return np.digitize(score, [-0.6, 0.6])  # class indices 0/1/2, roughly balanced


@pytest.fixture(scope="module")
def tabular_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N_ROWS, N_FEATURES)).astype(np.float32)
    score = X[:, 0] + 0.7 * X[:, 1] - 0.5 * X[:, 2] + 0.5 * rng.standard_normal(N_ROWS)
    return X, _labels(score)


@pytest.fixture(scope="module")
def sequence_data() -> tuple[np.ndarray, np.ndarray]:
    """Windows as the pipeline builds them: a non-contiguous sliding_window_view."""
    rng = np.random.default_rng(11)
    bars = rng.standard_normal((N_ROWS + SEQ_LEN - 1, SEQ_FEATURES)).astype(np.float32)
    X = sliding_window_view(bars, (SEQ_LEN, SEQ_FEATURES))[:, 0]
    last, lag3 = bars[SEQ_LEN - 1 :, 0], bars[SEQ_LEN - 4 : -3, 1]
    score = last + lag3 + 0.3 * rng.standard_normal(N_ROWS)
    assert not X.flags.c_contiguous
    return X, _labels(score)


@pytest.fixture(scope="module")
def fitted(tabular_data, sequence_data) -> dict:
    """Each family fitted once on its data: family -> (model, X, y)."""
    out = {}
    for family in MODEL_FAMILIES:
        X, y = sequence_data if family in SEQUENCE else tabular_data
        model = create_model(family, **FAST_PARAMS[family])
        out[family] = (model.fit(X[TRAIN], y[TRAIN], X[VAL], y[VAL]), X, y)
    return out


def _call_native(family: str, native, X: np.ndarray) -> np.ndarray:
    """What a parity check does: call the library object directly."""
    if family == "xgboost":
        return native.inplace_predict(X)
    if family == "lightgbm":
        return native.predict(X)
    if family == "catboost":
        return native.predict_proba(X)
    with torch.no_grad():
        return native(torch.from_numpy(np.ascontiguousarray(X))).numpy()


def test_registry_lists_every_family():
    assert sorted(MODEL_FAMILIES) == sorted(TABULAR + SEQUENCE)
    assert SEQUENCE_FAMILIES == {family: cls.is_sequence for family, cls in MODEL_FAMILIES.items()}
    for family, cls in MODEL_FAMILIES.items():
        assert cls.family == family
        assert cls.is_sequence == (family in SEQUENCE)


@pytest.mark.parametrize("family", TABULAR + SEQUENCE)
def test_model_learns_signal(fitted, family):
    model, X, y = fitted[family]
    probs = model.predict_proba(X[TEST])
    assert probs.shape == (len(y[TEST]), 3)
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    accuracy = (probs.argmax(axis=1) == y[TEST]).mean()
    majority = np.bincount(y[TEST]).max() / len(y[TEST])
    assert accuracy > majority + 0.15, (accuracy, majority)


@pytest.mark.parametrize("family", TABULAR + SEQUENCE)
def test_model_save_load_is_bit_identical(fitted, family, tmp_path):
    model, X, _ = fitted[family]
    model.save(tmp_path)
    loaded = load_model(family, tmp_path)
    assert np.array_equal(loaded.predict_proba(X[TEST]), model.predict_proba(X[TEST]))
    assert loaded.get_params() == model.get_params()


@pytest.mark.parametrize("family", TABULAR + SEQUENCE)
def test_model_native_equals_predict_proba(fitted, family, tmp_path):
    model, X, _ = fitted[family]
    model.save(tmp_path)
    for candidate in (model, load_model(family, tmp_path)):
        direct = _call_native(family, candidate.native, X[TEST])
        assert direct.shape == (len(X[TEST]), 3)
        assert np.array_equal(direct, candidate.predict_proba(X[TEST]))


def test_xgboost_dmatrix_predict_equals_inplace_predict(fitted):
    """Parity checks may call Booster.predict(DMatrix); it must match inplace_predict."""
    import xgboost as xgb

    model, X, _ = fitted["xgboost"]
    rows = np.array(X[TEST])
    rows[::7, 3] = np.nan  # missing values take the same branch both ways
    direct = model.native.predict(xgb.DMatrix(rows, missing=np.nan))
    assert np.array_equal(direct, model.predict_proba(rows))


@pytest.mark.parametrize("family", TABULAR + SEQUENCE)
def test_model_folder_holds_only_safe_files(fitted, family, tmp_path):
    model, _, _ = fitted[family]
    model.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*type(model).native_files, CONFIG_FILE])
    for path in tmp_path.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert config["family"] == family
    if family in SEQUENCE:
        weights = tmp_path / "weights.npz"
        with zipfile.ZipFile(weights) as archive:  # every member is a raw .npy array
            assert all(archive.read(n).startswith(b"\x93NUMPY") for n in archive.namelist())
        with np.load(weights, allow_pickle=False) as stored:
            assert all(stored[n].dtype == np.float32 for n in stored.files)


@pytest.mark.parametrize("family", SEQUENCE)
def test_sequence_model_row_does_not_depend_on_batch(fitted, family):
    model, X, _ = fitted[family]
    block = X[:300]  # crosses a 256-row chunk boundary
    whole = model.predict_proba(block)
    for row in (0, 1, 255, 256, 299):
        assert np.array_equal(model.predict_proba(block[row : row + 1])[0], whole[row])
    assert np.array_equal(model.predict_proba(block[5:290]), whole[5:290])


@pytest.mark.parametrize("family", SEQUENCE)
def test_torch_fit_is_deterministic_and_leaves_global_rng(sequence_data, family):
    X, y = sequence_data
    params = {"max_epochs": 2, "max_train_sequences": 600, "num_threads": 1}
    rng_before = torch.random.get_rng_state()
    first = create_model(family, **params).fit(X[TRAIN], y[TRAIN], X[VAL], y[VAL])
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    second = create_model(family, **params).fit(X[TRAIN], y[TRAIN], X[VAL], y[VAL])
    other = create_model(family, seed=1, **params).fit(X[TRAIN], y[TRAIN], X[VAL], y[VAL])
    first_state, second_state = first.native.state_dict(), second.native.state_dict()
    assert all(torch.equal(first_state[k], second_state[k]) for k in first_state)
    assert not all(torch.equal(first_state[k], other.native.state_dict()[k]) for k in first_state)
    assert first.state_["n_train_sequences"] == 600


def test_tcn_receptive_field_covers_the_sequence(fitted):
    model, _, _ = fitted["tcn"]
    architecture = model.state_["architecture"]
    receptive = 1 + (architecture["kernel_size"] - 1) * (2 ** architecture["n_layers"] - 1)
    assert receptive >= SEQ_LEN
    assert architecture["n_layers"] == 3


@pytest.mark.parametrize("family", TABULAR + SEQUENCE)
def test_unfitted_model_raises_not_fitted(family, tmp_path):
    model = create_model(family)
    shape = (4, SEQ_LEN, SEQ_FEATURES) if model.is_sequence else (4, N_FEATURES)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.predict_proba(np.zeros(shape, dtype=np.float32))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.native
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.save(tmp_path)


@pytest.mark.parametrize("family", ["xgboost", "lstm"])
def test_wrong_feature_count_raises(fitted, family):
    model, X, _ = fitted[family]
    n = X.shape[-1]
    with pytest.raises(DataValidationError, match=f"X has {n - 1} features, but the model "
                       f"was fitted with {n}"):
        model.predict_proba(np.ascontiguousarray(X[:5, ..., : n - 1]))


def test_wrong_sequence_length_and_rank_raise(fitted):
    model, X, _ = fitted["gru"]
    with pytest.raises(DataValidationError, match="sequences of length 5, but the model was "
                       "fitted with length 10"):
        model.predict_proba(X[:4, :5])
    with pytest.raises(DataValidationError, match=r"expects \(n, sequence_length, n_features\)"):
        model.predict_proba(X[:4, 0])


def test_sequence_model_rejects_nan_naming_the_row(fitted):
    model, X, _ = fitted["lstm"]
    bad = np.array(X[:300])
    bad[270, 3, 1] = np.nan
    with pytest.raises(DataValidationError, match="non-finite values .* in sequence 270"):
        model.predict_proba(bad)


def test_sequence_model_finite_check_is_exact_where_the_fast_sum_is_not(fitted):
    model, X, _ = fitted["gru"]
    huge = np.array(X[:300], dtype=np.float32)
    huge[:, :, 0] = np.finfo(np.float32).max  # finite, but their sum overflows to inf
    before = huge.copy()
    assert np.isfinite(model.predict_proba(huge)).all()
    np.testing.assert_array_equal(huge, before)  # the chunks share its memory: left as given
    opposite = np.array(X[:300], dtype=np.float32)
    opposite[40, 0, 0], opposite[41, 0, 0] = np.inf, -np.inf  # each row's sum is infinite
    with pytest.raises(DataValidationError, match="non-finite values .* in sequence 40"):
        model.predict_proba(opposite)


def test_tabular_model_rejects_inf_in_training(tabular_data):
    X, y = tabular_data
    bad = X[TRAIN].copy()
    bad[3, 2] = np.inf
    with pytest.raises(DataValidationError, match="infinite values"):
        create_model("lightgbm").fit(bad, y[TRAIN], X[VAL], y[VAL])


def test_fit_rejects_labels_outside_class_indices(tabular_data):
    X, y = tabular_data
    with pytest.raises(DataValidationError, match=r"contains values \[-1\].*class indices"):
        create_model("xgboost").fit(X[TRAIN], y[TRAIN] - 1, X[VAL], y[VAL])


def test_fit_rejects_mismatched_validation_shape(tabular_data):
    X, y = tabular_data
    with pytest.raises(DataValidationError, match="X_val has shape"):
        create_model("catboost").fit(X[TRAIN], y[TRAIN], X[VAL, :5], y[VAL])


def test_create_model_rejects_unknown_family_and_params():
    with pytest.raises(ConfigError, match=r"Unknown model family 'svm'.*'catboost'"):
        create_model("svm")
    with pytest.raises(ConfigError, match=r"Unknown parameter\(s\) \['hidden'\].*hidden_size"):
        create_model("lstm", hidden=8)


def test_load_rejects_wrong_family_and_damaged_files(fitted, tmp_path):
    model, _, _ = fitted["lightgbm"]
    model.save(tmp_path)
    with pytest.raises(BundleError, match="holds a 'lightgbm' model, not 'xgboost'"):
        load_model("xgboost", tmp_path)
    (tmp_path / "model.txt").write_text("not a model")
    with pytest.raises(BundleError, match="Cannot read the lightgbm model"):
        load_model("lightgbm", tmp_path)
    (tmp_path / "model.txt").unlink()
    with pytest.raises(BundleError, match=r"missing \['model.txt'\]"):
        load_model("lightgbm", tmp_path)
    with pytest.raises(BundleError, match="does not exist"):
        load_model("lightgbm", tmp_path / "nowhere")


def test_catboost_input_is_a_fortran_float32_copy_made_in_row_blocks():
    from pipeline_core.models.catboost_model import FORTRAN_BLOCK_ROWS, _fortran_float32

    X = np.random.default_rng(0).standard_normal((2 * FORTRAN_BLOCK_ROWS + 5, 7))  # a short last block
    copy = _fortran_float32(X)
    assert copy.flags.f_contiguous and copy.dtype == np.float32
    np.testing.assert_array_equal(copy, X.astype(np.float32))
    assert _fortran_float32(copy) is copy  # already in CatBoost's layout: not copied again
