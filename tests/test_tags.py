"""Tags to vectors (hashbench.tags): normalisation, word-vector loading, mean/idf aggregation, OOV."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gensim.models import KeyedVectors

from hashbench import ConfigError, DataError, WeightsError
from hashbench.tags import (
    aggregate_tag_vectors,
    binary_tag_matrix,
    document_frequency,
    load_word_vectors,
    normalize_tag,
    normalize_tags,
)


def tiny_kv() -> KeyedVectors:
    """Three 2-d words with easy numbers."""
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(["sky", "sea", "dog"], np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], dtype=np.float32))
    return kv


def test_normalize_tag_cases_and_idempotence():
    cases = {
        "  #SunSet ": "sunset",
        "##50Faves!": "50faves",
        "New York": "new_york",
        "Ｃａｔ": "cat",  # full-width letters, NFKC
        "#": "",
        "  ": "",
        "dog.": "dog",
    }
    for raw, want in cases.items():
        assert normalize_tag(raw) == want
        assert normalize_tag(want) == want  # idempotent


def test_normalize_tags_drops_empty_and_duplicates_in_order():
    assert normalize_tags([["#Sky", "sky", "SEA", "#"], [], ["dog"]]) == [["sky", "sea"], [], ["dog"]]
    with pytest.raises(DataError):
        normalize_tags(["sky sea"])  # a string, not a list of tags


def test_mean_aggregation_by_hand():
    kv = tiny_kv()
    tv = aggregate_tag_vectors([["sky", "sea"], ["dog"], ["#SKY", "dog", "sky"]], kv, aggregation="mean")
    np.testing.assert_allclose(tv.vectors[0], [0.5, 1.0])
    np.testing.assert_allclose(tv.vectors[1], [3.0, 3.0])
    np.testing.assert_allclose(tv.vectors[2], [2.0, 1.5])  # duplicate "sky" counted once: (sky + dog) / 2
    assert tv.valid.all()


def test_idf_aggregation_by_hand_both_counts_of_n():
    kv = tiny_kv()
    tags = [["sky", "sea"], ["sky"], ["sky", "dog"], ["sea"]]
    # n(sky) = 3, n(sea) = 2, n(dog) = 1; 4 images; 6 (image, tag) pairs
    for idf_n, big_n in (("images", 4), ("tag_occurrences", 6)):
        tv = aggregate_tag_vectors(tags, kv, aggregation="idf", idf_n=idf_n)
        sky, sea, dog = np.array([1.0, 0]), np.array([0, 2.0]), np.array([3.0, 3.0])
        want = [
            (math.log(big_n / 3) * sky + math.log(big_n / 2) * sea) / 2,
            math.log(big_n / 3) * sky,
            (math.log(big_n / 3) * sky + math.log(big_n / 1) * dog) / 2,
            math.log(big_n / 2) * sea,
        ]
        np.testing.assert_allclose(tv.vectors, np.array(want), rtol=1e-6)
        assert tv.stats["idf_n"] == idf_n


def test_idf_counts_come_from_the_reference_set_when_given():
    kv = tiny_kv()
    ref = document_frequency([["sky"], ["sky"], ["sea"], ["dog"]])  # n(sky)=2, N=4
    tv = aggregate_tag_vectors([["sky"]], kv, aggregation="idf", frequencies=ref)
    np.testing.assert_allclose(tv.vectors[0], math.log(4 / 2) * np.array([1.0, 0.0]), rtol=1e-6)


def test_tag_on_every_image_gets_zero_idf_and_masks_that_image():
    kv = tiny_kv()
    tv = aggregate_tag_vectors([["sky"], ["sky", "sea"]], kv, aggregation="idf", idf_n="images")
    # log(2/2) = 0: the first image's only tag carries no information
    assert not tv.valid[0] and tv.valid[1]
    np.testing.assert_array_equal(tv.vectors[0], 0.0)


def test_out_of_vocabulary_tags_are_skipped_counted_and_masked():
    kv = tiny_kv()
    tv = aggregate_tag_vectors([["sky", "zebra"], ["zebra", "unicorn"], [], ["sea"]], kv)
    np.testing.assert_allclose(tv.vectors[0], [1.0, 0.0])  # m counts in-vocabulary tags only
    assert tv.valid.tolist() == [True, False, False, True]
    assert np.isfinite(tv.vectors).all()
    np.testing.assert_array_equal(tv.vectors[1:3], 0.0)
    s = tv.stats
    assert s["n_oov_occurrences"] == 3 and s["n_oov_unique"] == 2 and s["oov_most_common"][0] == "zebra"
    assert s["n_images_all_oov"] == 1 and s["n_images_without_tags"] == 1 and s["n_images_invalid"] == 2


def test_case_fallback_for_case_sensitive_vectors():
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(["London"], np.array([[1.0, 2.0]], dtype=np.float32))
    tv = aggregate_tag_vectors([["london"]], kv)
    np.testing.assert_allclose(tv.vectors[0], [1.0, 2.0])


def test_bad_aggregation_options():
    with pytest.raises(ConfigError):
        aggregate_tag_vectors([["sky"]], tiny_kv(), aggregation="max")
    with pytest.raises(ConfigError):
        aggregate_tag_vectors([["sky"]], tiny_kv(), aggregation="idf", idf_n="words")


@pytest.mark.parametrize("binary,suffix", [(True, ".bin"), (False, ".txt"), (True, ".w2v"), (False, ".w2v")])
def test_word2vec_files_written_here_are_loaded(tmp_path, binary, suffix):
    kv = tiny_kv()
    path = tmp_path / f"vectors{suffix}"
    kv.save_word2vec_format(str(path), binary=binary)
    loaded, info = load_word_vectors(str(path))
    assert info["source"] == "file" and info["dim"] == 2 and info["vocabulary_size"] == 3
    assert info["format"] == ("word2vec-binary" if binary else "word2vec-text")  # ".w2v": sniffed
    np.testing.assert_allclose(loaded["dog"], [3.0, 3.0])


def test_glove_text_without_header_is_loaded(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("sky 1 0\nsea 0 2\n")
    kv, info = load_word_vectors(str(path))
    assert info["format"] == "glove-text"
    np.testing.assert_allclose(kv["sea"], [0.0, 2.0])


def test_missing_file_and_unreadable_file(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_word_vectors(str(tmp_path / "GoogleNews-vectors-negative300.bin"))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a header\n\x00\x01")
    with pytest.raises(DataError, match="bad.bin"):
        load_word_vectors(str(bad))


def test_downloader_name_offline_is_a_clear_weights_error(monkeypatch):
    import gensim.downloader as api

    def offline(name, return_path=False):
        raise OSError("network is unreachable")

    monkeypatch.setattr(api, "load", offline)
    with pytest.raises(WeightsError) as err:
        load_word_vectors("word2vec-google-news-300")
    msg = str(err.value)
    assert "word2vec-google-news-300" in msg and "word_vectors=/path/to/file" in msg


def test_trained_vectors_are_seeded_cached_and_recorded(tmp_path):
    tags = [["sky", "sea", "beach"], ["sky", "clouds"], ["dog", "cat", "pet"], ["cat", "pet"]] * 10
    kv1, info1 = load_word_vectors("auto", tags=tags, seed=3, cache=tmp_path, train_params={"dim": 8, "epochs": 5})
    kv2, info2 = load_word_vectors("trained", tags=tags, seed=3, cache=tmp_path,
                                   train_params={"dim": 8, "epochs": 5})
    assert info1["source"] == "trained" and info1["cache_hit"] is False and info2["cache_hit"] is True
    assert info1["cache_key"] == info2["cache_key"] and info1["dim"] == 8 and info1["vocabulary_size"] == 7
    np.testing.assert_array_equal(kv1["sky"], kv2["sky"])
    # retrained from scratch (another cache): bit-identical, so the seed alone determines them
    kv3, info3 = load_word_vectors("trained", tags=tags, seed=3, cache=tmp_path / "other",
                                   train_params={"dim": 8, "epochs": 5})
    assert info3["cache_hit"] is False
    np.testing.assert_array_equal(kv1.vectors, kv3.vectors)
    kv4, _ = load_word_vectors("trained", tags=tags, seed=4, cache=tmp_path, train_params={"dim": 8, "epochs": 5})
    assert not np.array_equal(kv1["sky"], kv4["sky"])
    with pytest.raises(ConfigError):
        load_word_vectors("trained")  # no tags to train on


def test_binary_tag_matrix():
    mat, vocab = binary_tag_matrix([["Sky", "sea"], [], ["sea", "#sea"]])
    assert vocab == ["sea", "sky"]
    np.testing.assert_array_equal(mat.toarray(), [[1, 1], [0, 0], [1, 0]])
    shared = (mat @ mat.T).toarray() > 0
    assert shared[0, 2] and not shared[0, 1]
