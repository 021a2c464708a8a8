"""A thin asyncio face of the official `kubernetes` client: raw JSON in and out.

Responses are read with `_preload_content=False` and parsed as plain dicts, the API's own
camelCase documents: the pure modules work on those, and the client's model classes (slow
to build, lossy for fields newer than the client) are never involved. Each call runs in a
worker thread with a timeout. Errors become the Pool contract's: no answer (connection
refused, timeout, 5xx, 429) -> PoolUnreachable; an answer that refuses -> KubeRefused, which
carries the HTTP status and the Status message for the adapter to decide.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from scheduler.config import ConfigError, KubernetesPoolConfig
from scheduler.pools.base import PoolError, PoolUnreachable

__all__ = ["INSTALL_HINT", "KubeApi", "KubeRefused", "load_sdk"]

INSTALL_HINT = "pip install 'sfed[kubernetes]'"


class KubeRefused(Exception):
    """The API server answered with an error status (4xx other than 429)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


def load_sdk() -> Any:
    """The `kubernetes` package, or ConfigError with the install hint."""
    try:
        import kubernetes
    except ImportError:
        raise ConfigError(
            f"Kubernetes pools need the official kubernetes client: {INSTALL_HINT}"
        ) from None
    return kubernetes


class KubeApi:
    """The calls the Kubernetes pool makes, against one cluster (kubeconfig or in-cluster)."""

    def __init__(self, config: KubernetesPoolConfig, *, timeout: float) -> None:
        sdk = load_sdk()
        self.timeout = timeout
        try:
            if config.kubeconfig is None:
                configuration = sdk.client.Configuration()
                sdk.config.load_incluster_config(client_configuration=configuration)
                configuration.retries = 1
                self.api_client = sdk.client.ApiClient(configuration)
            else:
                self.api_client = sdk.config.new_client_from_config(
                    config_file=config.kubeconfig, context=config.context, persist_config=False
                )
                self.api_client.configuration.retries = 1
        except (sdk.config.ConfigException, OSError, ValueError) as exc:
            raise ConfigError(f"pool {config.name}: cannot use the kubeconfig: {exc}") from None
        self.core = sdk.client.CoreV1Api(self.api_client)
        self.batch = sdk.client.BatchV1Api(self.api_client)
        self._api_exception = sdk.client.ApiException
        self.server = self.api_client.configuration.host

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`method(*args, **kwargs)` in a thread; the response body parsed from JSON (or the
        raw bytes for text responses such as logs)."""
        kwargs.update(_preload_content=False, _request_timeout=self.timeout)
        try:
            response = await asyncio.wait_for(
                asyncio.to_thread(method, *args, **kwargs), self.timeout + 5
            )
        except self._api_exception as exc:
            raise self._refused(exc) from None
        except ValueError as exc:  # the client's own model check (pydantic) refused the body
            raise KubeRefused(422, "Invalid", f"refused by the client: {exc}") from None
        except (TimeoutError, OSError) as exc:
            raise PoolUnreachable(f"{self.server}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # urllib3's MaxRetryError, SSLError; exec credential plugins
            if type(exc).__module__.startswith("urllib3"):
                raise PoolUnreachable(f"{self.server}: {exc}") from exc
            raise PoolError(f"{self.server}: {type(exc).__name__}: {exc}") from exc
        data: bytes = response.data
        if "json" in (response.headers.get("Content-Type") or ""):
            try:
                return json.loads(data)
            except ValueError as exc:
                raise PoolError(f"{self.server}: an answer that is not JSON: {exc}") from exc
        return data

    def _refused(self, exc: Any) -> Exception:
        status = int(exc.status or 0)
        message, reason = str(exc.reason or ""), str(exc.reason or "")
        try:
            body = json.loads(exc.body)
            message, reason = body.get("message", message), body.get("reason", reason)
        except (TypeError, ValueError, AttributeError):
            pass
        if status == 0 or status == 429 or status >= 500:
            return PoolUnreachable(f"{self.server}: {status} {reason}: {message}")
        return KubeRefused(status, reason, message)

    async def close(self) -> None:
        await asyncio.to_thread(self.api_client.close)
