"""The embedded ``synthetic`` dataset: determinism, protocol, and MIRFLICKR-like statistics.

The statistics are computed from the generated data and checked against ranges
(from the issue and /work/shared/reference-figures.md), never against stored outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.datasets import get_dataset, random_split, relevant_pair_fraction
from hashbench.datasets.synthetic import CONCEPT_WORDS, NOISE_WORDS, PARENT, PLACES, SyntheticFlickr
from hashbench.errors import ConfigError
from hashbench.features import backbone_for


# ----------------------------------------------------------------------------- helpers
def map_from_scores(scores: np.ndarray, relevant: np.ndarray) -> float:
    """mAP@all of rankings by descending score; ties keep database order (stable sort)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    rel = np.take_along_axis(relevant, order, axis=1).astype(np.float64)
    precision = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    n_rel = rel.sum(axis=1)
    ap = np.where(n_rel > 0, (precision * rel).sum(axis=1) / np.maximum(n_rel, 1), 0.0)
    return float(ap.mean())


def tag_matrix(tags: list[list[str]]) -> tuple[np.ndarray, list[str]]:
    vocab = sorted({t for ts in tags for t in ts})
    pos = {w: k for k, w in enumerate(vocab)}
    m = np.zeros((len(tags), len(vocab)), dtype=np.float32)
    rows = np.repeat(np.arange(len(tags)), [len(ts) for ts in tags])
    m[rows, [pos[t] for ts in tags for t in ts]] = 1.0
    return m, vocab


@pytest.fixture(scope="module")
def default_ds() -> SyntheticFlickr:
    return get_dataset("synthetic")


@pytest.fixture(scope="module")
def small_ds() -> SyntheticFlickr:
    return get_dataset("synthetic", n_items=400, n_query=80, seed=3)


# ----------------------------------------------------------------------------- the scorer itself
def test_map_from_scores_matches_hand_computed_values():
    # query 0: ranking r, r', x  -> AP = (1/1 + 2/2) / 2 = 1
    # query 1: ranking x, r, x, r -> AP = (1/2 + 2/4) / 2 = 0.5
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [4.0, 3.0, 2.0, 1.0]])
    relevant = np.array([[True, True, False, False], [False, True, False, True]])
    assert map_from_scores(scores, relevant) == pytest.approx(0.75)
    # ties fall back to database order: all-equal scores rank 0, 1, 2, 3
    assert map_from_scores(np.zeros((1, 4)), np.array([[False, False, True, True]])) == pytest.approx(
        (1 / 3 + 2 / 4) / 2
    )


# ----------------------------------------------------------------------------- API and determinism
def test_api_shapes_and_declared_defaults(small_ds):
    ds = small_ds
    assert ds.name == "synthetic" and len(ds) == 400
    assert ds.ids[0] == "syn000000" and ds.ids[123] == "syn000123" and len(set(ds.ids)) == 400
    assert ds.labels.shape == (400, len(ds.label_names)) and ds.labels.dtype == np.uint8
    assert 10 <= len(ds.label_names) <= 30 and set(np.unique(ds.labels)) <= {0, 1}
    assert "animals" in ds.label_names and "sea" in ds.label_names
    assert len(ds.tags) == 400 and all(isinstance(t, list) for t in ds.tags)
    assert all(isinstance(w, str) and w and w == w.lower() and w.strip() == w for ts in ds.tags for w in ts)
    assert all(len(ts) == len(set(ts)) for ts in ds.tags)  # a tag is listed once per image
    # the stage: ImageNet EfficientNet-Lite0 on the pictures resized to 128 px; other networks see 64 px
    assert ds.default_backbone == "efficientnet-lite0-pool" and ds.default_weights == "imagenet"
    assert ds.default_resize == ds.default_crop == 64
    assert ds.preprocessing("efficientnet-lite0-pool") == (128, 128)
    assert ds.preprocessing("alexnet-fc2") == (64, 64)
    spec = backbone_for(ds)
    assert (spec.name, spec.weights, spec.resize, spec.crop) == ("efficientnet-lite0-pool", "imagenet", 128, 128)
    fast = backbone_for(ds, "alexnet", "random")  # the random stage, one flag away, at the rendered size
    assert (fast.name, fast.weights, fast.resize, fast.crop) == ("alexnet-fc2", "random", 64, 64)
    for option in ("n_items", "n_query", "image_size", "seed", "n_users", "tag_rate", "noise_tags",
                   "confusion_rate", "n_train"):
        assert option in ds.config
    img = ds.load_image(7)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert img.std() > 5  # a picture, not a flat fill
    with pytest.raises(IndexError):
        ds.load_image(400)


def test_same_seed_same_items_other_seed_other_items(small_ds):
    again = get_dataset("synthetic", n_items=400, n_query=80, seed=3, cache_images=False)
    assert again.ids == small_ds.ids
    assert again.tags == small_ds.tags
    assert np.array_equal(again.labels, small_ds.labels)
    for i in (0, 1, 399):
        assert again.load_image(i).tobytes() == small_ds.load_image(i).tobytes()
    assert again.fingerprint_key() == small_ds.fingerprint_key()

    other = get_dataset("synthetic", n_items=400, n_query=80, seed=4)
    assert other.fingerprint_key() != small_ds.fingerprint_key()
    assert other.tags != small_ds.tags
    assert not np.array_equal(other.labels, small_ds.labels)
    assert other.load_image(0).tobytes() != small_ds.load_image(0).tobytes()


def test_cached_image_is_a_copy(small_ds):
    img = small_ds.load_image(5)
    img[:] = 0
    assert small_ds.load_image(5).any()


def test_pickled_for_a_worker_without_the_image_cache_and_same_pixels():
    import pickle

    ds = get_dataset("synthetic", n_items=400, n_query=50)
    first = ds.load_image(3)
    blob = pickle.dumps(ds)
    assert len(blob) < 1_000_000  # the 400 x 64 x 64 x 3 cache (4.9 MB) stays behind
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.load_image(3), first)
    np.testing.assert_array_equal(again.load_image(9), ds.load_image(9))
    np.testing.assert_array_equal(again.labels, ds.labels)
    assert again.tags == ds.tags and again.fingerprint() == ds.fingerprint()


def test_a_smaller_set_is_a_prefix_of_a_larger_one(small_ds):
    big = get_dataset("synthetic", n_items=1100, n_query=100, seed=3)  # crosses a generation block
    assert big.ids[:400] == small_ds.ids and big.tags[:400] == small_ds.tags
    assert np.array_equal(big.labels[:400], small_ds.labels)
    assert big.load_image(399).tobytes() == small_ds.load_image(399).tobytes()


def test_configurable_sizes():
    ds = get_dataset("synthetic", n_items=150, n_query=30, image_size=72, seed=1)
    assert len(ds) == 150 and len(ds.tags) == 150 and ds.labels.shape[0] == 150
    assert ds.default_resize == ds.default_crop == 72
    assert ds.preprocessing("efficientnet-lite0-pool") == (128, 128) and ds.preprocessing("alexnet-fc2") == (72, 72)
    big = get_dataset("synthetic", n_items=20, n_query=5, image_size=160)  # never resized down
    assert big.preprocessing("efficientnet-lite0-pool") == (160, 160)
    assert ds.load_image(149).shape == (72, 72, 3)
    assert ds.make_split(0).sizes() == {"query": 30, "database": 120, "train": 120}
    assert ds.config["image_size"] == 72 and ds.config["n_items"] == 150


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"n_items": 100, "n_query": 100}, "n_query"),
        ({"n_items": 0}, "n_items"),
        ({"image_size": "big"}, "image_size"),
        ({"tag_rate": -0.1}, "tag_rate"),
        ({"n_train": 10_000}, "n_train"),
        ({"protocol": "official"}, "protocol"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_are_named(options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        get_dataset("synthetic", **{"n_items": 100, "n_query": 10, **options})


# ----------------------------------------------------------------------------- protocol
def test_split_roles_sizes_and_disjointness(small_ds):
    split = small_ds.make_split(seed=0)
    assert split.sizes() == {"query": 80, "database": 320, "train": 320}
    assert np.intersect1d(split.query, split.database).size == 0
    assert np.array_equal(np.union1d(split.query, split.database), np.arange(400))
    assert np.array_equal(split.train, split.database)  # the paper's protocol: train = database
    assert np.array_equal(small_ds.make_split(0).query, split.query)
    assert not np.array_equal(small_ds.make_split(1).query, split.query)
    saved = split.to_json(small_ds.ids)
    assert saved["seed"] == 0 and len(saved["query"]) == 80


def test_queries_are_drawn_without_looking_at_labels_or_tags(small_ds):
    # the same sizes with other labels and tags (another seed, other tag noise) give the same roles
    relabelled = get_dataset("synthetic", n_items=400, n_query=80, seed=11, tag_rate=0.3, noise_tags=4.0)
    assert not np.array_equal(relabelled.labels, small_ds.labels)
    for seed in (0, 5):
        a, b = small_ds.make_split(seed), relabelled.make_split(seed)
        assert np.array_equal(a.query, b.query) and np.array_equal(a.database, b.database)
        # and it is the plain uniform draw of the shared helper
        assert np.array_equal(a.query, random_split(400, 80, seed=seed, protocol="random").query)


def test_optional_training_subset():
    ds = get_dataset("synthetic", n_items=300, n_query=50, n_train=100)
    split = ds.make_split(2)
    assert split.sizes() == {"query": 50, "database": 250, "train": 100}
    assert np.isin(split.train, split.database).all()


# ----------------------------------------------------------------------------- labels
def test_label_hierarchy_holds_and_every_item_has_a_label(default_ds):
    ds = default_ds
    col = {n: k for k, n in enumerate(ds.label_names)}
    for child, parent in PARENT.items():
        has_child = ds.labels[:, col[child]] == 1
        assert has_child.any(), f"no item shows {child}"
        assert (ds.labels[has_child, col[parent]] == 1).all(), f"{child} without {parent}"
    assert (ds.labels.sum(axis=1) >= 1).all()
    # every concept occurs, none is in (nearly) every image
    freq = ds.labels.mean(axis=0)
    assert freq.min() > 0.02 and freq.max() < 0.6


# ----------------------------------------------------------------------------- statistics (default size)
def test_default_statistics_are_mirflickr_like(default_ds):
    ds = default_ds
    split = ds.make_split(0)
    lab = ds.labels.astype(np.float32)
    chance = relevant_pair_fraction(ds.labels[split.query], ds.labels[split.database])
    assert 0.45 <= chance <= 0.6
    assert 2.0 <= lab.sum(axis=1).mean() <= 4.0

    tags, vocab = tag_matrix(ds.tags)
    per_image = tags.sum(axis=1)
    assert 4.0 <= per_image.mean() <= 6.0
    assert 200 <= len(vocab) <= 2000
    # some images have no tag or a single one (real data has them), but not many
    assert 0 < (per_image == 0).mean() <= 0.1
    assert 0 < (per_image == 1).mean() <= 0.15

    # ranking by the count of shared tags: informative, but far from the labels in disguise
    relevant = (lab[split.query] @ lab[split.database].T) > 0
    tag_map = map_from_scores(tags[split.query] @ tags[split.database].T, relevant)
    assert chance + 0.02 <= tag_map <= chance + 0.2, (chance, tag_map)
    # whereas ranking by shared labels is perfect: the scorer can tell the two apart
    assert map_from_scores(lab[split.query] @ lab[split.database].T, relevant) == pytest.approx(1.0)


def test_tags_are_noisy_like_flickr_tags(default_ds):
    ds = default_ds
    tags, vocab = tag_matrix(ds.tags)
    col = {w: k for k, w in enumerate(vocab)}
    freq = tags.sum(axis=0)

    # Zipf-like: frequent irrelevant tags dwarf the median tag; log-frequency falls with log-rank
    noise = [col[w] for w in NOISE_WORDS[:5] if w in col]
    assert freq[noise].max() >= 10 * np.median(freq)
    ranked = np.sort(freq)[::-1][:200]
    slope = np.polyfit(np.log(np.arange(1, ranked.size + 1)), np.log(ranked), 1)[0]
    assert -2.0 < slope < -0.4, slope
    assert any(w in col for w in PLACES[:5]) and "50faves" in col

    # missing tags: many (image, present concept) pairs carry no word of that concept
    labels = ds.labels.astype(bool)
    missing = []
    for k, concept in enumerate(ds.label_names):
        words = [col[w] for w in CONCEPT_WORDS[concept] if w in col]
        has_word = tags[:, words].any(axis=1)
        missing.append((~has_word[labels[:, k]]).mean())
        # synonyms: images of a concept use more than its own name
        assert (tags[labels[:, k]][:, words].sum(axis=0) > 0).sum() >= 3, concept
    assert 0.3 < np.mean(missing) < 0.9
    # the labels' own names are not the tags: 'plant_life' never appears as a tag
    assert "plant_life" not in col


# ----------------------------------------------------------------------------- the image signal
def test_images_carry_label_signal_through_pixels_and_a_random_alexnet(small_ds, tmp_path):
    from hashbench.features import BackboneSpec, extract_features

    ds = small_ds
    split = ds.make_split(0)
    lab = ds.labels.astype(np.float32)
    relevant = (lab[split.query] @ lab[split.database].T) > 0
    chance = float(relevant.mean())

    def euclid_map(x: np.ndarray) -> float:
        x = x - x.mean(axis=0)
        q, d = x[split.query], x[split.database]
        dist = (q**2).sum(1)[:, None] - 2 * q @ d.T + (d**2).sum(1)[None]
        return map_from_scores(-dist, relevant)

    images = np.stack([ds.load_image(i) for i in range(len(ds))]).astype(np.float32)
    pixels = images.reshape(len(ds), 16, 4, 16, 4, 3).mean(axis=(2, 4)).reshape(len(ds), -1)
    assert euclid_map(pixels) > chance + 0.05

    spec = BackboneSpec(weights="random", resize=ds.default_resize, crop=ds.default_crop)
    feats, info = extract_features(ds, np.arange(len(ds)), spec, cache=tmp_path, device="cpu", progress=False)
    assert euclid_map(np.asarray(feats, dtype=np.float64)) > chance + 0.03
    # and not trivially: far from the perfect ranking the labels give
    assert euclid_map(np.asarray(feats, dtype=np.float64)) < 0.9


def test_word_vectors_of_tags_extract_more_than_binary_tags_but_are_no_labels(default_ds):
    """As on real MIRFLICKR (reference figures: 0.577 binary, 0.609 word vectors, chance 0.554)."""
    gensim = pytest.importorskip("gensim")
    ds = default_ds
    split = ds.make_split(0)
    lab = ds.labels.astype(np.float32)
    relevant = (lab[split.query] @ lab[split.database].T) > 0
    chance = float(relevant.mean())
    tags, vocab = tag_matrix(ds.tags)
    # skip-gram over each image's tag set (the window spans the whole set), as UDHT trains word2vec
    model = gensim.models.Word2Vec([t for t in ds.tags if t], vector_size=32, window=20, min_count=1, sg=1,
                                   epochs=10, seed=0, workers=1)
    vectors = np.stack([model.wv[w] for w in vocab])
    mean = tags @ vectors / np.maximum(tags.sum(axis=1, keepdims=True), 1)
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    w2v_map = map_from_scores(mean[split.query] @ mean[split.database].T, relevant)
    count_map = map_from_scores(tags[split.query] @ tags[split.database].T, relevant)
    assert count_map + 0.03 < w2v_map < chance + 0.25, (chance, count_map, w2v_map)


# ----------------------------------------------------------------------------- generator version and streams
def test_generator_version_enters_the_fingerprint(monkeypatch):
    import hashbench.datasets.synthetic as synthetic

    ds = get_dataset("synthetic", n_items=50, n_query=10)
    # 2: calibrated (issue 17); 3: the same items on the ImageNet EfficientNet-Lite0 stage (issue 22)
    assert ds.config["generator_version"] == synthetic.GENERATOR_VERSION == 3
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", 2)
    old = get_dataset("synthetic", n_items=50, n_query=10)
    # same items otherwise, but features cached and results stored under version 2 do not match
    assert old.tags == ds.tags and old.fingerprint_key() != ds.fingerprint_key()


def test_tagging_options_change_tags_only():
    a = get_dataset("synthetic", n_items=120, n_query=20, seed=5)
    b = get_dataset("synthetic", n_items=120, n_query=20, seed=5, tag_rate=0.3, noise_tags=5.0, confusion_rate=2.0)
    assert a.tags != b.tags
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.scenes, b.scenes)
    assert a.load_image(7).tobytes() == b.load_image(7).tobytes()
