"""One case: schedule -> dense baseline -> prune + thin -> retrain -> ONNX -> device measurement -> result.

Usable without pytest: `CaseRunner(Settings()).run(load_schedule(path))`.

The package, one job per module: `runner` (CaseRunner: the public API, and the case as labelled phases),
`resolution` (model, data, epochs, layers checked, `round_to: auto`, the datasets), `deployment` (precision,
calibration, the deployed IR, the record's deployment fields), `measurement` (the device measurement, here or
through the broker), `dense` (the dense baseline: trained or cached, deployed, measured once per process, its
quality floor), `pruned` (prune, thin, retrain, export, or all of it from the artifact cache), `artifacts` (where
a case's files go), `outcome` (what a case produced, counted into its CaseResult; wall time per stage) and
`result` (CaseResult, the record's figures).
"""

from .artifacts import slug
from .dense import DENSE_TOP1_FLOORS, DenseBaseline, dense_floor, precision_gap, weak_baseline
from .deployment import deployment_record
from .resolution import DEFAULT_FINE_TUNE_EPOCHS, Progress
from .result import CaseResult
from .runner import CaseRunner

__all__ = ["DEFAULT_FINE_TUNE_EPOCHS", "DENSE_TOP1_FLOORS", "CaseResult", "CaseRunner", "DenseBaseline", "Progress",
           "dense_floor", "deployment_record", "precision_gap", "slug", "weak_baseline"]
