"""The HTML status page of a sync service (``GET /``), rendered from a snapshot.

Owns: :func:`render_status_page`. Must not: do I/O. Pure.

Placeholder of the contract only: the page itself is being written (issue 13).
"""

from __future__ import annotations

import html

from ._service_model import ServiceSnapshot

__all__ = ["render_status_page"]


def render_status_page(snapshot: ServiceSnapshot) -> str:
    """The whole page, as text (UTF-8 HTML, no external assets); every value escaped."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>kanidm-sync</title></head>"
        f"<body><h1>kanidm-sync {html.escape(snapshot.account)}</h1></body></html>"
    )
