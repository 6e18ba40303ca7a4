"""Mutation audit: put known bugs into a scratch copy of the project, one at a time, and check that
the named tests catch each of them.

    python3 tools/mutation_check.py                  # the working tree as it is (tracked + new files)
    python3 tools/mutation_check.py --rev HEAD       # a commit instead of the working tree
    python3 tools/mutation_check.py --rev HEAD --overlay tests   # ... with the working tree's tests/
    python3 tools/mutation_check.py --only fill-green --only parser-resize-nearest
    python3 tools/mutation_check.py --list

Each mutation is (name, file, exact old text, new text, test files). The old text must occur
exactly once in the file: "pattern not found in FILE" (or found several times) is a failure of
the audit, not a skip, so when a refactor moves or rewrites a line, update MUTATIONS below.

The repository itself is never touched: the tree is copied into a temporary folder, a mutation is
written there, `python3 -m pytest -x -q TESTS` runs from the copy's root with PYTHONPATH set to the
copy (so the copy's `pipeline` is imported, not the editable install; checked at start, and the
subprocesses the tests start, Ray workers included, inherit it), then the file is restored. A
baseline run of each mutation's tests on the unmutated copy comes first: a test that fails
without a bug proves nothing.

Exit status: 0 when the baselines pass and every mutation is caught; 1 when a mutation survives,
a pattern is missing or a run errs; 2 when a baseline fails (its mutations show BASELINE FAILS, the
others still run) or when the copy would import another `pipeline`.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # test files or pytest node ids (file::test), narrowest first
    why: str = ""
    also: tuple[tuple[str, str], ...] = ()  # other (old, new) spellings of the same line, tried in turn

    def replacements(self) -> tuple[tuple[str, str], ...]:
        return ((self.old, self.new),) + self.also


MUTATIONS = (
    # Issue 19: the four bugs that got through.
    Mutation("fill-green", "pipeline/compose.py",
             '"green": (0, 255, 0)', '"green": (0, 254, 0)',
             ("tests/test_fill.py",), "green fill one level off"),
    Mutation("fill-gray", "pipeline/compose.py",
             '"gray": (127, 127, 127)', '"gray": (128, 128, 128)',
             ("tests/test_fill.py",), "gray fill one level off"),
    Mutation("decode-resize-nearest", "pipeline/decode.py",
             "image.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=None)",
             "image.resize(tuple(size), Image.Resampling.NEAREST, reducing_gap=None)",
             ("tests/test_resize.py",), "working-size resize by nearest neighbour"),
    Mutation("parser-resize-nearest", "pipeline/parser.py",
             'mode="bilinear", align_corners=False,\n                                   antialias=True)',
             'mode="nearest")',
             ("tests/test_parser_preprocessing.py",), "parser input resize by nearest neighbour"),
    # More of the same kind.
    Mutation("fill-polarity", "pipeline/fastmask.py",
             "cv2.copyTo(fill, _u8(mask[y0:y1, x0:x1]), target)",
             "cv2.copyTo(fill, _u8(mask[y0:y1, x0:x1] == 0), target)",
             ("tests/test_fill.py",), "the fill goes outside the mask"),
    Mutation("codecs-resize-nearest", "pipeline/codecs.py",
             "image.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=None)",
             "image.resize(tuple(size), Image.Resampling.NEAREST, reducing_gap=None)",
             ("tests/test_resize.py", "tests/test_codecs.py"), "JPEG fast path finishes by nearest neighbour"),
    Mutation("codecs-dct-unrotated", "pipeline/codecs.py",
             "stored_width, stored_height = (height, width) if swap else (width, height)",
             "stored_width, stored_height = (width, height)",
             ("tests/test_resize.py", "tests/test_codecs.py"), "DCT scale chosen for the unrotated size"),
    Mutation("decode-reducing-gap", "pipeline/decode.py",
             "Image.Resampling.BILINEAR, reducing_gap=None)", "Image.Resampling.BILINEAR, reducing_gap=2.0)",
             ("tests/test_resize.py",), "a box reduce before the bilinear resize"),
    Mutation("decode-draft-unrotated", "pipeline/decode.py",
             'image.draft("RGB", target)', 'image.draft("RGB", size)',
             ("tests/test_resize.py",), "JPEG draft ignores the EXIF rotation"),
    Mutation("decode-size-swapped", "pipeline/decode.py",
             "decode_working(data, (width, height), max_pixels)", "decode_working(data, (height, width), max_pixels)",
             ("tests/test_resize.py",), "working size as (height, width)"),
    Mutation("parser-no-antialias", "pipeline/parser.py",
             "antialias=True)", "antialias=False)",
             ("tests/test_parser_preprocessing.py",), "parser shrinks without antialiasing"),
    Mutation("parser-bgr", "pipeline/parser.py",
             "pixels = pixels.permute(0, 3, 1, 2).float()", "pixels = pixels.permute(0, 3, 1, 2).flip(1).float()",
             ("tests/test_parser_preprocessing.py",), "BGR into the parser"),
    Mutation("parser-mean-not-scaled", "pipeline/parser.py",
             "torch.tensor(-mean / std,", "torch.tensor(-mean,",
             ("tests/test_parser_preprocessing.py",), "normalization subtracts the mean unscaled"),
    Mutation("mask-polarity", "pipeline/masks.py",
             "return _u8(mask) * np.uint8(255)", "return _u8(~mask) * np.uint8(255)",
             ("tests/test_masks.py",), "255 = keep instead of repaint",
             also=(("return _u8(np.asarray(mask) > 0) * np.uint8(255)",
                    "return _u8(np.asarray(mask) == 0) * np.uint8(255)"),)),
    Mutation("api-fill-ignored", "pipeline/api.py",
             "style=style, fill=fill)", 'style=style, fill="green")',
             ("tests/test_e2e.py::test_masked_image_writes_its_file",), "masked_image ignores fill="),
)


# ---------------------------------------------------------------------------- the scratch copy


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True).stdout


def copy_worktree(target: Path) -> int:
    """Tracked files and new files git does not ignore, as they are on disk now."""
    names = [n for n in git("ls-files", "-z", "--cached", "--others", "--exclude-standard").decode().split("\0") if n]
    copied = 0
    for name in names:
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree, or a submodule
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        copied += 1
    return copied


def copy_revision(target: Path, revision: str) -> int:
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return sum(1 for p in target.rglob("*") if p.is_file())


def overlay(target: Path, paths: list[str]) -> None:
    for relative in paths:
        source = ROOT / relative
        if source.is_dir():
            shutil.copytree(source, target / relative, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        elif source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
        else:
            raise SystemExit(f"--overlay {relative}: no such file or folder in {ROOT}")


def environment(copy: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutation of the same size and second must not meet a stale .pyc
    env.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    return env


def check_import(copy: Path, env: dict) -> str:
    found = subprocess.run([sys.executable, "-c", "import pipeline; print(pipeline.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True)
    where = found.stdout.strip()
    if found.returncode != 0 or not Path(where).resolve().is_relative_to(copy.resolve()):
        print(f"the copy imports pipeline from {where or found.stderr.strip()!r}, not from {copy}", file=sys.stderr)
        raise SystemExit(2)
    return where


# ---------------------------------------------------------------------------- running tests


@dataclass
class Outcome:
    returncode: int | None  # None: timed out
    seconds: float
    output: str

    @property
    def first_failure(self) -> str:
        match = re.search(r"^(?:FAILED|ERROR) (\S+)", self.output, re.MULTILINE)
        return match.group(1) if match else ""


def run_tests(copy: Path, env: dict, tests: tuple[str, ...], timeout: float, stop_first: bool = True) -> Outcome:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *tests]
    if stop_first:
        command.insert(4, "-x")
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        output = ((expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes)
                  else (expired.stdout or ""))
        return Outcome(None, time.monotonic() - started, output)
    return Outcome(done.returncode, time.monotonic() - started, done.stdout + done.stderr)


def apply(copy: Path, mutation: Mutation) -> tuple[str | None, str]:
    """Write the mutation into the copy; (original text to restore, problem)."""
    path = copy / mutation.file
    if not path.is_file():
        return None, f"file not found: {mutation.file}"
    text = path.read_text()
    for old, new in mutation.replacements():
        count = text.count(old)
        if count > 1:
            return None, f"pattern found {count} times in {mutation.file} (make it unique)"
        if count == 1:
            path.write_text(text.replace(old, new))
            return text, ""
    return None, f"pattern not found in {mutation.file}"


def test_file(spec: str) -> str:
    return spec.split("::", 1)[0]


def verdict(outcome: Outcome) -> tuple[str, bool]:
    """(result column, caught?) from pytest's exit status."""
    if outcome.returncode is None:
        return "TIMEOUT", False
    if outcome.returncode == 1:
        return "caught", True
    if outcome.returncode == 2:  # an import or collection error: the tests did stop, but say so
        return "caught (collection error)", True
    if outcome.returncode == 0:
        return "SURVIVED", False
    return f"ERROR (pytest exit {outcome.returncode})", False


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", help="copy this commit (git archive) instead of the working tree")
    parser.add_argument("--overlay", action="append", default=[],
                        help="with --rev: copy this working-tree file or folder over the commit's (repeatable)")
    parser.add_argument("--only", action="append", default=[], help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run on the unmutated copy")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per pytest run (default 600)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy and print its path")
    args = parser.parse_args(argv)

    mutations = [m for m in MUTATIONS if not args.only or m.name in args.only]
    unknown = set(args.only) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    if args.list:
        print(table([(m.name, m.file, " ".join(m.tests), m.why) for m in mutations],
                    ("mutation", "file", "tests", "bug")))
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="mutation-check-"))
    copy = scratch / "repo"
    copy.mkdir()
    try:
        if args.rev:
            count = copy_revision(copy, args.rev)
            overlay(copy, args.overlay)
            source = f"commit {args.rev}" + (f" + working-tree {', '.join(args.overlay)}" if args.overlay else "")
        else:
            if args.overlay:
                parser.error("--overlay goes with --rev")
            count = copy_worktree(copy)
            source = "working tree"
        env = environment(copy)
        imported = check_import(copy, env)
        print(f"copied {count} files of the {source} to {copy}; pipeline imports from {imported}", flush=True)

        all_tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
        missing = sorted({test_file(t) for t in all_tests if not (copy / test_file(t)).is_file()})
        if missing:
            print(f"test files missing from the copy: {', '.join(missing)}")
            return 1
        # Baseline: each test set of a mutation on the unmutated copy. A set that fails here cannot
        # catch anything; its mutations are reported as such and the others still run.
        broken: dict[str, str] = {}
        if not args.no_baseline:
            for tests in dict.fromkeys(m.tests for m in mutations):
                baseline = run_tests(copy, env, tests, args.timeout, stop_first=False)
                label = " ".join(tests)
                if baseline.returncode == 0:
                    print(f"baseline passed: {label} ({baseline.seconds:.0f}s)", flush=True)
                    continue
                broken[tests] = baseline.first_failure or f"pytest exit {baseline.returncode}"
                print(baseline.output[-3000:])
                print(f"baseline FAILED: {label} (pytest exit {baseline.returncode}, {baseline.seconds:.0f}s)",
                      flush=True)

        rows, failures = [], 0
        for mutation in mutations:
            if mutation.tests in broken:
                rows.append((mutation.name, mutation.file, " ".join(mutation.tests), "BASELINE FAILS", "-",
                             broken[mutation.tests]))
                failures += 1
                continue
            original, problem = apply(copy, mutation)
            if original is None:
                rows.append((mutation.name, mutation.file, " ".join(mutation.tests), "NOT APPLIED", "-", problem))
                failures += 1
                print(f"{mutation.name}: {problem}", flush=True)
                continue
            try:
                outcome = run_tests(copy, env, mutation.tests, args.timeout)
            finally:
                (copy / mutation.file).write_text(original)
            result, caught = verdict(outcome)
            failures += not caught
            detail = outcome.first_failure if caught else (outcome.output.strip().splitlines() or [""])[-1]
            rows.append((mutation.name, mutation.file, " ".join(mutation.tests), result, f"{outcome.seconds:.0f}s",
                         detail))
            print(f"{mutation.name}: {result} ({outcome.seconds:.0f}s) {detail}", flush=True)

        print()
        print(table(rows, ("mutation", "file", "tests", "result", "time", "first failing test / reason")))
        caught = sum(1 for r in rows if r[3].startswith("caught"))
        print(f"\n{caught} of {len(rows)} mutations caught" + ("" if failures == 0 else f"; {failures} not"))
        if broken:
            print(f"the unmutated tests fail: {', '.join(' '.join(t) for t in broken)}")
            return 2
        return 0 if failures == 0 else 1
    finally:
        if args.keep:
            print(f"scratch copy kept at {copy}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
