"""Output layouts: where each file of a row goes in OUT. The sink side owns this seam.

The mask stage hands over encoded files keyed by kind (`<kind>_bytes` and `<kind>_ext`, kinds in
`schema.FILE_KINDS`); the write stage asks the run's layout for each file's path and records it
in the manifest as `<kind>_path`. A layout also lists the folders it owns, which `--overwrite`
removes. `--layout` takes a name below or a `package.module:name` reference to a Layout
subclass (CONTRIBUTING.md: "add an output layout").
"""
from __future__ import annotations

from .plugins import resolve
from .schema import VtonError


class Layout:
    """Maps (row, kind) to a path relative to OUT. Subclasses must be importable and argument-free
    to construct: every write task builds its own from the layout's name."""

    name = "layout"
    folders: tuple[str, ...] = ()  # top-level folders of OUT this layout writes (and --overwrite removes)

    def path(self, row: dict, kind: str, extension: str) -> str | None:
        """The file's path relative to OUT, or None for a kind this layout does not write.

        row: the row's manifest values so far (`id`, `source`, `category`, ...); extension: the
        encoded file's, with its dot (".png", ".jpg", ".json").
        """
        raise NotImplementedError


class NativeLayout(Layout):
    """This project's own layout (README, Outputs): one folder per kind, named by the row's id."""

    name = "native"
    FOLDERS = {"mask": "masks", "masked": "masked", "parse": "parse", "pose": "pose", "crop": "crops"}
    folders = tuple(FOLDERS.values())

    def path(self, row: dict, kind: str, extension: str) -> str | None:
        return f"{self.FOLDERS[kind]}/{row['id']}{extension}"


LAYOUTS = {"native": NativeLayout}


def get_layout(name: str) -> Layout:
    found = resolve(name, LAYOUTS, "layout")
    if isinstance(found, type) and issubclass(found, Layout):
        return found()
    if isinstance(found, Layout):
        return found
    raise VtonError(f"layout {name!r} is not a Layout subclass (got {type(found).__name__})")
