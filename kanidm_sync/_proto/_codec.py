r"""The JSON codec: the only place that knows Kanidm's wire names and encoding rules.

Owns every JSON decision between the typed values (``_state.py``, ``_entries.py``,
``_changeset.py``) and the bytes of ``POST /scim/v1/Sync``. Must not do I/O, log, read a
clock, or put a secret (password hash, TOTP secret) into an error message.

Encoding rules (what the Rust sync tools write, spec §3.1):

* serde **externally tagged** enums: a unit variant is a bare string (``"Refresh"``,
  ``"Ignore"``), a data variant a one-key object (``{"Active":{"cookie":"…"}}``,
  ``{"Retain":[…]}``) (§3.1, §3.2, §3.3).
* The cookie is URL-safe base64 **without padding** (§3.2).
* Compact JSON: separators ``,`` and ``:``, UTF-8, non-ASCII written as is; only ``"``,
  ``\`` and C0 controls are escaped, with ``\n \r \t \b \f`` and lower-case
  ``\u00xx`` (serde_json and :func:`json.dumps` agree on this, §3.1).
* Key order: the request is ``from_state, to_state, entries, retain`` (§3.4); an entry is
  its header ``schemas, id, externalId`` followed by every attribute key sorted byte-wise
  (serde's ``BTreeMap``); objects inside multi-valued attributes (mail, ssh key, member,
  TOTP items) and inside raw values also have sorted keys (§3.1, §3.5).
* ``externalId`` (camelCase) in the header, but ``external_id`` inside member and TOTP
  items (§3.5 casing trap).
* ``None`` is omitted, never written as ``null``; empty multi-valued typed attributes are
  omitted (an empty array parses as Binary and kanidmd answers 400, §3.5).
* Integers are JSON integers (a ``bool`` is not an integer); UUIDs are lower-case
  hyphenated (§3.1).
* Raw values (``extra`` of typed entries, ``GenericEntry.attributes``) are sent as given,
  with nested object keys sorted. A top-level ``None`` there is omitted; a nested ``None``,
  a non-finite float, an integer outside the signed 64-bit range (kanidmd would read a
  lossy float) or a non-JSON object raises :class:`~kanidm_sync.EncodeError`. An
  empty array there is sent as is: the user asked for it, and the validator flags it.
* Floats (only possible in raw values; kanidmd has no float attribute) are written as
  serde_json's ``ryu`` writes them (``1e16``, ``1e-7``, ``0.00001``), not as Python does.
* A string with a lone surrogate has no UTF-8 form: :class:`~kanidm_sync.EncodeError`.

Decoding rules (what kanidmd would parse; every problem is collected and raised as one
:class:`~kanidm_sync.DecodeError` with JSON paths such as ``$.entries[3].mail[0].value``):

* Not JSON, invalid UTF-8, a BOM, ``NaN``/``Infinity``, a number out of the f64 range, a
  lone surrogate escape, nesting too deep for Python, an integer of more digits than
  Python converts: all a :class:`~kanidm_sync.DecodeError` (serde_json refuses them too).
* **``null`` is refused everywhere** (kanidmd answers 422 for a ``null`` attribute,
  §3.5), except where serde accepts it: the spelling of a unit variant,
  ``{"Refresh":null}`` / ``{"Ignore":null}`` (§3.1), and the optional header keys
  ``externalId`` and ``meta`` (serde ``Option`` fields), where it means "absent"
  [inferred from serde's behaviour; the spec does not say].
* Integers outside the signed 64-bit range are refused: kanidmd would read them as a
  lossy float (§3.5 value model), so no faithful value exists.
* An object with a repeated key is refused: serde refuses repeated struct fields, and for
  maps the meaning would be ambiguous [inferred; the spec does not say].
* The cookie accepts padded or unpadded URL-safe base64; ``+``/``/``, misplaced or excess
  padding and non-canonical trailing bits are refused (serde_with and the base64 crate's
  defaults, §3.2; the trailing-bits rule is inferred from the crate's defaults). UUIDs
  accept what Rust's ``uuid`` crate parses: hyphenated, 32-hex simple, ``urn:uuid:`` and
  braced, any hex case (§3.1); they re-encode lower-case.
* Tolerant by default: unknown keys of the request and of the state objects are ignored
  (kanidmd ignores them, §3.4), and so is an entry's ``meta`` header (kanidmd ignores it;
  this is the one thing decoding drops). ``strict=True`` refuses all of these, and also
  unknown keys inside mail, ssh key, member and TOTP items.
* Attribute values must fit kanidmd's value model (§3.5): a scalar (string, bool, number,
  or an array of integers 0-255, the "Binary" form), an object of scalars, an array of
  scalars, or an array of objects of scalars. Anything else (nested objects, mixed
  arrays) is refused, as kanidmd answers 422. An empty array there is the Binary form:
  it is kept as is in ``extra`` or a GenericEntry, and the validator reports it (kanidmd
  refuses it for every multi-valued attribute, §3.5).
* **Typing** by the set of schema URNs (§3.6): {account, person} (+posixaccount,
  +oauth2_account) is a :class:`~kanidm_sync.Person` (the POSIX facet present iff the
  posixaccount URN is, the OAuth2 facet iff oauth2_account is); {group} (+posixgroup) a
  :class:`~kanidm_sync.Group`; {account, service_account} (+posixaccount) a
  :class:`~kanidm_sync.ServiceAccount`; anything else (or a URN listed twice) a
  :class:`~kanidm_sync.GenericEntry`. Attributes a typed class does not model go to
  ``extra``; the schema order is kept in ``schema_order`` so the bytes round-trip.
* A typed entry missing a required value (``name``, ``displayname``; the OAuth2 facet's
  provider and user id) or holding a value of the wrong JSON type is a DecodeError.
* But an entry whose content the typed class cannot represent faithfully decodes as a
  :class:`~kanidm_sync.GenericEntry`, so nothing is lost and the validator (or kanidmd)
  reports it: an attribute another typed class or facet models (``gidnumber`` without
  the posixaccount URN, ``member`` on a person), a differently cased spelling of a
  modelled attribute (``Name``), an explicit empty array for a modelled multi-valued
  attribute (``"mail": []``), or (tolerant mode) unknown keys in a mail, ssh key, member
  or TOTP item (``{"type":"work", …}``, which kanidmd ignores).
* Hence ``encode(decode(x))`` equals serde's normalisation of ``x`` for every ``x`` that
  decodes: same values, compact, ordered, cookie unpadded, UUIDs canonical, no ``meta``.

The codec is split along its seams: ``_codec_common.py`` (wire constants, JSON paths,
error collection, raw values), ``_codec_state.py`` (cookie, states, retention),
``_encode.py`` (with its fast text path ``_encode_text.py``) and ``_decode.py`` (with the
streaming parse ``_decode_stream.py`` and the per-entry fast path ``_decode_fast.py``). This
module is the one place the rest of the package imports them from.
"""

from __future__ import annotations

from ._codec_common import _GROUP_KEYS as _GROUP_KEYS
from ._codec_common import _OAUTH2_KEYS as _OAUTH2_KEYS
from ._codec_common import _PERSON_KEYS as _PERSON_KEYS
from ._codec_common import _POSIXACCOUNT_KEYS as _POSIXACCOUNT_KEYS
from ._codec_common import _POSIXGROUP_KEYS as _POSIXGROUP_KEYS
from ._codec_common import _SERVICE_KEYS as _SERVICE_KEYS
from ._codec_state import (
    decode_cookie,
    decode_retention,
    decode_sync_state,
    encode_cookie,
    encode_retention,
    encode_sync_state,
)
from ._decode import decode_changeset, decode_changeset_json, decode_entry
from ._encode import dumps, encode_changeset, encode_entry
from ._encode_text import encode_changeset_json

__all__ = [
    "decode_changeset",
    "decode_changeset_json",
    "decode_cookie",
    "decode_entry",
    "decode_retention",
    "decode_sync_state",
    "dumps",
    "encode_changeset",
    "encode_changeset_json",
    "encode_cookie",
    "encode_entry",
    "encode_retention",
    "encode_sync_state",
]
