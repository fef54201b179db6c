"""API key format, hashers and verification, pinned where mutation testing found gaps (issue 18 §6).

Each test names the behaviour it pins; ``make mutation`` shows which injected bug it catches.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    ApiKeyService,
    ApiKeyVerification,
    InvalidApiKeyError,
    InvalidInputError,
    MembershipService,
    MissingScopeError,
    check_scopes,
    require_scopes,
)
from tenantkit.api_keys._format import (
    ALPHABET,
    KeyFormat,
    KeyKind,
    base62,
    check_prefix,
    checksum,
    lookup_id_of,
)
from tenantkit.api_keys._hashers import (
    Argon2idHasher,
    HmacSha256Hasher,
    Sha256Hasher,
    build_peppers,
    choose_hasher,
    sha256_digest,
)
from tenantkit.errors import ConfigurationError
from tenantkit.events import EventDispatcher
from tenantkit.tables import api_keys
from tenantkit.testing import FrozenClock

ORG = "org_1"
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PREFIX = "tk_live_"

# Made by tenantkit 0.1: a digest-kind key and an argon2id-kind key (lookup id "LookupId00000001").
DIGEST_KEY = (
    "tk_live_"
    + "0123456789abcdefghijABCDEFGHIJklmnopqrstUVW"
    + checksum("0123456789abcdefghijABCDEFGHIJklmnopqrstUVW")
)
ARGON2_KEY = (
    "tk_live_"
    + "LookupId00000001"
    + "0123456789abcdefghijABCDEFGHIJklmnopqrstUVW"
    + checksum("LookupId00000001" + "0123456789abcdefghijABCDEFGHIJklmnopqrstUVW")
)


@pytest.fixture
def membership(clock: FrozenClock) -> MembershipService:
    return MembershipService(clock=clock, events=EventDispatcher())


def _issue(engine: sa.Engine, service: ApiKeyService, **kwargs: object) -> tuple[str, str]:
    with Session(engine) as session:
        issued = service.issue(session, ORG, "ci", actor=HOST, **kwargs)  # type: ignore[arg-type]
        session.commit()
    return issued.id, issued.reveal()


def _verify(engine: sa.Engine, service: ApiKeyService, key: object, **kwargs: object) -> ApiKeyVerification:
    with Session(engine) as session:
        result = service.verify(session, key, **kwargs)  # type: ignore[arg-type]
        session.commit()
    return result


def _stored(engine: sa.Engine, key_id: str) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(sa.select(api_keys.c.hashed_key).where(api_keys.c.id == key_id)).scalar()
        )


class TestBase62AndChecksum:
    def test_base62_is_big_endian_and_padded(self) -> None:
        """base62 writes the most significant digit first, left-padded with '0' to the width."""
        assert base62(0, 3) == "000"
        assert base62(61, 2) == "0z"
        assert base62(62, 2) == "10"
        assert base62(62**3 - 1, 3) == "zzz"

    def test_base62_refuses_a_number_wider_than_the_width(self) -> None:
        """A number that needs more digits than the width is an error, not a silent truncation."""
        with pytest.raises(ValueError, match="does not fit"):
            base62(62**3, 3)

    def test_checksum_is_the_base62_crc32_of_the_body(self) -> None:
        """The checksum is CRC32 in six base62 digits, as secret scanners recompute it."""
        import zlib

        for body in ("", "abc", "0123456789abcdefghijABCDEFGHIJklmnopqrstUVW", "z" * 59):
            assert checksum(body) == base62(zlib.crc32(body.encode("ascii")), 6)
        assert checksum("abc") == "0yKviM"

    def test_the_alphabet_is_digits_then_upper_then_lower(self) -> None:
        """The base62 alphabet is 0-9, A-Z, a-z, in that order (keys made earlier depend on it)."""
        assert ALPHABET == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class TestPrefix:
    @pytest.mark.parametrize(
        "prefix", ["tk_live_", "a_", "acme_test_", "a" * 16 + "_", "a_" + "b" * 16 + "_"]
    )
    def test_usable_prefixes_are_returned(self, prefix: str) -> None:
        """One or two lowercase parts of 1 to 16 characters, each ending in '_', are prefixes."""
        assert check_prefix(prefix) == prefix

    @pytest.mark.parametrize(
        "prefix",
        ["a" * 17 + "_", "a_" + "b" * 17 + "_", "tk_live", "Tk_", "tk__", "1k_", "a_b_c_", "", None, 7],
    )
    def test_other_prefixes_are_refused(self, prefix: object) -> None:
        """Anything else, including a part of 17 characters, is refused as invalid input."""
        with pytest.raises(InvalidInputError):
            check_prefix(prefix)


class TestCheckAndParse:
    def test_check_answers_the_kind_as_its_documented_number(self) -> None:
        """check() returns 1 for a digest key, 2 for an argon2id key, 0 for anything else."""
        key_format = KeyFormat()
        assert (KeyKind.MALFORMED, KeyKind.DIGEST, KeyKind.ARGON2) == (0, 1, 2)
        assert key_format.check(DIGEST_KEY) == 1
        assert key_format.check(ARGON2_KEY) == 2
        assert key_format.check(DIGEST_KEY[:-1]) == 0
        assert key_format.check(None) == 0
        assert key_format.check(DIGEST_KEY.encode()) == 0

    def test_a_body_one_character_longer_or_shorter_is_malformed(self) -> None:
        """Only the two exact lengths are keys, even with a correct checksum."""
        key_format = KeyFormat()
        for body in ("A" * 42, "A" * 44, "A" * 58, "A" * 60):
            assert key_format.check(PREFIX + body + checksum(body)) == KeyKind.MALFORMED

    def test_another_prefix_of_the_same_length_is_malformed(self) -> None:
        """A key of another deployment prefix, though of the right length and checksum, is malformed."""
        body = DIGEST_KEY[len(PREFIX) : -6]
        assert KeyFormat().check("tk_test_" + body + checksum(body)) == KeyKind.MALFORMED

    @pytest.mark.parametrize("character", ["٣", "é", "-", " "])
    def test_a_non_ascii_or_non_alphanumeric_body_is_malformed(self, character: str) -> None:
        """A body with a character outside base62 (non-ASCII digits too) is malformed, not an error."""
        body = character + DIGEST_KEY[len(PREFIX) + 1 : -6]
        assert KeyFormat().check(PREFIX + body + "000000") == KeyKind.MALFORMED
        assert KeyFormat().parse(PREFIX + body + "000000") is None

    def test_start_is_the_prefix_and_four_characters(self) -> None:
        """The display start is the prefix and the first four characters after it, for both kinds."""
        key_format = KeyFormat()
        assert key_format.start(DIGEST_KEY) == "tk_live_0123"
        assert key_format.start(ARGON2_KEY) == "tk_live_Look"
        digest_parsed = key_format.parse(DIGEST_KEY)
        argon2_parsed = key_format.parse(ARGON2_KEY)
        assert digest_parsed is not None
        assert argon2_parsed is not None
        assert (digest_parsed.lookup_id, digest_parsed.start) == (None, "tk_live_0123")
        assert (argon2_parsed.lookup_id, argon2_parsed.start) == ("LookupId00000001", "tk_live_Look")

    def test_lookup_id_is_the_16_characters_after_the_prefix(self) -> None:
        """The lookup id is exactly the 16 characters between the prefix and the secret."""
        assert lookup_id_of(ARGON2_KEY) == "LookupId00000001"
        assert lookup_id_of("acme_test_" + ARGON2_KEY[len(PREFIX) :]) == "LookupId00000001"


class TestGenerate:
    def test_secrets_use_all_256_bits_and_lookup_ids_all_95(self) -> None:
        """Over 64 keys, some secret reaches 2**255 and some lookup id 2**94: all random bits are used."""
        key_format = KeyFormat()
        secrets = []
        lookup_ids = []
        for _ in range(64):
            key = key_format.generate(with_lookup_id=True)
            lookup_ids.append(_value(key[len(PREFIX) : len(PREFIX) + 16]))
            secrets.append(_value(key[len(PREFIX) + 16 : -6]))
        assert max(secrets) >= 2**255
        assert max(lookup_ids) >= 2**94
        assert max(lookup_ids) < 2**95

    def test_generated_keys_check_as_their_kind(self) -> None:
        """A generated key is of the digest kind, or of the argon2id kind when it has a lookup id."""
        key_format = KeyFormat("acme_test_")
        digest_key = key_format.generate()
        argon2_key = key_format.generate(with_lookup_id=True)
        assert (len(digest_key), len(argon2_key)) == (10 + 43 + 6, 10 + 16 + 43 + 6)
        assert key_format.check(digest_key) == KeyKind.DIGEST
        assert key_format.check(argon2_key) == KeyKind.ARGON2


def _value(digits: str) -> int:
    number = 0
    for digit in digits:
        number = number * 62 + ALPHABET.index(digit)
    return number


class TestHashers:
    def test_sha256_digest_is_tagged_hex(self) -> None:
        """A digest-kind key is stored as sha256$ and the hex SHA-256 of the key."""
        assert sha256_digest("abc") == "sha256$" + hashlib.sha256(b"abc").hexdigest()

    def test_pepper_digest_is_tagged_hmac_with_version(self) -> None:
        """A peppered digest is hmac-sha256$<version>$ and the hex HMAC-SHA256 under the pepper."""
        (pepper,) = build_peppers({"v1": "a pepper of 16+ bytes"}, None)
        mac = hmac.new(b"a pepper of 16+ bytes", b"abc", hashlib.sha256).hexdigest()
        assert pepper.digest("abc") == f"hmac-sha256$v1${mac}"
        assert "16+" not in repr(pepper)

    def test_peppers_current_first_then_older_then_plain_sha256(self) -> None:
        """Candidates are the current pepper's digest, the older peppers' and the unpeppered SHA-256 one."""
        peppers = build_peppers(
            {"v1": b"first pepper 16+b", "v2": "second pepper 16+", "v3": "third pepper 16+b"}, "v2"
        )
        assert [pepper.version for pepper in peppers] == ["v2", "v1", "v3"]
        digests = choose_hasher(None, peppers).digests
        assert [type(hasher) for hasher in digests] == [HmacSha256Hasher] * 3 + [Sha256Hasher]
        assert [hasher.store("k") for hasher in digests] == [
            peppers[0].digest("k"),
            peppers[1].digest("k"),
            peppers[2].digest("k"),
            sha256_digest("k"),
        ]
        assert [hasher.store("k") for hasher in choose_hasher(None, ()).digests] == [sha256_digest("k")]

    def test_a_single_pepper_is_current_without_naming_it(self) -> None:
        """With one pepper, current_pepper may be left out."""
        assert [pepper.version for pepper in build_peppers({"only": "a pepper of 16+ bytes"}, None)] == [
            "only"
        ]
        assert build_peppers({}, None) == ()
        assert build_peppers(None, None) == ()

    @pytest.mark.parametrize(
        ("peppers", "current"),
        [
            ({"v1": "x" * 15}, None),
            ({"v1": b"x" * 15}, None),
            ({"v" * 17: "x" * 16}, None),
            ({"": "x" * 16}, None),
            ({"v-1": "x" * 16}, None),
            ({"v1": "x" * 16, "v2": "y" * 16}, None),
            ({"v1": "x" * 16}, "v2"),
            ({}, "v1"),
            (None, "v1"),
            ({"v1": 1234567890123456789}, None),
        ],
    )
    def test_unusable_peppers_are_configuration_errors(self, peppers: object, current: str | None) -> None:
        """Short secrets, bad version names, an ambiguous or unknown current pepper are refused."""
        with pytest.raises(ConfigurationError):
            build_peppers(peppers, current)  # type: ignore[arg-type]

    def test_16_bytes_and_16_character_versions_are_enough(self) -> None:
        """Both lower bounds are inclusive: a 16-byte secret and a 16-character version are accepted."""
        (pepper,) = build_peppers({"v" * 16: "x" * 16}, None)
        assert (pepper.version, pepper.secret) == ("v" * 16, b"x" * 16)

    def test_hasher_reprs_name_the_hasher_and_never_a_secret(self) -> None:
        """Each hasher's repr names its class (and pepper version), never the pepper's secret."""
        (pepper,) = build_peppers({"v1": "a pepper of 16+ bytes"}, None)
        assert repr(Sha256Hasher()) == "Sha256Hasher()"
        assert repr(HmacSha256Hasher(pepper)) == "HmacSha256Hasher(version='v1')"
        assert repr(Argon2idHasher(CHEAP_ARGON2)) == "Argon2idHasher()"

    def test_argon2_lookup_bounds_enclose_exactly_that_id(self) -> None:
        """The range starts at argon2id$<id>$ and ends before any other id ('%' follows '$')."""
        assert Argon2idHasher.bounds(ARGON2_KEY) == (
            "argon2id$LookupId00000001$",
            "argon2id$LookupId00000001%",
        )

    def test_argon2_matches_only_its_own_id_and_key(self) -> None:
        """A stored argon2id value matches its key under its own lookup id only; junk never raises."""
        hasher = Argon2idHasher(CHEAP_ARGON2)
        stored = hasher.store(ARGON2_KEY)
        assert stored.startswith("argon2id$LookupId00000001$argon2id$")
        assert hasher.matches(stored, ARGON2_KEY) is True
        # Another key differing in the lookup id's case only: not filed under it (case-sensitive).
        other_case = PREFIX + "l" + ARGON2_KEY[len(PREFIX) + 1 :]
        assert hasher.owns(stored, ARGON2_KEY) is True
        assert hasher.owns(stored, other_case) is False
        assert hasher.matches(stored, other_case) is False
        assert hasher.matches(stored, DIGEST_KEY) is False
        assert hasher.matches("argon2id$LookupId00000001$junk", ARGON2_KEY) is False
        assert hasher.matches(None, ARGON2_KEY) is False


class TestHasherNames:
    @pytest.mark.parametrize(
        ("settings", "tag"),
        [
            ({"hasher": "sha256"}, "sha256$"),
            ({"hasher": "hmac-sha256", "peppers": {"v1": "a pepper of 16+ bytes"}}, "hmac-sha256$v1$"),
            ({"hasher": "argon2id", "argon2_hasher": CHEAP_ARGON2}, "argon2id$"),
        ],
    )
    def test_each_documented_hasher_name_is_accepted_and_tags_the_row(
        self, sqlite_engine: sa.Engine, membership: MembershipService, settings: dict[str, object], tag: str
    ) -> None:
        """hasher='sha256', 'hmac-sha256' and 'argon2id' are accepted; the row's digest carries the tag."""
        service = ApiKeyService(membership=membership, **settings)  # type: ignore[arg-type]
        key_id, key = _issue(sqlite_engine, service)
        assert _stored(sqlite_engine, key_id).startswith(tag)
        assert _verify(sqlite_engine, service, key).key_id == key_id


class TestArgon2Storage:
    @pytest.fixture
    def argon(self, membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
        return ApiKeyService(
            membership=membership, clock=clock, hasher="argon2id", argon2_hasher=CHEAP_ARGON2
        )

    def test_the_row_holds_no_part_of_the_secret(self, engine: sa.Engine, argon: ApiKeyService) -> None:
        """The row holds the tag, the 16-character lookup id and a hash: no 6 characters of the secret."""
        key_id, key = _issue(engine, argon)
        stored = _stored(engine, key_id)
        lookup_id = key[len(PREFIX) : len(PREFIX) + 16]
        secret = key[len(PREFIX) + 16 : -6]
        assert stored.startswith(f"argon2id${lookup_id}$argon2id$v=19$")
        leaked = [secret[i : i + 6] for i in range(len(secret) - 5) if secret[i : i + 6] in stored]
        assert leaked == []
        assert _verify(engine, argon, key).key_id == key_id


class TestScopes:
    def test_check_scopes_answers_exactly_true_or_false(self) -> None:
        """check_scopes and has_scopes return the bools True and False, not truthy stand-ins."""
        valid = ApiKeyVerification(valid=True, key_id="k", organization_id=ORG, scopes=("a", "b"))
        invalid = ApiKeyVerification(valid=False, reason="unknown")
        assert check_scopes(valid, ["a"]) is True
        assert check_scopes(valid, []) is True
        assert check_scopes(valid, ["a", "c"]) is False
        assert check_scopes(invalid, []) is False
        assert valid.has_scopes("a", "b") is True
        assert valid.has_scopes("c") is False

    def test_require_scopes_names_the_missing_ones_and_the_reason(self) -> None:
        """require_scopes raises with the invalid key's reason, or with the sorted missing scopes."""
        valid = ApiKeyVerification(valid=True, key_id="k", organization_id=ORG, scopes=("a",))
        require_scopes(valid, ["a"])
        with pytest.raises(MissingScopeError) as missing:
            require_scopes(valid, ["z", "a", "c"])
        assert missing.value.missing == ("c", "z")
        with pytest.raises(InvalidApiKeyError) as invalid:
            require_scopes(ApiKeyVerification(valid=False, reason="revoked"), [])
        assert invalid.value.reason == "revoked"
        with pytest.raises(InvalidApiKeyError) as invalid:
            require_scopes(ApiKeyVerification(valid=False), [])
        assert invalid.value.reason == "unknown"


class TestVerifyCachedWithPeppers:
    def test_a_peppered_key_is_answered_from_memory_after_one_verification(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """With peppers, verify_cached finds the entry verify() cached (one cache key for both)."""
        cached = ApiKeyService(
            membership=membership,
            clock=clock,
            peppers={"v1": "first pepper, 16+ bytes", "v2": "second pepper, 16+ bytes"},
            current_pepper="v2",
            cache_ttl=timedelta(seconds=30),
        )
        key_id, key = _issue(sqlite_engine, cached)
        first = _verify(sqlite_engine, cached, key)
        assert first.key_id == key_id
        assert cached.verify_cached(key) == first


class TestResultBound:
    def test_the_kept_results_never_exceed_their_bound(self, service_for_bound: ApiKeyService) -> None:
        """The prebuilt valid results are emptied when full, so at most _MAX_RESULTS are kept."""
        from tenantkit.api_keys._service import _MAX_RESULTS

        for number in range(_MAX_RESULTS + 2):
            service_for_bound._valid_result(f"key-{number}", ORG, "ci", (), None)
            assert len(service_for_bound._results) <= _MAX_RESULTS


@pytest.fixture
def service_for_bound(membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
    return ApiKeyService(membership=membership, clock=clock)


PEPPER = {"v1": "first pepper, 16+ bytes"}


class TestPepperedLookups:
    def test_a_key_from_before_the_only_pepper_verifies_and_moves_to_it(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """With one pepper (two candidate digests), a plain SHA-256 key verifies and is re-digested."""
        plain = ApiKeyService(membership=membership, clock=clock)
        peppered = ApiKeyService(membership=membership, clock=clock, peppers=PEPPER)
        key_id, key = _issue(engine, plain)
        assert _verify(engine, peppered, key).key_id == key_id
        assert _stored(engine, key_id).startswith("hmac-sha256$v1$")
        assert _verify(engine, peppered, key).key_id == key_id

    def test_a_key_under_the_current_pepper_is_not_written_again(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """Verifying a key already stored under the current pepper runs no UPDATE (nothing to re-digest)."""
        peppered = ApiKeyService(
            membership=membership,
            clock=clock,
            peppers={**PEPPER, "v2": "second pepper, 16+ bytes"},
            current_pepper="v2",
            track_last_used=False,
        )
        key_id, key = _issue(engine, peppered)
        updates: list[str] = []

        def listener(*args: object) -> None:
            if str(args[2]).lstrip().upper().startswith("UPDATE"):
                updates.append(str(args[2]))

        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            assert _verify(engine, peppered, key).key_id == key_id
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert updates == []


class TestCacheAnswers:
    def test_an_argon2_key_with_peppers_is_answered_from_memory(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """verify_cached finds an argon2id key's entry even when peppers are configured for older keys."""
        service = ApiKeyService(
            membership=membership,
            clock=clock,
            hasher="argon2id",
            argon2_hasher=CHEAP_ARGON2,
            peppers={"v1": "first pepper, 16+ bytes"},
            cache_ttl=timedelta(seconds=30),
        )
        _, key = _issue(sqlite_engine, service)
        first = _verify(sqlite_engine, service, key)
        assert first.valid
        assert service.verify_cached(key) == first

    def test_memory_answers_until_last_used_is_due_then_steps_aside(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """With a cache outliving last_used_interval: answered at exactly the interval, None just after it."""
        service = ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(seconds=300))
        _, key = _issue(sqlite_engine, service)
        first = _verify(sqlite_engine, service, key)
        clock.advance(seconds=60)
        assert service.verify_cached(key) == first
        clock.advance(microseconds=1)
        assert service.verify_cached(key) is None
        assert _verify(sqlite_engine, service, key) == first
        assert service.verify_cached(key) == first

    def test_results_are_the_same_object_while_the_memo_has_room(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """A key verified again is answered with the very result object built the first time."""
        service = ApiKeyService(membership=membership, clock=clock)
        _, first_key = _issue(sqlite_engine, service)
        _, second_key = _issue(sqlite_engine, service)
        first = _verify(sqlite_engine, service, first_key)
        _verify(sqlite_engine, service, second_key)
        assert _verify(sqlite_engine, service, first_key) is first
