import dspy
import pytest
from builders import GOOD_TEXTS, make_dialogue
from scripted import ScriptedEngine, scripted_lm
from typer.testing import CliRunner

from synth_empathy.cli import app
from synth_empathy.errors import UserError
from synth_empathy.lm import PlainAdapter
from synth_empathy.optimize import compile_program, save_program, trainset
from synth_empathy.programs import load_programs

HIGH = {"JudgeDialogue": {"sensibility": 9, "rationality": 9}}


def _dialogues():
    return [make_dialogue(GOOD_TEXTS, ident=f"d{i}") for i in range(3)]


def test_trainset_has_one_example_per_turn_of_the_role():
    sup = trainset("supporter", _dialogues(), limit=100)
    seek = trainset("seeker", _dialogues(), limit=100)
    assert len(sup) == 6 and len(seek) == 6
    assert sup[1].conversation.startswith("Seeker: I lost my job") and "Supporter:" in sup[1].conversation
    assert set(sup[0].inputs().keys()) == {"seeker", "conversation", "language"}
    assert trainset("critique", _dialogues(), limit=2)[0].reply == GOOD_TEXTS[1]


def test_trainset_without_the_role_is_refused():
    with pytest.raises(UserError, match="no seeker turns"):
        trainset("seeker", [], limit=5)


@pytest.mark.parametrize("program", ["supporter", "seeker", "critique"])
def test_bootstrap_compiles_saves_and_generate_loads_the_program(tmp_path, program):
    programs = load_programs(1)
    before = programs.versions()[program]
    judge = scripted_lm(ScriptedEngine(structured=HIGH))
    with dspy.context(lm=scripted_lm(ScriptedEngine()), adapter=PlainAdapter()):
        compiled = compile_program(program, "bootstrap", programs, trainset(program, _dialogues(), 3), judge, 1)
    path = save_program(compiled, tmp_path, program)
    assert path.name == f"{program}.json"
    loaded = load_programs(1, tmp_path)
    assert loaded.versions()[program] != before
    assert loaded.versions()["judge"] == load_programs(1).versions()["judge"]


def test_mipro_and_gepa_run_with_a_tiny_budget(tmp_path):
    judge = scripted_lm(ScriptedEngine(structured=HIGH))
    for optimizer in ("mipro", "gepa"):
        programs = load_programs(1)
        with dspy.context(lm=scripted_lm(ScriptedEngine()), adapter=PlainAdapter()):
            compiled = compile_program("supporter", optimizer, programs, trainset("supporter", _dialogues(), 2),
                                       judge, 1)
        assert save_program(compiled, tmp_path / optimizer, "supporter").exists()


def test_optimize_cli_refuses_unknown_program_and_optimizer(tmp_path):
    runner = CliRunner()
    for args, fragment in ((["--program", "judge"], "--program must be"), (["--program", "seeker", "--optimizer",
                                                                             "sgd"], "--optimizer must be")):
        result = runner.invoke(app, ["optimize", *args, "--trainset", "x.jsonl", "--out", str(tmp_path)])
        assert result.exit_code == 2 and fragment in result.output


def test_programs_folder_without_programs_is_bad_input(tmp_path):
    with pytest.raises(UserError, match="holds none of"):
        load_programs(1, tmp_path)


def test_seeker_examples_hold_exactly_what_role_play_sent_the_seeker():
    from conftest import CATALOG

    from synth_empathy.config import DialogueConfig
    from synth_empathy.graphs.catalog import load_catalog
    from synth_empathy.graphs.sampler import plan_seeds
    from synth_empathy.programs import Seeker
    from synth_empathy.run.roleplay import roleplay
    from synth_empathy.schema import Dialogue, Provenance

    sent: list[dict] = []

    class RecordingSeeker(Seeker):
        def forward(self, **inputs):
            sent.append(inputs)
            return super().forward(**inputs)

    catalog = load_catalog(CATALOG / "personas", CATALOG / "scenarios")
    seed = next(s for s in plan_seeds(catalog, 8, seed=0) if s.situation.hidden_details)
    engine = ScriptedEngine(structured={"SeekerFeeling": {"intensity": 3, "wants_to_end": True}})
    programs = load_programs(0)
    with dspy.context(lm=scripted_lm(engine), adapter=PlainAdapter()):
        conv = roleplay(seed, RecordingSeeker(), programs.supporter, DialogueConfig(min_turns=1, max_turns=3))
    assert conv.ending == "seeker_done" and len(sent) == 2  # the second message closes the talk
    dialogue = Dialogue(id=seed.id, seed=seed, turns=conv.turns, ending=conv.ending,
                        provenance=Provenance(generator_model="t", config_fingerprint="f", created="now",
                                              package_version="0"))
    examples = trainset("seeker", [dialogue], limit=10)
    assert [dict(ex.inputs()) for ex in examples] == sent
    assert "ready to end" in sent[-1]["feeling"] and " they " not in f" {sent[0]['situation']} "
