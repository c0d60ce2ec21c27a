"""Sphinx extension: fixes for what the accessibility audit (axe-core, tests/test_browser.py) found in the
pages the theme and Sphinx write.

- ``summary-name`` (serious): the sidebar's expand/collapse toggles are ``<summary>`` elements holding
  only a chevron icon, so a screen reader announces a nameless button. Each gets an ``aria-label``
  naming the chapter whose sections it shows.
- ``aria-required-children`` (critical), ``aria-deprecated-role`` and ``aria-allowed-role`` (minor): Sphinx
  writes the bibliography as ``role="list"`` holding entries with the deprecated ``doc-biblioentry``
  role, which a list may not contain; the entries become ``role="listitem"``.
- no focus indicator (found by the keyboard test): the article header's buttons lose Bootstrap's focus
  ring under the theme; ``a11y_static/a11y-fixes.css`` gives them one.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from markupsafe import Markup

# a sidebar entry with sections: the chapter's link, then <details> whose <summary> is the toggle
_TOGGLE = re.compile(r'(<a\b[^>]*>(?P<title>(?:(?!</?a\b).)*?)</a>\s*<details\b[^>]*>\s*)<summary>', re.S)


def _label_toggles(text: str) -> str:
    def label(m: re.Match) -> str:
        title = html.unescape(re.sub(r"<[^>]+>", "", m.group("title"))).strip()
        return f'{m.group(1)}<summary aria-label="{html.escape(f"Sections of {title}", quote=True)}">'

    return _TOGGLE.sub(label, text)


def _fix_page(app, pagename, templatename, context, doctree):
    toctree = context.get("generate_toctree_html")
    if toctree is not None and not getattr(toctree, "_labels_toggles", False):
        def labelled(*args, **kwargs):
            return Markup(_label_toggles(str(toctree(*args, **kwargs))))

        labelled._labels_toggles = True
        context["generate_toctree_html"] = labelled
    if "body" in context:
        context["body"] = context["body"].replace('role="doc-biblioentry"', 'role="listitem"')


def _add_static(app, config):
    config.html_static_path.append(str(Path(__file__).parent / "a11y_static"))


def setup(app):
    app.connect("config-inited", _add_static)
    app.add_css_file("a11y-fixes.css")
    # after the theme's own html-page-context handler, which puts generate_toctree_html in the context
    app.connect("html-page-context", _fix_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
