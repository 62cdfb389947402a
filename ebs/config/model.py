"""The configuration schema: the original ELNBuildSync YAML, plus ebs's own sections.

Field names here are the contract other modules use; validation details and
semantics live beside them in this package.  The original's format is read
unchanged: its ``db`` block, the dynamic config's ``control.trigger_tag`` and
``open_id_connect.client_secret`` (better in a file, see ebs.api.app) are
handled by ``ebs.config.loader`` before validation.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

PRODUCTION_BODHI_URL = "https://bodhi.fedoraproject.org/"
STAGING_BODHI_URL = "https://bodhi.stg.fedoraproject.org/"
DEFAULT_CONTENT_RESOLVER = "https://tiny.distro.builders"
DEFAULT_ORDERING = 1000


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"invalid regex {pattern!r}: {e.msg}") from None
    return pattern


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url


def _none_as_empty_list(value: Any) -> Any:
    # `exclude:` with every entry commented out is YAML null; mean "none".
    return [] if value is None else value


def _none_as_empty_dict(value: Any) -> Any:
    return {} if value is None else value


def _scalar_as_list(value: Any) -> Any:
    # The original accepted `view: eln` as well as `view: [eln]`.
    return [value] if isinstance(value, str) else value


Regex = Annotated[str, AfterValidator(_check_regex)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
RegexList = Annotated[list[Regex], BeforeValidator(_none_as_empty_list)]
NameList = Annotated[list[str], BeforeValidator(_scalar_as_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _auth_shorthand(value: Any) -> Any:
    # `auth: none` / `auth: kerberos` as well as `auth: {method: kerberos, ...}`.
    return {"method": value} if isinstance(value, str) else value


class KojiAuth(_Strict):
    """kerberos: GSSAPI with principal + keytab (production). password: the
    hub's password login (hub 1.35 `login`), for tests and sites without
    Kerberos. ssl: sslLogin with a client certificate (or a front end setting
    REMOTE_USER). Secrets stay in files the worker reads; only paths are config."""

    method: Literal["kerberos", "password", "ssl", "none"] = "none"
    principal: str | None = None
    keytab: str | None = None
    user: str | None = None
    password_file: str | None = None
    cert: str | None = None  # PEM with the client certificate and its key
    serverca: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _auth_shorthand(value)

    @model_validator(mode="after")
    def _principal_with_keytab(self) -> KojiAuth:
        if self.method == "kerberos" and bool(self.principal) != bool(self.keytab):
            raise ValueError(
                "kerberos auth takes both principal and keytab (or neither, to use the "
                "existing credential cache)"
            )
        if self.method == "password" and not (self.user and self.password_file):
            raise ValueError("password auth takes user and password_file (a file holding "
                             "the password; never the password itself)")
        if self.method == "ssl" and not self.cert:
            raise ValueError("ssl auth takes cert: the client certificate (PEM, with its key)")
        belongs = {"principal": "kerberos", "keytab": "kerberos", "user": "password",
                   "password_file": "password", "cert": "ssl", "serverca": "ssl"}
        stray = [k for k, m in belongs.items() if getattr(self, k) and m != self.method]
        if stray:
            raise ValueError(f"{', '.join(stray)} not read with auth method {self.method!r}")
        return self


class KojiConfig(_Strict):
    profile: str = "koji"
    trigger_tag: str
    build_target: str
    stable_tag: str
    scratch_build: bool = False
    fail_fast: bool = False
    wait_repo: bool = True
    draft_builds: bool = True
    username: str | None = None  # the Koji user ebs acts as (task/side-tag owner)
    # The original's; accepted with a logged note, no effect in ebs (ebs.config.loader).
    instance: str | None = None
    # The original's wait for a side tag's buildroot (seconds): when set, it is
    # timers.tag_timeout (EbsConfig._side_tag_timeout).
    side_tag_timeout: float | None = Field(default=None, gt=0)
    server: HttpUrl | None = None  # hub URL; overrides the profile's
    weburl: HttpUrl | None = None
    topurl: HttpUrl | None = None
    auth: KojiAuth = KojiAuth()
    # createSideTag's suffix (must be in the hub's sidetag allowed_suffixes):
    # ebs's side tags are then told from others of the same account by name.
    side_tag_suffix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+$")
    multicall_chunk: int = Field(default=500, ge=1, le=5000)

    @model_validator(mode="after")
    def _production_waits_for_repos(self) -> KojiConfig:
        if self.profile == "koji" and self.server is None and not self.wait_repo:
            raise ValueError("wait_repo cannot be false with the production Koji profile 'koji'")
        return self


class BodhiAuth(_Strict):
    """kerberos: OIDC login with the worker's Kerberos credential (production).
    token-file: a bodhi-client token store seeded beforehand (its refresh token
    keeps it alive); ebs never logs in itself. The path is config, the secret
    stays in the file, read by the worker only."""

    method: Literal["kerberos", "token-file", "none"] = "kerberos"
    client_id: str | None = None
    id_provider: HttpUrl | None = None
    token_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _auth_shorthand(value)

    @model_validator(mode="after")
    def _token_file_with_its_method(self) -> BodhiAuth:
        if self.method == "token-file" and not self.token_file:
            raise ValueError("bodhi auth 'token-file' needs token_file: the path of a "
                             "bodhi-client token store (seed it with `bodhi` login once)")
        if self.method != "token-file" and self.token_file:
            raise ValueError(f"token_file is only read with method 'token-file', "
                             f"not {self.method!r}")
        return self


class BodhiConfig(_Strict):
    batch_size: int = Field(default=0, ge=0)  # 0: one update, no split
    # Split into batch_size updates only above this many builds; None: batch_size.
    max_single_batch_size: int | None = Field(default=None, ge=0)
    # As the original: warn_timeout in MINUTES (0: no warning), stable_timeout in seconds.
    warn_timeout: float = Field(default=180.0, ge=0)
    stable_timeout: float = Field(default=86400.0, gt=0)
    staging: bool | None = None
    url: HttpUrl | None = None
    auth: BodhiAuth = BodhiAuth()

    def single_update_limit(self) -> int:
        """Up to this many builds stay one update (the original's default: batch_size)."""
        if self.max_single_batch_size is None:
            return self.batch_size
        return self.max_single_batch_size

    def warn_seconds(self) -> float:
        """warn_timeout in seconds; 0 means no warning mail."""
        return self.warn_timeout * 60.0

    @model_validator(mode="after")
    def _max_single_needs_batch_size(self) -> BodhiConfig:
        if self.max_single_batch_size and self.batch_size == 0:
            raise ValueError(
                "max_single_batch_size is set but batch_size is 0 (no splitting); set "
                "batch_size too, or remove max_single_batch_size"
            )
        return self

    def base_url(self) -> str:
        """The Bodhi server: `url`, else staging or production Fedora Bodhi."""
        if self.url:
            return self.url
        return STAGING_BODHI_URL if self.staging else PRODUCTION_BODHI_URL

    @model_validator(mode="after")
    def _anonymous_only_off_production(self) -> BodhiConfig:
        if self.auth.method == "none":
            host = urlsplit(self.base_url()).hostname
            if host == urlsplit(PRODUCTION_BODHI_URL).hostname:
                raise ValueError(
                    "auth 'none' is for staging or sandbox Bodhi only; set bodhi.url "
                    "or bodhi.staging: true"
                )
        return self


class ControlConfig(_Strict):
    skip_tag: RegexList = []
    exclude: RegexList = []
    ordering: Annotated[dict[Regex, int], BeforeValidator(_none_as_empty_dict)] = {}
    pause: bool = False
    status_interval: int = Field(default=600, gt=0)
    # ebs only: the most packages one batch takes; a larger queue becomes
    # consecutive batches, lowest ordering first. Temporal refuses a payload
    # over 2 MB, and a batch's input and result grow with its packages.
    max_batch_packages: int = Field(default=2000, ge=1, le=5000)


class EmailConfig(_Strict):
    smtp_host: str
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    from_: str = Field(alias="from")
    recipients: list[str] = Field(min_length=1)
    password_file: str | None = None
    starttls: bool = True

    @field_validator("recipients")
    @classmethod
    def _non_empty_addresses(cls, recipients: list[str]) -> list[str]:
        for address in recipients:
            if not address.strip():
                raise ValueError("recipients must be non-empty addresses")
        return recipients


class OpenIdConnectConfig(_Strict):
    auth_url: HttpUrl
    client_id: str
    token_endpoint: HttpUrl
    userinfo_endpoint: str = ""
    scopes: list[str] = ["openid", "profile", "https://id.fedoraproject.org/scope/groups"]
    admin_groups: list[str]
    issuer: str | None = None
    audience: str | None = None
    jwks_uri: str | None = None
    # The client secret, for the API's browser login and token introspection
    # (`ebs api --openid-client-secret-file` overrides it).
    client_secret_file: str | None = None
    # Accepted inline for the original's configs (with a warning); never printed.
    client_secret: SecretStr | None = Field(default=None, repr=False)


def _false_disables(value: Any) -> Any:
    if value is False:
        return None
    if value is True:
        raise ValueError("expected a mapping, or false to disable")
    return value


class Configuration(_Strict):
    koji: KojiConfig
    bodhi: BodhiConfig = BodhiConfig()
    control: ControlConfig = ControlConfig()
    email: EmailConfig | None = None  # `email: false` disables
    open_id_connect: OpenIdConnectConfig | None = None  # `false` disables

    _disabled_sections = field_validator("email", "open_id_connect", mode="before")(_false_disables)
    _empty_sections = field_validator("bodhi", "control", mode="before")(_none_as_empty_dict)

    @model_validator(mode="after")
    def _koji_and_bodhi_agree(self) -> Configuration:
        profile, staging = self.koji.profile, self.bodhi.staging
        if profile == "koji" and staging is True and self.koji.server is None:
            raise ValueError(
                "koji.profile is 'koji' (production) but bodhi.staging is true; "
                "production Koji needs production Bodhi"
            )
        if profile == "stg" and staging is False:
            raise ValueError(
                "koji.profile is 'stg' (staging) but bodhi.staging is false; "
                "staging Koji needs staging Bodhi"
            )
        if profile == "stg" and staging is None:
            # As the original: the staging Koji profile means staging Bodhi.
            object.__setattr__(self, "bodhi", self.bodhi.model_copy(update={"staging": True}))
        return self


class AutoPackageList(_Strict):
    view: NameList = Field(default=["eln"], min_length=1)
    source: NameList = Field(default=["source", "buildroot-source"], min_length=1)
    content_resolver: HttpUrl = DEFAULT_CONTENT_RESOLVER


class Override(_Strict):
    # The original merges every key of an override into the component's entry;
    # ebs reads upstream_name only and keeps the others (noted in the log).
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    upstream_name: str | None = None


class Components(_Strict):
    autopackagelist: AutoPackageList | None = None
    overrides: Annotated[
        dict[str, Annotated[Override, BeforeValidator(_none_as_empty_dict)]],
        BeforeValidator(_none_as_empty_dict),
    ] = {}


class TemporalConfig(_Strict):
    address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = "ebs"
    tls: bool = False
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    api_key_file: str | None = None
    profile: str | None = None  # a temporalio envconfig profile name
    ui_url: str = "http://localhost:8233"

    @model_validator(mode="after")
    def _cert_with_key(self) -> TemporalConfig:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self


def _check_origin(origin: str) -> str:
    parts = urlsplit(origin)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path
            or parts.query or parts.fragment or parts.username or parts.password):
        raise ValueError(
            f"expected an origin (scheme://host[:port], no path or trailing slash), "
            f"got {origin!r}"
        )
    return origin


Origin = Annotated[str, AfterValidator(_check_origin)]


class ApiConfig(_Strict):
    """`ebs api`'s own settings (ebs only)."""

    # Browser origins of Temporal Web UIs allowed to call the codec server
    # (/codec/encode, /codec/decode) across origins (CORS); none by default.
    codec_cors_origins: Annotated[list[Origin], BeforeValidator(_none_as_empty_list)] = []


class MessagingConfig(_Strict):
    """ebs's own messages (ebs-messages topics). `messaging: false` (the default)
    publishes nothing; the broker, exchange and `topic_prefix` come from the
    fedora-messaging TOML `config` (default $FEDORA_MESSAGING_CONF, else
    /etc/fedora-messaging/config.toml)."""

    publish: bool = True
    config: str | None = None
    publish_timeout: float = Field(default=10.0, gt=0, le=60)
    # A JSON-lines file of messages seen on the bus, shown on the status page
    # (`ebs dev` writes one; ebs.devstack.messages).
    recent_log: str | None = None


class Timers(_Strict):
    lull: float = Field(default=60.0, gt=0)
    task_poll: float = Field(default=300.0, gt=0)
    repo_poll: float = Field(default=60.0, gt=0)
    task_timeout: float = Field(default=24 * 3600.0, gt=0)
    tag_timeout: float = Field(default=3600.0, gt=0)
    stable_poll: float = Field(default=600.0, gt=0)
    config_refresh: float = Field(default=900.0, gt=0)
    sidetag_sweep: float = Field(default=12 * 3600.0, gt=0)
    sidetag_grace: float = Field(default=48 * 3600.0, gt=0)
    # The original's 12-hourly cleanup (queue listed components missing from the
    # stable tag): the ebs-cleanup schedule.
    cleanup: float = Field(default=12 * 3600.0, gt=0)


class EbsConfig(_Strict):
    configuration: Configuration
    components: Components = Components()
    temporal: TemporalConfig = TemporalConfig()
    api: ApiConfig = ApiConfig()
    timers: Timers = Timers()
    messaging: MessagingConfig | None = None  # `false` (the default) disables

    _empty_sections = field_validator("components", "temporal", "api", "timers",
                                      mode="before")(
        _none_as_empty_dict
    )

    @model_validator(mode="after")
    def _side_tag_timeout(self) -> EbsConfig:
        """The original's koji.side_tag_timeout is ebs's timers.tag_timeout."""
        original = self.configuration.koji.side_tag_timeout
        if original is None or original == self.timers.tag_timeout:
            return self
        if "tag_timeout" in self.timers.model_fields_set:
            raise ValueError(
                f"configuration.koji.side_tag_timeout ({original:g}) and timers.tag_timeout "
                f"({self.timers.tag_timeout:g}) disagree; keep one"
            )
        timers = self.timers.model_copy(update={"tag_timeout": original})
        object.__setattr__(self, "timers", timers)
        return self

    @field_validator("messaging", mode="before")
    @classmethod
    def _messaging_switch(cls, value: Any) -> Any:
        return {} if value is True else _false_disables(value)
