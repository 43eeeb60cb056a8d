"""W&B sweep files as a source of cases: `method: grid` -> parametrised cases, `method: random` -> hypothesis.

A sweep's `parameters` are pruning settings of one model:

    method: random                       # grid | random | bayes (an Optuna study: search.py)
    metric: {name: latency_ms_rel, goal: minimize}   # random: guides hypothesis.target; bayes: a list is allowed
    run_cap: 12                          # random: examples drawn (--prunebench-examples overrides)
    parameters:
      model: {value: resnet20}
      epochs: {values: [0, 1]}
      sparsity.layer1.0: {min: 0.1, max: 0.7, distribution: q_uniform, q: 0.02}
      kind.layer1.0: {values: [filters, channels]}
      ranker.layer1.0: {value: l2}

Each `sparsity.<group>` is one pruner; a group is a conv, a residual block or a stage of the model
(`strategies.group_layers`). Every point becomes a Distiller document parsed like a schedule file, so the
downstream stages are shared with YAML schedules and hypothesis strategies.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import record
from .errors import PrunebenchWarning, SweepError, shown
from .schedule import finite_number, read_yaml
from .schedule.fields import FieldReader

if TYPE_CHECKING:
    from hypothesis import strategies as st

    from .schedule import Schedule

METHODS = ("grid", "random", "bayes")
TOP_LEVEL_KEYS = frozenset({"method", "parameters", "metric", "run_cap", "name", "description", "program",
                            "command", "project", "entity", "early_terminate", "sampler"})
# `sampler:` (an extension of W&B's format): which Optuna sampler a bayes sweep uses, and its options.
SAMPLER_OPTIONS: dict[str, frozenset[str]] = {
    "tpe": frozenset({"seed", "n_startup_trials", "multivariate", "constant_liar"}),
    "gp": frozenset({"seed", "n_startup_trials"}),
    "nsgaii": frozenset({"seed", "population_size", "mutation_prob", "crossover_prob"}),
    "random": frozenset({"seed"}),
}
HYPERBAND_KEYS = frozenset({"type", "min_iter", "max_iter", "eta", "s"})
# Figures known per retraining epoch, which early termination can judge a case on (record.FIELDS).
EPOCH_METRICS = record.names(per_epoch=True)
PARAMETER_KEYS = frozenset({"value", "values", "distribution", "min", "max", "q", "probabilities"})
DISTRIBUTIONS = ("constant", "categorical", "uniform", "int_uniform", "q_uniform", "log_uniform_values")
GLOBAL_PARAMETERS = ("model", "epochs", "lr", "precision", "calibration", "max_drop")
DEPLOYMENT_PARAMETERS = ("precision", "calibration", "max_drop")  # a case's `prunebench:` deployment keys
PER_GROUP = ("sparsity", "kind", "ranker")
KINDS = ("filters", "channels")
RANKERS = ("l1", "l2")
# Figures a metric can name: the numeric fields of a record (and of its W&B summary), record.FIELDS.
# latency_ms_rel (drift-corrected) is the one to rank cases on; latency_ms and the statistics drift between windows.
METRICS = record.names(sweep=True)
MAX_GRID_POINTS = 10_000
MISSING_HINT = "pass an existing W&B sweep file with --prunebench-sweep"


@dataclass(frozen=True)
class Parameter:
    """One sweep parameter: a distribution and its bounds, as W&B's sweep configuration defines them."""

    name: str
    distribution: str
    values: tuple[Any, ...] = ()  # constant: one value; categorical: the choices
    low: float = 0  # int for int_uniform
    high: float = 0
    q: float = 1.0
    probabilities: tuple[float, ...] = ()

    def grid_values(self) -> tuple[Any, ...] | None:
        """Every value a grid visits; None for a continuous distribution."""
        if self.distribution in ("constant", "categorical"):
            return self.values
        if self.distribution == "int_uniform":
            return tuple(range(int(self.low), int(self.high) + 1))
        if self.distribution == "q_uniform":  # W&B: round(uniform(min, max) / q) * q
            first, last = (math.floor(bound / self.q + 0.5 + 1e-9) for bound in (self.low, self.high))
            return tuple(_round(k * self.q) for k in range(first, last + 1))
        return None

    def strategy(self) -> st.SearchStrategy[Any]:
        from hypothesis import strategies as st

        if self.distribution == "constant":
            return st.just(self.values[0])
        if self.distribution == "categorical":
            return _weighted(self.values, self.probabilities) if self.probabilities else st.sampled_from(self.values)
        if self.distribution == "int_uniform":
            return st.integers(int(self.low), int(self.high))
        if self.distribution == "q_uniform":
            return st.sampled_from(self.grid_values() or ())
        if self.distribution == "log_uniform_values":
            low, high = math.log(self.low), math.log(self.high)
            return st.floats(low, high).map(lambda x: min(max(math.exp(x), self.low), self.high))
        return st.floats(self.low, self.high, allow_nan=False)


@dataclass(frozen=True)
class Hyperband:
    """W&B's `early_terminate: {type: hyperband, ...}`, in retraining epochs (Optuna's HyperbandPruner)."""

    min_iter: int
    max_iter: int | None  # None: the longest case's epochs (search.make_pruner)
    eta: int


@dataclass(frozen=True)
class Sweep:
    path: str
    method: str
    parameters: tuple[Parameter, ...]
    metric: str | None  # the first objective
    goal: str  # minimize | maximize
    run_cap: int | None
    objectives: tuple[tuple[str, str], ...] = ()  # (figure, goal) per objective; several: a list metric
    early_terminate: Hyperband | None = None
    sampler: str = "tpe"
    sampler_options: tuple[tuple[str, Any], ...] = ()
    name: str | None = None  # W&B's sweep name: the study's name when given

    @property
    def stem(self) -> str:
        return Path(self.path).stem

    def digest(self) -> bytes:
        """Distinguishes random sweeps in hypothesis' example database: same content, same digest."""
        content = json.dumps([self.method, [vars(p) for p in self.parameters], self.metric, self.goal],
                             default=str, sort_keys=True)
        return hashlib.sha256(content.encode()).digest()

    def groups(self) -> tuple[str, ...]:
        return tuple(p.name.split(".", 1)[1] for p in self.parameters if p.name.startswith("sparsity."))

    def grid(self) -> list[dict[str, Any]]:
        """Every point of a grid sweep, in the file's parameter order."""
        axes = [p.grid_values() or () for p in self.parameters]
        return [dict(zip((p.name for p in self.parameters), point, strict=True)) for point in itertools.product(*axes)]

    def points(self) -> st.SearchStrategy[dict[str, Any]]:
        from hypothesis import strategies as st

        return st.fixed_dictionaries({p.name: p.strategy() for p in self.parameters})


@dataclass(frozen=True)
class SweepPoint:
    """One case of a sweep: a grid point, or (random) the sweep itself, drawn from inside the test."""

    sweep: Sweep
    values: Mapping[str, Any] | None  # None: a random sweep's cases are drawn by hypothesis

    def case_id(self) -> str:
        """`<file stem>:<the values that vary across the grid>`; a hash when too long to read. Stable."""
        varying = {p.name for p in self.sweep.parameters if len(p.grid_values() or ()) > 1}
        if self.values is None or not varying:
            return self.sweep.stem
        text = ",".join(f"{k}={_text(v)}" for k, v in self.values.items() if k in varying)
        if len(text) > 100:
            text = "cfg-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        return f"{self.sweep.stem}:{text}"


# -- reading and validating -----------------------------------------------------------------------------------


def load_sweep(path: str | Path) -> Sweep:
    import warnings

    path = Path(path)
    duplicates: list[tuple[int, str]] = []
    sweep = parse_sweep(read_yaml(path, SweepError, MISSING_HINT, duplicates), str(path))
    for line, text in duplicates:  # read as W&B reads them (the later entry wins), and said
        warnings.warn_explicit(text, PrunebenchWarning, str(path), line)
    return sweep


def parse_sweep(document: Any, path: str) -> Sweep:
    if not isinstance(document, Mapping):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise SweepError(path, "", f"the file is {kind}; a W&B sweep is a mapping with `method:` and `parameters:`")
    unknown = sorted(set(map(str, document)) - TOP_LEVEL_KEYS)
    if unknown:
        hint = "; a Distiller schedule? pass it with --prunebench-schedules" if "pruners" in unknown else ""
        raise SweepError(path, unknown[0], f"unknown key; a sweep file has {', '.join(sorted(TOP_LEVEL_KEYS))}{hint}")
    reader = SweepReader(path)
    method = reader.method(document.get("method"))
    parameters = ParameterReader(path).parameters(document.get("parameters"))
    objectives = reader.objectives(document.get("metric"), method)
    metric, goal = objectives[0] if objectives else (None, "minimize")
    run_cap = document.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int) or run_cap < 1):
        raise SweepError(path, "run_cap", f"{shown(run_cap)}: use a whole number of cases, at least 1")
    if method == "bayes" and not objectives:
        raise SweepError(path, "metric", "bayes needs a metric to optimise, e.g. {name: latency_ms, goal: minimize}")
    sampler, options = reader.sampler(document.get("sampler"), method, len(objectives))
    name = document.get("name")
    sweep = Sweep(path, method, parameters, metric, goal, run_cap, objectives,
                  reader.early_terminate(document.get("early_terminate"), method, objectives, parameters),
                  sampler, options, name if isinstance(name, str) and name.strip() else None)
    if method == "grid":
        _check_grid(sweep)
    return sweep


class SweepReader(FieldReader):
    """The sweep file's top level: method, metric, sampler and early termination."""

    error = SweepError

    def method(self, method: Any) -> str:
        if method not in METHODS:
            raise self.fail("method", f"{shown(method)}: use grid (every combination), random (hypothesis "
                                      f"draws) or bayes (an Optuna sampler suggests)")
        return str(method)

    def objectives(self, metric: Any, method: str) -> tuple[tuple[str, str], ...]:
        """W&B's `metric: {name, goal}`, or (an extension of W&B's format) a list of them: several objectives."""
        if metric is None:
            return ()
        if isinstance(metric, list):
            if method != "bayes":
                raise self.fail("metric", "a list of metrics (several objectives) needs method: bayes")
            if not metric:
                raise self.fail("metric", "an empty list: give one {name: ..., goal: ...} per objective")
            found = tuple(self.one_metric(f"metric[{i}]", m, goal_required=True) for i, m in enumerate(metric))
            names = [name for name, _ in found]
            repeated = next((n for n in names if names.count(n) > 1), None)
            if repeated:
                raise self.fail("metric", f"{repeated} is listed twice")
            return found
        return (self.one_metric("metric", metric, goal_required=False),)

    def one_metric(self, where: str, metric: Any, goal_required: bool) -> tuple[str, str]:
        if not isinstance(metric, Mapping):
            raise self.fail(where, f"{shown(metric)}: use {{name: latency_ms_rel, goal: minimize}}")
        unknown = sorted(set(map(str, metric)) - {"name", "goal"})
        if unknown:  # W&B's `target` (stop the sweep once reached) and `impute*` have no counterpart here
            raise self.fail(f"{where}.{unknown[0]}", f"{shown(metric[unknown[0]])}: not supported; a metric has "
                                                      f"name and goal only")
        if goal_required and "goal" not in metric:
            raise self.fail(f"{where}.goal", "missing: each objective of a list says minimize or maximize")
        name, goal = metric.get("name"), metric.get("goal", "minimize")
        if name not in METRICS:
            raise self.fail(f"{where}.name", f"{shown(name)} is not a record figure; use one of "
                                             f"{', '.join(METRICS)}")
        if goal not in ("minimize", "maximize"):
            raise self.fail(f"{where}.goal", f"{shown(goal)}: use minimize or maximize")
        return str(name), str(goal)

    def sampler(self, spec: Any, method: str, objectives: int) -> tuple[str, tuple[tuple[str, Any], ...]]:
        """`sampler: {type: tpe | gp | nsgaii | random, seed: 0, ...}` (bayes only); default TPE (see the README)."""
        if spec is None:
            return "tpe", ()
        if method != "bayes":
            raise self.fail("sampler", f"the sampler chooses bayes cases; method {method} has none")
        if not isinstance(spec, Mapping):
            raise self.fail("sampler", f"{shown(spec)}: use {{type: tpe}} (tpe, gp, nsgaii or random)")
        kind = spec.get("type", "tpe")
        if kind not in SAMPLER_OPTIONS:
            raise self.fail("sampler.type", f"{shown(kind)}: use one of {', '.join(SAMPLER_OPTIONS)}")
        options = {str(k): v for k, v in spec.items() if k != "type"}
        unknown = sorted(set(options) - SAMPLER_OPTIONS[kind])
        if unknown:
            raise self.fail(f"sampler.{unknown[0]}", f"{shown(options[unknown[0]])}: not an option of the {kind} "
                                                     f"sampler; use {', '.join(sorted(SAMPLER_OPTIONS[kind]))}")
        for key, value in options.items():
            if key in ("multivariate", "constant_liar"):
                ok = isinstance(value, bool)
            elif key in ("mutation_prob", "crossover_prob"):
                ok = finite_number(value) and 0 <= value <= 1
            else:
                ok = _is_int(value) and value >= (2 if key == "population_size" else 0)
            if not ok:
                raise self.fail(f"sampler.{key}", f"{shown(value)} is not a valid {key}")
        return str(kind), tuple(sorted(options.items()))

    def early_terminate(self, spec: Any, method: str, objectives: tuple[tuple[str, str], ...],
                         parameters: tuple[Parameter, ...]) -> Hyperband | None:
        """W&B's `early_terminate: {type: hyperband, min_iter, max_iter, eta, s}`, in retraining epochs."""
        if spec is None:
            return None
        if not isinstance(spec, Mapping):
            raise self.fail("early_terminate", f"{shown(spec)}: use {{type: hyperband, min_iter: 1, eta: 3}}")
        if spec.get("type") != "hyperband":
            raise self.fail("early_terminate.type", f"{shown(spec.get('type'))}: the one type is hyperband")
        unknown = sorted(set(map(str, spec)) - HYPERBAND_KEYS)
        if unknown:
            raise self.fail(f"early_terminate.{unknown[0]}", f"unknown key; hyperband takes "
                                                              f"{', '.join(sorted(HYPERBAND_KEYS))}")
        for key in ("min_iter", "max_iter", "eta", "s"):
            value = spec.get(key)
            if value is not None and not (_is_int(value) and value >= (2 if key == "eta" else 1)):
                need = "a whole number, at least 2" if key == "eta" else "a whole number of epochs, at least 1"
                raise self.fail(f"early_terminate.{key}", f"{shown(value)}: {need}")
        eta, max_iter = int(spec.get("eta", 3)), spec.get("max_iter")
        if "s" in spec and "min_iter" not in spec:  # W&B: s brackets below max_iter
            if max_iter is None:
                raise self.fail("early_terminate.s", "s needs max_iter (the brackets are max_iter / eta^k)")
            min_iter = max(1, round(max_iter / eta ** int(spec["s"])))
        else:
            min_iter = int(spec.get("min_iter", 1))
        if max_iter is not None and max_iter <= min_iter:
            raise self.fail("early_terminate.max_iter", f"{max_iter}: must be above min_iter {min_iter}")
        if method != "bayes":
            raise self.fail("early_terminate", f"early termination stops bayes cases; method {method} runs every "
                                               f"case to the end")
        if len(objectives) > 1:
            raise self.fail("early_terminate", f"hyperband judges a case on one objective; the metric lists "
                                               f"{len(objectives)} (Optuna's pruners take one): use one metric, "
                                               f"{' or '.join(EPOCH_METRICS)}")
        if len(objectives) != 1 or objectives[0][0] not in EPOCH_METRICS:
            named = ", ".join(name for name, _ in objectives)
            raise self.fail("early_terminate", f"hyperband judges a case on one figure known after every "
                                               f"retraining epoch ({', '.join(EPOCH_METRICS)}); the metric is "
                                               f"{named}, known only after the whole case")
        epochs = next((p for p in parameters if p.name == "epochs"), None)
        if epochs is not None and max(epochs.values or epochs.grid_values() or (epochs.high,)) == 0:
            raise self.fail("early_terminate", "every case has 0 retraining epochs: nothing to stop early")
        return Hyperband(min_iter, None if max_iter is None else int(max_iter), eta)


def longest_epochs(sweep: Sweep, epochs_option: int | None) -> int:
    """The most retraining epochs a case of the sweep can have: --prunebench-epochs, else the largest value of the
    sweep's `epochs`, else the one-shot schedule's default (every pruner fires at epoch 0, then fine-tuning)."""
    from .case import DEFAULT_FINE_TUNE_EPOCHS

    if epochs_option is not None:
        return epochs_option
    epochs = next((p for p in sweep.parameters if p.name == "epochs"), None)
    if epochs is None:
        return 1 + DEFAULT_FINE_TUNE_EPOCHS
    return int(max(epochs.values or epochs.grid_values() or (epochs.high,)))


def early_terminate_problem(sweep: Sweep, epochs_option: int | None) -> str | None:
    """Why the sweep's early termination can stop no case, once the epochs are resolved; None when it can.
    Retraining reports the top1 of every epoch but the last, and hyperband judges a case first at min_iter."""
    terminate = sweep.early_terminate
    if terminate is None:
        return None
    if epochs_option == 0:
        return "--prunebench-epochs 0 retrains no case, so there is nothing to stop early; drop one of them"
    longest = longest_epochs(sweep, epochs_option)
    if terminate.min_iter >= longest:
        source = "--prunebench-epochs" if epochs_option is not None else "the sweep's epochs"
        return (f"min_iter {terminate.min_iter}: a case is first judged after epoch {terminate.min_iter}, but the "
                f"longest case retrains {longest} epoch(s) ({source}), so none can be stopped early; "
                f"use min_iter below {longest}")
    return None


class ParameterReader(FieldReader):
    """`parameters:`: each W&B parameter, its distribution and the values it may take."""

    error = SweepError

    def flatten(self, parameters: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
        """W&B nests parameters as `sparsity: {parameters: {layer1.0: {...}}}`; here that is `sparsity.layer1.0`."""
        for name, spec in parameters.items():
            full = f"{prefix}{name}"
            if not isinstance(spec, Mapping):
                raise self.fail(f"parameters.{full}", f"{shown(spec)}: a parameter is a mapping such as "
                                                      f"{{value: 0.5}}, {{values: [...]}} or {{min: .., max: ..}}")
            if "parameters" in spec:
                if not isinstance(spec["parameters"], Mapping) or set(spec) != {"parameters"}:
                    raise self.fail(f"parameters.{full}", "nested parameters: only `parameters:` inside")
                yield from self.flatten(spec["parameters"], f"{full}.")
            else:
                yield full, spec

    def parameters(self, parameters: Any) -> tuple[Parameter, ...]:
        if not isinstance(parameters, Mapping) or not parameters:
            raise self.fail("parameters", "missing or empty; give at least one sparsity.<group> parameter")
        result = tuple(self.parameter(str(name), spec) for name, spec in self.flatten(parameters))
        names = {p.name for p in result}
        groups = [n.split(".", 1)[1] for n in names if n.startswith("sparsity.")]
        if not groups:
            raise self.fail("parameters", "no sparsity.<group> parameter: name at least one conv, block or "
                                          "stage to prune, e.g. sparsity.layer1.0")
        for name in sorted(names):
            prefix, _, group = name.partition(".")
            if prefix in ("kind", "ranker") and group not in groups:
                raise self.fail(f"parameters.{name}", f"no sparsity.{group} to go with it")
        return result

    def parameter(self, name: str, spec: Mapping[str, Any]) -> Parameter:
        where = f"parameters.{name}"
        prefix, dot, group = name.partition(".")
        if not ((prefix in PER_GROUP and dot and group) or (name in GLOBAL_PARAMETERS)):
            raise self.fail(where, f"unknown parameter; use {', '.join(GLOBAL_PARAMETERS)} or "
                                   f"{', '.join(p + '.<group>' for p in PER_GROUP)}")
        unknown = sorted(set(map(str, spec)) - PARAMETER_KEYS)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"unknown key; use {', '.join(sorted(PARAMETER_KEYS))}")
        parameter = replace(self.distribution(where, spec), name=name)
        self.check_domain(where, prefix if dot else name, parameter)
        return parameter

    def distribution(self, where: str, spec: Mapping[str, Any]) -> Parameter:
        """W&B's rules: `value` is constant, `values` categorical, int min/max int_uniform, else uniform."""
        default = ("constant" if "value" in spec else "categorical" if "values" in spec
                   else "int_uniform" if all(_is_int(spec.get(k)) for k in ("min", "max")) else "uniform")
        distribution = spec.get("distribution", default)
        if distribution not in DISTRIBUTIONS:
            raise self.fail(f"{where}.distribution", f"{shown(distribution)} is not supported here; use one of "
                                                     f"{', '.join(DISTRIBUTIONS)}")
        if distribution == "constant":
            if "value" not in spec:
                raise self.fail(where, "constant needs `value:`")
            return Parameter("", "constant", (spec["value"],))
        if distribution == "categorical":
            return self.categorical(where, spec)
        if not ("min" in spec and "max" in spec):
            raise self.fail(where, f"{distribution} needs `min:` and `max:`")
        low, high = (self.number_at(f"{where}.{k}", spec[k]) for k in ("min", "max"))
        if not low <= high:
            raise self.fail(where, f"min {low} is above max {high}")
        q = self.number_at(f"{where}.q", spec.get("q", 1.0))
        if distribution == "q_uniform" and q <= 0:
            raise self.fail(f"{where}.q", f"{q}: the step must be above 0")
        if distribution == "log_uniform_values" and low <= 0:
            raise self.fail(f"{where}.min", f"{low}: log_uniform_values needs min above 0")
        if distribution == "int_uniform" and not (_is_int(spec["min"]) and _is_int(spec["max"])):
            raise self.fail(where, "int_uniform needs whole-number min and max")
        if distribution in ("int_uniform", "q_uniform"):  # their values are listed: a grid's axis, hypothesis' choices
            count = math.floor((high - low) / (q if distribution == "q_uniform" else 1)) + 1
            if count > MAX_GRID_POINTS:
                raise self.fail(where, f"{distribution} from {low:g} to {high:g} has {count:,} values (more than "
                                       f"{MAX_GRID_POINTS:,}); use a coarser step, a narrower range or uniform")
        if distribution == "int_uniform":
            return Parameter("", distribution, (), int(low), int(high))
        return Parameter("", distribution, (), low, high, q)

    def categorical(self, where: str, spec: Mapping[str, Any]) -> Parameter:
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise self.fail(f"{where}.values", f"{shown(values)}: give a non-empty list")
        probabilities = spec.get("probabilities")
        if probabilities is None:
            return Parameter("", "categorical", tuple(values))
        if (not isinstance(probabilities, list) or len(probabilities) != len(values)
                or not all(finite_number(p) and p >= 0 for p in probabilities)
                or not math.isclose(sum(probabilities), 1.0, abs_tol=1e-6)):
            raise self.fail(f"{where}.probabilities", "one non-negative number per value, summing to 1")
        return Parameter("", "categorical", tuple(values), probabilities=tuple(float(p) for p in probabilities))

    def check_domain(self, where: str, role: str, parameter: Parameter) -> None:
        """Every value a parameter can take must be a valid setting: sparsity in [0, 1), a known kind, ..."""
        values = parameter.values or parameter.grid_values() or (parameter.low, parameter.high)
        if role == "sparsity":
            bad = [v for v in values if not finite_number(v) or not 0 <= v < 1]
            hint = "sparsity is a fraction in [0, 1)"
        elif role == "kind":
            bad, hint = [v for v in values if v not in KINDS], f"use {' or '.join(KINDS)}"
        elif role == "ranker":
            bad, hint = [v for v in values if v not in RANKERS], f"use {' or '.join(RANKERS)}"
        elif role == "epochs":
            bad = [v for v in values if not _is_int(v) or v < 0]
            hint = "epochs is a whole number, 0 or more"
        elif role == "lr":
            bad = [v for v in values if not finite_number(v) or not 0 < v < math.inf]
            hint = "lr is a number above 0"
        elif role in DEPLOYMENT_PARAMETERS:
            bad, hint = _bad_deployment_values(role, values)
        else:
            self.check_model(where, parameter)
            bad, hint = [], ""
        if bad:
            raise self.fail(where, f"{shown(bad[0])} is out of range: {hint}")

    def check_model(self, where: str, parameter: Parameter) -> None:
        import argparse

        from .settings import model_name

        if parameter.distribution != "constant":
            raise self.fail(where, "the layer groups belong to one model: give it as {value: resnet56}")
        value = parameter.values[0]
        if not isinstance(value, str):
            raise self.fail(where, f"{shown(value)}: name a built-in model, e.g. {{value: resnet56}}")
        if ":" in value:  # a sweep file never makes pytest import a module: factories come from the command line
            raise self.fail(where, "sweep files name built-in models only (resnet20 ... resnet110, mobilenetv2, "
                                   "vgg16_bn); pass a user factory with --prunebench-model package.module:factory")
        try:
            model_name(value)
        except argparse.ArgumentTypeError as exc:
            raise self.fail(where, str(exc)) from None

    def number_at(self, where: str, value: Any) -> float:
        if not finite_number(value):
            raise self.fail(where, f"{shown(value)} is not a number")
        return float(value)


def _check_grid(sweep: Sweep) -> None:
    size = 1
    for parameter in sweep.parameters:
        values = parameter.grid_values()
        if values is None:
            raise SweepError(sweep.path, f"parameters.{parameter.name}",
                             f"grid needs discrete values; {parameter.distribution} is continuous (use values, "
                             f"int_uniform or q_uniform, or method: random)")
        size *= len(values)
    if size > MAX_GRID_POINTS:
        raise SweepError(sweep.path, "parameters", f"the grid has {size:,} points (more than {MAX_GRID_POINTS:,}); "
                                                   f"narrow it or use method: random with run_cap")


# -- points to schedules --------------------------------------------------------------------------------------


def model_of(sweep: Sweep, default: str) -> str:
    for parameter in sweep.parameters:
        if parameter.name == "model":
            return str(parameter.values[0])
    return default


def check_groups(sweep: Sweep, model: str) -> None:
    """Every group names a conv, block or stage of `model` for every kind it may take; no conv in two groups."""
    from .strategies import group_layers

    owner: dict[str, str] = {}
    for group in sweep.groups():
        kinds = next((p.values for p in sweep.parameters if p.name == f"kind.{group}"), ("filters",))
        for kind in kinds:
            try:
                layers = group_layers(model, group, kind)
            except ValueError as exc:
                raise SweepError(sweep.path, f"parameters.sparsity.{group}", str(exc)) from None
            for layer in layers:
                if owner.setdefault(layer, group) != group:
                    raise SweepError(sweep.path, f"parameters.sparsity.{group}",
                                     f"{layer} is also in sparsity.{owner[layer]}: a conv belongs to one group")


def point_schedule(sweep: Sweep, values: Mapping[str, Any], model: str) -> Schedule:
    """A grid point or drawn point as a schedule, named by a stable hash of what it does."""
    from .strategies import distiller_document, group_layers, pruner_entry, to_schedule

    pruners = {}
    for group in sweep.groups():
        kind = values.get(f"kind.{group}", "filters")
        ranker = values.get(f"ranker.{group}", "l1")
        pruners[group] = pruner_entry(kind, ranker, float(values[f"sparsity.{group}"]),
                                      group_layers(model, group, kind))
    section = {key: values[key] for key in ("epochs", "lr", *DEPLOYMENT_PARAMETERS) if key in values}
    return to_schedule(distiller_document(model, pruners, section))


def _bad_deployment_values(role: str, values: Sequence[Any]) -> tuple[list[Any], str]:
    """The values of a precision, calibration or max_drop parameter its option would refuse, and the option's hint."""
    import argparse

    from .settings import deployment_precision, max_drop, positive_int

    parse = {"precision": deployment_precision, "calibration": positive_int, "max_drop": max_drop}[role]
    bad, hint = [], ""
    for value in values:
        try:
            if isinstance(value, bool) or (role == "calibration" and not _is_int(value)):
                raise argparse.ArgumentTypeError(f"{shown(value)}: a whole number of training images, at least 1")
            parse(str(value))
        except argparse.ArgumentTypeError as exc:
            bad.append(value)
            hint = hint or str(exc)
    return bad, hint


# -- helpers --------------------------------------------------------------------------------------------------


def _weighted(values: Sequence[Any], probabilities: Sequence[float]) -> st.SearchStrategy[Any]:
    """W&B's categorical probabilities: a draw in [0, 1) against the cumulative weights (shrinks to the first)."""
    from hypothesis import strategies as st

    bounds = list(itertools.accumulate(probabilities))
    choices = [v for v, p in zip(values, probabilities, strict=True) if p > 0]
    edges = [b for b, p in zip(bounds, probabilities, strict=True) if p > 0]
    return st.integers(0, 999_999).map(lambda n: choices[min(sum(n / 1e6 >= e for e in edges), len(choices) - 1)])


def _round(value: float) -> float:
    return round(value, 10)


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
