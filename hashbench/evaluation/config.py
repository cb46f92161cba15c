"""The evaluator's configuration: every convention as a named, validated option.

See :mod:`hashbench.evaluation` for what each convention means exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from hashbench.errors import ConfigError

#: Tie orders among items at equal Hamming distance.
TIES = ("index", "tie-aware", "random")
#: The default: a seeded random order per query, so that ties never follow the dataset's file
#: order (NUS-WIDE, for one, lists its images grouped by concept: "index" ties would then
#: correlate with the labels). "tie-aware" is exact but ~10x slower; the presets use "index".
DEFAULT_TIES = "random"
#: What a query with no relevant item in the top K contributes to mAP@K.
EMPTY = ("zero", "drop")
#: Presets reproducing public evaluators (exactly, on inputs without ties).
PRESETS = {
    # swuxyj/DeepHash-pytorch utils/tools.py CalcTopMap: averages over all queries (a query
    # with nothing relevant in the top K adds 0); ranks by np.argsort (ties in quicksort order,
    # which we replace by index order); topK = -1 slices gnd[0:-1], i.e. the first N - 1 items.
    "deephash-pytorch": {"ties": "index", "empty": "zero"},
    # thuml/DeepHash DeepHash/evaluation/__init__.py get_mAPs: appends AP only for queries with
    # at least one relevant item among the top R, then np.mean over those.
    "thuml": {"ties": "index", "empty": "drop"},
}
#: Devices: "auto" picks CUDA through torch when available, else the numba CPU path.
DEVICES = ("auto", "cpu", "cuda", "torch-cpu")


def _check_int_list(name: str, values: Any, allow_none: bool, allow_minus_one: bool) -> Tuple:
    """Normalise a list of cut-offs to a tuple of positive ints (and None where allowed)."""
    if values is None or isinstance(values, (int, str)):
        values = (values,)
    out = []
    for v in values:
        if v is None:
            if not allow_none:
                raise ConfigError(f"{name}: None is not allowed here")
            out.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, int):
            try:
                iv = int(v)
            except (TypeError, ValueError):
                raise ConfigError(f"{name}: {v!r} is not an integer") from None
            if iv != v:
                raise ConfigError(f"{name}: {v!r} is not an integer")
            v = iv
        if v == -1 and allow_minus_one:
            out.append(-1)
            continue
        if v < 1:
            raise ConfigError(f"{name}: cut-offs must be >= 1 (or None for all); got {v}")
        out.append(int(v))
    if len(out) == 0:
        raise ConfigError(f"{name}: give at least one value")
    if len(set(out)) != len(out):
        raise ConfigError(f"{name}: repeated value in {tuple(out)}")
    return tuple(out)


@dataclass(frozen=True)
class EvalConfig:
    """Everything that decides the evaluator's numbers; recorded in every result.

    Attributes:
        topk: the K of each mAP@K; ``None`` means the whole database ("mAP@all").
            Under ``preset="deephash-pytorch"`` the value ``-1`` is also accepted and means
            what CalcTopMap's ``topK=-1`` does: the first N - 1 items (its key is "mAP@-1").
        precision_at: the N of each precision@N.
        radius: the Hamming radius of "P@r{radius}" / "R@r{radius}".
        ties: "random" (default, seeded by ``seed``), "index" or "tie-aware" (see the package docstring).
        empty: "zero" (default) or "drop": what a query with no relevant item in the top K
            contributes to mAP@K (and a query with no relevant item at all to recall curves).
        pr_levels: number of evenly spaced recall levels of the precision-recall curve.
        seed: seed of the "random" tie order.
        device: "auto", "cpu" (numba), "cuda" / "cuda:N" (torch), "torch-cpu" (the torch
            path on torch's CPU device; for testing).
        preset: None, "deephash-pytorch" or "thuml"; a preset fixes ``ties`` and ``empty``.
    """

    topk: Tuple[Optional[int], ...] = (5000, 50000, None)
    precision_at: Tuple[int, ...] = (100, 500, 1000, 5000)
    radius: int = 2
    ties: str = DEFAULT_TIES
    empty: str = "zero"
    pr_levels: int = 1000
    seed: int = 0
    device: str = "auto"
    preset: Optional[str] = None

    def __post_init__(self) -> None:
        """Validate every field; apply the preset's conventions."""
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise ConfigError(
                    f"unknown preset {self.preset!r}; allowed: "
                    f"{', '.join(sorted(PRESETS))} or None")
            fixed = PRESETS[self.preset]
            # A preset fixes ties and empty; a non-default contradicting value is a mistake.
            for key, default in (("ties", DEFAULT_TIES), ("empty", "zero")):
                given = getattr(self, key)
                if given != default and given != fixed[key]:
                    raise ConfigError(
                        f"preset {self.preset!r} fixes {key}={fixed[key]!r}; got {key}={given!r}")
                object.__setattr__(self, key, fixed[key])
        if self.ties not in TIES:
            raise ConfigError(f"unknown ties {self.ties!r}; allowed: {', '.join(TIES)}")
        if self.empty not in EMPTY:
            raise ConfigError(f"unknown empty {self.empty!r}; allowed: {', '.join(EMPTY)}")
        object.__setattr__(self, "topk", _check_int_list(
            "topk", self.topk, allow_none=True, allow_minus_one=self.preset == "deephash-pytorch"))
        object.__setattr__(self, "precision_at", _check_int_list(
            "precision_at", self.precision_at, allow_none=False, allow_minus_one=False)
            if self.precision_at not in ((), [], None) else ())
        for name in ("radius", "pr_levels", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{name} must be an integer; got {v!r}")
        if self.radius < 0:
            raise ConfigError(f"radius must be >= 0; got {self.radius}")
        if self.pr_levels < 0:
            raise ConfigError(f"pr_levels must be >= 0 (0 skips the curve); got {self.pr_levels}")
        if not isinstance(self.device, str) or not (
                self.device in DEVICES or self.device.startswith("cuda:")):
            raise ConfigError(
                f"unknown device {self.device!r}; allowed: {', '.join(DEVICES)}, cuda:N")

    def to_dict(self) -> dict:
        """A JSON-able dict; ``EvalConfig.from_dict`` inverts it."""
        d = dataclasses.asdict(self)
        d["topk"] = list(self.topk)
        d["precision_at"] = list(self.precision_at)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvalConfig":
        """Rebuild a config from ``to_dict``'s output (unknown keys are a ConfigError)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown EvalConfig keys: {', '.join(sorted(unknown))}")
        kw = dict(d)
        for key in ("topk", "precision_at"):
            if key in kw and kw[key] is not None and not isinstance(kw[key], (int, str)):
                kw[key] = tuple(kw[key])
        return cls(**kw)


def topk_key(k: Optional[int]) -> str:
    """The metric name of mAP@K: "mAP@5000", "mAP@all"."""
    return "mAP@all" if k is None else f"mAP@{k}"
