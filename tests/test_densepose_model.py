"""The PyTorch DensePose R-CNN against detectron2's own outputs, step by step, without detectron2 installed.

tests/fixtures/densepose/ holds a narrow model of the released architecture (seeded random weights tuned so
that detectron2 finds several persons) in detectron2's checkpoint format, and what detectron2 computed with
it on four photos of different shapes (tools/make_densepose_fixture.py writes both). Each stage here is fed
detectron2's own inputs for that stage (its proposals for the box head, its boxes for the DensePose branch),
so an early difference cannot hide later ones. Also: damaged checkpoints fail with one-line
ModelLoadErrors, and a batch of differently sized photos gives what each photo gives alone.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.densepose import (
    DensePoseConfig,
    infer_config,
    load_checkpoint,
    main_person,
    part_index_map,
    read_checkpoint,
)
from pipeline.densepose.charts import chart_result
from pipeline.schema import ModelLoadError

FIXTURES = Path(__file__).parent / "fixtures" / "densepose"
PKL = FIXTURES / "model_tiny.pkl"
N_IMAGES = 4


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_checkpoint(PKL)


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURES / "detectron2_outputs.npz") as z:
        return {k: z[k] for k in z.files}


def _r(ref, i, key):
    return ref[f"img{i}_{key}"]


@pytest.fixture(scope="module")
def steps(model, ref):
    """Per photo, run alone: the prepared batch and the FPN features."""
    out = []
    with torch.inference_mode():
        for i in range(N_IMAGES):
            batch = model.preprocess([_r(ref, i, "image")])
            out.append((batch, model.features(batch.tensor, batch.padded_sizes)))
    return out


@pytest.fixture(scope="module")
def predictions(model, ref):
    with torch.inference_mode():
        return [model.predict([_r(ref, i, "image")], densepose="all")[0] for i in range(N_IMAGES)]


def test_fixture_is_the_narrow_config_and_has_several_persons(model, ref):
    assert model.cfg == DensePoseConfig.from_json((FIXTURES / "model_tiny.json").read_text())
    for i in range(N_IMAGES):
        scores = _r(ref, i, "scores")
        assert len(scores) >= 2 and scores[0] >= 0.8 and len(np.unique(scores)) == len(scores)


def test_resize_matches_detectron2(steps, ref):
    for i, (batch, _) in enumerate(steps):
        assert tuple(batch.image_sizes[0]) == tuple(_r(ref, i, "resized_hw"))


def test_rpn_proposals_match_detectron2(model, steps, ref):
    with torch.inference_mode():
        for i, (batch, feats) in enumerate(steps):
            boxes, logits = model.proposals(feats, batch.image_sizes, batch.padded_sizes)[0]
            want = _r(ref, i, "proposals")
            assert boxes.shape == want.shape, f"image {i}: {len(boxes)} proposals, detectron2 {len(want)}"
            assert np.abs(boxes.numpy() - want).max() <= 1.0
            assert np.abs(logits.numpy() - _r(ref, i, "objectness")).max() <= 1e-3


def test_box_head_on_detectron2_proposals(model, steps, ref):
    with torch.inference_mode():
        for i, (batch, feats) in enumerate(steps):
            props = [torch.from_numpy(_r(ref, i, "proposals"))]
            det = model.detect(feats, props, batch.image_sizes, batch.padded_sizes)[0]
            want = _r(ref, i, "raw_boxes")
            assert det.boxes.shape == want.shape, f"image {i}: {len(det.boxes)} detections, detectron2 {len(want)}"
            assert np.abs(det.boxes.numpy() - want).max() <= 1.0
            assert np.abs(det.scores.numpy() - _r(ref, i, "raw_scores")).max() <= 1e-4


def test_densepose_head_on_detectron2_boxes(model, steps, ref):
    with torch.inference_mode():
        for i, (batch, feats) in enumerate(steps):
            boxes = torch.from_numpy(_r(ref, i, "raw_boxes")[_r(ref, i, "kept")])
            charts = model.densepose_outputs(feats, [boxes], batch.padded_sizes)
            labels = (charts.fine_segm.argmax(1) * (charts.coarse_segm.argmax(1) > 0)).numpy()
            agree = (labels == _r(ref, i, "labels_lowres")).mean()
            assert agree >= 0.995, f"image {i}: chart labels agree on {agree:.4%}"
            # The main person's raw outputs (stored as float16: 5e-4 rounding for |x| < 2).
            assert np.abs(charts.u[0].numpy() - _r(ref, i, "u0")).max() <= 1e-3
            assert np.abs(charts.v[0].numpy() - _r(ref, i, "v0")).max() <= 1e-3
            for key, got in (("coarse0", charts.coarse_segm[0]), ("fine0", charts.fine_segm[0])):
                want = _r(ref, i, key).astype(np.float32)
                assert np.abs(got.numpy() - want).max() <= 1e-3 * max(1.0, np.abs(want).max())


def test_end_to_end_matches_default_predictor(predictions, ref):
    for i, res in enumerate(predictions):
        img = _r(ref, i, "image")
        want_boxes = _r(ref, i, "boxes")
        assert res.boxes.shape == want_boxes.shape
        assert np.abs(res.boxes - want_boxes).max() <= 1.0
        assert np.abs(res.scores - _r(ref, i, "scores")).max() <= 1e-4
        assert main_person(res) == 0
        parts = part_index_map(res, *img.shape[:2])
        want = _r(ref, i, "part_map")
        assert parts.dtype == np.uint8 and parts.shape == img.shape[:2] and parts.max() <= 24
        assert (parts == want).mean() >= 0.995
        fg = (parts > 0) | (want > 0)
        assert fg.sum() > 50 and (parts[fg] == want[fg]).mean() >= 0.99
        # Every person's labels in its box, as DensePose's extractor gives them.
        hw = _r(ref, i, "box_label_hw")
        flat = np.concatenate([chart_result(res.charts[j:j + 1], res.boxes[j])[0].numpy().astype(np.uint8).ravel()
                               for j in range(len(hw))])
        want_flat = _r(ref, i, "box_labels")
        assert flat.shape == want_flat.shape and (flat == want_flat).mean() >= 0.995
        _, uv = chart_result(res.charts[0:1], res.boxes[0])
        assert np.abs(uv.numpy() - _r(ref, i, "uv0_box").astype(np.float32)).max() <= 1e-3


def test_main_only_runs_the_head_on_one_person(model, predictions, ref):
    with torch.inference_mode():
        for i in (0, 3):
            img = _r(ref, i, "image")
            res = model.predict([img], densepose="main")[0]
            assert res.chart_index.tolist() == [0] and len(res.charts) == 1
            assert np.array_equal(part_index_map(res, *img.shape[:2]), part_index_map(predictions[i], *img.shape[:2]))
            none = model.predict([img], densepose="none")[0]
            assert none.charts is None and len(none.boxes) == len(res.boxes)
            assert not part_index_map(none, *img.shape[:2]).any()
            # Nobody at or above the threshold: no part map.
            high = model.predict([img], densepose="main", score_threshold=1.01)[0]
            assert high.charts is None and not part_index_map(high, *img.shape[:2], score_threshold=1.01).any()


def test_batch_of_different_sizes_equals_one_at_a_time(model, predictions, ref):
    images = [_r(ref, i, "image") for i in range(N_IMAGES)]
    assert len({im.shape for im in images}) == N_IMAGES
    with torch.inference_mode():
        batch = model.predict(images, densepose="all")
    for i, (b, s) in enumerate(zip(batch, predictions)):
        assert b.boxes.shape == s.boxes.shape, f"image {i}"
        assert np.abs(b.boxes - s.boxes).max() <= 0.01
        assert np.abs(b.scores - s.scores).max() <= 1e-4
        h, w = images[i].shape[:2]
        assert (part_index_map(b, h, w) == part_index_map(s, h, w)).mean() >= 0.999
        assert (b.charts.u - s.charts.u).abs().max() <= 1e-4


def test_bf16_predict_runs_and_finds_the_same_main_person(model, predictions, ref):
    """precision='bf16' (autocast) goes through every step, the box pooler's matrix products included."""
    img = _r(ref, 0, "image")
    res = model.predict([img], densepose="main", precision="bf16")[0]
    assert res.charts is not None and res.charts.u.dtype == torch.float32
    assert len(res.boxes) and np.abs(res.boxes[0] - predictions[0].boxes[0]).max() <= 4.0


def test_infer_config_from_weights():
    cfg = DensePoseConfig.from_json((FIXTURES / "model_tiny.json").read_text())
    inferred = infer_config(read_checkpoint(PKL))
    arch = ("stem_channels", "res2_channels", "bottleneck_channels", "stage_blocks", "fpn_channels", "box_fc_dim",
            "box_num_fc", "box_pooler_resolution", "decoder_conv_dims", "decoder_num_classes", "dp_head_dim",
            "dp_num_convs", "num_patches", "num_coarse_segm_channels")
    assert {k: getattr(inferred, k) for k in arch} == {k: getattr(cfg, k) for k in arch}
    assert inferred.min_size_test == 800  # test-time settings default to the released model's


def _assert_one_line_load_error(path, match):
    with pytest.raises(ModelLoadError, match=match) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 300, msg


def test_damaged_checkpoints_raise_one_line_model_load_error(tmp_path):
    data = PKL.read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    _assert_one_line_load_error(tmp_path / "cut.pkl", "truncated or corrupt")
    (tmp_path / "junk.pkl").write_bytes(b"\x00not a pickle" * 10)
    _assert_one_line_load_error(tmp_path / "junk.pkl", "truncated or corrupt")
    _assert_one_line_load_error(tmp_path / "absent.pkl", "does not exist")

    weights = read_checkpoint(PKL)
    partial = {k: v for k, v in weights.items() if "densepose_head" not in k}
    (tmp_path / "partial.pkl").write_bytes(pickle.dumps({"model": partial, "__author__": "test"}))
    (tmp_path / "partial.json").write_text((FIXTURES / "model_tiny.json").read_text())
    _assert_one_line_load_error(tmp_path / "partial.pkl", "incomplete")

    bad = dict(weights)
    bad["roi_heads.box_head.fc1.weight"] = np.zeros((3, 3), np.float32)
    (tmp_path / "shape.pkl").write_bytes(pickle.dumps({"model": bad, "__author__": "test"}))
    (tmp_path / "shape.json").write_text((FIXTURES / "model_tiny.json").read_text())
    _assert_one_line_load_error(tmp_path / "shape.pkl", "wrong shape")

    (tmp_path / "nomodel.pkl").write_bytes(pickle.dumps({"weights": 1}))
    _assert_one_line_load_error(tmp_path / "nomodel.pkl", "no 'model'")


class _Hostile:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_pickle_cannot_run_code(tmp_path, capsys):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"model": {"x": _Hostile()}}))
    _assert_one_line_load_error(tmp_path / "evil.pkl", "builtins.print")
    assert "pwned" not in capsys.readouterr().out


def test_decoder_window_gives_the_full_maps_values(model, steps, ref):
    with torch.inference_mode():
        for i in (1, 3):
            batch, feats = steps[i]
            boxes = torch.from_numpy(_r(ref, i, "raw_boxes")[_r(ref, i, "kept")][-3:])
            window = model._decoder_window(boxes, batch.padded_sizes[0])
            full = (0, 0, batch.padded_sizes[0][1], batch.padded_sizes[0][0])
            a = model.densepose_outputs(feats, [boxes], batch.padded_sizes, crop=True)
            b = model.densepose_outputs(feats, [boxes], batch.padded_sizes, crop=False)
            assert (a.u - b.u).abs().max() <= 1e-5 and (a.fine_segm - b.fine_segm).abs().max() <= 1e-4
            if i == 3:
                assert window != full  # small boxes: the window is smaller than the photo


def test_memory_seed_scales_with_the_network_input():
    from pipeline.densepose import memory_seed

    fixed, per = memory_seed(1024, 768)
    assert fixed > 0 and per > 0
    assert memory_seed(2048, 1536) == (fixed, per)  # resized to the same 1067x800 input
    assert memory_seed(400, 2000)[1] < per  # capped at 1333 wide: 267x1333, fewer pixels


@pytest.mark.parametrize("sampling", [0, 2])
def test_separable_roi_align_matches_torchvision(sampling):
    """The box pooler's CPU ROIAlign (two matrix products per box) gives torchvision's values, edge cases included."""
    from torchvision.ops import roi_align

    from pipeline.densepose.model import roi_align_separable

    gen = torch.Generator().manual_seed(3)
    x = torch.randn((1, 16, 37, 29), generator=gen).contiguous(memory_format=torch.channels_last)
    xy = torch.rand((200, 2), generator=gen) * torch.tensor([29 * 8.0, 37 * 8.0])
    wh = torch.rand((200, 2), generator=gen) * 150 + 0.1
    boxes = torch.cat([xy, xy + wh], dim=1)
    edge = torch.tensor([[-20.0, -30.0, 10.0, 5.0], [-50.0, -50.0, -20.0, -20.0], [0.0, 0.0, 232.0, 296.0],
                         [3.3, 4.7, 3.4, 4.8], [220.0, 280.0, 231.9, 295.9], [300.0, 10.0, 400.0, 50.0]])
    rois = torch.cat([torch.zeros((206, 1)), torch.cat([boxes, edge])], dim=1)
    want = roi_align(x.contiguous(), rois, (7, 7), 1 / 8, sampling, False)
    got = roi_align_separable(x, rois, (7, 7), 1 / 8, sampling)
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1e-5
    assert roi_align_separable(x, rois[:0], (7, 7), 1 / 8, sampling).shape == (0, 16, 7, 7)


def test_folded_frozen_bn_follows_in_place_changes():
    """ConvNorm folds its FrozenBN at inference; the folded pair is rebuilt when a statistic changes in place,
    and a hook on the norm (the fixture tool tunes statistics from one) gets the unfolded path that calls it."""
    from pipeline.densepose.model import ConvNorm, FrozenBatchNorm2d

    gen = torch.Generator().manual_seed(5)
    conv = ConvNorm(8, 6, 3, padding=1, bias=False, norm=FrozenBatchNorm2d(6)).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        for t in (conv.norm.weight, conv.norm.bias, conv.norm.running_mean):
            t.copy_(torch.randn(t.shape, generator=gen))
        conv.norm.running_var.copy_(torch.rand(6, generator=gen) + 0.5)
    x = torch.randn((2, 8, 9, 7), generator=gen)

    def close_to_unfolded(y):
        want = conv.norm(torch.nn.functional.conv2d(x, conv.weight, None, 1, 1))
        return (y - want).abs().max() <= 1e-6 * want.abs().max()

    with torch.inference_mode():
        assert close_to_unfolded(conv(x))
        conv.norm.running_mean.add_(1.0)
        assert close_to_unfolded(conv(x))
    seen = []
    handle = conv.norm.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].shape))
    with torch.no_grad():
        conv(x)
    handle.remove()
    assert seen == [(2, 6, 9, 7)]
