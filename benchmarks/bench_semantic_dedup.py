"""Semantic dedup (filters.semantic_dedup, the `semantic` extra) on planted paraphrases (a script, not a test).

    python benchmarks/bench_semantic_dedup.py [--n 2000] [--paraphrases 200] [--seed 0] [--no-write]

Builds N dialogues from independent random parts (a seeker's event, feeling and detail, a supporter's
reply and question, each one of many), then plants paraphrases: the same dialogue with every part said in
other words (its second wording) and the seeker's sentences reordered, so most word trigrams differ. MinHash
at its default 0.8 misses them; the question is how many the embedding cosine finds, and at what cost in
false pairs among the N unrelated-but-alike dialogues.

Recall: planted pairs reported (either way round). Precision: reported pairs that are planted. Docs/s: embedding
plus the exact all-pairs comparison. Writes the "Semantic dedup" section of BENCHMARKS.md; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_section import machine, stamp, write_section  # noqa: E402

from synth_empathy.config import DedupConfig  # noqa: E402
from synth_empathy.filters.dedup import find_duplicates  # noqa: E402
from synth_empathy.filters.semantic_dedup import embed, semantic_duplicates, similar_pairs  # noqa: E402
from synth_empathy.text import jaccard, shingles, words  # noqa: E402

THRESHOLDS = (0.75, 0.8, 0.85, 0.9, 0.95)
LEVELS = (1, 2, 3, 5)  # how many of a dialogue's 5 parts its paraphrase says in other words
# Each part in two wordings: the base dialogue says the first, its paraphrase the second.
EVENTS = [
    ("I lost my job at the {place} last week", "the {place} let me go a few days ago"),
    ("my {who} has been in hospital since {when}", "{who} got admitted and is still on a ward, since {when}"),
    ("I failed my driving test again on {when}", "on {when} the examiner told me I did not pass, one more time"),
    ("my partner moved out of our flat on {when}", "on {when} the person I lived with packed up and left"),
    ("I was not invited to my {who}'s wedding", "{who} is getting married and left me off the guest list"),
    ("the landlord wants us out of the flat by {when}", "we have been told to leave our home before {when}"),
    ("my best friend stopped answering my messages", "the friend I was closest to has gone completely silent"),
    ("I got a bad mark on the exam I studied for", "all that revision and the test result still came back low"),
    ("our dog died on {when} after fourteen years", "we had to say goodbye to our old dog on {when}"),
    ("my {who} forgot my birthday this year", "not a word from {who} on the day I turned another year older"),
    ("I have been fighting with my {who} every night", "evenings at home turn into rows with {who}"),
    ("the bank refused the loan for the {place}", "no money from the bank for the {place}, they said no"),
    ("my manager shouted at me in front of the team", "the boss yelled at me while everyone watched"),
    ("I moved to a new city and know nobody here", "since relocating I have not made a single friend in town"),
    ("my {who} told me they are seriously ill", "{who} shared a diagnosis that scares all of us"),
    ("I missed the deadline for my application", "the cut-off date passed before I sent the form in"),
    ("someone broke into my car outside the {place}", "a thief smashed my car window near the {place}"),
    ("I was passed over for the promotion at the {place}", "the {place} gave the senior role to somebody else"),
    ("my {who} is moving abroad on {when}", "{who} leaves the country for good on {when}"),
    ("I cannot sleep since the accident on {when}", "nights have been restless ever since the crash on {when}"),
]
FEELINGS = [
    ("I feel completely lost", "it is like I have no idea where I am going"),
    ("I am so angry I cannot think straight", "the rage makes it hard to focus on anything"),
    ("I keep crying when nobody is around", "tears come whenever I am alone"),
    ("I feel ashamed to tell anyone", "it is embarrassing, so I keep it to myself"),
    ("I am scared of what comes next", "the future frightens me"),
    ("I feel numb most of the day", "most hours I just feel nothing at all"),
    ("I am exhausted all the time", "I am worn out from morning to night"),
    ("I feel guilty even though it was not my fault", "I blame myself though I know I did nothing wrong"),
]
DETAILS = [
    ("my mum keeps asking me about it", "mother brings it up every time we talk"),
    ("I have not told my friends yet", "nobody in my circle knows so far"),
    ("I spent all my savings on it", "every penny I had put aside went into that"),
    ("it happened right before the holidays", "the timing, just ahead of the festive break, made it worse"),
    ("my kids can tell something is wrong", "the children have noticed I am not myself"),
    ("I have been skipping meals", "food has not really been happening for me lately"),
    ("I keep replaying the conversation", "that talk loops in my head over and over"),
    ("work is the only thing keeping me busy", "the office is my one distraction now"),
]
REPLIES = [
    ("That sounds really painful, and it makes sense you feel this way.", "No wonder it hurts so much; your "
     "reaction is completely understandable."),
    ("I am sorry you are carrying this on your own.", "It must be hard holding all of that by yourself."),
    ("You have been dealing with a lot at once.", "So much has landed on you at the same time."),
    ("It is okay to feel shaken after something like that.", "Being rattled after that is a normal response."),
]
QUESTIONS = [
    ("What has been the hardest part for you?", "Which bit weighs on you the most?"),
    ("Is there someone you feel able to talk to?", "Do you have anybody you could open up to?"),
    ("How have you been looking after yourself?", "What have you been doing to take care of you?"),
    ("What would help you most right now?", "What do you think you need at the moment?"),
]
LISTS = {"event": EVENTS, "feeling": FEELINGS, "detail": DETAILS, "reply": REPLIES, "question": QUESTIONS}
PLACES = ["warehouse", "bakery", "hospital", "school", "garage", "library", "factory", "hotel", "office", "shop"]
WHO = ["sister", "brother", "dad", "mum", "grandmother", "uncle", "cousin", "aunt", "son", "daughter"]
WHEN = ["Monday", "Friday", "the weekend", "last month", "Christmas", "my birthday", "the spring", "June"]


def dialogue(parts: dict[str, int], slots: dict[str, str], reworded: set[str], rng: random.Random) -> str:
    """The dialogue of `parts`; the parts named in `reworded` in their second wording, and then the seeker's
    sentences in another order."""
    said = {name: LISTS[name][index][int(name in reworded)] for name, index in parts.items()}
    seeker = [f"{t[0].upper()}{t[1:]}." for t in (said["event"].format(**slots), said["feeling"], said["detail"])]
    if reworded:
        rng.shuffle(seeker)
    return " ".join([*seeker, said["reply"], said["question"]])


def corpus(n: int, paraphrases: int, seed: int
           ) -> tuple[list[str], list[str], dict[frozenset[str], int], dict[str, dict[str, int]]]:
    """N dialogues and `paraphrases` planted ones, spread evenly over LEVELS: the ids, the texts,
    {planted pair: parts reworded} and each dialogue's parts (a paraphrase has its original's)."""
    rng = random.Random(seed)
    ids, texts = [], []
    plans = []
    for i in range(n):
        parts = {"event": rng.randrange(len(EVENTS)), "feeling": rng.randrange(len(FEELINGS)),
                 "detail": rng.randrange(len(DETAILS)), "reply": rng.randrange(len(REPLIES)),
                 "question": rng.randrange(len(QUESTIONS))}
        slots = {"place": rng.choice(PLACES), "who": rng.choice(WHO), "when": rng.choice(WHEN)}
        plans.append((parts, slots))
        ids.append(f"b{i:06d}")
        texts.append(dialogue(parts, slots, set(), rng))
    planted: dict[frozenset[str], int] = {}
    for j, i in enumerate(rng.sample(range(n), paraphrases)):
        parts, slots = plans[i]
        level = LEVELS[j % len(LEVELS)]
        ids.append(f"p{j:06d}")
        texts.append(dialogue(parts, slots, set(rng.sample(sorted(LISTS), level)), rng))
        planted[frozenset((ids[i], ids[-1]))] = level
    parts_of = {ids[i]: plans[i][0] for i in range(n)}
    parts_of.update({x: parts_of[next(iter(pair - {x}))] for pair in planted for x in pair if x.startswith("p")})
    return ids, texts, planted, parts_of


def shared_parts(pair: frozenset[str], parts_of: dict[str, dict[str, int]]) -> int:
    a, b = (parts_of[x] for x in pair)
    return sum(a[name] == b[name] for name in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--paraphrases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()

    ids, texts, planted, parts_of = corpus(args.n, args.paraphrases, args.seed)
    embed(texts[:2])  # load the model outside the timing
    started = time.perf_counter()
    vectors = embed(texts)
    embed_s = time.perf_counter() - started
    minhash = find_duplicates(ids, texts, DedupConfig())
    minhash_found = {frozenset((d, dup.kept_id)) for d, dup in minhash.items()} & set(planted)
    pos = {x: i for i, x in enumerate(ids)}
    jaccards = {level: [] for level in LEVELS}
    cosines = {level: [] for level in LEVELS}
    for pair, level in planted.items():
        a, b = (pos[x] for x in pair)
        jaccards[level].append(jaccard(set(shingles(words(texts[a]), 3)), set(shingles(words(texts[b]), 3))))
        cosines[level].append(float(vectors[a] @ vectors[b]))
    rows = []
    for threshold in THRESHOLDS:
        started = time.perf_counter()
        pairs = {frozenset((ids[i], ids[j])) for i, j, _ in similar_pairs(vectors, threshold)}
        pair_s = time.perf_counter() - started
        dropped = semantic_duplicates(ids, texts, threshold)
        found = [p for p in planted if p in pairs]
        by_level = [sum(planted[p] == level for p in found) / sum(v == level for v in planted.values())
                    for level in LEVELS]
        precision = len(found) / len(pairs) if pairs else float("nan")
        related = sum(p not in planted and shared_parts(p, parts_of) >= 3 for p in pairs)
        loose = (len(found) + related) / len(pairs) if pairs else float("nan")
        rows.append((threshold, len(pairs), len(found) / len(planted), *by_level, precision, loose, len(dropped),
                     len(texts) / (embed_s + pair_s)))
    levels = " | ".join(f"recall, {k} reworded" for k in LEVELS)
    table = [f"| cosine threshold | pairs reported | recall | {levels} | precision | precision, 3+ shared parts "
             f"counted true | dropped | docs/s |", "| ---: " * (7 + len(LEVELS)) + "|"]
    table += ["| " + " | ".join([f"{r[0]:.2f}", f"{r[1]:,}", *(f"{x:.3f}" for x in r[2:-2]), f"{r[-2]:,}",
                                 f"{r[-1]:,.0f}"]) + " |" for r in rows]
    planted_table = ["| parts reworded (of 5) | planted | word-trigram Jaccard, median | cosine, median |",
                     "| ---: | ---: | ---: | ---: |"]
    planted_table += [f"| {k} | {len(cosines[k])} | {statistics.median(jaccards[k]):.2f} | "
                      f"{statistics.median(cosines[k]):.3f} |" for k in LEVELS]
    body = (f"`python benchmarks/bench_semantic_dedup.py --n {args.n} --paraphrases {args.paraphrases} --seed "
            f"{args.seed}`, {stamp()}; {machine()}.\n\n"
            f"{len(texts):,} dialogues (~{sum(len(t.split()) for t in texts) // len(texts)} words): {args.n:,} built "
            f"from five independent random parts (a seeker's event, feeling and detail, a supporter's reply and "
            f"question) and {len(planted):,} planted paraphrases that say 1, 2, 3 or all 5 parts in other words and "
            f"reorder the seeker's sentences. MinHash at its default 0.8 finds {len(minhash_found)} of them. "
            f"WordLlama l2_supercat 256-d (the weights in its wheel) embeds them in {embed_s:.2f} s.\n\n"
            + "\n".join(planted_table) + "\n\nExact all-pairs cosine at each threshold:\n\n" + "\n".join(table)
            + "\n\nPrecision counts every pair at or above the threshold that is not planted as false; the second "
            "precision counts as true also the pairs of dialogues that share 3 or more of their 5 parts word for "
            "word (partial copies the generator made by chance); `dropped` is what "
            "`semantic_duplicates` removes (greedy, best first, each drop verified against a kept dialogue). Docs/s is "
            "embedding plus all pairs, which grows with n^2.\n")
    print(body)
    if not args.no_write:
        write_section("Semantic dedup", body)
        print("wrote the Semantic dedup section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
