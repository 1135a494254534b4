"""The entries kanidmd creates at its first start (domain level 15, release 1.11).

Owns: one table of built-in entries (:data:`BUILTINS`): the built-in accounts and groups,
the access control profiles and the system entries, with their fixed UUIDs, names and
classes. Must not: hold state or know about the store (the store turns the table into
entries and adds the SPNs).

Written by hand from kanidm v1.11.1: a fresh kanidmd bootstraps straight to domain level 15
(server/lib/src/server/migrations.rs ``initialise_helper`` → ``migrate_domain_1_10_to_1_11``),
which creates, in this order, the entries of server/lib/src/migration_data/dl15/mod.rs
``phase_3_key_provider`` (key_providers.rs), ``phase_4_system_entries`` (system_config.rs),
``phase_5_builtin_admin_entries`` and ``phase_6_builtin_non_admin_entries`` (accounts.rs,
groups.rs, converted by types.rs ``From<BuiltinAccount>`` and groups.rs
``TryFrom<BuiltinGroup>``), and ``phase_7_builtin_access_control_profiles`` (access.rs). UUIDs
from server/lib/src/constants/uuids.rs. Every one of them gets the class ``builtin``
(server/lib/src/plugins/base.rs ``pre_create_transform``: an internal create below
``DYNAMIC_RANGE_MINIMUM_UUID``).

Abridged: accounts and groups keep ``name``, ``description``, ``displayname`` and
``member``; access control profiles and system entries keep only their classes and
``name``. The ACP rules, dynamic-group filters, key material, ``entry_managed_by`` and the
other configuration attributes are left out; nothing in the double reads them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Final

import attrs

__all__ = ["BUILTINS", "BuiltinEntry"]


@attrs.frozen
class BuiltinEntry:
    """One entry kanidmd creates at its first start.

    Attributes:
        uuid: its fixed UUID.
        classes: its classes (``object`` and ``builtin`` included).
        attrs: its stored attributes (no ``spn``: the store derives it from its domain).
    """

    uuid: uuid.UUID
    classes: frozenset[str]
    attrs: Mapping[str, tuple[object, ...]]

    @property
    def name(self) -> str | None:
        """The entry's ``name``, if it has one."""
        names = self.attrs.get("name", ())
        return str(names[0]) if names else None


def _u(suffix: str) -> uuid.UUID:
    return uuid.UUID("00000000-0000-0000-0000-" + suffix)


def _entry(suffix: str, classes: tuple[str, ...], **attrs_: tuple[object, ...]) -> BuiltinEntry:
    return BuiltinEntry(_u(suffix), frozenset(("object", "builtin", *classes)), dict(attrs_))


def _account(suffix: str, name: str, description: str, displayname: str) -> BuiltinEntry:
    # types.rs From<BuiltinAccount>: account, memberof, object + service_account.
    return _entry(
        suffix,
        ("account", "memberof", "service_account"),
        name=(name,),
        description=(description,),
        displayname=(displayname,),
    )


def _g(
    suffix: str, name: str, description: str, members: tuple[str, ...] = (), *, dyn: bool = False
) -> BuiltinEntry:
    # groups.rs TryFrom<BuiltinGroup>: group, object; dyngroups (idm_all_persons,
    # idm_all_accounts) add dyngroup and, as extra attributes, account_policy and system.
    classes = ("group", "dyngroup", "account_policy", "system") if dyn else ("group",)
    attrs_: dict[str, tuple[object, ...]] = {"name": (name,), "description": (description,)}
    if members:
        attrs_["member"] = tuple(_u(m) for m in members)
    return _entry(suffix, classes, **attrs_)


_ACP_OPS: Final = {
    "c": "access_control_create",
    "d": "access_control_delete",
    "m": "access_control_modify",
    "s": "access_control_search",
}


def _acp(suffix: str, name: str, ops: str, *, manager: bool = False) -> BuiltinEntry:
    # access.rs From<BuiltinAcp>: its classes, a receiver class and the target-scope class.
    receiver = (
        "access_control_receiver_entry_manager" if manager else "access_control_receiver_group"
    )
    classes = ("access_control_profile", *(_ACP_OPS[o] for o in ops), receiver)
    return _entry(suffix, (*classes, "access_control_target_scope"), name=(name,))


_SYSTEM: Final = (
    # key_providers.rs e_key_provider_internal_dl6
    _entry(
        "ffffff000070", ("key_provider", "key_provider_internal"), name=("key_provider_internal",)
    ),
    # system_config.rs
    _entry("ffffff000001", ("system_info", "system")),
    _entry(
        "ffffff000025",
        (
            "domain_info",
            "system",
            "key_object",
            "key_object_jwt_es256",
            "key_object_jwt_hs256",
            "key_object_jwe_a128gcm",
        ),
        name=("domain_local",),
    ),
    _entry("ffffff000027", ("system_config", "system")),
    _entry("ffffff000076", ("key_object", "key_object_hkdf_s256")),
    _entry(
        "000000000058",
        ("feature", "key_object", "key_object_hkdf_s256"),
        name=("hmac_name_feature",),
    ),
)

_ACCOUNTS: Final = (
    _account("000000000000", "admin", "Builtin System Admin account.", "System Administrator"),
    _account("000000000018", "idm_admin", "Builtin IDM Admin account.", "IDM Administrator"),
    _account("ffffffffffff", "anonymous", "Anonymous access account.", "Anonymous"),
)

# fmt: off
_GROUPS: Final = (
    _g("000000000019", "system_admins", "Builtin System Administrators Group.", ("000000000000",)),
    _g("000000000001", "idm_admins", "Builtin IDM Administrators Group.", ("000000000018",)),
    _g("000000000035", "idm_all_persons", "Builtin IDM dynamic group containing all persons.",
       dyn=True),
    _g("000000000036", "idm_all_accounts",
       "Builtin IDM dynamic group containing all entries that can authenticate.", dyn=True),
    _g("000000000020", "domain_admins",
       "Builtin IDM Group for granting local domain administration rights and trust "
       "administration rights.", ("000000000019",)),
    _g("000000000010", "idm_schema_admins", "Builtin Schema Administration Group.",
       ("000000000019",)),
    _g("000000000011", "idm_access_control_admins",
       "Builtin Access Control Administration Group.", ("000000000019",)),
    _g("000000000044", "idm_unix_admins", "Builtin Unix Administration Group.",
       ("000000000001",)),
    _g("000000000053", "idm_unix_authentication_read",
       "Builtin IDM group allowing service accounts to read and authenticate unix users.",
       ("ffffffffffff",)),
    _g("000000000042", "idm_recycle_bin_admins", "Builtin Recycle Bin Administrators Group.",
       ("000000000019",)),
    _g("000000000041", "idm_service_desk", "Builtin Service Desk Group."),
    _g("000000000027", "idm_oauth2_admins", "Builtin Oauth2 Integration Administration Group.",
       ("000000000001",)),
    _g("000000000043", "idm_radius_service_admins", "Builtin Radius Administration Group.",
       ("000000000001",)),
    _g("000000000047", "idm_account_policy_admins",
       "Builtin Account Policy Administration Group.", ("000000000001",)),
    _g("000000000013", "idm_people_admins", "Builtin People Administration Group.",
       ("000000000001",)),
    _g("000000000002", "idm_people_pii_read",
       "Builtin IDM Group for granting elevated people (personal data) read permissions."),
    _g("000000000045", "idm_people_on_boarding", "Builtin People On Boarding Group."),
    _g("000000000046", "idm_service_account_admins",
       "Builtin Service Account Administration Group.", ("000000000001",)),
    _g("000000000051", "idm_mail_service_admins", "Builtin Mail Server Administration Group.",
       ("000000000001",)),
    _g("000000000015", "idm_group_admins",
       "Builtin IDM Group for granting elevated group write and lifecycle permissions.",
       ("000000000001",)),
    _g("000000000007", "idm_radius_servers",
       "Builtin IDM Group for RADIUS server access delegation."),
    _g("000000000052", "idm_mail_servers", "Builtin IDM Group for MAIL server access delegation."),
    _g("000000000048", "idm_people_self_name_write",
       "Builtin IDM Group denoting users that can write to their own name attributes."),
    _g("000000000033", "idm_people_self_mail_write",
       "Builtin IDM Group for people accounts to update their own mail."),
    _g("000000000049", "idm_client_certificate_admins",
       "Builtin Client Certificate Administration Group.", ("000000000001",)),
    _g("000000000050", "idm_application_admins", "Builtin Application Administration Group.",
       ("000000000001",)),
    _g("000000000054", "idm_message_admins", "Builtin Message Administration Group.",
       ("000000000001",)),
    _g("000000000055", "idm_message_senders",
       "Builtin IDM Group for message senders to read and process queued messages."),
    _g("000000000056", "idm_oauth2_client_admins", "Builtin Domain Trust Administration Group.",
       ("000000000019",)),
    _g("000000000057", "idm_oauth2_account_admins", "Builtin Domain Trust Administration Group.",
       ("000000000001",)),
    _g("000000001000", "idm_high_privilege",
       "Builtin IDM provided groups with high levels of access that should be audited and "
       "limited in modification.",
       ("000000000019", "000000000001", "000000000020", "000000000041", "000000000042",
        "000000000010", "000000000011", "000000000027", "000000000043", "000000000047",
        "000000000007", "000000000015", "000000000044", "000000000002", "000000000013",
        "000000000045", "000000000046", "000000000049", "000000000050", "000000000051",
        "000000000054", "000000000055", "000000000056", "000000000057", "000000001000")),
    _g("000000000038", "idm_ui_enable_experimental_features",
       "Members of this group will have access to experimental web UI features."),
    _g("000000000039", "idm_account_mail_read",
       "Members of this group will have access to read the mail attribute of all persons and "
       "service accounts."),
)

_ACPS: Final = (
    _acp("ffffff000002", "idm_acp_recycle_bin_search", "s"),
    _acp("ffffff000003", "idm_acp_recycle_bin_revive", "m"),
    _acp("ffffff000018", "idm_acp_schema_write_attrs", "cms"),
    _acp("ffffff000020", "idm_acp_schema_write_classes", "cms"),
    _acp("ffffff000019", "idm_acp_acp_manage", "cdms"),
    _acp("ffffff000048", "idm_acp_group_entry_managed_by_modify", "ms"),
    _acp("ffffff000050", "idm_acp_group_entry_manager", "ms", manager=True),
    _acp("ffffff000065", "idm_acp_sync_account_manage", "cdms"),
    _acp("ffffff000014", "idm_acp_radius_servers", "s"),
    _acp("ffffff000066", "idm_acp_radius_secret_manage", "ms"),
    _acp("ffffff000041", "idm_acp_people_self_write_mail", "m"),
    _acp("ffffff000046", "idm_acp_account_self_write", "m"),
    _acp("ffffff000006", "idm_acp_all_accounts_posix_read", "s"),
    _acp("ffffff000028", "idm_acp_system_config_account_policy_manage", "ms"),
    _acp("ffffff000068", "idm_acp_group_unix_manage", "ms"),
    _acp("ffffff000067", "idm_acp_hp_group_unix_manage", "ms"),
    _acp("ffffff000052", "idm_acp_group_read", "s"),
    _acp("ffffff000069", "idm_acp_account_unix_extend", "ms"),
    _acp("ffffff000007", "idm_acp_people_pii_read", "s"),
    _acp("ffffff000013", "idm_acp_people_pii_manage", "m"),
    _acp("ffffff000053", "idm_acp_people_read", "s"),
    _acp("ffffff000056", "idm_acp_people_manage", "m"),
    _acp("ffffff000055", "idm_acp_people_delete", "d"),
    _acp("ffffff000057", "idm_acp_people_credential_reset", "ms"),
    _acp("ffffff000058", "idm_acp_hp_people_credential_reset", "ms"),
    _acp("ffffff000059", "idm_acp_service_account_create", "c"),
    _acp("ffffff000060", "idm_acp_service_account_delete", "d"),
    _acp("ffffff000061", "idm_acp_service_account_entry_manager", "ms", manager=True),
    _acp("ffffff000062", "idm_acp_service_account_entry_managed_by_modify", "ms"),
    _acp("ffffff000063", "idm_acp_hp_service_account_entry_managed_by", "ms"),
    _acp("ffffff000064", "idm_acp_service_account_manage", "ms"),
    _acp("ffffff000054", "idm_acp_people_create", "c"),
    _acp("ffffff000045", "idm_acp_account_mail_read", "s"),
    _acp("ffffff000051", "idm_acp_self_name_write", "m"),
    _acp("ffffff000071", "idm_acp_hp_client_certificate_manager", "cdms"),
    _acp("ffffff000004", "idm_acp_self_read", "s"),
    _acp("ffffff000021", "idm_acp_self_write", "m"),
    _acp("ffffff000073", "idm_acp_application_manage", "cdms"),
    _acp("ffffff000072", "idm_acp_application_entry_manager", "ms", manager=True),
    _acp("ffffff000074", "idm_acp_mail_servers", "s"),
    _acp("ffffff000049", "idm_acp_group_account_policy_manage", "ms"),
    _acp("ffffff000022", "idm_acp_group_manage", "cdms"),
    _acp("ffffff000026", "idm_acp_domain_admin", "ms"),
    _acp("ffffff000035", "idm_acp_oauth2_manage", "cdms"),
    _acp("ffffff000077", "idm_acp_message_manage", "cms"),
    _acp("ffffff000078", "idm_acp_message_sender", "ms"),
    _acp("ffffff000079", "idm_acp_oauth2_client_admin", "cms"),
    _acp("ffffff000080", "idm_acp_oauth2_account_enrol", "ms"),
    _acp("ffffff000081", "idm_acp_oauth2_manage_basic", "ms"),
)
# fmt: on

BUILTINS: Final[tuple[BuiltinEntry, ...]] = (*_SYSTEM, *_ACCOUNTS, *_GROUPS, *_ACPS)
"""Every entry a fresh kanidmd 1.11 holds before anyone writes to it."""
