"""DensePose R-CNN (R50-FPN, chart predictor) in plain PyTorch and torchvision ops, for detectron2's weights.

The network is the one detectron2's ``densepose_rcnn_R_50_FPN_s1x`` config builds: an MSRA ResNet with
frozen batch norm, FPN P2-P6, an RPN, a two-fc box head, and the DensePose branch (a Panoptic-FPN style
decoder over P2-P5, ROIAlign on its output, a stack of 3x3 convs and the chart predictor's deconvolutions
plus 2x bilinear upsampling). Module names follow detectron2's parameter names, so its checkpoint's
``model`` dict loads key for key (see `checkpoint.py`), and the inference steps follow detectron2's test
path op for op, so that the outputs match detectron2's to float rounding (tests/test_densepose_model.py).

Why not detectron2 itself: it is a heavy build with a C++/CUDA extension, and its DefaultPredictor runs one
image at a time and runs the DensePose head on every detection. Here a list of photos of different sizes
goes through as one padded batch, and ``predict(..., densepose="main")`` runs the DensePose branch only
for the one person the pipeline uses.

Public API:
    model = build_model(cfg)                      # random weights; load_checkpoint() for detectron2's pkl
    results = model.predict(images_rgb_uint8)     # list[DensePoseResult], boxes in each photo's pixels
Step-wise access (the parity test drives these with detectron2's own intermediate results):
    batch = model.preprocess(images)              # PreparedBatch: padded tensor, resized and photo sizes
    feats = model.features(batch.tensor)          # [p2, p3, p4, p5, p6]
    props = model.proposals(feats, batch.image_sizes)            # per image (boxes, objectness logits)
    dets = model.detect(feats, [boxes for boxes, _ in props], batch.image_sizes)   # per image Detections
    charts = model.densepose_outputs(feats, boxes_per_image)     # ChartOutputs for all boxes, image order
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.ops import batched_nms, roi_align

from .config import DensePoseConfig

# Box deltas are clamped before exp() so a wild regression cannot overflow (detectron2's default).
_SCALE_CLAMP = math.log(1000.0 / 16)
# FPN level assignment of ROIs (FPN paper eq. 1): a 224-pixel box pools from P4.
_CANONICAL_BOX_SIZE = 224
_CANONICAL_LEVEL = 4


def _roi_axis_weights(lo: torch.Tensor, hi: torch.Tensor, n: int, pooled: int, scale: float, sampling: int):
    """ROIAlign's (aligned=False) sampling along one axis as weights: (R, pooled, L) over cells o .. o + L - 1.

    torchvision's CPU kernel samples each bin on a grid (ceil(roi size / pooled) points per axis unless
    `sampling` > 0), interpolates bilinearly with its edge rules (points beyond -1 or the map's size count
    zero, below 0 clamp to 0, at the last cell clamp to it) and averages. The bilinear weights and the
    in-range test are products of a y and an x factor, so a box's output is Wy @ F @ Wx^T with these
    per-axis weights (the average's 1 / count split as 1 / grid_h and 1 / grid_w).
    Returns the weights and each box's first cell and cell count (0 when no sample is in range).
    """
    start = lo * scale
    length = torch.clamp(hi * scale - start, min=1.0)
    bin_size = (length / pooled).view(-1, 1, 1)
    grid = torch.full_like(length, float(sampling)) if sampling > 0 else torch.ceil(length / pooled)
    grid = grid.view(-1, 1, 1)
    g = int(grid.max().item()) if len(lo) else 1
    p = torch.arange(pooled, dtype=lo.dtype, device=lo.device).view(1, -1, 1)
    i = torch.arange(g, dtype=lo.dtype, device=lo.device).view(1, 1, -1)
    # The kernel's expression order: y = start + ph * bin + (iy + .5) * bin / grid.
    c = (start.view(-1, 1, 1) + p * bin_size) + (i + 0.5) * bin_size / grid
    valid = (i < grid) & (c >= -1.0) & (c <= n)
    c = torch.clamp(c, min=0.0)
    low = c.to(torch.int64)
    edge = low >= n - 1
    low = torch.where(edge, n - 1, low)
    c = torch.where(edge, low.to(c.dtype), c)
    high = torch.where(edge, low, low + 1)
    frac = c - low
    first = torch.where(valid, low, n).flatten(1).amin(1)
    count = torch.clamp(torch.where(valid, high, -1).flatten(1).amax(1) - first + 1, min=0)
    first = torch.where(count > 0, first, 0)
    w = torch.zeros((len(lo), pooled, max(int(count.max().item()) if len(lo) else 1, 1)), dtype=lo.dtype,
                    device=lo.device)
    share = valid.to(lo.dtype) / grid
    f = first.view(-1, 1, 1)
    w.scatter_add_(2, torch.where(valid, low - f, 0), (1.0 - frac) * share)
    w.scatter_add_(2, torch.where(valid, high - f, 0), frac * share)
    return w, first.tolist(), count.tolist()


def roi_align_separable(x: torch.Tensor, rois: torch.Tensor, size: tuple[int, int], scale: float,
                        sampling: int) -> torch.Tensor:
    """torchvision's roi_align(x, rois, size, scale, sampling, aligned=False) for one image (x: (1, C, H, W)).

    Each box is two small matrix products over the cells it reads (see _roi_axis_weights), on the
    channels_last features as they come from the FPN: ~5x less CPU than torchvision's single-threaded
    kernel for the box head's 1000 proposals, equal to float rounding (summation order).
    """
    h, w = x.shape[-2:]
    feat = x[0].permute(1, 2, 0)  # (H, W, C): a view of channels_last features
    if not feat.is_contiguous():
        feat = feat.contiguous()
    c = feat.shape[-1]
    rois = rois.float()
    wy, y0, ny = _roi_axis_weights(rois[:, 2], rois[:, 4], h, size[0], scale, sampling)
    wx, x0, nx = _roi_axis_weights(rois[:, 1], rois[:, 3], w, size[1], scale, sampling)
    out = torch.zeros((len(rois), size[0], size[1], c), dtype=feat.dtype, device=feat.device)
    wy, wx = wy.to(feat.dtype), wx.to(feat.dtype)
    with torch.autocast(feat.device.type, enabled=False):  # in the features' dtype, as torchvision's kernel
        for r in range(len(rois)):
            hc, wc = ny[r], nx[r]
            if hc == 0 or wc == 0:
                continue
            crop = feat[y0[r]: y0[r] + hc, x0[r]: x0[r] + wc].reshape(hc, wc * c)
            rows = torch.mm(wy[r, :, :hc], crop).view(size[0], wc, c)
            torch.matmul(wx[r, :, :wc], rows, out=out[r])
    return out.permute(0, 3, 1, 2)


def box_roi_align(x: torch.Tensor, rois: torch.Tensor, size, scale: float, sampling: int) -> torch.Tensor:
    """The box pooler's ROIAlign: roi_align_separable on CPU, torchvision's kernel elsewhere or with gradients."""
    if x.device.type != "cpu" or x.shape[0] != 1 or (torch.is_grad_enabled() and x.requires_grad):
        return roi_align(x, rois, size, scale, sampling, False)
    return roi_align_separable(x, rois, size, scale, sampling)


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters, all buffers (the checkpoint's four arrays)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The fused inference op, as detectron2 runs it without gradients, so results round the same way.
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False,
                            eps=self.eps)


class ConvNorm(nn.Conv2d):
    """A Conv2d with an optional norm sub-module named ``norm`` (detectron2's parameter layout).

    At inference a FrozenBatchNorm2d is folded into the convolution's weight and bias (one op instead of
    two passes over the output; equal up to float rounding). The folded pair is cached and rebuilt when
    any of its source tensors changes in place (their version counters). The unfolded path runs when
    gradients are recorded or when the norm module has hooks (tools/make_densepose_fixture.py tunes the
    statistics from a pre-hook).
    """

    def __init__(self, *args, norm: nn.Module | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self._folded: tuple | None = None

    def _fold(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.norm
        srcs = (self.weight, n.weight, n.bias, n.running_mean, n.running_var)
        srcs += (self.bias,) if self.bias is not None else ()
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in srcs)
        if self._folded is None or self._folded[0] != key:
            # Normal tensors even under inference_mode, so the cache also serves later no_grad calls.
            with torch.inference_mode(False), torch.no_grad():
                scale = n.weight * torch.rsqrt(n.running_var + n.eps)
                bias = n.bias - n.running_mean * scale
                if self.bias is not None:
                    bias = bias + self.bias * scale
                weight = (self.weight * scale.view(-1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
            self._folded = (key, weight, bias)
        return self._folded[1], self._folded[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm
        if n is None:
            return super().forward(x)
        if (
            isinstance(n, FrozenBatchNorm2d)
            and not (torch.is_grad_enabled() and self.weight.requires_grad)
            and not (n._forward_pre_hooks or n._forward_hooks)
        ):
            weight, bias = self._fold()
            return self._conv_forward(x, weight, bias)
        return n(super().forward(x))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cmid: int, cout: int, stride: int, cfg: DensePoseConfig):
        super().__init__()
        eps = cfg.bn_eps
        self.shortcut = (ConvNorm(cin, cout, 1, stride=stride, bias=False, norm=FrozenBatchNorm2d(cout, eps))
                         if cin != cout else None)
        s1, s3 = (stride, 1) if cfg.stride_in_1x1 else (1, stride)
        self.conv1 = ConvNorm(cin, cmid, 1, stride=s1, bias=False, norm=FrozenBatchNorm2d(cmid, eps))
        self.conv2 = ConvNorm(cmid, cmid, 3, stride=s3, padding=1, bias=False, norm=FrozenBatchNorm2d(cmid, eps))
        self.conv3 = ConvNorm(cmid, cout, 1, bias=False, norm=FrozenBatchNorm2d(cout, eps))

    def forward(self, x: torch.Tensor, ext: _Extents | None = None) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        if ext is not None:
            out = ext.clear(out)
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        out += self.shortcut(x) if self.shortcut is not None else x
        return F.relu_(out)


class Stem(nn.Module):
    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.conv1 = ConvNorm(3, cfg.stem_channels, 7, stride=2, padding=3, bias=False,
                              norm=FrozenBatchNorm2d(cfg.stem_channels, cfg.bn_eps))

    def forward(self, x: torch.Tensor, ext: _Extents | None = None) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        if ext is not None:
            # Zeros equal the pool's -inf padding here: the inputs are >= 0 after the ReLU.
            x = ext.clear(x)
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ResNet(nn.Module):
    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.stem = Stem(cfg)
        cin, cmid, cout = cfg.stem_channels, cfg.bottleneck_channels, cfg.res2_channels
        self.stage_names = []
        for i, n in enumerate(cfg.stage_blocks):
            blocks = []
            for b in range(n):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(Bottleneck(cin, cmid, cout, stride, cfg))
                cin = cout
            name = f"res{i + 2}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            cmid, cout = cmid * 2, cout * 2

    def forward(self, x: torch.Tensor, ext: _Extents | None = None) -> list[torch.Tensor]:
        x = self.stem(x, ext)
        outs = []
        for name in self.stage_names:
            for block in getattr(self, name):
                x = block(x, ext)
            outs.append(x)
        return outs


class FPN(nn.Module):
    """ResNet + FPN: P2-P5 from lateral 1x1 and output 3x3 convs with nearest 2x top-down sums; P6 by max pool."""

    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.bottom_up = ResNet(cfg)
        c = cfg.fpn_channels
        for i in range(len(cfg.stage_blocks)):
            cin = cfg.res2_channels * 2**i
            self.add_module(f"fpn_lateral{i + 2}", nn.Conv2d(cin, c, 1))
            self.add_module(f"fpn_output{i + 2}", nn.Conv2d(c, c, 3, padding=1))
        self.levels = [i + 2 for i in range(len(cfg.stage_blocks))]

    def forward(self, x: torch.Tensor, ext: _Extents | None = None) -> list[torch.Tensor]:
        bottom = self.bottom_up(x, ext)

        def out(lvl, t):
            return getattr(self, f"fpn_output{lvl}")(ext.clear(t) if ext is not None else t)

        top = self.levels[-1]
        prev = getattr(self, f"fpn_lateral{top}")(bottom[-1])
        results = [out(top, prev)]
        for lvl, feat in zip(reversed(self.levels[:-1]), reversed(bottom[:-1])):
            prev = getattr(self, f"fpn_lateral{lvl}")(feat) + F.interpolate(prev, scale_factor=2.0, mode="nearest")
            results.insert(0, out(lvl, prev))
        results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0))
        return results


class RPNHead(nn.Module):
    def __init__(self, channels: int, num_anchors: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.objectness_logits = nn.Conv2d(channels, num_anchors, 1)
        self.anchor_deltas = nn.Conv2d(channels, num_anchors * 4, 1)


class RPN(nn.Module):
    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.rpn_head = RPNHead(cfg.fpn_channels, len(cfg.anchor_ratios))


class BoxHead(nn.Module):
    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        dim = cfg.fpn_channels * cfg.box_pooler_resolution**2
        self.num_fc = cfg.box_num_fc
        for k in range(cfg.box_num_fc):
            self.add_module(f"fc{k + 1}", nn.Linear(dim, cfg.box_fc_dim))
            dim = cfg.box_fc_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, start_dim=1)
        for k in range(self.num_fc):
            x = F.relu(getattr(self, f"fc{k + 1}")(x))
        return x


class BoxPredictor(nn.Module):
    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.cls_score = nn.Linear(cfg.box_fc_dim, cfg.num_classes + 1)
        self.bbox_pred = nn.Linear(cfg.box_fc_dim, cfg.num_classes * 4)


class _ConvReLU(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x))


class Decoder(nn.Module):
    """Merges P2-P5 into one stride-4 map: per level 3x3 conv+ReLU and 2x bilinear steps down to stride 4, summed."""

    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.levels = [f"p{i + 2}" for i in range(len(cfg.stage_blocks))]
        common = int(math.log2(cfg.decoder_common_stride))
        for i, name in enumerate(self.levels):
            log_stride = i + 2
            ops: list[nn.Module] = []
            for k in range(max(1, log_stride - common)):
                ops.append(_ConvReLU(cfg.fpn_channels if k == 0 else cfg.decoder_conv_dims, cfg.decoder_conv_dims,
                                     3, padding=1))
                if log_stride != common:
                    ops.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.add_module(name, nn.Sequential(*ops))
        self.predictor = nn.Conv2d(cfg.decoder_conv_dims, cfg.decoder_num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = None
        for name, feat in zip(self.levels, features):
            y = getattr(self, name)(feat)
            x = y if x is None else x + y
        return self.predictor(x)


class DensePoseHead(nn.Module):
    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.n = cfg.dp_num_convs
        cin = cfg.decoder_num_classes
        for i in range(self.n):
            self.add_module(f"body_conv_fcn{i + 1}",
                            nn.Conv2d(cin, cfg.dp_head_dim, cfg.dp_kernel, padding=cfg.dp_kernel // 2))
            cin = cfg.dp_head_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n):
            x = F.relu(getattr(self, f"body_conv_fcn{i + 1}")(x))
        return x


class ChartPredictor(nn.Module):
    """Coarse segmentation, fine segmentation (24 parts + background), U and V: a stride-2 deconv then 2x bilinear."""

    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        k, cin, p = cfg.dp_deconv_kernel, cfg.dp_head_dim, cfg.num_patches + 1
        pad = int(k / 2 - 1)
        self.ann_index_lowres = nn.ConvTranspose2d(cin, cfg.num_coarse_segm_channels, k, stride=2, padding=pad)
        self.index_uv_lowres = nn.ConvTranspose2d(cin, p, k, stride=2, padding=pad)
        self.u_lowres = nn.ConvTranspose2d(cin, p, k, stride=2, padding=pad)
        self.v_lowres = nn.ConvTranspose2d(cin, p, k, stride=2, padding=pad)
        self.scale = cfg.dp_up_scale

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> ChartOutputs:
        return ChartOutputs(coarse_segm=self._up(self.ann_index_lowres(x)), fine_segm=self._up(self.index_uv_lowres(x)),
                            u=self._up(self.u_lowres(x)), v=self._up(self.v_lowres(x)))


class ROIHeads(nn.Module):
    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.box_head = BoxHead(cfg)
        self.box_predictor = BoxPredictor(cfg)
        self.decoder = Decoder(cfg)
        self.densepose_head = DensePoseHead(cfg)
        self.densepose_predictor = ChartPredictor(cfg)


@dataclass
class ChartOutputs:
    """The chart predictor's raw outputs for N boxes: (N, 2, S, S), (N, 25, S, S) x 3, S = 4 x pooler size."""

    coarse_segm: torch.Tensor
    fine_segm: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    def __getitem__(self, idx) -> ChartOutputs:
        return ChartOutputs(self.coarse_segm[idx], self.fine_segm[idx], self.u[idx], self.v[idx])

    def __len__(self) -> int:
        return self.coarse_segm.shape[0]


@dataclass
class PreparedBatch:
    """Photos as the network sees them: resized, normalized, zero-padded to a common multiple of 32."""

    tensor: torch.Tensor  # (N, 3, Hpad, Wpad), BGR, normalized
    image_sizes: list[tuple[int, int]]  # each photo's (h, w) after resizing, inside the padding
    original_sizes: list[tuple[int, int]]  # each photo's (H, W)
    padded_sizes: list[tuple[int, int]]  # each photo's own padded size (what it would get alone)


@dataclass
class Detections:
    """One image's detections in the resized frame, sorted by score (detectron2's box-head inference)."""

    boxes: torch.Tensor  # (K, 4) xyxy
    scores: torch.Tensor  # (K,)
    classes: torch.Tensor  # (K,)
    proposal_index: torch.Tensor  # (K,) index of the proposal each came from


@dataclass
class DensePoseResult:
    """One photo's persons: boxes in the photo's pixels, scores, and chart outputs for the persons that have them.

    ``chart_index[j]`` is the person (row of ``boxes``) whose chart outputs are ``charts[j]``: every person with
    ``densepose="all"``, only the main one with ``densepose="main"``, none with ``densepose="none"``.
    """

    boxes: np.ndarray  # (N, 4) float32 x0, y0, x1, y1
    scores: np.ndarray  # (N,) float32, descending
    classes: np.ndarray  # (N,) int64
    image_size: tuple[int, int]  # (H, W) of the photo
    chart_index: np.ndarray  # (M,) int64
    charts: ChartOutputs | None  # M entries, float32 CPU tensors


class _Extents:
    """Each image's own padded size in a batch padded to a larger size, to run the batch as if one at a time.

    Alone, a photo is padded to its own multiple of 32 and every 3x3 conv zero-pads beyond that. In a bigger
    batch the extra area holds features computed from zeros instead, which reach into the photo through
    the receptive field. Clearing everything outside a photo's own extent before each spatial conv (and
    slicing per photo in the RPN, the poolers and the decoder) gives the one-at-a-time results.
    """

    def __init__(self, sizes: list[tuple[int, int]], padded: tuple[int, int], device):
        self.sizes, self.padded, self.device = sizes, padded, device
        self._masks: dict[tuple[int, int], torch.Tensor] = {}

    def clear(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        key = (h, w)
        if key not in self._masks:
            stride = next(2**k for k in range(1, 12) if extent(self.padded, 2**k) == (h, w))
            m = torch.zeros((len(self.sizes), 1, h, w), dtype=x.dtype, device=self.device)
            for i, size in enumerate(self.sizes):
                eh, ew = extent(size, stride)
                m[i, :, :eh, :ew] = 1
            self._masks[key] = m
        return x * self._masks[key]


def extent(padded: tuple[int, int], stride: int) -> tuple[int, int]:
    """A photo's feature-map size at `stride` when run alone (ceil: P6 is a stride-2 pool of P5)."""
    return math.ceil(padded[0] / stride), math.ceil(padded[1] / stride)


def resized_shape(h: int, w: int, short: int, max_size: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge output size: short side to `short`, long side capped, rounded half up."""
    size = short * 1.0
    scale = size / min(h, w)
    newh, neww = (size, scale * w) if h < w else (scale * h, size)
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def apply_deltas(deltas: torch.Tensor, boxes: torch.Tensor, weights) -> torch.Tensor:
    """Box regression decode (dx, dy, dw, dh) relative to `boxes`, the R-CNN parametrization."""
    deltas = deltas.float()
    boxes = boxes.to(deltas.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0::4] / wx
    dy = deltas[:, 1::4] / wy
    dw = torch.clamp(deltas[:, 2::4] / ww, max=_SCALE_CLAMP)
    dh = torch.clamp(deltas[:, 3::4] / wh, max=_SCALE_CLAMP)
    pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
    pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = torch.exp(dw) * widths[:, None]
    pred_h = torch.exp(dh) * heights[:, None]
    out = torch.stack((pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h,
                       pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h), dim=-1)
    return out.reshape(deltas.shape)


def clip_boxes(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    return torch.stack((boxes[:, 0].clamp(min=0, max=w), boxes[:, 1].clamp(min=0, max=h),
                        boxes[:, 2].clamp(min=0, max=w), boxes[:, 3].clamp(min=0, max=h)), dim=-1)


def nonempty(boxes: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    return ((boxes[:, 2] - boxes[:, 0]) > threshold) & ((boxes[:, 3] - boxes[:, 1]) > threshold)


class DensePoseRCNN(nn.Module):
    """The network plus detectron2's test-time pre- and post-processing; see the module docstring."""

    def __init__(self, cfg: DensePoseConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = FPN(cfg)
        self.proposal_generator = RPN(cfg)
        self.roi_heads = ROIHeads(cfg)
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(-1, 1, 1), persistent=False)
        self.strides = [2**lvl for lvl in range(2, len(cfg.stage_blocks) + 3)]  # P2..P6
        self._anchor_cache: dict[tuple[int, int, int], torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ---- input -------------------------------------------------------------------------------------------
    def preprocess(self, images_rgb: list[np.ndarray]) -> PreparedBatch:
        """RGB uint8 photos -> BGR, resized (PIL bilinear, as DefaultPredictor), normalized, one padded batch."""
        cfg = self.cfg
        tensors, sizes, originals = [], [], []
        for img in images_rgb:
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"expected an HxWx3 uint8 RGB image, got {img.dtype} {img.shape}")
            h, w = img.shape[:2]
            bgr = np.ascontiguousarray(img[:, :, ::-1])
            nh, nw = resized_shape(h, w, cfg.min_size_test, cfg.max_size_test)
            resized = np.asarray(Image.fromarray(bgr).resize((nw, nh), Image.BILINEAR))
            t = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1)).to(self.device)
            tensors.append((t - self.pixel_mean) / self.pixel_std)
            sizes.append((nh, nw))
            originals.append((h, w))
        d = cfg.size_divisibility
        padded = [(-(-h // d) * d, -(-w // d) * d) for h, w in sizes]
        hp, wp = max(p[0] for p in padded), max(p[1] for p in padded)
        batch = tensors[0].new_full((len(tensors), 3, hp, wp), 0.0)
        for i, t in enumerate(tensors):
            batch[i, :, : t.shape[1], : t.shape[2]].copy_(t)
        return PreparedBatch(batch, sizes, originals, padded)

    def _extents(self, feats_or_x, padded_sizes) -> _Extents | None:
        x = feats_or_x[0] if isinstance(feats_or_x, list) else feats_or_x
        if padded_sizes is None:
            return None
        full = (x.shape[-2] * (4 if isinstance(feats_or_x, list) else 1),
                x.shape[-1] * (4 if isinstance(feats_or_x, list) else 1))
        if all(tuple(p) == full for p in padded_sizes):
            return None
        return _Extents([tuple(p) for p in padded_sizes], full, self.device)

    def _own(self, feats: list[torch.Tensor], padded_sizes) -> list[tuple[int, int]]:
        """Each image's own padded size (the whole batch size when not given)."""
        full = (feats[0].shape[-2] * 4, feats[0].shape[-1] * 4)
        return [tuple(p) for p in padded_sizes] if padded_sizes is not None else [full] * feats[0].shape[0]

    # ---- backbone and RPN ----------------------------------------------------------------------------------
    def features(self, x: torch.Tensor, padded_sizes=None) -> list[torch.Tensor]:
        """[P2, P3, P4, P5, P6]; with `padded_sizes` (PreparedBatch.padded_sizes) each photo as if run alone."""
        # channels_last: oneDNN's convolutions run without layout reorders (most of the backbone's time
        # is 1x1 convolutions, ~3x faster that way on CPU); values are the same up to float rounding.
        x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x, self._extents(x, padded_sizes))

    def _anchors(self, level: int, h: int, w: int) -> torch.Tensor:
        key = (level, h, w)
        if key not in self._anchor_cache:
            stride = self.strides[level]
            size = self.cfg.anchor_sizes[level]
            cell = []
            for ratio in self.cfg.anchor_ratios:
                aw = math.sqrt(size**2.0 / ratio)
                ah = ratio * aw
                cell.append([-aw / 2.0, -ah / 2.0, aw / 2.0, ah / 2.0])
            cell = torch.tensor(cell, device=self.device)
            sx = torch.arange(0, w * stride, step=stride, dtype=torch.float32, device=self.device)
            sy = torch.arange(0, h * stride, step=stride, dtype=torch.float32, device=self.device)
            gy, gx = torch.meshgrid(sy, sx, indexing="ij")
            gx, gy = gx.reshape(-1), gy.reshape(-1)
            shifts = torch.stack((gx, gy, gx, gy), dim=1)
            self._anchor_cache[key] = (shifts.view(-1, 1, 4) + cell.view(1, -1, 4)).reshape(-1, 4)
        return self._anchor_cache[key]

    def proposals(self, feats: list[torch.Tensor], image_sizes: list[tuple[int, int]], padded_sizes=None):
        """RPN proposals per image: (boxes (R, 4), objectness logits (R,)), best first, in the resized frame."""
        cfg = self.cfg
        head = self.proposal_generator.rpn_head
        ext = self._extents(feats, padded_sizes)
        own = self._own(feats, padded_sizes)
        logits, deltas = [], []
        for x in feats:
            t = F.relu(head.conv(ext.clear(x) if ext is not None else x))
            logits.append(head.objectness_logits(t))
            deltas.append(head.anchor_deltas(t))
        out = []
        for i, size in enumerate(image_sizes):
            boxes, scores, lvl = [], [], []
            for level, (lg, dl) in enumerate(zip(logits, deltas)):
                # Only this photo's own feature extent: anchors there are all it would have alone.
                eh, ew = extent(own[i], self.strides[level])
                lg = lg[i:i + 1, :, :eh, :ew].permute(0, 2, 3, 1).flatten(1)[0].float()
                dl = dl[i:i + 1, :, :eh, :ew]
                dl = dl.reshape(1, -1, 4, eh, ew).permute(0, 3, 4, 1, 2).flatten(1, -2)[0]
                props = apply_deltas(dl, self._anchors(level, eh, ew), (1.0, 1.0, 1.0, 1.0))
                k = min(lg.shape[0], cfg.rpn_pre_nms_topk)
                top, idx = lg.topk(k)
                boxes.append(props[idx])
                scores.append(top)
                lvl.append(torch.full((k,), level, dtype=torch.int64, device=self.device))
            boxes, scores, lvl = torch.cat(boxes), torch.cat(scores), torch.cat(lvl)
            valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
            if not valid.all():
                boxes, scores, lvl = boxes[valid], scores[valid], lvl[valid]
            boxes = clip_boxes(boxes, size)
            keep = nonempty(boxes, cfg.rpn_min_box_size)
            if keep.sum().item() != len(boxes):
                boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = batched_nms(boxes.float(), scores, lvl, cfg.rpn_nms_thresh)[: cfg.rpn_post_nms_topk]
            out.append((boxes[keep], scores[keep]))
        return out

    # ---- box head ------------------------------------------------------------------------------------------
    def _box_pool(self, feats: list[torch.Tensor], boxes_per_image: list[torch.Tensor], padded_sizes=None):
        cfg = self.cfg
        levels = feats[:-1]  # P2-P5; P6 feeds the RPN only
        own = self._own(feats, padded_sizes)
        r = cfg.box_pooler_resolution
        total = sum(len(b) for b in boxes_per_image)
        out = torch.zeros((total, levels[0].shape[1], r, r), dtype=torch.float32, device=self.device)
        start = 0
        for i, boxes in enumerate(boxes_per_image):
            sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
            lvl = torch.floor(_CANONICAL_LEVEL + torch.log2(sizes / _CANONICAL_BOX_SIZE + 1e-8))
            lvl = torch.clamp(lvl, min=2, max=1 + len(levels)).to(torch.int64) - 2
            rois = torch.cat([torch.zeros((len(boxes), 1), dtype=boxes.dtype, device=boxes.device), boxes], dim=1)
            for j, x in enumerate(levels):
                inds = torch.nonzero(lvl == j, as_tuple=True)[0]
                if len(inds) == 0:
                    continue
                # Pool from this photo's own extent: ROIAlign clamps at the map's edge, as when run alone.
                eh, ew = extent(own[i], self.strides[j])
                # float32 features and boxes: bf16 box coordinates would be off by pixels.
                pooled = box_roi_align(
                    x[i : i + 1, :, :eh, :ew].float(), rois[inds].float(), (r, r), 1.0 / self.strides[j],
                    cfg.box_sampling_ratio,
                )
                out.index_put_((inds + start,), pooled)
            start += len(boxes)
        return out

    def box_outputs(self, feats: list[torch.Tensor], boxes_per_image: list[torch.Tensor], padded_sizes=None):
        """Class probabilities (R, C+1) and decoded boxes (R, 4C) for the given boxes, all images concatenated."""
        x = self.roi_heads.box_head(self._box_pool(feats, boxes_per_image, padded_sizes))
        logits = self.roi_heads.box_predictor.cls_score(x)
        deltas = self.roi_heads.box_predictor.bbox_pred(x)
        probs = F.softmax(logits.float(), dim=-1)
        decoded = apply_deltas(deltas, torch.cat(boxes_per_image, dim=0), self.cfg.box_reg_weights)
        return probs, decoded

    def detect(self, feats, proposal_boxes: list[torch.Tensor], image_sizes, padded_sizes=None) -> list[Detections]:
        """Box head inference on the given proposals: score threshold, per-class NMS, top detections per image."""
        cfg = self.cfg
        if sum(len(b) for b in proposal_boxes) == 0:
            empty = torch.zeros((0, 4), device=self.device)
            z = torch.zeros((0,), dtype=torch.int64, device=self.device)
            return [Detections(empty, empty[:, 0], z, z) for _ in proposal_boxes]
        probs, decoded = self.box_outputs(feats, proposal_boxes, padded_sizes)
        counts = [len(b) for b in proposal_boxes]
        out = []
        for boxes, scores, size in zip(decoded.split(counts), probs.split(counts), image_sizes):
            valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
            index = torch.arange(len(boxes), device=self.device)
            if not valid.all():
                boxes, scores, index = boxes[valid], scores[valid], index[valid]
            scores = scores[:, :-1]
            ncls = boxes.shape[1] // 4
            boxes = clip_boxes(boxes.reshape(-1, 4), size).view(-1, ncls, 4)
            mask = scores > cfg.score_thresh
            inds = mask.nonzero()
            boxes = boxes[inds[:, 0], 0] if ncls == 1 else boxes[mask]
            scores = scores[mask]
            keep = batched_nms(boxes.float(), scores, inds[:, 1], cfg.nms_thresh)
            if cfg.detections_per_image >= 0:
                keep = keep[: cfg.detections_per_image]
            out.append(Detections(boxes[keep], scores[keep], inds[keep, 1], index[inds[keep, 0]]))
        return out

    # ---- DensePose branch ----------------------------------------------------------------------------------
    def decoder_features(self, feats: list[torch.Tensor], index: int = 0, padded=None,
                         window: tuple[int, int, int, int] | None = None) -> torch.Tensor:
        """The decoder's stride-4 map of one image of the batch over its own extent, or over `window`.

        `window` (x0, y0, x1, y1 in resized-image pixels, multiples of 32 or the extent's end) restricts the
        work to that part of the photo; see _decoder_window for why its outputs equal the full map's there.
        """
        own = padded or (feats[0].shape[-2] * 4, feats[0].shape[-1] * 4)
        x0, y0, x1, y1 = window or (0, 0, own[1], own[0])
        crops = []
        for j, x in enumerate(feats[:-1]):
            s = self.strides[j]
            crops.append(x[index:index + 1, :, y0 // s: -(-y1 // s), x0 // s: -(-x1 // s)])
        return self.roi_heads.decoder(crops)

    def _decoder_window(self, boxes: torch.Tensor, own: tuple[int, int]) -> tuple[int, int, int, int]:
        """The part of the photo the decoder must cover so ROIAlign on `boxes` reads exactly the full map's values.

        ROIAlign (aligned=False) reads the stride-4 cells under a box plus one. Inside a cropped window the
        decoder's convs zero-pad and its 2x bilinear steps clamp at the crop edge, which spoils at most
        70 pixels of the output next to an inner edge (P5: three 3x3 convs and three upsamplings, one cell
        each at strides 32, 16, 8); 128 pixels of margin keep that off the read cells. Window corners are
        multiples of 32 so every level's crop starts on a whole cell, or they are the photo's own extent,
        where the crop edge is the map's edge and behaves the same.
        """
        margin = 128
        b = boxes.detach().float().cpu()
        lo_x = int(torch.floor(b[:, 0].min() / 4).item()) * 4 - margin
        lo_y = int(torch.floor(b[:, 1].min() / 4).item()) * 4 - margin
        hi_x = (int(torch.floor(b[:, 2].max() / 4).item()) + 2) * 4 + margin
        hi_y = (int(torch.floor(b[:, 3].max() / 4).item()) + 2) * 4 + margin
        x0, y0 = max(0, lo_x // 32 * 32), max(0, lo_y // 32 * 32)
        x1, y1 = min(own[1], -(-hi_x // 32) * 32), min(own[0], -(-hi_y // 32) * 32)
        return x0, y0, x1, y1

    def densepose_outputs(self, feats: list[torch.Tensor], boxes_per_image: list[torch.Tensor],
                          padded_sizes=None, crop: bool = True) -> ChartOutputs:
        """Chart outputs for the given boxes (resized frame), all images concatenated in order.

        With `crop` the decoder runs only on the window around the boxes (same values, less work).
        """
        cfg = self.cfg
        own = self._own(feats, padded_sizes)
        r = cfg.dp_pooler_resolution
        pooled = []
        for i, boxes in enumerate(boxes_per_image):
            if len(boxes) == 0:
                continue
            window = self._decoder_window(boxes, own[i]) if crop else (0, 0, own[i][1], own[i][0])
            decoded = self.decoder_features(feats, i, own[i], window)
            shifted = boxes - boxes.new_tensor([window[0], window[1], window[0], window[1]])
            rois = torch.cat([torch.zeros((len(boxes), 1), dtype=boxes.dtype, device=boxes.device), shifted], dim=1)
            pooled.append(roi_align(decoded.float(), rois.float(), (r, r), 1.0 / cfg.decoder_common_stride,
                                    cfg.dp_sampling_ratio, False))
        if not pooled:
            c = cfg.num_patches + 1
            s = 2 * cfg.dp_up_scale * r
            z = torch.zeros((0, c, s, s), device=self.device)
            return ChartOutputs(z[:, : cfg.num_coarse_segm_channels], z, z, z)
        return self.roi_heads.densepose_predictor(self.roi_heads.densepose_head(torch.cat(pooled)))

    # ---- whole inference ------------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, images_rgb: list[np.ndarray], densepose: str = "main", score_threshold: float = 0.8,
                precision: str = "fp32") -> list[DensePoseResult]:
        """Detect persons and run the DensePose branch on all of them, on the main one, or on none.

        The main person is the highest-scoring detection with score >= `score_threshold`; detectron2's own
        score threshold (cfg.score_thresh) still decides which detections are returned. Boxes and scores are
        what detectron2's DefaultPredictor gives for each photo run alone; chart outputs are the predictor's
        raw S x S maps, box-relative, as detectron2 stores them. Photos of different sizes share one padded
        batch, computed as if each ran alone (see _Extents).

        ``precision="bf16"`` runs the convolutions and linear layers in bfloat16 autocast (about 4x faster on
        CPUs with AMX/AVX512-BF16, and on GPUs); box decoding, NMS and ROIAlign stay float32. Its outputs are
        not detectron2's to the pixel (bf16 keeps ~3 significant digits): fp32 is the parity mode.
        """
        if densepose not in ("main", "all", "none"):
            raise ValueError(f"densepose must be 'main', 'all' or 'none', got {densepose!r}")
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if not images_rgb:
            return []
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return self._predict(images_rgb, densepose, score_threshold)

    def _predict(self, images_rgb, densepose, score_threshold) -> list[DensePoseResult]:
        batch = self.preprocess(images_rgb)
        feats = self.features(batch.tensor, batch.padded_sizes)
        props = self.proposals(feats, batch.image_sizes, batch.padded_sizes)
        props = [(b.float(), s.float()) for b, s in props]
        dets = self.detect(feats, [b for b, _ in props], batch.image_sizes, batch.padded_sizes)
        results, chart_boxes = [], []
        for det, size, (oh, ow) in zip(dets, batch.image_sizes, batch.original_sizes):
            boxes = det.boxes.clone()
            boxes[:, 0::2] *= ow / size[1]
            boxes[:, 1::2] *= oh / size[0]
            boxes = clip_boxes(boxes, (oh, ow))
            keep = nonempty(boxes)
            kept = torch.nonzero(keep, as_tuple=True)[0]
            scores = det.scores[keep]
            if densepose == "all":
                chosen = torch.arange(len(kept), device=self.device)
            elif densepose == "main" and len(kept) and scores[0].item() >= score_threshold:
                chosen = torch.zeros(1, dtype=torch.int64, device=self.device)  # scores are sorted
            else:
                chosen = torch.zeros(0, dtype=torch.int64, device=self.device)
            results.append(DensePoseResult(
                boxes=boxes[keep].cpu().numpy().astype(np.float32), scores=scores.cpu().numpy().astype(np.float32),
                classes=det.classes[keep].cpu().numpy(), image_size=(oh, ow),
                chart_index=chosen.cpu().numpy(), charts=None))
            chart_boxes.append(det.boxes[kept[chosen]])
        if any(len(b) for b in chart_boxes):
            charts = self.densepose_outputs(feats, chart_boxes, batch.padded_sizes)
            start = 0
            for res, boxes in zip(results, chart_boxes):
                if len(boxes):
                    c = charts[start: start + len(boxes)]
                    res.charts = ChartOutputs(c.coarse_segm.float().cpu(), c.fine_segm.float().cpu(),
                                              c.u.float().cpu(), c.v.float().cpu())
                    start += len(boxes)
        return results


def build_model(cfg: DensePoseConfig | None = None) -> DensePoseRCNN:
    """The network with PyTorch's default (random) initialization, in eval mode; load weights with checkpoint.py."""
    model = DensePoseRCNN(cfg or DensePoseConfig.full())
    # Convolution weights channels_last, like the activations (see DensePoseRCNN.features).
    return model.to(memory_format=torch.channels_last).eval()


# Peak CPU memory of predict(densepose="main") with the full-size model, measured by
# `bench/densepose_speed.py --memory` (fresh processes, 2 threads, batches of 1 and 4 photos of 1024x768,
# resized to 1067x800, padded 1088x800; peak RSS during predict after a malloc_trim): 1.546e9 bytes at
# batch 1, 2.498e9 at batch 4. Fixed = process after loading (Python, torch, 256 MB of weights) plus what
# a batch needs regardless of its size (the backbone's BN-folded weight copies among it); loading itself
# peaks at 1.55e9, before any batch.
_MEMORY_REF_PADDED_PIXELS = 1088 * 800
_MEMORY_FIXED_BYTES = 1_228_000_000
_MEMORY_PER_IMAGE_BYTES = 317_000_000


def memory_seed(height: int = 1024, width: int = 768, cfg: DensePoseConfig | None = None) -> tuple[int, int]:
    """(fixed_bytes, per_image_bytes) for sizing batches of photos of `height` x `width`: peak ~ fixed + n * per.

    From the CPU measurement above; the per-photo part scales with the padded network input's pixel count
    (the activations do), so photos of any size resize to the same ~0.87 MP the released model sees unless
    their aspect ratio differs. Only the full-size config was measured; narrower configs need less.
    """
    cfg = cfg or DensePoseConfig.full()
    nh, nw = resized_shape(height, width, cfg.min_size_test, cfg.max_size_test)
    d = cfg.size_divisibility
    pixels = (-(-nh // d) * d) * (-(-nw // d) * d)
    return _MEMORY_FIXED_BYTES, int(_MEMORY_PER_IMAGE_BYTES * pixels / _MEMORY_REF_PADDED_PIXELS)
