"""The rendered book, opened page by page in headless Chromium (Debian's ``chromium``).

The book is built once per session with ``-W --keep-going`` from the notebooks' stored
outputs (``execute_notebooks: auto``, so a page without stored outputs, like the errata
page, is executed). nbval, in the same ``make test``, has re-run every chapter and checked
that those stored outputs are what the code produces. A full-page screenshot of every page
is kept in ``_build/html/_screenshots``.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = HTML / "_screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            pages.append(chapter["file"])
            pages += [s["file"] for s in chapter.get("sections", [])]
    return [re.sub(r"\.(md|ipynb)$", "", p) for p in pages]


PAGES = toc_pages()


@pytest.fixture(scope="session")
def book() -> Path:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "auto"
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
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser test needs Debian's chromium: `make test` installs it "
                    "(apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _internal_targets(html: str, page_file: Path) -> list[tuple[str, Path, str]]:
    out = []
    for href in re.findall(r'<a[^>]+href="([^"]+)"', html):
        parsed = urlparse(href)
        if parsed.scheme or href.startswith(("mailto:", "//", "javascript:")):
            continue
        target = page_file if not parsed.path else (page_file.parent / unquote(parsed.path)).resolve()
        out.append((href, target, parsed.fragment))
    return out


def test_every_toc_page_was_built(book):
    missing = [p for p in PAGES if not (book / f"{p}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium(book, browser, page):
    path = book / f"{page}.html"
    errors: list[str] = []
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.goto(path.as_uri(), wait_until="load")
    title = tab.title()
    assert title and "404" not in title

    images = tab.evaluate("""() => Array.from(document.images).map(i =>
        ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))""")
    broken = [i["src"] for i in images if not i["ok"] and not (i["src"] or "").startswith("http")]
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

    tab.screenshot(path=str(SHOTS / (page.replace("/", "__") + ".png")), full_page=True)
    tab.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_chapters_offer_downloads_and_launch_buttons(book):
    chapters = [p for p in PAGES if p.startswith("notebooks/")]
    for page in chapters:
        html = (book / f"{page}.html").read_text()
        assert "_sources/" in html and ".ipynb" in html, f"{page}: no notebook download"
        assert "colab.research.google.com" in html and "mybinder.org" in html, f"{page}: no launch buttons"
