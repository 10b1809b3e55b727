"""The rendered book, opened page by page in headless Chromium, offline.

The book is built once per session with ``-W --keep-going`` from the chapters' stored
outputs: nbval, in the same ``make test``, re-runs every chapter and checks that those
outputs are what the code produces, so the build does not run them a second time. The pages
written as MyST Markdown with code cells, like the errata page, have no stored outputs and
are executed.

Every page is opened from ``file://`` with every request that leaves the build refused, as
on a laptop without network: the page must still typeset all its formulas, render its saved
widgets (the training progress bars) and run without JavaScript errors. The test also measures what a reader sees: blocks that need horizontal
scrolling, how far figures are scaled down, and how tall each figure's smallest text ends
up on screen, which must be at least 70 % of the body text. The measurements are kept in
``_build/html/_screenshots/report.json``. ``make screenshots`` (``ZOO_SCREENSHOTS=1``) also keeps a
full-page screenshot of every page there: the pictures are for people, no assertion reads them, and
capturing them took about 30 s of the 64 s this file needs alone.

Any Chromium will do (``find_chromium``): ``$CHROMIUM``, Debian's ``chromium`` or
Playwright's own. ``python tests/test_book_browser.py`` prints the one it finds (``make
test`` uses that to decide whether to install Debian's).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from zoolib.plots import SMALLEST_TEXT_KEY   # the PNG text chunk (and SVG description) book_png/book_svg write

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = HTML / "_screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOW_TO_GET_CHROMIUM = (
    "the browser test needs a Chromium and found none. Any of these works:\n"
    "  - Debian/Ubuntu: sudo apt-get install chromium   (`make test` does this when run as root on Debian)\n"
    "  - Playwright's own build (needs the network once): .venv/bin/playwright install chromium\n"
    "  - another Chrome or Chromium: CHROMIUM=/path/to/chrome make test")
MIN_TEXT_SHARE = 0.70      # no figure text smaller than 70 % of the body text (issue 13)
VIEWPORT = {"width": 1280, "height": 900}


def find_chromium() -> str | None:
    """The Chromium to launch: a path, ``"playwright"`` for Playwright's own build, or None."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as pw:
        # `playwright install chromium` brings the full browser and the headless shell
        # (`--only-shell`: just the shell, which Playwright launches by itself)
        full = Path(pw.chromium.executable_path)
        if full.is_file():
            return str(full)
        shell = list(full.parents[2].glob("chromium_headless_shell-*/*/*headless*shell")) if len(full.parents) > 2 else []
        return "playwright" if shell else None


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            pages.append(chapter["file"])
            pages += [s["file"] for s in chapter.get("sections", [])]
    return [re.sub(r"\.(md|ipynb)$", "", p) for p in pages]


PAGES = toc_pages()
REPORT: dict[str, dict] = {}


@pytest.fixture(scope="session")
def book() -> Path:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "force"
    config["execute"]["exclude_patterns"] = ["*.ipynb"]   # chapters and assignments: as stored
    # the test config lives in _build/, so local extension paths must be absolute
    extensions = config.get("sphinx", {}).get("local_extensions", {})
    for name, where in extensions.items():
        extensions[name] = str(ROOT / where)
    test_config = ROOT / "_build" / "_config.test.yml"
    test_config.parent.mkdir(exist_ok=True)
    test_config.write_text(yaml.safe_dump(config))
    jb = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run([str(jb), "build", str(ROOT), "-W", "--keep-going", "--config", str(test_config)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, "the book build failed (warnings are errors):\n" + (run.stdout + run.stderr)[-6000:]
    SHOTS.mkdir(parents=True, exist_ok=True)
    return HTML


@pytest.fixture(scope="session")
def browser(request):
    chromium = find_chromium()
    if chromium is None:
        pytest.fail(HOW_TO_GET_CHROMIUM, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        executable = {} if chromium == "playwright" else {"executable_path": chromium}
        b = pw.chromium.launch(args=CHROMIUM_ARGS, headless=True, **executable)
        yield b
        b.close()
    _write_report(request)


def _write_report(request) -> None:
    if not REPORT:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "report.json").write_text(json.dumps(REPORT, indent=1) + "\n")
    total = lambda key: sum(r[key] for r in REPORT.values())
    figures = [f for r in REPORT.values() for f in r["figures"]]
    smallest = min((f for f in figures if f["text_px"] is not None), key=lambda f: f["text_px"], default=None)
    lines = [f"book in Chromium, offline: {len(REPORT)} pages, {total('requests')} requests inside the build, "
             f"{total('external_refused')} refused outside it; {total('formulas_typeset')} of "
             f"{total('formulas')} formulas typeset; {total('raw_delimiters')} raw TeX delimiters left; "
             f"{total('widgets_rendered')} of {total('widgets')} progress bars (widgets) rendered",
             f"  overflowing blocks (need horizontal scrolling): prose {total('overflow_prose')}, "
             f"code {total('overflow_code')} of {total('code_blocks')} ({total('long_line_blocks')} have lines "
             f"over 88 characters), outputs {total('overflow_output')} of "
             f"{total('output_blocks')}, tables {total('overflow_table')} of {total('tables')}",
             f"  figures: {len(figures)}, {sum(f['shown_w'] < f['natural_w'] - 1 for f in figures)} scaled down "
             f"(by up to {max((f['natural_w'] / f['shown_w'] for f in figures if f['shown_w']), default=1):.2f}x), "
             f"{sum(not f['alt'] or f['alt'].startswith(('../', '_images')) for f in figures)} without alt text"
             + (f"; the smallest figure text is {smallest['smallest_pt']:g} pt shown at "
                f"{smallest['text_px']:.1f} px ({smallest['page']}), against {smallest['body_px']:.0f} px body "
                f"text; {sum(f['text_px'] < MIN_TEXT_SHARE * f['body_px'] for f in figures if f['text_px'])} "
                f"figures under {MIN_TEXT_SHARE:.0%} of it" if smallest else "")]
    # a session fixture's teardown is captured: lift the capture to show the numbers
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        for line in lines:
            (reporter.write_line(line) if reporter else print(line))


def _internal_targets(html: str, page_file: Path) -> list[tuple[str, Path, str]]:
    out = []
    for href in re.findall(r'<a[^>]+href="([^"]+)"', html):
        parsed = urlparse(href)
        if parsed.scheme or href.startswith(("mailto:", "//", "javascript:")):
            continue
        target = page_file if not parsed.path else (page_file.parent / unquote(parsed.path)).resolve()
        out.append((href, target, parsed.fragment))
    return out


def _png_dpi(path: Path) -> float | None:
    """The resolution a PNG was saved at (its pHYs chunk), as matplotlib writes it."""
    data = path.read_bytes()
    at = data.find(b"pHYs")
    if at < 0:
        return None
    x, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
    return x * 0.0254 if unit == 1 else None


def _png_text(path: Path) -> dict[str, str]:
    """The PNG's tEXt chunks, where ``zoolib.plots.book_png`` records the smallest drawn text."""
    data, out, at = path.read_bytes(), {}, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"tEXt":
            key, _, value = data[at + 8:at + 8 + length].partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        at += 12 + length
    return out


def _figure_text_px(path: Path, shown_w: float, natural_w: float) -> tuple[float | None, float | None]:
    """The figure's smallest drawn text: its size in points, and its height on screen in CSS px.

    A PNG: matplotlib stores the dpi, so text of ``pt`` points is ``pt / 72 * dpi`` image
    pixels tall, then scaled to the width the page shows. An SVG (the drawings) is sized in
    points, which a browser shows at 96/72 CSS px each before scaling. The size is the one the
    figure was drawn with (``zoolib.plots.drawn_font_sizes``), not a reading of the glyphs.
    """
    if not path.is_file() or not natural_w:
        return None, None
    if path.suffix == ".png":
        dpi, recorded = _png_dpi(path), _png_text(path).get(SMALLEST_TEXT_KEY)
    elif path.suffix == ".svg":
        found = re.search(re.escape(SMALLEST_TEXT_KEY) + r"=([0-9.]+)", path.read_text())
        dpi, recorded = 96, found and found.group(1)
    else:
        return None, None
    if not dpi or recorded is None:
        return None, None
    points = float(recorded)
    return points, points / 72 * dpi * shown_w / natural_w


# Runs in the page: wait for MathJax, then count formulas and look for untypeset TeX.
MEASURE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const main = document.querySelector('main') || document.body;
  // widgets (progress bars) saved with the notebook: the manager renders each view, asynchronously
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  const roots = () => Array.from(document.querySelectorAll('.jupyter-widgets'))
      .filter(w => !w.parentElement.closest('.jupyter-widgets')).length;
  for (let i = 0; i < 50 && roots() < views; i++) { await new Promise(r => setTimeout(r, 100)); }
  const maths = Array.from(main.querySelectorAll('.math'));
  const typeset = maths.filter(m => m.querySelector('mjx-container')).length;
  // TeX delimiters left in text a reader sees (code and typeset math excluded)
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT, {acceptNode: n =>
      n.parentElement.closest('pre, code, script, style, textarea, mjx-container, .highlight')
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const m = n.textContent.match(/\\\\\\(|\\\\\\)|\\\\\\[|\\\\\\]|\\$\\$/);
    if (m) raw.push(n.textContent.trim().slice(0, 80));
  }
  const wide = el => el.scrollWidth > el.clientWidth + 1;
  const count = sel => Array.from(main.querySelectorAll(sel));
  const prose = count('p, li, h1, h2, h3, h4, dd, dt, blockquote').filter(wide);
  const code = count('div.highlight pre').filter(p => !p.closest('div.cell_output, div.output'));  // code, not outputs
  // a block whose lines all keep to 88 characters must fit the column (zoo.css sizes it so)
  const short = code.filter(p => Math.max(...p.textContent.split('\\n').map(l => l.length)) <= 88);
  const outputs = count('div.cell_output pre, div.output pre');
  const tables = count('table');
  // a table scrolls inside its wrapper, so compare it with the column it sits in
  const column = (main.querySelector('article') || main).clientWidth;
  const figures = Array.from(main.querySelectorAll('div.cell_output img, figure img, img.zoo-figure'))
      .filter(i => i.naturalWidth > 0).map(i => ({
      src: i.getAttribute('src'), natural_w: i.naturalWidth, shown_w: i.getBoundingClientRect().width,
      alt: i.getAttribute('alt') || ''}));
  const body_px = parseFloat(getComputedStyle(main.querySelector('p') || main).fontSize);
  return {widgets: views, widgets_rendered: roots(), body_px: body_px, formulas: maths.length, formulas_typeset: typeset, raw: raw,
          overflow_prose: prose.map(p => p.textContent.trim().slice(0, 80)),
          code_blocks: code.length, overflow_code: code.filter(wide).length, long_line_blocks: code.length - short.length,
          overflow_short_code: short.filter(wide).map(p => p.textContent.trim().slice(0, 80)),
          output_blocks: outputs.length, overflow_output: outputs.filter(wide).length,
          tables: tables.length, overflow_table: tables.filter(t => t.scrollWidth > column + 1).length,
          page_scrolls: document.scrollingElement.scrollWidth > window.innerWidth + 1,
          figures: figures};
}"""


def test_every_toc_page_was_built(book):
    missing = [p for p in PAGES if not (book / f"{p}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline_in_chromium(book, browser, page):
    path = book / f"{page}.html"
    inside = book.resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    refused: list[str] = []

    def gate(route):
        url = route.request.url
        if url.startswith(inside + "/") or url.startswith(("data:", "blob:")):
            requests.append(url)
            route.continue_()
        else:  # anything that leaves the build: the network, or files outside it
            refused.append(url)
            route.abort("blockedbyclient")

    context = browser.new_context(viewport=VIEWPORT)
    context.route("**/*", gate)
    tab = context.new_page()
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.goto(path.as_uri(), wait_until="load")
    title = tab.title()
    assert title and "404" not in title

    images = tab.evaluate("""() => Array.from(document.images).map(i =>
        ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))""")
    broken = [i["src"] for i in images if not i["ok"]]
    assert not broken, f"images that did not load or decode: {broken}"

    bad = tab.evaluate("""() => Array.from(document.querySelectorAll(
        '.output.traceback, .output.error, div.cell_output .traceback')).length""")
    text = tab.inner_text("main") if tab.query_selector("main") else tab.inner_text("body")
    assert bad == 0 and "Traceback (most recent call last)" not in text, "the page shows an error output"

    html = path.read_text()
    for href, target, anchor in _internal_targets(html, path):
        assert target.exists(), f"broken link {href!r} on {page}"
        if anchor and target.suffix == ".html":
            assert f'id="{anchor}"' in target.read_text(), f"link {href!r} on {page}: no #{anchor} there"

    seen = tab.evaluate(MEASURE_JS)
    if os.environ.get("ZOO_SCREENSHOTS") == "1":
        tab.screenshot(path=str(SHOTS / (page.replace("/", "__") + ".png")), full_page=True)
    context.close()

    figures = []
    for f in seen["figures"]:
        src = (path.parent / unquote(urlparse(f["src"]).path)).resolve()
        points, px = _figure_text_px(src, f["shown_w"], f["natural_w"])
        figures.append({**f, "page": page, "body_px": seen["body_px"], "file": src.name,
                        "smallest_pt": points, "text_px": px})
    REPORT[page] = {"requests": len(requests), "external_refused": len(refused),
                    "formulas": seen["formulas"], "formulas_typeset": seen["formulas_typeset"],
                    "widgets": seen["widgets"], "widgets_rendered": seen["widgets_rendered"],
                    "raw_delimiters": len(seen["raw"]), "overflow_prose": len(seen["overflow_prose"]),
                    "code_blocks": seen["code_blocks"], "overflow_code": seen["overflow_code"],
                    "long_line_blocks": seen["long_line_blocks"],
                    "output_blocks": seen["output_blocks"], "overflow_output": seen["overflow_output"],
                    "tables": seen["tables"], "overflow_table": seen["overflow_table"],
                    "page_scrolls": seen["page_scrolls"], "figures": figures}

    assert not refused, f"{page} asked for things outside the build (offline they fail): {sorted(set(refused))}"
    assert not errors, f"JavaScript errors: {errors}"
    assert seen["formulas_typeset"] == seen["formulas"], (
        f"{page}: {seen['formulas'] - seen['formulas_typeset']} of {seen['formulas']} formulas not typeset")
    assert not seen["raw"], f"{page}: TeX left untypeset in the text: {seen['raw'][:5]}"
    assert seen["widgets_rendered"] == seen["widgets"], (
        f"{page}: {seen['widgets_rendered']} of {seen['widgets']} saved widgets (progress bars) rendered")
    assert not seen["overflow_prose"], f"{page}: prose wider than its column: {seen['overflow_prose'][:5]}"
    assert not seen["page_scrolls"], f"{page}: the page itself scrolls sideways at {VIEWPORT['width']} px"
    assert not seen["overflow_short_code"], (
        f"{page}: code blocks with lines of at most 88 characters still scroll: {seen['overflow_short_code'][:3]}")
    untagged = [f["alt"][:60] for f in figures if f["file"].endswith((".png", ".svg")) and f["text_px"] is None]
    assert not untagged, (f"{page}: figures that do not record their smallest text (the chapter must call "
                          f"zoolib.plots.use_book_figures()): {untagged}")
    small = [f"{f['alt'][:50]!r}: {f['smallest_pt']:g} pt shows as {f['text_px']:.1f} px "
             f"({f['natural_w']:.0f} px wide, shown at {f['shown_w']:.0f})"
             for f in figures if f["text_px"] is not None and f["text_px"] < MIN_TEXT_SHARE * seen["body_px"]]
    assert not small, (f"{page}: figure text under {MIN_TEXT_SHARE:.0%} of the {seen['body_px']:.0f} px body "
                       f"text (a narrower figure or larger text fixes it): " + "; ".join(small))


def test_chapters_offer_downloads_and_launch_buttons(book):
    chapters = [p for p in PAGES if p.startswith("notebooks/")]
    for page in chapters:
        html = (book / f"{page}.html").read_text()
        assert "_sources/" in html and ".ipynb" in html, f"{page}: no notebook download"
        assert "colab.research.google.com" in html and "mybinder.org" in html, f"{page}: no launch buttons"


def test_the_book_carries_its_own_mathjax_and_widget_manager(book):
    # offline means the assets are in the build, not merely that this machine had them cached
    for asset in ("_static/mathjax/tex-chtml.js", "_static/vendor/require.js", "_static/vendor/widgets/embed-amd.js"):
        assert (book / asset).is_file(), f"{asset} is missing from the build"
    for page in PAGES:
        html = (book / f"{page}.html").read_text()
        remote = re.findall(r'<script[^>]+src="(https?:[^"]+)"', html)
        assert not remote, f"{page} loads scripts from the network: {remote}"


if __name__ == "__main__":  # `make test` asks which Chromium the test will use
    found = find_chromium()
    print(found or HOW_TO_GET_CHROMIUM, file=sys.stdout if found else sys.stderr)
    sys.exit(0 if found else 1)
