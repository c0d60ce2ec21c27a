"""Sphinx extension: drop repeated inline <script> blocks from every page.

Under Jupyter Book 1.0.4 sphinx-thebe registers its inline configuration twice, so each page declared
`const THEBE_JS_URL` twice and the browser logged a SyntaxError (tests/test_browser.py catches it).
"""


def _dedupe(app, pagename, templatename, context, doctree):
    if "script_files" not in context:
        return
    seen, kept = set(), []
    for script in context["script_files"]:
        # the same file or inline body, whatever priority each copy was registered with
        # (an inline script's filename is None in one copy and "" in the other)
        key = (getattr(script, "filename", script) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    # in place: the list is the builder's own, which later handlers (MathJax's) append to
    context["script_files"][:] = kept


def setup(app):
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", _dedupe, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
