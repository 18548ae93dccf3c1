import numpy as np
import pytest

from pipeline_core.errors import DataValidationError
from pipeline_core.scaling import SCALE_BLOCK_ROWS, fit_scaler, scale


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_scale_in_row_blocks_gives_the_bits_of_the_plain_float64_expression_and_of_sklearn():
    rng = np.random.default_rng(3)
    rows = 2 * SCALE_BLOCK_ROWS + 17  # blocks of every size: full ones and a short last one
    train = rng.lognormal(size=(5_000, 4)).astype(np.float32)
    scaler = fit_scaler(train, ["a", "b", "c", "d"])
    features = rng.lognormal(size=(rows, 4)).astype(np.float32)
    scaled = scale(scaler, features)
    assert scaled.dtype == np.float32 and scaled.shape == features.shape
    plain = ((features.astype(np.float64) - scaler.center_) / scaler.scale_).astype(np.float32)
    np.testing.assert_array_equal(scaled, plain)
    np.testing.assert_array_equal(scaled, scaler.transform(features.astype(np.float64)).astype(np.float32))
    with pytest.raises(DataValidationError, match="X has 3 features, but the scaler was fitted with 4"):
        scale(scaler, features[:, :3])
