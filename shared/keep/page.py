"""The keep link's pages: one self-contained HTML document each, no script, nothing fetched (pure).

The confirmation page says which device, what happened to it, why, and until when it would be kept, and
holds one form whose only control is the Keep button (a GET shows it, only the POST acts). The pages are
made to be read by anyone: a language, a title and one heading per page, the facts as a description list,
the button labelled by what it does and described by the line above it, a visible focus ring for keyboard
users, and text and button colours with a contrast ratio of at least 7:1 (WCAG AAA) on their backgrounds.
Every value from the directory is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

#: The page is inert: the browser may load nothing and run nothing (the form posts back to the same URL).
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never hand it to another site
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}

# #111827 on #ffffff is 17.7:1; #ffffff on #1e3a8a (the button) 10.4:1; #374151 on #ffffff 10.3:1.
_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#ffffff;color:#111827;font:18px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
main{max-width:38rem;margin:0 auto;padding:2rem 1.25rem}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 1rem}
p{margin:0 0 1rem}
dl{margin:0 0 1.5rem;display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}
dt{font-weight:700}dd{margin:0;overflow-wrap:anywhere}
.note{color:#374151;font-size:1rem}
button{font:inherit;font-weight:700;color:#ffffff;background:#1e3a8a;border:2px solid #1e3a8a;border-radius:.4rem;
padding:.75rem 1.25rem;cursor:pointer;min-height:44px}
button:hover{background:#172554}
button:focus-visible{outline:4px solid #111827;outline-offset:3px}
"""


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>"
    )


def _facts(facts: Sequence[Fact]) -> str:
    rows = "".join(f"<dt>{escape(f.label)}</dt><dd>{escape(f.value)}</dd>" for f in facts)
    return f'<dl aria-label="About the device">{rows}</dl>'


def confirm_page(device: str, facts: Sequence[Fact], kept_until: datetime) -> str:
    """GET: what happened and the Keep button (nothing is changed until it is pressed)."""
    until = f"{kept_until:%d %B %Y}"
    body = (
        f"<h1>Keep {escape(device)}?</h1>"
        "<p>entra-janitor found that this device has not signed in for a long time and acted on it. If you still need "
        "it (for example, you were on leave), keep it: it will not be disabled, tagged or deleted until the date below, "
        "and if entra-janitor disabled it, it is enabled again within minutes.</p>"
        f"{_facts([*facts, Fact('Kept until', until)])}"
        '<form method="post">'
        f'<p id="keep-what" class="note">Pressing the button records your choice in the audit log. Nothing changes until '
        f"you press it.</p>"
        f'<button type="submit" id="keep" aria-describedby="keep-what">Keep this device until {escape(until)}</button>'
        "</form>"
    )
    return _page(f"Keep {device}? entra-janitor", body)


def kept_page(device: str, kept_until: datetime, reenabled: bool, already: bool = False) -> str:
    """POST done (or done before with this link): what happens next."""
    until = f"{kept_until:%d %B %Y}"
    first = "You already kept" if already else "You kept"
    then = (
        "It was disabled by entra-janitor: it is being enabled again and will work within minutes (sign in again if "
        "it asks)."
        if reenabled
        else "Nothing else needed to change."
    )
    body = (
        f'<h1 role="status">{first} {escape(device)}</h1>'
        f"<p>It will not be disabled, tagged or deleted by entra-janitor until {escape(until)}. {escape(then)}</p>"
        '<p class="note">Sign in with it before that date: a device in use is never treated as stale.</p>'
    )
    return _page(f"Kept: {device}", body)


def refusal_page(status: int, message: str) -> str:
    """A plain page for a link that grants nothing (no detail about any device)."""
    titles = {403: "This link does not work", 404: "This link does not work", 410: "This link has expired"}
    title = titles.get(status, "This link cannot be used now")
    body = f"<h1>{escape(title)}</h1><p>{escape(message)}</p><p class='note'>Nothing was changed.</p>"
    return _page(title, body)
