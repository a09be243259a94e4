import json
import random

import dspy
import networkx as nx
from conftest import CATALOG
from scripted import ScriptedEngine, scripted_lm

from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.expand import Expansion, expand_personas, expand_situations, write_expansion
from synth_empathy.graphs.graph import build_graph, export_graph
from synth_empathy.lm import PlainAdapter


def _catalog():
    return load_catalog(CATALOG / "personas", CATALOG / "scenarios")


def test_graph_exports_as_graphml_and_node_link_json(tmp_path):
    g = build_graph(_catalog())
    export_graph(g, tmp_path / "g.graphml")
    export_graph(g, tmp_path / "g.json")
    assert nx.read_graphml(tmp_path / "g.graphml").number_of_nodes() == g.number_of_nodes()
    data = json.loads((tmp_path / "g.json").read_text())
    assert len(data["edges"]) == g.number_of_edges()


def test_expand_validates_drops_near_duplicates_and_writes_loadable_yaml(tmp_path):
    bios = iter(["Mira repairs fishing nets in Valparaíso and talks fast when nervous.",
                 "Mira repairs fishing nets in Valparaíso and talks fast when nervous!",  # a near-duplicate
                 "Joseph drives a night bus in Accra and keeps a notebook of overheard jokes."])
    engine = ScriptedEngine(structured={"NewPersona": {"age_band": "35-44", "life_stage": "mid_career"},
                                        "NewSituation": {"intensity_low": 7, "intensity_high": 3}})
    original = engine.complete

    def complete(request):  # give each persona its own bio
        response = original(request)
        if (request.config.response_format or {}).get("name") == "NewPersona":
            data = json.loads(response.message.text)
            data["bio"] = next(bios)
            from dspy.lm15 import Message
            return type(response)(id=None, model="s", message=Message.assistant(json.dumps(data)),
                                  finish_reason="stop", usage=response.usage)
        return response

    engine.complete = complete
    result = Expansion()
    with dspy.context(lm=scripted_lm(engine), adapter=PlainAdapter()):
        expand_personas(_catalog(), 3, random.Random(0), result)
        expand_situations(_catalog(), 2, random.Random(0), result)
    assert len(result.personas) == 2 and result.dropped["near_duplicate"] >= 1
    assert result.situations and result.situations[0].intensity == (3, 7)
    write_expansion(result, tmp_path)
    scenarios = tmp_path / "scen"
    scenarios.mkdir()
    for f in (CATALOG / "scenarios").iterdir():
        (scenarios / f.name).write_text(f.read_text())
    (scenarios / "expanded.yaml").write_text((tmp_path / "scenarios" / "expanded.yaml").read_text())
    personas = tmp_path / "pers"
    personas.mkdir()
    (personas / "personas.yaml").write_text((CATALOG / "personas" / "personas.yaml").read_text())
    (personas / "expanded.yaml").write_text((tmp_path / "personas" / "expanded.yaml").read_text())
    catalog = load_catalog(personas, scenarios)
    assert len(catalog.personas) == 5
