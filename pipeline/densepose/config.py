"""The architecture and test-time settings of the DensePose R-CNN this package runs.

`DensePoseConfig.full()` is detectron2's released ``densepose_rcnn_R_50_FPN_s1x`` as its configs set it
(``Base-DensePose-RCNN-FPN.yaml`` over detectron2's ``config/defaults.py`` and DensePose's
``densepose/config.py``). The same fields describe a narrow model of the same architecture, which the CI
fixture uses so that a parity test against detectron2's outputs runs in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class DensePoseConfig:
    # ResNet (MSRA, FrozenBN, stride in the 1x1 conv)
    stem_channels: int = 64
    res2_channels: int = 256  # output channels of res2; doubles per stage
    bottleneck_channels: int = 64  # res2's bottleneck width (NUM_GROUPS * WIDTH_PER_GROUP); doubles per stage
    stage_blocks: tuple[int, ...] = (3, 4, 6, 3)
    stride_in_1x1: bool = True
    bn_eps: float = 1e-5
    # FPN P2-P5 plus P6 by max pooling
    fpn_channels: int = 256
    # RPN
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0, 512.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_topk: int = 1000  # per level
    rpn_post_nms_topk: int = 1000  # per image
    rpn_nms_thresh: float = 0.7
    rpn_min_box_size: float = 0.0
    # Box head (FastRCNNConvFCHead with two fc layers, ROIAlign with aligned=False)
    box_pooler_resolution: int = 7
    box_sampling_ratio: int = 2
    box_fc_dim: int = 1024
    box_num_fc: int = 2
    num_classes: int = 1
    box_reg_weights: tuple[float, ...] = (10.0, 10.0, 5.0, 5.0)
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100
    # DensePose: decoder over P2-P5, ROIAlign on its output, DensePoseV1ConvXHead, chart predictor
    decoder_conv_dims: int = 256
    decoder_num_classes: int = 256
    decoder_common_stride: int = 4
    dp_pooler_resolution: int = 28
    dp_sampling_ratio: int = 2
    dp_head_dim: int = 512
    dp_num_convs: int = 8
    dp_kernel: int = 3
    dp_deconv_kernel: int = 4
    dp_up_scale: int = 2
    num_patches: int = 24
    num_coarse_segm_channels: int = 2
    # Input as detectron2's DefaultPredictor prepares it (BGR order for the mean and std)
    min_size_test: int = 800
    max_size_test: int = 1333
    pixel_mean: tuple[float, ...] = (103.530, 116.280, 123.675)
    pixel_std: tuple[float, ...] = (1.0, 1.0, 1.0)
    size_divisibility: int = 32

    @classmethod
    def full(cls) -> DensePoseConfig:
        """The released densepose_rcnn_R_50_FPN_s1x settings."""
        return cls()

    @classmethod
    def tiny(cls) -> DensePoseConfig:
        """A narrow model of the same architecture (a few MB of weights), for tests and fixtures."""
        return cls(
            stem_channels=8, res2_channels=32, bottleneck_channels=8,
            fpn_channels=32, box_fc_dim=64, decoder_conv_dims=32, decoder_num_classes=32,
            dp_pooler_resolution=14, dp_head_dim=32, dp_num_convs=2, rpn_pre_nms_topk=500,
            rpn_post_nms_topk=300, min_size_test=320, max_size_test=512,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> DensePoseConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DensePose config fields: {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> DensePoseConfig:
        return cls.from_dict(json.loads(text))
