"""Dataset-scale virtual try-on masks: human parsing, body keypoints and inpainting masks.

Importing the package does not import Ray: the stages run with or without it.
"""

from .api import masked_image

__all__ = ["masked_image"]
