"""The run configuration of ``kanidm-sync plan`` / ``run`` / ``status`` (docs/cli.md).

Owns: reading a kanidm-sync TOML file (``[kanidm]``, ``[source]``, ``[rules]``, ``[guards]``,
``[schedule]``, ``[state]``) or a kanidm-ldap-sync / kanidm-ipa-sync file, into a
:class:`RunConfig`; and building the source adapter a run needs from it.

Must not: talk to Kanidm or read the source (that happens when the runner fetches), or put
a token in a message. Relative paths are relative to the configuration file's directory.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import pathlib
import tomllib
from collections.abc import Callable, Mapping
from typing import Final, Literal

import attrs

from .._account import SyncAccount
from .._cron import CronExpression
from .._exceptions import ConfigError
from .._guards import Guards
from .._rules import Rules
from .._schedule import CronSchedule, Schedule
from ..adapters import SnapshotAdapter, SourceAdapter
from ..adapters._ldap_config import IpaConfig, LdapConfig, load_config
from ..adapters.files import CsvSource, FieldMapping, JsonSource, LdifSource

__all__ = ["SOURCE_TYPES", "CronSpec", "RunConfig", "load_run_config"]

SOURCE_TYPES: Final = ("ldif", "csv", "json", "ldap", "freeipa")

_TOP: Final = ("kanidm", "source", "rules", "guards", "schedule", "state")
_KANIDM: Final = (
    "url",
    "sync_token",
    "sync_token_file",
    "sync_token_credential",
    "ca_path",
    "insecure_http",
    "account",
)
_TOKEN_KEYS: Final = ("sync_token_file", "sync_token_credential", "sync_token")
_GUARDS: Final = (
    "max_delete_count",
    "max_delete_fraction",
    "allow_empty_source",
    "max_shrink_fraction",
    "allow_shrink",
)
_SCHEDULE: Final = ("interval", "cron", "jitter", "backoff_factor", "backoff_max")
# The TOML type each [guards] / [schedule] key needs; Guards' and Schedule's own validators
# compare before they check types, and would answer a string with a bare TypeError.
_KEY_TYPES: Final[dict[str, Literal["bool", "count", "number", "string"]]] = {
    "max_delete_count": "count",
    "max_delete_fraction": "number",
    "allow_empty_source": "bool",
    "max_shrink_fraction": "number",
    "allow_shrink": "bool",
    "interval": "number",
    "cron": "string",
    "jitter": "number",
    "backoff_factor": "number",
    "backoff_max": "number",
}
_DELAYS: Final = frozenset({"interval", "backoff_max"})
_MAX_DELAY: Final = 365 * 86400
_STATE: Final = ("dir",)
_SOURCE: Final[dict[str, tuple[str, ...]]] = {
    "ldif": ("type", "path"),
    "csv": ("type", "path", "delimiter", "kind_field", "default_kind", "separator", "fields"),
    "json": ("type", "path", "lines", "kind_field", "default_kind", "separator", "fields"),
    "ldap": ("type", "config"),
    "freeipa": ("type", "config"),
}

SourceType = Literal["ldif", "csv", "json", "ldap", "freeipa"]


@attrs.frozen(kw_only=True)
class CronSpec:
    """A cron schedule as configured; :meth:`build` makes it with a clock.

    Attributes:
        cron: the expression.
        backoff_factor: how much longer to wait after each further failure.
        backoff_max: the longest wait after failures, in seconds.
    """

    cron: CronExpression
    backoff_factor: float = 2.0
    backoff_max: float | None = None

    def build(self, clock: Callable[[], _dt.datetime]) -> CronSchedule:
        """The schedule, its backoff unit measured now.

        Args:
            clock: returns the current time, timezone-aware.

        Returns:
            The schedule.

        Raises:
            ConfigError: the expression has no time left.
        """
        return CronSchedule.from_cron(
            self.cron, clock=clock, backoff_factor=self.backoff_factor, backoff_max=self.backoff_max
        )


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything a run needs, read from one configuration file.

    Attributes:
        path: the configuration file.
        account: where Kanidm is and the sync token (masked in every repr).
        source_type: one of :data:`SOURCE_TYPES`.
        source_options: the ``[source]`` table (paths already resolved).
        rules: exclude and remap rules (empty when none are configured).
        guards: the runner's guards.
        schedule: what ``run --schedule`` follows: an interval, or a cron expression
            (``[schedule] cron``, or a reference tool's ``schedule``, default every five
            minutes as there).
        state_dir: where the local record, the snapshot store and the status file live.
        ldap_config: for ``ldap`` / ``freeipa``: the kanidm-ldap-sync or kanidm-ipa-sync file.
        reference: that file, read.
        warnings: what was ignored while reading (unknown keys of a reference file), one
            message each naming the file and the key.
    """

    path: pathlib.Path
    account: SyncAccount
    source_type: SourceType
    source_options: Mapping[str, object] = attrs.field(factory=dict, hash=False)
    rules: Rules = attrs.field(factory=Rules)
    guards: Guards = attrs.field(factory=Guards)
    schedule: Schedule | CronSpec | None = None
    state_dir: pathlib.Path
    ldap_config: pathlib.Path | None = None
    reference: LdapConfig | IpaConfig | None = attrs.field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def record_path(self) -> pathlib.Path:
        """The runner's record of what was last applied (an SQLite file).

        ``record.sqlite``; a state directory from before the record moved to SQLite holds
        ``record.json`` instead, which is read where it is until the next ``run`` or ``plan``
        renames it (:meth:`make_state_dir`).
        """
        return _current_or_legacy(self.state_dir, "record")

    @property
    def snapshot_path(self) -> pathlib.Path:
        """The snapshot store of a file source (an SQLite file; see :attr:`record_path`)."""
        return _current_or_legacy(self.state_dir, "snapshot")

    @property
    def status_path(self) -> pathlib.Path:
        """The last run's status and report, written by ``run``, read by ``status``."""
        return self.state_dir / "status.json"

    def make_state_dir(self) -> None:
        """Create the state directory if needed.

        Raises:
            ConfigError: it cannot be created, or a file stands in its place.
        """
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            for name in _STATE_FILES:
                _rename_legacy(self.state_dir, name)
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: [state] dir {self.state_dir} cannot be used as a directory "
                f"({exc.strerror or type(exc).__name__})"
            ) from exc

    def build_source(self) -> SourceAdapter:
        """The source adapter for this configuration.

        Returns:
            A snapshot adapter over a file source, or an LDAP / FreeIPA source.

        Raises:
            ConfigError: the source options are wrong, or python-ldap is missing.
        """
        opts = self.source_options
        if self.source_type in ("ldap", "freeipa"):
            return _ldap_source(self)
        path = pathlib.Path(str(opts["path"]))
        mapping = _field_mapping(opts, self.path) if self.source_type != "ldif" else None
        source: LdifSource | CsvSource | JsonSource
        if self.source_type == "ldif":
            source = LdifSource(path)
        elif self.source_type == "csv":
            delimiter = _opt_str(opts, "delimiter", self.path) or ","
            try:
                source = CsvSource(path, mapping, delimiter=delimiter)
            except ConfigError as exc:
                raise ConfigError(f"{self.path}: [source] {exc}") from None
        else:
            lines = opts.get("lines")
            if lines is not None and not isinstance(lines, bool):
                raise ConfigError(f"{self.path}: [source] lines must be true or false")
            source = JsonSource(path, mapping, lines=lines)
        self.make_state_dir()
        return SnapshotAdapter(source, self.snapshot_path, fingerprint=self.rules.fingerprint)


_STATE_FILES: Final = ("record", "snapshot")


def _current_or_legacy(state_dir: pathlib.Path, name: str) -> pathlib.Path:
    """``<name>.sqlite``, or ``<name>.json`` while only that older name exists."""
    current = state_dir / f"{name}.sqlite"
    legacy = state_dir / f"{name}.json"
    if not current.exists() and legacy.exists():
        return legacy
    return current


def _rename_legacy(state_dir: pathlib.Path, name: str) -> None:
    """Give a state file of an older release its current name.

    The store itself then converts its content from JSON to SQLite on first use.
    """
    legacy = state_dir / f"{name}.json"
    current = state_dir / f"{name}.sqlite"
    if legacy.exists() and not current.exists():
        os.replace(legacy, current)


def _opt_str(table: Mapping[str, object], key: str, where: pathlib.Path) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _field_mapping(opts: Mapping[str, object], where: pathlib.Path) -> FieldMapping:
    fields = opts.get("fields", {})
    if not isinstance(fields, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        raise ConfigError(f"{where}: [source.fields] must map entry fields to column names")
    kind = _opt_str(opts, "default_kind", where)
    if kind not in (None, "person", "group"):
        raise ConfigError(f"{where}: [source] default_kind must be 'person' or 'group'")
    try:
        return FieldMapping(
            fields=dict(fields),
            kind_field=_opt_str(opts, "kind_field", where) or "kind",
            default_kind=kind,  # type: ignore[arg-type]  # checked just above
            separator=_opt_str(opts, "separator", where) or "|",
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: [source] {exc}") from None


def _ldap_source(config: RunConfig) -> SourceAdapter:
    try:
        from ..adapters.ldap import source_from_config
    except ImportError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from exc
    assert config.reference is not None  # read for every ldap/freeipa configuration
    return source_from_config(config.reference)


def _table(data: Mapping[str, object], key: str, where: str) -> dict[str, object]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _known(table: Mapping[str, object], keys: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in keys:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(keys)})")


def _resolve(base: pathlib.Path, value: object, where: str) -> pathlib.Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string (a path)")
    path = pathlib.Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _utf8(raw: bytes) -> str | None:
    # None instead of an exception: a UnicodeDecodeError's .object is the file's bytes (a
    # token), and raising inside the handler would keep it as __context__.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parse_toml(raw: bytes, where: str) -> dict[str, object]:
    """The TOML document in ``raw``; the errors keep none of the file (it holds a token)."""
    bad = 0
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text, bad = None, exc.start
    if text is None:
        line = raw[:bad].count(b"\n") + 1
        raise ConfigError(f"{where}:{line}: not UTF-8 text (TOML must be UTF-8)")
    problem = None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a position, never the text; since 3.14 the error also
        # holds the whole document (.doc), so it is not chained.
        problem = str(exc).splitlines()[0]
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        problem = "arrays or inline tables nested too deeply"
    raise ConfigError(f"{where}: not valid TOML ({problem})")


def _read_token(path: pathlib.Path, where: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read the sync token file {path} ({exc.strerror})"
        ) from exc
    token = _utf8(data)
    if token is None:
        raise ConfigError(f"{where}: the sync token file {path} is not UTF-8 text")
    token = token.strip()
    if not token:
        raise ConfigError(f"{where}: the sync token file {path} is empty")
    return token


def _credential(value: object, where: str) -> pathlib.Path:
    """``[kanidm] sync_token_credential``: a file of systemd's credentials directory."""
    key = f"{where}: [kanidm] sync_token_credential"
    if not isinstance(value, str) or not value or value in (".", "..") or "/" in value:
        raise ConfigError(
            f"{key} must be a credential's name (LoadCredential=NAME:FILE names it), not {value!r}"
        )
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(
            f"{key} = {value!r} needs $CREDENTIALS_DIRECTORY, which systemd sets for a "
            f"service with LoadCredential={value}:FILE (docs/deploy.md); elsewhere use "
            "sync_token_file"
        )
    return pathlib.Path(directory) / value


def _token(kanidm: Mapping[str, object], base: pathlib.Path, where: str) -> str:
    given = [key for key in _TOKEN_KEYS if key in kanidm]
    if len(given) > 1:
        raise ConfigError(f"{where}: [kanidm] has both {given[0]} and {given[1]}; keep one")
    if "sync_token_file" in kanidm:
        token_file = _resolve(base, kanidm["sync_token_file"], f"{where}: [kanidm] sync_token_file")
        return _read_token(token_file, where)
    if "sync_token_credential" in kanidm:
        return _read_token(_credential(kanidm["sync_token_credential"], where), where)
    if isinstance(kanidm.get("sync_token"), str) and kanidm["sync_token"]:
        return str(kanidm["sync_token"]).strip()
    raise ConfigError(
        f"{where}: [kanidm] needs sync_token_file (or sync_token_credential, or sync_token)"
    )


def load_run_config(
    path: str | pathlib.Path,
    *,
    url: str | None = None,
    state_dir: str | pathlib.Path | None = None,
    insecure_http: bool = False,
    ca_path: str | None = None,
) -> RunConfig:
    """Read a kanidm-sync configuration, or a kanidm-ldap-sync / kanidm-ipa-sync file.

    Args:
        path: the file.
        url: the Kanidm URL, overriding the file (and required for the reference tools'
            files, which do not name Kanidm: there it can also come from ``KANIDM_URL``
            or the Kanidm client configuration, resolved by the caller).
        state_dir: overrides ``[state] dir``.
        insecure_http: permit ``http://`` (the loopback test double).
        ca_path: a PEM CA file, overriding ``[kanidm] ca_path``.

    Returns:
        The configuration.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or a key is wrong (the message
            names the file and the key).
    """
    file = pathlib.Path(path)
    where = str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the configuration ({exc.strerror})") from exc
    data = _parse_toml(raw, where)
    base = file.resolve().parent
    default_state = base / f"{file.stem}.state"
    if "ldap_uri" in data or "ipa_uri" in data:
        return _reference_tool_config(
            file, data, url, state_dir or default_state, insecure_http, ca_path
        )
    _known(data, _TOP, where)
    kanidm = _table(data, "kanidm", where)
    _known(kanidm, _KANIDM, f"{where} [kanidm]")
    the_url = url or kanidm.get("url")
    if not isinstance(the_url, str) or not the_url:
        raise ConfigError(f"{where}: [kanidm] url is required (the Kanidm origin)")
    token = _token(kanidm, base, where)
    insecure = kanidm.get("insecure_http", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"{where}: [kanidm] insecure_http must be true or false")
    ca = ca_path
    if ca is None and "ca_path" in kanidm:
        ca = str(_resolve(base, kanidm["ca_path"], f"{where}: [kanidm] ca_path"))
    name = kanidm.get("account")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"{where}: [kanidm] account must be a string (the account's name)")
    account = SyncAccount(
        url=the_url,
        token=token,
        name=name if isinstance(name, str) else None,
        ca_path=ca,
        allow_insecure_http=insecure or insecure_http,
    )

    source = _table(data, "source", where)
    kind = source.get("type")
    if kind not in SOURCE_TYPES:
        raise ConfigError(
            f"{where}: [source] type must be one of {', '.join(SOURCE_TYPES)}, not {kind!r}"
        )
    _known(source, _SOURCE[str(kind)], f"{where} [source]")
    options = dict(source)
    ldap_config = reference = None
    if kind in ("ldap", "freeipa"):
        ldap_config = _resolve(base, source.get("config"), f"{where}: [source] config")
        reference = load_config(ldap_config)
    else:
        options["path"] = _resolve(base, source.get("path"), f"{where}: [source] path")

    return RunConfig(
        path=file,
        account=account,
        source_type=kind,  # narrowed by the check against SOURCE_TYPES above
        source_options=options,
        rules=_rules(data, base, where),
        guards=_guards(data, where),
        schedule=_schedule(data, where),
        state_dir=pathlib.Path(state_dir)
        if state_dir
        else _state_dir(data, base, where) or default_state,
        ldap_config=ldap_config,
        reference=reference,
        warnings=reference.warnings if reference is not None else (),
    )


def _rules(data: Mapping[str, object], base: pathlib.Path, where: str) -> Rules:
    table = dict(_table(data, "rules", where))
    rules_file = table.pop("file", None)
    if rules_file is not None:
        if table:
            raise ConfigError(
                f"{where}: [rules] has both 'file' and inline rules; keep the rules in one place"
            )
        return Rules.load(_resolve(base, rules_file, f"{where}: [rules] file"))
    return Rules.from_mapping(table, source=f"{where} [rules]")


def _check_types(table: Mapping[str, object], where: str) -> None:
    for key, value in table.items():
        kind = _KEY_TYPES[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{where} {key} must be true or false, not {value!r}")
        elif kind == "string":
            if not isinstance(value, str):
                raise ConfigError(f"{where} {key} must be a string, not {value!r}")
        elif kind == "count" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where} {key} must be a whole number, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} {key} must be a number, not {value!r}")
        elif not math.isfinite(value):
            raise ConfigError(f"{where} {key} must be a finite number, not {value!r}")
        elif key in _DELAYS and value > _MAX_DELAY:
            # Event.wait and the status file's "next run due" overflow long before inf.
            raise ConfigError(f"{where} {key} must be at most {_MAX_DELAY} seconds (a year)")


def _guards(data: Mapping[str, object], where: str) -> Guards:
    table = _table(data, "guards", where)
    _known(table, _GUARDS, f"{where} [guards]")
    _check_types(table, f"{where}: [guards]")
    try:
        return Guards(**table)  # type: ignore[arg-type]  # attrs validators check the values
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: [guards] {exc}") from exc


def _schedule(data: Mapping[str, object], where: str) -> Schedule | CronSpec | None:
    table = _table(data, "schedule", where)
    if not table:
        return None
    _known(table, _SCHEDULE, f"{where} [schedule]")
    _check_types(table, f"{where}: [schedule]")
    if ("interval" in table) == ("cron" in table):
        raise ConfigError(
            f"{where}: [schedule] needs interval (seconds between runs) or cron (a cron "
            "expression, as kanidm-ldap-sync's schedule), not both"
        )
    if "cron" in table:
        if "jitter" in table:
            raise ConfigError(
                f"{where}: [schedule] jitter does not apply to cron (it runs at its times)"
            )
        options = dict(table)
        text = str(options.pop("cron"))
        try:
            cron = CronExpression.parse(text)
            return CronSpec(cron=cron, **options)  # type: ignore[arg-type]  # checked above
        except ValueError as exc:
            raise ConfigError(f"{where}: [schedule] cron: {exc}") from exc
    try:
        return Schedule(**table)  # type: ignore[arg-type]  # attrs validators check the values
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: [schedule] {exc}") from exc


def _state_dir(data: Mapping[str, object], base: pathlib.Path, where: str) -> pathlib.Path | None:
    table = _table(data, "state", where)
    _known(table, _STATE, f"{where} [state]")
    if "dir" not in table:
        return None
    return _resolve(base, table["dir"], f"{where}: [state] dir")


def _reference_tool_config(
    file: pathlib.Path,
    data: Mapping[str, object],
    url: str | None,
    state_dir: str | pathlib.Path,
    insecure_http: bool,
    ca_path: str | None,
) -> RunConfig:
    where = str(file)
    kind: SourceType = "freeipa" if "ipa_uri" in data else "ldap"
    tool = "kanidm-ipa-sync" if kind == "freeipa" else "kanidm-ldap-sync"
    if not url:
        raise ConfigError(
            f"{where}: a {tool} file does not name Kanidm; pass --url, set KANIDM_URL, "
            "or set uri in the Kanidm client configuration"
        )
    token = data.get("sync_token")
    if not isinstance(token, str) or not token:
        raise ConfigError(f"{where}: sync_token is required")
    # Read as the tools read it: unknown keys are warnings, the schedule is checked.
    reference = load_config(file)
    account = SyncAccount(
        url=url, token=token.strip(), ca_path=ca_path, allow_insecure_http=insecure_http
    )
    return RunConfig(
        path=file,
        account=account,
        source_type=kind,
        source_options={"type": kind, "config": str(file)},
        # The tools run on their schedule (default every five minutes); so does
        # `run --schedule` without an interval.
        schedule=CronSpec(cron=reference.cron),
        state_dir=pathlib.Path(state_dir),
        ldap_config=file,
        reference=reference,
        warnings=reference.warnings,
    )
