"""The one settings object. Every knob is an environment variable with the ``DCO_`` prefix
(``DCO_CONTENT_DIR``, ``DCO_DATABASE_URL`` …) or a ``.env`` entry.

Content locations default to the parts of ``DCO_CONTENT_DIR`` (a folder laid out like
``../shared``: ``attack/``, ``sigma/``, ``atomics/``, ``emulation-library/``,
``security-datasets/``, ``evtx-samples/``); each can be pointed elsewhere on its own, so
a deployment can use its own Sigma or Atomic Red Team checkout.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dcoflow.core.errors import ConfigError

OFFICIAL_ATTACK_URL = (
    "https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/enterprise-attack/enterprise-attack.json"
)

FieldMappingName = Literal["sysmon", "ecs"]  # how an Elastic index stores Windows events (models.sigma.siem_convert)

# content part → the setting that points it elsewhere (its variable is DCO_ + the setting upper-cased)
_PART_SETTINGS = {"sigma": "sigma_dir", "atomics": "atomics_dir", "emulation-library": "emulation_dir",
                  "security-datasets": "datasets_dir", "evtx-samples": "evtx_dir"}


class Settings(BaseSettings):
    # A variable set to "" is unset: a Prefect deployment renders an unset "{{ $DCO_X }}" as "", and an empty
    # path would otherwise mean the worker's current folder.
    model_config = SettingsConfigDict(env_prefix="DCO_", env_file=".env", extra="ignore", env_ignore_empty=True)

    # -- content ---------------------------------------------------------------------------
    content_dir: Path | None = Field(None, description="Folder laid out like ../shared (attack/, sigma/, …).")
    attack_source: str | None = Field(
        None,
        description="ATT&CK source: a bundle file (.json or .json.gz), an https URL, or "
        "taxii+https://server/api-root/collections/<id>/ . Defaults to the newest enterprise "
        "bundle in the content folder, else the official attack-stix-data URL.",
    )
    attack_domain: str = Field("enterprise", description="enterprise, mobile or ics.")
    sigma_dir: Path | None = None
    atomics_dir: Path | None = None
    emulation_dir: Path | None = None
    datasets_dir: Path | None = None
    evtx_dir: Path | None = None
    telemetry_dir: Path | None = Field(None, description="Telemetry files the scheduled hunt sweep reads "
                                       "(and `dco hunt --dco` without --data); no default: never the current folder.")

    # -- state -----------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("dcoflow")))
    cache_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("dcoflow")))
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite file in data_dir when unset.")
    output_dir: Path = Field(Path("dco-demo"), description="Where exports are written.")
    governance_file: Path | None = Field(
        None, description="Governance YAML (organisations, decision bodies, RACI); the shipped default when unset.")

    # -- HTTP --------------------------------------------------------------------------------
    http_timeout_s: float = 30.0
    http_retries: int = 3
    http_backoff_s: float = 0.5

    # -- SIEMs and other systems -----------------------------------------------------------------
    elastic_url: str | None = None
    elastic_index: str = "logs-*"
    elastic_api_key: SecretStr | None = None
    elastic_user: str | None = None
    elastic_password: SecretStr | None = None
    elastic_field_mapping: FieldMappingName = Field(
        "sysmon", description="How Elastic indices store Windows events: 'sysmon' (raw Sysmon/Windows field names) "
        "or 'ecs' (Elastic Common Schema, the Elastic Agent / Winlogbeat 7+ default).")
    elastic_index_mappings: dict[str, FieldMappingName] = Field(
        default_factory=dict, description='Per-index exceptions, index pattern → mapping, as JSON: '
        '{"logs-endpoint*": "ecs", "winlogbeat-raw-*": "sysmon"}.')
    elastic_eql_max_requests: int = Field(64, ge=1, description="EQL requests one query may spend counting its hits.")
    siem_concurrency: int = Field(4, ge=1, le=64, description="Rules a SIEM hunt runs at once.")
    siem_slice_hours: float = Field(0.0, ge=0, description="Split a SIEM hunt's window into slices this long "
                                    "(0: one query per rule over the whole window).")
    siem_rate_limit_budget_s: float = Field(900.0, ge=0, description="How long a SIEM hunt waits out 429/quota "
                                            "answers in total before it fails.")
    zombie_after_s: float = Field(600.0, ge=60, description="A flow run with no heartbeat for this long is marked "
                                  "Crashed (its worker was lost); keep it above PREFECT_FLOWS_HEARTBEAT_FREQUENCY.")
    splunk_url: str | None = None
    splunk_token: SecretStr | None = None
    splunk_index: str = "main"
    caldera_url: str | None = None
    caldera_api_key: SecretStr | None = None
    thehive_url: str | None = None
    thehive_api_key: SecretStr | None = None
    thehive_organisation: str | None = None
    taxii_url: str | None = Field(None, description="TAXII 2.1 API root that DCO results are published to.")
    taxii_collection: str | None = None
    taxii_user: str | None = None
    taxii_password: SecretStr | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_allow_unsigned: bool = Field(False, description="Send webhook notices without a signature when no "
                                         "DCO_WEBHOOK_SECRET is set (refused otherwise).")

    # -- emulation sandbox ---------------------------------------------------------------------------
    sandbox_dir: Path | None = Field(
        None, description="Where each local emulation step gets its own folder; default <system temp>/dcoflow-sandbox "
                          "(every folder above it must be traversable by the executor user).")
    executor_user: str = Field("nobody", description="Unprivileged user steps run as when dcoflow runs as root "
                                                     "and the rules of engagement do not allow elevation.")

    # -- assessment targets (a DCO's `targets` override them) -----------------------------------------
    target_detection: int = Field(3, ge=0, le=5, description="Detection level (DeTT&CT) below which is a gap.")
    target_visibility: int = Field(2, ge=1, le=4, description="Visibility level (DeTT&CT) below which is a gap.")

    # -- hunting limits ------------------------------------------------------------------------------
    max_archive_member_bytes: int = Field(2 * 1024**3, description="Refuse zip members larger than this.")
    max_bundle_bytes: int = Field(1024**3, gt=0, description="Refuse ATT&CK/STIX bundles larger than this "
                                  "(decompressed): a gzip bomb stops here, not at a MemoryError.")

    # -- derived locations -----------------------------------------------------------------------------
    def elastic_mapping_for(self, index: str) -> FieldMappingName:
        """``index``'s field mapping: the first pattern in ``elastic_index_mappings`` it matches, else the default."""
        from fnmatch import fnmatchcase

        for pattern, mapping in self.elastic_index_mappings.items():
            if fnmatchcase(index, pattern):
                return mapping
        return self.elastic_field_mapping

    def content_path(self, part: str) -> Path:
        """Resolve a content part (``sigma``, ``atomics``, …) or say which setting to use."""
        if part not in _PART_SETTINGS:
            raise ConfigError(f"unknown content part {part!r}", object=part,
                              hint=f"one of {sorted(_PART_SETTINGS)}")
        setting = _PART_SETTINGS[part]
        env = f"DCO_{setting.upper()}"
        explicit: Path | None = getattr(self, setting)
        path = explicit if explicit is not None else (self.content_dir / part if self.content_dir else None)
        if path is None:
            raise ConfigError(
                f"no location for {part} content",
                object=part,
                hint=f"set DCO_CONTENT_DIR to a folder laid out like ../shared, or {env}",
            )
        if not path.exists():
            raise ConfigError(f"{path} does not exist", object=part, hint=f"check DCO_CONTENT_DIR or {env}")
        return path

    def default_attack_source(self, domain: str | None = None) -> str:
        """The configured source, else the newest bundle of the domain in the content folder, else the URL."""
        domain = domain or self.attack_domain
        if self.attack_source:
            return self.attack_source
        if self.content_dir is not None and (self.content_dir / "attack").is_dir():
            bundles = sorted(
                (self.content_dir / "attack").glob(f"{domain}-attack-*.json*"),
                key=lambda p: [int(x) for x in re.findall(r"\d+", p.name.split("attack-")[-1])],
            )
            if bundles:
                return str(bundles[-1])
        return OFFICIAL_ATTACK_URL.replace("enterprise", domain)

    def telemetry_paths(self) -> list[Path]:
        """Where the scheduled sweep and a DCO's planned hunt read telemetry: DCO_TELEMETRY_DIR, which must be set
        and exist (an unset location is an error, never the current folder)."""
        if self.telemetry_dir is None:
            raise ConfigError("no telemetry location: DCO_TELEMETRY_DIR is not set", object="DCO_TELEMETRY_DIR",
                              hint="set it to the folder of telemetry files (for a try: ../shared/security-datasets), "
                                   "or pass the files (--data)")
        if not self.telemetry_dir.exists():
            raise ConfigError(f"telemetry folder {self.telemetry_dir} does not exist", object="DCO_TELEMETRY_DIR")
        return [self.telemetry_dir]

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'dcoflow.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
