"""A task family is one registration: the fake PP-OCR-shaped family of ``tests/fake_family.py``,
registered once, is picked up by the manifest loader (its sections parsed once and handed out by the
bundle, unknown keys refused, its input ranges written), by ``make_kind`` (int8 calibration) and by
``edgevl bench --inputs`` (its own preprocessing); unregistered, none of them knows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevl.bench.inputs import folder_feeds
from edgevl.bundle import Bundle, load_bundle, write_bundle
from edgevl.errors import BundleError, CalibrationError, InputError
from edgevl.tasks import registry

fake = pytest.importorskip("fake_family")
kinds = pytest.importorskip("edgevl_export.quantize.kinds")
guard = pytest.importorskip("edgevl_export.quantize.guard")

PRE = {"mean": [0.5, 0.25, 0.5], "std": [0.5, 0.5, 0.25], "side": 48}


def _model(path: Path) -> Path:
    """NCHW float image → its sigmoid (a 'detector')."""
    from onnx import TensorProto, helper, save

    g = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "fake",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, "h", "w"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3, "h", "w"])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _bundle(tmp: Path, pre: dict[str, object] | None = None,
            config: dict[str, object] | None = None) -> Bundle:
    tmp.mkdir(exist_ok=True)
    return write_bundle(tmp / "b", name="fake", task=fake.TASK, models={"model": _model(tmp / "m.onnx")},
                        preprocess=PRE if pre is None else pre, config=config)


def _photos(folder: Path) -> Path:
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((30, 90, 3), 255, np.uint8))
    cv2.imwrite(str(folder / "b.png"), np.zeros((60, 20, 3), np.uint8))
    return folder


@pytest.fixture
def family() -> Iterator[None]:
    registry.register(fake.FAMILY)
    try:
        yield
    finally:
        registry.unregister(fake.FAMILY.name)


def test_unregistered_the_task_is_free_form(tmp_path: Path) -> None:
    assert registry.task_spec(fake.TASK) is None
    b = _bundle(tmp_path, pre={"anything": 1})  # no sections: any keys, generic ranges
    h = b.model().inputs[0].dims[2]
    assert (h.min, h.opt, h.max) == (1, 224, 4096)
    with pytest.raises(InputError, match="no image preprocessing"):
        folder_feeds(_photos(tmp_path / "photos"), b.model().inputs, b, "model", 1)


def test_the_loader_parses_the_family_sections_once(family: None, tmp_path: Path) -> None:
    assert fake.TASK in registry.task_names()
    b = load_bundle(_bundle(tmp_path, config={"thresh": 0.4}).path)
    pre = b.section(fake.FakePreprocess)
    assert pre == fake.FakePreprocess((0.5, 0.25, 0.5), (0.5, 0.5, 0.25), 48)
    assert b.section(fake.FakePreprocess) is pre  # parsed at load, handed out
    assert b.section(fake.FakeConfig).thresh == 0.4
    # the range policy of the family: side / 2 .. side * 2, opt at side; batch from the loader
    dims = b.model().inputs[0].dims
    assert [(d.role, d.min, d.opt, d.max) for d in dims] == [
        ("batch", 1, 1, 1024), ("channels", 3, 3, 3), ("height", 24, 48, 96), ("width", 24, 48, 96)]
    # a default written once, in the dataclass field
    assert load_bundle(_bundle(tmp_path / "d", pre={"mean": [0] * 3, "std": [1] * 3}).path
                       ).section(fake.FakePreprocess).side == 64


def test_the_loader_refuses_what_the_family_does_not_hold(family: None, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"preprocess: unknown keys \['sides'\]"):
        _bundle(tmp_path, pre={**PRE, "sides": 3})
    with pytest.raises(BundleError, match=r"config: unknown keys \['thresh_'\]"):
        _bundle(tmp_path, config={"thresh_": 0.1})
    with pytest.raises(BundleError, match=r"config\.thresh: 2 is outside \[0, 1\]"):
        _bundle(tmp_path, config={"thresh": 2})


def test_the_benchmark_feeds_the_family_preprocessing(family: None, tmp_path: Path) -> None:
    b = _bundle(tmp_path)
    (feed,) = folder_feeds(_photos(tmp_path / "photos"), b.model().inputs, b, "model", 2)
    x = feed["x"]
    assert x.shape == (2, 3, 48, 48) and x.dtype == np.float32
    # white photo: (1 - mean) / std per channel; black photo: -mean / std
    np.testing.assert_allclose(x[0, :, 0, 0], [1.0, 1.5, 2.0])
    np.testing.assert_allclose(x[1, :, 0, 0], [-1.0, -0.5, -2.0])


def test_make_kind_calibrates_the_family(family: None, tmp_path: Path) -> None:
    from edgevl.backends import EngineOptions

    b = _bundle(tmp_path)
    photos = _photos(tmp_path / "photos")
    assert fake.TASK in kinds.kinds()
    kind = kinds.make_kind(b, photos, 2, 0, guard.GuardThresholds(), EngineOptions())
    assert isinstance(kind, fake.FakeKind)
    (first, _) = kind.calibration("model")
    assert first["x"].shape == (1, 3, 48, 48)
    text = tmp_path / "texts.txt"
    text.write_text("a\n")
    with pytest.raises(CalibrationError, match="calibrated on a folder of fake photos"):
        kinds.make_kind(b, text, 2, 0, guard.GuardThresholds(), EngineOptions())


def test_unregistered_make_kind_refuses_the_task(tmp_path: Path) -> None:
    from edgevl.backends import EngineOptions

    b = _bundle(tmp_path, pre={"anything": 1})
    builtin = r"\['text-embedding', 'clip', 'text-detection', 'text-recognition', 'text-orientation'\]"
    with pytest.raises(CalibrationError,
                       match=f"task '{fake.TASK}' has no int8 calibration; supported: {builtin}"):
        kinds.make_kind(b, tmp_path, 2, 0, guard.GuardThresholds(), EngineOptions())


def test_a_task_name_registers_once(family: None) -> None:
    with pytest.raises(BundleError, match="already registered"):
        registry.register(fake.FAMILY)
