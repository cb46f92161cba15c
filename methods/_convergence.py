"""Convergence for the deep methods: stop when the held-out objective stops improving.

Every deep method trains for at most ``max_epochs`` epochs and stops early when
its own objective, measured after each epoch on training items held out from
the gradient steps, has not improved by more than ``min_delta`` for
``patience`` epochs in a row; the weights of the best epoch are restored. No
fixed short schedule decides the outcome: the schedule is where the held-out
objective stops improving, and ``history_`` records where and why.

The held-out items come from the training role only (a seeded fraction,
``holdout_split``): a query or database-only item is never seen.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashbench import ConfigError


def holdout_split(n: int, fraction: float, seed: int, min_items: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fit rows, held-out rows) of ``n`` training items; no held-out rows when ``fraction`` is 0.

    Both parts are sorted. Raises :class:`ConfigError` when ``fraction`` is not
    in [0, 1) or leaves fewer than ``min_items`` on either side.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {fraction!r}")
    n_val = int(round(n * fraction))
    if n_val == 0:
        return np.arange(n), np.arange(0)
    if n_val < min_items or n - n_val < min_items:
        raise ConfigError(
            f"val_fraction={fraction} of {n} training items leaves {n - n_val} to fit and {n_val} held out; "
            f"each needs at least {min_items}"
        )
    # a generator of its own, so that the split does not depend on what else draws from ``seed``
    perm = np.random.default_rng([int(seed), 0x5EED]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def check_convergence_params(who: str, max_epochs: Any, patience: Any, min_delta: Any) -> None:
    """Clear errors for out-of-range convergence parameters."""
    for name, v in (("max_epochs", max_epochs), ("patience", patience)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if name == "max_epochs" else 1):
            kind = "non-negative" if name == "max_epochs" else "positive"
            raise ConfigError(f"{who}: {name} must be a {kind} integer, got {v!r}")
    if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float, np.floating)) \
            or not math.isfinite(min_delta) or min_delta < 0:
        raise ConfigError(f"{who}: min_delta must be a non-negative number, got {min_delta!r}")


@dataclass
class EarlyStopping:
    """Tracks a held-out objective (lower is better) epoch by epoch.

    Call :meth:`update` after each epoch with the epoch's held-out value and
    the state to keep if it is the best so far (e.g. a module's ``state_dict``);
    it returns True when training should stop. ``best_state`` is a deep copy of
    the best epoch's state; :meth:`summary` says where and why training stopped
    (stored in ``fit_info_["convergence"]`` by the methods).
    """

    max_epochs: int
    patience: int = 5
    min_delta: float = 1e-4
    best_value: float = math.inf
    best_epoch: int = 0  # 1-based; 0 = none yet
    epochs_run: int = 0
    reason: str = ""
    best_state: Any = field(default=None, repr=False)
    _stale: int = 0

    def update(self, value: float, state: Any = None) -> bool:
        self.epochs_run += 1
        if not math.isfinite(value):
            self.reason = f"held-out objective became {value} at epoch {self.epochs_run}"
            return True
        if value < self.best_value - self.min_delta:
            self.best_value = float(value)
            self.best_epoch = self.epochs_run
            self.best_state = copy.deepcopy(state)
            self._stale = 0
        else:
            self._stale += 1
        if self._stale >= self.patience:
            self.reason = (f"no held-out improvement > {self.min_delta:g} for {self.patience} epochs "
                           f"(best at epoch {self.best_epoch})")
            return True
        if self.epochs_run >= self.max_epochs:
            self.reason = f"reached max_epochs={self.max_epochs}"
            return True
        return False

    def summary(self) -> dict[str, Any]:
        return {
            "max_epochs": int(self.max_epochs),
            "patience": int(self.patience),
            "min_delta": float(self.min_delta),
            "epochs_run": int(self.epochs_run),
            "best_epoch": int(self.best_epoch),
            "best_heldout": float(self.best_value) if math.isfinite(self.best_value) else None,
            "stopped_because": self.reason or "not stopped",
        }
