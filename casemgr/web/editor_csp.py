"""The Content-Security-Policy of the diagram editors' pages.

bpmn-js and dmn-js write a few style attributes from HTML strings (dmn-js's bpmn.io logo
and the lightbox it opens, the drag image of a table column; bpmn-js's align and
distribute icons). The app's policy (``style-src 'self'``) refuses them and the browser logs
an error for each. Only these pages, and only these exact attribute values, are allowed:
``'unsafe-hashes'`` with their SHA-256 hashes, never ``'unsafe-inline'`` and nothing for
scripts. A dependency upgrade that changes one shows up as a CSP error in
tests/e2e/test_editor_csp.py.
"""

from __future__ import annotations

import base64
import hashlib

from flask import Response, current_app

from casemgr.web.security import DEFAULT_CSP

# The attribute values exactly as the libraries write them (whitespace included).
_LIGHTBOX = (
    "z-index: 1001;position: fixed;top: 0;left: 0;right: 0;bottom: 0",
    "width: 100%;height: 100%;background: rgba(40,40,40,0.2)",
    "position: absolute;left: 50%;top: 40%;transform: translate(-50%);width: 260px;"
    "padding: 10px;background: white;box-shadow: 0 1px 4px rgba(0,0,0,0.3);"
    "font-family: Helvetica, Arial, sans-serif;font-size: 14px;display: flex;line-height: 1.3",
    "margin: 15px 20px 15px 10px; align-self: center;",
)
INLINE_STYLES: dict[str, tuple[str, ...]] = {
    "dmn": (
        "position: absolute; bottom: 15px; right: 15px; z-index: 100;",  # the logo's link
        "vertical-align:middle",  # the logo's svg
        *_LIGHTBOX,  # "powered by bpmn.io", opened by a click on the logo
        "\n          visibility: hidden;\n          position: fixed;\n          top: -10000px\n"
        "      ",  # the drag image of a column or row
    ),
    "bpmn": (  # the align / distribute icons of the context pad and its menu
        "stroke:currentColor;stroke-width:100;stroke-linecap:round;",
        "fill:none;stroke:currentColor;stroke-width:100;",
        "fill:currentColor;stroke:currentColor;stroke-width:100;opacity:.5;",
        "fill:none;stroke:currentColor;stroke-width:100;stroke-linejoin:round;",
    ),
}


def style_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def editor_policy(base: str, editor: str) -> str:
    """`base` with its style-src allowing the editor's own style attributes, and no more."""
    extra = ["'unsafe-hashes'", *(style_hash(v) for v in INLINE_STYLES[editor])]
    directives = [d.strip() for d in base.split(";") if d.strip()]
    for i, directive in enumerate(directives):
        if directive.split()[0] == "style-src":
            directives[i] = " ".join([directive, *extra])
            break
    else:
        directives.append(" ".join(["style-src", "'self'", *extra]))
    return "; ".join(directives)


def with_editor_policy(response: Response, editor: str) -> Response:
    """The page's own policy; the app-wide hook keeps it (it only sets a missing header)."""
    base = current_app.config.get("CONTENT_SECURITY_POLICY", DEFAULT_CSP)
    response.headers["Content-Security-Policy"] = editor_policy(base, editor)
    return response
