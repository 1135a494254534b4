"""The diagnosis's advice is right and short (issue 12, item 3 and part of item 5).

* A remapped id suggested for a recycled entry is new each time: an entry deleted and
  re-created twice does not get the rule already in force (which would loop forever).
* A mail clash names the address the analysis singles out, or lists the candidates
  without claiming which (``narrowed=False``).
* When every entry is only a candidate, the text shows one rule as a template and how to
  find the culprit; ``rules_toml`` and ``suspects`` stay complete.
"""

from __future__ import annotations

import pathlib
import uuid

import attrs
import pytest

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    Client,
    DataError,
    InvalidEntryStateError,
    Mail,
    Person,
    Remap,
    Rules,
    Runner,
    UniquenessError,
)
from kanidm_sync._diagnose import diagnose
from kanidm_sync._diagnosis import rules_for
from kanidm_sync._plan import KnownState, project_entry
from kanidm_sync._proto._status import error_from_response
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

from .conftest import ListSource, person, pid

STATE = ActiveState(b"c1")
UNIQUE_MAIL = error_from_response(
    409, '{"error":"Attribute uniqueness error","conflicting_attributes":["mail"]}'
)
RECYCLED = error_from_response(500, '"invalidentrystate"')


def changeset(*entries: Person) -> ChangeSet:
    return ChangeSet(from_state=STATE, to_state=ActiveState(b"c2"), entries=entries)


def known_of(*entries: Person, deleted: tuple[uuid.UUID, ...] = ()) -> KnownState:
    return KnownState(
        cookie=b"c1", entries={e.id: project_entry(e) for e in entries}, deleted=deleted
    )


def with_mail(p: Person, *addresses: str) -> Person:
    return attrs.evolve(p, mail=[Mail(a) for a in addresses])


def paste(rules: Rules | None, suggestion: str) -> Rules:
    """Paste a suggestion's remap tables, replacing any of the same entry (as in a file)."""
    pasted = Rules.from_toml(suggestion.split("# Or remap them:\n", 1)[1])
    before = dict(rules.remap_ids) if rules is not None else {}
    return Rules(remap_ids={**before, **pasted.remap_ids})


# --- a re-created entry: a new id each time ------------------------------------------------


def test_an_entry_recreated_twice_gets_a_new_id_each_time(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    """Re-created twice, the suggestion pasted each time: the run after each paste succeeds.

    The second suggestion is not the rule in force, whose id is recycled by then.
    """
    others = [person(i) for i in range(1, 8)]
    source = ListSource([*others, person(9)])
    state_path = tmp_path / "applied.json"
    rules: Rules | None = None

    def run() -> str:
        Runner(client, source, state_path=state_path, rules=rules).run_once()
        return "applied"

    run()
    suggested: list[uuid.UUID] = []
    for _ in range(2):
        source.entries = list(others)  # deleted at the source: recycled in Kanidm
        run()
        source.entries = [*others, person(9)]  # re-created under the same source id
        runner = Runner(client, source, state_path=state_path, rules=rules)
        with pytest.raises(InvalidEntryStateError):
            runner.run_once()
        d = runner.last_report.diagnosis  # type: ignore[union-attr]
        assert d is not None
        assert [pid(9)] == [s.source_id for s in d.suspects]
        rules = paste(rules, d.rules_toml)
        new_id = rules.remap_ids[pid(9)].id
        assert new_id is not None
        suggested.append(new_id)
        assert "applied" == run()
        live = fake.store.entry("user9")
        assert live is not None
        assert new_id == live.uuid
    assert len(set(suggested)) == 2
    assert pid(9) not in suggested


def test_a_suggested_id_is_never_one_the_rules_or_the_record_hold() -> None:
    """The first choice for a new id is taken (recycled, or another rule's): another one."""
    recycled = person(5)
    remapped_to = uuid.uuid4()
    rules = Rules(remap_ids={recycled.id: Remap(id=remapped_to, name="five")})
    entry = attrs.evolve(recycled, id=remapped_to)
    plain = rules_for(
        diagnose(
            RECYCLED, changeset(entry), known=known_of(deleted=(remapped_to,)), rules=rules
        ).suspects,
        "invalidentrystate",
    )
    first_choice = Rules.from_toml(plain.split("# Or remap them:\n")[1]).remap_ids[recycled.id]
    assert first_choice.id is not None
    known = known_of(
        attrs.evolve(person(1), id=first_choice.id),  # the first choice is in the record
        deleted=(remapped_to,),
    )
    d = diagnose(RECYCLED, changeset(entry), known=known, rules=rules)
    new = paste(rules, d.rules_toml).remap_ids[recycled.id]
    assert new.id not in {remapped_to, recycled.id, first_choice.id, pid(1)}
    assert "five" == new.name  # the pasted table keeps the keys of the rule in force
    assert "replaces the rule in force" in d.rules_toml


# --- a mail clash: the address, or the candidates -------------------------------------------


def test_a_new_person_with_two_new_addresses_is_not_stated_as_certain() -> None:
    """Either address can be the one Kanidm refused: both listed, not narrowed."""
    known = known_of(person(1))
    newcomer = with_mail(person(2), "home@example.org", "work@example.org")
    d = diagnose(UNIQUE_MAIL, changeset(person(1), newcomer), known=known)
    (s,) = d.suspects
    assert pid(2) == s.id
    assert ("home@example.org", "work@example.org") == s.values
    assert "'home@example.org', 'work@example.org'" in s.reason
    assert "Kanidm does not say which" in s.reason
    assert not d.narrowed
    assert "one of these addresses clashes" in d.rules_toml


def test_the_one_new_address_is_named_not_the_first() -> None:
    """An existing person adds a second address: that one is named, with certainty."""
    known = known_of(person(1), person(2))
    changed = with_mail(person(2), "user2@example.org", "clash@example.org")
    d = diagnose(UNIQUE_MAIL, changeset(changed), known=known)
    (s,) = d.suspects
    assert ("clash@example.org",) == s.values
    assert "'clash@example.org'" in s.reason
    assert "user2@example.org" not in s.reason
    assert d.narrowed
    assert "# the clashing address: clash@example.org" in d.rules_toml


def test_an_address_another_entry_holds_is_named_even_after_a_new_one() -> None:
    """The record shows user1 holding the second address: that is certain, not a guess."""
    known = known_of(person(1), person(2))
    changed = with_mail(person(2), "fresh@example.org", "user1@example.org")
    d = diagnose(UNIQUE_MAIL, changeset(changed), known=known)
    (s,) = d.suspects
    assert ("user1@example.org",) == s.values
    assert f"still held by {pid(1)}" in s.reason
    assert d.narrowed


def test_unknown_base_lists_every_address() -> None:
    """Without a base every address of every entry is a candidate."""
    d = diagnose(UNIQUE_MAIL, changeset(with_mail(person(1), "a@example.org", "b@example.org")))
    (s,) = d.suspects
    assert ("a@example.org", "b@example.org") == s.values
    assert not d.narrowed


def test_a_mail_clash_with_a_native_person_end_to_end(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """Against the in-memory Kanidm: the newcomer's addresses are both candidates."""
    source = ListSource([person(1)])
    runner = Runner(client, source, state_path=tmp_path / "applied.json")
    runner.run_once()
    fake.store.add_person("native", mail=["work@example.org"])
    source.entries = [person(1), with_mail(person(2), "home@example.org", "work@example.org")]
    with pytest.raises(UniquenessError):
        runner.run_once()
    d = runner.last_report.diagnosis  # type: ignore[union-attr]
    assert d is not None
    assert not d.narrowed
    assert ("home@example.org", "work@example.org") == d.suspects[0].values


# --- only candidates: one rule as a template --------------------------------------------------


def test_a_first_sync_conflict_prints_one_rule_and_how_to_find_the_culprit(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """Twelve candidates, no record: one template in the text, twelve rules in the data."""
    fake.store.add_person("user7")
    runner = Runner(
        client, ListSource([person(i) for i in range(1, 13)]), state_path=tmp_path / "a.json"
    )
    with pytest.raises(DataError) as caught:
        runner.run_once()
    assert isinstance(caught.value, UniquenessError)
    d = runner.last_report.diagnosis  # type: ignore[union-attr]
    assert d is not None
    assert not d.narrowed
    assert 12 == len(d.suspects)
    assert 12 == d.rules_toml.count("[remap.id.")  # the data stays complete
    text = d.to_text()
    assert 1 == text.count("[remap.id.")
    assert 1 == text.count('-sync"')
    assert "Kanidm does not say which of these 12 entries it refused" in text
    assert "kanidm person get <name>" in text
    assert "diagnosis.rules_toml holds one for every candidate" in text
    assert 1 == d._repr_html_().count("[remap.id.")
    # The template is a valid rule for the first candidate.
    template = Rules.from_toml(d.rule_template.split("# Or remap them:\n")[1])
    assert {d.suspects[0].source_id} == set(template.remap_ids)


def test_a_narrowed_diagnosis_still_prints_a_rule_per_entry() -> None:
    """Certain suspects (a name shared inside the request): a rule for each, no template."""
    d = diagnose(
        error_from_response(
            409, '{"error":"Attribute uniqueness error","conflicting_attributes":["name"]}'
        ),
        changeset(person(1, name="x"), person(2, name="x")),
    )
    assert d.narrowed
    assert "" == d.rule_template
    assert 2 == d.to_text().count("[remap.id.")


def test_a_long_candidate_list_is_capped_in_the_text() -> None:
    """Hundreds of candidates: 25 listed, and a count of the rest."""
    error = error_from_response(
        409, '{"error":"Attribute uniqueness error","conflicting_attributes":["name"]}'
    )
    d = diagnose(error, changeset(*(person(i) for i in range(300))))
    assert 300 == len(d.suspects)
    text = d.to_text()
    assert "... and 275 more (diagnosis.suspects lists them all)" in text
    assert 25 == sum(1 for line in text.splitlines() if line.startswith("  - person "))
