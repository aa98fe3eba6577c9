"""Settings of the proxy: `BRIDGE_*` environment variables, each also a `serve` flag.

The names are a public interface: deployments and scripts depend on them.
Nothing here reads a file or the network at import; `api_key()` reads the key
file when asked, at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from legacy_bridge.errors import ConfigError
from legacy_bridge.modes import Mode, Primary

# The default tables, installed with the package: every command works from any folder.
PACKAGED_MAPPINGS = Path(__file__).resolve().with_name("mappings")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRIDGE_", frozen=True, extra="ignore")

    upstream_url: str = Field("http://127.0.0.1:9000",
                              description="Base URL of the GraphQL upstream; each mapping's "
                                          "endpoint path is appended")
    upstream_api_key: SecretStr | None = Field(None, description="Company API key, sent "
                                               "upstream as `Authorization: Token <key>`")
    upstream_api_key_file: Path | None = Field(None, description="File holding the API key "
                                               "(used when BRIDGE_UPSTREAM_API_KEY is unset)")
    tokens_file: Path | None = Field(None, description="TOML table of legacy token digests "
                                     "and the plans each may read (or, for course progress, "
                                     "the user_id and role each acts as)")
    tokens_reload_seconds: float = Field(5.0, ge=0, description="How often the token table "
                                         "file is checked for changes and reloaded (0: only "
                                         "on SIGHUP)")
    auth_mode: Literal["tokens", "passthrough"] = Field(
        "tokens", description="`tokens`: check legacy tokens against the token table; "
                              "`passthrough`: forward the bearer value upstream as the key")
    mappings_dir: Path = Field(PACKAGED_MAPPINGS, description="Folder of mapping tables "
                               "(default: the tables installed with the package)")
    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8080, description="Port to listen on")
    workers: int = Field(1, ge=1, description="uvicorn worker processes (each with its own "
                         "checkpoint cache)")
    upstream_timeout: float = Field(10.0, gt=0, description="Seconds to wait for one "
                                    "upstream answer")
    upstream_connect_timeout: float = Field(3.0, gt=0, description="Seconds to wait for a "
                                            "connection to the upstream")
    total_deadline: float = Field(30.0, gt=0, description="Seconds within which every legacy "
                                  "request is answered, retries included")
    upstream_retries: int = Field(2, ge=0, description="Extra attempts of a query on "
                                  "connection errors, 502, 503 and 504 (never on 429)")
    upstream_backoff: float = Field(0.1, ge=0, description="First retry's backoff ceiling in "
                                    "seconds; doubles per retry, full jitter")
    breaker_failures: int = Field(20, ge=1, description="Consecutive failed upstream requests "
                                  "to one API that open its circuit breaker")
    breaker_reset: float = Field(5.0, gt=0, description="Seconds an open breaker waits "
                                 "before letting one probe through")
    upstream_concurrency: int = Field(100, ge=1, description="Upstream requests in flight at "
                                      "once (also the connection pool size)")
    upstream_queue_timeout: float = Field(5.0, gt=0, description="Seconds a request waits for "
                                          "a free upstream slot before 503")
    upstream_max_response_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest "
                                             "upstream answer accepted (else 502)")
    upstream_ca_file: Path | None = Field(None, description="PEM bundle of the authorities "
                                          "the upstream's TLS certificate is checked against "
                                          "(default: the system's)")
    cursor_cache: str = Field("memory", description="`memory` (per process) or a "
                              "`redis://host:port/db` URL shared by every replica")
    rate_limit_storage: str = Field("memory", description="Where the token table's per-client "
                                    "rates are counted: `memory` (per process) or a "
                                    "`redis://host:port/db` URL shared by every replica")
    cursor_cache_size: int = Field(100_000, ge=0, description="Cursor checkpoints kept")
    cursor_cache_ttl: float = Field(600.0, gt=0, description="Seconds a checkpoint is kept")
    ready_cache_seconds: float = Field(2.0, ge=0, description="How long /readyz reuses its "
                                       "last upstream check")
    max_walk_requests: int = Field(1000, ge=1, description="Cursor-only requests one deep "
                                   "page may cost before it answers 400 page_too_deep")
    max_url_bytes: int = Field(4096, ge=256, description="Longest request path and query "
                               "accepted (else 400)")
    max_header_bytes: int = Field(8192, ge=1024, description="Largest total of request "
                                  "headers accepted (else 400)")
    sql_max_rows: int = Field(100_000, ge=1, description="Data API: most rows a JSON answer "
                              "may hold or sort client-side (else 413 result_too_large); "
                              "streamed CSV without a client-side sort has no bound")
    sql_max_bytes: int = Field(65_536, ge=256, description="Data API: longest SQL request "
                               "body accepted (else 400)")
    sql_max_in_items: int = Field(1000, ge=1, description="Data API: most values in one IN "
                                  "list (else 400 unsupported_sql)")
    sql_max_like_wildcards: int = Field(32, ge=1, description="Data API: most % and _ in one "
                                        "LIKE pattern (else 400 unsupported_sql)")
    sql_max_cpu_seconds: float = Field(10.0, gt=0, description="Data API: most seconds one "
                                       "statement may spend evaluating rows in the proxy "
                                       "(else 400 unsupported_sql); other requests are served "
                                       "in between")
    csv_neutralize_formulas: bool = Field(False, description="Data API CSV: prefix text "
                                          "cells starting with = + - @ with ' so spreadsheets "
                                          "do not run them (off: byte-equal to the old API)")
    catalog_ttl: float = Field(3600.0, gt=0, description="Data API: seconds the Catalog API's "
                               "program titles (nd_title) are reused before a refetch")
    mode: Mode = Field(
        "graphql", description="How routes answer (a mapping's [route] mode overrides): "
                               "graphql, legacy, shadow, graphql-fallback")
    legacy_url: str | None = Field(None, description="Base URL of the legacy v2 API (legacy, "
                                   "shadow and graphql-fallback modes)")
    mode_refresh_seconds: float = Field(2.0, gt=0, description="How often every replica "
                                        "reads the modes set while serving (`legacy-bridge "
                                        "mode set`) from the store")
    shadow_primary: Primary = Field(
        "legacy", description="In shadow mode, the side that answers the client")
    shadow_sample_rate: float = Field(1.0, ge=0, le=1, description="Share of requests "
                                      "compared in shadow mode")
    shadow_queue_size: int = Field(1000, ge=1, description="Shadow comparisons waiting at "
                                   "most; more are dropped (counted)")
    shadow_workers: int = Field(4, ge=1, description="Shadow comparisons made at once (each "
                                "waits on the other side's answer)")
    compare_pii: Literal["hash", "keep"] = Field("hash", description="E-mails and names in "
                                                 "comparisons and exports: hashed, or kept")
    compare_keep: int = Field(100_000, ge=1, description="Comparisons kept in the store")
    compare_keep_days: float = Field(30.0, gt=0, description="Days comparisons are kept")
    admin_token: SecretStr | None = Field(None, description="Bearer token that opens the "
                                          "/_bridge/ pages (shut when unset)")
    admin_token_file: Path | None = Field(None, description="File holding the admin token "
                                          "(used when BRIDGE_ADMIN_TOKEN is unset)")
    store_url: str = Field("sqlite:///.data/bridge.sqlite3", description="Where usage and "
                           "comparisons persist: sqlite:///<path> (one replica) or "
                           "postgresql://user:pass@host/db (many replicas)")
    usage_flush_seconds: float = Field(10.0, gt=0, description="How often counted usage is "
                                       "written to the store")
    shutdown_timeout: float = Field(20.0, gt=0, description="Seconds in-flight requests may "
                                    "take to finish after SIGTERM")
    learners_file: Path | None = Field(None, description="Course progress: TOML file of "
                                       "[[learners]] user_id and auth_token, the upstream "
                                       "`authToken` each learner acts with")
    progress_ryw_seconds: float = Field(300.0, ge=0, description="Course progress: seconds "
                                        "a completion the proxy made reads completed even if "
                                        "the upstream does not show it yet")
    progress_max_courses: int = Field(50, ge=1, description="Course progress: most mapped "
                                      "courses a GET without courseId reads (else 400 "
                                      "course_id_required)")
    log_level: str = Field("INFO", description="Log level")

    def admin(self) -> str | None:
        """The admin token, from BRIDGE_ADMIN_TOKEN or its file; None: the pages are shut."""
        if self.admin_token is not None:
            return self.admin_token.get_secret_value()
        if self.admin_token_file is not None:
            return _read_secret(self.admin_token_file, "BRIDGE_ADMIN_TOKEN_FILE") or None
        return None

    def api_key(self) -> str | None:
        if self.upstream_api_key is not None:
            return self.upstream_api_key.get_secret_value()
        if self.upstream_api_key_file is not None:
            return _read_secret(self.upstream_api_key_file, "BRIDGE_UPSTREAM_API_KEY_FILE")
        return None


def _read_secret(path: Path, setting: str) -> str:
    """A secret file's text; one line naming the setting when it cannot be read."""
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path} ({exc.strerror}); mount the "
                          f"secret there or point the setting at it") from None


class SettingsError(ValueError):
    """Settings that cannot be used: one line per setting, naming it and what it takes."""


def load_settings(**given: object) -> Settings:
    """`BRIDGE_*` and `given` (flags), checked. A mistake is one line per setting with
    what it accepts; never the value given (it may be a secret)."""
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            info = Settings.model_fields.get(name)
            about = f" ({info.description})" if info is not None and info.description else ""
            lines.append(f"BRIDGE_{name.upper()}: {error['msg']}{about}")
        raise SettingsError("\n".join(lines)) from None
