"""The single-image API of the per-image tool this project replaces, on the same stages, without Ray."""
from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np
from PIL import Image

from .compose import JPEG_QUALITY
from .labels import PASSTHROUGH_CATEGORY, normalize_category
from .schema import ERROR, EXIF_SOFTWARE, PENDING, TOOL_OUTPUT_SOFTWARE


@lru_cache(maxsize=4)
def _parse_stage(source: str, device: str, precision: str):
    from .parser import ParseStage

    return ParseStage(source, device=device, precision=precision)


@lru_cache(maxsize=4)
def _pose_stage(source: str, device: str, precision: str):
    from .pose import PoseStage

    return PoseStage(source, device=device, precision=precision)


def _device(device: str, device_index: int) -> str:
    from .resources import resolve_device

    resolved = resolve_device(device)
    return f"cuda:{device_index}" if resolved == "cuda" else resolved


def run_stages(batch: dict, *, parser: str, pose: str | None, device: str, precision: str,
               width: int, height: int, style: str, fill: str, ootd_variant: str = "hd") -> dict:
    """decode -> parse -> pose -> masks on one in-memory batch: the pipeline without Ray."""
    from .compose import MaskStage
    from .decode import decode_batch

    batch = decode_batch(batch, width=width, height=height)
    batch = _parse_stage(parser, device, precision)(batch)
    if pose is not None:
        batch = _pose_stage(pose, device, precision)(batch)
    return MaskStage(style=style, fill=fill, ootd_variant=ootd_variant)(batch)


def masked_image(mask_type, imagepath, output_path=None, width=576, height=768, device_index=0,
                 preserve_resolution=True, *, parser=None, pose=None, style="rect", fill="green",
                 device="auto"):
    """Mask one photo and write the masked image; returns the path written.

    `other` returns `imagepath` unchanged, like the original tool. `parser`/`pose` take a hub id
    or a local folder (None: the defaults; pose "none" switches pose off). Models are loaded
    once and reused by later calls.
    """
    from .registry import DEFAULT_PARSER, DEFAULT_POSE
    from .resources import resolve_precision

    category = normalize_category(mask_type)
    imagepath = os.fspath(imagepath)
    if not os.path.isfile(imagepath):
        raise FileNotFoundError(f"no image at {imagepath}")
    if category == PASSTHROUGH_CATEGORY:
        return imagepath
    pose = DEFAULT_POSE if pose is None else str(pose)
    resolved = _device(device, device_index)
    batch = {"id": np.array(["image"], dtype=object), "source": np.array([imagepath], dtype=object),
             "category": np.array([category], dtype=object), "status": np.array([PENDING], dtype=object),
             "error": np.array([""], dtype=object)}
    result = run_stages(batch, parser=str(parser or DEFAULT_PARSER), pose=None if pose.lower() == "none" else pose,
                        device=resolved, precision=resolve_precision(resolved), width=width, height=height,
                        style=style, fill=fill)
    if result["status"][0] == ERROR:
        raise ValueError(f"{imagepath}: {result['error'][0]}")
    if not result["masked_bytes"][0]:  # decode recognised a file this function wrote (its EXIF tag)
        raise ValueError(f"{imagepath} is a masked image this tool wrote; pass the original photo")
    if output_path is None:
        stem, extension = os.path.splitext(imagepath)
        output_path = f"{stem}_masked{extension}"
    masked = Image.open(io.BytesIO(result["masked_bytes"][0]))
    if not preserve_resolution:
        masked = masked.resize((width, height), Image.Resampling.BILINEAR)
    exif = Image.Exif()
    exif[EXIF_SOFTWARE] = TOOL_OUTPUT_SOFTWARE  # a later folder run over this folder knows the file (README)
    masked = masked.convert("RGB")
    quality = {"quality": JPEG_QUALITY} if os.fspath(output_path).lower().endswith((".jpg", ".jpeg")) else {}
    try:
        masked.save(output_path, exif=exif.tobytes(), **quality)
    except (TypeError, ValueError, OSError):  # a format without EXIF (BMP, GIF): unmarked
        masked.save(output_path)
    return output_path
