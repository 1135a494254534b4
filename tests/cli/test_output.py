"""The command line's output rules, in process: hints, JSON errors, one-line messages."""

from __future__ import annotations

import io
import json

from kanidm_sync import UniquenessError
from kanidm_sync._cli._output import Output, error_json, split_hint


def test_split_hint() -> None:
    """A trailing "(hint: ...)" is split off; other parentheses stay."""
    assert ("HTTP 409: x", "remap it") == split_hint("HTTP 409: x (hint: remap it)")
    assert ("no hint (here)", "") == split_hint("no hint (here)")


def test_error_json_of_a_kanidm_error() -> None:
    """Kanidm's errors carry status, variant and detail, and the hint apart from the message."""
    exc = UniquenessError(
        'HTTP 409: attributeuniqueness: ["name"] (hint: exclude or remap)',
        status_code=409,
        variant="attributeuniqueness",
        detail=["name"],
        conflicting_attributes=["name"],
    )
    assert {
        "type": "UniquenessError",
        "message": 'HTTP 409: attributeuniqueness: ["name"]',
        "hint": "exclude or remap",
        "status": 409,
        "variant": "attributeuniqueness",
        "operation_id": None,
        "detail": ["name"],
    } == error_json(exc)


def test_error_is_one_line_and_json_goes_to_stdout() -> None:
    """A multi-line message becomes one stderr line; --json adds a document on stdout."""
    out, err = io.StringIO(), io.StringIO()
    output = Output(json_mode=True, stdout=out, stderr=err)
    output.context = {"report": {"outcome": "failed"}}
    output.error(ValueError("first line\nsecond line"), hint="do this")
    assert ["kanidm-sync: error: first line second line", "  hint: do this"] == (
        err.getvalue().splitlines()
    )
    document = json.loads(out.getvalue())
    assert (False, "do this", "failed") == (
        document["ok"],
        document["error"]["hint"],
        document["report"]["outcome"],
    )


def test_quiet_hides_notes_not_warnings() -> None:
    """--quiet drops notes but keeps warnings and results."""
    out, err = io.StringIO(), io.StringIO()
    output = Output(quiet=True, stdout=out, stderr=err)
    output.note("a note")
    output.warn("a warning")
    output.result("the result", None)
    assert ("the result\n", "kanidm-sync: warning: a warning\n") == (out.getvalue(), err.getvalue())
