"""Pose stage: OpenPose body keypoints (COCO-18) for batches of same-size images.

The network and weights are controlnet_aux's OpenPose body model (``body_pose_model.pth``); the
preprocessing and post-processing reproduce controlnet_aux's ``OpenposeDetector.detect_poses``
(which calls ``Body.__call__``), batched:

* preprocess (CPU, per image, cheap): RGB -> BGR (controlnet_aux flips the RGB input it is given
  before its ``Body``), resize to 184 px high (``0.5 * 368 / H``; ``cv2.INTER_AREA`` when
  shrinking, Lanczos-4 when enlarging, sizes truncated like ``util.smart_resize_k``), pad right
  and bottom to a multiple of 8 with 128, scale to ``x / 256 - 0.5``;
* forward (device): one batched call of the body network (fp32, or bf16/fp16 on a GPU);
* postprocess: see :mod:`pipeline.pose_post` (smoothing and peak finding batched on the device,
  part association per image on the CPU).

Keypoints come back in the pixels of the images given to :meth:`PoseEstimator.estimate` (the
detect resolution; the pipeline's working size), as float32 (18, 3) x, y, score with NaN for a
missing part. The score is the peak's heatmap value, as in controlnet_aux's candidate list.

Main person: the person whose found keypoints span the largest bounding box (area, in pixels),
ties broken by more keypoints, then by the higher total score. A person with a single keypoint
has a zero-area box, so any multi-keypoint person wins over it. ``PoseBatch.people`` lists each
image's persons with the main person first, the others in controlnet_aux's order.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from pipeline.modelstage import ModelStage
from pipeline.pose_files import (  # noqa: F401  (re-exported: the stage's public API)
    find_keypoints_file,
    keypoints_for_row,
    load_keypoints_file,
    to_openpose_json,
)
from pipeline.pose_post import NUM_PARTS, PAD_VALUE, DeviceMaps, geometry, postprocess
from pipeline.registry import DEFAULT_POSE
from pipeline.resources import torch_dtype
from pipeline.schema import PRECISIONS, ModelLoadError, first_line

DEFAULT_REPO = DEFAULT_POSE
BODY_FILE = "body_pose_model.pth"
# controlnet_aux's own special case (OpenposeDetector.from_pretrained).
REPO_FILES = {"lllyasviel/ControlNet": "annotator/ckpts/body_pose_model.pth"}



def _how_to_fix(source: str) -> str:
    return (f"Pass a local folder that contains {BODY_FILE} (or the .pth file itself), e.g. "
            f"a download of https://huggingface.co/{DEFAULT_REPO}/blob/main/{BODY_FILE}; "
            f"got {source!r}.")


def _bodypose_model_class():
    """controlnet_aux's ``bodypose_model`` class, without importing controlnet_aux's package.

    ``import controlnet_aux.open_pose.model`` first runs ``controlnet_aux/__init__.py``, which
    imports every annotator (timm, mediapipe probes, ...): ~2.5 s more than torch alone and a page
    of warnings, in every worker. ``open_pose/model.py`` itself only needs torch, so it is loaded
    from its file under a private module name (the same source, the same class). When
    controlnet_aux's module is already imported, that one is used.
    """
    name = "controlnet_aux.open_pose.model"
    if name in sys.modules:
        return sys.modules[name].bodypose_model
    private = "_pipeline_controlnet_aux_bodypose"
    if private in sys.modules:
        return sys.modules[private].bodypose_model
    spec = importlib.util.find_spec("controlnet_aux")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("controlnet_aux is not installed; the OpenPose body network "
                             "definition comes from it: pip install controlnet_aux")
    path = os.path.join(list(spec.submodule_search_locations)[0], "open_pose", "model.py")
    file_spec = importlib.util.spec_from_file_location(private, path)
    if file_spec is None or not os.path.exists(path):
        raise ModelLoadError(f"controlnet_aux is installed but has no {path}; "
                             "an incompatible controlnet_aux version?")
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    sys.modules[private] = module
    return module.bodypose_model


def resolve_weights(source: str) -> str:
    """The local path of body_pose_model.pth for a folder, a .pth path or a hub repo id."""
    source = os.fspath(source)
    expanded = os.path.expanduser(source)
    if os.path.isdir(expanded):
        for rel in (BODY_FILE, REPO_FILES["lllyasviel/ControlNet"]):
            candidate = os.path.join(expanded, rel)
            if os.path.isfile(candidate):
                return candidate
        raise ModelLoadError(f"The pose model folder {source!r} has no {BODY_FILE} "
                             f"(nor annotator/ckpts/{BODY_FILE}). " + _how_to_fix(source))
    if os.path.isfile(expanded):
        return expanded
    looks_local = (expanded.startswith((os.sep, ".", "~")) or expanded.endswith(".pth")
                   or expanded.count("/") != 1)
    if looks_local:
        raise ModelLoadError(f"The pose model path {source!r} does not exist. " + _how_to_fix(source))
    filename = REPO_FILES.get(source, BODY_FILE)
    try:
        from huggingface_hub import hf_hub_download
        return hf_hub_download(source, filename)
    except Exception as exc:  # network, auth, missing file: all end the same way
        raise ModelLoadError(
            f"Could not download {filename} from the Hugging Face hub repo {source!r} "
            f"({type(exc).__name__}: {first_line(exc)}). " + _how_to_fix(source)) from exc


def load_body_net(source: str, device="cpu"):
    """controlnet_aux's OpenPose body network with weights from ``source``, in eval mode.

    source: a local folder holding body_pose_model.pth (or ControlNet's
    annotator/ckpts/body_pose_model.pth), the path of the .pth file, or a hub repo id
    (``lllyasviel/Annotators``: body_pose_model.pth; ``lllyasviel/ControlNet``:
    annotator/ckpts/body_pose_model.pth), fetched with huggingface_hub.hf_hub_download.
    Checkpoints keyed like the original release (``conv1_1.weight``) and full state dicts
    (``model0.conv1_1.weight``) are both accepted. Raises ModelLoadError.
    """
    import torch

    path = resolve_weights(source)
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"Could not read the pose weights {path!r} "
                             f"({type(exc).__name__}: {exc}). " + _how_to_fix(str(source))) from exc
    if isinstance(weights, dict) and "state_dict" in weights and isinstance(weights["state_dict"], dict):
        weights = weights["state_dict"]
    net = _bodypose_model_class()()
    wanted = net.state_dict()
    state = {}
    for key in wanted:
        short = key.split(".", 1)[1]           # controlnet_aux's util.transfer drops the block name
        if key in weights:
            state[key] = weights[key]
        elif short in weights:
            state[key] = weights[short]
    missing = [k for k in wanted if k not in state]
    if missing:
        raise ModelLoadError(f"{path!r} is not an OpenPose body checkpoint: {len(missing)} of "
                             f"{len(wanted)} tensors missing (e.g. {missing[0]}). " + _how_to_fix(str(source)))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path!r} does not fit the OpenPose body network: {first_line(exc)}") from exc
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(device)


@dataclass
class PoseBatch:
    """Pose results for a batch of images (pixels of the images given to ``estimate``)."""

    keypoints: np.ndarray        # float32 (N, 18, 3): the main person; all NaN when none found
    persons: np.ndarray          # int16 (N,): persons found
    people: list                 # per image float32 (P, 18, 3), main person first


def main_person_order(people: np.ndarray) -> np.ndarray:
    """Indices of ``people`` (P, 18, 3) sorted main person first (see the module docstring)."""
    people = np.asarray(people, np.float64).reshape(-1, NUM_PARTS, 3)
    if len(people) == 0:
        return np.zeros(0, np.int64)
    found = np.isfinite(people[:, :, 0]) & np.isfinite(people[:, :, 1])
    count = found.sum(1)
    x = np.where(found, people[:, :, 0], 0.0)
    y = np.where(found, people[:, :, 1], 0.0)

    def span(v):
        return np.where(found, v, -np.inf).max(1) - np.where(found, v, np.inf).min(1)

    with np.errstate(invalid="ignore", over="ignore"):
        area = np.where(count > 0, span(x) * span(y), -1.0)
    score = np.where(found, np.nan_to_num(people[:, :, 2]), 0.0).sum(1)
    # lexsort: the last key is the primary one; stable, so ties keep controlnet_aux's order.
    return np.lexsort((-score, -count, -area))


class PoseEstimator:
    """OpenPose body keypoints for batches of same-size RGB images.

    source: what :func:`load_body_net` takes, or an already built ``torch.nn.Module`` with the
    body network's interface (``net(x) -> (pafs, heatmaps)``). precision: "fp32", or "bf16" /
    "fp16" for the network on a GPU (post-processing always runs in fp32). batch_size: images per
    network call; post_chunk: images per post-processing step (bounds device memory: each image
    takes 18 x H x W float32 there).
    """

    def __init__(self, source=DEFAULT_REPO, device="cpu", precision="fp32", batch_size=16,
                 post_chunk=8):
        import torch

        if precision not in PRECISIONS or precision == "auto":
            raise ValueError(f"precision must be one of fp32, bf16, fp16, got {precision!r}")
        self.device = torch.device(device)
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("fp16 needs a GPU; on the CPU use fp32 (or bf16)")
        self.dtype = torch_dtype(precision)
        self.precision = precision
        if isinstance(source, torch.nn.Module):
            net = source.eval().to(self.device)
        else:
            net = load_body_net(source, self.device)
        # Channels-last lets oneDNN (CPU) and cuDNN pick their fast convolution kernels: on the
        # CPU the body network runs ~15% faster (bench/RESULTS.md, Throughput).
        net = net.to(memory_format=torch.channels_last)
        self.net = net.to(self.dtype)
        self.batch_size = int(batch_size)
        self.post_chunk = int(post_chunk)
        self._maps = DeviceMaps()

    # -- the three steps -------------------------------------------------------------------

    @staticmethod
    def preprocess(images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, 3, h_pad, w_pad) float32 network input (BGR, padded)."""
        import cv2

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 (N, H, W, 3) RGB images, got {images.dtype} {images.shape}")
        n, h, w, _ = images.shape
        g = geometry(h, w)
        out = np.full((n, 3, g.pad_height, g.pad_width), PAD_VALUE / 256.0 - 0.5, np.float32)
        for i in range(n):
            small = cv2.resize(images[i], (g.net_width, g.net_height), interpolation=g.interpolation)
            # BGR planes, like controlnet_aux (detect_poses flips RGB before its Body).
            out[i, :, : g.net_height, : g.net_width] = small[:, :, ::-1].transpose(2, 0, 1) / 256.0 - 0.5
        return out

    def _forward(self, batch: np.ndarray):
        import torch

        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            pafs, heat = self.net(x.to(self.dtype))
        return pafs.float(), heat.float()

    # -- public ----------------------------------------------------------------------------

    def estimate(self, images: np.ndarray) -> PoseBatch:
        """Keypoints for (N, H, W, 3) uint8 RGB images of one size, in their pixels."""
        import torch

        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if len(images) == 0:
            return batch_from_people([])
        batch = self.preprocess(images)
        h, w = images.shape[1:3]
        people = []
        for start in range(0, len(batch), self.batch_size):
            pafs, heat = self._forward(batch[start:start + self.batch_size])
            with torch.inference_mode():
                people.extend(postprocess(pafs, heat, h, w, self._maps, self.post_chunk))
        return batch_from_people(people)

    __call__ = estimate


def batch_from_people(per_image: list) -> PoseBatch:
    """PoseBatch from per-image (P, 18, 3) arrays in any order (main person put first)."""
    n = len(per_image)
    keypoints = np.full((n, NUM_PARTS, 3), np.nan, np.float32)
    persons = np.zeros(n, np.int16)
    people = []
    for i, found in enumerate(per_image):
        found = np.asarray(found, np.float32).reshape(-1, NUM_PARTS, 3)
        ordered = found[main_person_order(found)]
        people.append(ordered)
        persons[i] = len(ordered)
        if len(ordered):
            keypoints[i] = ordered[0]
    return PoseBatch(keypoints, persons, people)


def _concat_pose_batches(batches: list) -> PoseBatch:
    return PoseBatch(np.concatenate([b.keypoints for b in batches]), np.concatenate([b.persons for b in batches]),
                     [people for b in batches for people in b.people])


def locate_body_weights(source: str) -> str:
    """The local path of the pose weights (hub download included)."""
    return resolve_weights(source)


def check_source(source: str) -> None:
    """Start-up check: the weights can be found (ModelLoadError with the way out)."""
    resolve_weights(source)


# ---------------------------------------------------------------------------------------------
# Stages on batches (dicts of numpy arrays, like the other stages; no Ray here)
# ---------------------------------------------------------------------------------------------

MAX_PEOPLE = 8      # persons kept per row in the fixed-shape `people` column (main person first)


def _empty_pose_columns(count: int, max_people: int) -> dict:
    return {"people": np.full((count, max_people, NUM_PARTS, 3), np.nan, np.float32),
            "persons": np.zeros(count, np.int16)}


class PoseStage(ModelStage):
    """The pose stage: keypoints for the rows still pending, the other rows untouched.

    Adds ``people`` float32 (N, MAX_PEOPLE, 18, 3) in the working image's pixels (main person
    first, NaN padding; a row with no person is all NaN), ``persons`` int16 (N,) (persons found,
    which may exceed MAX_PEOPLE) and ``ms_pose``.
    """

    name = "pose"
    # The original tool's memory guide for the OpenPose body network (fixed, per image).
    memory_seed = (1.5 * 2**30, 0.5 * 2**30)

    def __init__(self, source: str = DEFAULT_REPO, *, max_people: int = MAX_PEOPLE, **options):
        self.max_people = int(max_people)
        super().__init__(source, **options)

    def load(self, source, *, device: str, precision: str, max_batch_size: int) -> PoseEstimator:
        # The estimator sees whole chunks; their size comes from the GPU's memory (see batching).
        return PoseEstimator(source, device=device, precision=precision, batch_size=max_batch_size)

    @property
    def estimator(self) -> PoseEstimator:
        return self.model

    def infer(self, images: np.ndarray) -> PoseBatch:
        return self.model.estimate(images)

    def concat(self, results: list) -> PoseBatch:
        return _concat_pose_batches(results)

    def empty_columns(self, images: np.ndarray) -> dict:
        return _empty_pose_columns(len(images), self.max_people)

    def store(self, columns: dict, rows: np.ndarray, result: PoseBatch) -> None:
        for row, found in zip(rows, result.people):
            kept = found[: self.max_people]
            columns["people"][row, : len(kept)] = kept
            columns["persons"][row] = len(found)


class PoseFromFilesStage:
    """``--pose-from DIR``: keypoints from the dataset's files instead of the model.

    Same columns as PoseStage (``people`` in the working image's pixels, converted from the
    photo's with the photo size in ``width``/``height``), plus ``pose_flag``: "" or
    "no_keypoints_file" for a row without a file (not an error). A file that cannot be read makes
    its row an error naming the file. Files are matched by row id or the photo's file stem (see
    :func:`pipeline.pose_files.find_keypoints_file`).
    """

    def __init__(self, folder: str, max_people: int = MAX_PEOPLE):
        if not os.path.isdir(os.fspath(folder)):
            raise FileNotFoundError(f"--pose-from folder {folder!r} does not exist")
        self.folder = os.fspath(folder)
        self.max_people = int(max_people)

    def __call__(self, batch: dict) -> dict:
        from pipeline.pose_files import NO_FILE_FLAG, KeypointsFileError
        from pipeline.schema import ERROR, PENDING

        count = len(batch["id"])
        status = np.array(batch["status"], dtype=object)
        error = np.array(batch["error"], dtype=object)
        columns = _empty_pose_columns(count, self.max_people)
        columns["ms_pose"] = np.zeros(count, np.float32)
        flags = np.full(count, "", dtype=object)
        work_h, work_w = batch["image"].shape[1:3]
        for row in np.flatnonzero(status == PENDING):
            started = time.perf_counter()
            stem = os.path.splitext(os.path.basename(str(batch["source"][row]).rstrip("/")))[0]
            path = find_keypoints_file(self.folder, str(batch["id"][row]), stem)
            if path is None:
                flags[row] = NO_FILE_FLAG
            else:
                photo = (int(batch["width"][row]), int(batch["height"][row]))
                try:
                    people = load_keypoints_file(path, photo, all_people=True)
                except KeypointsFileError as bad:
                    status[row], error[row] = ERROR, f"cannot read keypoints: {bad}"
                    continue
                people[..., 0] *= work_w / photo[0]
                people[..., 1] *= work_h / photo[1]
                kept = people[: self.max_people]
                columns["people"][row, : len(kept)] = kept
                columns["persons"][row] = len(people)
            columns["ms_pose"][row] = (time.perf_counter() - started) * 1000.0
        out = dict(batch)
        out.update(columns, status=status, error=error, pose_flag=flags, left_pose=np.full(count, time.time()))
        return out


def pose_from_files_batch(batch: dict, folder: str) -> dict:
    """``--pose-from`` as a plain function, for Ray tasks."""
    return PoseFromFilesStage(folder)(batch)
