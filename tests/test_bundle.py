from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_affine_onnx

from edgevl.backends import open_engine
from edgevl.bundle import MANIFEST_NAME, SCHEMA_VERSION, load_bundle, write_bundle
from edgevl.cli import main
from edgevl.errors import BundleError


def _bundle(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> Path:
    out = tmp_path / "b"
    write_bundle(
        out,
        name="affine",
        task="test",
        models={"model": affine_onnx[0]},
        extra_files={"charset.txt": b"a\nb\n"},
        preprocess={"mean": [0.5]},
        config={"thresh": 0.3},
    )
    return out


def test_round_trip_keeps_everything(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    out = _bundle(tmp_path, affine_onnx)
    b = load_bundle(out)
    m = b.manifest
    assert m.schema_version == SCHEMA_VERSION
    assert (m.name, m.task, m.precision) == ("affine", "test", "fp32")
    assert m.preprocess == {"mean": [0.5]} and m.config == {"thresh": 0.3}
    spec = b.model("model")
    assert [(t.name, t.dtype, t.shape) for t in spec.inputs] == [("x", "float32", ("batch", 4))]
    assert [(t.name, t.dtype, t.shape) for t in spec.outputs] == [("y", "float32", ("batch", 3))]
    assert b.file("charset.txt").read_bytes() == b"a\nb\n"
    assert set(m.files) == {"model.onnx", "charset.txt"}
    x = np.ones((2, 4), np.float32)
    y = open_engine(b).run({"x": x})["y"]
    np.testing.assert_allclose(y, x @ affine_onnx[1], rtol=1e-6)


def test_digest_changes_with_content(tmp_path: Path) -> None:
    a = write_bundle(
        tmp_path / "a", name="n", task="t", models={"model": make_affine_onnx(tmp_path / "1.onnx", seed=1)[0]}
    )
    b = write_bundle(
        tmp_path / "b", name="n", task="t", models={"model": make_affine_onnx(tmp_path / "2.onnx", seed=2)[0]}
    )
    assert a.digest != b.digest
    assert load_bundle(tmp_path / "a").digest == a.digest


def test_missing_file(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    out = _bundle(tmp_path, affine_onnx)
    (out / "charset.txt").unlink()
    with pytest.raises(BundleError, match=r"charset.txt.*missing"):
        load_bundle(out)


def test_checksum_mismatch(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    out = _bundle(tmp_path, affine_onnx)
    (out / "charset.txt").write_bytes(b"x\n")
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(out)
    assert load_bundle(out, verify=False).manifest.name == "affine"


@pytest.mark.parametrize("version", [0, 3, "1", None, True])
def test_unknown_schema_version(
    tmp_path: Path, affine_onnx: tuple[Path, np.ndarray], version: object
) -> None:
    out = _bundle(tmp_path, affine_onnx)
    d = json.loads((out / MANIFEST_NAME).read_text())
    d["schema_version"] = version
    (out / MANIFEST_NAME).write_text(json.dumps(d))
    with pytest.raises(BundleError, match="schema_version"):
        load_bundle(out)


def test_manifest_that_does_not_parse(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    out = _bundle(tmp_path, affine_onnx)
    (out / MANIFEST_NAME).write_text('{"schema_version": 1, "name": ')
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(out)


def test_manifest_missing_keys(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    out = _bundle(tmp_path, affine_onnx)
    d = json.loads((out / MANIFEST_NAME).read_text())
    del d["models"]
    (out / MANIFEST_NAME).write_text(json.dumps(d))
    with pytest.raises(BundleError, match="missing keys"):
        load_bundle(out)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a bundle directory"):
        load_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        load_bundle(tmp_path)


def _rewrite_model(out: Path, data: bytes) -> None:
    """Replace the model file and fix its checksum, so only the ONNX check can catch it."""
    import hashlib

    (out / "model.onnx").write_bytes(data)
    d = json.loads((out / MANIFEST_NAME).read_text())
    d["files"]["model.onnx"] = hashlib.sha256(data).hexdigest()
    (out / MANIFEST_NAME).write_text(json.dumps(d))


@pytest.mark.parametrize("data", [b"this is not onnx at all", b""])
def test_file_that_is_not_onnx(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray], data: bytes) -> None:
    out = _bundle(tmp_path, affine_onnx)
    _rewrite_model(out, data)
    with pytest.raises(BundleError, match="not a loadable ONNX model"):
        open_engine(load_bundle(out))


def test_truncated_onnx(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    out = _bundle(tmp_path, affine_onnx)
    data = (out / "model.onnx").read_bytes()
    _rewrite_model(out, data[: len(data) // 2])
    with pytest.raises(BundleError, match="not a loadable ONNX model"):
        open_engine(load_bundle(out))


def test_onnx_io_disagrees_with_manifest(tmp_path: Path, affine_onnx: tuple[Path, np.ndarray]) -> None:
    out = _bundle(tmp_path, affine_onnx)
    other = make_affine_onnx(tmp_path / "other.onnx", in_dim=5)[0]
    d = json.loads((out / MANIFEST_NAME).read_text())
    d["models"]["model"]["inputs"][0]["name"] = "pixels"
    (out / MANIFEST_NAME).write_text(json.dumps(d))
    _rewrite_model(out, other.read_bytes())
    with pytest.raises(BundleError, match="disagree with the manifest"):
        open_engine(load_bundle(out))


def test_foreign_onnx_written_into_bundle_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(BundleError, match="not a loadable ONNX model"):
        write_bundle(tmp_path / "b", name="n", task="t", models={"model": bad})


def test_cli_info(
    tmp_path: Path, affine_onnx: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _bundle(tmp_path, affine_onnx)
    assert main(["info", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "affine" and d["models"]["model"]["inputs"][0]["name"] == "x"
    (out / "charset.txt").write_bytes(b"changed")
    assert main(["info", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgevl: error:") and "sha256" in err and len(err.splitlines()) == 1
