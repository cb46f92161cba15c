"""CIBHash's augmented views, vectorised over a batch of images (every image draws its own parameters).

The official training transform (zexuanqiu/CIBHash ``utils/data.py``, commit 4c896ee; torchvision on PIL
images, then OpenCV's blur) is, in order::

    RandomResizedCrop(224, scale=(0.5, 1.0))      # ratio (3/4, 4/3), torchvision's default
    RandomHorizontalFlip()                        # p = 0.5
    RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.7)
    RandomGrayscale(p=0.2)
    GaussianBlur(3)                               # utils/gaussian_blur.py: p = 0.5, sigma ~ U(0.1, 2.0), cv2
    ToTensor(); Normalize(ImageNet mean, std)

:func:`augment` applies the same steps to RGB tensors in [0, 1] of the preprocessed images (what
:class:`~hashbench.features.ImageInput` gives, resized and centre-cropped to the backbone's input side S,
with the backbone's own normalisation undone by :func:`denormalise`), each image with its own random draws
from a seeded ``torch.Generator``; the caller normalises the views for its backbone (:func:`normalise`),
so the colour operations act on real colours whatever the backbone's input statistics (ImageNet's mean and
std for the torchvision networks, (x - 127) / 128 for EfficientNet-Lite):

* crop: torchvision's ``RandomResizedCrop.get_params`` (10 tries of area fraction and log-ratio, then
  the centre fallback), drawn for all images at once; the crop is resized back to S x S bilinearly
  (``grid_sample``, edge pixels repeated), the flip folded into the same sampling grid. The crop is taken
  from the preprocessed S x S image, not from the original photograph (the code crops the raw image,
  then resizes to 224): the same scale and ratio ranges, relative to what the backbone sees;
* colour jitter: brightness, contrast, saturation and hue factors drawn as torchvision does, applied in a
  random order per image (torchvision draws one permutation per call, i.e. per image); the formulas are
  torchvision's tensor ones (blend with black, with the mean grey level, with the grey image; hue shifted
  in HSV);
* grayscale: ITU-R 601 luma (0.2989, 0.587, 0.114), as torchvision;
* blur: a 3 x 3 Gaussian (separable, normalised, edges reflected as OpenCV's default), p = 0.5. The code
  blurs 224-pixel images with sigma in [0.1, 2.0] pixels; here sigma is scaled by S / 224
  (``blur_reference``) so that the blur is as wide relative to the image (the kernel stays 3 x 3: no
  smaller kernel blurs);
* no rounding to 8 bits between the steps (PIL works in uint8; here everything is float).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CROP_SCALE = (0.5, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
JITTER = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
JITTER_P = 0.7
GRAYSCALE_P = 0.2
BLUR_P = 0.5
BLUR_SIGMA = (0.1, 2.0)
BLUR_REFERENCE = 224  # the image side the code's blur sigma is in pixels of
_LUMA = (0.2989, 0.587, 0.114)


def _stats(stats: tuple[tuple[float, ...], tuple[float, ...]], like: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = stats
    return (torch.tensor(mean, dtype=like.dtype, device=like.device).view(1, 3, 1, 1),
            torch.tensor(std, dtype=like.dtype, device=like.device).view(1, 3, 1, 1))


def denormalise(x: torch.Tensor, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> torch.Tensor:
    """Images normalised with ``stats`` = (mean, std), the backbone's -> RGB in [0, 1] (clamped: antialiased
    resizing can overshoot slightly)."""
    mean, std = _stats(stats, x)
    return (x * std + mean).clamp_(0.0, 1.0)


def normalise(rgb: torch.Tensor, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> torch.Tensor:
    """RGB in [0, 1] -> the backbone's input, normalised with ``stats`` = (mean, std)."""
    mean, std = _stats(stats, rgb)
    return (rgb - mean) / std


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def crop_boxes(n: int, height: int, width: int, g: torch.Generator,
               scale: tuple[float, float] = CROP_SCALE, ratio: tuple[float, float] = CROP_RATIO) -> torch.Tensor:
    """(n, 4) integer boxes (top, left, h, w), torchvision's ``RandomResizedCrop.get_params`` for each image."""
    tries = 10
    area = float(height * width)
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, tries, generator=g, dtype=torch.float64))
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(
        n, tries, generator=g, dtype=torch.float64)
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(ok.to(torch.int8), dim=1)  # the first try that fits
    found = ok.any(dim=1)
    rows = torch.arange(n)
    h, w = h[rows, first], w[rows, first]
    # the fallback: a centre crop of the whole image, its ratio clamped to the range
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fh, fw = height, int(round(height * max(ratio)))
    else:
        fw, fh = width, height
    h = torch.where(found, h, torch.full_like(h, fh))
    w = torch.where(found, w, torch.full_like(w, fw))
    top = torch.floor(torch.rand(n, generator=g, dtype=torch.float64) * (height - h + 1))
    left = torch.floor(torch.rand(n, generator=g, dtype=torch.float64) * (width - w + 1))
    top = torch.where(found, top, torch.full_like(top, 0.0) + torch.div(height - h, 2, rounding_mode="floor"))
    left = torch.where(found, left, torch.full_like(left, 0.0) + torch.div(width - w, 2, rounding_mode="floor"))
    return torch.stack([top, left, h, w], dim=1).long()


def crop_resize_flip(rgb: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Each image's box cropped and resized (bilinear, half-pixel centres, as ``F.interpolate``) to the image's
    own size, mirrored where ``flip``: one ``grid_sample`` for the batch."""
    n, _, height, width = rgb.shape
    dt, dev = rgb.dtype, rgb.device
    top, left, h, w = (boxes[:, i].to(dt).to(dev).view(n, 1) for i in range(4))
    u = torch.arange(width, dtype=dt, device=dev).view(1, width)
    v = torch.arange(height, dtype=dt, device=dev).view(1, height)
    u = torch.where(flip.to(dev).view(n, 1), width - 1 - u, u)
    # output pixel centre -> source pixel coordinate (half-pixel convention of a bilinear resize)
    # clamped to the box: a resize of the cropped image repeats the crop's own edge pixels
    xs = torch.minimum(torch.maximum(left + (u + 0.5) * w / width - 0.5, left), left + w - 1)
    ys = torch.minimum(torch.maximum(top + (v + 0.5) * h / height - 0.5, top), top + h - 1)
    gx = (xs + 0.5) / width * 2 - 1  # grid_sample with align_corners=False
    gy = (ys + 0.5) / height * 2 - 1
    grid = torch.stack([gx.view(n, 1, width).expand(n, height, width),
                        gy.view(n, height, 1).expand(n, height, width)], dim=-1)
    return F.grid_sample(rgb, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gray(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _blend(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (f * a + (1 - f) * b).clamp(0.0, 1.0)


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(1)
    maxc, _ = rgb.max(dim=1)
    minc, _ = rgb.min(dim=1)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_div = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / cr_div, (maxc - g) / cr_div, (maxc - b) / cr_div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), dim=1)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    h, s, v = hsv.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    table = torch.stack([torch.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                                    (v, p, q))], 1)  # (n, 6, 3, H, W)
    return table.gather(1, i.unsqueeze(1).unsqueeze(2).expand(-1, 1, 3, -1, -1)).squeeze(1)


def _jitter_op(op: int, rgb: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """torchvision's tensor formula of jitter operation ``op`` (0 brightness, 1 contrast, 2 saturation,
    3 hue) with per-image factors ``f`` (n,)."""
    f4 = f.to(rgb.dtype).view(-1, 1, 1, 1)
    if op == 0:
        return _blend(rgb, torch.zeros_like(rgb), f4)
    if op == 1:
        return _blend(rgb, _gray(rgb).mean(dim=(1, 2, 3), keepdim=True), f4)
    if op == 2:
        return _blend(rgb, _gray(rgb), f4)
    hsv = _rgb_to_hsv(rgb)
    hsv[:, 0] = torch.remainder(hsv[:, 0] + f4[:, 0], 1.0)
    return _hsv_to_rgb(hsv)


def color_jitter(rgb: torch.Tensor, apply: torch.Tensor, g: torch.Generator,
                 strength: tuple[float, float, float, float] = JITTER) -> torch.Tensor:
    """ColorJitter on the images where ``apply``, each with its own factors and order of operations."""
    n = rgb.shape[0]
    b, c, s, hue = strength
    factors = torch.stack([_uniform(n, 1 - b, 1 + b, g), _uniform(n, 1 - c, 1 + c, g),
                           _uniform(n, 1 - s, 1 + s, g), _uniform(n, -hue, hue, g)], dim=1)
    order = torch.argsort(torch.rand(n, 4, generator=g), dim=1)  # a random permutation per image
    out = rgb.clone()
    dev = rgb.device
    for slot in range(4):
        for op in range(4):
            sel = torch.nonzero(apply & (order[:, slot] == op)).flatten()
            if sel.numel():
                idx = sel.to(dev)
                out[idx] = _jitter_op(op, out[idx], factors[sel, op].to(dev))
    return out


def gaussian_blur3(rgb: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A 3 x 3 Gaussian blur with one sigma per image (sigma <= 0: unchanged); reflected edges (OpenCV's
    BORDER_REFLECT_101)."""
    n, ch, height, width = rgb.shape
    sig = sigma.to(rgb.dtype).to(rgb.device).clamp_min(1e-6)
    side = torch.exp(-0.5 / sig.pow(2))  # the weight of each neighbour relative to the centre
    k = torch.stack([side, torch.ones_like(side), side], dim=1)
    k = k / k.sum(dim=1, keepdim=True)
    k = torch.where((sigma > 0).to(rgb.device).view(n, 1), k,
                    torch.tensor([0.0, 1.0, 0.0], dtype=rgb.dtype, device=rgb.device))
    kk = k.repeat_interleave(ch, dim=0)  # one kernel per (image, channel)
    x = F.pad(rgb.reshape(1, n * ch, height, width), (1, 1, 1, 1), mode="reflect")
    x = F.conv2d(x, kk.view(n * ch, 1, 1, 3), groups=n * ch)
    x = F.conv2d(x, kk.view(n * ch, 1, 3, 1), groups=n * ch)
    return x.view(n, ch, height, width)


def augment(rgb: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One augmented view of each RGB image in ``rgb`` (n, 3, S, S), values in [0, 1] (module docstring)."""
    n, _, height, width = rgb.shape
    rgb = rgb.float()
    boxes = crop_boxes(n, height, width, g)
    flip = torch.rand(n, generator=g) < 0.5
    rgb = crop_resize_flip(rgb, boxes, flip)
    rgb = color_jitter(rgb, torch.rand(n, generator=g) < JITTER_P, g)
    gray = (torch.rand(n, generator=g) < GRAYSCALE_P).to(rgb.device)
    rgb = torch.where(gray.view(n, 1, 1, 1), _gray(rgb).expand(-1, 3, -1, -1), rgb)
    blur = torch.rand(n, generator=g) < BLUR_P
    scale = min(height, width) / BLUR_REFERENCE
    sigma = _uniform(n, BLUR_SIGMA[0] * scale, BLUR_SIGMA[1] * scale, g)
    return gaussian_blur3(rgb, torch.where(blur, sigma, torch.zeros_like(sigma)))
