"""The `prunebench` command line: `layers` tables with Distiller's MAC counts and `check` on schedule files.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_tables import table

from pytest_prunebench.cli import main

BAD_LAYER = """\
version: 1
pruners:
  filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.layer9.0.conv1.weight]
policies:
  - pruner: {instance_name: filters}
    epochs: [0]
"""
GOOD_LAYER = BAD_LAYER.replace("layer9.0.conv1", "layer1.0.conv1")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_layers_counts_the_classes(capsys: pytest.CaptureFixture[str]) -> None:
    main(["layers", "resnet20", "--classes", "100"])
    rows, total = table(capsys.readouterr().out)
    assert rows[-1]["shape"] == "100x64"
    assert total == "total: 22 layers, 40,818,944 MACs, 276,656 conv+fc weights"


@pytest.mark.parametrize("model", ["nosuchmodel", "resnet57", "pkg.mod:"])
def test_layers_unknown_model_is_a_usage_error(capsys: pytest.CaptureFixture[str], model: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["layers", model])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"unknown model {model!r}" in err
    assert "prunebench layers: error:" in err


def test_a_factory_that_cannot_be_imported_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "no_such_package_xyz.models:build"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("prunebench: error: model 'no_such_package_xyz.models:build': cannot import")
    assert err.count("\n") == 1


def test_check_an_unknown_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.yaml", BAD_LAYER + "prunebench: {model: resnet20}\n")
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(path) in errors[0]
    assert "'layer9.0.conv1'" in errors[0]
    assert "resnet20 has no layer" in errors[0]
    assert "prunebench layers resnet20" in errors[0]


def test_check_reports_every_file_and_fails_if_any_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.yaml", BAD_LAYER + "prunebench: {model: resnet20}\n")
    good = write(tmp_path, "good.yaml", GOOD_LAYER + "prunebench: {model: resnet20}\n")
    assert main(["check", str(bad), str(good)]) == 1
    out, err = capsys.readouterr()
    assert out == f"ok: {good}: 1 pruner(s) on resnet20\n"
    assert err.count("error:") == 1
    assert str(bad) in err


def test_check_a_schedule_naming_no_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "anonymous.yaml", GOOD_LAYER)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: the schedule names no model")
    assert "--model resnet56" in err
    assert err.count("\n") == 1
    named = write(tmp_path, "resnet20.surgery.yaml", GOOD_LAYER)  # Distiller's files: the model's name first
    assert main(["check", str(named)]) == 1
    assert "`prunebench: {model: resnet20}` or pass --model resnet20" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "model", "code", "expected"),
    [
        (GOOD_LAYER, "resnet20", 0, "ok:"),  # --model supplies the missing model
        (GOOD_LAYER + "prunebench: {model: nosuchmodel}\n", "resnet56_cifar", 0, "on resnet56"),  # and overrides
        (BAD_LAYER, "resnet20", 1, "resnet20 has no layer 'layer9.0.conv1'"),
    ],
)
def test_check_with_model_option(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, model: str,
                                 code: int, expected: str) -> None:
    path = write(tmp_path, "schedule.yaml", text)
    assert main(["check", "--model", model, str(path)]) == code
    captured = capsys.readouterr()
    assert expected in (captured.out if code == 0 else captured.err)


def test_check_model_option_decides_the_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # layer3.8 exists in resnet56 only: the option, not the schedule's own model, is what the layers are checked on.
    path = write(tmp_path, "deep.yaml", BAD_LAYER.replace("layer9.0", "layer3.8") + "prunebench: {model: resnet56}\n")
    assert main(["check", str(path)]) == 0
    assert main(["check", "--model", "resnet20", str(path)]) == 1
    assert "resnet20 has no layer 'layer3.8.conv1'" in capsys.readouterr().err


def test_check_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.yaml"
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert str(path) in err
    assert err.count("\n") == 1


def test_no_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: prunebench" in capsys.readouterr().err
