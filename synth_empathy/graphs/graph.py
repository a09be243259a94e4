"""The persona/scenario graph: typed nodes and typed edges in one networkx DiGraph."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import Catalog
from synth_empathy.schema import Persona, Situation

# Node kinds, and the plain keys `graph stats --json` reports them under.
NODE_KINDS = {
    "persona": "personas",
    "trait": "traits",
    "emotion": "emotions",
    "problem_type": "problem_types",
    "situation": "situations",
    "domain": "domains",
}


def node(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def plausible(persona: Persona, situation: Situation) -> bool:
    """A persona fits a situation unless the situation names age bands or life stages that exclude it."""
    if situation.age_bands and persona.age_band not in situation.age_bands:
        return False
    return not situation.life_stages or persona.life_stage in situation.life_stages


def build_graph(catalog: Catalog) -> nx.DiGraph:
    g = nx.DiGraph()
    for t in catalog.traits:
        g.add_node(node("trait", t.id), kind="trait", description=t.description)
    for e in catalog.emotions:
        g.add_node(node("emotion", e.id), kind="emotion", valence=e.valence)
    for e in catalog.emotions:
        for other in e.related:
            g.add_edge(node("emotion", e.id), node("emotion", other), kind="related_emotion")
    for p in catalog.problem_types:
        g.add_node(node("problem_type", p.id), kind="problem_type", label=p.label)
    for p in catalog.personas:
        g.add_node(node("persona", p.id), kind="persona", name=p.name, age_band=p.age_band,
                   life_stage=p.life_stage, communication_style=p.communication_style,
                   support_preference=p.support_preference)
        for t in p.traits:
            g.add_edge(node("persona", p.id), node("trait", t), kind="has_trait")
    for s in catalog.situations:
        sid = node("situation", s.id)
        g.add_node(sid, kind="situation", text=s.text, intensity_low=s.intensity[0], intensity_high=s.intensity[1])
        g.add_node(node("domain", s.domain), kind="domain")
        g.add_edge(sid, node("domain", s.domain), kind="in_domain")
        g.add_edge(sid, node("problem_type", s.problem_type), kind="belongs_to")
        for e in s.emotions:
            g.add_edge(sid, node("emotion", e), kind="evokes")
        for p in catalog.personas:
            if plausible(p, s):
                g.add_edge(node("persona", p.id), sid, kind="plausible_for")
    return g


def export_graph(g: nx.DiGraph, path: Path) -> str:
    """GraphML for .graphml, node-link JSON for .json; returns the format written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".graphml":
        nx.write_graphml(g, path)
        return "graphml"
    if path.suffix == ".json":
        path.write_text(json.dumps(nx.node_link_data(g, edges="edges"), indent=1), encoding="utf-8")
        return "node-link json"
    raise UserError(f"--out {path}: use a .graphml or .json file name")


def counts_by_kind(g: nx.DiGraph) -> tuple[dict[str, int], dict[str, int]]:
    nodes: dict[str, int] = {plain: 0 for plain in NODE_KINDS.values()}
    for _, data in g.nodes(data=True):
        nodes[NODE_KINDS[data["kind"]]] += 1
    edges: dict[str, int] = {}
    for _, _, data in g.edges(data=True):
        edges[data["kind"]] = edges.get(data["kind"], 0) + 1
    return nodes, edges
