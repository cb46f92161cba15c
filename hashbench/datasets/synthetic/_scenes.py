"""Scenes and labels of the synthetic set: the 24 MIRFLICKR concepts, their hierarchy, seven scene types.

An item's photographer picks a scene type by taste; each concept is then
present with a scene-dependent probability and the real annotation's
hierarchy is closed (a child implies its parent).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def zipf(n: int, a: float = 1.0) -> np.ndarray:
    """Normalised Zipf weights 1/k^a, k = 1..n."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** a
    return w / w.sum()


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

SCENE_P = np.array([[SCENES[s]["p"].get(c, 0.0) for c in CONCEPTS] for s in SCENE_NAMES])
_SCENE_MAIN = np.array([_C[SCENES[s]["main"]] for s in SCENE_NAMES])
CHILD_PARENT = [(_C[c], _C[p]) for c, p in PARENT.items()]
IS_PARENT = np.isin(np.arange(len(CONCEPTS)), [p for _, p in CHILD_PARENT])


def draw_labels(seed: int, block: int, size: int, activity: np.ndarray, taste: np.ndarray):
    """(user, scene, labels) of one block of items: who took it, which scene type, which concepts show."""
    rng = np.random.default_rng([seed, 1, block])
    n_c = len(CONCEPTS)
    user = rng.choice(len(activity), size=size, p=activity)
    cum = np.cumsum(taste[user], axis=1)
    scene = np.minimum((rng.random(size)[:, None] > cum).sum(axis=1), len(SCENE_NAMES) - 1)
    lab = rng.random((size, n_c)) < SCENE_P[scene]
    empty = ~lab.any(axis=1)
    lab[empty, _SCENE_MAIN[scene[empty]]] = True  # every item shows something labelled
    for child, parent in CHILD_PARENT:  # close the hierarchy last, so that it always holds
        lab[:, parent] |= lab[:, child]
    return user, scene, lab
