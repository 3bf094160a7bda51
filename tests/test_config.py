"""Settings: URLs, environment variables, zocalo site configuration, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from zocalo_nb.config import ConfigError, Settings


def test_defaults_are_the_embedded_broker() -> None:
    settings = Settings.build(environ={})
    assert (settings.scheme, settings.prefix, settings.source) == ("memory", "test", "defaults")


def test_stomp_urls_are_parsed_with_options() -> None:
    s = Settings.from_url(
        "stomp://us%40er:p%3Ass@broker.example:61614?prefix=test&prefetch=5&heartbeat=0"
    )
    assert (s.host, s.port, s.username, s.password, s.prefix, s.prefetch, s.heartbeat) == (
        "broker.example",
        61614,
        "us@er",
        "p:ss",
        "test",
        5,
        0,
    )
    assert Settings.from_url("stomp+ssl://h?ca_certs=/ca.pem").tls


def test_passwords_are_redacted_everywhere() -> None:
    s = Settings.from_url("stomp://user:hunter2@h:1")
    assert (
        "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in s.redacted_url()
    )
    assert s.redacted_url() == "stomp://user:***@h:1?prefix=test"
    with pytest.raises(ConfigError) as caught:
        Settings.from_url("stomq://user:hunter2@h:1")
    assert "hunter2" not in str(caught.value) and "did you mean 'stomp'" in caught.value.hint


@pytest.mark.parametrize(
    "url, message",
    [
        ("stomp://h?prefetch=zero", "prefetch must be a whole number"),
        ("stomp://h?prefetch=0", "prefetch must be at least 1"),
        ("stomp://h?colour=blue", "unknown option"),
        ("stomp://h:notaport", "bad port"),
        ("stomp://h?prefix=a/b", "bad namespace prefix"),
    ],
)
def test_bad_urls_explain_themselves(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_url(url)
    assert caught.value.hint


def test_precedence_arguments_then_environment_then_yaml(tmp_path: Path) -> None:
    yaml = tmp_path / "site.yaml"
    yaml.write_text(
        "version: 1\n"
        "live-broker:\n  plugin: stomp\n  host: live.example\n  port: 61613\n"
        "  username: zocalo\n  password: live-secret\n  prefix: zocalo\n"
        "test-broker:\n  plugin: stomp\n  host: test.example\n  port: 61613\n"
        "  username: zocalo\n  password: test-secret\n  prefix: zocalo-test\n"
        "environments:\n  live:\n    plugins:\n      - live-broker\n"
        "  test:\n    - test-broker\n  default: test\n"
    )
    from_yaml = Settings.build(environ={"ZOCALO_CONFIG": str(yaml)})
    assert (from_yaml.host, from_yaml.prefix, from_yaml.password) == (
        "test.example",
        "zocalo-test",
        "test-secret",
    )
    assert "test-broker" in from_yaml.source
    live = Settings.build(environ={"ZOCALO_CONFIG": str(yaml), "ZOCALO_NB_ENVIRONMENT": "live"})
    assert live.host == "live.example"
    env = {
        "ZOCALO_CONFIG": str(yaml),
        "ZOCALO_NB_BROKER": "stomp://a:b@env.example:1",
        "ZOCALO_NB_PREFIX": "envp",
    }
    from_env = Settings.build(environ=env)
    assert (from_env.host, from_env.prefix, from_env.source) == (
        "env.example",
        "envp",
        "ZOCALO_NB_BROKER",
    )
    from_args = Settings.build("stomp://arg.example", prefix="argp", environ=env)
    assert (from_args.host, from_args.prefix) == ("arg.example", "argp")
    with pytest.raises(ConfigError, match="environment 'liev' is not defined") as caught:
        Settings.build(environ={"ZOCALO_CONFIG": str(yaml)}, environment="liev")
    assert "did you mean 'live'" in caught.value.hint


def test_unreadable_or_incomplete_yaml_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read zocalo configuration"):
        Settings.build(config_file=tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("broker:\n  plugin: stomp\n  host: h\n")
    with pytest.raises(ConfigError, match="incomplete"):
        Settings.build(config_file=bad, environ={})
    none = tmp_path / "none.yaml"
    none.write_text("version: 1\nlogging:\n  plugin: logging\n")
    with pytest.raises(ConfigError, match="no stomp plugin section"):
        Settings.build(config_file=none, environ={})
