"""Pose stage: loading, preprocessing, batched post-processing and parity with controlnet_aux.

Random weights find no people, so parity is checked on network outputs synthesized from known
skeletons, fed to both post-processors through a stub network.
"""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import pose_post as pp
from pipeline.pose import ModelLoadError, PoseBatch, PoseEstimator, load_body_net, main_person_order, resolve_weights
from pipeline.schema import VtonError
from pipeline.testing import pose_maps as pm


@pytest.fixture(scope="module")
def cnaux():
    """controlnet_aux's open_pose package (imports every annotator: slow and noisy, once)."""
    pytest.importorskip("controlnet_aux")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose import OpenposeDetector, body, util
    return OpenposeDetector, body, util


class StubNet(torch.nn.Module):
    """Stands in for the body network: returns fixed stride-8 maps (one per image)."""

    def __init__(self, pafs: np.ndarray, heatmaps: np.ndarray):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))   # controlnet_aux reads the device off it
        self.pafs = torch.from_numpy(np.asarray(pafs, np.float32).reshape(-1, *pafs.shape[-3:]))
        self.heat = torch.from_numpy(np.asarray(heatmaps, np.float32).reshape(-1, *heatmaps.shape[-3:]))

    def forward(self, x):
        assert x.shape[2] // 8 == self.heat.shape[2] and x.shape[3] // 8 == self.heat.shape[3], x.shape
        n = x.shape[0]
        return self.pafs[:n].to(x.dtype), self.heat[:n].to(x.dtype)


def reference_people(cnaux, pafs, heatmaps, height, width):
    """controlnet_aux's detect_poses on maps from a stub net, back in detect pixels (P, 18, 2)."""
    OpenposeDetector, body, _ = cnaux
    b = body.Body.__new__(body.Body)
    b.model = StubNet(pafs, heatmaps)
    poses = OpenposeDetector(b).detect_poses(np.zeros((height, width, 3), np.uint8))
    out = np.full((len(poses), 18, 2), np.nan)
    for p, pose in enumerate(poses):
        for k, kp in enumerate(pose.body.keypoints):
            if kp is not None:
                out[p, k] = kp.x * width, kp.y * height
    return out


def match_people(found: np.ndarray, truth: list) -> list:
    """For each true person, the found person nearest on average (None when nothing found)."""
    out = []
    for t in truth:
        if len(found) == 0:
            out.append(None)
            continue
        d = np.hypot(found[:, :, 0] - t[None, :, 0], found[:, :, 1] - t[None, :, 1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out.append(found[int(np.nanargmin(np.nanmean(d, 1)))])
    return out


# --------------------------------------------------------------------------------------------
# Geometry and linear maps
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(768, 576), (384, 288), (150, 120), (513, 301)])
def test_linear_maps_reproduce_cv2_resizes_and_scipy_gaussian(cnaux, size):
    from scipy.ndimage import gaussian_filter
    _, _, util = cnaux
    h, w = size
    g = pp.geometry(h, w)
    m = pp.linear_maps(h, w)
    p = np.random.default_rng(0).standard_normal((g.map_height, g.map_width, 4)).astype(np.float32)
    # controlnet_aux's Body.__call__, heatmap branch.
    up = util.smart_resize_k(p, fx=8, fy=8)[: g.net_height, : g.net_width]
    full = util.smart_resize(up, (h, w))
    ours = np.stack([m.ry @ p[:, :, c] @ m.rx.T for c in range(4)], axis=2)
    assert np.abs(full - ours).max() < 1e-4
    smooth = gaussian_filter(full[:, :, 3].astype(np.float64), sigma=3)
    assert np.abs(smooth - m.ay @ p[:, :, 3] @ m.ax.T).max() < 1e-4


@pytest.mark.parametrize("size", [(768, 576), (384, 288), (150, 120), (513, 301)])
def test_preprocess_matches_controlnet_aux_input(cnaux, size):
    _, _, util = cnaux
    h, w = size
    rgb = np.random.default_rng(1).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    ours = PoseEstimator.preprocess(rgb)
    for i in range(2):
        bgr = rgb[i][:, :, ::-1].copy()                  # detect_poses flips RGB -> BGR
        scale = 0.5 * 368 / h
        small = util.smart_resize_k(bgr, fx=scale, fy=scale)
        padded, _ = util.padRightDownCorner(small, 8, 128)
        ref = np.transpose(np.float32(padded[:, :, :, None]), (3, 2, 0, 1)) / 256 - 0.5
        assert ours[i:i + 1].shape == ref.shape
        np.testing.assert_array_equal(ours[i:i + 1], ref)


def test_working_size_sees_184_px_high_input():
    g = pp.geometry(768, 576)
    assert (g.net_height, g.net_width, g.pad_height, g.pad_width) == (184, 138, 184, 144)


def test_tiled_and_dense_peaks_agree():
    rng = np.random.default_rng(2)
    h, w = 384, 288
    scenes = [pm.synthetic_scene(n, h, w, rng) for n in (1, 2, 3)]
    heat = np.stack([pm.synthesize_maps(s, h, w)[1] for s in scenes])
    g = pp.geometry(h, w)
    # Plus maps with a constant offset and noise, where many blocks pass the bound.
    noisy = 0.08 + 0.05 * rng.standard_normal((2, 19, g.map_height, g.map_width))
    heat = torch.from_numpy(np.concatenate([heat, noisy.astype(np.float32)]))
    dense = pp.find_peaks(heat, h, w, method="dense")
    for tile in (16, 32):
        tiled = pp.find_peaks(heat, h, w, pp.DeviceMaps(tile), method="tiled")
        np.testing.assert_array_equal(dense[0], tiled[0])
        np.testing.assert_allclose(dense[1], tiled[1], atol=1e-6)
    assert len(dense[0]) > 3 * 17


# --------------------------------------------------------------------------------------------
# Parity with controlnet_aux on synthesized skeletons
# --------------------------------------------------------------------------------------------

SCENES = [(3, (768, 576), 13), (1, (384, 288), 21), (2, (384, 288), 22), (3, (384, 288), 23)]


@pytest.mark.parametrize("n_people,size,seed", SCENES)
def test_parity_with_controlnet_aux_and_recovery(cnaux, n_people, size, seed):
    h, w = size
    rng = np.random.default_rng(seed)
    truth = pm.synthetic_scene(n_people, h, w, rng, n_missing=2)
    truth[0][list(pm.MISSABLE[seed % len(pm.MISSABLE)])] = np.nan    # always some parts missing
    pafs, heat = pm.synthesize_maps(truth, h, w)

    ref = reference_people(cnaux, pafs, heat, h, w)
    ours = pp.postprocess(torch.from_numpy(pafs)[None], torch.from_numpy(heat)[None], h, w)[0]

    # Same people, same parts, within 2 px at the detect resolution (here: identical).
    assert len(ours) == len(ref) == n_people
    np.testing.assert_array_equal(np.isnan(ours[:, :, 0]), np.isnan(ref[:, :, 0]))
    both = np.isfinite(ref[:, :, 0])
    dist = np.hypot(*(ours[:, :, :2] - ref)[both].T)
    assert (dist <= 2).mean() >= 0.99 and dist.max() < 1e-3

    # Both recover the skeletons: the same parts, each within 6 px of the truth.
    for found, t in zip(match_people(ours, truth), truth):
        np.testing.assert_array_equal(np.isnan(found[:, 0]), np.isnan(t[:, 0]))
        err = np.hypot(*(found[:, :2] - t[:, :2]).T)
        assert np.nanmax(err) <= 6, err
    # Real peak scores: the synthesized peak height (0.9) seen through the resizes.
    assert np.nanmin(ours[:, :, 2]) > 0.75 and np.nanmax(ours[:, :, 2]) < 1.0


def test_estimator_batch_with_stub_network():
    h, w = 768, 576
    rng = np.random.default_rng(4)
    scenes = [pm.synthetic_scene(n, h, w, rng) for n in (1, 3, 2)] + [[]]
    maps = [pm.synthesize_maps(s, h, w) for s in scenes]
    net = StubNet(np.stack([m[0] for m in maps]), np.stack([m[1] for m in maps]))
    est = PoseEstimator(net, batch_size=8)
    images = np.zeros((4, h, w, 3), np.uint8)
    out = est.estimate(images)
    assert isinstance(out, PoseBatch)
    assert out.keypoints.shape == (4, 18, 3) and out.keypoints.dtype == np.float32
    assert out.persons.dtype == np.int16 and out.persons.tolist() == [1, 3, 2, 0]
    assert [p.shape for p in out.people] == [(1, 18, 3), (3, 18, 3), (2, 18, 3), (0, 18, 3)]
    assert np.isnan(out.keypoints[3]).all()
    empty = est.estimate(np.zeros((0, h, w, 3), np.uint8))
    assert empty.keypoints.shape == (0, 18, 3) and empty.persons.shape == (0,) and empty.people == []
    for i in range(3):
        np.testing.assert_array_equal(out.keypoints[i], out.people[i][0])
        # The main person is the one with the largest box among the true skeletons.
        boxes = [np.nanmax(t[:, 0]) - np.nanmin(t[:, 0]) for t in scenes[i]]
        heights = [np.nanmax(t[:, 1]) - np.nanmin(t[:, 1]) for t in scenes[i]]
        main = scenes[i][int(np.argmax(np.array(boxes) * np.array(heights)))]
        assert np.nanmax(np.hypot(*(out.keypoints[i, :, :2] - main[:, :2]).T)) <= 6


def test_main_person_rule():
    big = pm.skeleton(300, 50, 600, missing=(9, 10, 12, 13))    # cropped at the knees: 14 parts
    small = pm.skeleton(80, 500, 200)                              # all 18 parts, far smaller
    single = np.full((18, 3), np.nan, np.float32)
    single[0] = (10, 10, 0.9)
    order = main_person_order(np.stack([small, single, big]))
    assert order.tolist() == [2, 0, 1]
    assert main_person_order(np.zeros((0, 18, 3))).tolist() == []


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_net(tiny_pose_dir):
    return load_body_net(str(tiny_pose_dir))


def test_load_from_folder_and_file(tiny_pose_dir, tiny_net):
    assert not tiny_net.training
    assert sum(p.numel() for p in tiny_net.parameters()) > 5e7
    path = str(tiny_pose_dir / "body_pose_model.pth")
    assert resolve_weights(str(tiny_pose_dir)) == path
    assert resolve_weights(path) == path


def test_load_original_key_layout_like_controlnet_aux(tiny_pose_dir, tiny_net, tmp_path, cnaux):
    """The released checkpoint's keys lack the block name (the fixture saves that layout);
    controlnet_aux's Body reads it, our loader reads it and the full layout, all the same tensors."""
    _, body, _ = cnaux
    released = str(tiny_pose_dir / "body_pose_model.pth")
    full = tmp_path / "body_pose_model.pth"
    torch.save(tiny_net.state_dict(), full)
    reference = tiny_net.state_dict()
    for other in (load_body_net(released).state_dict(), load_body_net(str(full)).state_dict(),
                  body.Body(released).model.state_dict()):
        assert other.keys() == reference.keys()
        assert all(torch.equal(other[k], reference[k]) for k in reference)


def test_load_errors_name_the_source(tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="does not exist.*local folder"):
        load_body_net(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(ModelLoadError, match="has no body_pose_model.pth"):
        load_body_net(str(tmp_path))
    (tmp_path / "body_pose_model.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="Could not read"):
        load_body_net(str(tmp_path))
    assert issubclass(ModelLoadError, VtonError)  # the CLI prints it on one line

    import huggingface_hub
    asked = []

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(ModelLoadError, match="lllyasviel/Annotators.*local folder"):
        load_body_net("lllyasviel/Annotators")
    with pytest.raises(ModelLoadError, match="annotator/ckpts/body_pose_model.pth"):
        load_body_net("lllyasviel/ControlNet")
    assert asked == [("lllyasviel/Annotators", "body_pose_model.pth"),
                     ("lllyasviel/ControlNet", "annotator/ckpts/body_pose_model.pth")]


def test_precision_validation(tiny_pose_dir):
    with pytest.raises(ValueError, match="precision"):
        PoseEstimator(StubNet(np.zeros((38, 2, 2)), np.zeros((19, 2, 2))), precision="int8")
    with pytest.raises(ValueError, match="GPU"):
        PoseEstimator(StubNet(np.zeros((38, 2, 2)), np.zeros((19, 2, 2))), precision="fp16")


def test_real_network_batched(tiny_net):
    """Random weights through the real network, two images in one batch."""
    est = PoseEstimator(tiny_net, batch_size=2)
    rng = np.random.default_rng(0)
    out = est.estimate(rng.integers(0, 256, (2, 128, 96, 3), dtype=np.uint8))
    assert out.keypoints.shape == (2, 18, 3) and out.persons.shape == (2,)
    assert out.keypoints.dtype == np.float32 and out.persons.dtype == np.int16
    assert len(out.people) == 2


def test_stage_imports_neither_ray_nor_controlnet_aux_package():
    """Only controlnet_aux's network definition file is loaded, not its (slow) package."""
    code = (
        "import sys\n"
        "from pipeline.pose import _bodypose_model_class\n"
        "assert _bodypose_model_class().__name__ == 'bodypose_model'\n"
        "bad = [m for m in sys.modules if m == 'ray' or m.startswith('ray.') or m == 'controlnet_aux']\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=root)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("ok")


# --------------------------------------------------------------------------------------------
# Stage on a batch dict
# --------------------------------------------------------------------------------------------

def test_pose_stage_on_a_batch(monkeypatch):
    from pipeline.batching import AdaptiveBatches
    from pipeline.pose import MAX_PEOPLE, PoseStage, _concat_pose_batches
    from pipeline.schema import ERROR, PENDING, SKIPPED

    h, w = 384, 288
    rng = np.random.default_rng(7)
    scenes = [pm.synthetic_scene(n, h, w, rng) for n in (2, 1)]
    maps = [pm.synthesize_maps(s, h, w) for s in scenes]
    net = StubNet(np.stack([m[0] for m in maps]), np.stack([m[1] for m in maps]))
    stage = PoseStage.__new__(PoseStage)
    stage.model, stage.max_people = PoseEstimator(net), MAX_PEOPLE
    stage.run = AdaptiveBatches(stage.estimator.estimate, 16, _concat_pose_batches, name="pose")
    batch = {"id": np.array(["a", "b", "c", "d"], dtype=object),
             "status": np.array([PENDING, ERROR, SKIPPED, PENDING], dtype=object),
             "error": np.array([None, "cannot decode", None, None], dtype=object),
             "image": np.zeros((4, h, w, 3), np.uint8)}
    out = stage(batch)
    assert out["people"].shape == (4, MAX_PEOPLE, 18, 3) and out["people"].dtype == np.float32
    assert out["persons"].tolist() == [2, 0, 0, 1] and out["persons"].dtype == np.int16
    assert np.isnan(out["people"][[1, 2]]).all() and np.isnan(out["people"][0, 2:]).all()
    assert (out["ms_pose"][[0, 3]] > 0).all() and (out["ms_pose"][[1, 2]] == 0).all()
    assert list(out["status"]) == [PENDING, ERROR, SKIPPED, PENDING]

    # Out of memory on the batch: halves, and the actor keeps the lower size; no row lost.
    calls = []

    def short_of_memory(images):
        calls.append(len(images))
        if len(images) > 1:
            raise RuntimeError("CUDA out of memory")
        return PoseEstimator.estimate(stage.estimator, images)

    stage.run.fn = short_of_memory
    out = stage(batch)
    assert calls == [2, 1, 1] and stage.run.batch_size == 1
    assert list(out["status"]) == [PENDING, ERROR, SKIPPED, PENDING]

    # Another failure is isolated per image; an image that still fails is its row's error.
    stage.run = AdaptiveBatches(lambda images: (_ for _ in ()).throw(ValueError("bad batch")), 16,
                                _concat_pose_batches)
    seen = []

    def per_image(images):
        seen.append(len(images))
        if len(seen) == 1:
            raise ValueError("this image breaks the model")
        return PoseEstimator.estimate(stage.estimator, images)

    monkeypatch.setattr(stage.estimator, "estimate", per_image)
    out = stage(batch)
    assert seen == [1, 1]
    assert out["status"][0] == ERROR and "breaks the model" in out["error"][0]
    assert out["status"][3] == PENDING and out["persons"][3] == 2    # stub: first image's maps
