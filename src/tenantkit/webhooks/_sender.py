"""One delivery attempt over HTTP: resolve and check the host, connect to the checked address, sign, send.

The sender uses httpx (the ``tenantkit[webhooks]`` extra) without letting it resolve anything: the request
goes to the address :func:`~tenantkit.webhooks._targets.resolve_target` checked, with the name in the
``Host`` header and, for HTTPS, as the TLS server name (SNI), against which the certificate is verified.
Redirects are not followed (a 3xx is a failure), no proxy from the environment is used, no connection is
kept alive (a kept connection to one address must not carry another name's request), and the response
body is never read.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from tenantkit._errors import ConfigurationError, UnsafeWebhookUrlError
from tenantkit.webhooks._signing import webhook_headers
from tenantkit.webhooks._targets import AddressPolicy, Resolver, resolve_target, system_resolver

if TYPE_CHECKING:
    import httpx

__all__ = ["Attempt", "Sender"]

MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Attempt:
    """How one attempt went.

    Attributes:
        status_code: The HTTP status (``None``: no response).
        duration_ms: How long it took.
        error: Why it failed (``None`` on a 2xx), at most 500 characters.
        retry_after: The receiver's ``Retry-After`` (429 and 5xx only).
    """

    status_code: int | None
    duration_ms: int
    error: str | None
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """An HTTP 410: the receiver says the endpoint is gone for good."""
        return self.status_code == 410


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(when - now, timedelta(0))


def _httpx() -> Any:
    try:
        import httpx
    except ModuleNotFoundError:  # pragma: no cover - only without the extra
        raise ConfigurationError("sending webhooks needs httpx: pip install 'tenantkit[webhooks]'") from None
    return httpx


class Sender:
    """Sends signed deliveries to checked addresses.

    Args:
        policy: What the host allows beyond globally routable HTTPS.
        timeout: The limit of each phase of an attempt (connect, write, read).
        resolver: Resolves hosts (the system's by default; tests inject their own DNS).
        verify: TLS verification: ``True`` (the system's CAs), a CA bundle path or an ``ssl.SSLContext``.
            Never ``False``.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: timedelta,
        resolver: Resolver = system_resolver,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        if verify is False:
            raise ConfigurationError("webhook TLS verification cannot be turned off")
        self.policy = policy
        self.resolver = resolver
        self.timeout = timeout
        self._verify = verify
        self._httpx = _httpx()

    def client(self) -> httpx.Client:
        """A client for one round of deliveries (close it after)."""
        httpx = self._httpx
        return httpx.Client(  # type: ignore[no-any-return]
            verify=self._verify,
            timeout=httpx.Timeout(self.timeout.total_seconds()),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def send(
        self,
        client: httpx.Client,
        *,
        url: str,
        message_id: str,
        body: str,
        secrets: list[str],
        now: datetime,
    ) -> Attempt:
        """One attempt: check ``url`` afresh, sign ``body`` with ``secrets``, post it, read the status."""
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            target = resolve_target(url, self.policy, self.resolver)
        except UnsafeWebhookUrlError as error:
            return Attempt(None, took(), _truncate(error.message))
        content = body.encode("utf-8")
        headers = webhook_headers(secrets, message_id, int(now.timestamp()), content)
        headers["host"] = target.host_header
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        httpx = self._httpx
        try:
            request = client.build_request(
                "POST", target.connect_url, content=content, headers=headers, extensions=extensions
            )
            response = client.send(request, stream=True)
            try:
                status = response.status_code
                retry_after = response.headers.get("retry-after")
            finally:
                response.close()  # the body is never read
        except httpx.TimeoutException:
            return Attempt(None, took(), "timed out")
        except httpx.HTTPError as error:
            return Attempt(None, took(), _truncate(f"{type(error).__name__}: {error}"))
        if 200 <= status < 300:
            return Attempt(status, took(), None)
        if 300 <= status < 400:
            return Attempt(status, took(), f"HTTP {status}: redirects are not followed")
        later = _retry_after(retry_after, now) if status == 429 or status >= 500 else None
        return Attempt(status, took(), f"HTTP {status}", later)
