"""Request context: who the client is behind proxies, bounded values, and the one trusted-proxy setting."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantkit import HttpSettings, TenantKitSettings
from tenantkit._context import (
    MAX_USER_AGENT_LENGTH,
    RequestContext,
    TrustedProxies,
    client_address,
    context_from_request,
)
from tenantkit.errors import InvalidInputError, InvalidSettingError

PROXIES = TrustedProxies.parse(["10.0.0.0/8", "2001:db8::/32"])
addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
hops = st.lists(st.one_of(addresses, st.text(max_size=12)), max_size=5).map(", ".join)


class Headers:
    """Headers looked up as both frameworks do: by name, case-insensitively, a list per name."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = pairs

    def getlist(self, key: str) -> list[str]:
        return [value for name, value in self.pairs if name.lower() == key.lower()]

    def get(self, key: str) -> str | None:
        values = self.getlist(key)
        return values[0] if values else None


class TestClientAddress:
    @given(peer=addresses, forwarded=st.lists(hops, max_size=3))
    def test_an_untrusted_peer_is_the_client_whatever_it_forwards(
        self, peer: str, forwarded: list[str]
    ) -> None:
        """Without trusted proxies, X-Forwarded-For is never believed: the client is the peer."""
        parsed = ipaddress.ip_address(peer)
        mapped = parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) else None
        expected = str(mapped or parsed)
        assert client_address(peer, forwarded, TrustedProxies()) == expected

    @given(client=addresses, forged=hops)
    def test_behind_trusted_proxies_the_first_untrusted_hop_is_the_client(
        self, client: str, forged: str
    ) -> None:
        """Read from the right, trusted proxies are skipped; whatever the client put before its own address
        (a forged list) changes nothing."""
        parsed = ipaddress.ip_address(client)
        if parsed in ipaddress.ip_network("10.0.0.0/8") or parsed in ipaddress.ip_network("2001:db8::/32"):
            return
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            return
        header = ", ".join(part for part in (forged, client, "10.1.1.1") if part)
        assert client_address("10.2.2.2", [header], PROXIES) == client

    @pytest.mark.parametrize(
        ("peer", "forwarded", "expected"),
        [
            ("10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
            ("10.0.0.1", ["203.0.113.9:4711, 10.0.0.7"], "203.0.113.9"),
            ("10.0.0.1", ["[2001:db9::1]:80"], "2001:db9::1"),
            ("10.0.0.1", ["198.51.100.1", "203.0.113.9"], "203.0.113.9"),  # two headers: the last one counts
            ("10.0.0.1", ["10.0.0.9, 10.0.0.8"], "10.0.0.9"),  # every hop trusted: the leftmost
            ("10.0.0.1", ["203.0.113.9, garbage, 10.0.0.8"], "10.0.0.8"),  # junk ends the walk at a proxy
            ("10.0.0.1", [], "10.0.0.1"),
            ("::ffff:10.0.0.1", ["203.0.113.9"], "203.0.113.9"),  # an IPv4-mapped peer is its IPv4 address
            ("203.0.113.50", ["10.0.0.1"], "203.0.113.50"),
            ("testclient", ["203.0.113.9"], None),
            (None, ["203.0.113.9"], None),
        ],
    )
    def test_cases(self, peer: str | None, forwarded: list[str], expected: str | None) -> None:
        """Ports and brackets are read, junk and unknown peers never become an address."""
        assert client_address(peer, forwarded, PROXIES) == expected


class TestContextFromARequest:
    def test_reads_the_three_headers(self) -> None:
        """The client address, the user agent (bounded) and the request id (if usable) come from a request."""
        headers = Headers(
            ("X-Forwarded-For", "203.0.113.9"),
            ("User-Agent", "x" * 2000 + "\x07"),
            ("X-Request-ID", "req_42"),
        )
        context = context_from_request(headers, "10.0.0.1", trusted=PROXIES, request_id_header="X-Request-ID")
        assert context == RequestContext(
            ip_address="203.0.113.9", user_agent="x" * MAX_USER_AGENT_LENGTH, request_id="req_42"
        )
        unusable = Headers(("X-Request-ID", "bad\x00id"))
        assert (
            context_from_request(unusable, None, trusted=PROXIES, request_id_header="X-Request-ID")
            == RequestContext()
        )
        assert context_from_request(headers, None, trusted=PROXIES, request_id_header=None).request_id is None

    @pytest.mark.parametrize(
        ("values", "field"),
        [
            ({"ip_address": "999.1.1.1"}, "ip_address"),
            ({"request_id": " padded"}, "request_id"),
            ({"request_id": "x" * 256}, "request_id"),
        ],
    )
    def test_a_bad_value_given_by_the_host_is_invalid_input(self, values: dict[str, str], field: str) -> None:
        """A host's own context is checked: a malformed address or request id is ``InvalidInputError``."""
        with pytest.raises(InvalidInputError) as error:
            RequestContext(**values)
        assert error.value.field == field


class TestTheSetting:
    def test_one_setting_parsed_once(self) -> None:
        """``trusted_proxies`` takes addresses and networks (a list, or comma-separated), normalized."""
        settings = HttpSettings(trusted_proxies="10.0.0.0/8, 192.0.2.7")
        assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32")
        assert ipaddress.ip_address("10.9.9.9") in settings.proxies
        assert HttpSettings().proxies.networks == ()

    @pytest.mark.parametrize(
        ("values", "setting"),
        [
            ({"trusted_proxies": ["10.0.0.0/33"]}, "trusted_proxies"),
            ({"request_id_header": "X Request"}, "request_id_header"),
        ],
    )
    def test_bad_values_name_the_field(self, values: dict[str, object], setting: str) -> None:
        """An unusable proxy or header name is an ``InvalidSettingError`` naming the field."""
        with pytest.raises(InvalidSettingError) as error:
            HttpSettings(**values)  # type: ignore[arg-type]
        assert error.value.setting == setting

    def test_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``TENANTKIT_TRUSTED_PROXIES``, ``TENANTKIT_REQUEST_ID_HEADER`` and the audit variables load."""
        monkeypatch.setenv("TENANTKIT_TRUSTED_PROXIES", "10.0.0.0/8,::1")
        monkeypatch.setenv("TENANTKIT_REQUEST_ID_HEADER", "X-Correlation-ID")
        monkeypatch.setenv("TENANTKIT_AUDIT_ENABLED", "false")
        monkeypatch.setenv("TENANTKIT_AUDIT_CHAIN", "true")
        monkeypatch.setenv("TENANTKIT_AUDIT_RETENTION", "365d")
        settings = TenantKitSettings.from_env(env_file=None)
        assert settings.http == HttpSettings(
            trusted_proxies=["10.0.0.0/8", "::1"], request_id_header="X-Correlation-ID"
        )
        assert (settings.audit.enabled, settings.audit.chain) == (False, True)
        assert settings.audit.retention == timedelta(days=365)
        monkeypatch.setenv("TENANTKIT_TRUSTED_PROXIES", "10.0.0.0/8,nonsense")
        with pytest.raises(InvalidSettingError) as error:
            TenantKitSettings.from_env(env_file=None)
        assert error.value.setting == "TENANTKIT_TRUSTED_PROXIES"
