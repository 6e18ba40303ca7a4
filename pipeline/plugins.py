"""Names the user can give for a replaceable part (a mask style, a model family, an output layout):
a built-in name, or an importable `package.module:name` reference.

References are what make a plug-in work under Ray: an actor is a fresh process that only sees
what it can import, so a part is passed between processes by its reference, never as an object.
"""
from __future__ import annotations

import argparse
import importlib
import re

from .schema import VtonError

REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class PluginError(VtonError):
    """A name that is neither built in nor an importable reference."""


def is_reference(name: str) -> bool:
    return bool(REFERENCE.match(str(name)))


def load_reference(reference: str, what: str):
    """`package.module:attr.attr` -> the object it names."""
    module_name, _, attribute = str(reference).partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise PluginError(f"{what} {reference!r}: cannot import {module_name!r} ({error}); the module "
                          "must be importable on every node (installed, or on PYTHONPATH)") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"{what} {reference!r}: {module_name!r} has no {attribute!r}") from None
    return target


def resolve(name: str, builtins: dict, what: str):
    """The object for a built-in name or a reference; built-ins may themselves be references (lazy)."""
    value = builtins.get(name) if name in builtins else None
    if value is None:
        if not is_reference(name):
            raise PluginError(f"unknown {what} {name!r} (expected {', '.join(builtins)}, "
                              "or an importable package.module:name)")
        value = name
    return load_reference(value, what) if isinstance(value, str) and is_reference(value) else value


def argument(builtins: dict, what: str):
    """An argparse `type=` that takes a built-in name or a well-formed reference (imported at start)."""
    def parse(text: str) -> str:
        if text in builtins or is_reference(text):
            return text
        raise argparse.ArgumentTypeError(f"unknown {what} {text!r} (choose from {', '.join(builtins)}, "
                                         "or give package.module:name)")
    parse.__name__ = what  # argparse names the type in its messages
    return parse
