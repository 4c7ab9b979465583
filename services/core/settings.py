"""Process settings (CONTRACT section 3).

Every worker reads the same environment variables; a `.env` file is read too and the
environment wins over it. `SWITCHBOARD_PREFIX` is applied through :meth:`Settings.name`
so that tests (and operators sharing a broker) can isolate whole runs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    rabbitmq_url: str = Field("amqp://guest:guest@localhost:5672/", alias="RABBITMQ_URL")
    redis_url: str = Field("redis://localhost:6379/0", alias="REDIS_URL")
    channels_file: str = Field("channels.yaml", alias="SWITCHBOARD_CHANNELS")
    prefix: str = Field("", alias="SWITCHBOARD_PREFIX")
    inbound_host: str = Field("0.0.0.0", alias="INBOUND_HOST")
    inbound_port: int = Field(8080, alias="INBOUND_PORT")
    public_url: str = Field("http://localhost:8080", alias="SWITCHBOARD_PUBLIC_URL")
    send_allow_private: bool = Field(False, alias="SEND_ALLOW_PRIVATE")
    log_format: str = Field("json", alias="LOG_FORMAT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    metrics_port: int = Field(0, alias="METRICS_PORT")
    # CONTRACT section 12: heartbeats every 5 s; tests shorten it.
    heartbeat_s: float = Field(5.0, gt=0, alias="SWITCHBOARD_HEARTBEAT_S")
    dashboard_host: str = Field("127.0.0.1", alias="DASHBOARD_HOST")
    dashboard_port: int = Field(8090, alias="DASHBOARD_PORT")
    dashboard_token: str = Field("", alias="DASHBOARD_TOKEN")
    # Not in the contract's table, but the contract says the retry delays are configurable:
    # a comma-separated list of milliseconds.
    retry_delays_ms: Annotated[list[int], NoDecode] = Field([5_000, 30_000, 120_000, 600_000], alias="SWITCHBOARD_RETRY_DELAYS_MS")

    @field_validator("retry_delays_ms", mode="before")
    @classmethod
    def _split_delays(cls, value):
        if isinstance(value, str):
            return [int(v) for v in value.replace(" ", "").split(",") if v]
        if isinstance(value, int):
            return [value]
        return value

    @property
    def rabbitmq_urls(self) -> list[str]:
        """RABBITMQ_URL may list the nodes of a cluster: full amqp:// URLs separated by commas
        (a comma inside a password is written %2C). Clients connect to one, then the next."""
        return [url.strip() for url in self.rabbitmq_url.split(",") if url.strip()]

    def name(self, base: str) -> str:
        """The broker (and Redis) name of `base` for this installation: prefix + base."""
        return f"{self.prefix}{base}"

    @property
    def public_base(self) -> str:
        return self.public_url.rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
