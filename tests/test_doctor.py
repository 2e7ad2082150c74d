"""``samplerbench doctor``: every kind of stage checked on tiny generated data, one line per check, exit 0 only
when none failed. CI runs it on the CPU here (the slow test); on a GPU run ``samplerbench doctor --device cuda``."""

from __future__ import annotations

import pytest
import torch

from samplerbench.cli import main
from samplerbench.recognizers.backbones import FEM_ARCHS
from samplerbench.runs import doctor as doctor_module
from samplerbench.runs.doctor import Check, Doctor, doctor_config
from samplerbench.samplers import list_samplers

STATUS = ("ok ", "FAIL", "skip")


@pytest.mark.slow
def test_doctor_on_the_cpu_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--device", "cpu", "--workers", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("versions: torch ") and " decord " in out[0] and " av " in out[0]
    assert out[1].startswith("device: cpu: ")
    lines = [line for line in out if line.startswith(STATUS)]
    assert not [line for line in lines if not line.startswith("ok ")], "\n".join(out)
    expected = ["generate", "decode video", "decode frame folder", "frame store", "train+extract recognizer resnet18",
                *(f"train+extract fem {arch}" for arch in FEM_ARCHS), *(f"sampler {n}" for n in list_samplers()),
                "sampler nsnet d=fem", "select (checkpoint)", "throughput", "bank export+read", "gather (2 processes)"]
    assert len(lines) == len(expected)
    for line, name in zip(lines, expected, strict=True):
        assert line[5:].startswith(name + " "), line
    assert out[-1].startswith(f"{len(expected)} of {len(expected)} checks passed or do not apply, 0 failed, in ")


def test_a_failing_check_names_the_error_the_fix_and_what_it_blocks(tmp_path) -> None:
    lines: list[str] = []
    cfg = doctor_config(device="cpu", compile_model=False, decoder="cpu", workers=1)
    doc = Doctor(cfg, root=tmp_path, emit=lines.append)

    def broken() -> str:
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device\nsecond line")

    doc.check("train+extract fem mobilenet_v2", broken, fix="train")
    doc.check("sampler nsnet", lambda: "fine", fix="sampler", needs=("train+extract fem mobilenet_v2",))
    doc.check("bank export+read", lambda: "2 + 2 rows", fix="bank")
    assert lines[0].startswith("FAIL train+extract fem mobilenet_v2 ")
    assert "RuntimeError: CUDA error: no kernel image is available for execution on the device [test_doctor.py:" in (
        lines[0])
    assert "second line" not in lines[0] and "fix: a bug on this device, precision or compile mode" in lines[0]
    assert lines[1].startswith("skip sampler nsnet") and "not run: train+extract fem mobilenet_v2 failed" in lines[1]
    assert lines[2].startswith("ok   bank export+read") and "2 + 2 rows" in lines[2]
    assert [c.ok for c in doc.checks] == [False, None, True]


def test_exit_status_is_1_when_a_check_fails_without_a_traceback(monkeypatch, capsys) -> None:
    failed = Check(name="throughput", ok=False, detail="RuntimeError: boom; fix: report this line", seconds=0.1)
    monkeypatch.setattr(Doctor, "run_all", lambda self: [failed])
    assert main(["doctor", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "0 of 1 checks passed or do not apply, 1 failed" in captured.out and "Traceback" not in captured.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_a_gpu_is_one_failed_check(capsys) -> None:
    assert main(["doctor", "--device", "cuda"]) == 1
    out = capsys.readouterr().out
    assert "FAIL device" in out and "CUDA is not available on this machine" in out and "fix: install a torch" in out


def test_a_device_that_is_no_device_is_a_usage_error(capsys) -> None:
    assert main(["doctor", "--device", "tpu"]) == 2
    assert capsys.readouterr().err.strip() == ("samplerbench: error: --device 'tpu': expected cpu, cuda, cuda:N or "
                                               "auto")


def test_versions_name_the_decoders() -> None:
    assert "decord 0.6" in doctor_module.versions() or "decord2 " in doctor_module.versions()
