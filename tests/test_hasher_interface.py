"""The Hasher interface: validation at the boundary, parameters, the registry and plugins."""

from __future__ import annotations

import re
import textwrap
from importlib.metadata import entry_points

import numpy as np
import pytest

import hashbench
from hashbench import ConfigError, DataError, Hasher, NotFittedError, PluginError
from hashbench.registry import load_plugin_file, register_method, unregister_method

from .conftest import REPO


class MedianThreshold(Hasher):
    """Test method: bit k is feature k above its training median."""

    requires = frozenset({"features"})

    def __init__(self, bits: int = 8, seed: int = 0, offset: float = 0.0) -> None:
        super().__init__(bits=bits, seed=seed)
        self.offset = offset

    def max_bits(self, n_samples, n_features):
        return n_features, "one bit per feature"

    def _fit(self, features):
        self.median_ = np.median(features[:, : self.bits], axis=0) + self.offset

    def _encode(self, features):
        return (features[:, : self.bits] > self.median_).astype(np.uint8)


class TagCounter(Hasher):
    requires = frozenset({"features", "tags"})

    def _fit(self, features, tags):
        self.seen_ = sum(len(t) for t in tags)

    def _encode(self, features):
        return np.zeros((features.shape[0], self.bits), dtype=np.uint8)


def test_fit_returns_self_and_encode_gives_binary_uint8(rng):
    x = rng.normal(size=(50, 10))
    h = MedianThreshold(bits=6)
    assert h.fit(x) is h
    codes = h.encode(x)
    assert codes.shape == (50, 6) and codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}
    # by construction half of the training points are above each median
    np.testing.assert_array_equal(codes.sum(axis=0), np.full(6, 25))


def test_get_params_reads_constructor_arguments():
    h = MedianThreshold(bits=4, seed=3, offset=0.5)
    assert h.get_params() == {"bits": 4, "seed": 3, "offset": 0.5}
    assert "offset=0.5" in repr(h)


@pytest.mark.parametrize("bits", [0, -3, 2.5, True, "8"])
def test_bad_bit_lengths_are_refused(bits, rng):
    with pytest.raises(ConfigError, match="bits must be a positive integer"):
        MedianThreshold(bits=bits).fit(rng.normal(size=(20, 10)))


def test_more_bits_than_the_method_can_produce(rng):
    with pytest.raises(ConfigError, match=r"cannot produce 11 bits: at most 10 \(one bit per feature\)"):
        MedianThreshold(bits=11).fit(rng.normal(size=(20, 10)))


@pytest.mark.parametrize(
    "features, message",
    [
        (np.empty((0, 5)), "empty array"),
        (np.ones(5), "expected a 2-D"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "row 0 has NaN"),
        (np.array([[1.0, 2.0], [0.0, np.inf]]), "row 1 has inf"),
        (np.array([["a", "b"]]), "expected real numbers"),
    ],
)
def test_bad_features_are_refused(features, message):
    with pytest.raises(DataError, match=message):
        MedianThreshold(bits=1).fit(features)


def test_encode_before_fit(rng):
    with pytest.raises(NotFittedError, match="encode was called before fit"):
        MedianThreshold(bits=2).encode(rng.normal(size=(3, 4)))


def test_encode_checks_feature_dimension_and_nan(rng):
    h = MedianThreshold(bits=2).fit(rng.normal(size=(10, 4)))
    with pytest.raises(DataError, match="expected 4 features per row"):
        h.encode(rng.normal(size=(3, 5)))
    with pytest.raises(DataError, match="NaN"):
        h.encode(np.full((2, 4), np.nan))


def test_tag_methods_require_tags(rng):
    x = rng.normal(size=(4, 3))
    with pytest.raises(DataError, match="needs tags"):
        TagCounter(bits=2).fit(x)
    with pytest.raises(DataError, match="3 tag lists for 4 samples"):
        TagCounter(bits=2).fit(x, tags=[["a"], ["b"], []])
    h = TagCounter(bits=2).fit(x, tags=[["a", "b"], [], ["c"], ["d"]])
    assert h.seen_ == 4


def test_output_of_a_broken_method_is_checked(rng):
    class Broken(MedianThreshold):
        def _encode(self, features):
            return np.full((features.shape[0], self.bits), 2)

    with pytest.raises(DataError, match="only 0 and 1"):
        Broken(bits=2).fit(rng.normal(size=(5, 3))).encode(rng.normal(size=(5, 3)))


# ------------------------------------------------------------------ registry
def test_create_unknown_method_lists_known_ones():
    with pytest.raises(ConfigError) as err:
        hashbench.create("no-such-method", bits=8)
    assert "unknown method 'no-such-method'" in str(err.value)
    assert "itq" in str(err.value) and "lsh" in str(err.value)


def test_create_with_bad_parameter_lists_accepted_ones():
    with pytest.raises(ConfigError, match="accepted: bits, seed"):
        hashbench.create("lsh", bits=8, no_such_param=1)


def test_builtin_methods_are_registered_through_entry_points():
    advertised = {ep.name: ep.value for ep in entry_points(group="hashbench.methods")}
    for name in ("lsh", "pcah", "itq"):
        assert advertised[name].startswith("hashbench_methods.")
        assert name in hashbench.available_methods()
        assert hashbench.get_method(name).name == name


def test_two_classes_claiming_one_name():
    register_method("dup-test")(MedianThreshold)
    try:
        class Other(MedianThreshold):
            pass

        with pytest.raises(PluginError, match="two plugins claim the method name 'dup-test'"):
            register_method("dup-test")(Other)
    finally:
        unregister_method("dup-test")


def test_plugin_that_fails_to_import_names_file_and_error(tmp_path):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("import numpy\n\nraise RuntimeError('boom')\n")
    with pytest.raises(PluginError) as err:
        load_plugin_file(bad)
    assert str(bad) in str(err.value) and "line 3" in str(err.value) and "RuntimeError: boom" in str(err.value)


def test_plugin_with_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "syntax.py"
    bad.write_text("def f(:\n")
    with pytest.raises(PluginError, match="syntax.py failed to import.*SyntaxError"):
        load_plugin_file(bad)
    with pytest.raises(PluginError, match="no such file"):
        load_plugin_file(tmp_path / "missing.py")


def test_plugin_that_registers_nothing(tmp_path):
    empty = tmp_path / "empty_plugin.py"
    empty.write_text("x = 1\n")
    with pytest.raises(PluginError, match="registered no method"):
        load_plugin_file(empty)


def test_plugins_claiming_a_builtin_name(tmp_path):
    clash = tmp_path / "clash.py"
    clash.write_text(textwrap.dedent("""
        import hashbench
        @hashbench.register_method("itq")
        class NotITQ(hashbench.Hasher):
            pass
    """))
    hashbench.available_methods()  # built-ins loaded first
    with pytest.raises(PluginError, match="two plugins claim the method name 'itq'"):
        load_plugin_file(clash)
    assert hashbench.get_method("itq").__module__ == "hashbench_methods.itq"


def test_readme_example_plugin_is_the_shipped_file_and_works(rng):
    readme = (REPO / "docs" / "methods.md").read_text()  # the README's plugin section moved to the docs
    example = (REPO / "examples" / "pca_rr.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert any(b.strip() == example.strip() for b in blocks), "docs/methods.md must show examples/pca_rr.py verbatim"
    names = load_plugin_file(REPO / "examples" / "pca_rr.py")
    try:
        assert names == ["pca-rr"]
        assert "pca-rr" in hashbench.available_methods()
        x = rng.normal(size=(200, 16))
        h = hashbench.create("pca-rr", bits=8, seed=1).fit(x)
        codes = h.encode(x)
        # a rotation of centred PCA projections: the projection is orthonormal
        np.testing.assert_allclose(h.projection_.T @ h.projection_, np.eye(8), atol=1e-10)
        expected = ((x - x.mean(axis=0)) @ h.projection_ > 0).astype(np.uint8)
        np.testing.assert_array_equal(codes, expected)
    finally:
        unregister_method("pca-rr")


def test_named_configurations_are_parameter_sets_and_unknown_ones_are_refused():
    class WithConfigs(Hasher):
        configurations = {"paper": {"n_iter": 7}}

        def __init__(self, bits=32, seed=0, n_iter=50):
            super().__init__(bits=bits, seed=seed)
            self.n_iter = n_iter

    register_method("_with-configs")(WithConfigs)
    try:
        assert hashbench.create("_with-configs@paper", bits=8).n_iter == 7
        assert hashbench.create("_with-configs@paper", bits=8, n_iter=3).n_iter == 3  # explicit wins
        assert hashbench.create("_with-configs", bits=8).n_iter == 50
        with pytest.raises(ConfigError, match="no configuration 'nope'; known: paper"):
            hashbench.create("_with-configs@nope")
        with pytest.raises(ConfigError, match="missing after '@'"):
            hashbench.create("_with-configs@")
    finally:
        unregister_method("_with-configs")
