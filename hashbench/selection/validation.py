"""The validation split: carved from the training role only.

Protocol (the same for every method):

* V, the *validation queries*: a seeded random subset of the training role
  (``n_val`` items, or that fraction of it); F, the *fit items*: the rest of
  the training role.
* A trial fits the method on F only (features, tags or images of F), encodes V
  and F, and ranks F for each V query.
* The ``labels`` criterion scores that ranking with the labels of V and F, which
  are training-role items; the ``label-free`` criterion uses no label at all.

Query items and database-only items are never touched: selection is handed the
training role's features, tags and labels (:class:`~hashbench.selection.search.TrainingData`)
and nothing else. The split is saved as item ids under
``results/<dataset>/selection/validation/<key>.json`` so that another lab can load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..storage import json_digest


@dataclass(frozen=True)
class ValidationSplit:
    """Positions (0..n_train-1, into the training role) of the fit items and the validation queries."""

    fit: np.ndarray
    val: np.ndarray
    seed: int
    n_train: int

    def to_json(self, train_ids: Sequence[str]) -> dict[str, Any]:
        ids = np.asarray(train_ids)
        return {
            "protocol": "validation queries drawn at random from the training role; fit on the rest of it",
            "seed": int(self.seed),
            "sizes": {"train": int(self.n_train), "fit": int(self.fit.size), "validation": int(self.val.size)},
            "fit": ids[self.fit].tolist(),
            "validation": ids[self.val].tolist(),
        }

    def key(self, train_ids: Sequence[str]) -> str:
        return json_digest(self.to_json(train_ids))


def validation_split(n_train: int, n_val: int | float, seed: int) -> ValidationSplit:
    """A seeded split of ``n_train`` training-role items into fit items and ``n_val`` validation queries.

    ``n_val``: a count (int >= 1) or a fraction in (0, 1) of the training role.
    Both parts need at least 2 items; a validation split as large as the
    training role (or larger) is a :class:`ConfigError` naming both sizes.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"validation split: seed must be a non-negative integer, got {seed!r}")
    if isinstance(n_val, bool) or not isinstance(n_val, (int, float, np.integer, np.floating)):
        raise ConfigError(f"validation split: size must be a count or a fraction in (0, 1), got {n_val!r}")
    if isinstance(n_val, (float, np.floating)) and not float(n_val).is_integer():
        if not 0 < n_val < 1:
            raise ConfigError(f"validation split: a fraction must be in (0, 1), got {n_val!r}")
        count = int(round(n_train * float(n_val)))
    else:
        count = int(n_val)
    if count < 2:
        raise ConfigError(f"validation split: {n_val!r} of {n_train} training items gives {count} "
                          "validation queries; at least 2 are needed")
    if count > n_train - 2:
        raise ConfigError(
            f"validation split of {count} items is larger than the training role allows: the training role "
            f"has {n_train} items and at least 2 must remain to fit on"
        )
    # a generator of its own: the split depends on ``seed`` alone, not on anything else drawn from it
    perm = np.random.default_rng([int(seed), 0x5E1EC7]).permutation(n_train)
    return ValidationSplit(fit=np.sort(perm[count:]), val=np.sort(perm[:count]), seed=int(seed), n_train=n_train)
