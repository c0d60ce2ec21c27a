"""The built book as readers use it, in a real browser (headless Chromium driven by Playwright).

The book built by ``built_book`` (tests/conftest.py, one build per run) is served on localhost and
every page is opened with the network closed: anything that tries to leave localhost is blocked and
counted. For each page the crawl records JavaScript errors, failed requests, maths left untypeset,
images that did not load, links and anchors, and runs the axe-core accessibility audit (the
engine shipped inside the Python package ``axe-playwright-python``, injected into the page: nothing
is fetched); the tests below then check one thing each. The audit's findings, every impact, are
written to a report (``ATTNKIT_A11Y_REPORT``, by default ``_build/a11y-report.md``); serious and
critical ones fail the test. Keyboard use (skip link, focus order, navigation, search) is checked
by pressing keys, as a reader would.

Needs Chromium (``apt-get install chromium chromium-driver`` on Debian/Ubuntu) and the Python
package ``playwright`` (the ``test`` extra; never ``playwright install``: the system Chromium is
used). In CI (``CI`` set) a missing browser fails; elsewhere it is skipped with what to install.

Screenshots for a look by eye: ``ATTNKIT_SCREENSHOTS=/some/dir pytest tests/test_browser.py``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# same worker as the book build (tests/conftest.py): the book is built once per run
pytestmark = pytest.mark.xdist_group("book")

INSTALL_HINT = (
    "the browser test needs Chromium and Playwright's Python package: "
    "`sudo apt-get install chromium chromium-driver` "
    "(Debian/Ubuntu; or set CHROMIUM=/path/to/chrome) "
    "and `pip install -e '.[test]'` (do not run `playwright install`)"
)
# Chromium flags for a closed network (no background fetches, no QUIC, no first-run pages)
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 60_000
A11Y_REPORT = Path(
    os.environ.get("ATTNKIT_A11Y_REPORT", ROOT / "_build" / "a11y-report.md")
)
# what fails the audit; "moderate" and "minor" findings are listed in the report
BLOCKING_IMPACTS = ("serious", "critical")

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")
COLAB = CONFIG["launch_buttons"]["colab_url"].rstrip("/")

# text left in the page when MathJax did not typeset it (outside code)
RAW_MATH = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac\{|\$[^\s$][^$\n]{0,200}?[^\s$\\]\$"
)

# collected in the page after MathJax has finished
PAGE_PROBE = """
async () => {
  const result = {mathjax: null, math: 0, untypeset: [], merrors: [], raw: [], images: [],
                  links: [], ids: []};
  const nodes = document.querySelectorAll('.math');
  result.math = nodes.length;
  if (nodes.length) {
    const t0 = Date.now();
    const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
    while (!ready() && Date.now() - t0 < 30000) {
      await new Promise(r => setTimeout(r, 100));
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
      result.mathjax = MathJax.version;
    }
    for (const n of nodes) {
      if (!n.querySelector('mjx-container')) result.untypeset.push(n.textContent.slice(0, 80));
    }
  }
  for (const e of document.querySelectorAll('mjx-merror')) {
    result.merrors.push(e.textContent.slice(0, 80));
  }
  const skip = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'MJX-CONTAINER',
                        'MJX-ASSISTIVE-MML']);
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let p = node.parentElement; p; p = p.parentElement) {
        if (skip.has(p.tagName) || p.classList.contains('highlight')) {
          return NodeFilter.FILTER_REJECT;
        }
      }
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode.nodeValue);
  result.text = texts.join(' ');
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(img => {
    img.loading = 'eager';
    return img.complete ? null
      : new Promise(r => { img.onload = img.onerror = r; setTimeout(r, 20000); });
  }));
  for (const img of imgs) {
    result.images.push({src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0,
                        width: img.naturalWidth, shown: img.getBoundingClientRect().width});
  }
  // a term to search for: the first glossary term the page links, else its title's longest word
  const term = document.querySelector('main a[href*="glossary.html#term-"]');
  const h1 = (document.querySelector('main h1') || {}).textContent || '';
  const words = h1.match(/[A-Za-z]{4,}/g) || [];
  const longest = words.sort((a, b) => b.length - a.length)[0] || '';
  result.term = term ? term.textContent.trim() : longest;
  for (const a of document.querySelectorAll('a[href]')) result.links.push(a.href);
  for (const e of document.querySelectorAll('[id]')) result.ids.push(e.id);
  for (const e of document.querySelectorAll('a[name]')) result.ids.push(e.getAttribute('name'));
  return result;
}
"""


def _chromium_path() -> str | None:
    for candidate in (
        os.environ.get("CHROMIUM"),
        "chromium",
        "chromium-browser",
        "google-chrome",
    ):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    path = _chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if path is None or sync_playwright is None:
        missing = (
            "no Chromium found"
            if path is None
            else "the Python package playwright is missing"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: {INSTALL_HINT}")
        pytest.skip(f"{missing}: {INSTALL_HINT}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book):
    """The built book on http://127.0.0.1:<port>/ for the duration of the module."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _pages(built_book: Path) -> list[str]:
    return sorted(
        p.relative_to(built_book).as_posix()
        for p in built_book.rglob("*.html")
        if not p.relative_to(built_book).parts[0].startswith("_")
    )


def _notebook_pages(built_book: Path) -> list[str]:
    """Chapter and exercise pages: those built from .ipynb files."""
    return [p for p in _pages(built_book) if (ROOT / p).with_suffix(".ipynb").exists()]


@pytest.fixture(scope="module")
def crawl(browser, site, built_book):
    """Open every page once, offline; return {page: what the page showed}."""
    blocked: list[str] = []
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, service_workers="block"
    )
    context.set_default_timeout(TIMEOUT_MS)

    def only_localhost(route):
        if route.request.url.startswith(site) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_localhost)
    shots = os.environ.get("ATTNKIT_SCREENSHOTS")
    report = {}
    for rel in _pages(built_book):
        refresh = re.search(
            r'http-equiv="refresh"[^>]*url=([^"]+)"',
            (built_book / rel).read_text(),
            re.I,
        )
        if (
            refresh
        ):  # a redirect page (index.html): its target must resolve, nothing else to see
            target = urllib.parse.urljoin(site + rel, refresh.group(1).strip())
            report[rel] = dict(
                math=0,
                mathjax=None,
                untypeset=[],
                merrors=[],
                text="",
                images=[],
                ids=[],
                links=[target],
                errors=[],
                failed=[],
                blocked=[],
                term="",
                axe=[],
            )
            continue
        page = context.new_page()
        errors: list[str] = []
        failed: list[str] = []
        page.on(
            "console",
            lambda m, errors=errors: (
                errors.append(m.text) if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.on(
            "requestfailed",
            lambda r, failed=failed: failed.append(f"{r.url} ({r.failure})"),
        )
        page.on(
            "response",
            lambda r, failed=failed: (
                failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None
            ),
        )
        n_blocked = len(blocked)
        page.goto(site + rel, wait_until="load")
        info = page.evaluate(PAGE_PROBE)
        # what the page did by itself, before the audit (which lasts long enough for the browser
        # to ask for a favicon.ico, and reads the stylesheets again)
        info.update(
            errors=list(errors), failed=list(failed), blocked=blocked[n_blocked:]
        )
        t0 = time.perf_counter()
        info.update(
            axe=_axe(page, code=rel in AUDIT_CODE_ON), axe_s=time.perf_counter() - t0
        )
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(Path(shots) / (rel.replace("/", "__")[:-5] + ".png")),
                full_page=True,
            )
        report[rel] = info
        page.close()
    context.close()
    return report


# Highlighted code blocks are thousands of coloured token spans, and auditing them (colour
# contrast above all) is most of axe's time on a chapter. Every block on every page is rendered
# by the same Pygments theme and CSS, and tests/test_listings.py keeps every code line within
# the page width (no scrolling regions), so the blocks are audited on one chapter page and one
# exercise page, and excluded elsewhere; everything else is audited on every page.
AUDIT_CODE_ON = {
    "book/05-sparse.html",
    "exercises/ch03-masked-softmax/ch03-masked-softmax.html",
}


def _axe(page, code: bool = True) -> list[dict]:
    """axe-core's violations on the page (all rules axe runs by default: WCAG 2.x A and AA, best
    practices), each as {id, impact, help, nodes: [CSS selectors]}; without ``code``, the
    highlighted code blocks are left out (see AUDIT_CODE_ON)."""
    from axe_playwright_python.sync_playwright import Axe

    context = None if code else {"exclude": [["div.highlight"]]}
    results = (
        Axe()
        .run(page, context=context, options={"resultTypes": ["violations"]})
        .response
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [" ".join(map(str, n["target"])) for n in v["nodes"]],
        }
        for v in results["violations"]
    ]


def _fail_if(problems: dict, what: str):
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"{what}:\n" + "\n".join(
        f"  {k}: {v[:5]}" for k, v in sorted(problems.items())
    )


def test_every_page_loads_without_javascript_errors_or_failed_requests(crawl):
    assert len(crawl) >= 5, f"only {len(crawl)} pages built"
    _fail_if({p: i["errors"] for p, i in crawl.items()}, "JavaScript errors")
    _fail_if({p: i["failed"] for p, i in crawl.items()}, "requests that failed")


def test_the_book_reads_offline(crawl):
    """Nothing a page loads comes from outside the build (MathJax included)."""
    _fail_if(
        {p: i["blocked"] for p, i in crawl.items()}, "requests that left localhost"
    )


def test_every_equation_is_typeset_by_mathjax(crawl):
    with_math = {p: i for p, i in crawl.items() if i["math"]}
    assert any(p.startswith("book/0") for p in with_math), (
        "no chapter has any maths: is MathJax output missing?"
    )
    _fail_if(
        {
            p: [] if i["mathjax"] else ["MathJax never started"]
            for p, i in with_math.items()
        },
        "MathJax",
    )
    _fail_if(
        {p: i["untypeset"] for p, i in with_math.items()}, "maths MathJax left as text"
    )
    _fail_if(
        {p: i["merrors"] for p, i in crawl.items()},
        "MathJax errors (unknown macros, bad TeX)",
    )
    _fail_if(
        {p: RAW_MATH.findall(i["text"]) for p, i in crawl.items()},
        "raw TeX delimiters left in the text",
    )


def test_every_image_loads(crawl):
    _fail_if(
        {
            p: [im["src"] for im in i["images"] if not im["ok"]]
            for p, i in crawl.items()
        },
        "images that did not load",
    )
    chapters = [
        p for p in crawl if re.match(r"book/\d\d-", p) and not p.startswith("book/00")
    ]
    assert chapters and all(crawl[p]["images"] for p in chapters), (
        "a chapter page shows no image"
    )


def test_every_internal_link_resolves(crawl, site):
    statuses: dict[str, tuple[int, str]] = {}

    def fetch(url: str) -> tuple[int, str]:
        if url not in statuses:
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    body = (
                        r.read().decode("utf-8", "replace")
                        if url.endswith((".html", "/"))
                        else ""
                    )
                    statuses[url] = (r.status, body)
            except urllib.error.HTTPError as e:
                statuses[url] = (e.code, "")
        return statuses[url]

    broken: dict[str, list[str]] = {}
    checked = 0
    for page, info in crawl.items():
        for href in info["links"]:
            if not href.startswith(site):
                continue
            url, _, fragment = href.partition("#")
            checked += 1
            if url == site + page and fragment:
                ids = set(info["ids"])
            else:
                status, body = fetch(url)
                if status != 200:
                    broken.setdefault(page, []).append(f"{href} (HTTP {status})")
                    continue
                target = url[len(site) :] or "index.html"
                ids = (
                    set(crawl[target]["ids"])
                    if target in crawl
                    else set(re.findall(r'\bid="([^"]+)"', body))
                )
            if fragment and urllib.parse.unquote(fragment) not in ids:
                broken.setdefault(page, []).append(f"{href} (no anchor #{fragment})")
    assert checked > 50, f"only {checked} internal links found"
    _fail_if(broken, "internal links that do not resolve")


def test_launch_and_download_buttons_on_notebook_pages(crawl, built_book):
    pages = _notebook_pages(built_book)
    assert any(p.startswith("book/") for p in pages) and any(
        p.startswith("exercises/") for p in pages
    )
    slug = REPO_URL.removeprefix("https://github.com/")
    missing = {}
    for rel in pages:
        source = rel[:-5] + ".ipynb"
        colab = f"{COLAB}/github/{slug}/blob/{BRANCH}/{source}"
        download = f"_sources/{source}"
        links = crawl[rel]["links"]
        missing[rel] = [
            what
            for what, ok in (
                (f"Colab launch button ({colab})", colab in links),
                (
                    f"download button ({download})",
                    any(link.endswith(download) for link in links),
                ),
            )
            if not ok
        ]
    _fail_if(missing, "buttons missing")


def _write_a11y_report(crawl: dict) -> Path:
    seconds = sum(i.get("axe_s", 0.0) for i in crawl.values())
    lines = [
        "# Accessibility audit (axe-core) of the built book",
        "",
        f"{len(crawl)} pages, {seconds:.0f} s of auditing; serious and critical ones fail.",
        "",
    ]
    found = [(p, v) for p, i in sorted(crawl.items()) for v in i["axe"]]
    if not found:
        lines.append("No violations on any page.")
    for page, v in found:
        lines.append(
            f"- `{page}`: **{v['id']}** ({v['impact']}): {v['help']}; "
            f"{len(v['nodes'])} element(s): {', '.join(f'`{n}`' for n in v['nodes'][:5])}"
        )
    A11Y_REPORT.parent.mkdir(parents=True, exist_ok=True)
    A11Y_REPORT.write_text("\n".join(lines) + "\n")
    A11Y_REPORT.with_suffix(".json").write_text(
        json.dumps({p: i["axe"] for p, i in crawl.items()}, indent=1)
    )
    return A11Y_REPORT


def test_accessibility_audit_finds_nothing_serious_on_any_page(crawl):
    """axe-core on every page: no serious or critical violation; the rest listed in the report."""
    report = _write_a11y_report(crawl)
    audited = [p for p, i in crawl.items() if i["text"]]
    assert len(audited) >= 5, "the audit ran on too few pages"
    assert AUDIT_CODE_ON <= set(audited), "the pages whose code blocks are audited moved"
    _fail_if(
        {
            p: [
                f"{v['id']} ({v['impact']}): {v['nodes'][:3]}"
                for v in i["axe"]
                if v["impact"] in BLOCKING_IMPACTS
            ]
            for p, i in crawl.items()
        },
        f"accessibility violations (all findings: {report})",
    )


def test_every_image_has_a_text_alternative_that_says_what_it_shows(crawl, built_book):
    """Figures carry alt text describing them, not a file name (attnkit.plot.describe_figure,
    through book/_ext/figure_alt.py)."""
    bad = {}
    for page in crawl:
        html = (built_book / page).read_text()
        for tag in re.findall(
            r"<img\b[^>]*_images/[^>]*>", html
        ):  # the book's figures, not the theme's icons
            alt = re.search(r'\balt="([^"]*)"', tag)
            text = alt.group(1).strip() if alt else ""
            if (
                len(text) < 20
                or re.search(r"\.(png|jpe?g|svg|gif)$", text)
                or "/" in text.split(" ")[0]
            ):
                bad.setdefault(page, []).append(f"{tag[:100]} (alt {text[:60]!r})")
    _fail_if(bad, "images without a text alternative that says what they show")


def test_search_finds_a_term_from_each_chapter(browser, site, built_book, crawl):
    """For each chapter: its first glossary term (else its title's longest word) finds it."""
    chapters = [p for p in _notebook_pages(built_book) if p.startswith("book/")]
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(site) else route.abort()
        ),
    )
    page = context.new_page()
    not_found = {}
    try:
        for rel in chapters:
            term = crawl[rel]["term"]
            assert term, f"{rel}: no term to search for"
            page.goto(site + "search.html?q=" + urllib.parse.quote(term))
            page.wait_for_function(
                "() => { const s = document.querySelector('#search-results'); "
                "return s && /found|did not match/i.test(s.textContent); }"
            )
            hits = page.eval_on_selector_all(
                "#search-results ul.search li a", "as => as.map(a => a.href)"
            )
            if not any(h.split("#")[0].split("?")[0] == site + rel for h in hits):
                not_found[rel] = [f"searched {term!r}: {len(hits)} hits, not this page"]
    finally:
        context.close()
    _fail_if(not_found, "search")


# ---------------------------------------------------------------- keyboard

# the element that has the focus, in words, and whether a reader can see it and where it sits
FOCUSED = r"""
() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  // the element or what it draws (a <summary> shows only its toggle icon, which has the ring)
  const parts = [e, ...e.querySelectorAll('*')];
  const shown = p => { const r = p.getBoundingClientRect(), s = getComputedStyle(p);
                       return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'; };
  const ringed = p => { const s = getComputedStyle(p);
                        const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
                        // a shadow drawn in some colour and size (not "0 0 0 0 transparent")
                        const lengths = s.boxShadow.replace(/rgba?\([^)]*,\s*0\)/g, '')
                                                   .replace(/rgba?\([^)]*\)/g, '');
                        const shadow = s.boxShadow !== 'none' && /[1-9]/.test(lengths);
                        return outline || shadow; };
  const all = Array.from(document.querySelectorAll('*'));
  const name = (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 60);
  return {tag: e.tagName, text: name,
          href: e.href || null, cls: e.className.toString().slice(0, 80), index: all.indexOf(e),
          visible: parts.some(shown), ring: parts.some(p => shown(p) && ringed(p))};
}
"""


@pytest.fixture
def keyboard_page(browser, site):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, service_workers="block"
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(site) else route.abort()
        ),
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def _tab_through(page, limit: int = 600) -> list[dict]:
    """Press Tab from the top of the page until the focus leaves the page or comes round again."""
    stops: list[dict] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        f = page.evaluate(FOCUSED)
        if f is None or (stops and f["index"] == stops[0]["index"]):
            break
        stops.append(f)
    return stops


def _focus_problems(stops: list[dict]) -> list[str]:
    """Tab stops a reader cannot see, that show no focus ring, or that jump back in the page."""
    problems = [f"invisible focus: {s}" for s in stops if not s["visible"]]
    problems += [
        f"no focus indicator: {s}" for s in stops if s["visible"] and not s["ring"]
    ]
    problems += [
        f"focus jumps back in the document: {a['text']!r} -> {b['text']!r}"
        for a, b in zip(stops, stops[1:])
        if b["index"] < a["index"]
    ]
    return problems


def test_keyboard_focus_order_skip_link_and_navigation(keyboard_page, site):
    """On a chapter page, Tab reaches everything in document order, each stop visible and with a
    focus ring; the first stop skips to the content; the table of contents and "next" work from
    the keyboard."""
    page = keyboard_page
    page.goto(site + "book/02-scoring.html", wait_until="load")
    stops = _tab_through(page)
    assert len(stops) > 20, f"only {len(stops)} focus stops on a chapter page"
    assert "skip" in stops[0]["cls"] + stops[0]["text"].lower(), (
        f"the first Tab stop is not a skip link: {stops[0]}"
    )
    problems = _focus_problems(stops)
    assert not problems, "\n".join(problems[:10])
    hrefs = [s["href"] or "" for s in stops]
    assert any(h.endswith("book/01-soft-lookup.html") for h in hrefs), (
        "the table of contents is not reachable by Tab"
    )
    # the skip link takes the focus to the content
    page.goto(site + "book/02-scoring.html", wait_until="load")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("() => location.hash") == "#main-content"
    # "next" by keyboard alone: Tab to it, Enter
    page.goto(site + "book/02-scoring.html", wait_until="load")
    for _ in range(len(stops)):
        page.keyboard.press("Tab")
        f = page.evaluate(FOCUSED)
        if f and f["href"] and "right-next" in f["cls"]:
            break
    else:
        pytest.fail("the link to the next page is not reachable by Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.split("#")[0] != site + "book/02-scoring.html", (
        "Enter on the next-page link did not navigate"
    )


def test_search_by_keyboard(keyboard_page, site):
    """Ctrl+K opens the search box with the focus in it; typing a term and Enter give the search
    page, whose first result Tab reaches and Enter opens."""
    page = keyboard_page
    page.goto(site + "book/03-masked-softmax.html", wait_until="load")
    page.keyboard.press("Control+k")
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.name === 'q'"
    )
    page.keyboard.type("softmax")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "search.html" in page.url
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results'); "
        "return s && /found|did not match/i.test(s.textContent); }"
    )
    first = page.eval_on_selector("#search-results ul.search li a", "a => a.href")
    results = page.url
    for _ in range(400):
        page.keyboard.press("Tab")
        f = page.evaluate(FOCUSED)
        if f and f["href"] == first:
            break
    else:
        pytest.fail("the first search result is not reachable by Tab")
    assert f["visible"] and f["ring"], f"the focused result is not visibly focused: {f}"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.split("#")[0].split("?")[0] == first.split("#")[0].split("?")[0]
    # the whole results page by Tab, from the top: in order, every stop visible and ringed
    page.goto(results, wait_until="load")
    page.wait_for_selector("#search-results ul.search li a")
    problems = _focus_problems(_tab_through(page))
    assert not problems, "\n".join(problems[:10])


# what the course relies on (issue: bibliography), as surnames shown on the built bibliography page
RELIED_ON = [
    "Bahdanau",
    "Vaswani",
    "Child",
    "Beltagy",
    "Zaheer",
    "Kitaev",
    "Katharopoulos",
    "Choromanski",
    "Peng",
    "Xiong",
    "Tay",
    "Zhang",
]


def test_bibliography_page_lists_the_papers_the_course_relies_on(crawl):
    text = crawl["book/bibliography.html"]["text"]
    assert not [name for name in RELIED_ON if name not in text], (
        "missing from the bibliography"
    )
    for title in (
        "Synthesizer",
        "Efficient transformers",
        "Long range arena",
        "Dive into deep learning",
    ):
        assert title.lower() in text.lower(), f"{title!r} missing from the bibliography"


def test_glossary_gives_each_term_its_chinese_name_and_chapters_link_it(
    crawl, built_book
):
    html = (built_book / "book" / "glossary.html").read_text()
    terms = [
        re.sub(r"<[^>]+>", "", t).strip()
        for t in re.findall(r"<dt[^>]*>(.*?)</dt>", html, re.S)
    ]
    assert len(terms) >= 10, f"only {len(terms)} glossary terms"
    assert not [t for t in terms if not re.search(r"[\u4e00-\u9fff]", t)], (
        "glossary terms without a Chinese name"
    )
    chapters = [p for p in _notebook_pages(built_book) if p.startswith("book/")]
    unlinked = [
        p
        for p in chapters
        if not any("glossary.html#term-" in link for link in crawl[p]["links"])
    ]
    assert not unlinked, f"chapters that link no glossary term: {unlinked}"
