"""OpenPose body post-processing: network maps -> peaks -> people, batched on the device.

Reproduces controlnet_aux's ``Body.__call__`` (0.0.10, from pytorch-openpose): same constants,
same peak test, same association rules, but restructured so the expensive part is a few batched
tensor ops on the network's own device:

* controlnet_aux upsamples each of the 19 heatmaps and 38 part-affinity fields (PAFs) twice with
  ``cv2.resize`` (Lanczos-4: x8, then to the detect size), smooths each heatmap with
  ``scipy.ndimage.gaussian_filter(sigma=3)`` and keeps pixels > 0.1 and >= their 4 neighbours.
  Resizing and the reflect-boundary Gaussian are linear and separable, so heatmap -> smoothed
  full-resolution map is ``Ay @ P @ Ax.T`` with matrices built once per size (``Ry``, ``Rx``
  taken from cv2 itself by resizing an identity; ``Ay = Gy @ Ry``, ``Ax = Gx @ Rx``). On a GPU
  that is two batched matmuls for all images and parts and a shifted-compare non-maximum
  suppression; on a CPU only 32x32 blocks whose upper bound exceeds the threshold are computed
  (same peaks, a fraction of the work).
* PAFs are never upsampled: association reads them at 10 points per candidate limb, and the
  full-resolution value at (y, x) is ``Ry[y] @ P @ Rx[x]``, read from the stride-8 maps.
* Only part association (limb scoring, greedy matching, person assembly) runs per image on the
  CPU, the limb scoring vectorized over candidate pairs with numpy.

Float32 maps agree with controlnet_aux's float64 ones to ~1e-6; peaks can differ only where
neighbouring pixels tie to that precision (flat maps, e.g. random weights), never on real bumps.
Test and benchmark helpers at the end synthesize network outputs from known skeletons.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.schema import NUM_KEYPOINTS

# controlnet_aux's constants (Body.__call__).
BOXSIZE = 368
SCALE_SEARCH = 0.5          # the only scale controlnet_aux uses: the net sees BOXSIZE * 0.5 = 184 px
STRIDE = 8
PAD_VALUE = 128
THRE1 = 0.1                 # heatmap peak threshold
THRE2 = 0.05                # PAF threshold per midpoint
SIGMA = 3.0                 # Gaussian smoothing of the heatmaps, in detect pixels
TRUNCATE = 4.0              # scipy.ndimage.gaussian_filter's default
MID_NUM = 10                # points sampled along a candidate limb

# Limbs as 1-based part pairs and the PAF channels (minus 19) that score them (COCO-18 order).
LIMB_SEQ = ((2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12),
            (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (3, 17), (6, 18))
MAP_IDX = ((31, 32), (39, 40), (33, 34), (35, 36), (41, 42), (43, 44), (19, 20), (21, 22),
           (23, 24), (25, 26), (27, 28), (29, 30), (47, 48), (49, 50), (53, 54), (51, 52),
           (55, 56), (37, 38), (45, 46))
NUM_PARTS = NUM_KEYPOINTS


@dataclass(frozen=True)
class Geometry:
    """Sizes of one detect resolution, as controlnet_aux computes them (same float arithmetic)."""

    height: int             # detect size (the images given to the estimator)
    width: int
    net_height: int         # the image resized for the network (~184 px high)
    net_width: int
    pad_height: int         # padded to a multiple of STRIDE
    pad_width: int
    interpolation: int      # cv2 flag for image -> net size (INTER_AREA when shrinking)

    @property
    def map_height(self) -> int:
        return self.pad_height // STRIDE

    @property
    def map_width(self) -> int:
        return self.pad_width // STRIDE


def _smart_interp(h_in: float, w_in: float, h_out: float, w_out: float) -> int:
    import cv2
    k = float(h_out + w_out) / float(h_in + w_in)
    return cv2.INTER_AREA if k < 1 else cv2.INTER_LANCZOS4


@lru_cache(maxsize=32)
def geometry(height: int, width: int) -> Geometry:
    scale = SCALE_SEARCH * BOXSIZE / height          # as in controlnet_aux: x * boxsize / H
    ht, wt = height * scale, width * scale           # util.smart_resize_k: Ho * fy, Wo * fx
    interp = _smart_interp(height, width, ht, wt)
    nh, nw = int(ht), int(wt)
    ph = nh + (0 if nh % STRIDE == 0 else STRIDE - nh % STRIDE)
    pw = nw + (0 if nw % STRIDE == 0 else STRIDE - nw % STRIDE)
    return Geometry(height, width, nh, nw, ph, pw, interp)


def _resize_matrix(n_in: int, n_out: int, interpolation: int) -> np.ndarray:
    """(n_out, n_in) matrix M with M @ v == cv2.resize of v along one axis."""
    import cv2
    eye = np.eye(n_in, dtype=np.float32)
    # Resize the rows (axis 0) only; the unchanged axis is an exact identity in cv2.
    return cv2.resize(eye, (n_in, n_out), interpolation=interpolation).astype(np.float64)


def _gaussian_matrix(n: int, sigma: float = SIGMA, truncate: float = TRUNCATE) -> np.ndarray:
    """(n, n) matrix G with G @ v == scipy.ndimage.gaussian_filter1d(v, sigma) (mode 'reflect')."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x.astype(np.float64) ** 2)
    phi /= phi.sum()
    g = np.zeros((n, n))
    rows = np.arange(n)
    for offset, weight in zip(x, phi):
        src = rows + offset
        # 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a, repeated.
        period = 2 * n
        src = np.mod(src, period)
        src = np.where(src >= n, period - 1 - src, src)
        np.add.at(g, (rows, src), weight)
    return g


@dataclass(frozen=True)
class Maps:
    """Per-size linear maps from the stride-8 network output to the detect resolution."""

    ry: np.ndarray          # (H, h8): heatmap/PAF rows at detect resolution
    rx: np.ndarray          # (W, w8)
    ay: np.ndarray          # (H, h8): Gaussian-smoothed rows (Gy @ ry)
    ax: np.ndarray          # (W, w8)


@lru_cache(maxsize=8)
def linear_maps(height: int, width: int) -> Maps:
    g = geometry(height, width)
    import cv2
    lanczos = cv2.INTER_LANCZOS4
    # util.smart_resize_k(map, fx=8, fy=8): always an enlargement -> Lanczos-4.
    up_y = _resize_matrix(g.map_height, g.pad_height, lanczos)[: g.net_height]
    up_x = _resize_matrix(g.map_width, g.pad_width, lanczos)[: g.net_width]
    # util.smart_resize(map, (H, W)) after removing the padding.
    interp = _smart_interp(g.net_height, g.net_width, height, width)
    ry = _resize_matrix(g.net_height, height, interp) @ up_y
    rx = _resize_matrix(g.net_width, width, interp) @ up_x
    ay = _gaussian_matrix(height) @ ry
    ax = _gaussian_matrix(width) @ rx
    for a in (ry, rx, ay, ax):
        a.setflags(write=False)
    return Maps(ry, rx, ay, ax)


# --------------------------------------------------------------------------------------------
# Device part: smoothing, peak finding, peak scores (torch, batched)
# --------------------------------------------------------------------------------------------

TILE = 32                   # block side for the sparse peak search (pixels)


class DeviceMaps:
    """The per-size matrices as float32 tensors on one device (cached per estimator).

    Besides Ry, Rx, Ay, Ax it holds the tiled form used by the sparse peak search: Ay and Ax
    cut into TILE-row blocks with a one-pixel halo (zero rows outside the image, which is
    controlnet_aux's zero padding), and per block the largest |weight| per map cell, for an upper
    bound of the smoothed map over the block.
    """

    def __init__(self, tile: int = TILE):
        self.tile = int(tile)
        self._cache: dict = {}

    def get(self, height: int, width: int, device):
        return self._get(height, width, device)["dense"]

    def tiles(self, height: int, width: int, device):
        return self._get(height, width, device)["tiles"]

    def _get(self, height: int, width: int, device):
        import torch
        key = (height, width, str(device))
        if key not in self._cache:
            m = linear_maps(height, width)

            def as_t(a):
                return torch.tensor(a, dtype=torch.float32, device=device)

            T = self.tile
            tiles = {"size": T}
            for axis, a in (("y", m.ay), ("x", m.ax)):
                n = a.shape[0]
                nt = -(-n // T)
                padded = np.zeros((nt * T + 2, a.shape[1]))
                padded[1:n + 1] = a
                # (nt, T + 2, cells): block t covers pixels t*T-1 .. t*T+T.
                blocks = np.stack([padded[t * T: t * T + T + 2] for t in range(nt)])
                tiles[axis] = as_t(blocks)
                tiles["bound_" + axis] = as_t(np.abs(blocks[:, 1:-1]).max(1))    # (nt, cells)
                sums = a.sum(1)
                tiles["sum_" + axis] = (float(sums.min()), float(sums.max()))
            self._cache[key] = {"dense": tuple(as_t(a) for a in (m.ry, m.rx, m.ay, m.ax)),
                                "tiles": tiles}
        return self._cache[key]


def _local_maxima(smooth):
    """Pixels > THRE1 and >= their 4 neighbours (controlnet_aux's test; outside counts as 0).

    Written as in-place comparisons of shifted views: on the CPU this is several times faster
    than max-pooling with (3,1) and (1,3) windows, which computes the same thing. Border pixels
    are not compared outwards: controlnet_aux compares them with 0, which a value > THRE1 passes.
    """
    mask = smooth > THRE1
    mask[..., 1:, :] &= smooth[..., 1:, :] >= smooth[..., :-1, :]
    mask[..., :-1, :] &= smooth[..., :-1, :] >= smooth[..., 1:, :]
    mask[..., :, 1:] &= smooth[..., :, 1:] >= smooth[..., :, :-1]
    mask[..., :, :-1] &= smooth[..., :, :-1] >= smooth[..., :, 1:]
    return mask


def _peaks_dense(p, ay, ax):
    """(k, 4) n, c, y, x of the peaks of p (n, 18, h8, w8): full-resolution maps, then NMS."""
    import torch
    smooth = torch.matmul(torch.matmul(ay, p), ax.T)               # (n, 18, H, W)
    return torch.nonzero(_local_maxima(smooth))


def _peaks_tiled(p, tiles, height: int, width: int):
    """Same result as _peaks_dense, evaluating only TILE x TILE blocks that can hold a peak.

    Rows of Ay and Ax sum to 1 (interpolation and the Gaussian preserve constants), so with c
    the median of a map P, smooth = c * (row sums) + Ay (P - c) Ax^T, and per block
    max smooth <= c * sums + Bound_y |P - c| Bound_x^T, with Bound the largest |weight| per
    cell over the block's rows. Blocks whose bound is <= THRE1 hold no pixel above the peak
    threshold; the others are computed with a one-pixel halo and tested like the dense maps.
    """
    import torch
    n, c, h8, w8 = p.shape
    flat = p.reshape(n * c, h8 * w8)
    med = flat.median(dim=1).values.reshape(n, c, 1, 1)
    lo_y, hi_y = tiles["sum_y"]
    lo_x, hi_x = tiles["sum_x"]
    const = torch.where(med > 0, med * (hi_y * hi_x), med * (lo_y * lo_x))
    dev = (p - med).abs()
    bound = torch.matmul(torch.matmul(tiles["bound_y"], dev), tiles["bound_x"].T) + const
    active = torch.nonzero(bound > THRE1)                          # (K, 4) n, c, ty, tx
    if active.shape[0] == 0:
        return active
    # Rows first for every block row (one batched matmul, cheap: ~(H + halo) x h8 x w8 per
    # map), then per block column one matmul over all active blocks in it.
    rows = torch.matmul(tiles["y"], p.unsqueeze(2))                # (n, c, nty, T+2, w8)
    blocks, order = [], []
    for tx in torch.unique(active[:, 3]).tolist():
        sel = torch.nonzero(active[:, 3] == tx).squeeze(1)
        a = active[sel]
        blocks.append(torch.matmul(rows[a[:, 0], a[:, 1], a[:, 2]], tiles["x"][tx].T))
        order.append(sel)
    block = torch.cat(blocks)                                      # (K, T+2, T+2)
    active = active[torch.cat(order)]
    inner = block[:, 1:-1, 1:-1]
    mask = inner > THRE1
    mask &= inner >= block[:, :-2, 1:-1]
    mask &= inner >= block[:, 2:, 1:-1]
    mask &= inner >= block[:, 1:-1, :-2]
    mask &= inner >= block[:, 1:-1, 2:]
    k, i, j = torch.nonzero(mask, as_tuple=True)
    y = active[k, 2] * tiles["size"] + i
    x = active[k, 3] * tiles["size"] + j
    idx = torch.stack([active[k, 0], active[k, 1], y, x], 1)
    # Back to row-major (n, c, y, x) order, the order controlnet_aux numbers its peaks in.
    key = ((idx[:, 0] * c + idx[:, 1]) * height + idx[:, 2]) * width + idx[:, 3]
    return idx[torch.argsort(key)]


def find_peaks(heatmaps, height: int, width: int, device_maps: DeviceMaps | None = None,
               chunk: int = 8, method: str = "auto"):
    """Peaks of a batch of stride-8 heatmaps, at detect resolution.

    heatmaps: float tensor (N, >=18, h8, w8) on any device (the network's second output, with
    padding rows/cols). method: "tiled" (evaluates only blocks that can hold a peak; ~3x less
    CPU work on maps with people), "dense" (full-resolution maps: a few large ops, best on a
    GPU) or "auto" (dense on CUDA, tiled elsewhere); all give the same peaks. Returns numpy arrays
    (on the CPU): ``index`` int64 (K, 4) of (image, part, y, x) in row-major order per image and part (the order
    controlnet_aux numbers its peaks in), and ``score`` float32 (K,): the unsmoothed upsampled
    heatmap at the peak, as controlnet_aux reports it.
    """
    import torch

    if method not in ("auto", "tiled", "dense"):
        raise ValueError(f"method must be 'auto', 'tiled' or 'dense', got {method!r}")
    if method == "auto":
        method = "dense" if heatmaps.device.type == "cuda" else "tiled"
    device_maps = device_maps or DeviceMaps()
    ry, rx, ay, ax = device_maps.get(height, width, heatmaps.device)
    tiles = device_maps.tiles(height, width, heatmaps.device) if method == "tiled" else None
    heat = heatmaps[:, :NUM_PARTS].float()
    indices, scores = [], []
    for start in range(0, heat.shape[0], chunk):
        p = heat[start:start + chunk]
        idx = _peaks_tiled(p, tiles, height, width) if tiles else _peaks_dense(p, ay, ax)
        if idx.shape[0]:
            # The score is the unsmoothed map at the peak: Ry[y] @ P[n, c] @ Rx[x].
            pk = p[idx[:, 0], idx[:, 1]]                            # (k, h8, w8)
            s = torch.einsum("kh,khw,kw->k", ry[idx[:, 2]], pk, rx[idx[:, 3]])
            idx = idx.clone()
            idx[:, 0] += start
            indices.append(idx.cpu())
            scores.append(s.cpu())
    if not indices:
        return np.zeros((0, 4), np.int64), np.zeros((0,), np.float32)
    return (torch.cat(indices).numpy().astype(np.int64),
            torch.cat(scores).numpy().astype(np.float32))


# --------------------------------------------------------------------------------------------
# CPU part: association, per image
# --------------------------------------------------------------------------------------------

def sample_pafs(pafs: np.ndarray, maps: Maps, channels: np.ndarray, ys: np.ndarray,
                xs: np.ndarray) -> np.ndarray:
    """PAF values at detect-resolution pixels, read from the stride-8 maps (exact linear maps).

    pafs: (38, h8, w8); channels, ys, xs: int arrays of one shape. Returns float64 of that shape.
    """
    shape = ys.shape
    c, y, x = channels.ravel(), ys.ravel(), xs.ravel()
    if c.size == 0:
        return np.zeros(shape)
    rows = maps.ry[y]                                               # (M, h8)
    cols = maps.rx[x]                                               # (M, w8)
    # sum_h sum_w ry[m,h] P[c_m,h,w] rx[m,w], grouped by channel to avoid an (M,h8,w8) gather.
    out = np.empty(c.size)
    for ch in np.unique(c):
        sel = np.nonzero(c == ch)[0]
        out[sel] = np.einsum("mh,mh->m", rows[sel], cols[sel] @ pafs[ch].astype(np.float64).T)
    return out.reshape(shape)


def _limb_connections(cand_a: np.ndarray, cand_b: np.ndarray, paf_pair, pafs, maps, height):
    """controlnet_aux's limb scoring and greedy matching for one limb, vectorized over pairs.

    cand_*: (n, 4) x, y, score, id. Returns (m, 5) rows: id_a, id_b, score, i, j.
    """
    na, nb = len(cand_a), len(cand_b)
    ax_, ay_ = cand_a[:, 0][:, None], cand_a[:, 1][:, None]
    bx_, by_ = cand_b[:, 0][None, :], cand_b[:, 1][None, :]
    vx, vy = bx_ - ax_, by_ - ay_                                   # (na, nb)
    norm = np.maximum(0.001, np.sqrt(vx * vx + vy * vy))
    ux, uy = vx / norm, vy / norm
    # Same arithmetic as np.linspace on scalars, so rounding to pixels matches exactly.
    px = np.linspace(np.broadcast_to(ax_, (na, nb)), np.broadcast_to(bx_, (na, nb)), MID_NUM, axis=-1)
    py = np.linspace(np.broadcast_to(ay_, (na, nb)), np.broadcast_to(by_, (na, nb)), MID_NUM, axis=-1)
    ix, iy = np.round(px).astype(np.int64), np.round(py).astype(np.int64)
    c0 = np.full(ix.shape, paf_pair[0] - 19)
    c1 = np.full(ix.shape, paf_pair[1] - 19)
    vec_x = sample_pafs(pafs, maps, c0, iy, ix)
    vec_y = sample_pafs(pafs, maps, c1, iy, ix)
    score_mid = vec_x * ux[..., None] + vec_y * uy[..., None]       # (na, nb, MID_NUM)
    prior = np.minimum(0.5 * height / norm - 1, 0)
    score = score_mid.sum(-1) / MID_NUM + prior
    crit1 = (score_mid > THRE2).sum(-1) > 0.8 * MID_NUM
    crit2 = score > 0
    ii, jj = np.nonzero(crit1 & crit2)                              # i-major like the loops
    s = score[ii, jj]
    order = np.argsort(-s, kind="stable")                           # sorted(..., reverse=True)
    used_a, used_b = set(), set()
    rows = []
    for o in order:
        i, j = int(ii[o]), int(jj[o])
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        rows.append((cand_a[i, 3], cand_b[j, 3], s[o], i, j))
        if len(rows) >= min(na, nb):
            break
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def associate(peaks: list[np.ndarray], pafs: np.ndarray, maps: Maps, height: int):
    """Group one image's peaks into people (controlnet_aux's rules).

    peaks: 18 arrays (n_k, 4) of x, y, score, id (ids numbered 0.. across parts in order).
    pafs: (38, h8, w8) stride-8 part-affinity maps. Returns (candidate (K, 4), subset (P, 20)):
    subset[:, :18] index candidate rows (-1 missing), [:, 18] total score, [:, 19] part count.
    """
    connection_all, special_k = [], []
    for k, ((a, b), pair) in enumerate(zip(LIMB_SEQ, MAP_IDX)):
        cand_a, cand_b = peaks[a - 1], peaks[b - 1]
        if len(cand_a) and len(cand_b):
            connection_all.append(_limb_connections(cand_a, cand_b, pair, pafs, maps, height))
        else:
            special_k.append(k)
            connection_all.append(None)

    candidate = np.concatenate(peaks) if any(len(p) for p in peaks) else np.zeros((0, 4))
    subset = -1 * np.ones((0, 20))
    for k in range(len(MAP_IDX)):
        if k in special_k:
            continue
        conn = connection_all[k]
        part_as, part_bs = conn[:, 0], conn[:, 1]
        index_a, index_b = LIMB_SEQ[k][0] - 1, LIMB_SEQ[k][1] - 1
        for i in range(len(conn)):
            found = 0
            subset_idx = [-1, -1]
            for j in range(len(subset)):
                if subset[j][index_a] == part_as[i] or subset[j][index_b] == part_bs[i]:
                    # controlnet_aux raises IndexError on a third hit; we skip that limb instead.
                    if found < 2:
                        subset_idx[found] = j
                    found += 1
            if found == 1:
                j = subset_idx[0]
                if subset[j][index_b] != part_bs[i]:
                    subset[j][index_b] = part_bs[i]
                    subset[j][-1] += 1
                    subset[j][-2] += candidate[int(part_bs[i]), 2] + conn[i][2]
            elif found == 2:
                j1, j2 = subset_idx
                membership = ((subset[j1] >= 0).astype(int) + (subset[j2] >= 0).astype(int))[:-2]
                if len(np.nonzero(membership == 2)[0]) == 0:
                    subset[j1][:-2] += subset[j2][:-2] + 1
                    subset[j1][-2:] += subset[j2][-2:]
                    subset[j1][-2] += conn[i][2]
                    subset = np.delete(subset, j2, 0)
                else:
                    subset[j1][index_b] = part_bs[i]
                    subset[j1][-1] += 1
                    subset[j1][-2] += candidate[int(part_bs[i]), 2] + conn[i][2]
            elif not found and k < 17:
                row = -1 * np.ones(20)
                row[index_a] = part_as[i]
                row[index_b] = part_bs[i]
                row[-1] = 2
                row[-2] = candidate[conn[i, :2].astype(int), 2].sum() + conn[i][2]
                subset = np.vstack([subset, row])
    keep = [i for i in range(len(subset))
            if not (subset[i][-1] < 4 or subset[i][-2] / subset[i][-1] < 0.4)]
    return candidate, subset[keep]


def people_from_subset(candidate: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """(P, 18, 3) float32 x, y, score per person (NaN where missing), in subset order."""
    out = np.full((len(subset), NUM_PARTS, 3), np.nan, np.float32)
    for p, row in enumerate(subset):
        idx = row[:NUM_PARTS].astype(int)
        found = idx >= 0
        out[p, found] = candidate[idx[found], :3]
    return out


def split_peaks(index: np.ndarray, score: np.ndarray, n_images: int) -> list[list[np.ndarray]]:
    """find_peaks' flat output -> per image, 18 arrays (n_k, 4) x, y, score, id."""
    result = []
    image = index[:, 0]
    bounds = np.searchsorted(image, np.arange(n_images + 1))
    for n in range(n_images):
        sl = slice(bounds[n], bounds[n + 1])
        idx, sc = index[sl], score[sl]
        part = idx[:, 1]
        pb = np.searchsorted(part, np.arange(NUM_PARTS + 1))
        peaks = []
        for c in range(NUM_PARTS):
            s = slice(pb[c], pb[c + 1])
            arr = np.empty((pb[c + 1] - pb[c], 4))
            arr[:, 0] = idx[s, 3]
            arr[:, 1] = idx[s, 2]
            arr[:, 2] = sc[s]
            arr[:, 3] = np.arange(pb[c], pb[c + 1])
            peaks.append(arr)
        result.append(peaks)
    return result


def postprocess(pafs, heatmaps, height: int, width: int, device_maps: DeviceMaps | None = None,
                chunk: int = 8, method: str = "auto") -> list[np.ndarray]:
    """Network outputs (stride-8, with padding) -> per image (P, 18, 3) people in detect pixels.

    pafs: (N, 38, h8, w8), heatmaps: (N, 19, h8, w8), torch tensors on any device (the
    network's two outputs for images of height x width). People are in controlnet_aux's order.
    """
    import torch

    n = heatmaps.shape[0]
    index, score = find_peaks(heatmaps, height, width, device_maps, chunk, method)
    per_image = split_peaks(index, score, n)
    maps = linear_maps(height, width)
    paf_np = pafs.detach().float().cpu().numpy() if isinstance(pafs, torch.Tensor) else np.asarray(pafs)
    out = []
    for i in range(n):
        candidate, subset = associate(per_image[i], paf_np[i], maps, height)
        out.append(people_from_subset(candidate, subset))
    return out
