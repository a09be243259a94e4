import shutil
from pathlib import Path

import pytest
from conftest import CATALOG

from synth_empathy.config import load_config
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.graphs.graph import build_graph, counts_by_kind, plausible
from synth_empathy.graphs.sampler import coverage, plan_seeds, plausible_cells
from synth_empathy.schema import EMOTIONS

TEST_CATALOG = CATALOG


@pytest.fixture(scope="module")
def shipped():
    cfg = load_config()
    return load_catalog(cfg.personas_dir, cfg.scenarios_dir)


def _copy_catalog(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(TEST_CATALOG, tmp_path / "c")
    return tmp_path / "c" / "personas", tmp_path / "c" / "scenarios"


def test_shipped_catalogs_meet_the_size_targets(shipped):
    assert len(shipped.personas) >= 80
    assert len(shipped.situations) >= 200
    assert {e.id for e in shipped.emotions} == set(EMOTIONS)


def test_graph_has_typed_nodes_and_edges(shipped):
    nodes, edges = counts_by_kind(build_graph(shipped))
    assert nodes["personas"] == len(shipped.personas) and nodes["situations"] == len(shipped.situations)
    assert {"has_trait", "evokes", "belongs_to", "in_domain", "related_emotion", "plausible_for"} <= set(edges)


def test_thousand_seed_plan_covers_every_cell_and_spreads_personas(shipped):
    seeds = plan_seeds(shipped, 1000, seed=0)
    cov = coverage(seeds, shipped)
    assert cov["cell_coverage"] == 1.0
    assert cov["persona_entropy"] >= 0.95


def test_every_cell_is_visited_before_any_repeats(shipped):
    n_cells = len(plausible_cells(shipped))
    seeds = plan_seeds(shipped, n_cells, seed=3)
    assert len({(s.emotion, s.problem_type) for s in seeds}) == n_cells


def test_plan_is_deterministic_and_seed_dependent(shipped):
    a = [s.id for s in plan_seeds(shipped, 50, seed=1)]
    assert a == [s.id for s in plan_seeds(shipped, 50, seed=1)]
    assert a != [s.id for s in plan_seeds(shipped, 50, seed=2)]


def test_implausible_pairs_are_never_sampled(shipped):
    assert all(plausible(s.persona, s.situation) for s in plan_seeds(shipped, 500, seed=5))


def test_retiree_never_gets_a_school_situation():
    personas, scenarios = TEST_CATALOG / "personas", TEST_CATALOG / "scenarios"
    catalog = load_catalog(personas, scenarios)
    for seed in plan_seeds(catalog, 40, seed=0):
        if seed.situation.id == "s02":
            assert seed.persona.life_stage in ("university_student", "school_student")


@pytest.mark.parametrize(
    ("file", "old", "new", "fragment"),
    [
        ("scenarios/situations.yaml", "emotions: [lonely]", "emotions: [grumpy]", "unknown emotion 'grumpy'"),
        ("personas/personas.yaml", "traits: [recently_moved]", "traits: [ghost]", "unknown trait 'ghost'"),
        ("scenarios/situations.yaml", "id: s02", "id: s01", "duplicate id"),
        ("scenarios/situations.yaml", "intensity: [4, 7]", "intensity: [7, 4]", "intensity must be"),
        ("personas/personas.yaml", "life_stage: retired", "life_stage: school_student", "does not fit age band"),
        ("scenarios/situations.yaml", "problem_type: loneliness", "problem_type: boredom", "unknown problem type"),
        ("scenarios/situations.yaml", "situations:", "situations: [", "not valid YAML"),
    ],
)
def test_bad_catalog_is_refused_with_file_entry_and_reason(tmp_path, file, old, new, fragment):
    personas, scenarios = _copy_catalog(tmp_path)
    path = tmp_path / "c" / file
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(UserError) as err:
        load_catalog(personas, scenarios)
    assert fragment in str(err.value)
    assert path.name in str(err.value)


def test_sampler_weights_repeat_or_leave_out_cells(shipped):
    from synth_empathy.graphs.sampler import plan_for

    cfg = load_config(None, {"n": 400, "sampler": {"emotion_weights": {"sad": 3, "joyful": 0}}})
    seeds = plan_for(shipped, cfg)
    emotions = [s.emotion for s in seeds]
    assert "joyful" not in emotions
    unweighted = [s.emotion for s in plan_seeds(shipped, 400, seed=0)]
    assert emotions.count("sad") > 2 * unweighted.count("sad")


def test_weights_that_leave_nothing_are_bad_input(shipped):
    from synth_empathy.graphs.sampler import plan_for

    cfg = load_config(None, {"sampler": {"problem_type_weights": {p.id: 0 for p in shipped.problem_types}}})
    with pytest.raises(UserError, match="no \\(emotion x problem type\\) cell"):
        plan_for(shipped, cfg)
    with pytest.raises(UserError, match="negative"):
        load_config(None, {"sampler": {"emotion_weights": {"sad": -1}}})
