"""Recipe graphs: DOT content, SVG/PNG export, the notebook display and its graphviz-less fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RECIPES
from zocalo_nb import Recipe, StepState, ZocaloNbError
from zocalo_nb.errors import GraphvizMissingError, RenderError
from zocalo_nb.render import mimebundle, recipe_to_dot

XIA2 = next(p for p in RECIPES if p.name == "xia2-processing.json")


def test_dot_shows_ids_services_queues_topics_parameters_channels_and_error_links() -> None:
    dot = Recipe.load(XIA2).to_dot()
    assert "<b>1&#160;DLS cluster submission</b>" in dot
    assert "queue: <i>cluster.submission</i>" in dot
    assert "wrapper = xia2" in dot and "+2 parameters" in dot
    assert 's1 -> s3 [label="success"]' in dot and 's1 -> s5 [label="failure"]' in dot
    assert "recipe_error -> s5 [style=dashed" in dot
    assert "start -> s1;" in dot
    topic = Recipe.from_dict(
        {
            "1": {"topic": "t", "output": [2], "error": 2},
            "2": {"queue": "q", "topic": "t2"},
            "start": [[1, {"x": 1}]],
        }
    )
    dot = topic.to_dot()
    assert "s1 [label=<<b>1</b><br/>topic: <i>t</i>>, shape=hexagon]" in dot
    assert "peripheries=2" in dot  # queue and topic
    assert 's1 -> s2 [style=dashed, color="#cb181d", label="error"]' in dot
    assert "&#8594;&#160;1: {&quot;x&quot;: 1}" in dot  # the start node shows payloads


def test_states_colour_steps_and_add_a_legend() -> None:
    dot = Recipe.load(XIA2).to_dot(states={1: StepState.SUCCEEDED, 3: "failed", 5: "dead_lettered"})
    assert 'fillcolor="#a1d99b"' in dot and "[succeeded]" in dot
    assert "legend" in dot and ">dead-lettered<" in dot
    assert "legend_pending" not in dot  # only states in use
    with pytest.raises(ZocaloNbError, match="unknown step state"):
        Recipe.load(XIA2).to_dot(states={1: "exploded"})


def test_labels_escape_html_and_quotes() -> None:
    recipe = Recipe.from_dict(
        {
            "1": {"queue": 'a<b>&"c', "parameters": {"k": "<x>"}, "output": {'we"ird': [2]}},
            "2": {"queue": "b"},
            "start": [[1, {}]],
        }
    )
    dot = recipe.to_dot(title='my "title"')
    assert "a&lt;b&gt;&amp;&quot;c" in dot and "&lt;x&gt;" in dot
    assert 'label="we\\"ird"' in dot and 'label="my \\"title\\""' in dot


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_example_renders_to_svg_and_png(path: Path, tmp_path: Path) -> None:
    recipe = Recipe.load(path)
    svg = recipe.render(tmp_path / "g.svg", states={1: "running"}).read_text()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert recipe.render(tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    assert recipe.render(tmp_path / "g.dot").read_text() == recipe_to_dot(recipe)


def test_unknown_suffix_is_an_error_with_hint(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="cannot tell the graph format") as caught:
        Recipe.load(XIA2).render(tmp_path / "g.jpeg")
    assert ".svg" in caught.value.hint


def test_notebook_display_is_svg_with_text_plain() -> None:
    bundle = Recipe.load(XIA2)._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/svg+xml"}
    assert "<svg" in bundle["image/svg+xml"] and bundle["text/plain"].startswith("<Recipe 6 steps")
    assert set(mimebundle(Recipe.load(XIA2), exclude=["image/svg+xml"])) == {
        "text/plain",
        "text/html",
    }
    assert set(mimebundle(Recipe.load(XIA2), include=["text/plain"])) == {"text/plain"}


def test_without_graphviz_the_display_is_a_table_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no 'dot' on PATH
    recipe = Recipe.load(XIA2)
    bundle = recipe._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "text/plain" in bundle
    assert "apt-get install graphviz" in bundle["text/html"]
    assert "<td>cluster.submission</td>" in bundle["text/html"]
    assert "success &#8594; 3" in bundle["text/html"]
    with pytest.raises(GraphvizMissingError) as caught:
        recipe.render(tmp_path / "g.svg")
    assert "conda" in caught.value.hint
    assert recipe.render(tmp_path / "g.dot").exists()  # DOT still works


def _texts(svg: str) -> list[str]:
    import xml.etree.ElementTree as ET

    return [
        "".join(t.itertext()) for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")
    ]


needs_dot = pytest.mark.skipif(
    not __import__("shutil").which("dot"), reason="graphviz: ./dev installs it"
)


def test_svg_titles_keep_the_space_between_id_and_name(tmp_path: Path) -> None:
    """Graphviz wrote the name as a text node of its own starting with a space, which browsers
    drop ("1Spot finding"): the id and the name are one text now."""
    recipe = Recipe.load(next(p for p in RECIPES if p.name == "demo-pipeline.json"))
    texts = _texts(recipe.render(tmp_path / "g.svg").read_text())
    assert "1\u00a0Spot finding" in texts
    assert not any(t.startswith(" ") for t in texts)


def test_labels_keep_the_end_and_an_empty_start_payload_is_not_shown(tmp_path: Path) -> None:
    recipe = Recipe.from_dict(
        {
            "1": {"queue": "a", "parameters": {
                "image": "/dls/i04/data/2026/cm12345-1/lysozyme_0001.cbf",
                "command": ["/work/main/.venv/bin/python", "-m", "dials.find_spots", "x.expt"]}},
            "start": [[1, {}]],
        }
    )  # fmt: skip
    texts = _texts(recipe.render(tmp_path / "g.svg").read_text())
    image = next(t for t in texts if t.startswith("image = "))
    assert image.endswith("lysozyme_0001.cbf") and "\u2026" in image
    command = next(t for t in texts if t.startswith("command = "))
    assert command.endswith('"x.expt"]') and len(command) < 60
    assert "\u2192\u00a01" in texts  # the start: no ": {}"


def test_an_invalid_recipe_is_drawn_with_its_broken_links_and_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zocalo_nb.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"1": {"queue": "a", "output": {"success": 7}}, "start": [[1, {}]]}')
    assert main(["graph", str(bad), "-o", str(tmp_path / "bad.svg")]) == 1
    said = capsys.readouterr()
    assert "links to step 7, which is missing" in said.err and "invalid recipe" in said.out
    assert "step 7" in _texts((tmp_path / "bad.svg").read_text())
    assert "(missing)" in _texts((tmp_path / "bad.svg").read_text())


def test_the_state_legend_is_one_compact_node() -> None:
    recipe = Recipe.load(RECIPES[0])
    dot = recipe_to_dot(recipe, states={1: StepState.SUCCEEDED, 2: StepState.FAILED})
    assert dot.count("legend") == 1 and "cluster_legend" not in dot
    assert ">succeeded<" in dot and ">failed<" in dot
