"""Settings come from the environment, typed and validated, with one clear error naming every bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import settings_doc
from shared.config import GROUPS, PROJECT_ROOT, SETTINGS, ConfigError, Settings, markdown_tables


def test_defaults_listen_on_loopback_8402_with_embedded_redis() -> None:
    settings = Settings.from_env({})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8402)
    assert settings.server.public_url == "http://127.0.0.1:8402"
    assert settings.redis_url == "redis://127.0.0.1:6402/0"
    assert settings.operator_file == PROJECT_ROOT / "deploy" / "operator.toml"


def test_derived_defaults_follow_the_values_they_derive_from() -> None:
    settings = Settings.from_env({"SERVER402_PORT": "9000", "SERVER402_REDIS_PORT": "7000"})
    assert settings.server.public_url == "http://127.0.0.1:9000"
    assert settings.redis_url == "redis://127.0.0.1:7000/0"


def test_redis_url_wins_over_the_embedded_port() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://cache.internal:6379/3", "SERVER402_REDIS_PORT": "7000"})
    assert settings.redis_url == "redis://cache.internal:6379/3"


def test_every_invalid_setting_is_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "SERVER402_PORT": "eighty",
                "REDIS_URL": "http://not-redis",
                "SERVER402_LOG_FORMAT": "xml",
                "SERVER402_MAX_BODY_BYTES": "0",
                "SERVER402_OPERATOR_FILE": "/nonexistent/operator.toml",
            }
        )
    message = str(caught.value)
    for name in ("SERVER402_PORT", "REDIS_URL", "SERVER402_LOG_FORMAT", "SERVER402_MAX_BODY_BYTES"):
        assert name in message
    assert "SERVER402_OPERATOR_FILE" in message and "does not exist" in message


def test_a_bad_port_does_not_hide_behind_its_derived_settings() -> None:
    with pytest.raises(ConfigError, match="SERVER402_PORT='0': must be a port number"):
        Settings.from_env({"SERVER402_PORT": "0"})


def test_relative_paths_resolve_against_the_project_root(tmp_path: Path) -> None:
    settings = Settings.from_env({"SERVER402_DATA_DIR": "var/redis"})
    assert settings.local.data_dir == PROJECT_ROOT / "var" / "redis"


def test_readme_tables_are_generated_from_the_declaration(project_root: Path) -> None:
    readme = (project_root / "README.md").read_text()
    assert settings_doc.current_block(readme) == markdown_tables().strip("\n"), "run python -m scripts.settings_doc"
    missing = [s.env for s in SETTINGS if f"| `{s.env}` |" not in readme]
    assert missing == []


def test_each_setting_is_read_into_its_components_group() -> None:
    settings = Settings.from_env({"SERVER402_UPSTREAM_READ_TIMEOUT_S": "7", "SERVER402_BATCH_WINDOW": "9"})
    assert settings.upstream.read_timeout_s == 7.0 and settings.batches.window == 9
    for group in GROUPS:
        value = settings if not group.name else getattr(settings, group.name)
        for setting in group.settings:
            assert hasattr(value, setting.field), (group.name, setting.env)
    assert len({s.env for s in SETTINGS}) == len(SETTINGS), "a variable declared twice"
