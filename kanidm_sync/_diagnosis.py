"""The diagnosis as a value: the suspects of a rejection and rules that would avoid it.

Owns: :class:`Suspect` and :class:`Diagnosis` (what ``_diagnose.diagnose`` produces),
their text, JSON and HTML renderings, and the ready-to-paste exclude and remap rules in
the TOML shape :class:`~kanidm_sync.Rules` loads.

Must not: diagnose anything (``_diagnose``), do I/O or talk to Kanidm.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Sequence
from typing import Final

import attrs

from ._types import JSONObject

__all__ = ["Diagnosis", "Suspect", "rules_for"]

_MAX_RULES: Final = 25
_REMOVABLE: Final = frozenset(
    {"mail", "ssh_publickey", "password_import", "unix_password_import", "totp_import", "member"}
)
_REMAP_NAMESPACE: Final = uuid.UUID("6f1f3c5e-5b4a-4f0e-9d57-6b616e69646d")


@attrs.frozen(kw_only=True)
class Suspect:
    """An entry that can have caused the rejection.

    Attributes:
        id: the entry's UUID in Kanidm (after remaps).
        source_id: the entry's UUID at the source (what rules are keyed by).
        kind: ``"person"``, ``"group"``, ``"service_account"`` or ``"entry"``.
        name: its name, when it has one.
        external_id: its external id, when it has one.
        reason: why it is suspected, for a person.
        attribute: the Kanidm attribute involved, when known.
    """

    id: uuid.UUID
    source_id: uuid.UUID
    kind: str
    name: str | None
    external_id: str | None
    reason: str
    attribute: str | None = None

    def to_dict(self) -> JSONObject:
        """This suspect as a JSON-ready dict."""
        return {
            "id": str(self.id),
            "source_id": str(self.source_id),
            "kind": self.kind,
            "name": self.name,
            "external_id": self.external_id,
            "reason": self.reason,
            "attribute": self.attribute,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """This suspect as JSON text.

        Args:
            indent: passed to :func:`json.dumps`; ``None`` for compact output.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


@attrs.frozen(kw_only=True, repr=False)
class Diagnosis:
    """What a rejection means, which entries can cause it, and rules that would avoid it.

    Attributes:
        error: the error variant Kanidm reported (``"attributeuniqueness"``).
        summary: one sentence for the operator.
        suspects: the entries that can cause it, most likely first.
        narrowed: ``True`` when local knowledge pinned the cause down (every suspect is
            certainly involved); ``False`` when the list holds every candidate.
        rules_toml: exclude and remap rules for the suspects, ready to paste into the
            rules file (empty when no rule can help).
        notes: further remarks (why it could not narrow, what else to check).
    """

    error: str
    summary: str
    suspects: tuple[Suspect, ...] = ()
    narrowed: bool = False
    rules_toml: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> JSONObject:
        """The diagnosis as a JSON-ready dict."""
        return {
            "error": self.error,
            "summary": self.summary,
            "narrowed": self.narrowed,
            "suspects": [s.to_dict() for s in self.suspects],
            "rules_toml": self.rules_toml,
            "notes": list(self.notes),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The diagnosis as JSON text.

        Args:
            indent: passed to :func:`json.dumps`; ``None`` for compact output.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def __repr__(self) -> str:
        first = ""
        if self.suspects:
            s = self.suspects[0]
            first = f", first={s.kind} {s.name or s.external_id or s.id}"
        return (
            f"Diagnosis(error={self.error!r}, <{len(self.suspects)} suspects{first}>, "
            f"narrowed={self.narrowed}, <{len(self.notes)} notes>, "
            f"rules={'yes' if self.rules_toml else 'none'})"
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        items = "".join(
            f"<li>{esc(s.kind)} <b>{esc(s.name or s.external_id or str(s.id))}</b> "
            f"(<code>{s.id}</code>): {esc(s.reason)}</li>"
            for s in self.suspects
        )
        notes = "".join(f"<li><i>note:</i> {esc(n)}</li>" for n in self.notes)
        rules = f"<pre>{esc(self.rules_toml)}</pre>" if self.rules_toml else ""
        return (
            f"<div><p>Kanidm rejected the change (<code>{esc(self.error)}</code>): "
            f"{esc(self.summary)}</p><ul>{items}{notes}</ul>{rules}</div>"
        )

    def to_text(self) -> str:
        """The diagnosis for a terminal: summary, suspects, then the rules to paste."""
        lines = [f"Kanidm rejected the change ({self.error}): {self.summary}"]
        for s in self.suspects:
            label = s.name or s.external_id or str(s.id)
            lines.append(f"  - {s.kind} {label} ({s.id}): {s.reason}")
        lines.extend(f"  note: {n}" for n in self.notes)
        if self.rules_toml:
            lines.append("Rules that would let the next run through (pick one per entry):")
            lines.append(self.rules_toml)
        return "\n".join(lines)


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def rules_for(suspects: Sequence[Suspect], variant: str) -> str:
    """Exclude and remap rules for ``suspects``, keyed by source UUID, as TOML text."""
    if not suspects:
        return ""
    unique: dict[uuid.UUID, Suspect] = {}
    for s in suspects:
        unique.setdefault(s.source_id, s)
    shown = list(unique.values())[:_MAX_RULES]
    excludes = ", ".join(_toml_string(str(s.source_id)) for s in shown)
    blocks: list[str] = []
    for s in shown:
        head = f"[remap.id.{_toml_string(str(s.source_id))}]"
        attr = s.attribute
        if variant in ("modifyassertionfailed", "invalidentrystate"):
            new_id = uuid.uuid5(_REMAP_NAMESPACE, str(s.source_id))
            blocks.append(f"{head}\nid = {_toml_string(str(new_id))}")
        elif attr in ("name", "spn") and s.name:
            blocks.append(f"{head}\nname = {_toml_string(s.name + '-sync')}")
        elif attr == "gidnumber":
            blocks.append(f"{head}\n# gidnumber = <a free gidnumber, e.g. in 65536-524287>")
        elif attr in _REMOVABLE:
            blocks.append(f'{head}\npatch = [{{op = "remove", path = "/{attr}"}}]')
    text = f"# Either exclude the entries:\n[exclude]\nids = [{excludes}]"
    if blocks:
        text += "\n\n# Or remap them:\n" + "\n\n".join(blocks)
    if len(unique) > _MAX_RULES:
        text += f"\n# ... and {len(unique) - _MAX_RULES} more candidates (see the suspects)"
    return text
