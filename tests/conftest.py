"""Shared fixtures: small models built from configs through the real savers, cached outside the repo.

The models are built once per machine in a cache folder (VTON_TEST_CACHE, default
~/.cache/vton-masks-tests) and loaded by the tests through the same loaders a real run uses.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.labels import CANONICAL

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("VTON_TEST_CACHE", Path.home() / ".cache" / "vton-masks-tests"))


def _atr18_names() -> dict[int, str]:
    # The spelling of published ATR checkpoints (e.g. mattmdjaga/segformer_b2_clothes).
    spelled = {"upper_clothes": "Upper-clothes", "left_shoe": "Left-shoe", "right_shoe": "Right-shoe",
               "left_leg": "Left-leg", "right_leg": "Right-leg", "left_arm": "Left-arm",
               "right_arm": "Right-arm"}
    return {i: spelled.get(name, name.capitalize()) for i, name in enumerate(CANONICAL)}


def build_tiny_parser(folder: Path, id2label: dict[int, str] | None = None, size=(96, 128)) -> Path:
    """A random-weight SegFormer with ATR-18 names, saved with save_pretrained."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    if (folder / "config.json").exists():
        return folder
    id2label = id2label or _atr18_names()
    torch.manual_seed(0)
    config = SegformerConfig(
        num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[4, 2], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2],
        decoder_hidden_size=16, num_labels=len(id2label),
        id2label={int(k): v for k, v in id2label.items()},
        label2id={v: int(k) for k, v in id2label.items()},
    )
    model = SegformerForSemanticSegmentation(config)
    processor = SegformerImageProcessor(size={"height": size[1], "width": size[0]})
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def build_tiny_pose(folder: Path) -> Path:
    """The OpenPose body network with random weights, saved as body_pose_model.pth (~200 MB)."""
    import torch
    from controlnet_aux.open_pose.model import bodypose_model

    target = folder / "body_pose_model.pth"
    if target.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tmp = folder / "body_pose_model.pth.tmp"
    # The released file's key format (conv1_1.weight, without the block prefix), so controlnet_aux's
    # own Body(path) loads it as it loads the real weights.
    state = {key.split(".", 1)[1]: value for key, value in bodypose_model().state_dict().items()}
    torch.save(state, tmp)
    tmp.rename(target)
    return folder


@pytest.fixture(scope="session")
def tiny_parser_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return build_tiny_parser(CACHE / "tiny-segformer-atr18")


@pytest.fixture(scope="session")
def tiny_pose_dir() -> Path:
    return build_tiny_pose(CACHE / "tiny-openpose-body-v2")


def spy_on_jpeg_draft(monkeypatch) -> list:
    """Records the size Pillow's JPEG draft (DCT scaling) decoded to, call by call."""
    from PIL import JpegImagePlugin

    drafted = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(image, mode, size):
        result = real_draft(image, mode, size)
        drafted.append(image.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return drafted


def run_cli(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS` in a child process from the repository root, output captured; no
    progress bars (they would fill the captured stderr)."""
    env = dict(os.environ, RAY_DATA_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
