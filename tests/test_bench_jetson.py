"""Jetson facts in the bench record: the tegrastats parser on published output of Orin and Xavier
(tests/fixtures/jetson/tegrastats_lines.txt says where each line comes from), L4T/JetPack/nvpmodel/clock
detection on a fixture tree, the background sampler on a fake tegrastats, and the null record off a Jetson.
Expected values are read off the fixture lines by hand."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from edgevl.bench.harness import make_run
from edgevl.bench.jetson import (
    UNLOCKED_WARNING,
    JetsonPaths,
    JetsonRun,
    TegrastatsParseError,
    TegrastatsSampler,
    clock_state,
    detect_jetson,
    jetpack_for_l4t,
    lines_summary,
    parse_nv_tegra_release,
    parse_nvpmodel_query,
    parse_tegrastats,
    summarize_tegrastats,
)
from edgevl.bench.machine import machine_info
from edgevl.bench.report import machine_line

FIXTURES = Path(__file__).parent / "fixtures" / "jetson" / "tegrastats_lines.txt"


def _fixtures() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    name = None
    for line in FIXTURES.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            out[name] = []
        elif line.strip() and not line.startswith("#") and name is not None:
            out[name].append(line)
    return out


LINES = _fixtures()


def test_every_fixture_block_has_lines_and_a_source() -> None:
    text = FIXTURES.read_text(encoding="utf-8")
    assert set(LINES) == {"orin_agx_jp6", "xavier_nx_jp512", "xavier_agx_nonroot", "nvidia_doc_fields"}
    assert all(LINES.values())
    assert text.count("\n# source: ") == len(LINES)


def test_orin_agx_jetpack6_line() -> None:
    s = parse_tegrastats(LINES["orin_agx_jp6"][0])
    assert s.timestamp == "09-01-2025 10:55:25"
    assert (s.ram_used_mb, s.ram_total_mb) == (1313, 30697)
    assert (s.swap_used_mb, s.swap_total_mb) == (0, 15348)
    assert s.cpu_load_pct == (0,) * 8 + (None,) * 4
    assert s.cpu_freq_mhz == (729,) * 8 + (None,) * 4
    assert s.gpu_load_pct == 0 and s.gpu_freq_mhz == ()
    assert s.emc_load_pct is None and s.emc_freq_mhz is None  # not root: tegrastats prints no EMC
    assert s.temps_c == {"cpu": 43.343, "soc2": 39.812, "soc0": 40.312, "tj": 43.343, "soc1": 38.843}
    assert s.rails_mw == {"VDD_GPU_SOC": (1995, 1995), "VDD_CPU_CV": (0, 0), "VIN_SYS_5V0": (2524, 2524)}


def test_xavier_nx_jetpack512_line() -> None:
    s = parse_tegrastats(LINES["xavier_nx_jp512"][0])
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb) == (3168, 6851, 161)
    assert s.cpu_load_pct == (23, 17, 16, 13, 23, 10)
    assert s.cpu_freq_mhz == (1397, 1192, 1190, 1190, 1190, 1190)
    assert (s.emc_load_pct, s.emc_freq_mhz) == (2, 204)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (0, (114,))
    assert s.rails_mw == {"VDD_IN": (2763, 2846), "VDD_CPU_GPU_CV": (650, 670), "VDD_SOC": (650, 711)}
    assert "VIC_FREQ" not in s.rails_mw and "APE" not in s.rails_mw  # engine clocks are not rails
    assert s.temps_c["GPU"] == 45.5 and s.temps_c["thermal"] == 45.6 and len(s.temps_c) == 6


def test_xavier_agx_line_without_rails() -> None:
    s = parse_tegrastats(LINES["xavier_agx_nonroot"][0])
    assert s.timestamp is None
    assert (s.ram_used_mb, s.ram_total_mb) == (3149, 31920)
    assert s.cpu_load_pct == (57, 56, 57, 63, None, None, None, None)
    assert (s.emc_load_pct, s.emc_freq_mhz) == (0, None)
    assert s.gpu_load_pct == 39
    assert s.rails_mw == {}
    assert s.temps_c["Tdiode"] == 37.75


def test_nvidia_documentation_examples() -> None:
    s = parse_tegrastats(LINES["nvidia_doc_fields"][0])
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_total_mb) == (220, 38955, 1978)
    assert s.cpu_load_pct == (1, 5, 0, 0) and s.cpu_freq_mhz == (102,) * 4
    assert s.gpu_load_pct is None and s.rails_mw == {}


def test_documented_variants_per_gpc_clocks_and_unitless_rails() -> None:
    # formats from NVIDIA's tables: "GR3D_FREQ X%@[Y,Y,...]" (one clock per GPC, Orin) and the older rails
    # "NAME now/average" without a unit (JetPack 4); values made up for the test
    s = parse_tegrastats("RAM 5000/7620MB (lfb 4x4MB) CPU [off,10%@1510] EMC_FREQ 31%@2133 "
                         "GR3D_FREQ 97%@[1020,1020] POM_5V_IN 3014/3014 POM_5V_GPU 0/0")
    assert s.gpu_freq_mhz == (1020, 1020) and s.gpu_load_pct == 97
    assert s.cpu_load_pct == (None, 10)
    assert (s.emc_load_pct, s.emc_freq_mhz) == (31, 2133)
    assert s.rails_mw == {"POM_5V_IN": (3014, 3014), "POM_5V_GPU": (0, 0)}
    # JetPack 6 on newer L4T prints now/average/max: now and average are kept
    t = parse_tegrastats("RAM 999/62841MB CPU [0%@729,off] GR3D_FREQ 0% VDD_GPU_SOC 2792mW/2790mW/2800mW")
    assert t.rails_mw == {"VDD_GPU_SOC": (2792, 2790)}


@pytest.mark.parametrize("bad", ["", "hello world", "CPU [1%@102] GR3D_FREQ 3%", "RAM lots"])
def test_not_a_tegrastats_line(bad: str) -> None:
    with pytest.raises(TegrastatsParseError):
        parse_tegrastats(bad)


def test_summary_over_samples() -> None:
    samples = [parse_tegrastats(ln) for ln in LINES["orin_agx_jp6"]]
    out = summarize_tegrastats(samples)
    assert out["samples"] == 2
    assert out["gpu_load_pct"] == {"mean": 0.0, "max": 0.0}
    assert out["emc_load_pct"] is None
    assert out["ram_used_mb"] == {"mean": 1313.0, "max": 1313.0} and out["ram_total_mb"] == 30697
    assert out["power_mw"]["VIN_SYS_5V0"] == {"mean": 2524.0, "max": 2524.0}
    assert out["temp_c"]["tj"] == {"mean": 43.1, "max": 43.3}  # (43.343 + 42.875) / 2 = 43.109
    nx = summarize_tegrastats([parse_tegrastats(LINES["xavier_nx_jp512"][0])])
    assert nx["emc_load_pct"] == {"mean": 2.0, "max": 2.0}
    assert nx["gpu_freq_mhz"] == {"mean": 114.0, "max": 114.0}
    mixed = lines_summary(["garbage", "", *LINES["orin_agx_jp6"]])
    assert mixed["samples"] == 2 and mixed["unparsed_lines"] == 1


def _fake_tegrastats(tmp_path: Path) -> tuple[str, ...]:
    script = tmp_path / "fake_tegrastats.py"
    lines = [*LINES["xavier_nx_jp512"], "not tegrastats", *LINES["orin_agx_jp6"]]
    script.write_text(
        "import sys, time\n"
        f"lines = {lines!r}\n"
        "for ln in lines:\n    print(ln, flush=True)\n"
        "time.sleep(60)\n"  # tegrastats runs until it is stopped
    )
    return (sys.executable, str(script))


def _wait_for(sampler: TegrastatsSampler, n: int) -> None:
    deadline = time.monotonic() + 20
    while len(sampler.samples) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_sampler_reads_until_stopped(tmp_path: Path) -> None:
    sampler = TegrastatsSampler(_fake_tegrastats(tmp_path))
    _wait_for(sampler, 3)
    t0 = time.monotonic()
    out = sampler.stop()
    assert time.monotonic() - t0 < 5  # terminated, not waited for
    assert out["samples"] == 3 and out["unparsed_lines"] == 1
    assert out["gpu_load_pct"] == {"mean": 0.0, "max": 0.0}
    assert set(out["power_mw"]) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC", "VDD_GPU_SOC", "VDD_CPU_CV",
                                    "VIN_SYS_5V0"}


# ------------------------------------------------------------------------------------------- detection


def _jetson_tree(tmp_path: Path, *, locked: bool) -> JetsonPaths:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
        "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n")
    (etc / "nvpmodel.conf").write_text(
        "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=1 NAME=25W >\n"
        "< POWER_MODEL ID=2 NAME=MAXN_SUPER >\nCPU_ONLINE CORE_0 1\n")
    (etc / "status").write_text("pmode:0002 fmode:quiet\n")
    dt = tmp_path / "dt"
    dt.mkdir()
    (dt / "model").write_text("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00")
    (dt / "compatible").write_text(
        "nvidia,p3768-0000+p3767-0005-super\x00nvidia,p3767-0005\x00nvidia,tegra234\x00")
    sysfs = tmp_path / "sys"
    for i, top in ((0, 1728000), (4, 1728000)):
        pol = sysfs / "devices/system/cpu/cpufreq" / f"policy{i}"
        pol.mkdir(parents=True)
        (pol / "scaling_max_freq").write_text(f"{top}\n")
        (pol / "scaling_min_freq").write_text(f"{top if locked else 729600}\n")
    gpu = sysfs / "class/devfreq/17000000.gpu"
    gpu.mkdir(parents=True)
    (gpu / "max_freq").write_text("1020000000\n")
    (gpu / "min_freq").write_text(("1020000000" if locked else "306000000") + "\n")
    (gpu / "cur_freq").write_text(("1020000000" if locked else "306000000") + "\n")
    (sysfs / "class/devfreq/15340000.vic").mkdir(parents=True)  # not the GPU: ignored
    return JetsonPaths(nv_tegra_release=etc / "nv_tegra_release", dt_model=dt / "model",
                       dt_compatible=dt / "compatible", nvpmodel_status=etc / "status",
                       nvpmodel_conf=etc / "nvpmodel.conf", sys=sysfs, nvpmodel_command=(),
                       tegrastats_command=())


def test_orin_nano_detected_with_unlocked_clocks(tmp_path: Path) -> None:
    info = detect_jetson(_jetson_tree(tmp_path, locked=False))
    assert info.detected
    assert info.model == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    assert info.soc == "tegra234"
    assert (info.l4t, info.jetpack) == ("36.4.3", "6.2")
    assert info.nvpmodel == {"name": "MAXN_SUPER", "id": 2}
    assert info.clocks_locked is False
    assert info.clocks == {"locked": False, "cpu_policies_locked": "0/2", "gpu_locked": False,
                           "gpu_cur_freq_mhz": 306}
    assert info.warnings == (UNLOCKED_WARNING,)


def test_locked_clocks_give_no_warning(tmp_path: Path) -> None:
    info = detect_jetson(_jetson_tree(tmp_path, locked=True))
    assert info.clocks_locked is True and info.warnings == ()
    assert info.clocks is not None and info.clocks["gpu_cur_freq_mhz"] == 1020


def test_clock_state_unknown_without_sysfs(tmp_path: Path) -> None:
    assert clock_state(tmp_path) == {"locked": None, "cpu_policies_locked": None, "gpu_locked": None,
                                     "gpu_cur_freq_mhz": None}


def test_device_tree_alone_detects_a_jetson(tmp_path: Path) -> None:
    dt = tmp_path / "compatible"
    dt.write_text("nvidia,p3668-0001\x00nvidia,jetson-xavier-nx\x00nvidia,tegra194\x00")
    info = detect_jetson(JetsonPaths(nv_tegra_release=tmp_path / "none", dt_model=tmp_path / "none",
                                     dt_compatible=dt, nvpmodel_status=tmp_path / "none",
                                     nvpmodel_conf=tmp_path / "none", sys=tmp_path, nvpmodel_command=()))
    assert info.detected and info.soc == "tegra194" and info.l4t is None and info.jetpack is None
    assert info.clocks_locked is None and info.warnings == ()


@pytest.mark.parametrize(
    "text, l4t",
    [("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64", "35.4.1"),
     ("# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64", "36.3.0"),
     ("# R32 (release), REVISION: 7.1", "32.7.1"),
     ("R36 REVISION 3", None)],
)
def test_nv_tegra_release(text: str, l4t: str | None) -> None:
    assert parse_nv_tegra_release(text) == l4t


@pytest.mark.parametrize(
    "l4t, jetpack",
    [("35.2.1", "5.1"), ("35.4.1", "5.1.2"), ("36.2.0", "6.0 DP"), ("36.3.0", "6.0"), ("36.4.0", "6.1"),
     ("36.4.3", "6.2"), ("36.4.4", "6.2.1"), ("34.1.0", None), ("36.x", None), (None, None)],
)
def test_jetpack_from_l4t(l4t: str | None, jetpack: str | None) -> None:
    assert jetpack_for_l4t(l4t) == jetpack


def test_nvpmodel_query_output() -> None:
    assert parse_nvpmodel_query("NV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert parse_nvpmodel_query("NVPM WARN: ...\nNV Power Mode: 15W\n1\n") == {"name": "15W", "id": 1}
    assert parse_nvpmodel_query("nvpmodel: not found") is None


# ------------------------------------------------------------------------------ the bench record off a Jetson

KEYS = {"detected", "model", "soc", "l4t", "jetpack", "nvpmodel", "clocks_locked", "clocks", "tegrastats",
        "warnings"}


def test_off_jetson_fields_are_present_and_null(tmp_path: Path) -> None:
    none = tmp_path / "absent"
    paths = JetsonPaths(nv_tegra_release=none, dt_model=none, dt_compatible=none, nvpmodel_status=none,
                        nvpmodel_conf=none, sys=tmp_path)
    rec = machine_info(detect_jetson(paths)).to_dict()["jetson"]
    assert set(rec) == KEYS
    assert rec["detected"] is False and rec["warnings"] == []
    assert all(rec[k] is None for k in KEYS - {"detected", "warnings"})


def test_run_record_carries_the_jetson_fields_and_tegrastats(tmp_path: Path) -> None:
    paths = _jetson_tree(tmp_path, locked=False)
    paths = JetsonPaths(**{**paths.__dict__, "tegrastats_command": _fake_tegrastats(tmp_path)})
    jr = JetsonRun.start(paths)
    assert jr._sampler is not None
    _wait_for(jr._sampler, 3)
    run = make_run([], {}, jetson=jr)
    rec = json.loads(json.dumps(run.to_dict()))["machine"]["jetson"]
    assert set(rec) == KEYS
    assert rec["jetpack"] == "6.2" and rec["clocks_locked"] is False and rec["warnings"] == [UNLOCKED_WARNING]
    assert rec["tegrastats"]["samples"] == 3
    assert rec["tegrastats"]["power_mw"]["VDD_IN"] == {"mean": 2763.0, "max": 2763.0}
    line = machine_line(run.machine)
    assert "L4T 36.4.3 (JetPack 6.2), nvpmodel MAXN_SUPER, clocks NOT locked" in line


def test_bench_cli_warns_when_clocks_are_not_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from edgevl.cli import bench as cli_bench

    paths = _jetson_tree(tmp_path, locked=False)
    run = make_run([], {}, jetson=JetsonRun.start(paths))
    cli_bench._finish(run, False, None, None, None, [])
    assert f"warning: {UNLOCKED_WARNING}" in capsys.readouterr().err
