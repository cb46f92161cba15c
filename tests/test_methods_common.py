"""What every method on features must do: the Hasher contract and seeding (classical and deep baselines),
and, for the classical ones, beating LSH on clustered data."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench
from hashbench import ConfigError, DataError, NotFittedError
from hashbench_methods._convergence import holdout_split

# Import every method module, so the tests do not depend on pyproject's entry points.
from hashbench_methods import agh, bihalf, deepbit, dh, dsh, greedyhash, itq, lsh, pcah, sh, sph, uh_bdnn  # noqa: F401

CLASSICAL = ["lsh", "pcah", "itq", "sh", "sph", "dsh", "agh", "agh2"]
# the UDHT paper's deep baselines on features, with short schedules (the contract is under test here;
# their learning in tests/test_methods_deep.py)
DEEP = {"dh": {"max_epochs": 3}, "uh-bdnn": {"max_epochs": 2, "lbfgs_iter": 30, "hidden": (16, 12)},
        "deepbit": {"max_epochs": 3},
        # the methods published after UDHT that learn from features (CIBHash needs images: test_modern_methods.py)
        "greedyhash": {"max_epochs": 3, "lr": 1e-2}, "bihalf": {"max_epochs": 3, "lr": 1e-2}}
METHODS = CLASSICAL + list(DEEP)
DETERMINISTIC = {"pcah", "sh"}  # no random choice: the seed must not matter


def clustered(seed: int = 0, n: int = 1600, d: int = 128, k: int = 10, sub: int = 16,
              sep: float = 0.6, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """k Gaussian classes whose means differ only in a ``sub``-dim subspace, isotropic noise.

    Like CNN features, the class signal sits in a few directions among many
    noisy ones, and every feature is offset from the origin.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, sub)))[0]
    centres = rng.standard_normal((k, sub)) * sep @ basis.T
    labels = rng.integers(0, k, n)
    x = centres[labels] + rng.standard_normal((n, d)) * noise + 1.0
    return x.astype(np.float32), labels


def brute_map(q_codes, db_codes, q_labels, db_labels) -> float:
    """mAP over the whole database by definition: Hamming ranking, ties by database index."""
    ham = (q_codes[:, None, :] != db_codes[None, :, :]).sum(-1)
    order = np.argsort(ham, axis=1, kind="stable")
    rel = q_labels[:, None] == db_labels[order]
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    ap = (rel * hits / ranks).sum(axis=1) / np.maximum(rel.sum(axis=1), 1)
    return float(ap.mean())


@pytest.fixture(scope="module")
def small():
    x, _ = clustered(seed=3, n=300, d=20, sub=6, sep=1.0)
    return x


@pytest.mark.parametrize("name", METHODS)
def test_contract_shape_dtype_and_seeding(name, small):
    fast = DEEP.get(name, {})
    h = hashbench.create(name, bits=8, seed=0, **fast)
    with pytest.raises(NotFittedError):
        h.encode(small)
    assert h.fit(small) is h
    codes = h.encode(small[:50])
    assert codes.shape == (50, 8) and codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}
    # no bit may be constant over the training data
    assert np.all(h.encode(small).std(axis=0) > 0)
    # the same seed gives the same codes; a new seed new codes where the method is random
    again = hashbench.create(name, bits=8, seed=0, **fast).fit(small).encode(small[:50])
    np.testing.assert_array_equal(codes, again)
    other = hashbench.create(name, bits=8, seed=1, **fast).fit(small).encode(small)
    if name in DETERMINISTIC:
        np.testing.assert_array_equal(other, h.encode(small))
    else:
        assert not np.array_equal(other, h.encode(small))
    # parameters read back and rebuild the same method
    params = h.get_params()
    assert params["bits"] == 8 and params["seed"] == 0
    assert hashbench.create(name, **params).get_params() == params
    with pytest.raises(DataError):
        h.encode(small[:, :5])
    info = type(h).info()
    assert info["name"] == name and info["paper"] and info["display_name"] and info["deep"] == (name in DEEP)
    assert type(h).__doc__ and "departure" in type(h).__doc__.lower()
    assert isinstance(type(h).search_space, dict)
    for param, values in type(h).search_space.items():  # the tuning grid is data, over real parameters
        assert param in params and isinstance(values, list) and values


@pytest.mark.parametrize("name", list(DEEP))
def test_deep_baselines_converge_on_a_heldout_objective(name, small):
    """history_ has one held-out value per epoch; the best epoch is kept; heldout_objective is the method's own."""
    h = hashbench.create(name, bits=8, seed=0, **{**DEEP[name], "max_epochs": 4, "patience": 1})
    h.fit(small)
    conv = h.fit_info_["convergence"]
    held = h.history_["heldout_objective"]
    assert conv["epochs_run"] == len(held) <= 4
    assert all(len(v) == len(held) for v in h.history_.values())
    assert conv["best_heldout"] == pytest.approx(min(held), rel=1e-6)
    assert held[conv["best_epoch"] - 1] == pytest.approx(min(held), rel=1e-6)
    if conv["epochs_run"] < 4:
        assert "no held-out improvement" in conv["stopped_because"]
    # the restored best epoch is the fitted model: its own objective on the held-out rows again
    _, val = holdout_split(len(small), h.val_fraction, h.seed)
    assert h.heldout_objective(small[val]) == pytest.approx(min(held), rel=1e-4, abs=1e-6)
    with pytest.raises(ConfigError):
        hashbench.create(name, bits=8, max_epochs=-1).fit(small)
    with pytest.raises(ConfigError):
        hashbench.create(name, bits=8, val_fraction=1.0).fit(small)


@pytest.mark.parametrize("name", METHODS)
def test_non_positive_bits_are_refused(name, small):
    for bits in (0, -3, 2.5):
        with pytest.raises(ConfigError, match="bits"):
            hashbench.create(name, bits=bits).fit(small)


@pytest.mark.parametrize(
    "name, n, d, too_many",
    [
        ("pcah", 40, 10, 11),  # more than the feature dimension
        ("pcah", 10, 40, 10),  # more than n - 1 directions of the centred data
        ("itq", 40, 10, 11),
        ("itq", 10, 40, 10),
        ("dsh", 30, 8, 21),  # round(1.5 * 21) = 32 groups > 30 samples
        ("agh", 30, 8, 30),  # 30 anchors at most: 29 non-trivial eigenvectors
        ("agh2", 30, 8, 60),
    ],
)
def test_too_many_bits_is_a_clear_config_error(name, n, d, too_many):
    x = np.random.default_rng(0).standard_normal((n, d))
    kw = {"dsh": {"alpha": 1.5, "r": 3}}.get(name, {})  # DSH's limit depends on alpha and r (the shipped ones are selected)
    with pytest.raises(ConfigError, match=f"cannot produce {too_many} bits"):
        hashbench.create(name, bits=too_many, **kw).fit(x)
    limit = {"pcah": min(n - 1, d), "itq": min(n - 1, d), "dsh": 20, "agh": 29, "agh2": 58}[name]
    assert hashbench.create(name, bits=too_many, **kw).max_bits(n, d)[0] == limit


def test_every_method_beats_lsh_on_clustered_data_at_32_bits():
    x, labels = clustered(seed=0)
    train, db, query = x[:1000], x[1000:1500], x[1500:]
    l_db, l_q = labels[1000:1500], labels[1500:]

    def score(name, seed):
        h = hashbench.create(name, bits=32, seed=seed).fit(train)
        return brute_map(h.encode(query), h.encode(db), l_q, l_db)

    lsh_map = np.mean([score("lsh", s) for s in range(3)])
    chance = np.mean([(l_q[:, None] == l_db[None, :]).mean()])
    assert lsh_map > chance  # LSH is a fair opponent, not broken
    for name in CLASSICAL[1:]:
        m = score(name, 0)
        assert m > lsh_map + 0.02, f"{name}: mAP {m:.3f} does not beat LSH's {lsh_map:.3f}"

