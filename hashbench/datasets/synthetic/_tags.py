"""Users and tags of the synthetic set: how Flickr photographers tag, not the labels' names.

Every word list and tagging habit lives here: concept words with synonyms
shared between concepts, trip and event words, pet tags, irrelevant tags with
Zipf frequencies.
"""

from __future__ import annotations

import numpy as np

from ._scenes import CONCEPTS, IS_PARENT, SCENE_NAMES, SCENE_P, SCENES, zipf

SCENE_WORD_RATE = 0.4  # mean scene words (trip, event) per image of a user of average verbosity
SCENE_WORD_OFF = 0.4  # share of scene words drawn from another scene than the one in view
CONCEPT_WORD_ZIPF = 1.5  # Zipf exponent of the words of a concept: its own name is the most used

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


def make_users(seed: int, n_users: int, tag_rate: float) -> dict[str, np.ndarray]:
    """The photographer pool: activity, taste, tagging habits and pet tags."""
    rng = np.random.default_rng([seed, 0])
    prior = np.array([SCENES[s]["weight"] for s in SCENE_NAMES])
    prior = prior / prior.sum()
    activity = rng.permutation(zipf(n_users, 0.5))
    taste = rng.dirichlet(3.0 * prior * len(prior), size=n_users)  # mild topical preference
    verbosity = rng.gamma(2.0, 0.5, size=n_users)  # mean 1
    verbosity[rng.random(n_users) < 0.02] = 0.0  # users who never tag
    p_tag = np.clip(rng.beta(2.0, 2.5, size=n_users) * 0.85 * tag_rate, 0.0, 1.0)  # mean ~0.38
    p_tag[verbosity == 0] = 0.0
    # pet tags: a camera (1-2 words), a home town, sometimes an award group
    pets = []
    cam_w = zipf(len(CAMERAS), 1.0)
    place_w = zipf(len(PLACES), 0.9)
    award_w = zipf(len(AWARDS), 1.0)
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



_NOISE_VOCAB = NOISE_WORDS + PLACES
_SCENE_WORD_CDF = np.ones((len(SCENE_NAMES), max(len(SCENES[s]["words"]) for s in SCENE_NAMES)))
for _k, _s in enumerate(SCENE_NAMES):
    _n = len(SCENES[_s]["words"])
    _SCENE_WORD_CDF[_k, :_n] = np.cumsum(zipf(_n, 1.0))
    _SCENE_WORD_CDF[_k, _n - 1] = 1.0  # guard against rounding: an index never passes the list's end
_SCENE_WORD_TABLE = np.array([list(SCENES[s]["words"]) + [""] * (_SCENE_WORD_CDF.shape[1] - len(SCENES[s]["words"]))
                              for s in SCENE_NAMES], dtype=object)
_NOISE_W = np.concatenate([zipf(len(NOISE_WORDS), 1.0) * 0.8, zipf(len(PLACES), 1.0) * 0.2])


def draw_tags(seed: int, block: int, lab: np.ndarray, scene: np.ndarray, user: np.ndarray,
              users: dict[str, np.ndarray], noise_tags: float, confusion_rate: float) -> list[list[str]]:
    """The tags of one block of items, given their labels, scene types and users (vectorised draws).

    Drawn from their own stream ([seed, 3, block]): the tagging knobs never change labels or images.
    """
    rng = np.random.default_rng([seed, 3, block])
    size, n_c = lab.shape
    p = SCENE_P[scene]
    verb = users["verbosity"][user]
    # concept tags: parents are named less often than their children
    salience = np.where(IS_PARENT, 0.6, 1.0)
    tagged = lab & (rng.random((size, n_c)) < users["p_tag"][user][:, None] * salience)
    # confusion: a concept that fits the scene but is not labelled gets tagged
    confused = ~lab & (rng.random((size, n_c)) < 0.12 * confusion_rate * p * (verb > 0)[:, None])
    extra_word = rng.random((size, n_c)) < 0.3  # a second word for the same concept
    word_pick = [rng.choice(len(CONCEPT_WORDS[c]), size=(size, 2), p=zipf(len(CONCEPT_WORDS[c]), CONCEPT_WORD_ZIPF))
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
    return tags

