"""The one interface every hashing method implements.

Design (documented choice for tag- and image-using methods)
-----------------------------------------------------------
Every method is fitted and used through the same two calls::

    hasher.fit(features, tags=None, images=None)   # returns self
    hasher.encode(features, images=None)            # (n, bits) uint8 of 0/1

A method declares what it needs in the class attribute ``requires``, a subset of
``{"features", "tags", "images"}``:

* classical methods (ITQ, LSH, ...) need ``{"features"}``: the cached backbone
  features of the training set;
* UDHT on a frozen backbone and the tag-binary baseline need ``{"features", "tags"}``;
* end-to-end UDHT needs ``{"images", "tags"}``: an :class:`~hashbench.features.ImageInput`
  that yields preprocessed image tensors and builds the same backbone the
  features came from.

The runner reads ``requires`` and passes exactly those inputs, so one loop serves
every method, and a dataset without tags is refused up front for a method that
needs them. ``tags`` is only ever given to ``fit``: at test time every method
sees images (or their features) alone, as in the paper.

Subclasses implement ``_fit`` and ``_encode``; the public ``fit``/``encode`` here
validate the input once, at the boundary (bits in range, finite non-empty
features, fitted before encoding) and check what the subclass returns.
Hyper-parameters are keyword arguments of ``__init__`` stored unchanged under
the same name (the scikit-learn convention), so ``get_params`` can read them
back and every result records them.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np

from .errors import ConfigError, DataError, NotFittedError
from .validation import check_bits, check_codes, check_features, check_labels, check_tags

INPUT_KINDS = frozenset({"features", "tags", "images", "labels"})


class Hasher:
    """Base class of every hashing method.

    Class attributes a method sets:

    ``name``
        the registry name (set by :func:`hashbench.register_method`);
    ``display_name``
        how tables print it (``"ITQ"``);
    ``summary``
        one line: what it is;
    ``paper``
        the citation of the paper it implements;
    ``deep``
        True for deep-learning methods (grouped apart in the tables, as in the paper);
    ``requires``
        the inputs ``fit`` needs (see the module docstring);
    ``search_space``
        the hyper-parameters model selection may tune, as data:
        ``{param: [candidate values]}`` (a grid; empty: nothing to tune). A
        plugin declares its own the same way;
    ``defaults_chosen_by``
        how the defaults of ``__init__`` were chosen, when a defaults record
        says so: ``{"status", "defaults", "text", "record", ...}`` with status
        ``selected``, ``nothing to select`` or ``inherited``
        (:mod:`hashbench.selection.record`); every result records it;
    ``inherits_defaults_from``, ``inherits_defaults_because``
        an end-to-end twin names the method whose selected values it takes
        (the parameters both have) instead of being searched, and why;
    ``configurations``
        named parameter sets, ``{name: {param: value}}`` (e.g. ``"paper"``,
        ``"authors-code"``), run as ``method@name`` on the command line;
    ``row_group``
        a row group of its own in the report's tables, below the deep methods
        (e.g. ``"after UDHT"``: methods published after the UDHT paper);
        empty: grouped as deep or non-deep;
    ``in_default_run``
        False keeps the method out of ``--methods all`` (it still runs by
        name); ``not_in_default_run_because`` says why, and ``list`` shows it.
        The rule: a method whose cells cannot fit the default run's CPU budget
        (the main job within 10 minutes on 2 cores) stays out.
    """

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    deep: ClassVar[bool] = False
    requires: ClassVar[frozenset[str]] = frozenset({"features"})
    search_space: ClassVar[dict[str, list[Any]]] = {}
    #: how the defaults of ``__init__`` were chosen, when a record says so (recorded with every result)
    defaults_chosen_by: ClassVar[dict[str, Any]] = {}
    inherits_defaults_from: ClassVar[str] = ""
    inherits_defaults_because: ClassVar[str] = ""
    configurations: ClassVar[dict[str, dict[str, Any]]] = {}
    row_group: ClassVar[str] = ""
    in_default_run: ClassVar[bool] = True
    not_in_default_run_because: ClassVar[str] = ""

    def __init__(self, bits: int = 32, seed: int = 0) -> None:
        self.bits = bits
        self.seed = seed

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given (recorded with every result)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # --------------------------------------------------------- what to check
    def max_bits(self, n_samples: int, n_features: int) -> tuple[int | None, str]:
        """The most bits this method can produce on data of this shape, and why.

        ``None`` means no limit. Override in methods bounded by the feature
        dimension (PCA-based ones) or by the training-set size.
        """
        return None, ""

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "fitted_", False)

    # ---------------------------------------------------------------- public
    @classmethod
    def is_supervised(cls) -> bool:
        """A supervised method learns from labels (``"labels"`` in ``requires``): a reference, not a contestant."""
        return "labels" in cls.requires

    def fit(self, features: Any = None, tags: Any = None, images: Any = None, labels: Any = None) -> "Hasher":
        """Learn the hash function; returns ``self``.

        ``features``: (n, d) float array; ``tags``: n lists of strings;
        ``images``: an :class:`~hashbench.features.ImageInput` of n images;
        ``labels``: the n training items' labels ((n, L) 0/1 or (n,) classes),
        for supervised methods only (the runner gives the training role's, never
        a query or database-only item's).
        Only the inputs named in ``requires`` are used (and required).
        """
        method = self.name or type(self).__name__
        unknown = set(self.requires) - INPUT_KINDS
        if unknown:
            raise ConfigError(f"{method}: requires names unknown inputs {sorted(unknown)}")
        n = None
        if "features" in self.requires:
            if features is None:
                raise DataError(f"{method}: fit needs features")
            features = check_features(features, name=f"{method}: training features")
            n, d = features.shape
        if "images" in self.requires:
            if images is None:
                raise DataError(f"{method}: fit needs images")
            if len(images) == 0:
                raise DataError(f"{method}: fit got an empty image set")
            if n is not None and len(images) != n:
                raise DataError(f"{method}: {len(images)} images for {n} feature rows")
            n = len(images) if n is None else n
        if "tags" in self.requires:
            tags = check_tags(tags, n if n is not None else len(tags), name=f"{method}: tags")
        if n is None:
            raise ConfigError(f"{method}: requires must include 'features' or 'images'")
        if "labels" in self.requires:
            labels = check_labels(labels, n, name=f"{method}: training labels")
        d = features.shape[1] if features is not None and "features" in self.requires else 0
        limit, why = self.max_bits(n, d)
        self.bits = check_bits(self.bits, max_bits=limit, method=method, reason=why)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ConfigError(f"{method}: seed must be an integer, got {self.seed!r}")
        kwargs: dict[str, Any] = {}
        if "tags" in self.requires:
            kwargs["tags"] = tags
        if "images" in self.requires:
            kwargs["images"] = images
        if "labels" in self.requires:
            kwargs["labels"] = labels
        self.n_features_in_ = d if "features" in self.requires else None
        self.fitted_ = False
        self._fit(features if "features" in self.requires else None, **kwargs)
        self.fitted_ = True
        return self

    def encode(self, features: Any = None, images: Any = None) -> np.ndarray:
        """Binary codes of new items: an (n, bits) uint8 array of 0/1."""
        method = self.name or type(self).__name__
        if not self.is_fitted:
            raise NotFittedError(f"{method}: encode was called before fit")
        if "images" in self.requires and not ("features" in self.requires and features is not None):
            if images is None:
                raise DataError(f"{method}: encode needs images")
            n = len(images)
            codes = self._encode(None, images=images)
        else:
            features = check_features(
                features, name=f"{method}: features to encode", n_features=self.n_features_in_
            )
            n = features.shape[0]
            codes = self._encode(features)
        codes = check_codes(codes, bits=self.bits, name=f"{method}: encode output")
        if codes.shape[0] != n:
            raise DataError(f"{method}: encode returned {codes.shape[0]} codes for {n} items")
        return codes

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """The method's own label-free objective on held-out training items (lower is better).

        Model selection's ``label-free`` criterion calls it on training items
        the fit did not see. A method without an objective of its own keeps
        this default, and selection falls back to its generic label-free
        criterion (see :mod:`hashbench.selection`).
        """
        raise NotImplementedError

    # ------------------------------------------------------- to implement
    def _fit(self, features: np.ndarray | None, **inputs: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def _encode(self, features: np.ndarray | None, **inputs: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ---------------------------------------------------------- recording
    def training_history(self) -> dict[str, list[float]]:
        """Per-iteration or per-epoch losses to store with the result (may be empty).

        Methods set ``self.history_`` (a dict of equal-length lists) during fit.
        """
        hist = getattr(self, "history_", None) or {}
        return {k: [float(v) for v in vals] for k, vals in hist.items()}

    @classmethod
    def info(cls) -> dict[str, Any]:
        """What reports need to know about the method without importing it again."""
        return {
            "name": cls.name,
            "display_name": cls.display_name or cls.name,
            "summary": cls.summary,
            "paper": cls.paper,
            "deep": bool(cls.deep),
            "supervised": cls.is_supervised(),
            **({"defaults_chosen_by": dict(cls.defaults_chosen_by)} if cls.defaults_chosen_by else {}),
            **({"row_group": cls.row_group} if cls.row_group else {}),
            "requires": sorted(cls.requires),
            "in_default_run": bool(cls.in_default_run),
        }
