"""Sweeps searched through an Optuna study: `method: bayes`, and grid / random when a study URL is given.

One study holds every trial of a sweep, whichever process or host ran it. A process (an "agent") loops:
ask the study for a configuration, decide whether it may run it, run the case, tell the figures back.

**Admission** makes `run_cap` exact across processes. Storages number trials atomically; a trial is decided in
number order: it waits until every lower-numbered running trial is decided, then it is

- `duplicate` when an admitted trial has the same configuration (never measured twice),
- refused when `run_cap` admitted trials already exist (the process stops once they have all finished),
- else `admitted`: its case runs.

Its decision is the trial's system attribute `prunebench:slot`. A running trial beats a counter
(`prunebench:beat`) every HEARTBEAT_S seconds; a trial whose counter another agent sees unchanged for GRACE_S
seconds of that agent's own clock (no clock is compared across hosts) is `abandoned`: told FAIL, it no longer
counts, and its configuration can be run again. A process killed mid-case so never holds a slot for good.

Imports optuna only inside functions: the plugin loads this module lazily, when a search runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import record
from .errors import PrunebenchError, PrunebenchWarning, StudyError, fail_test_on_error

if TYPE_CHECKING:
    from .cases import CaseService
    from .sweep import Parameter, Sweep

SLOT, BEAT, RECORD = "prunebench:slot", "prunebench:beat", "prunebench:record"
SWEEP_ATTR = "prunebench:sweep"  # the study's search space and objectives, as the first agent declared them
ADMITTED, DUPLICATE, OVER_CAP, ABANDONED, ERROR = "admitted", "duplicate", "over_cap", "abandoned", "error"
HEARTBEAT_S = float(os.environ.get("PRUNEBENCH_STUDY_HEARTBEAT", "15"))
GRACE_S = 20 * HEARTBEAT_S  # a running trial whose beat stood still this long was left by a dead process
POLL_S = 0.2
DEFAULT_RUN_CAP = 20  # a bayes sweep without run_cap (W&B's would run until stopped)
MAX_DUPLICATES = 50  # consecutive suggestions of measured configurations before an agent gives up
DEFAULT_JOURNAL = Path(".prunebench") / "optuna.journal"
SQL_SCHEMES = ("sqlite", "postgresql", "mysql")
REDIS_SCHEMES = ("redis", "rediss")
# The record figure each objective is told from: the first one the record has. A latency objective must be the
# drift-corrected per-case latency where records carry one, never one window's absolute median: an objective named
# after a figure another field replaces (record.FIELDS) is told from that field first.
OBJECTIVE_FIELDS: dict[str, tuple[str, ...]] = {figure.replaces: (figure.name, figure.replaces)
                                                for figure in record.FIELDS if figure.replaces}



# -- storage ----------------------------------------------------------------------------------------------------


def redact(url: str) -> str:
    """The URL without its password, for every message."""
    from .broker import redact as redact_url

    return redact_url(url)


def study_url(text: str) -> str:
    """--prunebench-study: a journal file path, redis:// or rediss://, sqlite:///, postgresql:// or mysql://."""
    text = text.strip()
    if "://" not in text:
        if not text:
            raise ValueError("an empty study URL; give a file path, redis://host:port/db or sqlite:///file.db")
        return text
    scheme = urlsplit(text).scheme.split("+", 1)[0].lower()
    if scheme not in REDIS_SCHEMES + SQL_SCHEMES:
        raise ValueError(f"{redact(text)}: {scheme}:// is not a study storage; use a journal file path, "
                         f"redis://[:password@]host:port/db, sqlite:///file.db or postgresql://user@host/db")
    return text


def open_storage(url: str | None, root: Path) -> Any:
    """An Optuna storage: a journal file (default, under `.prunebench/`), a journal on Redis, or an RDB."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url is None or "://" not in url:
        path = Path(url).expanduser() if url else root / DEFAULT_JOURNAL
        path = path if path.is_absolute() else root / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a"):
                pass
        except OSError as exc:
            raise StudyError(f"--prunebench-study {path}: cannot write the journal file "
                             f"({exc.strerror or exc})") from None
        return JournalStorage(JournalFileBackend(str(path)))
    shown = redact(url)
    scheme = urlsplit(url).scheme.split("+", 1)[0].lower()
    if scheme in REDIS_SCHEMES:
        from .broker import connect

        try:
            connect(url).close()
        except PrunebenchError as exc:
            raise StudyError(f"--prunebench-study: {str(exc).replace('the broker', 'the study storage')}") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return JournalStorage(JournalRedisBackend(url))
    try:
        return _rdb(url, None if scheme == "sqlite" else {"pool_pre_ping": True})
    except ModuleNotFoundError as exc:
        raise StudyError(f"--prunebench-study {shown}: the database driver {exc.name} is not installed "
                         f"(pip install it, e.g. psycopg2-binary for postgresql)") from None
    except Exception as exc:  # sqlalchemy's errors: unreachable host, refused login, unwritable file
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        if urlsplit(url).password:
            reason = reason.replace(urlsplit(url).password or "", "***")
        raise StudyError(f"--prunebench-study {shown}: cannot open the database ({reason})") from None


# What the loser of the schema-creation race reads: sqlite, postgresql and mysql spellings.
SCHEMA_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key", "Duplicate entry")


def _rdb(url: str, engine_kwargs: dict[str, Any] | None) -> Any:
    """RDBStorage; agents starting together race to create its tables and to stamp its schema version (the
    losers see a table appear or a duplicate version row): retried, as by then the winner has created them."""
    from optuna.storages import RDBStorage

    attempts = 8
    for attempt in range(attempts):
        try:
            return RDBStorage(url, engine_kwargs=engine_kwargs)
        except Exception as exc:
            if not any(marker in str(exc) for marker in SCHEMA_RACE) or attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


# -- the sweep as an Optuna search space ------------------------------------------------------------------------


def distribution(parameter: Parameter) -> Any:
    """W&B's distributions one to one as Optuna's: constant and categorical as categorical, int_uniform as
    int, uniform as float, q_uniform as float on its multiples of q, log_uniform_values as log float."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if parameter.distribution in ("constant", "categorical"):
        return CategoricalDistribution(list(parameter.values))
    if parameter.distribution == "int_uniform":
        return IntDistribution(int(parameter.low), int(parameter.high))
    if parameter.distribution == "q_uniform":
        values = parameter.grid_values() or (parameter.low,)
        return FloatDistribution(values[0], values[-1], step=parameter.q) if len(values) > 1 else \
            CategoricalDistribution([values[0]])
    return FloatDistribution(parameter.low, parameter.high, log=parameter.distribution == "log_uniform_values")


def search_space(sweep: Sweep) -> dict[str, Any]:
    return {p.name: distribution(p) for p in sweep.parameters}


def draw(parameter: Parameter, rng: random.Random) -> Any:
    """One value as W&B's random search draws it (categorical probabilities included)."""
    if parameter.distribution == "constant":
        return parameter.values[0]
    if parameter.distribution == "categorical":
        return rng.choices(parameter.values, weights=parameter.probabilities or None)[0]
    if parameter.distribution == "int_uniform":
        return rng.randint(int(parameter.low), int(parameter.high))
    if parameter.distribution == "q_uniform":
        return rng.choice(parameter.grid_values() or (parameter.low,))
    if parameter.distribution == "log_uniform_values":
        return min(max(math.exp(rng.uniform(math.log(parameter.low), math.log(parameter.high))), parameter.low),
                   parameter.high)
    return rng.uniform(parameter.low, parameter.high)


def budget(sweep: Sweep, examples: int | None) -> int:
    """The study's run_cap: a grid's points (or its run_cap), else --prunebench-examples, run_cap, or 20."""
    if sweep.method == "grid":
        return sweep.run_cap or len(sweep.grid())
    return examples or sweep.run_cap or DEFAULT_RUN_CAP


def space_size(sweep: Sweep) -> int | None:
    """How many distinct configurations the sweep has; None when one of its parameters is continuous."""
    size = 1
    for parameter in sweep.parameters:
        values = parameter.grid_values()
        if values is None:
            return None
        size *= len(values)
    return size


def declaration(sweep: Sweep, context: Mapping[str, Any]) -> dict[str, Any]:
    """What a study's trials mean: the search space, the objectives, early termination, and the settings that
    change every figure (model, data, device, epochs). Two sweeps with the same declaration share a study."""
    from optuna.distributions import distribution_to_json

    terminate = sweep.early_terminate
    return {"method": sweep.method, "objectives": [list(o) for o in sweep.objectives],
            "space": {name: json.loads(distribution_to_json(d)) for name, d in search_space(sweep).items()},
            "early_terminate": None if terminate is None else vars(terminate), "context": dict(context)}


def study_name(sweep: Sweep, context: Mapping[str, Any]) -> str:
    """The sweep's `name:` if it has one, else its file stem and a digest of its declaration (so a rerun of the
    same file continues its study, and an edited file starts a new one)."""
    if sweep.name:
        return sweep.name
    digest = hashlib.sha256(json.dumps(declaration(sweep, context), sort_keys=True).encode()).hexdigest()
    return f"{sweep.stem}-{digest[:12]}"


def make_sampler(sweep: Sweep, cap: int) -> Any:
    """bayes: TPE by default (multivariate, constant liar: concurrent agents are steered away from each other's
    running trials); `sampler: {type: gp | nsgaii | random}` picks another. grid/random: the agent chooses."""
    import optuna

    options = dict(sweep.sampler_options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if sweep.method != "bayes":
            return given_sampler()
        if sweep.sampler == "random":
            return optuna.samplers.RandomSampler(**options)
        if sweep.sampler == "gp":
            options.setdefault("n_startup_trials", _startup(cap))
            return optuna.samplers.GPSampler(**options)
        if sweep.sampler == "nsgaii":
            options.setdefault("population_size", max(4, min(50, cap // 4)))
            return optuna.samplers.NSGAIISampler(**options)
        options.setdefault("n_startup_trials", _startup(cap))
        options.setdefault("multivariate", True)
        options.setdefault("constant_liar", True)
        return optuna.samplers.TPESampler(**options)


def _startup(cap: int) -> int:
    """Random trials before the model takes over: Optuna's 10, fewer for a small budget (a quarter of it)."""
    return max(2, min(10, cap // 4))


def make_pruner(sweep: Sweep, epochs_option: int | None = None) -> Any:
    """Optuna's HyperbandPruner on retraining epochs. Its resource runs to max_iter, else to the longest case's
    epochs, known before any case runs. (Optuna's "auto" would wait for a first completed trial: until then no
    case could be stopped, the first wave of agents' trials would never be ranked, and a sweep whose `epochs`
    vary would size its brackets by whichever case completed first.)"""
    import optuna

    from .sweep import longest_epochs

    terminate = sweep.early_terminate
    if terminate is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.HyperbandPruner(min_resource=terminate.min_iter,
                                          max_resource=terminate.max_iter or longest_epochs(sweep, epochs_option),
                                          reduction_factor=terminate.eta)


def hyperband_brackets(min_iter: int, max_resource: int, eta: int) -> list[tuple[int, float]]:
    """Optuna's HyperbandPruner brackets as (the epoch after which it first judges a case, its share of the
    trials), by Optuna's formulas: floor(log_eta(max / min)) + 1 brackets, bracket k's first rung at
    min_iter * eta^k, trials spread by ceil(n * eta^(n-1-k) / (n-k)). A trial's bracket is a hash of the study
    name and its number."""
    count = math.floor(math.log(max_resource / min_iter, eta)) + 1
    budgets = [math.ceil(count * eta ** (count - 1 - k) / (count - k)) for k in range(count)]
    return [(min_iter * eta ** k, budget / sum(budgets)) for k, budget in enumerate(budgets)]


def hyperband_line(sweep: Sweep, epochs_option: int | None) -> str:
    """What the pruner will do, in epochs: W&B's hyperband judges every run at every band; Optuna's spreads the
    trials over brackets, and the cases of a bracket first judged after the last epoch always run to the end."""
    from .sweep import longest_epochs

    terminate = sweep.early_terminate
    assert terminate is not None
    longest = longest_epochs(sweep, epochs_option)
    brackets = hyperband_brackets(terminate.min_iter, terminate.max_iter or longest, terminate.eta)
    parts = [f"{share:.0%} after epoch {first}" + (" (the last: these run to the end)"
                                                   if first >= longest else "") for first, share in brackets]
    return (f"hyperband (min_iter {terminate.min_iter}, eta {terminate.eta}, {longest} epoch(s)): "
            f"{len(brackets)} bracket(s); cases are first judged " + ", ".join(parts))


def given_sampler() -> Any:
    """A sampler that suggests the values the agent chose (a grid point, a W&B-style random draw): set `.values`
    before each ask."""
    from optuna.samplers import BaseSampler

    class Given(BaseSampler):
        prunebench_given = True

        def __init__(self) -> None:
            self.values: dict[str, Any] = {}

        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            return {}

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> dict[str, Any]:
            return {}

        def sample_independent(self, study: Any, trial: Any, name: str, param_distribution: Any) -> Any:
            return self.values[name]

    return Given()


# -- opening a study --------------------------------------------------------------------------------------------


@dataclass
class Study:
    """An open study and what this sweep declares of it."""

    study: Any  # optuna.Study
    name: str
    shown_url: str  # the storage, password hidden
    sweep: Sweep
    cap: int
    space: dict[str, Any]

    @property
    def multi(self) -> bool:
        return len(self.sweep.objectives) > 1


def open_study(sweep: Sweep, url: str | None, root: Path, context: Mapping[str, Any], cap: int) -> Study:
    """Create the sweep's study or continue it; a stored declaration that differs from the file's is an error."""
    import optuna

    storage = open_storage(url, root)
    shown = redact(url) if url else str(root / DEFAULT_JOURNAL)
    name = study_name(sweep, context)
    declared = declaration(sweep, context)
    directions: list[Any] = [goal for _, goal in sweep.objectives] or ["minimize"]
    sampler, pruner = make_sampler(sweep, cap), make_pruner(sweep, context.get("epochs"))
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler,
                                    pruner=pruner, load_if_exists=True)
    except ValueError as exc:  # an existing study of that name with other directions
        raise StudyError(f"{sweep.path}: study {name} in {shown}: {exc}; give the sweep another `name:`") from None
    stored = study.user_attrs.get(SWEEP_ATTR)
    if stored is None:
        study.set_user_attr(SWEEP_ATTR, declared)
    elif stored != declared:
        raise StudyError(f"{sweep.path}: study {name} in {shown} was declared with {_difference(stored, declared)}; "
                         f"give the sweep another `name:` to start a new study")
    return Study(study, name, shown, sweep, cap, search_space(sweep))


def _difference(stored: Mapping[str, Any], declared: Mapping[str, Any]) -> str:
    """The first thing that differs, as `key: stored value` against the file's."""
    for key in ("method", "objectives", "early_terminate", "context"):
        if stored.get(key) != declared.get(key):
            return f"{key} {json.dumps(stored.get(key))}, the file says {json.dumps(declared.get(key))}"
    old, new = stored.get("space", {}), declared.get("space", {})
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            return (f"parameter {name} {json.dumps(old.get(name)) if name in old else '(absent)'}, the file says "
                    f"{json.dumps(new.get(name)) if name in new else '(absent)'}")
    return "another search space"


# -- admission --------------------------------------------------------------------------------------------------


def plain_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's values as a case uses and records them: Optuna's stepped floats are low + k * step
    (0.30000000000000004); rounded to 10 places they read as the sweep's multiples of q (0.3)."""
    return {k: round(v, 10) if isinstance(v, float) else v for k, v in params.items()}


def config_key(params: Mapping[str, Any]) -> str:
    return json.dumps({k: round(v, 9) if isinstance(v, float) else v for k, v in params.items()}, sort_keys=True)


@dataclass(frozen=True)
class TrialView:
    """What admission reads of a trial (a FrozenTrial, or a plain one in unit tests)."""

    number: int
    running: bool
    finished: bool
    slot: str | None
    params: Mapping[str, Any]
    beat: Any = None


def view(trial: Any) -> TrialView:
    from optuna.trial import TrialState

    return TrialView(trial.number, trial.state == TrialState.RUNNING, trial.state.is_finished(),
                     trial.system_attrs.get(SLOT), trial.params, trial.system_attrs.get(BEAT))


def decide(mine: TrialView, trials: Sequence[TrialView], cap: int) -> str | None:
    """The decision for trial `mine` given every trial of the study; None while a lower-numbered running trial is
    undecided, or while `cap` are admitted and some still run (one may yet be abandoned)."""
    lower = [t for t in trials if t.number < mine.number]
    if any(t.running and t.slot is None for t in lower):
        return None
    admitted = [t for t in lower if t.slot == ADMITTED]
    if any(config_key(t.params) == config_key(mine.params) for t in admitted):
        return DUPLICATE
    if len(admitted) >= cap:
        return OVER_CAP if all(t.finished for t in admitted) else None
    return ADMITTED


def counted(trials: Sequence[TrialView]) -> list[TrialView]:
    return [t for t in trials if t.slot == ADMITTED]


class StaleWatch:
    """Trials whose beat stands still for `grace` seconds of this process's clock were left by a dead process."""

    def __init__(self, grace: float = GRACE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self.clock = clock
        self._seen: dict[int, tuple[Any, float]] = {}

    def stale(self, trials: Sequence[TrialView], own: set[int]) -> list[int]:
        now, found = self.clock(), []
        for trial in trials:
            if not trial.running or trial.number in own:
                self._seen.pop(trial.number, None)
                continue
            beat, since = self._seen.get(trial.number, (None, None))
            if since is None or beat != trial.beat:
                self._seen[trial.number] = (trial.beat, now)
            elif now - since > self.grace:
                found.append(trial.number)
        return found


class _Heartbeat:
    def __init__(self, storage: Any, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prunebench-study-beat", daemon=True)
        self._count = 0

    def __enter__(self) -> _Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        self._count += 1
        try:
            self._storage.set_trial_system_attr(self._trial_id, BEAT, self._count)
        except Exception:  # the trial finished (told, or abandoned by another agent): nothing left to keep alive
            self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._beat()


# -- the agent loop ---------------------------------------------------------------------------------------------


@dataclass
class Slot:
    """An admitted trial: the configuration to run, and how to tell its outcome."""

    number: int
    values: dict[str, Any]
    trial: Any  # optuna.Trial
    study: Study
    pruning: bool

    def on_epoch(self, epoch: int, top1: float) -> bool:
        """After retraining epoch `epoch` (0-based): report its top1; True when the pruner stops the case."""
        if not self.pruning:
            return False
        self.trial.report(top1, epoch + 1)
        return bool(self.trial.should_prune())


@dataclass
class Agent:
    """One process's share of a study: yields admitted trials until the study's run_cap is spent."""

    handle: Study
    progress: Callable[[str], None] = print
    seed: int | None = None
    watch: StaleWatch = field(default_factory=StaleWatch)
    ran: int = 0
    duplicates: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._own: set[int] = set()

    @property
    def study(self) -> Any:
        return self.handle.study

    def views(self) -> list[TrialView]:
        trials = self.study._storage.get_all_trials(self.study._study_id, deepcopy=False)
        views = [view(t) for t in trials]
        by_number = {t.number: t for t in trials}
        stale = self.watch.stale(views, self._own)
        for number in stale:
            self._abandon(by_number[number])
        if stale:
            return [view(t) for t in self.study._storage.get_all_trials(self.study._study_id, deepcopy=False)]
        return views

    def _abandon(self, trial: Any) -> None:
        from optuna.trial import TrialState

        storage = self.study._storage
        try:
            storage.set_trial_system_attr(trial._trial_id, SLOT, ABANDONED)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except Exception:  # it finished meanwhile: its owner was alive after all
            return
        self.progress(f"study {self.handle.name}: trial {trial.number} had no heartbeat for {self.watch.grace:g} s "
                      f"(its process died?); given up, its slot is free")

    def trials(self) -> Generator[Slot, None, None]:
        size = space_size(self.handle.sweep)
        while True:
            views = self.views()
            done = counted(views)
            if len(done) >= self.handle.cap and all(t.finished for t in done):
                return
            if size is not None and len({config_key(t.params) for t in done}) >= size:
                self.progress(f"study {self.handle.name}: all {size} configuration(s) of the sweep are measured")
                return
            chosen = self._choose(views)
            if chosen is None:
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask(self.handle.space)
            self._own.add(trial.number)
            with _Heartbeat(self.study._storage, trial._trial_id):
                decision = self._decide(trial)
                if decision == ADMITTED:
                    self.duplicates = 0
                    self.ran += 1
                    yield Slot(trial.number, plain_values(trial.params), trial, self.handle,
                               self.handle.sweep.early_terminate is not None)
                    continue
            if decision == DUPLICATE:
                self.duplicates += 1
                if self.duplicates >= MAX_DUPLICATES:
                    self.progress(f"study {self.handle.name}: the sampler suggested measured configurations "
                                  f"{MAX_DUPLICATES} times in a row; stopping")
                    return
                continue
            return  # over the cap: every admitted trial has finished

    def _choose(self, views: Sequence[TrialView]) -> bool | None:
        """grid / random: the values the next trial takes (set on the _Given sampler); bayes: the sampler's."""
        sampler = self.study.sampler
        if not getattr(sampler, "prunebench_given", False):
            return True
        taken = {config_key(t.params) for t in views if t.slot == ADMITTED or (t.slot is None and t.running)}
        sweep = self.handle.sweep
        if sweep.method == "grid":
            free = [p for p in sweep.grid() if config_key(p) not in taken]
            if not free:
                return None
            sampler.values = free[0]
            return True
        for _ in range(1000):
            values = {p.name: draw(p, self._rng) for p in sweep.parameters}
            if config_key(values) not in taken:
                sampler.values = values
                return True
        return None

    def _decide(self, trial: Any) -> str:
        from optuna.trial import TrialState

        storage = self.study._storage
        while True:
            views = self.views()
            mine = next(t for t in views if t.number == trial.number)
            if mine.slot == ABANDONED:
                return ABANDONED
            decision = decide(mine, views, self.handle.cap)
            if decision is not None:
                break
            time.sleep(POLL_S)
        storage.set_trial_system_attr(trial._trial_id, SLOT, decision)
        if decision != ADMITTED:
            original = next((t for t in self.study.get_trials(deepcopy=False)
                             if t.number != trial.number and t.system_attrs.get(SLOT) == ADMITTED
                             and config_key(t.params) == config_key(trial.params)), None)
            if decision == DUPLICATE and original is not None and original.state == TrialState.COMPLETE:
                self.study.tell(trial, original.values)  # the sampler learns the figure it asked for again
            else:
                self.study.tell(trial, state=TrialState.FAIL)
        return decision

    def tell(self, slot: Slot, record_name: str, values: list[float] | None, stopped: bool) -> None:
        """The case's outcome: its objectives, or PRUNED when early termination stopped it."""
        from optuna.trial import TrialState

        try:
            slot.trial.set_user_attr(RECORD, record_name)
            if stopped:
                self.study.tell(slot.trial, state=TrialState.PRUNED)
            elif values is None:
                self.study.tell(slot.trial, state=TrialState.FAIL)
            else:
                self.study.tell(slot.trial, values)
        except Exception as exc:  # abandoned by another agent while this process was paused
            warnings.warn(PrunebenchWarning(f"study {self.handle.name}: trial {slot.number} ({record_name}) could "
                                            f"not be told ({type(exc).__name__}: {exc}); its record is kept"),
                          stacklevel=2)

    def error(self, slot: Slot) -> None:
        """The case raised: its slot is freed (not counted), the trial told FAIL."""
        from optuna.trial import TrialState

        try:
            self.study._storage.set_trial_system_attr(slot.trial._trial_id, SLOT, ERROR)
            self.study.tell(slot.trial, state=TrialState.FAIL)
        except Exception:
            pass


def objective_values(info: Mapping[str, Any], objectives: Sequence[tuple[str, str]]) -> dict[str, float] | None:
    """Each objective's figure from a record (OBJECTIVE_FIELDS), or None when one is missing or not finite."""
    from .tracking import run_summary

    summary = {**run_summary(info, ()), **info}
    values = {}
    for name, _ in objectives:
        field_name = next((f for f in OBJECTIVE_FIELDS.get(name, (name,)) if summary.get(f) is not None), name)
        value = summary.get(field_name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return None
        values[name] = float(value)
    return values


# -- analysis: Pareto front and parameter importance ----------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One measured configuration of a study: its record's name, parameters and objective values."""

    name: str
    params: dict[str, Any]
    values: dict[str, float]


def pareto_front(points: Sequence[Point], objectives: Sequence[tuple[str, str]]) -> list[Point]:
    """The points no other point dominates (at least as good on every objective, better on one)."""
    signs = [1.0 if goal == "minimize" else -1.0 for _, goal in objectives]

    def cost(point: Point) -> tuple[float, ...]:
        return tuple(s * point.values[n] for s, (n, _) in zip(signs, objectives, strict=True))

    costs = [cost(p) for p in points]
    return [p for p, c in zip(points, costs, strict=True)
            if not any(all(o <= m for o, m in zip(other, c, strict=True)) and other != c for other in costs)]


def importance(points: Sequence[Point], objective: str) -> dict[str, float]:
    """Each parameter's fANOVA importance for one objective (Optuna's evaluator, on the points given); parameters
    that never vary are left out. Empty with fewer than 3 points."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    names = sorted({k for p in points for k in p.params if len({json.dumps(q.params.get(k)) for q in points}) > 1})
    usable = [p for p in points if all(k in p.params for k in names)]
    if len(usable) < 3 or not names:
        return {}
    distributions: dict[str, Any] = {}
    for name in names:
        values = [p.params[name] for p in usable]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        distributions[name] = (FloatDistribution(float(min(values)), float(max(values))) if numeric
                               else CategoricalDistribution(sorted(set(map(str, values)))))
    study = optuna.create_study()
    study.add_trials([optuna.trial.create_trial(
        params={n: (float(p.params[n]) if isinstance(distributions[n], FloatDistribution) else str(p.params[n]))
                for n in names},
        distributions=distributions, value=p.values[objective]) for p in usable])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))


def correlation(points: Sequence[Point], parameter: str, objective: str) -> float | None:
    from .report import pearson

    pairs = [(p.params.get(parameter), p.values[objective]) for p in points]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x, _ in pairs):
        return None
    return pearson([float(x) for x, _ in pairs], [y for _, y in pairs])  # type: ignore[arg-type]


def study_lines(title: str, points: Sequence[Point], objectives: Sequence[tuple[str, str]]) -> list[str]:
    """The session summary's and the report's text of one study: its front, then importance per objective."""
    from .report import text_table

    lines = [f"{title}: {len(points)} measured case(s); objectives "
             + ", ".join(f"{n} ({g})" for n, g in objectives)]
    if len(objectives) > 1:
        front = sorted(pareto_front(points, objectives), key=lambda p: tuple(p.values.values()))
        lines.append(f"Pareto front ({len(front)} case(s)):")
        lines += text_table(("case", *[n for n, _ in objectives]),
                            [(p.name, *[f"{p.values[n]:.4g}" for n, _ in objectives]) for p in front])
    for name, _ in objectives:
        ranked = importance(points, name)
        if not ranked:
            lines.append(f"importance for {name}: fewer than 3 cases, or no parameter varies")
            continue
        lines.append(f"parameter importance for {name} (fANOVA) and correlation (Pearson r):")
        rows = []
        for parameter, share in ranked.items():
            r = correlation(points, parameter, name)
            rows.append((parameter, f"{share:.3f}", "–" if r is None else f"{r:+.3f}"))
        lines += text_table(("parameter", "importance", "r"), rows)
    return lines


def study_points(study: Any) -> list[Point]:
    """The counted, completed trials of a study (every process's), as points."""
    from optuna.trial import TrialState

    objectives = study.user_attrs.get(SWEEP_ATTR, {}).get("objectives") or [["value", "minimize"]]
    points = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.system_attrs.get(SLOT) == ADMITTED and trial.values is not None:
            name = trial.user_attrs.get(RECORD, f"trial {trial.number}")
            points.append(Point(name, dict(trial.params),
                                {n: float(v) for (n, _), v in zip(objectives, trial.values, strict=True)}))
    return points


Studied = dict[str, tuple[list[Point], list[tuple[str, str]]]]


def record_points(infos: Sequence[tuple[str, Mapping[str, Any]]]) -> Studied:
    """Records of searched sweeps grouped by study: (points, objectives). Early-terminated cases are left out."""
    found: Studied = {}
    for name, info in infos:
        study, objectives = info.get("study"), info.get("objectives")
        if not isinstance(study, str) or not isinstance(objectives, dict) or info.get("early_terminated"):
            continue
        values = {n: info.get(f"objective.{n}") for n in objectives}
        if not all(isinstance(v, int | float) for v in values.values()):
            continue
        params = info.get("trial_params") if isinstance(info.get("trial_params"), dict) else {}
        points, _ = found.setdefault(study, ([], list(objectives.items())))
        points.append(Point(name, dict(params), {n: float(v) for n, v in values.items()}))  # type: ignore[arg-type]
    return found


def summary_lines(url: str | None, root: Path, name: str) -> list[str]:
    """The session summary of one study: front and importance over all its counted trials, or why not."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url, root))
    except (PrunebenchError, KeyError) as exc:
        return [f"study {name}: cannot be read back ({exc})"]
    objectives = [tuple(o) for o in study.user_attrs.get(SWEEP_ATTR, {}).get("objectives", [])]
    points = study_points(study)
    shown = redact(url) if url else str(root / DEFAULT_JOURNAL)
    return study_lines(f"study {name} in {shown}", points, objectives)


# -- a searched sweep as one pytest test ----------------------------------------------------------------------


@dataclass
class CaseTrial:
    """What the case service (cases.py) needs of a trial: the early-termination callback and the record's labels."""

    slot: Slot

    def on_epoch(self, epoch: int, top1: float) -> bool:
        return self.slot.on_epoch(epoch, top1)

    def labels(self, result: Any) -> dict[str, Any]:
        sweep = self.slot.study.sweep
        labels: dict[str, Any] = {"study": self.slot.study.name, "trial": self.slot.number,
                                  "objectives": dict(sweep.objectives), "trial_params": dict(self.slot.values)}
        values = objective_values(result.extra_info(), sweep.objectives) or {}
        labels.update({f"objective.{name}": value for name, value in values.items()})
        return labels


def run_search(cases: CaseService, node: Any, sweep: Sweep, model: str, on_collapse: str) -> list[Any]:
    """The searched sweep's test: this process's agent runs cases until the study's run_cap is spent."""
    import pytest

    from .cases import failure_message
    from .sweep import point_schedule

    settings = cases.settings
    cap = budget(sweep, settings.examples)
    context = {"model": model, "dataset": settings.data.label if settings.data else "digits",
               "device": settings.device, "epochs": settings.epochs}
    handle = fail_test_on_error(lambda: open_study(sweep, settings.study, settings.root, context, cap))
    agent = Agent(handle, cases.progress)
    cases.progress(f"{node.name}: study {handle.name} in {handle.shown_url} (run_cap {cap}, "
                   f"{sweep.sampler if sweep.method == 'bayes' else sweep.method} sampler)")
    if sweep.early_terminate is not None:
        cases.progress(f"{node.name}: {hyperband_line(sweep, settings.epochs)}")
    results, records, failures = [], [], []
    trials = agent.trials()
    try:
        for slot in trials:
            try:
                result, schedule, lines, record = cases.case(node, point_schedule(sweep, slot.values, model), None,
                                                              on_collapse, CaseTrial(slot))
            except BaseException:
                agent.error(slot)
                raise
            values = objective_values(result.extra_info(), sweep.objectives)
            agent.tell(slot, result.name, None if values is None else [values[n] for n, _ in sweep.objectives],
                       result.early_terminated)
            results.append(result)
            records.append(record)
            if lines:
                failures.append(failure_message(schedule, lines))
            stopped = " (stopped early)" if result.early_terminated else ""
            cases.progress(f"{node.name}: trial {slot.number} -> {result.name}{stopped}")
    finally:
        trials.close()
    if handle.multi and records:
        front = {p.name for p in pareto_front(study_points(handle.study), sweep.objectives)}
        for record in records:
            cases.amend_records([record], on_pareto_front=record["name"] in front)
    done = len(counted([view(t) for t in handle.study.get_trials(deepcopy=False)]))
    cases.progress(f"{node.name}: {agent.ran} case(s) run here; study {handle.name} has {done} of {cap}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    if not results:  # a rerun of a finished study, or other agents took every slot: nothing failed
        why = ("earlier runs or other processes ran them" if done >= cap else
               "the sampler finds no configuration that is not measured yet")
        pytest.skip(f"{sweep.path}: study {handle.name} in {handle.shown_url} has {done} of its {cap} case(s) "
                    f"({why}); none ran here. Raise run_cap to run more, or give the sweep another `name:` to "
                    f"start a new study")
    return results
