"""The OpenVINO backend: parity with ONNX Runtime on the OCR bundles, its compiled-model cache (a
stale, truncated or other-version blob is rebuilt, never run), 'auto', the not-installed error, and
the CPU count it sizes its threads from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgevl.backends import EngineOptions, open_engine, resolve_backend
from edgevl.backends import registry as reg
from edgevl.backends.cpus import quota_cpus, usable_cpus
from edgevl.bundle import load_bundle, write_bundle
from edgevl.cli import main
from edgevl.errors import BackendError, BundleError

ov_mod = pytest.importorskip("openvino")
from edgevl.backends.openvino import OpenVinoEngine, cache_key  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shelf.png"
OV = EngineOptions(backend="openvino")


# --------------------------------------------------------------------------- CPUs


def test_quota_from_cgroup_v2_and_v1_text() -> None:
    assert quota_cpus(cpu_max="150000 100000") == 1.5
    assert quota_cpus(cpu_max="max 100000") is None
    assert quota_cpus(cpu_max="garbage") is None
    assert quota_cpus(cfs_quota="-1", cfs_period="100000") is None
    assert quota_cpus(cfs_quota="200000", cfs_period="100000") == 2.0


def test_usable_cpus_is_affinity_capped_by_quota() -> None:
    assert usable_cpus(affinity=8, quota=1.5) == 2
    assert usable_cpus(affinity=2, quota=16.0) == 2
    assert usable_cpus(affinity=4, quota=0.2) == 1


# --------------------------------------------------------------------------- cache (tiny model)


@pytest.fixture()
def affine_bundle(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]):  # type: ignore[no-untyped-def]
    path, w = affine_onnx
    write_bundle(tmp_path / "b", name="affine", task="embedding", models={"model": path})
    return load_bundle(tmp_path / "b"), w


def _engine(bundle, cache: Path) -> OpenVinoEngine:  # type: ignore[no-untyped-def]
    return OpenVinoEngine.from_bundle(bundle, "model", OV) if cache is None else OpenVinoEngine(
        bundle.model_path(), OV, expected=bundle.model(), cache_dir=cache)


def test_runs_and_matches_the_weights(affine_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b, w = affine_bundle
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    with _engine(b, tmp_path / "c") as eng:
        y = eng.run({"x": x})["y"]
        assert eng.backend == "openvino" and "OpenVINO" in eng.device
    np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-5)


def test_cache_is_reused_then_rebuilt_when_truncated_changed_or_other_version(
        affine_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b, w = affine_bundle
    cache = tmp_path / "c"
    x = np.ones((2, 4), np.float32)
    first = _engine(b, cache)
    assert not first.cached and first.cache_folder is not None
    folder = first.cache_folder
    blob, meta_path = folder / "model.blob", folder / "meta.json"
    assert blob.stat().st_size > 0
    assert _engine(b, cache).cached  # the second open imports the blob

    good = blob.read_bytes()
    blob.write_bytes(good[: len(good) // 2])  # truncated
    e = _engine(b, cache)
    assert not e.cached
    np.testing.assert_allclose(e.run({"x": x})["y"], x @ w, rtol=1e-5, atol=1e-5)
    # rewritten whole (the export is not byte-identical between compiles: its size and sha are checked)
    assert blob.stat().st_size == json.loads(meta_path.read_text())["blob_size"] > len(good) // 2
    assert _engine(b, cache).cached
    good = blob.read_bytes()

    # same size, one byte changed: the sha256 catches it
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    assert not _engine(b, cache).cached
    # a blob whose meta says it came from another OpenVINO
    meta = json.loads(meta_path.read_text())
    meta["openvino"] = "1999.0.0"
    meta_path.write_text(json.dumps(meta))
    assert not _engine(b, cache).cached
    assert _engine(b, cache).cached  # and the rebuilt one is trusted again
    # a blob that OpenVINO refuses although its meta matches it: rebuilt, not run
    junk = b"not a compiled model" * 10
    import hashlib
    meta = json.loads(meta_path.read_text())
    meta.update(blob_size=len(junk), blob_sha256=hashlib.sha256(junk).hexdigest())
    blob.write_bytes(junk)
    meta_path.write_text(json.dumps(meta))
    assert not _engine(b, cache).cached


def test_static_shapes_compile_per_shape_and_agree(affine_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from edgevl.backends import OpenVinoOptions

    b, w = affine_bundle
    opts = replace(OV, openvino=OpenVinoOptions(static_shapes=True))
    eng = OpenVinoEngine(b.model_path(), opts, expected=b.model(), cache_dir=tmp_path / "c")
    rng = np.random.default_rng(2)
    for n in (1, 3, 1, 5, 2, 7):
        x = rng.standard_normal((n, 4)).astype(np.float32)
        np.testing.assert_allclose(eng.run({"x": x})["y"], x @ w, rtol=1e-5, atol=1e-5)
    assert list(eng._by_shape) == [((3, 4),), ((1, 4),), ((5, 4),), ((2, 4),), ((7, 4),)][-4:]
    # one cache folder per shape, and none for the dynamic model: a static engine never compiles it
    folders = list((tmp_path / "c").iterdir())
    assert len(folders) == 5
    assert all("shapes" in json.loads((f / "meta.json").read_text())["config"] for f in folders)
    assert eng.precision == "f32" and "closed" not in eng.device
    eng.close()
    with pytest.raises(BackendError, match="closed"):
        eng.run({"x": np.zeros((1, 4), np.float32)})


def test_static_engine_checks_the_manifest_io_at_its_first_compile(affine_bundle, tmp_path: Path  # type: ignore[no-untyped-def]
                                                                   ) -> None:
    from dataclasses import replace

    from edgevl.backends import OpenVinoOptions
    from edgevl.bundle import ModelSpec, TensorSpec

    b, _ = affine_bundle
    spec = b.model()
    # a manifest that names the output differently from the ONNX file
    outputs = tuple(TensorSpec("not_y", t.dtype, t.shape) for t in spec.outputs)
    wrong = ModelSpec(spec.file, spec.inputs, outputs)
    opts = replace(OV, openvino=OpenVinoOptions(static_shapes=True))
    eng = OpenVinoEngine(b.model_path(), opts, expected=wrong, cache_dir=tmp_path / "c")
    with pytest.raises(BundleError, match="disagree with the manifest"):
        eng.run({"x": np.zeros((2, 4), np.float32)})


def test_cache_key_depends_on_model_version_and_settings() -> None:
    cfg = {"INFERENCE_NUM_THREADS": 2}
    k = cache_key("a" * 64, cfg, "2026.4.1")
    assert k != cache_key("b" * 64, cfg, "2026.4.1")
    assert k != cache_key("a" * 64, cfg, "2026.5.0")
    assert k != cache_key("a" * 64, {"INFERENCE_NUM_THREADS": 1}, "2026.4.1")


def test_feeds_are_validated(affine_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from edgevl.errors import InputError

    b, _ = affine_bundle
    with pytest.raises(InputError, match="dtype"):
        _engine(b, tmp_path / "c").run({"x": np.ones((2, 4), np.float64)})


# --------------------------------------------------------------------------- registry / CLI


def test_auto_prefers_openvino_when_installed_else_ort(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("auto") == "openvino"
    assert resolve_backend("ort-cpu") == "ort-cpu"
    monkeypatch.setitem(reg.REGISTRY, "openvino", reg.Backend("openvino", "", lambda: "absent",
                                                              reg._ov_open, "cpu"))
    assert resolve_backend("auto") == "ort-cpu"


def test_missing_openvino_is_one_error_line_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    real = reg.importlib.util.find_spec
    monkeypatch.setattr(reg.importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(BackendError, match=r"edgevl\[openvino\]"):
        reg._ov_open(None, "model", OV)  # type: ignore[arg-type]
    code = main(["ocr", str(EXAMPLE), "--backend", "openvino"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("edgevl: error:") and "edgevl[openvino]" in err[0]


# --------------------------------------------------------------------------- parity on the OCR bundles


@pytest.fixture(scope="module")
def v6(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from edgevl.models.ppocr import build_bundles

    return build_bundles(tmp_path_factory.mktemp("v6"), model="ppocrv6")


def test_ocr_bundles_agree_with_onnx_runtime(v6, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from edgevl.tasks.ocr import AngleClassifier, OcrPipeline, TextDetector, TextRecognizer
    from edgevl.vision.io import read_image

    monkeypatch.setenv("EDGEVL_HOME", str(tmp_path))
    rng = np.random.default_rng(0)
    feeds = {"det": rng.random((1, 3, 96, 160), np.float32), "cls": rng.random((2, 3, 48, 192), np.float32),
             "rec": rng.random((2, 3, 48, 200), np.float32)}
    for role in ("det", "cls", "rec"):
        bundle = getattr(v6, role)
        name = bundle.model().inputs[0].name
        with open_engine(bundle, options=EngineOptions()) as a, open_engine(bundle, options=OV) as b:
            ya = next(iter(a.run({name: feeds[role]}).values()))
            yb = next(iter(b.run({name: feeds[role]}).values()))
        assert ya.shape == yb.shape
        assert float(np.abs(ya - yb).max()) < 2e-3, role

    img = read_image(EXAMPLE)

    def pipe(opts: EngineOptions) -> OcrPipeline:
        return OcrPipeline(TextDetector(bundle=v6.det, options=opts),
                           AngleClassifier(bundle=v6.cls, options=opts),
                           TextRecognizer(bundle=v6.rec, options=opts))

    ort_lines = [ln.text for ln in pipe(EngineOptions())(img)]
    ov_lines = [ln.text for ln in pipe(OV)(img)]
    assert len(ort_lines) >= 5
    assert ov_lines == ort_lines
