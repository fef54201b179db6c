"""Invitation tokens, pinned where mutation testing found the suite blind (issue 18 §6).

Each test names the behaviour it pins; ``make mutation`` shows which injected bug it catches.
"""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode

from tenantkit.errors import ConfigurationError, InvalidInvitationTokenError
from tenantkit.invitations._tokens import SALT, TokenCodec, _ClockSigner, digest_matches
from tenantkit.testing import FrozenClock

KEY = "an-invitation-signing-key-of-some-length"
URLSAFE = string.ascii_letters + string.digits + "-_"

# Issued by tenantkit 0.1 at 2030-01-01T00:00:00Z with KEY for ("org_1", "inv_1"); its secret's digest.
GOLDEN_TOKEN = (
    "WyJvcmdfMSIsImludl8xIiwiVnEzeFI4bVowdEx3NVliMktjTjdwSHMxSmRHNGVGdUE5b1hpVGpRNnJFayJd"
    ".cNvYgA.WQNY6IwtjdnluX1uVYC9TDrQ9E0"
)
GOLDEN_DIGEST = "sha256:cb1293438441725495652c8a06f39a43fc3da4957b236826781b278e4902e992"


@pytest.fixture
def codec(clock: FrozenClock) -> TokenCodec:
    return TokenCodec([KEY], max_age=timedelta(days=30), clock=clock)


def _signed(payload: object, clock: FrozenClock) -> str:
    """``payload`` signed exactly as the codec signs, so only its shape can be wrong."""
    serializer = URLSafeTimedSerializer(
        KEY.encode(), salt=SALT, signer=_ClockSigner, signer_kwargs={"clock": clock}
    )
    token = serializer.dumps(payload)
    assert isinstance(token, str)
    return token


def _other_spellings(part: str) -> list[str]:
    """Every other unpadded-base64 spelling of ``part``: same bytes, another last character."""
    decoded = base64_decode(part)
    spellings = []
    for character in URLSAFE:
        candidate = part[:-1] + character
        if candidate != part and base64_decode(candidate) == decoded:
            spellings.append(candidate)
    return spellings


class TestCompatibility:
    def test_a_token_issued_by_an_earlier_release_still_reads(self, codec: TokenCodec) -> None:
        """Tokens already sent by email keep working after an upgrade: the salt and format are fixed."""
        contents = codec.read(GOLDEN_TOKEN)
        assert (contents.organization_id, contents.invitation_id) == ("org_1", "inv_1")
        assert digest_matches(GOLDEN_DIGEST, contents.secret)

    def test_the_secret_has_256_bits(self, codec: TokenCodec) -> None:
        """Each token's secret is 32 random bytes (43 URL-safe characters)."""
        token, _ = codec.issue("org", "inv")
        secret = codec.read(token).secret
        assert len(secret) == 43
        assert len(base64_decode(secret)) == 32


class TestOneSpelling:
    def test_every_other_spelling_of_each_part_is_refused(self, codec: TokenCodec) -> None:
        """A token whose payload, timestamp or signature is re-spelled (same bytes) is refused."""
        token, _ = codec.issue("org_1", "inv_1")
        parts = token.split(".")
        tried = 0
        for position, part in enumerate(parts):
            for spelling in _other_spellings(part):
                respelled = ".".join([*parts[:position], spelling, *parts[position + 1 :]])
                with pytest.raises(InvalidInvitationTokenError):
                    codec.read(respelled)
                tried += 1
        assert tried >= 3  # the timestamp and the signature always have spare bits

    def test_a_compressed_token_reads_and_its_other_spellings_are_refused(self, codec: TokenCodec) -> None:
        """A long repetitive payload is compressed (leading '.'): it reads; re-spelling it is refused."""
        token, _ = codec.issue("o" * 200, "i" * 200)
        assert token.startswith(".")
        assert codec.read(token).organization_id == "o" * 200
        parts = token[1:].split(".")
        spellings = [
            "." + ".".join([*parts[:position], spelling, *parts[position + 1 :]])
            for position, part in enumerate(parts)
            for spelling in _other_spellings(part)
        ]
        assert spellings
        for respelled in spellings:
            with pytest.raises(InvalidInvitationTokenError):
                codec.read(respelled)


class TestUntrustedInput:
    @pytest.mark.parametrize("token", [None, 42, b"bytes.are.not", ["a", "b"], 3.5])
    def test_a_token_that_is_not_a_string_is_refused_as_invalid(
        self, codec: TokenCodec, token: object
    ) -> None:
        """Non-string input is an invalid token (a typed error), never an AttributeError or TypeError."""
        with pytest.raises(InvalidInvitationTokenError):
            codec.read(token)

    def test_non_ascii_input_is_refused_as_invalid(self, codec: TokenCodec) -> None:
        """A token with non-ASCII characters is an invalid token."""
        token, _ = codec.issue("org", "inv")
        with pytest.raises(InvalidInvitationTokenError):
            codec.read(token[:-1] + "é")

    @pytest.mark.parametrize(("year", "length", "reads"), [(2030, 2048, True), (2107, 2049, False)])
    def test_tokens_up_to_2048_characters_are_read_and_longer_ones_refused(
        self, monkeypatch: pytest.MonkeyPatch, year: int, length: int, reads: bool
    ) -> None:
        """A correctly signed token of 2048 characters reads; one of 2049 is refused before any check."""
        # Unpadded base64 never has a length of 4k+1, so one payload length cannot give both 2048 and 2049
        # characters; after 2106 the timestamp takes one more character, which gives the other.
        monkeypatch.setattr("tenantkit.invitations._tokens.secrets.token_urlsafe", lambda _: "s" * 43)
        clock = FrozenClock(datetime(year, 1, 1, tzinfo=timezone.utc))
        codec = TokenCodec([KEY], max_age=timedelta(days=30), clock=clock)
        noise = random.Random(18)  # noqa: S311  seeded filler text, not a secret
        letters = "".join(noise.choice(string.ascii_letters) for _ in range(4000))
        token = next(
            token
            for size in range(1500, 4000)
            if len(token := codec.issue(letters[:size], "inv")[0]) == length
        )
        if reads:
            assert codec.read(token).invitation_id == "inv"
        else:
            with pytest.raises(InvalidInvitationTokenError):
                codec.read(token)

    @pytest.mark.parametrize(
        "payload",
        [
            {"organization_id": "org", "invitation_id": "inv", "secret": "s"},
            "org.inv.secret",
            ["org", "inv"],
            ["org", "inv", "secret", "extra"],
            ["org", "", "secret"],
            ["", "inv", "secret"],
            ["org", "inv", 7],
            [1, 2, 3],
            None,
        ],
    )
    def test_a_correctly_signed_payload_of_the_wrong_shape_is_refused(
        self, codec: TokenCodec, clock: FrozenClock, payload: object
    ) -> None:
        """Only [organization_id, invitation_id, secret] of non-empty strings is a token, even when signed."""
        with pytest.raises(InvalidInvitationTokenError):
            codec.read(_signed(payload, clock))

    def test_the_signing_helper_makes_tokens_the_codec_accepts(
        self, codec: TokenCodec, clock: FrozenClock
    ) -> None:
        """The right shape signed by the helper reads, so the refusals above are about shape alone."""
        assert codec.read(_signed(["org", "inv", "secret"], clock)).secret == "secret"


class TestSigningKeys:
    def test_a_key_of_exactly_16_characters_is_enough(self, clock: FrozenClock) -> None:
        """The minimum signing-key length is 16 characters (or bytes), inclusive."""
        for key in ("k" * 16, b"k" * 16):
            codec = TokenCodec([key], max_age=timedelta(days=1), clock=clock)
            token, _ = codec.issue("org", "inv")
            assert codec.read(token).organization_id == "org"

    @pytest.mark.parametrize("keys", [["k" * 15], [b"k" * 15], ["k" * 40, "k" * 15], ["k" * 15, "k" * 40]])
    def test_any_key_shorter_than_16_is_refused(self, clock: FrozenClock, keys: list[str | bytes]) -> None:
        """One short key anywhere in the list refuses the whole configuration."""
        with pytest.raises(ConfigurationError, match="16"):
            TokenCodec(keys, max_age=timedelta(days=1), clock=clock)

    @pytest.mark.parametrize("keys", ["a-single-string-key-here", b"a-single-bytes-key-here"])
    def test_a_single_key_is_refused_with_a_message_saying_so(self, clock: FrozenClock, keys: object) -> None:
        """A bare str or bytes (not a list) is refused as such, not as a list of one-character keys."""
        with pytest.raises(ConfigurationError, match="list of keys"):
            TokenCodec(keys, max_age=timedelta(days=1), clock=clock)  # type: ignore[arg-type]

    def test_a_bytes_key_and_the_same_text_key_are_interchangeable(self, clock: FrozenClock) -> None:
        """A key given as bytes signs the same tokens as the same key given as UTF-8 text."""
        as_text = TokenCodec([KEY], max_age=timedelta(days=1), clock=clock)
        as_bytes = TokenCodec([KEY.encode()], max_age=timedelta(days=1), clock=clock)
        token, _ = as_bytes.issue("org", "inv")
        assert as_text.read(token).invitation_id == "inv"
        token, _ = as_text.issue("org", "inv")
        assert as_bytes.read(token).invitation_id == "inv"
