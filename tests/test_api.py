import json
import re
import threading
from pathlib import Path

import pytest
from conftest import CATALOG
from scripted import ScriptedEngine, scripted_lm, varied_prose

from synth_empathy import Generator, RunConfig
from synth_empathy.errors import UserError
from synth_empathy.graphs.catalog import load_catalog
from synth_empathy.programs import Seeker
from synth_empathy.publish.exports import export_corpus
from synth_empathy.publish.rows import DEFAULT_SYSTEM_PROMPT
from synth_empathy.schema import Dialogue

README = Path(__file__).parent.parent / "README.md"
GOOD = {"JudgeDialogue": {"sensibility": 8, "rationality": 8}}


def _config(n: int = 3, concurrency: int = 1) -> RunConfig:
    return RunConfig(n=n, personas_dir=CATALOG / "personas", scenarios_dir=CATALOG / "scenarios",
                     dialogue={"min_turns": 1, "max_turns": 2}, concurrency=concurrency)


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


def _engine(seed: int = 0) -> ScriptedEngine:
    return ScriptedEngine(prose=varied_prose(seed))


def _counted(n: int, engine: ScriptedEngine, config: RunConfig | None = None, **kw) -> Generator:
    return Generator(config or _config(n), generator_lm=scripted_lm(engine), judge_lm=scripted_lm(ScriptedEngine(
        structured=GOOD)), **kw)


def test_stream_counts_what_the_filters_dropped():
    stream = _generator(4, filters=[lambda d: "too_polite" if d.seed.index % 2 else None]).stream()
    kept = list(stream)
    assert len(kept) == 2 and [r.reasons for r in stream.rejections] == [["too_polite"], ["too_polite"]]
    assert stream.counts() == {"planned": 4, "kept": 2, "rejected": 2, "pending": 0, "reasons": {"too_polite": 2}}


def test_api_rows_are_the_export_rows_with_the_system_message(tmp_path):
    gen = _generator(3)
    rows = list(gen.to_hf_iterable_dataset(tmp_path / "out"))
    assert len(rows) == 3
    assert all(r["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT} for r in rows)
    assert all(r["messages"][-1]["role"] == "assistant" and r["sensibility"] == 8 for r in rows)
    # The folder holds the corpus: its exports are the rows the API gave.
    export_corpus(tmp_path / "out", "prompt-completion", tmp_path / "pc.jsonl")
    exported = [json.loads(line) for line in (tmp_path / "pc.jsonl").read_text().splitlines()]
    api_rows = list(gen.materialize(tmp_path / "out").to_hf_iterable_dataset(rows="prompt-completion"))
    assert sorted(exported, key=lambda r: r["id"]) == sorted(api_rows, key=lambda r: r["id"])
    assert {r["dialogue_id"] for r in api_rows} == {r["id"] for r in rows}


def test_every_pass_and_the_trainers_peek_read_the_same_rows_without_generating_again():
    engine = _engine()
    data = _counted(3, engine).to_hf_iterable_dataset()
    first = next(iter(data))  # what TRL's SFTTrainer does before training
    epoch1 = list(data)
    calls = len(engine.requests)
    epoch2 = list(data)
    assert epoch1 == epoch2 and len(epoch1) == 3 and epoch1[0] == first
    assert len(engine.requests) == calls  # the second pass made no LM call


def test_a_folder_feed_writes_the_corpus_and_a_new_session_rereads_it(tmp_path):
    first = _counted(3, _engine()).materialize(tmp_path / "out").wait()
    assert first.counts()["kept"] == 3 and first.manifest.counts["kept"] == 3
    assert (tmp_path / "out" / "dialogues.jsonl").exists() and (tmp_path / "out" / "README.md").exists()
    engine = _engine()
    again = _counted(3, engine).materialize(tmp_path / "out")
    assert [d.id for d in again] == [d.id for d in first] and engine.requests == []


def test_a_feed_counts_rejections_and_keeps_them_on_disk(tmp_path):
    feed = _counted(4, _engine(), filters=[lambda d: "too_polite" if d.seed.index % 2 else None]).materialize(
        tmp_path / "out")
    assert len(list(feed)) == 2
    assert feed.counts() == {"planned": 4, "kept": 2, "rejected": 2, "pending": 0, "reasons": {"too_polite": 2}}
    assert (tmp_path / "out" / "rejected.jsonl").read_text().count("too_polite") == 2


def test_a_closed_folder_feed_resumes_where_it_stopped(tmp_path):
    release, lock, passed = threading.Event(), threading.Lock(), []

    def hold_all_but_the_first(d):
        with lock:
            passed.append(d.id)
            first = len(passed) == 1
        if not first:
            release.wait()

    feed = _counted(6, _engine(), filters=[hold_all_but_the_first]).materialize(tmp_path / "out")
    next(iter(feed))
    feed.close()
    release.set()
    feed.wait()
    assert feed.counts()["kept"] == 2 and feed.counts()["pending"] == 4
    resumed = _counted(6, _engine(seed=1)).materialize(tmp_path / "out").wait()
    assert resumed.counts()["kept"] == 6 and [d.id for d in resumed][:2] == [d.id for d in feed]


def test_a_folder_of_another_config_is_bad_input(tmp_path):
    _counted(2, _engine()).run(tmp_path / "out")
    other = _config(2).model_copy(update={"seed": 7})
    with pytest.raises(UserError, match="different config"):
        _counted(2, _engine(), config=other).materialize(tmp_path / "out")


def test_unknown_rows_is_bad_input():
    with pytest.raises(UserError, match="rows must be one of hf, prompt-completion"):
        _generator(1).to_hf_iterable_dataset(rows="sharegpt")


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
