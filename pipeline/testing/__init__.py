"""Generators of known answers (synthetic people, product photos, scenes, OpenPose maps).

Imported by tests, benchmarks, the demo data and training only; a run never imports them.
"""
