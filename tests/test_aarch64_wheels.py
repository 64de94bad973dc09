"""scripts/check_aarch64_wheels.py without the network: pip is replaced by a fake that knows which packages
have aarch64 wheels. The real check (pip against the index) runs in .ci/run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


cw = load_script(ROOT / "scripts/check_aarch64_wheels.py", "check_aarch64_wheels")

PYPROJECT = """
[project]
name = "edgevl"
dependencies = ["numpy>=1.24", "tomli>=2; python_version < '3.11'", "rapidocr-onnxruntime==1.4.4"]
[project.optional-dependencies]
scale = ["ray>=2.9"]
ann = ["hnswlib>=0.8"]
dev = ["pytest>=8"]
all = ["edgevl[scale]"]
[tool.edgevl.aarch64-wheels]
python-versions = ["3.10", "3.12"]
[tool.edgevl.aarch64-wheels.skip-extras]
dev = "tests only"
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "pyproject.toml"
    p.write_text(text)
    return p


class FakePip:
    """Answers like pip: a package in `missing` has no wheel; the report lists one wheel per requirement."""

    def __init__(self, missing: set[str]) -> None:
        self.missing = missing
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str]) -> object:
        cmd = list(cmd)
        self.calls.append(cmd)
        reqs = [a for a in cmd[cmd.index("--python-version") + 2 :] if not a.startswith("-")]
        reqs = [r for r in reqs if "aarch64" not in r]
        names = [cw.Requirement(r).name for r in reqs]
        for r, n in zip(reqs, names, strict=True):
            if n in self.missing:
                err = (f"ERROR: Could not find a version that satisfies the requirement {r} "
                       f"(from versions: none)\nERROR: No matching distribution found for {r}\n")
                return cw.PipResult(1, "", err)
        report = Path(cmd[cmd.index("--report") + 1])
        report.write_text(json.dumps({"install": [
            {"download_info": {"url": f"https://x/{n}-1.0-cp310-cp310-manylinux_2_28_aarch64.whl"}}
            for n in names
        ]}))
        return cw.PipResult(0, "", "")


def test_plan_reads_every_extra_but_the_skipped(tmp_path: Path) -> None:
    plan = cw.load_plan(_write(tmp_path, PYPROJECT))
    assert plan.extras == ("scale", "ann", "all")
    assert plan.skipped == {"dev": "tests only"}
    assert ("ray>=2.9", "extra scale") in plan.raw
    assert not any(r == "pytest>=8" for r, _ in plan.raw)


def test_markers_are_evaluated_for_the_target_python(tmp_path: Path) -> None:
    plan = cw.load_plan(_write(tmp_path, PYPROJECT))
    names310 = [i.name for i in cw.items_for(plan, "3.10")]
    names312 = [i.name for i in cw.items_for(plan, "3.12")]
    assert "tomli" in names310 and "tomli" not in names312
    # the project's self-reference (edgevl[scale]) is not sent to pip
    assert "edgevl" not in names310
    assert all(";" not in i.requirement for i in cw.items_for(plan, "3.10"))


def test_command_asks_for_aarch64_wheels_only(tmp_path: Path) -> None:
    cmd = cw.pip_command(["numpy>=1.24"], "3.12", tmp_path, no_deps=False, download=False)
    assert "--only-binary=:all:" in cmd and "--dry-run" in cmd
    plats = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--platform"]
    assert "manylinux2014_aarch64" in plats and "manylinux_2_28_aarch64" in plats
    assert "manylinux_2_35_aarch64" in plats and "manylinux_2_36_aarch64" not in plats
    assert all(p.endswith("aarch64") for p in plats)
    assert cmd[cmd.index("--python-version") + 1] == "3.12"
    dl = cw.pip_command(["numpy"], "3.10", tmp_path, no_deps=True, download=True)
    assert "download" in dl and "--no-deps" in dl and "--dry-run" not in dl


def test_passes_when_every_package_has_a_wheel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _write(tmp_path, PYPROJECT)
    fake = FakePip(missing=set())
    assert cw.main(["--pyproject", str(p)], runner=fake) == 0
    assert len(fake.calls) == 2  # one full resolve per Python version, nothing else
    assert "Python 3.12: ok" in capsys.readouterr().out


def test_fails_naming_every_offending_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _write(tmp_path, PYPROJECT)
    fake = FakePip(missing={"hnswlib", "ray"})
    assert cw.main(["--pyproject", str(p)], runner=fake) == 1
    err = capsys.readouterr().err
    assert "FAIL hnswlib (extra ann: hnswlib>=0.8): no aarch64 wheel for Python 3.10" in err
    assert "FAIL ray (extra scale: ray>=2.9): no aarch64 wheel for Python 3.12" in err
    assert "numpy" not in err


def test_transitive_offender_is_named_from_pips_error(tmp_path: Path) -> None:
    plan = cw.load_plan(_write(tmp_path, PYPROJECT))

    def runner(cmd: Sequence[str]) -> object:
        if "--no-deps" in cmd:  # each top-level package alone is fine
            return cw.PipResult(0, "", "")
        return cw.PipResult(1, "", "ERROR: No matching distribution found for opencv-python>=4.5\n")

    out = cw.check_version(plan, "3.10", runner=runner)
    assert not out.ok
    assert out.failures[0].startswith("opencv-python: the full resolve failed for Python 3.10")


def test_sdist_in_download_mode_is_a_failure(tmp_path: Path) -> None:
    plan = cw.load_plan(_write(tmp_path, PYPROJECT))

    def runner(cmd: Sequence[str]) -> object:
        wheels = Path(cmd[cmd.index("-d") + 1])
        wheels.mkdir(parents=True, exist_ok=True)
        (wheels / "numpy-2.0-cp310-cp310-manylinux_2_17_aarch64.whl").write_bytes(b"")
        (wheels / "odd-1.0.tar.gz").write_bytes(b"")
        return cw.PipResult(0, "", "")

    out = cw.check_version(plan, "3.10", runner=runner, download=True)
    assert not out.ok and out.failures == ("odd-1.0.tar.gz: not a wheel",)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[project]\nname="x"\n', "dependencies missing"),
        ('[project]\ndependencies=[]\n', "aarch64-wheels] missing"),
        ('[project]\ndependencies=[]\n[tool.edgevl.aarch64-wheels]\npython-versions=["3.10"]\n'
         '[tool.edgevl.aarch64-wheels.skip-extras]\nnope="x"\n', "do not exist: nope"),
        ('[project]\ndependencies=[]\n[project.optional-dependencies]\na=[]\n[tool.edgevl.aarch64-wheels]\n'
         'python-versions=["3.10"]\n[tool.edgevl.aarch64-wheels.skip-extras]\na=""\n', "its reason"),
    ],
)
def test_bad_config_exits_2(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cw.main(["--pyproject", str(_write(tmp_path, text))], runner=FakePip(set())) == 2
    assert message in capsys.readouterr().err


def test_the_projects_own_pyproject_is_valid() -> None:
    plan = cw.load_plan(ROOT / "pyproject.toml")
    assert {"3.10", "3.12"} <= set(plan.python_versions)
    assert "onnxruntime" in {i.name for i in cw.items_for(plan, "3.10")}
    assert all(reason for reason in plan.skipped.values())
