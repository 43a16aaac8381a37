"""The editors under the app's Content-Security-Policy, in real Chromium: the decision table
editor and the modeler apply the style attributes dmn-js and bpmn-js write (the bpmn.io logo
and its lightbox, a rule's drag image, the align icons) and the browser reports no
violation, while scripts stay 'self' only."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = ROOT / "casemgr" / "static" / "build" / "modeler"

# Every violation, also those Chromium reports without a console message.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective}: ${e.sample || e.blockedURI}`);
});
"""


@pytest.fixture(autouse=True)
def editors_built() -> None:
    for name in ("modeler.js", "dmn.js"):
        assert (BUNDLES / name).is_file(), f"{name} is missing: run `make setup`"


@pytest.fixture
def owner_page(browser_as):
    """The process owner's page, recording CSP violations and console messages about them."""
    page = browser_as("owner")
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.console_csp = []
    page.on(
        "console",
        lambda m: page.console_csp.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page


def violations(page: Page) -> list[str]:
    return [*page.evaluate("() => window.__cspViolations"), *page.console_csp]


def style_of(page: Page, selector: str, prop: str) -> str:
    return page.eval_on_selector(
        selector, "(el, prop) => getComputedStyle(el).getPropertyValue(prop)", prop
    )


def test_the_decision_table_editor_applies_its_styles_without_a_csp_violation(owner_page):
    page = owner_page
    response = page.goto("/decision-tables/credit_decision/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    expect(page.locator("[data-modeler-status]")).to_contain_text("Ready")

    # The logo sits in the corner because its style attribute was applied.
    logo = page.locator("#canvas .bjs-powered-by").first
    expect(logo).to_be_visible()
    assert style_of(page, "#canvas .bjs-powered-by", "position") == "absolute"

    # A click on it opens the "powered by" lightbox, laid out by its inline styles.
    logo.click()
    expect(page.locator(".bjs-powered-by-lightbox")).to_be_visible()
    assert style_of(page, ".bjs-powered-by-lightbox", "position") == "fixed"
    assert style_of(page, ".bjs-powered-by-lightbox .notice", "width") == "260px"
    page.click(".bjs-powered-by-lightbox .backdrop", position={"x": 10, "y": 10})
    expect(page.locator(".bjs-powered-by-lightbox")).to_have_count(0)

    # Starting to drag a rule builds the drag image from HTML with a style attribute.
    page.locator(".dmn-decision-table-container td.rule-index").first.hover()
    handle = page.locator(".dmn-decision-table-container .dmn-icon-drag.vertical").first
    transfer = page.evaluate_handle("() => new DataTransfer()")
    handle.dispatch_event("dragstart", {"dataTransfer": transfer})
    handle.dispatch_event("dragend", {"dataTransfer": transfer})

    # The requirements diagram (diagram-js) draws its own logo and context pad.
    page.click("[data-dmn-views] button:has-text('Requirements diagram')")
    expect(page.locator("#canvas .dmn-drd-container")).to_be_visible()
    page.locator("#canvas g.djs-element[data-element-id='credit_route']").click()
    expect(page.locator("#canvas .djs-context-pad")).to_be_visible()

    assert violations(page) == []


def test_the_modeler_applies_its_icons_without_a_csp_violation(owner_page):
    page = owner_page
    response = page.goto("/processes/credit_application/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    expect(page.locator("#canvas")).to_have_attribute("data-ready", "yes")

    # Two tasks selected: the context pad offers "align", drawn with inline-styled SVG.
    page.evaluate(
        """() => {
            const m = window.casemgrModeler;
            const registry = m.get('elementRegistry');
            m.get('selection').select(
                ['specialist_review', 'manager_approval'].map((id) => registry.get(id)));
        }"""
    )
    align = page.locator(".djs-context-pad [data-action='align-elements']")
    expect(align).to_be_visible()
    assert (
        style_of(page, ".djs-context-pad [data-action='align-elements'] svg line", "stroke-width")
        == "100px"
    )
    align.click()
    menu = page.locator(".djs-popup .bjs-align-elements-menu-entry")
    expect(menu.first).to_be_visible()
    assert menu.count() == 6
    page.keyboard.press("Escape")

    assert violations(page) == []


def test_other_pages_keep_the_strict_policy(owner_page):
    response = owner_page.goto("/processes/")
    policy = response.headers["content-security-policy"]
    assert "style-src 'self';" in policy and "unsafe-hashes" not in policy
