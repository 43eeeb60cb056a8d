"""The schedule package's own promises: parsing imports no torch, its LR-scheduler arguments are torch's, and
what torch refuses is still found before anything trains."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_prunebench.cli import main
from pytest_prunebench.errors import ScheduleError
from pytest_prunebench.schedule import LR_SCHEDULERS, load_schedule
from pytest_prunebench.schedule.catalogue import LR_SCHEDULER_ARGUMENTS
from pytest_prunebench.schedule.lr_trial import check_lr_schedulers

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "schedules").glob("*.yaml"))
PARSE_EVERY_SHIPPED_SCHEDULE = """
import json, sys
import pytest_prunebench.schedule as schedule
parsed = [schedule.load_schedule(path) for path in sys.argv[1:]]
print(json.dumps({"parsed": len(parsed), "lr_schedulers": sum(len(s.lr_schedulers) for s in parsed),
                  "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
"""


def test_parsing_the_shipped_schedules_imports_no_torch() -> None:
    assert SHIPPED, "no schedules/*.yaml to parse"
    done = subprocess.run([sys.executable, "-c", PARSE_EVERY_SHIPPED_SCHEDULE, *map(str, SHIPPED)],
                          capture_output=True, text=True, check=True, cwd=REPO)
    result = json.loads(done.stdout)
    assert result["parsed"] == len(SHIPPED)
    assert result["lr_schedulers"] > 0  # the check means something: these schedules do use LR schedulers
    assert result["torch"] == []


def test_the_lr_scheduler_catalogue_is_torchs_signatures() -> None:
    import torch.optim.lr_scheduler

    assert set(LR_SCHEDULER_ARGUMENTS) == LR_SCHEDULERS
    for name, arguments in LR_SCHEDULER_ARGUMENTS.items():
        parameters = inspect.signature(getattr(torch.optim.lr_scheduler, name)).parameters
        accepted = {key: parameter.default is inspect.Parameter.empty for key, parameter in parameters.items()
                    if key not in {"self", "optimizer", "last_epoch", "verbose"}}
        assert arguments == accepted, name


UNUSED_BAD_LR = """\
pruners:
  head: {class: L1RankedStructureParameterPruner, group_type: Filters, desired_sparsity: 0.5,
         weights: [module.layer1.0.conv1.weight]}
lr_schedulers:
  fine: {class: ExponentialLR, gamma: 0.9}
  decay: {class: StepLR, gamma: 0.5, step_size: 0}
policies:
  - pruner: {instance_name: head}
    epochs: [0]
  - lr_scheduler: {instance_name: fine}
    starting_epoch: 0
"""


def test_what_torch_refuses_is_found_before_training_even_unused(tmp_path: Path) -> None:
    path = tmp_path / "decay.yaml"
    path.write_text(UNUSED_BAD_LR, encoding="utf-8")
    schedule = load_schedule(path)  # parsing does not step schedulers: torch judges them in the trial
    assert [w.split(": ")[1] for w in schedule.warnings] == ["lr_schedulers.decay"]
    with pytest.raises(ScheduleError) as raised:
        check_lr_schedulers(schedule)
    # the arguments as the file wrote them, in its order
    assert str(raised.value).startswith(f"{path}: lr_schedulers.decay: StepLR(gamma=0.5, step_size=0) is refused "
                                        f"by torch: ZeroDivisionError")


def test_prunebench_check_tries_the_lr_schedulers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "decay.yaml"
    path.write_text(UNUSED_BAD_LR, encoding="utf-8")
    assert main(["check", str(path), "--model", "resnet20"]) == 1
    assert f"error: {path}: lr_schedulers.decay: StepLR(gamma=0.5, step_size=0) is refused by torch" in \
        capsys.readouterr().err
