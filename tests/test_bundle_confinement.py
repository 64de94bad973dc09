"""Issue 11, bundle parts: a bundle cannot reach outside its folder, every manifest field is
type- and range-checked (a BundleError naming the field, one CLI line, exit 2), and
``edgevl info --verify`` loads each ONNX."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_affine_onnx
from tiny_encoders import make_text_embedding_bundle

from edgevl import bundle as bundle_mod
from edgevl.bundle import MANIFEST_NAME, load_bundle, write_bundle
from edgevl.cli import main
from edgevl.errors import BundleError


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _affine(tmp_path: Path) -> Path:
    onnx, _ = make_affine_onnx(tmp_path / "affine.onnx")
    write_bundle(tmp_path / "b", name="affine", task="test", models={"model": onnx},
                 extra_files={"charset.txt": b"a\nb\n"})
    return tmp_path / "b"


def _edit(b: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    m = b / MANIFEST_NAME
    d = json.loads(m.read_text())
    fn(d)
    m.write_text(json.dumps(d))


def _no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: Path, chunk: int = 0) -> str:
        raise AssertionError(f"{path} was opened before the names were checked")

    monkeypatch.setattr(bundle_mod, "sha256_file", boom)


def _outside_cases(tmp_path: Path, secret: Path) -> dict[str, Callable[[Path], None]]:
    rel = os.path.relpath(secret, tmp_path / "b")

    def dotdot(b: Path) -> None:
        def f(d: dict[str, Any]) -> None:
            d["files"][rel] = _sha(secret) if secret.exists() else "0" * 64
        _edit(b, f)

    def absolute(b: Path) -> None:
        def f(d: dict[str, Any]) -> None:
            d["files"][str(secret)] = _sha(secret) if secret.exists() else "0" * 64
        _edit(b, f)

    def model_file(b: Path) -> None:
        def f(d: dict[str, Any]) -> None:
            d["models"]["model"]["file"] = rel
        _edit(b, f)

    def symlink(b: Path) -> None:
        (b / "charset.txt").unlink()
        (b / "charset.txt").symlink_to(secret)

    def symlinked_dir(b: Path) -> None:
        (b / "sub").symlink_to(secret.parent)

        def f(d: dict[str, Any]) -> None:
            d["files"][f"sub/{secret.name}"] = "0" * 64
        _edit(b, f)

    return {"dotdot": dotdot, "absolute": absolute, "model_file": model_file, "symlink": symlink,
            "symlinked_dir": symlinked_dir}


@pytest.mark.parametrize("case", ["dotdot", "absolute", "model_file", "symlink", "symlinked_dir"])
def test_names_outside_the_bundle_are_refused_before_any_file_is_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    messages = []
    # one root, one secret path, the bundle built anew at the same path: the two messages can differ
    # only if the loader tells whether the outside file exists (however long pytest's tmp path is)
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    for exists in (False, True):
        if exists:
            secret.write_text("root:x:0:0\n")
        shutil.rmtree(tmp_path / "b", ignore_errors=True)
        b = _affine(tmp_path)
        _outside_cases(tmp_path, secret)[case](b)
        with monkeypatch.context() as mp:
            _no_hashing(mp)
            with pytest.raises(BundleError, match="is not a relative path inside the bundle") as e:
                load_bundle(b)
        messages.append(str(e.value))
    # the error never tells whether something exists outside
    assert messages[0] == messages[1]


def test_cli_info_and_embed_refuse_an_outside_tokenizer(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    b = make_text_embedding_bundle(tmp_path)
    outside = tmp_path / "tok.json"
    shutil.copy(b.path / "tokenizer.json", outside)

    def f(d: dict[str, Any]) -> None:
        d["config"]["tokenizer"] = "../tok.json"
        d["files"]["../tok.json"] = _sha(outside)

    _edit(b.path, f)
    for args in (["info", str(b.path)], ["embed", str(b.path), "--text", "red"]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("edgevl: error:")
        assert "not a relative path inside the bundle" in err[0]


def test_a_fifo_in_the_bundle_is_refused_not_read(tmp_path: Path) -> None:
    b = _affine(tmp_path)
    (b / "charset.txt").unlink()
    os.mkfifo(b / "charset.txt")
    with pytest.raises(BundleError, match="not a regular file"):
        load_bundle(b)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


FIELD_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "config as a string": (lambda d: d.update(config="thresh=0.3"), r"\.config: expected a JSON object"),
    "preprocess as a list": (lambda d: d.update(preprocess=[0.5]), r"\.preprocess: expected a JSON object"),
    "inputs as a dict": (lambda d: d["models"]["model"].update(inputs={"x": 1}),
                         r"models\.model\.inputs: expected a list"),
    "shape not a list": (lambda d: d["models"]["model"]["inputs"][0].update(shape="b,4"),
                         r"inputs\[0\]\.shape: expected a list"),
    "files digest not hex": (lambda d: d["files"].update({"model.onnx": 5}), r"files\['model\.onnx'\]"),
    "name not a string": (lambda d: d.update(name=["x"]), r"\.name: expected a string"),
    "precision unknown": (lambda d: d.update(precision="fp8"), r"\.precision: 'fp8' is not one of"),
    "huge integer anywhere": (lambda d: d["extra"].update(n=10**30), r"extra\.n: integer .* 64 bits"),
    "range min > max": (lambda d: d["models"]["model"]["inputs"][0]["dims"][0].update(min=9, max=2),
                        r"dims\[0\]: needs min <= opt <= max"),
    "unknown top-level key": (lambda d: d.update(engines={}), r"unknown keys \['engines'\]"),
}


@pytest.mark.parametrize("case", sorted(FIELD_CASES))
def test_every_field_is_type_checked(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    b = _affine(tmp_path)
    fn, pattern = FIELD_CASES[case]
    _edit(b, fn)
    with pytest.raises(BundleError, match=pattern):
        load_bundle(b)
    assert main(["info", str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgevl: error:")


def test_pad_id_too_large_names_the_field(tmp_path: Path) -> None:
    b = make_text_embedding_bundle(tmp_path)

    def f(d: dict[str, Any]) -> None:
        d["config"]["pad_id"] = 10**30

    _edit(b.path, f)
    with pytest.raises(BundleError, match=r"config\.pad_id"):
        load_bundle(b.path)

    def g(d: dict[str, Any]) -> None:
        d["config"]["pad_id"] = 2**40  # fits JSON's 64-bit check, not a token id

    _edit(b.path, g)
    with pytest.raises(BundleError, match=r"config\.pad_id: 1099511627776 is outside 0\.\.2147483647"):
        load_bundle(b.path)


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_manifest(tmp_path: Path, depth: int, capsys: pytest.CaptureFixture[str]) -> None:
    b = _affine(tmp_path)
    text = (b / MANIFEST_NAME).read_text()
    (b / MANIFEST_NAME).write_text(text.replace('"extra": {}', f'"extra": {{"x": {_deep(depth)}}}'))
    with pytest.raises(BundleError, match="nested"):
        load_bundle(b)
    assert main(["info", str(b)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_info_verify_loads_each_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = _affine(tmp_path)
    onnx = b / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[: len(onnx.read_bytes()) // 2])  # truncated ONNX

    def f(d: dict[str, Any]) -> None:
        d["files"]["model.onnx"] = _sha(onnx)  # ...with an updated checksum

    _edit(b, f)
    assert main(["info", str(b)]) == 0  # the checksum alone cannot tell
    capsys.readouterr()
    assert main(["info", "--verify", str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model 'model'" in err[0] and "not a loadable ONNX model" in err[0]


def test_info_verify_catches_io_that_disagrees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = _affine(tmp_path)
    other, _ = make_affine_onnx(tmp_path / "wide.onnx", in_dim=5)
    shutil.copy(other, b / "model.onnx")

    def f(d: dict[str, Any]) -> None:
        d["files"]["model.onnx"] = _sha(b / "model.onnx")
        d["models"]["model"]["inputs"][0]["name"] = "z"

    _edit(b, f)
    assert main(["info", "--verify", str(b)]) == 2
    assert "disagree with the manifest" in capsys.readouterr().err
    (tmp_path / "ok").mkdir()
    assert main(["info", "--verify", str(_affine(tmp_path / "ok"))]) == 0
    assert "verified" in capsys.readouterr().out


def test_the_engine_still_runs_a_confined_bundle(tmp_path: Path) -> None:
    from edgevl.backends import open_engine

    b = load_bundle(_affine(tmp_path))
    assert open_engine(b).run({"x": np.ones((2, 4), np.float32)})["y"].shape == (2, 3)


def test_tokenizer_refuses_a_pad_id_no_token_can_have(tmp_path: Path) -> None:
    from tiny_encoders import make_tokenizer

    from edgevl.text.tokenizer import Tokenizer

    tok = make_tokenizer(tmp_path / "tokenizer.json")
    with pytest.raises(BundleError, match=r"pad_id 10+ is outside 0\.\.2147483647"):
        Tokenizer(tok, 8, pad_id=10**30)
    enc = Tokenizer(tok, 8, pad_id=3)(["red", "a red photo"])
    assert enc.input_ids[0, -1] == 3 and enc.attention_mask[0, -1] == 0  # padded with the pad id
