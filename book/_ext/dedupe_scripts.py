"""Drop duplicate <script> tags from every page.

With Jupyter Book 1.0.4 and sphinx-thebe 0.3.1, sphinx-thebe's configuration script
(``const THEBE_JS_URL = ...``) is added to each page twice, and the second copy throws
"Identifier 'THEBE_JS_URL' has already been declared" in every browser. The book's
browser test caught it; this removes exact duplicates and nothing else.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # the two copies differ only in filename: None for one, "" for the other
        key = (getattr(script, "filename", str(script)) or "",
               tuple(sorted((getattr(script, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
