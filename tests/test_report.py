"""The HTML report: row selection, the files it writes, escaping, and the page in headless Chromium.

`make_out` writes a small but realistic OUT folder (mask/masked/parse/pose files and a two-file
Parquet manifest with the schema of pipeline/sinks.py). The browser test drives Debian's chromium through
chromedriver with selenium; with CI=true a missing browser fails it, elsewhere it is skipped.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.labels import LABEL, PALETTE
from pipeline.report import add_arguments, build_report, run_from_args, select_rows, thumb_key

XSS_ID = 'evil/<img src=x onerror="window.__xss=1">'
ERROR_TEXT = 'cannot decode: truncated JPEG <b>bold</b> & "quoted"'
SKIN, SHIRT, TROUSERS = (224, 172, 140), (40, 90, 200), (60, 60, 60)

MANIFEST_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("category", pa.string()), ("status", pa.string()),
    ("error", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("mask_path", pa.string()), ("masked_path", pa.string()), ("parse_path", pa.string()),
    ("pose_path", pa.string()), ("crop_path", pa.string()), ("mask_bbox", pa.list_(pa.int32(), 4)),
    ("mask_area", pa.float32()), ("keypoints", pa.list_(pa.float32(), 54)), ("persons", pa.int16()),
    ("flags", pa.list_(pa.string())), ("label_fractions", pa.list_(pa.float32(), 18)),
    ("parser", pa.string()), ("pose_model", pa.string()), ("style", pa.string()),
    *[(name, pa.float32()) for name in ("ms_decode", "ms_parse", "ms_pose", "ms_mask", "ms_write")],
])


def _person(width: int, height: int, shift: int):
    """A hand-drawn person: canonical labels, a photo coloured from them, COCO-18 keypoints."""
    labels = np.zeros((height, width), np.uint8)
    cx = width // 2 + shift
    yy, xx = np.mgrid[:height, :width]
    u = height / 16
    labels[((xx - cx) / (1.1 * u)) ** 2 + ((yy - 2 * u) / (1.4 * u)) ** 2 < 1] = LABEL["face"]
    labels[int(0.5 * u):int(1.2 * u), cx - int(u):cx + int(u)] = LABEL["hair"]
    labels[int(3.5 * u):int(8 * u), cx - int(2 * u):cx + int(2 * u)] = LABEL["upper_clothes"]
    labels[int(3.6 * u):int(8 * u), cx - int(3 * u):cx - int(2 * u)] = LABEL["right_arm"]
    labels[int(3.6 * u):int(8 * u), cx + int(2 * u):cx + int(3 * u)] = LABEL["left_arm"]
    labels[int(8 * u):int(14 * u), cx - int(1.8 * u):cx + int(1.8 * u)] = LABEL["pants"]
    labels[int(14 * u):int(15 * u), cx - int(1.8 * u):cx] = LABEL["right_shoe"]
    labels[int(14 * u):int(15 * u), cx:cx + int(1.8 * u)] = LABEL["left_shoe"]
    colours = np.full((len(PALETTE), 3), (235, 235, 228), np.uint8)
    for name, colour in (("face", SKIN), ("left_arm", SKIN), ("right_arm", SKIN), ("hair", (50, 30, 20)),
                         ("upper_clothes", SHIRT), ("pants", TROUSERS), ("left_shoe", (20, 20, 20)),
                         ("right_shoe", (20, 20, 20))):
        colours[LABEL[name]] = colour
    photo = colours[labels]
    points = {0: (cx, 2 * u), 1: (cx, 3.5 * u), 2: (cx - 2.5 * u, 4 * u), 3: (cx - 2.5 * u, 6 * u),
              4: (cx - 2.5 * u, 7.8 * u), 5: (cx + 2.5 * u, 4 * u), 6: (cx + 2.5 * u, 6 * u),
              7: (cx + 2.5 * u, 7.8 * u), 8: (cx - u, 8 * u), 9: (cx - u, 11 * u), 10: (cx - u, 14 * u),
              11: (cx + u, 8 * u), 12: (cx + u, 11 * u), 13: (cx + u, 14 * u), 14: (cx - 0.4 * u, 1.8 * u),
              15: (cx + 0.4 * u, 1.8 * u), 16: (cx - u, 2 * u)}  # 17 (left ear) is missing
    keypoints = np.full((18, 3), np.nan, np.float32)
    for index, (x, y) in points.items():
        keypoints[index] = (x, y, 0.9)
    return labels, photo, keypoints


def _write_row_files(out: Path, source_dir: Path, row_id: str, category: str, shift: int,
                     with_outputs: bool = True, write_source: bool = True) -> dict:
    width, height = 192, 256
    labels, photo, keypoints = _person(width, height, shift)
    source = source_dir / f"{row_id}.jpg"
    source.parent.mkdir(parents=True, exist_ok=True)
    if write_source:
        Image.fromarray(photo).save(source, quality=90)
    row = {"id": row_id, "source": str(source), "category": category, "status": "ok", "width": width,
           "height": height, "parser": "tiny-segformer", "pose_model": "openpose-body", "style": "parse",
           "flags": [], "ms_decode": 1.5, "ms_parse": 20.0, "ms_pose": 40.0, "ms_mask": 2.0, "ms_write": 3.0}
    masked_path = f"masked/{row_id}.jpg"
    (out / masked_path).parent.mkdir(parents=True, exist_ok=True)
    if not with_outputs:  # passthrough: the photo unchanged, no mask, no models
        Image.fromarray(photo).save(out / masked_path, quality=90)
        return {**row, "status": "skipped", "masked_path": masked_path, "parser": None, "pose_model": None}
    garments = [LABEL["upper_clothes"]] if category == "upper_body" else [LABEL["pants"]]
    mask = np.isin(labels, garments).astype(np.uint8) * 255
    ys, xs = np.nonzero(mask)
    masked = photo.copy()
    masked[mask > 0] = 127
    paths = {"mask_path": f"masks/{row_id}.png", "masked_path": masked_path,
             "parse_path": f"parse/{row_id}.png", "pose_path": f"pose/{row_id}.json"}
    for path in paths.values():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask, "L").save(out / paths["mask_path"])
    Image.fromarray(masked).save(out / masked_path, quality=90)
    parse = Image.fromarray(labels, "P")
    parse.putpalette(PALETTE.flatten().tolist())
    parse.save(out / paths["parse_path"])
    openpose = np.nan_to_num(keypoints, nan=0.0).flatten().round(2).tolist()
    (out / paths["pose_path"]).write_text(json.dumps(
        {"version": 1.3, "people": [{"pose_keypoints_2d": openpose}], "canvas_width": width, "canvas_height": height}))
    fractions = np.bincount(labels.ravel(), minlength=18)[:18] / labels.size
    return {**row, **paths, "mask_bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
            "mask_area": float(mask.mean() / 255), "keypoints": keypoints.flatten().tolist(), "persons": 1,
            "label_fractions": fractions.astype(np.float32).tolist()}


def make_out(root: Path, ok_rows: int = 8) -> tuple[Path, list[dict]]:
    """A run's OUT folder with ok, flagged, error and skipped rows; photos live outside OUT."""
    out, sources = root / "out", root / "photos"
    rows = [
        _write_row_files(out, sources, "shop/ünïcode フォト 1", "upper_body", -10),
        {**_write_row_files(out, sources, "multi", "upper_body", 12), "flags": ["multi_person"], "persons": 2},
        {**_write_row_files(out, sources, "tiny", "lower_body", 0), "flags": ["small_mask", "no_garment"]},
        # Its original photo is gone: the report falls back to the masked photo.
        _write_row_files(out, sources, "gone/source", "lower_body", 5, write_source=False),
        _write_row_files(out, sources, "passthrough", "other", 0, with_outputs=False),
    ]
    rows += [_write_row_files(out, sources, f"bulk/{i:03d}", ("upper_body", "lower_body")[i % 2], i * 3 - 10)
             for i in range(ok_rows)]
    truncated = sources / "broken.jpg"
    truncated.write_bytes((sources / "multi.jpg").read_bytes()[:300])
    rows.append({"id": XSS_ID, "source": str(truncated), "category": "upper_body", "status": "error",
                 "error": ERROR_TEXT, "flags": [], "ms_decode": 0.5})
    rows.append({"id": "no-such-photo", "source": str(sources / "missing.jpg"), "category": "dresses",
                 "status": "error", "error": "cannot read: no such file", "flags": []})
    table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    (out / "manifest").mkdir(parents=True)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), out / "manifest" / "part-00000.parquet")
    pq.write_table(table.slice(half), out / "manifest" / "part-00001.parquet")
    (out / "manifest" / ".tmp-abandoned").write_bytes(b"not parquet")  # a killed write's leftover
    return out, rows


@pytest.fixture(scope="module")
def report_out(tmp_path_factory):
    out, rows = make_out(tmp_path_factory.mktemp("report"))
    index = build_report(out, sample=100, seed=0)
    return out, rows, index


def test_select_rows_keeps_problems_first_and_samples_the_rest():
    status = np.array(["ok"] * 1000 + ["error"] * 5 + ["skipped"] * 10)
    flagged = np.zeros(status.size, bool)
    flagged[[3, 50, 1001]] = True  # 1001 is an error and a flag: counted as an error
    errors, flags, rest = select_rows(status, flagged, sample=20, seed=1)
    assert errors.tolist() == list(range(1000, 1005))
    assert flags.tolist() == [3, 50]
    assert rest.size == 20 and not set(rest) & {3, 50} and (status[rest] != "error").all()
    assert np.array_equal(rest, select_rows(status, flagged, 20, seed=1)[2])
    assert not np.array_equal(rest, select_rows(status, flagged, 20, seed=2)[2])
    # The limit applies to errors and to flagged rows each: many errors never hide flagged rows.
    errors, flags, rest = select_rows(status, flagged, sample=0, problem_limit=1)
    assert errors.size == 1 and flags.size == 1 and rest.size == 0
    assert np.array_equal(errors, select_rows(status, flagged, 0, problem_limit=1)[0])


def test_report_writes_page_thumbs_and_contact_sheet(report_out):
    out, rows, index = report_out
    assert index == out / "report" / "index.html"
    page = index.read_text("utf-8")
    # Every row is shown (sample 100 > rows), problems first: errors, then flagged rows.
    order = [chunk.split('"', 1)[0] for chunk in page.split('data-status="')[1:]]
    assert len(order) == len(rows)
    assert order[:2] == ["error", "error"]
    assert page.index('data-id="multi"') < page.index('data-id="shop/')
    assert page.index('data-id="tiny"') < page.index('data-id="bulk/000"')
    # User data is escaped everywhere, and each error shows its message.
    assert "<img src=x" not in page and "<b>bold</b>" not in page
    assert "cannot decode: truncated JPEG &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;" in page
    assert "cannot read: no such file" in page
    # Summary numbers computed from the manifest (no summary.json in this OUT).
    assert "computed from the manifest" in page and "mean_ms_per_ok_row.pose" in page
    # No network: nothing is fetched from another host.
    assert "http://" not in page and "https://" not in page
    # Thumbnails: named by a hash of the id, ~160 px high JPEGs.
    key = thumb_key("shop/ünïcode フォト 1")
    for kind in ("photo", "overlay", "parse", "pose"):
        thumb = Image.open(out / "report" / "thumbs" / f"{key}_{kind}.jpg")
        assert thumb.format == "JPEG" and thumb.size == (120, 160)
    assert not (out / "report" / "thumbs" / f"{thumb_key('passthrough')}_overlay.jpg").exists()
    # The photo without its source falls back to the masked photo, and says so.
    assert (out / "report" / "thumbs" / f"{thumb_key('gone/source')}_photo.jpg").exists()
    # The overlay tints the mask, and the parse thumbnail keeps the palette's colours.
    overlay = np.asarray(Image.open(out / "report" / "thumbs" / f"{key}_overlay.jpg")).astype(int)
    assert overlay[60, 60, 0] > SHIRT[0] + 80  # the torso's blue shirt is tinted red
    assert abs(overlay[150, 5] - 235).max() < 20  # the background is not
    parse = np.asarray(Image.open(out / "report" / "thumbs" / f"{key}_parse.jpg")).astype(int)
    assert np.abs(parse[60, 58] - PALETTE[LABEL["upper_clothes"]].astype(int)).max() < 40
    sheet = Image.open(out / "report" / "contact_sheet.png")
    assert sheet.format == "PNG" and sheet.size[0] >= 8 * 160


def test_report_samples_and_reads_summary_json(tmp_path):
    out, rows = make_out(tmp_path, ok_rows=30)
    (out / "summary.json").write_text(json.dumps({"rows": len(rows), "status": {"ok": 33, "error": 2},
                                                  "rows_per_s": 12.3456}))
    build_report(out, sample=100)
    page = build_report(out, sample=4, seed=3).read_text("utf-8")
    # The earlier build's thumbnails are gone: report/ holds exactly what the page shows.
    assert len(list((out / "report" / "thumbs").iterdir())) == page.count("<img ")
    errors = sum(r["status"] == "error" for r in rows)
    flagged = sum(bool(r["flags"]) for r in rows)
    assert page.count('<article class="row') == errors + flagged + 4
    assert "(summary.json)" in page and "rows_per_s" in page and "12.35" in page
    assert f"{errors} of {errors} errors" in page and "4 sampled of" in page
    assert build_report(out, sample=4, seed=3).read_text("utf-8") == page  # seeded: same page


def _with_export_columns(out: Path, exported: dict[str, list[str]], names: dict[str, str]) -> None:
    """Rewrite OUT's manifest with the trainer layouts' `exported` and `export_name` columns."""
    table = pq.read_table(out / "manifest")
    table = table.drop_columns([name for name in ("exported", "export_name") if name in table.column_names])
    ids = table.column("id").to_pylist()
    table = table.append_column("exported", pa.array([exported.get(i, []) for i in ids], pa.list_(pa.string())))
    table = table.append_column("export_name", pa.array([names.get(i) for i in ids], pa.string()))
    shutil.rmtree(out / "manifest")
    (out / "manifest").mkdir()
    pq.write_table(table, out / "manifest" / "part-00000.parquet")


def _palette_png(path: Path, labels: np.ndarray, palette: np.ndarray) -> None:
    image = Image.fromarray(labels, "P")
    image.putpalette(palette.flatten().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def test_report_shows_a_trainer_layouts_exported_files(tmp_path):
    from pipeline.tryon_formats import DRESSCODE_PALETTE, LIP_PALETTE

    out, rows = make_out(tmp_path / "native")
    native = build_report(out, sample=100).read_text("utf-8")
    # A native run's manifest has the columns too, empty: its page is byte for byte the same.
    _with_export_columns(out, {}, {})
    assert build_report(out, sample=100).read_text("utf-8") == native
    assert 'class="exported"' not in native

    # A vitonhd row and a dresscode row, with tiny files of each kind; one listed file is missing.
    labels, photo, _ = _person(96, 128, 0)
    lip = np.where(labels == LABEL["upper_clothes"], 5, np.where(labels > 0, 13, 0)).astype(np.uint8)
    files = {
        "test/image/00000_00.jpg": lambda p: Image.fromarray(photo).save(p, quality=90),
        "test/image-parse-v3/00000_00.png": lambda p: _palette_png(p, lip, LIP_PALETTE),
        "test/agnostic-v3.2/00000_00.jpg": lambda p: Image.fromarray(photo).save(p, quality=90),
        "test/agnostic-mask/00000_00_mask.png": lambda p: Image.fromarray((lip == 5).astype(np.uint8) * 255,
                                                                            "L").save(p),
        "test/openpose_img/00000_00_rendered.png": lambda p: Image.new("RGB", (96, 128), (255, 0, 0)).save(p),
        "test/openpose_json/00000_00_keypoints.json": lambda p: p.write_text('{"people": []}'),
        "test/cloth-mask/00000_00.jpg": lambda p: Image.new("L", (96, 128), 255).save(p, quality=90),
        "upper_body/label_maps/000003_4.png": lambda p: _palette_png(p, labels, DRESSCODE_PALETTE),
        "upper_body/keypoints/000003_2.json": lambda p: p.write_text('{"keypoints": []}'),
    }
    for path, write in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        write(out / path)
    vitonhd = [p for p in files if p.startswith("test/")] + ["test/cloth/00000_00.jpg"]  # never written
    dresscode = [p for p in files if p.startswith("upper_body/")]
    _with_export_columns(out, {"multi": vitonhd, "bulk/000": dresscode},
                         {"multi": "00000_00", "bulk/000": "000003"})
    page = build_report(out, sample=100).read_text("utf-8")
    assert page.count('class="exported"') == 2 and "exported 00000_00 (8 files)" in page
    report = out / "report"
    article = page[page.index('data-id="multi"'):]
    article = article[:article.index("</article>")]
    for label in ("image", "image-parse-v3", "agnostic-v3.2", "agnostic-mask", "openpose_img", "openpose_json",
                  "cloth-mask", "cloth"):
        assert f"<figcaption>{label}</figcaption>" in article
    # Every exported file is linked, and each link resolves from report/ (the missing one says so).
    hrefs = [chunk.split('"', 1)[0] for chunk in article.split('href="')[1:]]
    exported_links = [h for h in hrefs if h.startswith("../test/")]
    assert sorted(exported_links) == sorted(f"../{p}" for p in vitonhd)
    for href in exported_links:
        assert (report / href).resolve().is_file() == (href != "../test/cloth/00000_00.jpg")
    assert '>missing</a><figcaption>cloth</figcaption>' in article and '>json</a>' in article
    # Images get thumbnails in report/thumbs/ (the JSON and the missing file do not), ~96 px high.
    key = thumb_key("multi")
    srcs = [chunk.split('"', 1)[0] for chunk in article.split('src="')[1:]]
    thumbs = [s for s in srcs if s.startswith(f"thumbs/{key}_x")]
    assert len(thumbs) == 6
    for src in thumbs:
        thumb = Image.open(report / src)
        assert thumb.format == "JPEG" and thumb.mode == "RGB" and thumb.size == (72, 96)
    # The palette PNG is shown in its colours (LIP 5 = upper clothes, orange), not as gray ids.
    parse = next(s for s in thumbs if f'{s}" width="72" height="96" alt="image-parse-v3"' in article)
    pixels = np.asarray(Image.open(report / parse)).astype(int)
    centre = pixels[int(5.5 / 16 * 96), 36]  # on the shirt
    assert np.abs(centre - LIP_PALETTE[5].astype(int)).max() < 40
    dc = page[page.index('data-id="bulk/000"'):]
    dc = dc[:dc.index("</article>")]
    assert "<figcaption>label_maps</figcaption>" in dc and "<figcaption>keypoints</figcaption>" in dc
    dc_parse = np.asarray(Image.open(report / "thumbs" / f"{thumb_key('bulk/000')}_x00.jpg")).astype(int)
    assert np.abs(dc_parse[int(5.5 / 16 * 96), 36] - DRESSCODE_PALETTE[LABEL["upper_clothes"]]).max() < 40
    # report/ holds exactly what the page shows; a native row keeps its four thumbnails.
    assert len(list((report / "thumbs").iterdir())) == page.count("<img ")
    assert page.count(f'src="thumbs/{thumb_key("tiny")}_') == 4


def test_report_without_manifest_says_so(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run_from_args(parser.parse_args([str(tmp_path), "--sample", "3"])) == 2


# ---------------------------------------------------------------------------- headless Chromium


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _browser_or_skip():
    """(webdriver module, chromium path, chromedriver path); fail in CI, skip elsewhere."""
    problems = []
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
        problems.append("selenium is not installed (pip install selenium)")
    chromium = next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser"))), None)
    driver = shutil.which("chromedriver")
    if not chromium:
        problems.append("no chromium binary (apt-get install -y chromium)")
    if not driver:
        problems.append("no chromedriver (apt-get install -y chromium-driver)")
    if problems:
        message = "headless browser test cannot run: " + "; ".join(problems)
        if _in_ci():
            pytest.fail(message + " (CI=true: the browser is required)")
        pytest.skip(message)
    return webdriver, chromium, driver


@pytest.fixture(scope="module")
def chrome():
    webdriver, chromium, driver_path = _browser_or_skip()
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager is never asked to find or download anything.
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    browser.set_script_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def served(report_out):
    """OUT served over a localhost http.server (the way a report on a shared disk is browsed)."""
    out = report_out[0]
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/report/index.html"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _severe(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _load_all_images(browser) -> list:
    """Scroll every image into view (they load lazily) and wait; [src, naturalWidth] per image."""
    return browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        (async () => {
          for (const img of document.images) {
            img.scrollIntoView();
            if (!img.complete) {
              await new Promise(r => { img.addEventListener('load', r, {once: true});
                                       img.addEventListener('error', r, {once: true}); });
            }
          }
          window.scrollTo(0, 0);
          done(Array.from(document.images, i => [i.getAttribute('src'), i.naturalWidth]));
        })();""")


def _visible_ids(browser) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('article.row'))"
        ".filter(r => r.offsetParent !== null).map(r => r.getAttribute('data-id'));")


@pytest.mark.parametrize("how", ["file", "http"])
def test_report_in_headless_chromium(report_out, served, chrome, how):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    out, rows, index = report_out
    chrome.get(index.as_uri() if how == "file" else served)
    images = _load_all_images(chrome)
    # Images render: 4 thumbnails per row with outputs, fewer for the rest, none broken.
    assert len(images) >= 4 * sum(r["status"] == "ok" for r in rows)
    assert [src for src, width in images if not width > 0] == []
    screenshot = os.environ.get("REPORT_SCREENSHOT")  # how docs/img/report_screenshot.png is made
    if screenshot and how == "file":
        chrome.save_screenshot(screenshot)
    all_ids = [r["id"] for r in rows]
    assert sorted(_visible_ids(chrome)) == sorted(all_ids)
    # User data is shown as text, never run.
    assert chrome.execute_script("return window.__xss === undefined")
    error_row = chrome.find_element(By.CSS_SELECTOR, "article.st-error")
    assert error_row.find_element(By.CSS_SELECTOR, "h3.id").text == XSS_ID
    assert error_row.find_element(By.CSS_SELECTOR, "pre.error").text == ERROR_TEXT

    def choose(select_id, value):
        Select(chrome.find_element(By.ID, select_id)).select_by_value(value)
        return sorted(_visible_ids(chrome))

    assert choose("f-status", "error") == sorted([XSS_ID, "no-such-photo"])
    assert chrome.find_element(By.ID, "shown").text == "2"
    assert choose("f-status", "skipped") == ["passthrough"]
    assert choose("f-status", "") == sorted(all_ids)
    assert choose("f-flag", "multi_person") == ["multi"]
    assert choose("f-flag", "*any") == ["multi", "tiny"]
    assert choose("f-flag", "") == sorted(all_ids)
    assert choose("f-category", "lower_body") == sorted(r["id"] for r in rows if r["category"] == "lower_body")
    assert choose("f-status", "error") == []
    assert choose("f-category", "") == sorted([XSS_ID, "no-such-photo"])
    choose("f-status", "")
    box = chrome.find_element(By.ID, "f-id")
    box.send_keys("bulk/")
    assert _visible_ids(chrome) == sorted(r["id"] for r in rows if r["id"].startswith("bulk/"))
    box.clear()
    box.send_keys(" ")  # clear() fires no input event; typing does
    assert len(_visible_ids(chrome)) == len(rows)
    # No console errors; the probe proves the console log is being read at all.
    assert _severe(chrome) == []
    chrome.execute_script("console.error('probe')")
    assert any("probe" in message for message in _severe(chrome))
