"""Every predictor's prompt is stable-part-first: what changes per call comes after what does not, so a
provider's prompt cache can reuse the prefix (benchmarks/bench_prompt_cache.py measures the share)."""

import pytest

from synth_empathy.lm import PlainAdapter
from synth_empathy.programs import PROGRAM_NAMES, load_programs

PROGRAMS = load_programs(critique_rounds=1)
PREDICTORS = [(f"{name}.{pname}", p) for name in PROGRAM_NAMES for pname, p in PROGRAMS.module(name).named_predictors()]


@pytest.mark.parametrize(("name", "predictor"), PREDICTORS, ids=[n for n, _ in PREDICTORS])
def test_instructions_and_demos_come_before_the_per_call_inputs(name, predictor):
    adapter, signature = PlainAdapter(), predictor.signature
    one = adapter.format(signature, predictor.demos, {f: f"first-{f}" for f in signature.input_fields})
    two = adapter.format(signature, predictor.demos, {f: f"second-{f}" for f in signature.input_fields})
    assert one[:-1] == two[:-1]  # system message and every demo pair: the same whatever the inputs
    assert one[0]["role"] == "system" and "first-" not in one[0]["content"]
    assert len(one) == 2 * len(predictor.demos) + 2
    assert all("first-" not in m["content"] for m in one[:-1]) and one[-1]["role"] == "user"
