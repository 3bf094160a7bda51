"""``zocalo-nb rabbitmq configure``: upstream's configure_rabbitmq YAML declares a deployment
(vhost, quorum queues dead-lettering to dlq.<name>, a delivery limit, fanout exchanges);
a dry run changes nothing; deleting needs --delete; services never declare queues."""

from __future__ import annotations

import contextlib
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.brokers import eventually
from zocalo_nb.cli import main
from zocalo_nb.config import Settings
from zocalo_nb.transport import TransportError, connect
from zocalo_nb.transport.rabbitmq_api import ManagementAPI

TOPOLOGY = """
vhosts:
  - name: {vhost}
permissions:
  - {{user: zocalo, vhost: {vhost}, configure: ".*", write: ".*", read: ".*"}}
policies:
  - vhost: {vhost}
    name: redelivery
    pattern: "^(?!dlq\\\\.).*"
    apply-to: queues
    definition: {{delivery-limit: 2}}
exchanges: []
groups:
  - names: [per_image_analysis, processing_recipe]
    vhost: {vhost}
    settings:
      queues: {{type: quorum, dead-letter-routing-key-pattern: "dlq.{{name}}"}}
  - names: [transient.status]
    vhost: {vhost}
    settings: {{broadcast: true}}
"""


@pytest.fixture
def deployment(rabbitmq_url: str, tmp_path: Path) -> tuple[Settings, Path, list[str]]:
    vhost = f"topo-{uuid.uuid4().hex[:8]}"
    base = Settings.build(rabbitmq_url)
    url = (
        f"amqp://{base.username}:{base.password}@{base.host}:{base.port}/{vhost}"
        f"?management={base.management_port}"
    )
    path = tmp_path / "rabbitmq.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY.format(vhost=vhost)))
    yield Settings.build(url), path, ["--broker", url]
    with contextlib.suppress(TransportError):  # a dry run created nothing
        ManagementAPI.for_settings(base).delete(f"vhosts/{vhost}")


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    deployment: tuple[Settings, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, path, broker = deployment
    assert main(["rabbitmq", "configure", str(path), "--dry-run", *broker]) == 0
    out = capsys.readouterr().out
    assert f"+ vhost {settings.vhost}" in out
    assert f"+ queue {settings.vhost}/dlq.per_image_analysis" in out
    assert f"+ exchange {settings.vhost}/transient.status" in out
    assert "dry run" in out
    vhosts = [v["name"] for v in ManagementAPI.for_settings(settings).get("vhosts")]
    assert settings.vhost not in vhosts


def test_configure_declares_the_deployment_and_services_then_use_it(
    deployment: tuple[Settings, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, path, broker = deployment
    assert main(["rabbitmq", "configure", str(path), *broker]) == 0
    api = ManagementAPI.for_settings(settings)
    queue = api.queue(settings.vhost, "per_image_analysis")
    assert queue["arguments"] == {
        "x-queue-type": "quorum",
        "x-single-active-consumer": False,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "dlq.per_image_analysis",
    }
    assert api.queue(settings.vhost, "dlq.per_image_analysis")["arguments"]["x-queue-type"] == (
        "quorum"
    )
    capsys.readouterr()
    assert main(["rabbitmq", "configure", str(path), *broker]) == 0  # idempotent
    assert "nothing to change" in capsys.readouterr().out

    with connect(settings) as transport:  # upstream's naming: no prefix, dlq.<queue>
        got: list[object] = []
        transport.subscribe("per_image_analysis", lambda m: (got.append(m), transport.nack(m)))
        transport.send("per_image_analysis", {"image": 1})
        # the policy's delivery limit (2): three deliveries, then RabbitMQ dead-letters it
        assert eventually(
            lambda: transport.statistics(transport.dlq("per_image_analysis")).depth == 1
        )
        assert len(got) == 3
        (dead,) = transport.browse(transport.dlq("per_image_analysis"))
        assert dead.headers["original-destination"] == "/queue/per_image_analysis"
        with pytest.raises(TransportError, match="zocalo-nb rabbitmq configure") as missing:
            transport.send("not_in_the_file", {"n": 1})
        assert "does not exist" in missing.value.message


def test_what_the_file_does_not_list_is_deleted_only_with_delete(
    deployment: tuple[Settings, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, path, broker = deployment
    assert main(["rabbitmq", "configure", str(path), *broker]) == 0
    api = ManagementAPI.for_settings(settings)
    api.put(f"queues/{settings.vhost}/stray", {"durable": True, "arguments": {}})
    capsys.readouterr()
    assert main(["rabbitmq", "configure", str(path), *broker]) == 0
    assert f"? queue {settings.vhost}/stray (not in the file; --delete removes it)" in (
        capsys.readouterr().out
    )
    assert api.queue(settings.vhost, "stray")["name"] == "stray"
    assert main(["rabbitmq", "configure", str(path), "--delete", *broker]) == 0
    assert f"- queue {settings.vhost}/stray" in capsys.readouterr().out
    with pytest.raises(TransportError, match="404"):
        api.queue(settings.vhost, "stray")
