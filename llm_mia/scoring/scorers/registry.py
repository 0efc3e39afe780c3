"""The single scorer registry.

A scorer is a plain function registered by name. Its positional parameters name the *views* it reads
(``target``: the target model on the original text; ``target_lower``: the target model on the lowercased
text; ``reference``: the reference model on the original text), each a
:class:`~llm_mia.backends.token_stats.TokenStats`;
its keyword-only parameters are its hyperparameters, with defaults, and its registration declares what each may
be (``constraints``: a :mod:`~llm_mia.scoring.scorers.params` constraint per hyperparameter, its type and allowed
values). ``**kwargs`` is refused at registration, so every hyperparameter is visible in ``llm-mia list``. Every
value is checked against its constraint when a spec is parsed or a call is made (:class:`ScorerCall`), so a value
out of range is refused before any model loads, never met per document.

A scorer returns a float where higher means more likely a member, or raises :class:`ScoreUnavailable` when
the document does not allow the score (too few tokens, zero loss, ...): that document gets a null score and
a status, and the others are scored as usual.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_mia.errors import LlmMiaError, ParameterError, UnknownNameError, unknown_name
from llm_mia.scoring.scorers.params import Constraint


@dataclass(frozen=True)
class View:
    """Which model reads which text variant."""

    model: str  # "target" or "reference"
    variant: str  # a key of llm_mia.scoring.variants.TEXT_VARIANTS
    conditioned: bool = False  # read after a conditioning prefix that a scorer's ``condition`` names (ReCaLL)
    gradient: bool = False  # with a backward pass per text: TokenStats.gradient_norms (GradNorm; not cached)
    neighbours: bool = False  # per document, a tuple of its neighbour texts' TokenStats (neighbourhood attack)


VIEWS: dict[str, View] = {
    "target": View("target", "original"),
    "target_lower": View("target", "lowercase"),
    "reference": View("reference", "original"),
    "target_recall": View("target", "original", conditioned=True),
    "target_gradient": View("target", "original", gradient=True),
    "target_neighbours": View("target", "original", neighbours=True),
}


class ScoreUnavailable(Exception):
    """Raised by a scorer when a document does not allow its score; the message becomes its status."""


@dataclass(frozen=True)
class Scorer:
    name: str
    function: Callable[..., float]
    views: tuple[str, ...]
    defaults: Mapping[str, Any]  # hyperparameter -> default value
    constraints: Mapping[str, Constraint]  # hyperparameter -> its type and allowed values (parses CLI values)
    length_invariant: bool = True  # False: the score moves with text length or bytes alone (see register)
    needs: tuple[str, ...] = ("logprob",)  # TokenStats arrays it reads (see register)
    prepare: Callable[..., Any] | None = None  # builds what it reads beside TokenStats (see register)
    condition: Callable[..., tuple[str, list[str]]] | None = None  # its conditioned views' prefix (see register)
    opt_in: bool = False  # run only when named (it needs a resource or pass of its own)
    cost: str = "one pass"  # what it costs beyond the shared forward pass, for `llm-mia list`

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.function) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.function) or ""

    def check(self, key: str, value: Any, *, written: str | None = None) -> None:
        """Refuse ``value`` for hyperparameter ``key`` unless its constraint allows it (``written``: the text the
        user gave, shown in the message instead of the parsed value)."""
        if key not in self.constraints:
            raise UnknownNameError(
                f"scorer {self.name!r}: no hyperparameter {key!r}; it takes: {', '.join(self.constraints) or 'none'}"
            )
        problem = self.constraints[key].problem(value)
        if problem is not None:
            raise self.refusal(key, written if written is not None else repr(value), problem)

    def parse(self, key: str, text: str) -> Any:
        """The value of hyperparameter ``key`` that ``text`` stands for, checked against its constraint."""
        try:
            value = self.constraints[key].parse(text)
        except ValueError as error:
            raise self.refusal(key, text, str(error)) from None
        self.check(key, value, written=text)
        return value

    def refusal(self, key: str, shown: str, problem: str) -> ParameterError:
        """The one-line error for a value of ``key`` that is not allowed: the value, why, and what is allowed."""
        shown = shown or "''"  # an empty value, written key=
        return ParameterError(
            f"scorer {self.name!r}: {key}={shown} {problem}; {key} must be {self.constraints[key].describe()} "
            f"(default {self.defaults[key]!r})"
        )


_REGISTRY: dict[str, Scorer] = {}
PREPARED_ARGUMENT = "prepared"  # the keyword-only parameter through which a scorer with ``prepare`` reads its result


def register(
    name: str,
    *,
    length_invariant: bool = True,
    needs: tuple[str, ...] = ("logprob",),
    prepare: Callable[..., Any] | None = None,
    condition: Callable[..., tuple[str, list[str]]] | None = None,
    opt_in: bool = False,
    cost: str = "one pass",
    constraints: Mapping[str, Constraint] | None = None,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Decorator: register ``function`` as scorer ``name`` (see module docstring for the contract).

    ``length_invariant=False`` marks a score that changes with a text's length or byte count alone (e.g. a
    per-token mean divided by a total length): comparisons between texts of different lengths or formats
    then measure length, so dataset-level tests leave such scorers out.

    ``needs``: the per-token arrays of :class:`~llm_mia.backends.token_stats.TokenStats` the scorer reads. A white-box
    model
    provides all of them; a model behind an API may return only ``logprob`` (see ``llm_mia.backends.remote``), and a
    scorer needing more is refused there before any request is sent.

    ``prepare(model, **hyperparameters)``: called once per run, before any document is scored, with the loaded
    model of the scorer's first view; it builds what the scorer reads beside TokenStats (DC-PDD's token
    frequencies) and returns it: an object whose ``describe()`` goes into the run record. The run carries it
    (``llm_mia.scoring.pipeline.compute_scores``) and hands it to the scorer as its keyword-only ``prepared``
    argument, which is not a hyperparameter. ``condition(**hyperparameters)``: for a scorer
    reading a conditioned view (``target_recall``), the prefix text those views are read after and the texts
    it is made of (checked to be disjoint from the documents scored). ``opt_in``: left out of the default set (it
    needs a resource, e.g. a corpus or prefix, or a pass of its own); run when named. ``cost``: what it costs
    beyond the shared forward pass, shown by ``llm-mia list``. ``constraints``: for every hyperparameter, its type
    and allowed values (:mod:`~llm_mia.scoring.scorers.params`); the default must be allowed, and a type annotation,
    where it names a plain type, must be the constraint's.
    """

    def decorator(function: Callable[..., float]) -> Callable[..., float]:
        if name in _REGISTRY:
            raise ValueError(f"scorer {name!r} is registered twice")
        views, defaults = [], {}
        for parameter in inspect.signature(function).parameters.values():
            if parameter.kind is parameter.VAR_KEYWORD or parameter.kind is parameter.VAR_POSITIONAL:
                raise TypeError(f"scorer {name!r}: *args/**kwargs hide hyperparameters; name each one")
            if parameter.kind is parameter.KEYWORD_ONLY and parameter.name == PREPARED_ARGUMENT and prepare is not None:
                continue  # what prepare built, handed over by the run
            if parameter.kind is parameter.KEYWORD_ONLY:
                if parameter.default is parameter.empty:
                    raise TypeError(f"scorer {name!r}: hyperparameter {parameter.name!r} needs a default")
                defaults[parameter.name] = parameter.default
            elif parameter.name in VIEWS:
                views.append(parameter.name)
            else:
                raise TypeError(
                    f"scorer {name!r}: positional parameter {parameter.name!r} is not a view "
                    f"({', '.join(VIEWS)}); make hyperparameters keyword-only"
                )
        if not inspect.getdoc(function):
            raise TypeError(f"scorer {name!r} needs a docstring with its formula, direction and source")
        declared = dict(constraints or {})
        check_declarations(name, function, defaults, declared)
        _REGISTRY[name] = Scorer(
            name, function, tuple(views), defaults, declared, length_invariant, tuple(needs), prepare, condition,
            opt_in, cost,
        )  # fmt: skip
        return function

    return decorator


def check_declarations(
    name: str, function: Callable[..., float], defaults: Mapping[str, Any], constraints: Mapping[str, Constraint]
) -> None:
    """Refuse (``TypeError``, at import) a registration whose constraints do not match its hyperparameters: one
    constraint per hyperparameter, each default allowed by its own, each plain type annotation the constraint's."""
    undeclared = [key for key in defaults if key not in constraints]
    if undeclared:
        raise TypeError(
            f"scorer {name!r}: declare the type and allowed values of {', '.join(undeclared)} in "
            "register(constraints=...), e.g. {'k': Interval(float, 0, 1, closed='right')}"
        )
    unknown = [key for key in constraints if key not in defaults]
    if unknown:
        raise TypeError(f"scorer {name!r}: constraints for {', '.join(unknown)}, which are not hyperparameters")
    try:
        annotations = inspect.get_annotations(function, eval_str=True)
    except NameError:  # an annotation naming something its module does not define at run time
        annotations = {}
    for key, constraint in constraints.items():
        problem = constraint.problem(defaults[key])
        if problem is not None:
            raise TypeError(f"scorer {name!r}: default {key}={defaults[key]!r} {problem} ({constraint.describe()})")
        annotated = annotations.get(key)
        if isinstance(annotated, type) and annotated is not constraint.kind:
            raise TypeError(
                f"scorer {name!r}: {key} is annotated {annotated.__name__} but constrained to "
                f"{constraint.kind.__name__} values"
            )


def all_scorers() -> dict[str, Scorer]:
    """Every registered scorer, by name (registration order).

    The built-in scorers are registered by ``llm_mia.scoring.scorers.__init__``, which Python runs before this
    module (a package's ``__init__`` is imported before its submodules), so they are always here.
    """
    return dict(_REGISTRY)


def get_scorer(name: str) -> Scorer:
    registry = all_scorers()
    if name in registry:
        return registry[name]
    raise unknown_name("scorer", name, registry)


@dataclass(frozen=True)
class ScorerCall:
    """One scorer with concrete hyperparameters; ``column`` names its output column."""

    scorer: Scorer
    params: Mapping[str, Any]
    label: str = ""  # the column's name when set (a run that fixes a hyperparameter for itself, e.g. a file)

    def __post_init__(self) -> None:
        for key, value in self.params.items():
            self.scorer.check(key, value)

    @property
    def column(self) -> str:
        if self.label:
            return self.label
        changed = {k: v for k, v in self.params.items() if v != self.scorer.defaults[k]}
        if not changed:
            return self.scorer.name
        return f"{self.scorer.name}[{','.join(f'{k}={v}' for k, v in changed.items())}]"

    def describe(self, prepared: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The call as recorded in run records: output column, scorer name, every hyperparameter, and ``prepared``,
        what the run built for it (its ``prepare``'s description, the files its views wrote), when given."""
        record = {"column": self.column, "scorer": self.scorer.name, "params": dict(self.params)}
        if prepared is not None:
            record["prepared"] = dict(prepared)
        return record

    def prepare(self, model: Any) -> Any:
        """What the scorer's ``prepare`` builds for ``model`` (None for a scorer without one); the caller keeps it
        for this run and passes it to every call."""
        return None if self.scorer.prepare is None else self.scorer.prepare(model, **self.params)

    def __call__(self, views: Mapping[str, Any], prepared: Any = None) -> float:
        """The score of one document from its views; ``prepared``: what :meth:`prepare` built, for a scorer
        that has one."""
        extra = {PREPARED_ARGUMENT: prepared} if self.scorer.prepare is not None else {}
        return float(self.scorer.function(*(views[v] for v in self.scorer.views), **self.params, **extra))


def parse_scorer_specs(
    specs: list[str] | None, *, has_reference: bool, arrays: tuple[str, ...] | None = None, provider: str = ""
) -> list[ScorerCall]:
    """Turn CLI/API scorer specs into calls.

    A spec is ``name`` or ``name:key=v1,v2;key2=v`` (several values expand into several calls, e.g.
    ``min_k:k=0.1,0.2``). ``None`` means every scorer that is not opt-in, whose views are available
    (``reference`` only when a reference model is given) and whose per-token arrays the models provide:
    ``arrays`` (None: all, as a white-box model gives), ``provider`` names what provides only those, for the
    error message. Every value is parsed by its hyperparameter's declared type and checked against its allowed
    values (:class:`~llm_mia.errors.ParameterError` naming the scorer, the parameter, the value and what it allows).
    """
    registry = all_scorers()

    def servable(scorer: Scorer) -> bool:
        return arrays is None or set(scorer.needs) <= set(arrays)

    if not specs:
        return [
            ScorerCall(s, dict(s.defaults))
            for s in registry.values()
            if (has_reference or "reference" not in s.views) and servable(s) and not s.opt_in
        ]
    calls: list[ScorerCall] = []
    for spec in specs:
        name, _, arguments = spec.partition(":")
        scorer = get_scorer(name.strip())
        grid: list[dict[str, Any]] = [dict(scorer.defaults)]
        for assignment in filter(None, (a.strip() for a in arguments.split(";"))):
            key, eq, values = assignment.partition("=")
            key = key.strip()
            if not eq or key not in scorer.defaults:
                allowed = ", ".join(scorer.defaults) or "none"
                raise UnknownNameError(
                    f"scorer {scorer.name!r}: bad hyperparameter {assignment!r}; it takes: {allowed} "
                    f"(write e.g. {scorer.name}:{next(iter(scorer.defaults), 'k')}=0.1,0.2)"
                )
            grid = [{**g, key: scorer.parse(key, v.strip())} for g in grid for v in values.split(",")]
        calls.extend(ScorerCall(scorer, params) for params in grid)
    if not has_reference:
        needing = sorted({c.scorer.name for c in calls if "reference" in c.scorer.views})
        if needing:
            raise LlmMiaError(f"scorer(s) {', '.join(needing)} need a reference model: pass --reference")
    unservable = {
        c.scorer.name: sorted(set(c.scorer.needs) - set(arrays or ())) for c in calls if not servable(c.scorer)
    }
    if unservable:
        usable = ", ".join(s.name for s in registry.values() if servable(s))
        raise LlmMiaError(
            "; ".join(
                f"scorer {name} needs the per-token {', '.join(m)} of the full next-token distribution"
                for name, m in unservable.items()
            )
            + f", which {provider or 'these models'} cannot return (only {', '.join(arrays or ())}); scorers it can "
            f"serve: {usable}"
        )
    columns = [c.column for c in calls]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise LlmMiaError(f"scorer(s) requested twice: {', '.join(duplicates)}")
    return calls
