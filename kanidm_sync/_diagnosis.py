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
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from ._types import JSONObject, JSONValue

if TYPE_CHECKING:
    from ._rules import Remap

__all__ = ["Diagnosis", "Suspect", "rules_for"]

_MAX_RULES: Final = 25
_REMOVABLE: Final = frozenset(
    {"mail", "ssh_publickey", "password_import", "unix_password_import", "totp_import", "member"}
)
_REMAP_NAMESPACE: Final = uuid.UUID("6f1f3c5e-5b4a-4f0e-9d57-6b616e69646d")


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


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
        values: the entry's values of ``attribute`` that can be the one Kanidm refused:
            exactly that value when the runner knows it, else every candidate (Kanidm
            names the attribute of a uniqueness conflict, never the value).
    """

    id: uuid.UUID
    source_id: uuid.UUID
    kind: str
    name: str | None
    external_id: str | None
    reason: str
    attribute: str | None = None
    values: tuple[str, ...] = attrs.field(default=(), converter=_strings)

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
            "values": list(self.values),
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
            certainly involved, on the value named in :attr:`Suspect.values`); ``False``
            when the list holds every candidate, or an entry's candidate values.
        rules_toml: exclude and remap rules for every suspect, ready to paste into the
            rules file (empty when no rule can help).
        notes: further remarks (why it could not narrow, what else to check).
        rule_template: when the diagnosis could not narrow the cause down and several
            entries are candidates, the rules for the first of them only: the shape of
            the rule to paste for each entry found to be the cause (:meth:`to_text`
            prints it instead of a rule per candidate); else empty.
    """

    error: str
    summary: str
    suspects: tuple[Suspect, ...] = ()
    narrowed: bool = False
    rules_toml: str = ""
    notes: tuple[str, ...] = ()
    rule_template: str = ""

    def to_dict(self) -> JSONObject:
        """The diagnosis as a JSON-ready dict."""
        return {
            "error": self.error,
            "summary": self.summary,
            "narrowed": self.narrowed,
            "suspects": [s.to_dict() for s in self.suspects],
            "rules_toml": self.rules_toml,
            "rule_template": self.rule_template,
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

    def _templated(self) -> bool:
        # Only candidates, several of them: one rule as a template, not one per entry.
        return bool(self.rule_template) and not self.narrowed and bool(self.suspects)

    def _rules_intro(self) -> str:
        if not self._templated():
            return "Rules that would let the next run through (pick one per entry):"
        first = self.suspects[0]
        label = first.name or first.external_id or str(first.id)
        return (
            f"Kanidm does not say which of these {len(self.suspects)} entries it refused, so "
            f"no rule is printed for each. {_how_to_find(self.suspects)} Then paste a rule "
            f"for each entry found, shaped like this one for {first.kind} {label} "
            "(diagnosis.rules_toml holds one for every candidate):"
        )

    def _rules_shown(self) -> str:
        return self.rule_template if self._templated() else self.rules_toml

    def _repr_html_(self) -> str:
        esc = html.escape
        items = "".join(
            f"<li>{esc(s.kind)} <b>{esc(s.name or s.external_id or str(s.id))}</b> "
            f"(<code>{s.id}</code>): {esc(s.reason)}</li>"
            for s in self.suspects[:_MAX_LISTED]
        )
        more = len(self.suspects) - _MAX_LISTED
        if more > 0:
            items += f"<li>... and {more} more (diagnosis.suspects lists them all)</li>"
        notes = "".join(f"<li><i>note:</i> {esc(n)}</li>" for n in self.notes)
        shown = self._rules_shown()
        rules = f"<p>{esc(self._rules_intro())}</p><pre>{esc(shown)}</pre>" if shown else ""
        return (
            f"<div><p>Kanidm rejected the change (<code>{esc(self.error)}</code>): "
            f"{esc(self.summary)}</p><ul>{items}{notes}</ul>{rules}</div>"
        )

    def to_text(self) -> str:
        """The diagnosis for a terminal: summary, suspects, then the rules to paste.

        When the cause could not be narrowed down and several entries are candidates,
        the rules are shown once, for the first candidate, with how to find the entries
        that need one (:attr:`rules_toml` still holds a rule for each); at most 25
        suspects are listed (:attr:`suspects` holds them all).
        """
        lines = [f"Kanidm rejected the change ({self.error}): {self.summary}"]
        for s in self.suspects[:_MAX_LISTED]:
            label = s.name or s.external_id or str(s.id)
            lines.append(f"  - {s.kind} {label} ({s.id}): {s.reason}")
        more = len(self.suspects) - _MAX_LISTED
        if more > 0:
            lines.append(f"  ... and {more} more (diagnosis.suspects lists them all)")
        lines.extend(f"  note: {n}" for n in self.notes)
        shown = self._rules_shown()
        if shown:
            lines.append(self._rules_intro())
            lines.append(shown)
        return "\n".join(lines)


_MAX_LISTED: Final = 25
_NAME_LOOKUP: Final = (
    "`kanidm person get <name>`, `kanidm group get <name>` or `kanidm service-account get <name>`"
)


def _how_to_find(suspects: Sequence[Suspect]) -> str:
    """How an operator finds which candidates Kanidm refused."""
    attribute = next((s.attribute for s in suspects if s.attribute), None)
    if attribute in ("name", "spn"):
        return (
            f"Look each candidate's name up in Kanidm ({_NAME_LOOKUP}): a candidate whose "
            "name Kanidm shows on an entry with another UUID is one it refused."
        )
    if attribute is not None:
        return (
            f"Check in Kanidm which of the candidates' {attribute} values (in each reason) "
            "an entry with another UUID holds: those candidates are the ones it refused."
        )
    return "Check each candidate in Kanidm to find the ones refused."


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _toml_value(value: JSONValue) -> str | None:
    # TOML for a JSON value (patch operations in a rule in force), or None (TOML has no
    # null).
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        pairs = [(k, _toml_value(v)) for k, v in value.items()]
        if any(v is None for _, v in pairs):
            return None
        return "{" + ", ".join(f"{_toml_key(k)} = {v}" for k, v in pairs) + "}"
    items = [_toml_value(v) for v in value]
    return None if None in items else "[" + ", ".join(str(i) for i in items) + "]"


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _toml_string(key)


def _in_force_lines(remap: Remap, replaced: str) -> list[str]:
    """The keys of a rule in force, but ``replaced``, so that pasting keeps them."""
    lines = ["# replaces the rule in force for this entry (its other keys are kept)"]
    if remap.id is not None and replaced != "id":
        lines.append(f"id = {_toml_string(str(remap.id))}")
    if remap.name is not None and replaced != "name":
        lines.append(f"name = {_toml_string(remap.name)}")
    if remap.gidnumber is not None and replaced != "gidnumber":
        lines.append(f"gidnumber = {remap.gidnumber}")
    if remap.patch and replaced != "patch":
        patch = _toml_value([dict(op) for op in remap.patch])
        lines.append(
            f"patch = {patch}"
            if patch is not None
            else "# and the patch of the rule in force (it has a null value: copy it by hand)"
        )
    return lines


def _new_id(source_id: uuid.UUID, current: uuid.UUID | None, taken: set[uuid.UUID]) -> uuid.UUID:
    """A UUID for ``source_id`` that no rule, record or request uses yet.

    Derived from the source id and the id in force, so that an entry whose remapped id
    was recycled in turn gets another one, never the rule already in force.
    """
    seed = str(source_id) if current is None else f"{source_id}:{current}"
    attempt = 0
    while True:
        new = uuid.uuid5(_REMAP_NAMESPACE, seed if attempt == 0 else f"{seed}:{attempt}")
        if new not in taken:
            taken.add(new)
            return new
        attempt += 1


def _new_name(name: str, taken: set[str]) -> str:
    """``<name>-sync`` (or ``-sync2``, ...), a name no entry of the record or request has."""
    attempt = 1
    while True:
        new = f"{name}-sync" if attempt == 1 else f"{name}-sync{attempt}"
        if new.lower() not in taken:
            taken.add(new.lower())
            return new
        attempt += 1


def rules_for(
    suspects: Sequence[Suspect],
    variant: str,
    *,
    in_force: Mapping[uuid.UUID, Remap] | None = None,
    taken_ids: Collection[uuid.UUID] = (),
    taken_names: Collection[str] = (),
) -> str:
    """Exclude and remap rules for ``suspects``, keyed by source UUID, as TOML text.

    Args:
        suspects: the entries to write rules for.
        variant: Kanidm's error variant (it decides what a remap changes).
        in_force: the id remaps in force (``Rules.remap_ids``): a suggested remap of the
            same entry replaces that table, so it repeats the keys it does not change.
        taken_ids: UUIDs a suggested new ``id`` must not be (the rules', the record's,
            the request's, recycled ones).
        taken_names: lower-cased names a suggested new name must not be.

    Returns:
        The TOML text, or ``""`` without suspects.
    """
    if not suspects:
        return ""
    rules = in_force or {}
    ids = {*taken_ids, *(s.id for s in suspects), *(s.source_id for s in suspects)}
    for key, remap in rules.items():
        ids.add(key)
        if remap.id is not None:
            ids.add(remap.id)
    names = {n.lower() for n in taken_names}
    unique: dict[uuid.UUID, Suspect] = {}
    for s in suspects:
        unique.setdefault(s.source_id, s)
    shown = list(unique.values())[:_MAX_RULES]
    excludes = ", ".join(_toml_string(str(s.source_id)) for s in shown)
    blocks: list[str] = []
    for s in shown:
        head = [f"[remap.id.{_toml_string(str(s.source_id))}]"]
        current = rules.get(s.source_id)
        attr = s.attribute
        if variant in ("modifyassertionfailed", "invalidentrystate"):
            changed = "id"
            in_use = current.id if current is not None else None
            body = [f"id = {_toml_string(str(_new_id(s.source_id, in_use, ids)))}"]
        elif attr in ("name", "spn") and s.name:
            changed = "name"
            body = [f"name = {_toml_string(_new_name(s.name, names))}"]
        elif attr == "gidnumber":
            changed = "gidnumber"
            body = ["# gidnumber = <a free gidnumber, e.g. in 65536-524287>"]
        elif attr in _REMOVABLE:
            changed = "patch"
            body = [f'patch = [{{op = "remove", path = "/{attr}"}}]']
            if s.values and attr == "mail":
                which = ", ".join(s.values)
                body.insert(
                    0,
                    f"# the clashing address: {which}"
                    if len(s.values) == 1
                    else f"# one of these addresses clashes: {which}",
                )
        else:
            continue
        if current is not None:
            head.extend(_in_force_lines(current, changed))
        blocks.append("\n".join([*head, *body]))
    remapped = any(s.source_id in rules for s in shown)
    text = (
        "# Either exclude the entries"
        + (" (and delete the remap rules in force for them)" if remapped else "")
        + f":\n[exclude]\nids = [{excludes}]"
    )
    if blocks:
        text += "\n\n# Or remap them:\n" + "\n\n".join(blocks)
    if len(unique) > _MAX_RULES:
        text += f"\n# ... and {len(unique) - _MAX_RULES} more candidates (see the suspects)"
    return text
