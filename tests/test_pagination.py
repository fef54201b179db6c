"""Pagination cursors: one codec for every listing, and any cursor it did not write is ``invalid_input``.

Issue 18 §2: hand-made cursors that decode to a lone surrogate, a NUL, an out-of-range or naive date, or the
wrong shape used to raise ``UnicodeEncodeError``, ``OverflowError`` or ``psycopg.DataError`` (a 500 over
HTTP). Every listing, in Python, over both adapters and in the CLI, now refuses them with
``InvalidInputError`` naming the ``cursor`` field, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, InvalidInputError, InvitationService, MembershipService, Role
from tenantkit._cli import main
from tenantkit._pagination import Keyset, Page
from tenantkit._tables import team_members
from tenantkit.audit import AuditService
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS
from tests.strategies import (
    arbitrary_cursors,
    cursors,
    listing_keysets,
    mutated_cursors,
    sort_keys,
)
from tests.test_http_contract import ALICE, BASE, build

ORG = "org_1"
NOT_A_CURSOR = "cursor: is not a cursor returned by a previous page"


def b64(value: object) -> str:
    """A cursor made by hand: the JSON of ``value`` in unpadded base64url, as the library spells them."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# The classes of bad sort key, each in the shape of a one-column and a two-column listing, with and
# without the listing's name: the old codec (no name) crashed on the unnamed ones.
_BAD_VALUES = {
    "lone surrogate": ("\ud800", "2030-01-01T00:00:00+00:00"),
    "NUL": ("a\x00b", "2030-01-01T00:00:00+00:00"),
    "naive date": ("bob", "2030-01-01T00:00:00"),
    "overflowing date": ("bob", "9999-12-31T23:59:59-14:00"),
    "underflowing date": ("bob", "0001-01-01T00:00:00+14:00"),
    "other offset": ("bob", "2030-01-01T05:00:00+05:00"),
}


def hand_made_cursors(listing: str, arity: int) -> dict[str, str]:
    """Hand-made cursors for a listing whose sort key has ``arity`` columns (an id last)."""
    made: dict[str, str] = {}
    for name, (text, date) in _BAD_VALUES.items():
        values = [text] if arity == 1 else [date, text if name in {"lone surrogate", "NUL"} else "k1"]
        made[f"{name}, unnamed"] = b64(values)
        made[f"{name}, named"] = b64([listing, *values])
    made["wrong shape: object"] = b64({"after": "bob"})
    made["wrong shape: number"] = b64([listing, *[7] * arity])
    made["wrong shape: arity"] = b64([listing, *["bob"] * (arity + 1)])
    made["another listing's name"] = b64(["elsewhere", *["2030-01-01T00:00:00+00:00"] * arity])
    made["not base64"] = "not a cursor!"
    made["padded"] = b64([listing, "bob"]) + "=="
    made["empty"] = ""
    return made


class TestCodec:
    @pytest.mark.parametrize("keyset", listing_keysets(), ids=lambda keyset: keyset.listing)
    @given(data=st.data())
    def test_round_trip(self, keyset: Keyset, data: st.DataObject) -> None:
        """Every valid sort key comes back out of the cursor written for it."""
        key = data.draw(sort_keys(keyset))
        assert keyset.decode(keyset.encode(key)) == key

    @pytest.mark.parametrize("keyset", listing_keysets(), ids=lambda keyset: keyset.listing)
    @given(data=st.data())
    def test_only_the_encoders_own_cursors_pass(self, keyset: Keyset, data: st.DataObject) -> None:
        """A mutated or hand-made cursor is refused, unless it is exactly what the encoder writes."""
        cursor = data.draw(st.one_of(mutated_cursors(keyset), arbitrary_cursors()))
        refusal: tuple[str, str] | None = None
        try:
            key = keyset.decode(cursor)
        except InvalidInputError as error:
            refusal = (error.field, str(error))
        else:
            assert keyset.encode(key) == cursor
        assert refusal in {None, ("cursor", NOT_A_CURSOR)}

    @pytest.mark.parametrize("keyset", listing_keysets(), ids=lambda keyset: keyset.listing)
    def test_hand_made_cursors_are_refused(self, keyset: Keyset) -> None:
        """Each class of bad cursor named in the issue is refused by every listing's codec."""
        for name, cursor in hand_made_cursors(keyset.listing, len(keyset.columns)).items():
            with pytest.raises(InvalidInputError, match="cursor") as raised:
                keyset.decode(cursor)
            assert raised.value.field == "cursor", name

    def test_one_listings_cursor_is_refused_by_another(self) -> None:
        """The listing's name is in the cursor, so a members cursor does not page organizations."""
        members, organizations, *_ = listing_keysets()
        with pytest.raises(InvalidInputError):
            organizations.decode(members.encode(("bob",)))

    def test_timestamps_are_written_in_utc(self) -> None:
        """The same instant in another zone gives the same cursor, spelled in UTC."""
        keys = listing_keysets()[2]
        instant = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)
        local = instant.astimezone(timezone(timedelta(hours=2)))
        assert keys.encode((local, "k1")) == keys.encode((instant, "k1"))
        assert keys.decode(keys.encode((local, "k1"))) == (instant, "k1")

    def test_a_column_without_a_codec_is_refused_at_declaration(self) -> None:
        """Declaring a keyset over a column the codec cannot carry fails at import time, not per request."""
        column = sa.Column("n", sa.Integer())
        with pytest.raises(TypeError, match="no cursor codec"):
            Keyset("numbers", column)


# -- every listing, in Python, on every database --------------------------------------------------------

Listing = Callable[[Session, str], Page[Any]]


def listings(clock: FrozenClock) -> dict[str, tuple[Keyset, Listing]]:
    """Each listing with its keyset, as a call taking a session and a cursor."""
    members = MembershipService(clock=clock)
    keys = ApiKeyService(membership=members, clock=clock)
    invitations = InvitationService(membership=members, clock=clock, secret_keys=["s" * 40])
    members_order, organizations_order, keys_order, pending_order, audit_order = listing_keysets()
    audit = AuditService(membership=members, clock=clock)
    return {
        "members": (
            members_order,
            lambda session, cursor: members.list_members(session, ORG, actor=HOST, cursor=cursor),
        ),
        "organizations": (
            organizations_order,
            lambda session, cursor: members.list_organizations(session, "alice", actor=HOST, cursor=cursor),
        ),
        "api_keys": (
            keys_order,
            lambda session, cursor: keys.list_keys(session, ORG, actor=HOST, cursor=cursor),
        ),
        "invitations": (
            pending_order,
            lambda session, cursor: invitations.list_pending(session, ORG, actor=HOST, cursor=cursor),
        ),
        "audit_events": (
            audit_order,
            lambda session, cursor: audit.list_events(session, ORG, actor=HOST, cursor=cursor),
        ),
    }


LISTINGS = ("members", "organizations", "api_keys", "invitations", "audit_events")


class TestListings:
    @pytest.mark.parametrize("listing", LISTINGS)
    def test_hand_made_cursors(self, engine: sa.Engine, clock: FrozenClock, listing: str) -> None:
        """Each listing refuses every hand-made cursor of the issue with InvalidInputError (cursor)."""
        keyset, call = listings(clock)[listing]
        for name, cursor in hand_made_cursors(keyset.listing, len(keyset.columns)).items():
            with Session(engine) as session, pytest.raises(InvalidInputError) as raised:
                call(session, cursor)
            assert raised.value.field == "cursor", name

    @pytest.mark.parametrize("listing", LISTINGS)
    @settings(max_examples=25)
    @given(data=st.data())
    def test_any_cursor(
        self, engine: sa.Engine, clock: FrozenClock, listing: str, data: st.DataObject
    ) -> None:
        """Any cursor, valid, mutated or made by hand, gives a page or InvalidInputError, nothing else."""
        keyset, call = listings(clock)[listing]
        cursor = data.draw(cursors(keyset))
        with Session(engine) as session:
            try:
                items = call(session, cursor).items
            except InvalidInputError as error:
                items = [error.field]
        assert items in ([], ["cursor"])

    def test_odd_stored_ids_page_through(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Ids another tool stored (whitespace, control characters) still page: every row once."""
        odd = ["\tlead", "trailing ", "é", "x" * 255, "\U0001f600", "a\x7fb"]
        with Session(engine) as session, session.begin():
            session.execute(
                sa.insert(team_members),
                [{"organization_id": ORG, "user_id": user_id, "role": Role.MEMBER.value} for user_id in odd],
            )
        service = MembershipService(clock=clock)
        seen: list[str] = []
        cursor = None
        with Session(engine) as session:
            while True:
                page = service.list_members(session, ORG, actor=HOST, limit=1, cursor=cursor)
                seen += [member.user_id for member in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert sorted(seen) == sorted(odd)


# -- both adapters --------------------------------------------------------------------------------------

ROUTES = {
    "members": "members",
    "api_keys": "api-keys",
    "invitations": "invitations",
    "audit_events": "audit-events",
}


class TestHttp:
    @pytest.mark.parametrize("adapter", ADAPTERS)
    def test_hand_made_cursors_are_422(self, adapter: str, clock: FrozenClock, engine: sa.Engine) -> None:
        """Every listing route answers each hand-made cursor with 422 invalid_input on the cursor field."""
        client = build(adapter, clock, engine)
        keysets = {keyset.listing: keyset for keyset in listing_keysets()}
        for listing, route in ROUTES.items():
            keyset = keysets[listing]
            for name, cursor in hand_made_cursors(keyset.listing, len(keyset.columns)).items():
                query = urlencode({"cursor": cursor})
                reply = client.request("GET", f"{BASE}/{route}?{query}", headers=ALICE)
                assert reply.status == 422, (listing, name, reply)
                assert reply.json["error"]["code"] == "invalid_input", (listing, name)
                assert reply.json["error"]["field"] == "cursor", (listing, name)

    @pytest.mark.parametrize("adapter", ADAPTERS)
    def test_valid_cursor_pages(self, adapter: str, clock: FrozenClock, engine: sa.Engine) -> None:
        """A cursor the codec writes for a listing is served: the page after that sort key."""
        client = build(adapter, clock, engine)
        members = listing_keysets()[0]
        query = urlencode({"cursor": members.encode(("b",))})
        reply = client.request("GET", f"{BASE}/members?{query}", headers=ALICE)
        assert reply.status == 200, reply
        assert [item["user_id"] for item in reply.json["items"]] == ["bob", "carol"]


# -- the CLI --------------------------------------------------------------------------------------------

COMMANDS = {
    "members": ["members", "list", ORG],
    "organizations": ["members", "orgs", "alice"],
    "api_keys": ["keys", "list", ORG],
    "invitations": ["invites", "list", ORG],
    "audit_events": ["audit", "list", ORG],
}


class TestCli:
    @pytest.mark.parametrize("listing", LISTINGS)
    def test_hand_made_cursors(self, engine: sa.Engine, listing: str) -> None:
        """Every listing command answers a hand-made cursor with one line and exit code 2."""
        url = engine.url.render_as_string(hide_password=False)
        keyset = {keyset.listing: keyset for keyset in listing_keysets()}[listing]
        for name, cursor in hand_made_cursors(keyset.listing, len(keyset.columns)).items():
            result = CliRunner().invoke(main, [*COMMANDS[listing], "--url", url, "--cursor", cursor])
            assert result.exit_code == 2, (name, result.output)
            assert result.stderr.splitlines()[-1] == f"error [invalid_input]: --{NOT_A_CURSOR}", name
