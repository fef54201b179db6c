"""Settings objects and the one environment loader that TenantKit and the CLI share."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tenantkit import (
    HOST,
    ApiKeySettings,
    DatabaseSettings,
    InvitationSettings,
    Role,
    TenantKit,
    TenantKitSettings,
)
from tenantkit._cli import main
from tenantkit._settings import ENVIRONMENT_VARIABLES
from tenantkit.errors import ConfigurationError, InvalidSettingError

PEPPER = "a-pepper-of-at-least-16-bytes"
SECRET = "an-invitation-signing-key-of-32-chars"
DOCS = Path(__file__).parent.parent / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TENANTKIT_* variable from the developer's shell, and a working directory without a .env."""
    for variable in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    monkeypatch.chdir(tmp_path)


class TestSettingsObjects:
    def test_defaults_are_todays_behaviour(self) -> None:
        """Without arguments each object holds the services' own defaults."""
        settings = TenantKitSettings()
        assert settings.api_keys.prefix == "tk_live_"
        assert settings.api_keys.hasher is None
        assert settings.api_keys.last_used_interval == timedelta(seconds=60)
        assert settings.invitations.default_ttl == timedelta(days=7)
        assert not settings.invitations.enabled
        assert settings.database.schema_name is None

    def test_frozen(self) -> None:
        """A settings object cannot be changed after it was validated."""
        settings = ApiKeySettings()
        with pytest.raises(ValidationError):
            settings.prefix = "tk_test_"

    def test_durations_take_the_cli_spelling(self) -> None:
        """Durations read 90s, 15m, 12h, 7d, plain seconds or ISO 8601."""
        assert ApiKeySettings(cache_ttl="90s").cache_ttl == timedelta(seconds=90)
        assert ApiKeySettings(rotation_grace="12h").rotation_grace == timedelta(hours=12)
        assert InvitationSettings(default_ttl="3d").default_ttl == timedelta(days=3)
        assert ApiKeySettings(last_used_interval="120").last_used_interval == timedelta(minutes=2)
        assert ApiKeySettings(cache_ttl="PT1M").cache_ttl == timedelta(minutes=1)

    @pytest.mark.parametrize(
        ("model", "values", "field"),
        [
            (ApiKeySettings, {"prefix": "Bad-Prefix"}, "prefix"),
            (ApiKeySettings, {"hasher": "md5"}, "hasher"),
            (ApiKeySettings, {"hasher": "hmac-sha256"}, "hasher"),
            (ApiKeySettings, {"peppers": {"v1": "short"}}, "peppers"),
            (ApiKeySettings, {"peppers": {"v1": PEPPER, "v2": PEPPER}}, "current_pepper"),
            (ApiKeySettings, {"peppers": {"v1": PEPPER}, "current_pepper": "v9"}, "current_pepper"),
            (ApiKeySettings, {"cache_ttl": "0s"}, "cache_ttl"),
            (ApiKeySettings, {"cache_size": 0}, "cache_size"),
            (ApiKeySettings, {"argon2_profile": "FASTEST"}, "argon2_profile"),
            (InvitationSettings, {"secret_keys": ["short"]}, "secret_keys"),
            (InvitationSettings, {"accept_url_template": "https://app.example.com/"}, "accept_url_template"),
            (InvitationSettings, {"default_ttl": "40d"}, "max_ttl"),
            (InvitationSettings, {"public_email_domains": ["not a domain"]}, "public_email_domains"),
            (DatabaseSettings, {"url": "not a url"}, "url"),
            (DatabaseSettings, {"schema_name": "drop table"}, "schema_name"),
            (ApiKeySettings, {"unknown": 1}, "unknown"),
        ],
    )
    def test_invalid_values_name_the_field(self, model: type, values: dict[str, object], field: str) -> None:
        """An unusable value raises InvalidSettingError (a ConfigurationError) naming the field."""
        with pytest.raises(InvalidSettingError) as caught:
            model(**values)
        assert caught.value.setting == field
        assert caught.value.code == "invalid_setting"
        assert isinstance(caught.value, ConfigurationError)

    def test_an_error_in_a_section_names_the_section(self) -> None:
        """Built from plain mappings, the whole names the field with its section."""
        with pytest.raises(InvalidSettingError) as caught:
            TenantKitSettings(api_keys={"prefix": "Bad-Prefix"})
        assert caught.value.setting == "api_keys.prefix"

    @given(
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=13, max_size=40).map(
            lambda text: "~~" + text + "~"  # marked, so that it cannot be a piece of the repr's own text
        )
    )
    def test_secrets_never_appear_in_repr(self, secret: str) -> None:
        """Peppers, signing keys and the database password are hidden in every repr."""
        settings = TenantKitSettings(
            api_keys=ApiKeySettings(peppers={"v1": secret}),
            invitations=InvitationSettings(secret_keys=[secret]),
            database=DatabaseSettings(url=f"postgresql://user:{quote_plus(secret)}@db/app"),
        )
        assert secret not in repr(settings)
        assert secret not in str(settings)
        assert settings.database.safe_url == "postgresql://user:***@db/app"

    def test_a_short_secret_is_not_repeated_in_the_error(self) -> None:
        """The error for an unusable secret names the setting, never the value."""
        with pytest.raises(InvalidSettingError) as caught:
            InvitationSettings(secret_keys=["s3cr3t-value"])
        assert "s3cr3t-value" not in str(caught.value)
        assert "s3cr3t-value" not in json.dumps(caught.value.to_dict())

    def test_test_profile_is_cheap(self) -> None:
        """The test profile uses argon2-cffi's cheapest parameters and tk_test_ keys."""
        settings = TenantKitSettings.for_tests()
        hasher = settings.api_keys.service_options()["argon2_hasher"]
        assert hasher.memory_cost == 8
        assert settings.api_keys.prefix == "tk_test_"


class TestTenantKitFromSettings:
    def test_the_hasher_is_chosen_through_settings(self, engine: sa.Engine) -> None:
        """ApiKeySettings(hasher="argon2id") makes the kit store argon2id hashes, which verify."""
        kit = TenantKit(api_keys=ApiKeySettings(hasher="argon2id", argon2_profile="CHEAPEST"))
        assert kit.api_keys.hasher == "argon2id"
        with kit.transaction(engine) as session:
            kit.members.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            issued = kit.api_keys.issue(session, "org_1", "ci", actor="owner")
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT hashed_key FROM api_keys").scalar_one()
        assert stored.startswith("argon2id$")
        with kit.transaction(engine) as session:
            assert kit.api_keys.verify(session, issued.reveal()).valid

    def test_every_section_reaches_its_service(self) -> None:
        """Each setting ends up on the service that uses it."""
        kit = TenantKit(
            api_keys=ApiKeySettings(
                prefix="tk_test_", peppers={"v2": PEPPER}, cache_ttl="30s", track_last_used=False
            ),
            invitations=InvitationSettings(secret_keys=[SECRET], default_ttl="2d", max_ttl="10d"),
            database=DatabaseSettings(schema_name="tenants"),
        )
        assert kit.api_keys.format.prefix == "tk_test_"
        assert kit.api_keys.hasher == "hmac-sha256"
        assert kit.api_keys.cache_ttl == timedelta(seconds=30)
        assert not kit.api_keys.track_last_used
        assert kit.invitations.default_ttl == timedelta(days=2)
        assert kit.invitations.max_ttl == timedelta(days=10)
        assert kit.members.schema == "tenants"


class TestTheEnvironmentLoader:
    def test_reads_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every section is filled from its TENANTKIT_* variables."""
        monkeypatch.setenv("TENANTKIT_API_KEY_PREFIX", "tk_test_")
        monkeypatch.setenv("TENANTKIT_API_KEY_HASHER", "argon2id")
        monkeypatch.setenv("TENANTKIT_API_KEY_PEPPER", PEPPER)
        monkeypatch.setenv("TENANTKIT_API_KEY_PEPPER_VERSION", "v2")
        monkeypatch.setenv("TENANTKIT_API_KEY_OLD_PEPPERS", f"v1:{PEPPER}-old")
        monkeypatch.setenv("TENANTKIT_API_KEY_CACHE_TTL", "45s")
        monkeypatch.setenv("TENANTKIT_INVITATION_SECRET", f"{SECRET}-old, {SECRET}")
        monkeypatch.setenv("TENANTKIT_INVITATION_ALLOW_PUBLIC_DOMAINS", "true")
        monkeypatch.setenv("TENANTKIT_DATABASE_URL", "postgresql://app:pw@db/app")
        monkeypatch.setenv("TENANTKIT_DATABASE_SCHEMA", "tenants")
        settings = TenantKitSettings.from_env()
        assert settings.api_keys.prefix == "tk_test_"
        assert settings.api_keys.hasher == "argon2id"
        assert settings.api_keys.current_pepper == "v2"
        assert {
            version: secret.get_secret_value() for version, secret in settings.api_keys.peppers.items()
        } == {
            "v1": f"{PEPPER}-old",
            "v2": PEPPER,
        }
        assert settings.api_keys.cache_ttl == timedelta(seconds=45)
        assert [key.get_secret_value() for key in settings.invitations.secret_keys] == [
            f"{SECRET}-old",
            SECRET,
        ]
        assert settings.invitations.allow_public_email_domains
        assert settings.database.safe_url == "postgresql://app:***@db/app"
        assert settings.database.schema_name == "tenants"

    def test_reads_dot_env_and_the_environment_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A .env in the working directory is read; a variable set in the environment overrides it."""
        Path(".env").write_text(
            f"TENANTKIT_API_KEY_PREFIX=tk_dotenv_\nTENANTKIT_INVITATION_SECRET={SECRET}\nOTHER_APP_SETTING=1\n"
        )
        assert TenantKitSettings.from_env().api_keys.prefix == "tk_dotenv_"
        monkeypatch.setenv("TENANTKIT_API_KEY_PREFIX", "tk_env_")
        settings = TenantKitSettings.from_env()
        assert settings.api_keys.prefix == "tk_env_"
        assert settings.invitations.enabled
        assert TenantKitSettings.from_env(env_file=None).invitations.enabled is False

    @pytest.mark.parametrize(
        ("variables", "named"),
        [
            ({"TENANTKIT_API_KEY_PREFIX": "NOPE"}, "TENANTKIT_API_KEY_PREFIX"),
            ({"TENANTKIT_API_KEY_HASHER": "md5"}, "TENANTKIT_API_KEY_HASHER"),
            ({"TENANTKIT_API_KEY_PEPPER": "short"}, "TENANTKIT_API_KEY_PEPPER"),
            ({"TENANTKIT_API_KEY_OLD_PEPPERS": f"v1:{PEPPER}"}, "TENANTKIT_API_KEY_OLD_PEPPERS"),
            (
                {"TENANTKIT_API_KEY_PEPPER": PEPPER, "TENANTKIT_API_KEY_OLD_PEPPERS": "x"},
                "TENANTKIT_API_KEY_OLD_PEPPERS",
            ),
            (
                {"TENANTKIT_API_KEY_PEPPER": PEPPER, "TENANTKIT_API_KEY_PEPPER_VERSION": "v-1"},
                "TENANTKIT_API_KEY_PEPPER",
            ),
            ({"TENANTKIT_API_KEY_CACHE_TTL": "soon"}, "TENANTKIT_API_KEY_CACHE_TTL"),
            ({"TENANTKIT_API_KEY_ARGON2_PROFILE": "FAST"}, "TENANTKIT_API_KEY_ARGON2_PROFILE"),
            ({"TENANTKIT_INVITATION_SECRET": "short"}, "TENANTKIT_INVITATION_SECRET"),
            ({"TENANTKIT_INVITATION_ACCEPT_URL": "https://x/"}, "TENANTKIT_INVITATION_ACCEPT_URL"),
            ({"TENANTKIT_INVITATION_MAX_TTL": "1d"}, "TENANTKIT_INVITATION_MAX_TTL"),
            (
                {"TENANTKIT_INVITATION_ALLOW_PUBLIC_DOMAINS": "maybe"},
                "TENANTKIT_INVITATION_ALLOW_PUBLIC_DOMAINS",
            ),
            ({"TENANTKIT_DATABASE_URL": "nonsense"}, "TENANTKIT_DATABASE_URL"),
            ({"TENANTKIT_DATABASE_SCHEMA": "a;b"}, "TENANTKIT_DATABASE_SCHEMA"),
        ],
    )
    def test_invalid_variables_are_named(
        self, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
    ) -> None:
        """An unusable variable raises InvalidSettingError naming that variable, never its value."""
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(InvalidSettingError) as caught:
            TenantKitSettings.from_env()
        assert caught.value.setting == named
        assert caught.value.message.startswith(f"{named}: ")
        for value in variables.values():
            if len(value) > 4:
                assert value not in caught.value.message

    def test_from_env_builds_the_kit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """TenantKit.from_env() is TenantKit.from_settings(TenantKitSettings.from_env())."""
        monkeypatch.setenv("TENANTKIT_INVITATION_SECRET", SECRET)
        monkeypatch.setenv("TENANTKIT_API_KEY_PEPPER", PEPPER)
        kit = TenantKit.from_env()
        assert kit.api_keys.hasher == "hmac-sha256"
        assert kit.invitations.max_ttl == timedelta(days=30)

    def test_the_application_verifies_what_the_cli_issued(
        self, monkeypatch: pytest.MonkeyPatch, sqlite_engine: sa.Engine
    ) -> None:
        """One environment configures both: a key the CLI issues under a pepper verifies in the app."""
        url = sqlite_engine.url.render_as_string(hide_password=False)
        Path(".env").write_text(
            f"TENANTKIT_DATABASE_URL={url}\nTENANTKIT_API_KEY_PREFIX=tk_test_\nTENANTKIT_API_KEY_PEPPER={PEPPER}\n"
        )
        runner = CliRunner()
        assert runner.invoke(main, ["members", "add", "org_1", "owner", "--role", "OWNER"]).exit_code == 0
        issued = runner.invoke(main, ["keys", "issue", "org_1", "ci"])
        assert issued.exit_code == 0, issued.output
        key = issued.stdout.strip()
        assert key.startswith("tk_test_")
        kit = TenantKit.from_env()
        with kit.transaction(sqlite_engine) as session:
            assert kit.api_keys.verify(session, key).valid
        with sqlite_engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT hashed_key FROM api_keys").scalar_one()
        assert stored.startswith("hmac-sha256$1$")


class TestEveryVariableIsListed:
    def test_the_cli_help_lists_every_variable(self) -> None:
        """``tenantkit --help`` lists each variable the loader reads, with its purpose."""
        result = CliRunner().invoke(main, ["--help"])
        assert result.exit_code == 0
        for variable in ENVIRONMENT_VARIABLES:
            assert variable.name in result.stdout
            assert " ".join(variable.help.split()[:3]) in " ".join(result.stdout.split())

    def test_the_cli_help_lists_nothing_else(self) -> None:
        """No variable appears in ``--help`` that the loader does not read."""
        shown = set(re.findall(r"TENANTKIT_[A-Z0-9_]+", CliRunner().invoke(main, ["--help"]).stdout))
        assert shown == {variable.name for variable in ENVIRONMENT_VARIABLES}

    def test_the_configuration_page_has_a_row_per_variable(self) -> None:
        """docs/configuration.md's table has exactly one row per variable, in the loader's order."""
        rows = re.findall(r"^\| `(TENANTKIT_[A-Z0-9_]+)` \|", DOCS.read_text(), flags=re.MULTILINE)
        assert rows == [variable.name for variable in ENVIRONMENT_VARIABLES]

    def test_secret_variables_are_marked(self) -> None:
        """The variables that hold secrets: the peppers, the signing keys, the database, bus and Redis
        URLs."""
        assert {variable.name for variable in ENVIRONMENT_VARIABLES if variable.secret} == {
            "TENANTKIT_API_KEY_RATE_LIMIT_STORAGE",
            "TENANTKIT_API_KEY_PEPPER",
            "TENANTKIT_API_KEY_OLD_PEPPERS",
            "TENANTKIT_INVITATION_SECRET",
            "TENANTKIT_DATABASE_URL",
            "TENANTKIT_BUS_URL",
            "TENANTKIT_WEBHOOK_SECRET_KEYS",
        }


class TestTheFlaskExample:
    def test_the_example_and_the_cli_share_one_environment(self, tmp_path: Path) -> None:
        """The Flask example reads TENANTKIT_* from .env; the CLI, given the same .env, sees its keys."""
        from tests.test_examples import load_example

        url = f"sqlite:///{tmp_path / 'example.sqlite3'}"
        Path(".env").write_text(f"TENANTKIT_DATABASE_URL={url}\nTENANTKIT_API_KEY_PREFIX=tk_test_\n")
        app = load_example("flask_app").create_app(url)
        try:
            client = app.test_client()
            created = client.post(
                "/organizations", headers={"X-User": "alice"}, json={"organization_id": "acme"}
            )
            assert created.status_code == 201
            issued = client.post(
                "/tenantkit/organizations/acme/api-keys", headers={"X-User": "alice"}, json={"name": "CI"}
            ).get_json()
        finally:
            app.extensions["example_engine"].dispose()
        assert issued["key"].startswith("tk_test_")
        listed = CliRunner().invoke(main, ["keys", "list", "acme", "--json"])
        assert listed.exit_code == 0, listed.output
        assert [key["name"] for key in json.loads(listed.stdout)["items"]] == ["CI"]
