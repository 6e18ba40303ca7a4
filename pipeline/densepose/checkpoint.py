"""Loading detectron2's DensePose checkpoint (``model_final_162be9.pkl``) into `model.DensePoseRCNN`.

The released file is a pickle of ``{"model": {detectron2 parameter name: numpy array}, "__author__": ...}``
(sometimes with ``"matching_heuristics"``). The model here uses detectron2's names, so loading is a key for
key copy with shape checks. The pickle is read with an unpickler that only rebuilds dicts and numpy arrays,
so a hostile file cannot run code. Whatever is wrong with a file (missing, truncated, not a checkpoint,
weights missing or of the wrong shape) ends as one `ModelLoadError` with a one-line message.

The architecture comes from `cfg`, else from a ``<checkpoint>.json`` beside the file (``DensePoseConfig``
fields), else from the weights' shapes with the released model's test-time settings.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..schema import ModelLoadError
from .config import DensePoseConfig
from .model import DensePoseRCNN, build_model

# What a checkpoint pickle may name: containers and numpy's array reconstruction, nothing that runs code.
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol-2 pickles carry array bytes as latin-1 text
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
}
# Keys detectron2 itself skips when loading: buffers rebuilt from the config.
_IGNORED_PREFIXES = ("proposal_generator.anchor_generator.", "pixel_mean", "pixel_std")


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")
        if module.startswith("numpy.core"):
            # numpy 2 moved numpy.core to numpy._core; files written with numpy 1 still name the old path.
            try:
                return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core", 1)), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``model`` dict of a detectron2 pkl checkpoint, or ModelLoadError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"the DensePose checkpoint {str(path)!r} does not exist; pass the path of "
                             "detectron2's model_final_162be9.pkl")
    try:
        data = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelLoadError(f"the DensePose checkpoint {str(path)!r} is not a readable detectron2 pickle "
                             f"(truncated or corrupt: {reason}); download it again") from None
    weights = data.get("model") if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise ModelLoadError(f"the DensePose checkpoint {str(path)!r} has no 'model' weights dict; "
                             "expected detectron2's model_final_162be9.pkl")
    return weights


def _count(weights: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in weights if (m := rx.match(k))})


def infer_config(weights: dict[str, np.ndarray], base: DensePoseConfig | None = None) -> DensePoseConfig:
    """The architecture read off the weights' shapes; test-time settings from `base` (the released ones)."""
    base = base or DensePoseConfig.full()
    w = {k: np.shape(v) for k, v in weights.items()}
    try:
        fpn = w["backbone.fpn_lateral2.weight"][0]
        fc1 = w["roi_heads.box_head.fc1.weight"]
        fields = dict(
            stem_channels=w["backbone.bottom_up.stem.conv1.weight"][0],
            bottleneck_channels=w["backbone.bottom_up.res2.0.conv1.weight"][0],
            res2_channels=w["backbone.bottom_up.res2.0.conv3.weight"][0],
            stage_blocks=tuple(_count(weights, rf"backbone\.bottom_up\.res{s}\.(\d+)\.") for s in range(2, 6)),
            fpn_channels=fpn,
            box_fc_dim=fc1[0],
            box_num_fc=_count(weights, r"roi_heads\.box_head\.fc(\d+)\.weight"),
            box_pooler_resolution=int(round((fc1[1] / fpn) ** 0.5)),
            num_classes=w["roi_heads.box_predictor.cls_score.weight"][0] - 1,
            decoder_conv_dims=w["roi_heads.decoder.p2.0.weight"][0],
            decoder_num_classes=w["roi_heads.decoder.predictor.weight"][0],
            dp_head_dim=w["roi_heads.densepose_head.body_conv_fcn1.weight"][0],
            dp_num_convs=_count(weights, r"roi_heads\.densepose_head\.body_conv_fcn(\d+)\.weight"),
            dp_kernel=w["roi_heads.densepose_head.body_conv_fcn1.weight"][-1],
            dp_deconv_kernel=w["roi_heads.densepose_predictor.ann_index_lowres.weight"][-1],
            num_patches=w["roi_heads.densepose_predictor.index_uv_lowres.weight"][1] - 1,
            num_coarse_segm_channels=w["roi_heads.densepose_predictor.ann_index_lowres.weight"][1],
        )
    except (KeyError, IndexError) as e:
        raise ModelLoadError(f"the DensePose checkpoint lacks {e}, so it is not a DensePose R-CNN R50-FPN "
                             "checkpoint") from None
    cfg_dict = {**base.__dict__, **{k: (tuple(int(x) for x in v) if isinstance(v, tuple) else int(v))
                                    for k, v in fields.items()}}
    return DensePoseConfig(**cfg_dict)


def load_state(model: DensePoseRCNN, weights: dict[str, np.ndarray], source: str = "checkpoint") -> None:
    """Copy detectron2-named arrays into the model; ModelLoadError on missing weights or wrong shapes."""
    state = model.state_dict()
    missing, wrong = [], []
    loaded = {}
    for key, target in state.items():
        value = weights.get(key)
        if value is None:
            # detectron2 fills FrozenBN statistics missing from old checkpoints with the identity.
            if key.endswith(".norm.running_mean"):
                value = np.zeros(target.shape, np.float32)
            elif key.endswith(".norm.running_var"):
                value = np.ones(target.shape, np.float32)
            else:
                missing.append(key)
                continue
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            wrong.append(f"{key} (not numeric)")
            continue
        if tuple(arr.shape) != tuple(target.shape):
            wrong.append(f"{key} {tuple(arr.shape)} != {tuple(target.shape)}")
            continue
        loaded[key] = torch.from_numpy(arr.copy())
    if missing:
        raise ModelLoadError(f"the DensePose {source} is incomplete: {len(missing)} weights missing "
                             f"(first {missing[0]}); download model_final_162be9.pkl again")
    if wrong:
        raise ModelLoadError(f"the DensePose {source} does not fit the model: {len(wrong)} weights of the wrong "
                             f"shape (first {wrong[0]})")
    model.load_state_dict(loaded, strict=True)


def save_checkpoint(model: DensePoseRCNN, path: str | os.PathLike, author: str = "vton-masks") -> None:
    """Write the model in detectron2's pkl format (numpy arrays under 'model'), plus its config beside it."""
    path = Path(path)
    weights = OrderedDict((k, v.detach().cpu().numpy().astype(np.float32)) for k, v in model.state_dict().items())
    with open(path, "wb") as f:
        # Protocol 4: arrays rebuild through numpy's _reconstruct, as in detectron2's own files.
        pickle.dump({"model": weights, "__author__": author}, f, protocol=4)
    path.with_suffix(".json").write_text(model.cfg.to_json())


def load_checkpoint(path: str | os.PathLike, cfg: DensePoseConfig | None = None,
                    device: str | torch.device = "cpu") -> DensePoseRCNN:
    """Build the model for a detectron2 DensePose pkl and load it (eval mode) on `device`."""
    weights = read_checkpoint(path)
    if cfg is None:
        side = Path(path).with_suffix(".json")
        if side.is_file():
            try:
                cfg = DensePoseConfig.from_json(side.read_text())
            except (ValueError, TypeError) as e:
                raise ModelLoadError(f"the DensePose config {str(side)!r} is not valid: {e}") from None
        else:
            cfg = infer_config(weights)
    weights = {k: v for k, v in weights.items() if not k.startswith(_IGNORED_PREFIXES)}
    model = build_model(cfg)
    load_state(model, weights, source=f"checkpoint {str(path)!r}")
    return model.to(device).eval()
