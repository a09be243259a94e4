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


GROWING = [(n, p) for n, p in PREDICTORS if "conversation" in p.signature.input_fields]
PER_DIALOGUE = {"character", "situation", "seeker"}  # the same in every call of one dialogue


@pytest.mark.parametrize(("name", "predictor"), GROWING, ids=[n for n, _ in GROWING])
def test_the_next_turns_prompt_starts_with_this_turns_conversation(name, predictor):
    # Within a dialogue the conversation only grows. Only per-dialogue inputs come before it, and a one-line
    # conversation is laid out like a longer one, so the next call's prompt extends this call's up to the end
    # of the conversation (a local engine then evaluates only the new lines and what follows).
    adapter, signature = PlainAdapter(), predictor.signature
    fields = list(signature.input_fields)
    assert set(fields[:fields.index("conversation")]) <= PER_DIALOGUE
    first = "Seeker: I lost my job today."
    later = first + "\nSupporter: That sounds like a hard blow.\nSeeker: It is. I keep replaying the meeting."

    def user_message(conversation: str, turn: str) -> str:
        inputs = {f: conversation if f == "conversation" else f"{f}-of-this-dialogue" if f in PER_DIALOGUE
                  else f"{turn}-{f}" for f in fields}
        return adapter.format(signature, predictor.demos, inputs)[-1]["content"]

    now, then = user_message(first, "now"), user_message(later, "then")
    assert then.startswith(now[:now.index(first) + len(first)])
