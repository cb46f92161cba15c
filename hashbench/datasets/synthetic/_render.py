"""Rendering of the synthetic set: a picture drawn from an item's labels.

Each concept has a characteristic colour, shape and texture, drawn with
random pose, size, count and palette variation, plus clutter, photometric
jitter, a random mirror and pixel noise (see the package docstring).
"""

from __future__ import annotations

import numpy as np

# Nuisance knobs, calibrated against real MIRFLICKR's image figures (generator version 2;
# version 1's values in brackets): see the package docstring, "Calibration".
CLUTTER_MAX = 12  # unrelated shapes per picture: 0 .. CLUTTER_MAX - 1 (4)
CLUTTER_SIZE = 0.17  # their largest half-extent beyond 0.02, in image units (0.08)
EXPOSURE = (0.92, 1.05)  # global gain range ((0.8, 1.15))
COLOUR_CAST = 0.04  # per-channel gain in 1 +- COLOUR_CAST, white balance (0.1)
OFFSET_SD = 4.0  # global brightness offset (10)
NOISE_SD = (10.0, 30.0)  # per-pixel sensor noise, its standard deviation uniform in this range ((2, 8))

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
    for _ in range(rng.integers(0, CLUTTER_MAX)):
        x, y, a, b = r(), r(), 0.02 + CLUTTER_SIZE * r(), 0.02 + CLUTTER_SIZE * r()
        m = cv.ellipse(x, y, a, b) if r() < 0.5 else cv.rect(x, y, 2 * a, 2 * b, r() * 3)
        cv.paint(m, _pick(rng, CLUTTER, 30))

    # ---- photometric jitter, mirror, sensor noise
    img = cv.img * rng.uniform(*EXPOSURE) * rng.uniform(1 - COLOUR_CAST, 1 + COLOUR_CAST, size=3) \
        + rng.normal(0, OFFSET_SD)
    if r() < 0.5:
        img = img[:, ::-1]
    img = img + rng.normal(0, NOISE_SD[0] + (NOISE_SD[1] - NOISE_SD[0]) * r(), size=img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
