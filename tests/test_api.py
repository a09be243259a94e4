import re
from pathlib import Path

import pytest
from conftest import CATALOG
from scripted import ScriptedEngine, scripted_lm, varied_prose

from synth_empathy import Generator, RunConfig
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.programs import Seeker
from synth_empathy.schema import Dialogue

README = Path(__file__).parent.parent / "README.md"
GOOD = {"JudgeDialogue": {"sensibility": 8, "rationality": 8}}


def _config(n: int = 3) -> RunConfig:
    return RunConfig(n=n, personas_dir=CATALOG / "personas", scenarios_dir=CATALOG / "scenarios",
                     dialogue={"min_turns": 1, "max_turns": 2})


def _generator(n: int = 3, **kw) -> Generator:
    return Generator(_config(n), generator_lm=scripted_lm(ScriptedEngine(prose=varied_prose())),
                     judge_lm=scripted_lm(ScriptedEngine(structured=GOOD)), **kw)


def test_stream_yields_validated_kept_dialogues_without_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dialogues = list(_generator(3).stream())
    assert len(dialogues) == 3 and all(isinstance(d, Dialogue) and d.scores.sensibility == 8 for d in dialogues)
    assert {d.id for d in dialogues} == {s.id for s in _generator(3).plan()}
    assert list(tmp_path.iterdir()) == []


def test_stream_can_stop_early():
    stream = _generator(50).stream()
    first = next(stream)
    stream.close()
    assert first.turns


def test_custom_filter_drops_with_its_reason_code(tmp_path):
    manifest = _generator(2, filters=[lambda d: "too_polite"]).run(tmp_path / "out")
    assert manifest.counts["kept"] == 0 and manifest.rejection_reasons == {"too_polite": 2}
    assert '"stage":"custom"' in (tmp_path / "out" / "rejected.jsonl").read_text()


def test_custom_seeker_module_and_catalog_are_used():
    class LoudSeeker(Seeker):
        def forward(self, **kwargs):
            out = super().forward(**kwargs)
            out.message = out.message.upper()
            return out

    catalog = load_catalog(CATALOG / "personas", CATALOG / "scenarios")
    catalog.situations = catalog.situations[:1]
    dialogues = list(_generator(2, seeker=LoudSeeker(), catalog=catalog).stream())
    assert all(d.seed.situation.id == "s01" for d in dialogues)
    assert all(t.text.isupper() for d in dialogues for t in d.turns if t.role == "seeker")


def test_hf_iterable_dataset_wraps_the_stream():
    rows = list(_generator(2).to_hf_iterable_dataset())
    assert len(rows) == 2 and rows[0]["messages"][0]["role"] == "user" and rows[0]["sensibility"] == 8


@pytest.mark.model
def test_readme_api_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own examples
    assert (tmp_path / "outputs" / "api-demo" / "manifest.json").exists()
