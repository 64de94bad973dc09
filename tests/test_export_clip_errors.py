"""Bad checkpoints give a CheckpointError that names the file and what is wrong (and exit 2 in the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from edgevl_export.loaders.clip import load_clip  # noqa: E402
from edgevl_export.loaders.files import save_checkpoint  # noqa: E402
from edgevl_export.loaders.openclip import to_openai_state_dict  # noqa: E402
from edgevl_export.models.clip import build_model, get_arch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from edgevl.cli import main  # noqa: E402
from edgevl.errors import CheckpointError  # noqa: E402


class NotATensor:
    """A custom class: torch.load(weights_only=True) refuses to unpickle it."""

    def __init__(self) -> None:
        self.lr = 0.1


@pytest.fixture(scope="module")
def openai_sd() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return to_openai_state_dict(build_model(get_arch("test-vit")).state_dict())


def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path: Path, openai_sd: dict) -> None:
    sd = dict(openai_sd)
    del sd["ln_final.bias"]
    sd["visual.extra_head.weight"] = torch.zeros(3)
    sd["visual.proj"] = torch.zeros(64, 7)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as e:
        load_clip(path, arch="test-vit")
    msg = str(e.value)
    assert str(path) in msg
    assert "missing keys: ln_final.bias" in msg
    assert "unexpected keys: visual.extra_head.weight" in msg
    assert "visual.proj: checkpoint (64, 7) vs model (64, 32)" in msg


def test_wrong_arch_is_reported_as_shape_mismatch(tmp_path: Path, openai_sd: dict) -> None:
    path = tmp_path / "vit.pt"
    torch.save(openai_sd, path)
    with pytest.raises(CheckpointError, match=r"mis-shaped keys|missing keys"):
        load_clip(path, arch="test-rn")


def test_not_a_clip_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="not an OpenAI/OpenCLIP CLIP state dict"):
        load_clip(path)


def test_truncated_files(tmp_path: Path, openai_sd: dict) -> None:
    pt, st = tmp_path / "full.pt", tmp_path / "full.safetensors"
    torch.save(openai_sd, pt)
    save_file({k: v.contiguous() for k, v in openai_sd.items()}, str(st))
    for full in (pt, st):
        cut = tmp_path / f"cut{full.suffix}"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        with pytest.raises(CheckpointError, match="truncated or corrupt") as e:
            load_clip(cut)
        assert str(cut) in str(e.value)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_clip(empty)


def test_pickle_refused_by_weights_only(tmp_path: Path, openai_sd: dict) -> None:
    path = tmp_path / "train.pt"
    torch.save({"state_dict": openai_sd, "optimizer_cfg": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="weights_only") as e:
        load_clip(path, arch="test-vit")
    assert "safetensors" in str(e.value)  # says what to do instead


def test_wrapped_training_checkpoint_loads(tmp_path: Path, openai_sd: dict) -> None:
    path = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in openai_sd.items()}}, path)
    assert load_clip(path, arch="test-vit").format == "torch"


def test_torchscript_archive(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(get_arch("test-vit"))
    traced = torch.jit.trace(model, (torch.zeros(1, 3, 32, 32), torch.ones(1, 5, dtype=torch.long)))
    path = tmp_path / "ViT-test.pt"
    traced.save(str(path))
    loaded = load_clip(path, arch="test-vit")
    assert loaded.format == "torchscript"
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model.encode_image(x), model.encode_image(x))


def test_lightclip_safetensors_carries_its_config(tmp_path: Path) -> None:
    cfg = get_arch("test-lightclip")
    model = build_model(cfg)
    path = save_checkpoint(model, tmp_path / "light.safetensors", {**cfg.to_dict(), "name": "tiny-light"})
    loaded = load_clip(path)
    assert loaded.arch == "tiny-light" and loaded.model.config == cfg
    bare = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(bare))
    with pytest.raises(CheckpointError, match="pass --arch"):
        load_clip(bare)
    assert load_clip(bare, arch="test-lightclip").model.config == cfg


def test_unknown_arch_lists_known(tmp_path: Path, openai_sd: dict) -> None:
    path = tmp_path / "vit.pt"
    torch.save(openai_sd, path)
    with pytest.raises(CheckpointError, match="ViT-B-32"):
        load_clip(path, arch="ViT-Z-99")


def test_hf_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_clip(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(CheckpointError, match="no weights file"):
        load_clip(tmp_path)
    save_file({"text_model.embeddings.token_embedding.weight": torch.zeros(3, 2), "foo.bar": torch.zeros(1)},
              str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"foo\.bar"):
        load_clip(tmp_path)


def test_cli_errors_are_one_line_exit_2(
    tmp_path: Path, openai_sd: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vit.pt"
    torch.save(openai_sd, path)
    out = tmp_path / "out"
    # no tokenizer anywhere near the checkpoint
    assert main(["export", "--checkpoint", str(path), "--out", str(out), "--arch", "test-vit"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgevl: error:") and "--tokenizer" in err and "Traceback" not in err
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(path), "--out", str(out), "--precision", "int8"]) == 2
    assert "--calibration" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(path), "--out", str(out), "--precision", "fp8"]) == 2


def test_cli_dispatches_bert_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgevl_export.bert_bundle as bert_bundle

    from edgevl.bundle import write_bundle

    calls: list[tuple[Path, Path, str, int]] = []

    def fake_export_bert(checkpoint_dir: Path, out_dir: Path, precision: str = "fp32", opset: int = 17):  # type: ignore[no-untyped-def]
        calls.append((Path(checkpoint_dir), Path(out_dir), precision, opset))
        return write_bundle(out_dir, name="bert", task="text-embedding", models={})

    monkeypatch.setattr(bert_bundle, "export_bert", fake_export_bert)
    folder = tmp_path / "minilm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    out = tmp_path / "b"
    assert main(["export", "--checkpoint", str(folder), "--out", str(out), "--precision", "fp16",
                 "--opset", "18"]) == 0
    assert calls == [(folder, out, "fp16", 18)]


def test_cli_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["export", "--checkpoint", str(tmp_path), "--out", str(out)]
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 2 and "manifest.json" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"  # nothing deleted
