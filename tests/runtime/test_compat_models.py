"""Every released .om format keeps loading: the checked-in models of tests/data/om/ run and give
their stored outputs (computed with NumPy when the model was made)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openge.runtime import Model, check_compatibility

DATA = Path(__file__).resolve().parents[1] / "data" / "om"
FORMATS = sorted(p for p in DATA.iterdir() if p.is_dir())


def test_there_is_a_model_for_the_current_format():
    from openge.version import OM_FORMAT_VERSION

    major, minor = OM_FORMAT_VERSION
    assert (DATA / f"format_{major}.{minor}").is_dir(), "run tools/make_compat_models.py"


@pytest.mark.parametrize("folder", FORMATS, ids=lambda p: p.name)
def test_old_format_model_loads_and_matches(folder):
    (om,) = folder.glob("*.om")
    compat = check_compatibility(str(om))
    assert compat.ok and not compat.online and compat.format == folder.name.split("_")[1]
    x = np.load(folder / "input_0.npy")
    expected = np.load(folder / "expected_0.npy")
    with Model.from_file(str(om)) as model:
        y, steps = model.execute([x])
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
        assert steps[0] == 1.0
        assert model.execute([x])[1][0] == 2.0  # its variable keeps counting


def test_format_1_1_model_keeps_its_gears():
    (om,) = (DATA / "format_1.1").glob("*.om")
    with Model.from_file(str(om)) as model:
        assert model.get_dynamic_batch() == [2, 4]
        assert model.inputs[0].shape == (-1, 6) and model.inputs[-1].name == (
            "ascend_mbatch_shape_data"
        )
        x = np.load(DATA / "format_1.1" / "input_0.npy")
        big = np.concatenate([x, x])  # the other gear
        y, _ = model.execute([big])
        np.testing.assert_allclose(
            y,
            np.concatenate([np.load(DATA / "format_1.1" / "expected_0.npy")] * 2),
            rtol=1e-5,
            atol=1e-6,
        )
