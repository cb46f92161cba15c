"""``synthetic``: the embedded default dataset, a small offline stand-in for MIRFLICKR-25K.

Nothing is downloaded: every item is generated from ``seed``. The set is built
so that the benchmark's central question (do user tags help image hashing?)
can be asked offline, which needs two things that real Flickr data has and a
toy set usually lacks: images whose content carries a real but imperfect
signal about the labels, and user tags that are informative yet far from the
labels in disguise.

How an item is made
-------------------
1. **Users.** A fixed pool of ``n_users`` photographers with Zipf-like activity
   (a few post much). Each has a topical taste (a Dirichlet draw over scene
   types), a tagging habit (how often they tag what is in the picture, how
   many irrelevant tags they add, and a few pet tags they reuse: camera,
   camera model, home town, an award group), and ~2% never tag at all.
2. **Scene and labels.** The item's user picks a scene type (landscape,
   seaside, street, people, home, animals, garden); each of the 24 MIRFLICKR
   concepts is then present with a scene-dependent probability, and the
   hierarchy of the real annotation is enforced (bird, dog ⊂ animals;
   baby, female, male, portrait ⊂ people; lake, river, sea ⊂ water;
   flower, tree ⊂ plant_life; clouds, sunset ⊂ sky; car ⊂ transport).
   Labels co-occur as in the real set (sky with clouds and water, indoor with
   food and people, ...). About 3.6 labels per image; about half of the
   query-database pairs share a label (MIRFLICKR: 3.8 and 0.55).
3. **Tags.** Drawn the way Flickr users tag, not from the labels' names:
   each present concept is tagged only with the user's tagging probability
   (~0.38 on average: most images miss tags for some of their concepts),
   with a word drawn Zipf-like from the concept's word list (sea: sea,
   beach, ocean, waves, coast, ...; several words are shared between
   concepts, e.g. "forest", "bridge", "family"); now and then a plausible but
   absent concept is tagged (confusion); words of the trip or event that are
   not labels (travel, summer, city, wedding, ...), 40% of them from another
   scene than the one in view; the user's pet tags; and frequent irrelevant
   tags (canon, nikon, explore, 50faves, 2008, london, bw, macro, ...) with
   Zipf frequencies. About 5 tags per image from a vocabulary of a few
   hundred words; some images have zero or one tag.
4. **Image.** An ``image_size`` square RGB picture rendered from the labels:
   each concept has a characteristic colour, shape and texture (sky: blue
   gradient at the top; sea: a wavy blue band under a horizon; structures:
   grey/brick blocks with window grids; people: skin-coloured heads on clothed
   bodies, larger heads for babies, a close-up face for portraits; flowers:
   bright multi-petal stars; night: dark with points of light; ...), drawn
   with random pose, size, count, palette variation and clutter (unrelated
   shapes), on a varied background, then photometric jitter, a random mirror
   and pixel noise. The picture is generated lazily from ``(seed, index)``
   and kept in memory once made (n=6,000 at 64 px is about 74 MB).

Items are generated in blocks of 1,000 from seeds that depend only on
``seed`` and the block, so the first k items are the same whatever
``n_items`` is (a small set is a prefix of the default one).

What the default set measures like
----------------------------------
Seed 0, 6,000 items, split seed 0 (1,000 queries vs 5,000); the tests check
these with ranges, not exact values. MIRFLICKR-25K's figures in brackets.

* labels per image 3.59 (3.78); pairs sharing a label, the chance mAP, 0.541 (0.554);
* tags per image 4.77 (4.64), 5% with no tag, 7% with one, 78% with at least
  three (66%); vocabulary 359 words (1,386); the most frequent tag ("canon")
  is on 39% of images, the median tag on 0.5%;
* mAP@all ranking the database by the count of shared tags: 0.576, chance
  + 0.035 (0.577, chance + 0.023); by the cosine of mean word2vec vectors
  trained on these tags (gensim skip-gram, 64-d): 0.669, chance + 0.13
  (GloVe on the real tags: 0.609): word vectors extract more than binary
  tags, as on the real data, and tags are far from the labels in disguise;
* image-only signal: Euclidean ranking of 16x16 downsampled pixels gives
  0.666, of the FC2 features of the seeded random (He-initialised) AlexNet
  0.616.

Cost on 2 CPU cores: building the set 0.3 s; rendering all 6,000 images
about 4 ms each (22-25 s, once per process); their random-AlexNet FC2
features about 11 s more (then cached on disk by the features stage).

Departures from real Flickr data, on purpose: labels come from seven scene
types, so they co-occur more regularly than in the real set; the pictures
are drawn shapes, not photographs, and their features come from a seeded
random AlexNet (no ImageNet weights offline); the tag vocabulary is smaller
(359 words).

Protocol
--------
:meth:`SyntheticFlickr.make_split` draws ``n_query`` queries uniformly at
random (seeded, without looking at labels or tags); the database is every
other item and the training set is the database (or a random ``n_train``
subset of it when asked), as in the UDHT paper's protocol.

Features come from a fixed seeded *random* AlexNet (``default_weights =
"random"``): there are no ImageNet weights offline. Results say so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import HashingDataset, Split, random_split, register_dataset

#: bump when the generator changes what it produces: it enters the fingerprint
GENERATOR_VERSION = 1
BLOCK = 1000  # items per independently seeded generation block
SCENE_WORD_RATE = 0.4  # mean scene words (trip, event) per image of a user of average verbosity
SCENE_WORD_OFF = 0.4  # share of scene words drawn from another scene than the one in view
CONCEPT_WORD_ZIPF = 1.5  # Zipf exponent of the words of a concept: its own name is the most used

# --------------------------------------------------------------------------- concepts
CONCEPTS: tuple[str, ...] = (
    "animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor",
    "lake", "male", "night", "people", "plant_life", "portrait", "river", "sea", "sky",
    "structures", "sunset", "transport", "tree", "water",
)
_C = {c: k for k, c in enumerate(CONCEPTS)}

#: child -> parent, as in MIRFLICKR-25K's annotation
PARENT: dict[str, str] = {
    "bird": "animals", "dog": "animals",
    "baby": "people", "female": "people", "male": "people", "portrait": "people",
    "lake": "water", "river": "water", "sea": "water",
    "flower": "plant_life", "tree": "plant_life",
    "clouds": "sky", "sunset": "sky",
    "car": "transport",
}

# Tag words of each concept, most frequent first (drawn with Zipf weights).
# Several words belong to two concepts, as real tags do.
CONCEPT_WORDS: dict[str, tuple[str, ...]] = {
    "animals": ("animal", "animals", "pet", "wildlife", "zoo", "cat", "kitten", "horse", "cow", "sheep", "fur", "cute"),
    "baby": ("baby", "child", "kid", "cute", "infant", "toddler", "son", "daughter", "family", "little"),
    "bird": ("bird", "birds", "seagull", "duck", "gull", "pigeon", "feathers", "wings", "flight", "heron", "swan"),
    "car": ("car", "cars", "auto", "vintage", "classic", "automobile", "ford", "vw", "porsche", "wheels", "road"),
    "clouds": ("clouds", "cloud", "cloudy", "storm", "weather", "overcast", "cumulus", "fluffy"),
    "dog": ("dog", "dogs", "puppy", "pet", "pup", "labrador", "terrier", "doggy", "canine"),
    "female": ("girl", "woman", "model", "lady", "beauty", "pretty", "dress", "hair", "she", "mom"),
    "flower": ("flower", "flowers", "macro", "bloom", "blossom", "petals", "rose", "tulip", "daisy", "spring", "pink"),
    "food": ("food", "dinner", "lunch", "cake", "breakfast", "restaurant", "yummy", "delicious", "fruit", "coffee",
             "cooking", "plate"),
    "indoor": ("indoors", "room", "home", "interior", "inside", "kitchen", "window", "table", "lamp", "house"),
    "lake": ("lake", "pond", "reflection", "shore", "calm", "dock", "mountains", "lakeside"),
    "male": ("man", "boy", "guy", "men", "dad", "beard", "dude", "friend", "him"),
    "night": ("night", "dark", "lights", "longexposure", "evening", "nightshot", "moon", "neon", "stars"),
    "people": ("people", "person", "friends", "party", "family", "crowd", "fun", "smile", "wedding", "street"),
    "plant_life": ("green", "nature", "plant", "plants", "leaves", "leaf", "grass", "garden", "forest", "moss", "park"),
    "portrait": ("portrait", "face", "eyes", "me", "selfportrait", "closeup", "smile", "self", "headshot"),
    "river": ("river", "stream", "bridge", "creek", "waterfall", "canal", "rapids", "riverside"),
    "sea": ("sea", "beach", "ocean", "waves", "coast", "sand", "surf", "shore", "seaside", "harbor", "island"),
    "sky": ("sky", "blue", "sun", "horizon", "skies", "bluesky", "skyline", "air"),
    "structures": ("architecture", "building", "city", "church", "buildings", "tower", "urban", "bridge", "castle",
                   "house", "ruins", "wall", "skyscraper"),
    "sunset": ("sunset", "sunrise", "dusk", "orange", "golden", "silhouette", "twilight", "sun", "goldenhour"),
    "transport": ("train", "boat", "bus", "bike", "bicycle", "plane", "railway", "station", "ship", "truck",
                  "motorcycle"),
    "tree": ("tree", "trees", "forest", "autumn", "woods", "fall", "winter", "branches", "oak", "trunk"),
    "water": ("water", "reflection", "blue", "rain", "drops", "splash", "wet", "pool", "fountain", "swimming"),
}

# Scene types: prior weight, presence probability of each concept (children and
# parents are drawn separately, then the hierarchy is closed), the concept used
# when nothing was drawn, and scene words that are tags but not labels.
SCENES: dict[str, dict[str, Any]] = {
    "landscape": dict(
        weight=0.22, main="sky",
        p={"sky": 0.85, "clouds": 0.45, "sunset": 0.15, "water": 0.3, "lake": 0.22, "river": 0.15, "sea": 0.05,
           "plant_life": 0.7, "tree": 0.5, "flower": 0.06, "structures": 0.15, "people": 0.08, "night": 0.04,
           "animals": 0.04, "bird": 0.04},
        words=("landscape", "nature", "travel", "mountain", "hiking", "summer", "outdoor", "scenery", "view")),
    "seaside": dict(
        weight=0.12, main="sea",
        p={"sea": 0.85, "sky": 0.8, "clouds": 0.4, "sunset": 0.35, "people": 0.25, "female": 0.08, "male": 0.08,
           "transport": 0.12, "bird": 0.12, "structures": 0.1, "night": 0.05, "plant_life": 0.08},
        words=("vacation", "holiday", "summer", "travel", "trip", "coast", "sun", "relax")),
    "street": dict(
        weight=0.18, main="structures",
        p={"structures": 0.85, "sky": 0.45, "clouds": 0.12, "car": 0.3, "transport": 0.25, "people": 0.35,
           "female": 0.12, "male": 0.15, "night": 0.28, "tree": 0.15, "river": 0.06, "sunset": 0.04},
        words=("city", "street", "urban", "travel", "downtown", "road", "town", "architecture", "traffic")),
    "people": dict(
        weight=0.2, main="people",
        p={"people": 0.9, "portrait": 0.45, "female": 0.5, "male": 0.45, "baby": 0.1, "indoor": 0.45,
           "food": 0.06, "night": 0.1, "sky": 0.1, "plant_life": 0.08},
        words=("friends", "party", "fun", "family", "wedding", "birthday", "me", "smile", "happy")),
    "home": dict(
        weight=0.1, main="indoor",
        p={"indoor": 0.9, "food": 0.4, "people": 0.35, "baby": 0.12, "female": 0.12, "male": 0.1, "dog": 0.12,
           "animals": 0.06, "flower": 0.08, "night": 0.08},
        words=("home", "house", "christmas", "kitchen", "cozy", "family", "birthday", "weekend")),
    "animals": dict(
        weight=0.08, main="animals",
        p={"animals": 0.85, "dog": 0.4, "bird": 0.35, "plant_life": 0.5, "tree": 0.15, "sky": 0.2, "water": 0.15,
           "lake": 0.06, "people": 0.12, "indoor": 0.08},
        words=("nature", "cute", "wildlife", "zoo", "farm", "pets", "park", "outdoor")),
    "garden": dict(
        weight=0.1, main="flower",
        p={"flower": 0.85, "plant_life": 0.9, "tree": 0.2, "sky": 0.15, "structures": 0.06, "indoor": 0.06,
           "bird": 0.04, "people": 0.05},
        words=("garden", "spring", "summer", "nature", "colors", "macro", "bokeh", "park")),
}
SCENE_NAMES = tuple(SCENES)

# Irrelevant tags with Zipf frequencies, most frequent first: cameras, awards,
# years, photo jargon; places; and a long tail of words about nothing in view.
NOISE_WORDS: tuple[str, ...] = (
    "canon", "nikon", "explore", "2008", "bw", "interestingness", "2007", "macro", "50faves", "hdr",
    "color", "photo", "d80", "abigfave", "2006", "film", "digital", "sony", "400d", "blackandwhite",
    "2009", "art", "red", "white", "photography", "olympus", "lomo", "light", "25faves", "black",
    "eos", "square", "naturesfinest", "supershot", "flickrdiamond", "anawesomeshot", "impressedbeauty",
    "aplusphoto", "diamondclassphotographer", "goldstaraward", "platinumphoto", "10faves", "100views",
    "pentax", "fuji", "lumix", "d200", "350d", "holga", "polaroid", "50mm", "iphone", "colours", "yellow",
    "old", "new", "love", "beautiful", "cool", "random", "me", "day", "friday", "sunday", "walk", "work",
    "music", "project365", "bokeh", "texture", "abstract", "shadow", "vintage", "retro", "funny",
)
PLACES: tuple[str, ...] = (
    "london", "usa", "california", "newyork", "nyc", "paris", "france", "uk", "england", "italy",
    "japan", "tokyo", "germany", "berlin", "spain", "barcelona", "canada", "australia", "sanfrancisco",
    "chicago", "seattle", "amsterdam", "netherlands", "rome", "scotland", "ireland", "mexico", "china",
    "sweden", "brazil", "texas", "florida", "boston", "toronto", "india",
)
CAMERAS: tuple[tuple[str, ...], ...] = (
    ("canon", "400d"), ("nikon", "d80"), ("canon", "eos"), ("nikon", "d200"), ("canon", "350d"),
    ("sony",), ("olympus",), ("pentax",), ("fuji",), ("lumix",), ("iphone",), ("holga", "film"),
    ("lomo", "film"), ("polaroid",),
)
AWARDS: tuple[str, ...] = (
    "explore", "50faves", "abigfave", "naturesfinest", "supershot", "anawesomeshot", "impressedbeauty",
    "aplusphoto", "diamondclassphotographer", "goldstaraward", "platinumphoto", "flickrdiamond",
)


def _zipf(n: int, a: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** a
    return w / w.sum()


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"synthetic dataset: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_rate(name: str, value: Any, high: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (0.0 <= v <= high):
        raise ConfigError(f"synthetic dataset: {name} must be a number in [0, {high}], got {value!r}")
    return v


# --------------------------------------------------------------------------- the dataset
@register_dataset("synthetic", summary="embedded default: MIRFLICKR-like scenes with noisy Flickr-style tags, "
                                       "24 labels, generated offline from a seed")
class SyntheticFlickr(HashingDataset):
    """MIRFLICKR-like synthetic images, multi-labels and noisy user tags (see the module docstring).

    Parameters
    ----------
    n_items, n_query : total items and queries (the database is the rest).
    image_size : side of the square RGB images, in pixels (AlexNet needs >= 63).
    seed : everything (users, labels, tags, images) follows from it.
    n_users : photographers in the pool; fewer users means more shared pet tags.
    tag_rate : scale of the probability that a present concept gets a tag
        (1.0: a user tags a present concept with probability ~0.38 on average, less for the
        parent concepts; 0 gives no concept tags).
    noise_tags : mean number of irrelevant (Zipf-drawn) tags per image, besides pet tags.
    confusion_rate : scale of the probability of tagging a plausible concept that is absent.
    n_train : size of the training role, a random subset of the database (None: the database).
    protocol : only "random" (queries uniformly at random; database = the rest).
    cache_images : keep generated images in memory (does not change the items, so not in ``config``).
    """

    name = "synthetic"
    summary = "embedded default: MIRFLICKR-like synthetic scenes with noisy user tags"
    default_weights = "random"
    # class-level values describe the default image_size (the CLI reads them before
    # building the dataset); an instance overrides them with its own image_size
    default_resize = 64
    default_crop = 64

    def __init__(
        self,
        n_items: int = 6000,
        n_query: int = 1000,
        image_size: int = 64,
        seed: int = 0,
        *,
        n_users: int = 300,
        tag_rate: float = 1.0,
        noise_tags: float = 2.2,
        confusion_rate: float = 1.0,
        n_train: int | None = None,
        protocol: str = "random",
        cache_images: bool = True,
        skip_corrupt: bool = False,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigError(
                f"synthetic dataset: unknown option(s) {', '.join(sorted(unknown))}; known options: n_items, "
                "n_query, image_size, seed, n_users, tag_rate, noise_tags, confusion_rate, n_train, protocol"
            )
        if protocol != "random":
            raise ConfigError(f"synthetic dataset: protocol must be 'random' (the only one it has), got {protocol!r}")
        del skip_corrupt  # accepted for CLI uniformity: generated images cannot be corrupt
        n_items = _check_int("n_items", n_items, 2)
        n_query = _check_int("n_query", n_query, 1)
        if n_query >= n_items:
            raise ConfigError(f"synthetic dataset: n_query ({n_query}) must be smaller than n_items ({n_items})")
        image_size = _check_int("image_size", image_size, 16)
        seed = _check_int("seed", seed, 0)
        n_users = _check_int("n_users", n_users, 1)
        tag_rate = _check_rate("tag_rate", tag_rate, 2.0)
        noise_tags = _check_rate("noise_tags", noise_tags, 50.0)
        confusion_rate = _check_rate("confusion_rate", confusion_rate, 10.0)
        if n_train is not None:
            n_train = _check_int("n_train", n_train, 1)
            if n_train > n_items - n_query:
                raise ConfigError(
                    f"synthetic dataset: n_train ({n_train}) exceeds the database size ({n_items - n_query})"
                )
        self.n_query = n_query
        self.n_train = n_train
        self.image_size = image_size
        self.seed = seed
        # images are generated at their final size: the backbone neither resizes nor crops
        self.default_resize = self.default_crop = image_size
        self.config = {
            "n_items": n_items, "n_query": n_query, "image_size": image_size, "seed": seed,
            "n_users": n_users, "tag_rate": tag_rate, "noise_tags": noise_tags,
            "confusion_rate": confusion_rate, "n_train": n_train, "generator_version": GENERATOR_VERSION,
        }
        self.ids = [f"syn{i:06d}" for i in range(n_items)]
        self.label_names = list(CONCEPTS)

        users = _make_users(seed, n_users, tag_rate)
        labels, scenes, user_of, tags = [], [], [], []
        for b in range(0, n_items, BLOCK):
            # whole blocks are always drawn, then cut: item i never depends on n_items
            keep = min(BLOCK, n_items - b)
            lab, scn, usr, tg = _make_block(seed, b // BLOCK, BLOCK, users, tag_rate, noise_tags, confusion_rate)
            labels.append(lab[:keep])
            scenes.append(scn[:keep])
            user_of.append(usr[:keep])
            tags.extend(tg[:keep])
        self.labels = np.concatenate(labels).astype(np.uint8)
        self.scenes = np.concatenate(scenes)  # scene type index of each item (not a label)
        self.users = np.concatenate(user_of)  # photographer of each item
        self.tags = tags
        self._cache: np.ndarray | None = None
        self._cached: np.ndarray | None = None
        if cache_images:
            self._cache = np.zeros((n_items, image_size, image_size, 3), dtype=np.uint8)
            self._cached = np.zeros(n_items, dtype=bool)

    # ------------------------------------------------------------------ items
    def load_image(self, index: int) -> np.ndarray:
        """The (S, S, 3) uint8 image of item ``index``, generated from (seed, index)."""
        i = int(index)
        if not 0 <= i < len(self.ids):
            raise IndexError(f"synthetic dataset: item {index} is out of range 0..{len(self.ids) - 1}")
        if self._cache is not None and self._cached[i]:
            return self._cache[i].copy()
        rng = np.random.default_rng([self.seed, 2, i])
        present = {CONCEPTS[k] for k in np.flatnonzero(self.labels[i])}
        img = render_scene(present, SCENE_NAMES[self.scenes[i]], self.image_size, rng)
        if self._cache is not None:
            self._cache[i] = img
            self._cached[i] = True
        return img

    def image_source(self, index: int) -> str:
        return f"synthetic[{index}] (id {self.ids[int(index)]}, generated from seed {self.seed})"

    # --------------------------------------------------------------- protocol
    def make_split(self, seed: int = 0) -> Split:
        """Queries uniformly at random (seeded, blind to labels and tags); database = the rest = train."""
        return random_split(len(self), self.n_query, seed=seed, protocol="random", n_train=self.n_train)


# --------------------------------------------------------------------------- generation
def _make_users(seed: int, n_users: int, tag_rate: float) -> dict[str, np.ndarray]:
    """The photographer pool: activity, taste, tagging habits and pet tags."""
    rng = np.random.default_rng([seed, 0])
    prior = np.array([SCENES[s]["weight"] for s in SCENE_NAMES])
    prior = prior / prior.sum()
    activity = rng.permutation(_zipf(n_users, 0.5))
    taste = rng.dirichlet(3.0 * prior * len(prior), size=n_users)  # mild topical preference
    verbosity = rng.gamma(2.0, 0.5, size=n_users)  # mean 1
    verbosity[rng.random(n_users) < 0.02] = 0.0  # users who never tag
    p_tag = np.clip(rng.beta(2.0, 2.5, size=n_users) * 0.85 * tag_rate, 0.0, 1.0)  # mean ~0.38
    p_tag[verbosity == 0] = 0.0
    # pet tags: a camera (1-2 words), a home town, sometimes an award group
    pets = []
    cam_w = _zipf(len(CAMERAS), 1.0)
    place_w = _zipf(len(PLACES), 0.9)
    award_w = _zipf(len(AWARDS), 1.0)
    cams = rng.choice(len(CAMERAS), size=n_users, p=cam_w)
    places = rng.choice(len(PLACES), size=n_users, p=place_w)
    awards = rng.choice(len(AWARDS), size=n_users, p=award_w)
    has_cam, has_place, has_award = rng.random((3, n_users)) < np.array([[0.55], [0.5], [0.25]])
    for u in range(n_users):
        p = list(CAMERAS[cams[u]]) if has_cam[u] else []
        if has_place[u]:
            p.append(PLACES[places[u]])
        if has_award[u]:
            p.append(AWARDS[awards[u]])
        pets.append(tuple(p))
    return {"activity": activity / activity.sum(), "taste": taste, "verbosity": verbosity,
            "p_tag": p_tag, "pets": pets}


_SCENE_P = np.array([[SCENES[s]["p"].get(c, 0.0) for c in CONCEPTS] for s in SCENE_NAMES])
_SCENE_MAIN = np.array([_C[SCENES[s]["main"]] for s in SCENE_NAMES])
_CHILD_PARENT = [(_C[c], _C[p]) for c, p in PARENT.items()]
_IS_PARENT = np.isin(np.arange(len(CONCEPTS)), [p for _, p in _CHILD_PARENT])
_NOISE_VOCAB = NOISE_WORDS + PLACES
_SCENE_WORD_CDF = np.ones((len(SCENE_NAMES), max(len(SCENES[s]["words"]) for s in SCENE_NAMES)))
for _k, _s in enumerate(SCENE_NAMES):
    _n = len(SCENES[_s]["words"])
    _SCENE_WORD_CDF[_k, :_n] = np.cumsum(_zipf(_n, 1.0))
    _SCENE_WORD_CDF[_k, _n - 1] = 1.0  # guard against rounding: an index never passes the list's end
_SCENE_WORD_TABLE = np.array([list(SCENES[s]["words"]) + [""] * (_SCENE_WORD_CDF.shape[1] - len(SCENES[s]["words"]))
                              for s in SCENE_NAMES], dtype=object)
_NOISE_W = np.concatenate([_zipf(len(NOISE_WORDS), 1.0) * 0.8, _zipf(len(PLACES), 1.0) * 0.2])


def _make_block(seed: int, block: int, size: int, users: dict[str, np.ndarray], tag_rate: float,
                noise_tags: float, confusion_rate: float):
    """Labels, scene types, users and tags of one block of items (vectorised draws)."""
    rng = np.random.default_rng([seed, 1, block])
    n_c = len(CONCEPTS)
    user = rng.choice(len(users["activity"]), size=size, p=users["activity"])
    cum = np.cumsum(users["taste"][user], axis=1)
    scene = np.minimum((rng.random(size)[:, None] > cum).sum(axis=1), len(SCENE_NAMES) - 1)
    p = _SCENE_P[scene]
    lab = rng.random((size, n_c)) < p
    empty = ~lab.any(axis=1)
    lab[empty, _SCENE_MAIN[scene[empty]]] = True  # every item shows something labelled
    for child, parent in _CHILD_PARENT:  # close the hierarchy last, so that it always holds
        lab[:, parent] |= lab[:, child]

    verb = users["verbosity"][user]
    # concept tags: parents are named less often than their children
    salience = np.where(_IS_PARENT, 0.6, 1.0)
    tagged = lab & (rng.random((size, n_c)) < users["p_tag"][user][:, None] * salience)
    # confusion: a concept that fits the scene but is not labelled gets tagged
    confused = ~lab & (rng.random((size, n_c)) < 0.12 * confusion_rate * p * (verb > 0)[:, None])
    extra_word = rng.random((size, n_c)) < 0.3  # a second word for the same concept
    word_pick = [rng.choice(len(CONCEPT_WORDS[c]), size=(size, 2), p=_zipf(len(CONCEPT_WORDS[c]), CONCEPT_WORD_ZIPF))
                 for c in CONCEPTS]
    n_scene_words = rng.poisson(SCENE_WORD_RATE * verb)
    # scene words: inverse-CDF draws from a scene's list, all at once; some come from another
    # scene (the trip or event the photo belongs to, not what is in view)
    word_scene = np.repeat(scene, n_scene_words)
    off = rng.random(word_scene.size) < SCENE_WORD_OFF
    word_scene[off] = rng.integers(len(SCENE_NAMES), size=int(off.sum()))
    u = rng.random(word_scene.size)
    pick = (u[:, None] > _SCENE_WORD_CDF[word_scene]).sum(axis=1)
    scene_words = np.split(_SCENE_WORD_TABLE[word_scene, pick], np.cumsum(n_scene_words)[:-1])
    n_noise = rng.poisson(noise_tags * verb)
    noise_pick = np.split(rng.choice(len(_NOISE_VOCAB), size=int(n_noise.sum()), p=_NOISE_W),
                          np.cumsum(n_noise)[:-1])
    pet_draw = rng.random((size, 4))
    order_keys = rng.random((size, 64))

    tags: list[list[str]] = []
    for i in range(size):
        words: list[str] = []
        for k in np.flatnonzero(tagged[i] | confused[i]):
            wl = CONCEPT_WORDS[CONCEPTS[k]]
            words.append(wl[word_pick[k][i, 0]])
            if extra_word[i, k]:
                words.append(wl[word_pick[k][i, 1]])
        words += scene_words[i].tolist()
        pets = users["pets"][user[i]]
        words += [w for j, w in enumerate(pets) if pet_draw[i, j] < 0.7 * min(1.0, verb[i])]
        words += [_NOISE_VOCAB[j] for j in noise_pick[i]]
        unique = list(dict.fromkeys(words))  # a tag is listed once, like Flickr
        perm = np.argsort(order_keys[i, : len(unique)]) if len(unique) <= 64 else rng.permutation(len(unique))
        tags.append([unique[j] for j in perm])
    return lab, scene.astype(np.int8), user.astype(np.int32), tags


# --------------------------------------------------------------------------- rendering
class _Canvas:
    """A float RGB image with soft-edged (antialiased) shape masks on [0, 1]^2 coordinates."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.S = size
        c = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.Y, self.X = np.meshgrid(c, c, indexing="ij")
        self.img = np.zeros((size, size, 3), dtype=np.float32)
        self.rng = rng

    def _edge(self, signed_dist: np.ndarray) -> np.ndarray:
        # signed distance (in image units, positive inside) -> coverage of ~1 pixel ramp
        return np.clip(signed_dist * self.S + 0.5, 0.0, 1.0)

    def _uv(self, cx: float, cy: float, angle: float):
        dx, dy = self.X - cx, self.Y - cy
        c, s = np.cos(angle), np.sin(angle)
        return dx * c + dy * s, -dx * s + dy * c

    def ellipse(self, cx, cy, rx, ry, angle=0.0) -> np.ndarray:
        u, v = self._uv(cx, cy, angle)
        r = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
        return self._edge((1.0 - r) * min(rx, ry))

    def rect(self, cx, cy, w, h, angle=0.0) -> np.ndarray:
        u, v = self._uv(cx, cy, angle)
        return self._edge(np.minimum(w / 2 - np.abs(u), h / 2 - np.abs(v)))

    def polygon(self, pts) -> np.ndarray:
        """Convex polygon given by its vertices (x, y), either orientation."""
        pts = np.asarray(pts, dtype=np.float32)
        area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
        sign = 1.0 if area > 0 else -1.0
        d = np.full(self.X.shape, np.inf, dtype=np.float32)
        for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0)):
            ex, ey = x1 - x0, y1 - y0
            norm = np.hypot(ex, ey) + 1e-9
            d = np.minimum(d, sign * (ex * (self.Y - y0) - ey * (self.X - x0)) / norm)
        return self._edge(d)

    def star(self, cx, cy, r, k, depth, angle=0.0) -> np.ndarray:
        """A k-petal flower/star: radius modulated by cos(k*theta)."""
        dx, dy = self.X - cx, self.Y - cy
        rho = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx)
        rad = r * (1.0 - depth * (0.5 - 0.5 * np.cos(k * (theta - angle))))
        return self._edge(rad - rho)

    def stripes(self, freq, angle, phase=0.0) -> np.ndarray:
        return 0.5 + 0.5 * np.sin(2 * np.pi * freq * (self.X * np.cos(angle) + self.Y * np.sin(angle)) + phase)

    def smooth_noise(self, cells: int) -> np.ndarray:
        """Value noise in [0, 1]: a (cells+1)^2 random grid, bilinearly upsampled."""
        g = self.rng.random((cells + 1, cells + 1)).astype(np.float32)
        t = self.Y[:, 0] * cells
        i0 = np.minimum(t.astype(np.int64), cells - 1)
        f = t - i0
        rows = g[i0] * (1 - f)[:, None] + g[i0 + 1] * f[:, None]  # (S, cells+1)
        return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]

    def paint(self, mask: np.ndarray, colour, shade: np.ndarray | None = None) -> None:
        col = np.asarray(colour, dtype=np.float32)
        col = col if shade is None else col * shade[..., None]
        self.img += mask[..., None] * (col - self.img)

    def vgradient(self, top, bottom, y0=0.0, y1=1.0) -> np.ndarray:
        t = np.clip((self.Y - y0) / max(y1 - y0, 1e-6), 0, 1)[..., None]
        return np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t


def _jitter(rng: np.random.Generator, colour, amount: float = 18.0) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.normal(0, amount, 3), 0, 255)


def _pick(rng: np.random.Generator, palette, amount: float = 18.0) -> np.ndarray:
    return _jitter(rng, palette[rng.integers(len(palette))], amount)


SKIN = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36))
HAIR = ((30, 25, 20), (90, 60, 30), (220, 190, 110), (160, 70, 30))
FEMALE_CLOTHES = ((215, 40, 60), (240, 120, 180), (140, 60, 170), (245, 245, 240), (250, 170, 60))
MALE_CLOTHES = ((30, 40, 90), (110, 110, 115), (30, 30, 35), (40, 80, 50), (70, 110, 180))
PEOPLE_CLOTHES = FEMALE_CLOTHES + MALE_CLOTHES
BABY_CLOTHES = ((170, 200, 240), (250, 200, 220), (250, 250, 245), (250, 240, 170))
FLOWER_COLOURS = ((220, 30, 40), (240, 210, 30), (240, 120, 180), (140, 60, 170), (245, 245, 245), (250, 140, 20))
CAR_COLOURS = ((200, 30, 30), (30, 60, 180), (180, 180, 190), (30, 30, 35), (235, 200, 30), (240, 240, 240))
BUILDING = ((150, 150, 155), (160, 70, 50), (210, 190, 150), (225, 225, 220), (90, 130, 160))
WALLS = ((225, 215, 190), (200, 185, 160), (190, 205, 190), (170, 140, 110), (230, 230, 235))
DOG = ((140, 90, 50), (35, 30, 30), (210, 160, 80), (230, 225, 215))
BIRD = ((40, 40, 45), (110, 80, 50), (235, 235, 235), (60, 90, 170))
ANIMAL = ((220, 130, 50), (130, 130, 130), (110, 70, 40), (240, 240, 235))
FOOD = ((200, 40, 30), (140, 80, 40), (80, 160, 60), (230, 200, 60), (240, 140, 40))
CLUTTER = ((200, 50, 50), (50, 150, 50), (50, 50, 200), (220, 220, 60), (200, 200, 200), (60, 60, 60),
           (160, 100, 60), (90, 200, 200))


def render_scene(present: set[str], scene: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw an (size, size, 3) uint8 picture of the concepts in ``present`` (layered back to front)."""
    cv = _Canvas(size, rng)
    r = rng.random
    indoor = "indoor" in present
    horizon = 0.35 + 0.3 * r()

    # ---- background
    if indoor:
        wall = _pick(rng, WALLS, 12)
        cv.img[:] = cv.vgradient(wall * (0.85 + 0.2 * r()), wall * (0.7 + 0.2 * r()))
        floor_y = 0.65 + 0.2 * r()
        floor = cv.rect(0.5, (floor_y + 1.2) / 2, 2.0, 1.2 - floor_y)
        cv.paint(floor, _jitter(rng, (130, 85, 50), 20), 0.8 + 0.25 * cv.stripes(6 + 6 * r(), np.pi / 2))
        if r() < 0.5:  # a window or a picture frame
            cv.paint(cv.rect(0.2 + 0.6 * r(), 0.1 + 0.3 * r(), 0.15 + 0.2 * r(), 0.15 + 0.2 * r()),
                     _jitter(rng, (190, 215, 240) if r() < 0.6 else (120, 90, 60), 20))
    else:
        if "sky" in present:
            if "sunset" in present:
                sky = cv.vgradient(_jitter(rng, (70, 40, 110)), _jitter(rng, (250, 140, 50)), 0, horizon)
            else:
                sky = cv.vgradient(_jitter(rng, (60, 110, 200)), _jitter(rng, (170, 200, 235)), 0, horizon)
            cv.img[:] = sky
            ground_top = horizon
        else:
            ground_top = -0.1
            cv.img[:] = _jitter(rng, (120, 120, 120), 30)
        # ground: grass if there are plants, sand by the sea, else earth or pavement
        if "plant_life" in present:
            ground = _jitter(rng, (70, 140, 50), 20)
        elif "sea" in present:
            ground = _jitter(rng, (220, 200, 150), 15)
        elif scene == "street" or "structures" in present:
            ground = _jitter(rng, (120, 120, 125), 15)
        else:
            ground = _jitter(rng, (130, 100, 70), 20)
        gmask = cv._edge(cv.Y - ground_top)
        cv.paint(gmask, ground, 0.75 + 0.45 * cv.smooth_noise(int(4 + 6 * r())))
        if "sea" in present:
            shore = horizon + (1 - horizon) * (0.45 + 0.4 * r()) if "sky" in present else 0.55 + 0.4 * r()
            top = horizon if "sky" in present else -0.1
            sea = cv._edge(np.minimum(cv.Y - top, shore + 0.03 * np.sin(cv.X * 9 + 6 * r()) - cv.Y))
            cv.paint(sea, _jitter(rng, (20, 70, 140), 15),
                     0.8 + 0.35 * cv.stripes(12 + 10 * r(), np.pi / 2 + 0.1 * rng.normal()))
        if "lake" in present:
            cy = ground_top + (1 - max(ground_top, 0)) * (0.3 + 0.3 * r())
            cv.paint(cv.ellipse(0.5 + 0.3 * rng.normal(), cy, 0.3 + 0.2 * r(), 0.08 + 0.1 * r()),
                     _jitter(rng, (40, 90, 100), 15), 0.85 + 0.2 * cv.smooth_noise(3))
        if "river" in present:
            a = (r() - 0.5) * 1.2
            band = cv.rect(0.5 + 0.2 * rng.normal(), 0.5 + (1 - max(ground_top, 0)) * 0.3, 0.08 + 0.1 * r(), 2.0, a)
            band *= gmask
            cv.paint(band, _jitter(rng, (60, 110, 150), 15), 0.8 + 0.3 * cv.stripes(14, a + np.pi / 2, 6 * r()))
        if "water" in present and not present & {"sea", "lake", "river"}:  # pool, fountain, rain
            cv.paint(cv.rect(0.5 + 0.2 * rng.normal(), 0.7 + 0.15 * r(), 0.5 + 0.4 * r(), 0.2 + 0.2 * r()),
                     _jitter(rng, (60, 180, 210), 20), 0.8 + 0.3 * cv.stripes(10 + 8 * r(), r() * np.pi))

    # ---- sky objects
    if "sunset" in present and not indoor:
        cv.paint(cv.ellipse(r(), horizon - 0.02, 0.06 + 0.05 * r(), 0.06 + 0.05 * r()),
                 _jitter(rng, (255, 220, 90), 10))
    if "clouds" in present and not indoor:
        grey = r() < 0.3
        for _ in range(rng.integers(2, 6)):
            cv.paint(0.9 * cv.ellipse(r(), horizon * r() * 0.9, 0.08 + 0.12 * r(), 0.03 + 0.05 * r()),
                     _jitter(rng, (150, 150, 160) if grey else (245, 245, 248), 8))

    # ---- buildings
    if "structures" in present:
        base = horizon + 0.05 if not indoor and "sky" in present else 1.0
        for _ in range(rng.integers(1, 4)):
            w, h = 0.12 + 0.25 * r(), 0.25 + 0.45 * r()
            cx = r()
            col = _pick(rng, BUILDING, 15)
            cv.paint(cv.rect(cx, base - h / 2, w, h), col)
            win = (cv.stripes(18 + 10 * r(), 0) > 0.6) & (cv.stripes(18 + 10 * r(), np.pi / 2) > 0.6)
            cv.paint(cv.rect(cx, base - h / 2, w * 0.85, h * 0.9) * win, col * 0.45)
            if r() < 0.4:  # roof or spire
                cv.paint(cv.polygon([(cx - w / 2, base - h), (cx + w / 2, base - h),
                                     (cx, base - h - 0.1 - 0.15 * r())]),
                         col * 0.7)

    # ---- plants
    ground_y = 0.85 if indoor else max(horizon, 0.3) + (1 - max(horizon, 0.3)) * 0.4
    if "tree" in present:
        autumn = r() < 0.25
        for _ in range(rng.integers(1, 4)):
            x, s = r(), 0.6 + 0.8 * r()
            cv.paint(cv.rect(x, ground_y - 0.1 * s, 0.04 * s, 0.22 * s), _jitter(rng, (90, 60, 35), 10))
            crown = cv.ellipse(x, ground_y - 0.28 * s, 0.12 * s, 0.15 * s)
            cv.paint(crown, _jitter(rng, (200, 110, 30) if autumn else (40, 110, 40), 20),
                     0.7 + 0.5 * cv.smooth_noise(8))
    elif "plant_life" in present and "flower" not in present:
        for _ in range(rng.integers(1, 4)):  # bushes
            cv.paint(cv.ellipse(r(), ground_y + 0.05 * r(), 0.08 + 0.1 * r(), 0.05 + 0.07 * r()),
                     _jitter(rng, (50, 120, 45), 20), 0.7 + 0.5 * cv.smooth_noise(8))
    if "flower" in present:
        close = scene == "garden" and r() < 0.6
        for _ in range(rng.integers(1, 3) if close else rng.integers(3, 9)):
            rad = (0.15 + 0.2 * r()) if close else (0.03 + 0.04 * r())
            x, y = r(), (0.2 + 0.6 * r()) if close else (ground_y - 0.1 + 0.3 * r())
            cv.paint(cv.star(x, y, rad, int(rng.integers(5, 9)), 0.4 + 0.4 * r(), r() * 6),
                     _pick(rng, FLOWER_COLOURS, 15))
            cv.paint(cv.ellipse(x, y, rad * 0.3, rad * 0.3), _jitter(rng, (240, 200, 40), 15))

    # ---- vehicles
    if "car" in present:
        for _ in range(rng.integers(1, 3)):
            x, y, s = r(), ground_y + 0.1 * r(), 0.7 + 0.7 * r()
            col = _pick(rng, CAR_COLOURS, 12)
            cv.paint(cv.rect(x, y - 0.05 * s, 0.3 * s, 0.08 * s), col)
            cv.paint(cv.rect(x, y - 0.11 * s, 0.16 * s, 0.06 * s), col * 0.8)
            cv.paint(cv.rect(x, y - 0.11 * s, 0.13 * s, 0.04 * s), _jitter(rng, (150, 190, 220), 10))
            for dx in (-0.09, 0.09):
                cv.paint(cv.ellipse(x + dx * s, y, 0.035 * s, 0.035 * s), (20, 20, 20))
    elif "transport" in present:
        kind = rng.integers(3)
        if kind == 0 or ("water" in present and r() < 0.7):  # boat: hull and sail
            x, y, s = r(), (horizon + 0.1 if "sky" in present else 0.7), 0.6 + 0.6 * r()
            cv.paint(cv.polygon([(x - 0.15 * s, y), (x + 0.15 * s, y),
                                 (x + 0.1 * s, y + 0.05 * s), (x - 0.1 * s, y + 0.05 * s)]),
                     _pick(rng, ((120, 60, 30), (240, 240, 240), (200, 40, 40)), 10))
            cv.paint(cv.polygon([(x, y - 0.25 * s), (x, y - 0.01), (x + 0.12 * s, y - 0.01)]),
                     _jitter(rng, (245, 245, 240), 8))
        elif kind == 1:  # train or bus: long box with a row of windows
            y, s = ground_y, 0.7 + 0.5 * r()
            col = _pick(rng, ((220, 40, 40), (240, 200, 30), (40, 90, 170), (60, 140, 70)), 12)
            cv.paint(cv.rect(0.5, y - 0.08 * s, 0.9, 0.16 * s), col)
            cv.paint(cv.rect(0.5, y - 0.11 * s, 0.85, 0.05 * s) * (cv.stripes(12, 0) > 0.4), (60, 80, 100))
        else:  # a plane in the sky
            x, y = r(), 0.15 + 0.2 * r()
            cv.paint(cv.rect(x, y, 0.22, 0.035, 0.2 * rng.normal()) + cv.rect(x, y, 0.04, 0.2), (230, 230, 235))

    # ---- animals
    if "dog" in present:
        for _ in range(rng.integers(1, 3)):
            x, y, s = r(), ground_y + 0.05 * r(), 0.6 + 0.8 * r()
            col = _pick(rng, DOG, 12)
            f = 1 if r() < 0.5 else -1
            for dx in (-0.06, -0.03, 0.03, 0.06):
                cv.paint(cv.rect(x + dx * s, y - 0.03 * s, 0.02 * s, 0.07 * s), col * 0.9)
            cv.paint(cv.ellipse(x, y - 0.08 * s, 0.1 * s, 0.045 * s), col)
            cv.paint(cv.ellipse(x + f * 0.1 * s, y - 0.14 * s, 0.04 * s, 0.035 * s), col)
            cv.paint(cv.ellipse(x + f * 0.13 * s, y - 0.17 * s, 0.012 * s, 0.03 * s, 0.4 * f), col * 0.6)  # ear
    if "bird" in present:
        for _ in range(rng.integers(1, 5)):
            x, y, s = r(), 0.1 + 0.5 * r(), 0.4 + 0.8 * r()
            col = _pick(rng, BIRD, 12)
            cv.paint(cv.polygon([(x - 0.08 * s, y - 0.04 * s), (x, y), (x - 0.02 * s, y + 0.01 * s)]), col)
            cv.paint(cv.polygon([(x + 0.08 * s, y - 0.04 * s), (x, y), (x + 0.02 * s, y + 0.01 * s)]), col)
            cv.paint(cv.ellipse(x, y, 0.025 * s, 0.015 * s), col * 0.9)
    if "animals" in present and not present & {"dog", "bird"}:
        x, y, s = r(), ground_y, 0.7 + 0.8 * r()
        col = _pick(rng, ANIMAL, 12)
        for dx in (-0.08, 0.08):
            cv.paint(cv.rect(x + dx * s, y - 0.04 * s, 0.025 * s, 0.1 * s), col * 0.85)
        cv.paint(cv.ellipse(x, y - 0.11 * s, 0.13 * s, 0.06 * s), col, 0.8 + 0.4 * (cv.smooth_noise(6) > 0.6))
        cv.paint(cv.ellipse(x + 0.14 * s, y - 0.17 * s, 0.045 * s, 0.04 * s), col)

    # ---- food on a plate
    if "food" in present:
        x, y, s = 0.3 + 0.4 * r(), 0.55 + 0.3 * r(), 0.7 + 0.7 * r()
        if indoor:
            cv.paint(cv.rect(0.5, y + 0.1, 1.2, 0.3), _jitter(rng, (150, 100, 60), 15))
        cv.paint(cv.ellipse(x, y, 0.22 * s, 0.13 * s), _jitter(rng, (240, 240, 235), 8))
        for _ in range(rng.integers(2, 6)):
            cv.paint(cv.ellipse(x + 0.12 * s * rng.normal() * 0.6, y + 0.06 * s * rng.normal() * 0.6,
                                0.04 * s + 0.03 * r(), 0.03 * s + 0.02 * r(), r() * 3), _pick(rng, FOOD, 20),
                     0.8 + 0.3 * cv.smooth_noise(6))

    # ---- people
    if "portrait" in present:  # a close-up face fills the picture
        x, y, s = 0.5 + 0.1 * rng.normal(), 0.5 + 0.08 * rng.normal(), 0.8 + 0.4 * r()
        skin, hair = _pick(rng, SKIN, 8), _pick(rng, HAIR, 10)
        longhair = "female" in present or ("male" not in present and r() < 0.5)
        clothes = FEMALE_CLOTHES if "female" in present else MALE_CLOTHES if "male" in present else PEOPLE_CLOTHES
        cv.paint(cv.rect(x, y + 0.45 * s, 0.7 * s, 0.4 * s), _pick(rng, clothes))
        if longhair:
            cv.paint(cv.ellipse(x, y + 0.08 * s, 0.28 * s, 0.38 * s), hair)
        else:
            cv.paint(cv.ellipse(x, y - 0.1 * s, 0.25 * s, 0.22 * s), hair)
        cv.paint(cv.ellipse(x, y, 0.2 * s, 0.27 * s), skin)
        for dx in (-0.08, 0.08):
            cv.paint(cv.ellipse(x + dx * s, y - 0.04 * s, 0.03 * s, 0.02 * s), (35, 30, 30))
        cv.paint(cv.ellipse(x, y + 0.13 * s, 0.07 * s, 0.02 * s), _jitter(rng, (170, 70, 70), 15))
    elif "people" in present:
        kinds = [k for k in ("female", "male", "baby") if k in present] or ["person"]
        n_fig = max(len(kinds), int(rng.integers(1, 4)))
        for j in range(n_fig):
            kind = kinds[j % len(kinds)]
            x, s = (j + 0.5 + 0.4 * rng.normal()) / n_fig, (0.8 + 0.6 * r()) * (0.6 if kind == "baby" else 1.0)
            y = min(ground_y + 0.1 * r(), 0.98)  # feet
            skin, hair = _pick(rng, SKIN, 8), _pick(rng, HAIR, 10)
            head_r = 0.05 * s * (1.6 if kind == "baby" else 1.0)
            top = y - 0.42 * s
            if kind == "female":
                cv.paint(cv.polygon([(x, top + 0.08 * s), (x - 0.1 * s, y), (x + 0.1 * s, y)]),
                         _pick(rng, FEMALE_CLOTHES))
                cv.paint(cv.ellipse(x, top + 0.02 * s, head_r * 1.3, head_r * 1.9), hair)  # long hair
            elif kind == "male":
                cv.paint(cv.rect(x, (top + 0.08 * s + y) / 2, 0.14 * s, y - top - 0.08 * s), _pick(rng, MALE_CLOTHES))
                cv.paint(cv.rect(x, y - 0.08 * s, 0.1 * s, 0.16 * s) * (cv.stripes(40, 0) > 0.3), (40, 40, 50))
            elif kind == "baby":
                cv.paint(cv.ellipse(x, y - 0.12 * s, 0.09 * s, 0.13 * s), _pick(rng, BABY_CLOTHES, 8))
                top = y - 0.28 * s
            else:
                cv.paint(cv.rect(x, (top + 0.08 * s + y) / 2, 0.13 * s, y - top - 0.08 * s), _pick(rng, PEOPLE_CLOTHES))
            cv.paint(cv.ellipse(x, top, head_r, head_r * 1.2), skin)
            if kind == "male":
                cv.paint(cv.ellipse(x, top - head_r * 0.6, head_r * 1.05, head_r * 0.6), hair)

    # ---- night: darken, then lights
    if "night" in present:
        cv.img *= 0.15 + 0.2 * r()
        for _ in range(rng.integers(3, 12)):
            cv.paint(cv.ellipse(r(), 0.2 + 0.8 * r(), 0.008 + 0.02 * r(), 0.008 + 0.02 * r()),
                     _pick(rng, ((255, 230, 150), (255, 255, 240), (255, 120, 60), (120, 200, 255)), 10))

    # ---- clutter: unrelated shapes anywhere
    for _ in range(rng.integers(0, 4)):
        x, y, a, b = r(), r(), 0.02 + 0.08 * r(), 0.02 + 0.08 * r()
        m = cv.ellipse(x, y, a, b) if r() < 0.5 else cv.rect(x, y, 2 * a, 2 * b, r() * 3)
        cv.paint(m, _pick(rng, CLUTTER, 30))

    # ---- photometric jitter, mirror, sensor noise
    img = cv.img * rng.uniform(0.8, 1.15) * rng.uniform(0.9, 1.1, size=3) + rng.normal(0, 10)
    if r() < 0.5:
        img = img[:, ::-1]
    img = img + rng.normal(0, 2 + 6 * r(), size=img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
