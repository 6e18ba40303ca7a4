"""Build tests/fixtures/densepose/: a narrow DensePose R-CNN checkpoint and detectron2's outputs on it, step by step.

Run with a Python that has detectron2 and its DensePose project installed (never the project's CI):

    /tmp/d2venv/bin/python tools/make_densepose_fixture.py [--out tests/fixtures/densepose]

Weights are seeded random, then tuned so that detectron2 finds several persons: random frozen-BN statistics
would blow activations up layer after layer and leave the RPN and box head with nothing, so each FrozenBN
takes the mean/variance of its input on the fixture photos (one calibration pass), the head layers are
rescaled to unit output spread, and the person logit's bias is set from the score distribution so a handful
of distinct-score detections pass detectron2's 0.05 threshold and the best one passes 0.8. The same tuning
serves bench/densepose_parity.py and bench/densepose_speed.py for the full-size model.

The detectron2 side is configured from DensePose's own ``densepose_rcnn_R_50_FPN_s1x.yaml`` with only the
widths/sizes of the narrow config overridden, and loads the pkl this script writes through its own
checkpointer, so the format is the one the released ``model_final_162be9.pkl`` uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.densepose import DensePoseConfig, build_model, save_checkpoint  # noqa: E402
from pipeline.densepose.model import FrozenBatchNorm2d  # noqa: E402

# (H, W): portrait, landscape, a long side capped by max_size, and another portrait.
FIXTURE_SIZES = [(320, 256), (256, 320), (200, 360), (300, 236)]
MAIN_SCORE = 0.8


def fixture_images(sizes=FIXTURE_SIZES, seed0: int = 11) -> list[np.ndarray]:
    from pipeline.testing.synthetic import make_person

    return [make_person(seed0 + i, width=w, height=h).image for i, (h, w) in enumerate(sizes)]


def _msra(module: nn.Module, gen: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.weight
            fan_out = w.shape[0] * (w[0, 0].numel() if w.dim() > 2 else 1)
            if isinstance(m, nn.ConvTranspose2d):
                fan_out = w.shape[1] * w[0, 0].numel()
            w.data.copy_(torch.randn(w.shape, generator=gen) * (2.0 / fan_out) ** 0.5)
            if m.bias is not None:
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.05)


@torch.no_grad()
def tuned_model(cfg: DensePoseConfig, images: list[np.ndarray], seed: int = 4, logit_spread: float = 6.0,
                pass_quantile: float = 0.96):
    """Seeded random weights with statistics tuned on `images` (see the module docstring); returns the model."""
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg)
    _msra(model, gen)
    for m in model.modules():
        if isinstance(m, FrozenBatchNorm2d):
            m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen))
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    # The last BN of each residual branch is damped so the sum with the shortcut stays O(1).
    for name, m in model.named_modules():
        if name.endswith("conv3.norm"):
            m.weight.mul_(0.4)

    hooks, done = [], set()

    def bn_hook(mod, inputs):
        if id(mod) in done:
            return
        x = inputs[0]
        mod.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        mod.running_var.copy_(x.var(dim=(0, 2, 3)) + 1e-3)
        done.add(id(mod))

    def unit_hook(mod, inputs, out):
        # Rescale a layer so its output spread is 1 on the calibration photos (first call only: the RPN
        # conv runs once per level and keeps the scale P2 gave it).
        if id(mod) in done:
            return None
        s = out.std().clamp(min=1e-6)
        mod.weight.div_(s)
        if mod.bias is not None:
            mod.bias.div_(s)
        done.add(id(mod))
        return out / s

    for m in model.modules():
        if isinstance(m, FrozenBatchNorm2d):
            hooks.append(m.register_forward_pre_hook(bn_hook))
    heads = [model.backbone] + [model.proposal_generator.rpn_head.conv, model.roi_heads.box_head,
                                model.roi_heads.decoder, model.roi_heads.densepose_head]
    for h in heads:
        for name, m in h.named_modules():
            if isinstance(m, nn.Conv2d | nn.Linear) and not name.startswith("bottom_up"):
                hooks.append(m.register_forward_hook(unit_hook))

    batch = model.preprocess(images)
    feats = model.features(batch.tensor)
    rpn = model.proposal_generator.rpn_head
    # Objectness with a wide spread (distinct top-k), deltas small (proposals near their anchors).
    t = torch.relu(rpn.conv(feats[0]))
    s = rpn.objectness_logits(t).std()
    rpn.objectness_logits.weight.mul_(2.5 / s)
    rpn.objectness_logits.bias.mul_(2.5 / s)
    s = rpn.anchor_deltas(t).std()
    rpn.anchor_deltas.weight.mul_(0.15 / s)
    rpn.anchor_deltas.bias.zero_()
    props = model.proposals(feats, batch.image_sizes)
    boxes = [b for b, _ in props]

    pred = model.roi_heads.box_predictor
    x = model.roi_heads.box_head(model._box_pool(feats, boxes))
    # Person-minus-background logit: spread 6, bias so ~4% of proposals clear detectron2's 0.05 threshold.
    pred.cls_score.weight[1].zero_()
    pred.cls_score.bias[1] = 0.0
    d = pred.cls_score(x)[:, 0]
    pred.cls_score.weight[0].mul_(logit_spread / d.std())
    d = pred.cls_score(x)[:, 0]
    q = torch.quantile(d, pass_quantile)
    pred.cls_score.bias[0] += float(np.log(0.05 / 0.95)) - q
    s = pred.bbox_pred(x).std()
    pred.bbox_pred.weight.mul_(0.5 / s)
    pred.bbox_pred.bias.zero_()

    dets = model.detect(feats, boxes, batch.image_sizes)
    dp = model.roi_heads.densepose_predictor
    out = model.densepose_outputs(feats, [d.boxes[:3] for d in dets])
    # Coarse foreground on ~60% of the box; fine logits spread 2; U/V around 0.5 with spread 0.15.
    for layer, ref, spread, center in ((dp.ann_index_lowres, out.coarse_segm, 2.0, None),
                                       (dp.index_uv_lowres, out.fine_segm, 2.0, None),
                                       (dp.u_lowres, out.u, 0.15, 0.5), (dp.v_lowres, out.v, 0.15, 0.5)):
        s = ref.std().clamp(min=1e-6)
        m = ref.mean(dim=(0, 2, 3))
        layer.weight.mul_(spread / s)
        layer.bias.copy_((layer.bias - m) * spread / s + (center if center is not None else 0.0))
    dp.ann_index_lowres.bias[1] += 0.8
    for h in hooks:
        h.remove()
    return model


def detectron2_cfg(cfg: DensePoseConfig, weights: str, config_yaml: str | None = None):
    """detectron2's config from DensePose's s1x yaml with this config's widths and test sizes."""
    import densepose
    from densepose import add_densepose_config
    from detectron2.config import get_cfg

    if config_yaml is None:
        config_yaml = str(Path(densepose.__file__).resolve().parents[1] / "configs/densepose_rcnn_R_50_FPN_s1x.yaml")
    c = get_cfg()
    add_densepose_config(c)
    c.merge_from_file(config_yaml)
    assert tuple(cfg.stage_blocks) == (3, 4, 6, 3) and c.MODEL.RESNETS.DEPTH == 50
    c.MODEL.WEIGHTS = weights
    c.MODEL.DEVICE = "cpu"
    c.MODEL.RESNETS.STEM_OUT_CHANNELS = cfg.stem_channels
    c.MODEL.RESNETS.RES2_OUT_CHANNELS = cfg.res2_channels
    c.MODEL.RESNETS.NUM_GROUPS = 1
    c.MODEL.RESNETS.WIDTH_PER_GROUP = cfg.bottleneck_channels
    c.MODEL.FPN.OUT_CHANNELS = cfg.fpn_channels
    c.MODEL.RPN.PRE_NMS_TOPK_TEST = cfg.rpn_pre_nms_topk
    c.MODEL.RPN.POST_NMS_TOPK_TEST = cfg.rpn_post_nms_topk
    c.MODEL.ROI_BOX_HEAD.FC_DIM = cfg.box_fc_dim
    c.MODEL.ROI_DENSEPOSE_HEAD.DECODER_CONV_DIMS = cfg.decoder_conv_dims
    c.MODEL.ROI_DENSEPOSE_HEAD.DECODER_NUM_CLASSES = cfg.decoder_num_classes
    c.MODEL.ROI_DENSEPOSE_HEAD.CONV_HEAD_DIM = cfg.dp_head_dim
    c.MODEL.ROI_DENSEPOSE_HEAD.NUM_STACKED_CONVS = cfg.dp_num_convs
    c.MODEL.ROI_DENSEPOSE_HEAD.POOLER_RESOLUTION = cfg.dp_pooler_resolution
    c.INPUT.MIN_SIZE_TEST = cfg.min_size_test
    c.INPUT.MAX_SIZE_TEST = cfg.max_size_test
    c.freeze()
    # What the released model's config says, checked against this package's defaults (facts, not copies).
    full = DensePoseConfig.full()
    checks = {
        "ROI_BOX_HEAD.POOLER_TYPE": (c.MODEL.ROI_BOX_HEAD.POOLER_TYPE, "ROIAlign"),
        "ROI_DENSEPOSE_HEAD.POOLER_TYPE": (c.MODEL.ROI_DENSEPOSE_HEAD.POOLER_TYPE, "ROIAlign"),
        "ROI_BOX_HEAD.POOLER_RESOLUTION": (c.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION, full.box_pooler_resolution),
        "ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": (c.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO, full.box_sampling_ratio),
        "ROI_BOX_HEAD.NUM_FC": (c.MODEL.ROI_BOX_HEAD.NUM_FC, full.box_num_fc),
        "ROI_HEADS.NUM_CLASSES": (c.MODEL.ROI_HEADS.NUM_CLASSES, full.num_classes),
        "ROI_HEADS.SCORE_THRESH_TEST": (c.MODEL.ROI_HEADS.SCORE_THRESH_TEST, full.score_thresh),
        "ROI_HEADS.NMS_THRESH_TEST": (c.MODEL.ROI_HEADS.NMS_THRESH_TEST, full.nms_thresh),
        "TEST.DETECTIONS_PER_IMAGE": (c.TEST.DETECTIONS_PER_IMAGE, full.detections_per_image),
        "RPN.NMS_THRESH": (c.MODEL.RPN.NMS_THRESH, full.rpn_nms_thresh),
        "RESNETS.STRIDE_IN_1X1": (c.MODEL.RESNETS.STRIDE_IN_1X1, full.stride_in_1x1),
        "RESNETS.NORM": (c.MODEL.RESNETS.NORM, "FrozenBN"),
        "DENSEPOSE.DECODER_ON": (c.MODEL.ROI_DENSEPOSE_HEAD.DECODER_ON, True),
        "DENSEPOSE.NUM_PATCHES": (c.MODEL.ROI_DENSEPOSE_HEAD.NUM_PATCHES, full.num_patches),
        "DENSEPOSE.UP_SCALE": (c.MODEL.ROI_DENSEPOSE_HEAD.UP_SCALE, full.dp_up_scale),
        "DENSEPOSE.DECONV_KERNEL": (c.MODEL.ROI_DENSEPOSE_HEAD.DECONV_KERNEL, full.dp_deconv_kernel),
        "DENSEPOSE.POOLER_SAMPLING_RATIO": (c.MODEL.ROI_DENSEPOSE_HEAD.POOLER_SAMPLING_RATIO, full.dp_sampling_ratio),
        "DENSEPOSE.UV_CONFIDENCE": (c.MODEL.ROI_DENSEPOSE_HEAD.UV_CONFIDENCE.ENABLED, False),
        "DENSEPOSE.SEGM_CONFIDENCE": (c.MODEL.ROI_DENSEPOSE_HEAD.SEGM_CONFIDENCE.ENABLED, False),
        "PIXEL_MEAN": (tuple(c.MODEL.PIXEL_MEAN), full.pixel_mean),
        "PIXEL_STD": (tuple(c.MODEL.PIXEL_STD), full.pixel_std),
        "ANCHOR SIZES": (tuple(s[0] for s in c.MODEL.ANCHOR_GENERATOR.SIZES), full.anchor_sizes),
        "ANCHOR RATIOS": (tuple(c.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS[0]), full.anchor_ratios),
        "BBOX_REG_WEIGHTS": (tuple(c.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS), full.box_reg_weights),
        "INPUT.FORMAT": (c.INPUT.FORMAT, "BGR"),
    }
    bad = {k: v for k, v in checks.items() if v[0] != v[1]}
    if bad:
        raise SystemExit(f"detectron2's config differs from DensePoseConfig.full(): {bad}")
    return c


class Detectron2Reference:
    """detectron2's DefaultPredictor plus its intermediate steps, on a checkpoint written by save_checkpoint."""

    def __init__(self, cfg: DensePoseConfig, pkl: str, config_yaml: str | None = None):
        from detectron2.engine import DefaultPredictor

        self.predictor = DefaultPredictor(detectron2_cfg(cfg, pkl, config_yaml))
        self.model = self.predictor.model

    def check_loaded(self, ours) -> None:
        """Every detectron2 parameter equals ours: the pkl round-trips through detectron2's checkpointer."""
        d2 = self.model.state_dict()
        mine = ours.state_dict()
        missing = [k for k in mine if k not in d2]
        extra = [k for k in d2 if k not in mine and k not in ("pixel_mean", "pixel_std")
                 and "anchor_generator" not in k]
        if missing or extra:
            raise SystemExit(f"parameter names differ: ours-only {missing[:5]}, detectron2-only {extra[:5]}")
        diff = max(float((d2[k].float() - mine[k].float()).abs().max()) for k in mine)
        if diff != 0.0:
            raise SystemExit(f"detectron2 loaded different weights (max diff {diff})")

    @torch.no_grad()
    def run(self, image_rgb: np.ndarray) -> dict:
        """Everything for one photo, detectron2 only: proposals, detections, chart outputs, extracted results."""
        from densepose.vis.extractor import DensePoseResultExtractor
        from detectron2.structures import Boxes, Instances

        bgr = np.ascontiguousarray(image_rgb[:, :, ::-1])
        final = self.predictor(bgr)["instances"]
        m = self.model
        h, w = bgr.shape[:2]
        img = self.predictor.aug.get_transform(bgr).apply_image(bgr)
        inputs = [{"image": torch.as_tensor(img.astype("float32").transpose(2, 0, 1)), "height": h, "width": w}]
        images = m.preprocess_image(inputs)
        feats = m.backbone(images.tensor)
        props, _ = m.proposal_generator(images, feats, None)
        raw, _ = m.roi_heads(images, feats, props, None)
        raw = raw[0]
        # The DensePose branch again, on detectron2's own boxes, apart from its box head.
        given = Instances(raw.image_size, pred_boxes=Boxes(raw.pred_boxes.tensor.clone()),
                          pred_classes=raw.pred_classes)
        given = m.roi_heads.forward_with_given_boxes(feats, [given])[0]
        out = {
            "resized_hw": np.array(images.image_sizes[0]),
            "proposals": props[0].proposal_boxes.tensor.numpy(),
            "objectness": props[0].objectness_logits.numpy(),
            "raw_boxes": raw.pred_boxes.tensor.numpy(),
            "raw_scores": raw.scores.numpy(),
            "boxes": final.pred_boxes.tensor.numpy(),
            "scores": final.scores.numpy(),
        }
        # Which raw detections survived detector_postprocess's empty-box filter, in order.
        keep = []
        j = 0
        for i, s in enumerate(out["raw_scores"]):
            if j < len(out["scores"]) and s == out["scores"][j]:
                keep.append(i)
                j += 1
        out["kept"] = np.array(keep, dtype=np.int64)
        dp = final.pred_densepose
        dpg = given.pred_densepose
        out["given_max_diff"] = float(max((dpg.u[keep] - dp.u).abs().max(), (dpg.fine_segm[keep] - dp.fine_segm)
                                          .abs().max())) if len(keep) else 0.0
        # DensePose's extractor: labels and U/V in each box (ToChartResultConverter).
        results, boxes_xywh = DensePoseResultExtractor()(final)
        out["charts"] = dp
        out["chart_results"] = results
        out["boxes_xywh"] = boxes_xywh.numpy() if boxes_xywh is not None else None
        return out


def paste_labels(labels: np.ndarray, xywh, hw) -> np.ndarray:
    out = np.zeros(hw, dtype=np.uint8)
    x, y = int(xywh[0]), int(xywh[1])
    h, w = labels.shape
    out[y:y + h, x:x + w] = labels[: hw[0] - y, : hw[1] - x]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/densepose"))
    ap.add_argument("--seed", type=int, default=4, help="weight seed (4: every fixture photo gets 5-21 persons)")
    ap.add_argument("--config-yaml", default=None, help="DensePose's densepose_rcnn_R_50_FPN_s1x.yaml")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)

    cfg = DensePoseConfig.tiny()
    images = fixture_images()
    model = tuned_model(cfg, images, seed=args.seed)
    pkl = out / "model_tiny.pkl"
    save_checkpoint(model, pkl, author="vton-masks tools/make_densepose_fixture.py (random tuned weights)")
    ref = Detectron2Reference(cfg, str(pkl), args.config_yaml)
    ref.check_loaded(model)

    arrays = {}
    summary = []
    for i, img in enumerate(images):
        r = ref.run(img)
        n = len(r["scores"])
        if n < 2 or r["scores"][0] < MAIN_SCORE:
            raise SystemExit(f"image {i}: detectron2 found {n} persons, best score "
                             f"{r['scores'][0] if n else None}; retune")
        if len(np.unique(r["scores"])) != n:
            raise SystemExit(f"image {i}: tied detection scores; retune")
        dp = r["charts"]
        labels_lowres = (dp.fine_segm.argmax(1) * (dp.coarse_segm.argmax(1) > 0)).numpy().astype(np.uint8)
        main_res = r["chart_results"][0]  # scores are sorted: instance 0 is the main person
        part_map = paste_labels(main_res.labels.numpy().astype(np.uint8), r["boxes_xywh"][0], img.shape[:2])
        p = f"img{i}_"
        arrays[p + "image"] = img
        arrays[p + "resized_hw"] = r["resized_hw"]
        arrays[p + "proposals"] = r["proposals"].astype(np.float32)
        arrays[p + "objectness"] = r["objectness"].astype(np.float32)
        arrays[p + "raw_boxes"] = r["raw_boxes"].astype(np.float32)
        arrays[p + "raw_scores"] = r["raw_scores"].astype(np.float32)
        arrays[p + "kept"] = r["kept"]
        arrays[p + "boxes"] = r["boxes"].astype(np.float32)
        arrays[p + "scores"] = r["scores"].astype(np.float32)
        arrays[p + "labels_lowres"] = labels_lowres
        # Main person's raw chart outputs; float16 keeps U/V (|x| < 2) within 5e-4.
        arrays[p + "coarse0"] = dp.coarse_segm[0].numpy().astype(np.float16)
        arrays[p + "fine0"] = dp.fine_segm[0].numpy().astype(np.float16)
        arrays[p + "u0"] = dp.u[0].numpy().astype(np.float16)
        arrays[p + "v0"] = dp.v[0].numpy().astype(np.float16)
        arrays[p + "uv0_box"] = main_res.uv.numpy().astype(np.float16)
        arrays[p + "part_map"] = part_map
        # Every person's labels in its box (the extractor's output), flattened, with each box's (h, w).
        arrays[p + "box_labels"] = np.concatenate([c.labels.numpy().astype(np.uint8).ravel()
                                                   for c in r["chart_results"]])
        arrays[p + "box_label_hw"] = np.array([tuple(c.labels.shape) for c in r["chart_results"]], dtype=np.int64)
        summary.append({"size": list(img.shape[:2]), "resized": r["resized_hw"].tolist(),
                        "proposals": len(r["proposals"]), "persons": n,
                        "scores": [round(float(s), 4) for s in r["scores"][:6]],
                        "main_box": [round(float(v), 2) for v in r["boxes"][0]],
                        "part_pixels": int((part_map > 0).sum()),
                        "given_boxes_chart_diff": r["given_max_diff"],
                        "uv_range": [float(dp.u[0].min()), float(dp.u[0].max())]})
    np.savez_compressed(out / "detectron2_outputs.npz", **arrays)
    import detectron2

    meta = {"detectron2_version": detectron2.__version__, "torch": torch.__version__, "images": summary,
            "note": "random tuned weights, not the released checkpoint"}
    (out / "detectron2_outputs.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
