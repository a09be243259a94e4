"""Import existing dialogue datasets as scenario nodes (Situations) and reference Dialogues.

Formats (auto-detected from extension and content; `fmt=` overrides):

- ``ed_csv``     EmpatheticDialogues CSV (conv_id, utterance_idx, context, prompt, speaker_idx,
                 utterance, selfeval, tags). Not proper CSV: commas inside text are written as
                 ``_comma_`` and quotes are not escaped, so lines are split on ',' like the ED repo's
                 own loader does, never with the csv module. Lines with stray commas are repaired
                 (see `_split_ed_line`) and counted.
- ``esconv``     ESConv JSON: a list of records with emotion_type, problem_type, situation,
                 survey_score and dialog [{speaker, annotation: {strategy?, feedback?}, content}].
- ``chat``       JSON list or JSONL of records with ``conversations`` (ShareGPT {from, value}),
                 ``messages`` ({role, content}) or ``turns`` ({role, text}, without our ``seed``);
                 optional ``id``, ``emotion``, ``situation``, ``problem_type`` on the record and
                 ``strategy`` on a message.
- ``situations`` JSONL (or JSON list) of {situation, emotion, problem_type?}: scenario nodes only.
- ``synth``      our own dialogue JSONL: records that validate as `Dialogue`, passed through unchanged
                 (they add no scenario nodes: their situations already live in a catalog).

Mapping decisions (documented here because they are policy, not fact):

- Roles: ED's first speaker (the one who had the experience) is the seeker; whoever else speaks is the
  supporter. ESConv seeker/supporter (also usr/sys); chat user/human = seeker, assistant/gpt = supporter,
  system messages are skipped (counted in ``stats``). Consecutive utterances by the same role are merged
  into one turn, joined by a space; the merged turn keeps the first strategy present.
- Strategies: ESConv's eight names map onto `STRATEGIES`; a supporter turn without one gets "other";
  an unrecognised strategy name also becomes "other" and counts as a repair.
- Emotions: the 32 ED labels pass through; ESConv's emotion types map onto the nearest ED label
  (`ESCONV_EMOTIONS`). An unknown label makes the record a bad row. A chat record without an emotion is
  still imported as a dialogue with emotion "unspecified", but gives no scenario node.
- Problem types: ESConv names map onto our ids where one fits (`PROBLEM_TYPE_ALIASES`); any other label
  becomes a slug of itself ("Alcohol Abuse" -> "alcohol_abuse"); no label (all of ED) is "unspecified".
  `write_import` writes the ids missing from the scenarios catalog as ``problem_types:`` entries in the
  same imported.yaml, so the one file loads next to the shipped catalog (nothing is dropped).
- Domain: from the problem type (`DOMAIN_BY_PROBLEM_TYPE`, the majority domain of the shipped
  situations of that type), else by keywords in the id, else "personal_growth".
- Persona: one honest placeholder per format (name/occupation/region "unknown"). The schema requires an
  age band and life stage; both datasets were written by adult crowd workers, so the placeholders are
  "25-34" / "early_career". Style "direct", support preference "mixed".
- Intensity: ESConv's seeker initial_emotion_intensity (1-5) x 2 when present, else 6 (the middle of the
  schema's default situation range 4-8).
- Ids: dialogues "ed-<conv_id>", "esconv-<index>", "chat-<index>" or "chat-<record id>", with index the
  0-based position in the file (JSONL: among non-blank lines); situations "imp-" + a hash of
  (text, emotion, problem type), so identical scenario nodes collapse into one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synth_empathy.config import shipped_catalog_dir
from synth_empathy.corpus.manifest import now, package_version
from synth_empathy.corpus.store import as_dialogue
from synth_empathy.errors import UserError
from synth_empathy.filters.pii import PiiMode, pii_pass, pii_pass_texts, pii_scope
from synth_empathy.languages import DEFAULT_LANGUAGE, get_language
from synth_empathy.schema import EMOTIONS, Dialogue, Persona, Provenance, Seed, Situation, Source, Turn
from synth_empathy.userfiles import MAX_LINE_BYTES, reading

FORMATS = ("ed_csv", "esconv", "chat", "situations", "synth")
DATASET_NAMES = {
    "ed_csv": "EmpatheticDialogues",
    "esconv": "ESConv",
    "chat": "a chat dataset",
    "situations": "a situations file",
    "synth": "synth-empathy",
}
_EXPECTED = (
    "expected an EmpatheticDialogues CSV, an ESConv JSON list, chat JSON/JSONL with 'conversations', "
    "'messages' or 'turns', a JSONL of 'situation' + 'emotion' records, or synth-empathy dialogue JSONL"
)

ED_COLUMNS = ("conv_id", "utterance_idx", "context", "prompt", "speaker_idx", "utterance", "selfeval", "tags")
_ED_HEADER = ",".join(ED_COLUMNS[:6])
_SELFEVAL = re.compile(r"\d+(\|\d+)+(_\d+(\|\d+)+)*")  # "5|5|5_2|2|5"

ESCONV_STRATEGIES = {
    "question": "question",
    "restatement or paraphrasing": "restatement",
    "reflection of feelings": "reflection_of_feelings",
    "self-disclosure": "self_disclosure",
    "affirmation and reassurance": "affirmation",
    "providing suggestions": "suggestion",
    "information": "information",
    "others": "other",
}
ESCONV_EMOTIONS = {
    "anxiety": "anxious",
    "depression": "sad",
    "sadness": "sad",
    "anger": "angry",
    "fear": "afraid",
    "shame": "ashamed",
    "disgust": "disgusted",
    "nervousness": "apprehensive",
    "pain": "devastated",
    "jealousy": "jealous",
    "guilt": "guilty",
}
# Source labels (lower case, single spaces) -> our problem type ids. Our own ids are slugs of
# themselves and need no entry.
PROBLEM_TYPE_ALIASES = {
    "job crisis": "job_crisis",
    "ongoing depression": "ongoing_depression",
    "breakup with partner": "breakup",
    "problems with friends": "problems_with_friends",
    "academic pressure": "academic_pressure",
    "issues with parents": "conflict_with_parents",
    "issues with children": "parenting_stress",
}
UNSPECIFIED = "unspecified"
DOMAIN_BY_PROBLEM_TYPE = {
    "job_crisis": "work",
    "workplace_conflict": "work",
    "academic_pressure": "school",
    "school_bullying": "school",
    "breakup": "romance",
    "new_relationship": "romance",
    "problems_with_friends": "friendship",
    "loneliness": "friendship",
    "conflict_with_parents": "family",
    "parenting_stress": "family",
    "caregiving_strain": "family",
    "reunion": "family",
    "bereavement": "loss",
    "health_worries": "health",
    "ongoing_depression": "health",
    "alcohol_abuse": "health",
    "sleep_problems": "health",
    "financial_strain": "money",
    "relocation": "home",
    "safety_and_crime": "community",
    "achievement": "personal_growth",
    "good_news": "personal_growth",
    "identity_and_belonging": "personal_growth",
    "procrastination": "personal_growth",
    "appearance_anxiety": "personal_growth",
}
_DOMAIN_KEYWORDS = (
    ("work", ("work", "job", "career", "boss", "colleague", "employ")),
    ("school", ("school", "academic", "exam", "study", "college", "university", "student")),
    ("family", ("parent", "child", "family", "sibling", "mother", "father", "marriage")),
    ("friendship", ("friend",)),
    ("romance", ("partner", "breakup", "divorce", "dating", "romanc", "relationship")),
    ("health", ("health", "sleep", "alcohol", "drug", "addict", "ill", "pain", "depress")),
    ("money", ("money", "debt", "financ", "rent", "bill")),
    ("loss", ("death", "grief", "loss", "bereave")),
    ("home", ("home", "house", "housing", "moving")),
    ("community", ("community", "neighbo", "crime", "church")),
)
FALLBACK_DOMAIN = "personal_growth"
DEFAULT_INTENSITY = 6
PLACEHOLDER_AGE_BAND = "25-34"
PLACEHOLDER_LIFE_STAGE = "early_career"

_SEEKER_ROLES = {"seeker", "usr", "user", "human"}
_SUPPORTER_ROLES = {"supporter", "sys", "assistant", "gpt", "chatgpt", "bot", "model"}
_SYSTEM_ROLES = {"system"}
_ROLE_OF = {name: role for names, role in ((_SEEKER_ROLES, "seeker"), (_SUPPORTER_ROLES, "supporter"),
                                           (_SYSTEM_ROLES, "system")) for name in names}


@dataclass
class BadRow:
    location: str  # "line 7", "record 3", "conv_id hit:1_conv:2 (line 9)"
    reason: str


@dataclass
class ImportResult:
    fmt: str
    source: str = ""
    layout: str = "jsonl"  # see _Parsed.layout
    dialogues: list[Dialogue] = field(default_factory=list)
    situations: list[Situation] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    repairs: int = 0
    repair_kinds: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    # every problem type id used by a situation -> the label it was imported from
    problem_type_labels: dict[str, str] = field(default_factory=dict)
    license: str = "unknown"  # as its user declared it (graph import --license): the card states it
    language: str = DEFAULT_LANGUAGE  # what its dialogues are written in (graph import --language)
    # dialogue id -> (position of its record in the file, the id the record carries itself or None);
    # ED: (conversation position, conv_id). What writes the input's own records back goes by these.
    origins: dict[str, tuple[int, str | int | None]] = field(default_factory=dict)

    def repair(self, kind: str) -> None:
        self.repairs += 1
        self.repair_kinds[kind] += 1

    def bad(self, location: str, reason: str) -> None:
        self.bad_rows.append(BadRow(location, reason))


# ---------------------------------------------------------------- mapping helpers


def _norm(label: Any) -> str:
    return " ".join(str(label).replace("_", " ").lower().split())


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def map_emotion(label: Any) -> str | None:
    """An ED label or an ESConv emotion type -> one of the 32 ED labels; None if unknown."""
    key = _norm(label)
    if key in EMOTIONS:
        return key
    return ESCONV_EMOTIONS.get(key)


def map_problem_type(label: Any) -> str:
    """ESConv names onto our ids where one fits, else a slug of the label; no label is 'unspecified'."""
    if label is None or not str(label).strip():
        return UNSPECIFIED
    key = _norm(label)
    return PROBLEM_TYPE_ALIASES.get(key) or slug(key) or UNSPECIFIED


def map_strategy(name: Any) -> tuple[str | None, bool]:
    """ESConv strategy name -> (our id, recognised). No name gives (None, True)."""
    if name is None or not str(name).strip():
        return None, True
    key = _norm(name)
    if key in ESCONV_STRATEGIES:
        return ESCONV_STRATEGIES[key], True
    if key.replace(" ", "_") in ESCONV_STRATEGIES.values():
        return key.replace(" ", "_"), True
    return "other", False


def domain_for(problem_type: str) -> str:
    if problem_type in DOMAIN_BY_PROBLEM_TYPE:
        return DOMAIN_BY_PROBLEM_TYPE[problem_type]
    for domain, words in _DOMAIN_KEYWORDS:
        if any(w in problem_type for w in words):
            return domain
    return FALLBACK_DOMAIN


def _placeholder_persona(fmt: str, source: str) -> Persona:
    name = DATASET_NAMES.get(fmt, fmt)
    where = f" ({Path(source).name})" if source else ""
    return Persona(
        id=f"imported-{fmt}", name="unknown", age_band=PLACEHOLDER_AGE_BAND, life_stage=PLACEHOLDER_LIFE_STAGE,
        occupation="unknown", region="unknown", communication_style="direct", support_preference="mixed",
        emotional_baseline="unknown", traits=[], bio=f"Imported from {name}{where}",
    )


def _situation(text: str, emotions: list[str], problem_type: str) -> Situation:
    digest = hashlib.sha256(f"{text}|{','.join(emotions)}|{problem_type}".encode()).hexdigest()[:12]
    return Situation(id=f"imp-{digest}", text=text, emotions=emotions, problem_type=problem_type,
                     domain=domain_for(problem_type))


# ---------------------------------------------------------------- building records


def emotion_problem(label: Any, required: bool) -> str | None:
    """Why a record's emotion label makes it a bad row, if it does."""
    if label is None or not str(label).strip():
        return "no emotion label" if required else None
    return None if map_emotion(label) is not None else f"unknown emotion label '{label}'"


def utterances_problem(utterances: Sequence[tuple[str, str, str | None]]) -> str | None:
    """Why these utterances are not a dialogue, if they are not (blank ones do not count)."""
    if {role for role, text, _ in utterances if text.strip()} != {"seeker", "supporter"}:
        return "needs at least one seeker turn and one supporter turn"
    return None


class _Builder:
    """Turns (role, text, strategy) utterances plus labels into Dialogue / Situation records."""

    def __init__(self, result: ImportResult):
        self.r = result
        self.persona = _placeholder_persona(result.fmt, result.source)
        self.provenance = Provenance(generator_model=f"dataset:{result.fmt}", config_fingerprint="import",
                                     created=now(), package_version=package_version())
        self.dialogue_ids: set[str] = set()
        self.situation_ids: set[str] = set()

    @staticmethod
    def turns(utterances: Iterable[tuple[str, str, str | None]]) -> tuple[list[Turn], Counter[str], int]:
        """Merged turns, counts for `stats`, and the number of blank utterances skipped."""
        merged: list[list[Any]] = []  # [role, [texts], strategy]
        stats: Counter[str] = Counter()
        blanks = 0
        for role, text, strategy in utterances:
            text = text.strip()
            if not text:
                blanks += 1
                continue
            if merged and merged[-1][0] == role:
                merged[-1][1].append(text)
                merged[-1][2] = merged[-1][2] or strategy
                stats["utterances_merged"] += 1
            else:
                merged.append([role, [text], strategy])
        out = []
        for role, texts, strategy in merged:
            if role == "supporter" and strategy is None:
                strategy = "other"
                stats["supporter_turns_without_strategy"] += 1
            out.append(Turn(role=role, text=" ".join(texts), strategy=strategy if role == "supporter" else None))
        return out, stats, blanks

    def add(self, location: str, did: str, index: int, utterances: Sequence[tuple[str, str, str | None]],
            emotion_label: Any, problem_label: Any, situation_text: Any, intensity: int | None = None,
            emotion_required: bool = True, unknown_strategies: int = 0, key: str | int | None = None) -> None:
        """Add one dialogue (and its scenario node), or one bad row; counts only what is kept."""
        if did in self.dialogue_ids:
            self.r.bad(location, f"duplicate dialogue id '{did}'")
            return
        problem = emotion_problem(emotion_label, emotion_required) or utterances_problem(utterances)
        if problem:
            self.r.bad(location, problem)
            return
        emotion = map_emotion(emotion_label) if emotion_label is not None and str(emotion_label).strip() else None
        turns, stats, blanks = self.turns(utterances)
        self.r.stats.update(stats)
        for _ in range(blanks):
            self.r.repair("blank_utterance_skipped")
        for _ in range(unknown_strategies):
            self.r.repair("unknown_strategy_as_other")
        problem = map_problem_type(problem_label)
        text = " ".join(str(situation_text).split()) if situation_text is not None else ""
        if text and emotion:
            situation = self.add_situation(text, [emotion], problem, problem_label)
        else:
            # No scenario node: the seeker's opening message stands in for the situation in the seed.
            opening = next(t.text for t in turns if t.role == "seeker")
            situation = _situation(text or opening, [emotion or UNSPECIFIED], problem)
        level = DEFAULT_INTENSITY if intensity is None else max(0, min(10, intensity))
        seed = Seed(id=did, index=index, persona=self.persona, situation=situation,
                    emotion=emotion or UNSPECIFIED, problem_type=problem, intensity=level, source=self.r.fmt,
                    language=self.r.language)
        self.dialogue_ids.add(did)
        self.r.origins[did] = (index, key)
        self.r.dialogues.append(Dialogue(id=did, seed=seed, turns=turns, ending="imported",
                                         provenance=self.provenance))

    def add_situation(self, text: str, emotions: list[str], problem: str, problem_label: Any) -> Situation:
        situation = _situation(text, emotions, problem)
        if situation.id in self.situation_ids:
            self.r.stats["duplicate_situations"] += 1
        else:
            self.situation_ids.add(situation.id)
            self.r.situations.append(situation)
            label = str(problem_label).strip() if problem_label is not None and str(problem_label).strip() else ""
            self.r.problem_type_labels.setdefault(problem, label or problem.replace("_", " "))
        return situation


# ---------------------------------------------------------------- reading files


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"dataset file {path} does not exist")
    try:
        with reading(path):
            return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); {_EXPECTED}") from exc


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) on '\\n' only: text may hold other Unicode line breaks."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.rstrip("\r")


def classify_record(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    if "turns" in record and "seed" in record:
        return "synth"
    if isinstance(record.get("dialog"), list):
        return "esconv"
    if "conversations" in record or "messages" in record or isinstance(record.get("turns"), list):
        return "chat"
    if "situation" in record and ("emotion" in record or "emotions" in record):
        return "situations"
    return None


@dataclass
class _Parsed:
    fmt: str
    text: str
    layout: str = "csv"  # how records sit in the file: "csv" (ED), "jsonl" (one a line) or "json" (a list)
    # JSON formats: (location, index, record or None, parse error)
    records: list[tuple[str, int, Any, str | None]] = field(default_factory=list)


def _parse_json_records(path: Path, text: str, jsonl: bool) -> list[tuple[str, int, Any, str | None]]:
    if not jsonl:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); {_EXPECTED}") from exc
        except RecursionError as exc:
            raise UserError(f"{path}: the JSON nests deeper than can be read; {_EXPECTED}") from exc
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise UserError(f"{path}: the JSON is neither a list of records nor one record; {_EXPECTED}")
        return [(f"record {i}", i, rec, None) for i, rec in enumerate(data)]
    out = []
    index = 0
    for number, line in _lines(text):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:  # characters, not bytes: a line this long is never one record anyway
            out.append((f"line {number}", index, None, f"longer than {MAX_LINE_BYTES // 2**20} MiB"))
            index += 1
            continue
        try:
            out.append((f"line {number}", index, json.loads(line), None))
        except json.JSONDecodeError as exc:
            out.append((f"line {number}", index, None, f"not valid JSON ({exc.msg})"))
        except RecursionError:
            out.append((f"line {number}", index, None, "JSON nested deeper than can be read"))
        index += 1
    return out


def _sniff(path: Path, fmt: str | None = None) -> _Parsed:
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown import format '{fmt}' (expected one of {', '.join(FORMATS)})")
    text = _read_text(path)
    stripped = text.lstrip()
    if not stripped:
        raise UserError(f"{path}: the file is empty; {_EXPECTED}")
    first_line = stripped.split("\n", 1)[0].strip()
    if fmt == "ed_csv" or (fmt is None and (first_line.startswith(_ED_HEADER) or path.suffix.lower() == ".csv")):
        if not first_line.startswith(_ED_HEADER):
            raise UserError(f"{path}: the first line is not the EmpatheticDialogues header "
                            f"'{','.join(ED_COLUMNS)}'; {_EXPECTED}")
        return _Parsed("ed_csv", text)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        jsonl = True
    elif stripped[0] == "[":
        jsonl = False
    elif stripped[0] == "{":  # one JSON object, or JSON Lines under another extension
        try:
            json.loads(text)
            jsonl = False
        except (json.JSONDecodeError, RecursionError):
            jsonl = True
    else:
        raise UserError(f"{path}: not a dataset this importer knows; {_EXPECTED}")
    layout = "jsonl" if jsonl else "json"
    records = _parse_json_records(path, text, jsonl)
    if fmt is None:
        kinds = [classify_record(rec) for _, _, rec, err in records if err is None]
        if not kinds:
            raise UserError(f"{path}: no readable records; {_EXPECTED}")
        fmt = kinds[0]
        if fmt is None:
            rec = next(rec for _, _, rec, err in records if err is None)
            keys = sorted(rec)[:8] if isinstance(rec, dict) else type(rec).__name__
            raise UserError(f"{path}: the first record ({keys}) matches no known format; {_EXPECTED}")
    return _Parsed(fmt, text, layout, records)


def detect_format(path: str | Path) -> str:
    """'ed_csv' | 'esconv' | 'chat' | 'situations' | 'synth'; UserError for anything else."""
    return _sniff(Path(path)).fmt


def read_dataset(path: str | Path, fmt: str | None = None, license: str = "unknown",
                 language: str = DEFAULT_LANGUAGE) -> ImportResult:
    """Read one dataset file into dialogues, scenario nodes and a list of bad rows (never dropped silently);
    `license` is the file's licence as its user declares it, `language` what its dialogues are written in."""
    path = Path(path)
    get_language(language)
    parsed = _sniff(path, fmt)
    result = ImportResult(fmt=parsed.fmt, source=str(path), license=license.strip() or "unknown", language=language,
                          layout=parsed.layout)
    builder = _Builder(result)
    if parsed.fmt == "ed_csv":
        _read_ed(parsed.text, builder)
    else:
        reader = {"esconv": _read_esconv, "chat": _read_chat, "situations": _read_situations,
                  "synth": _read_synth}[parsed.fmt]
        for location, index, record, error in parsed.records:
            if error is not None:
                result.bad(location, error)
            elif not isinstance(record, dict):
                result.bad(location, f"expected a JSON object, found {type(record).__name__}")
            else:
                reader(location, index, record, builder)
    result.stats["records"] = len(parsed.records) if parsed.fmt != "ed_csv" else result.stats["conversations"]
    return result


# ---------------------------------------------------------------- EmpatheticDialogues


def _split_ed_line(line: str) -> tuple[list[str] | None, bool, str]:
    """Split an ED line the way the ED repo's loader does (str.split(',')) into the 8 columns.

    Returns (fields, repaired, reason-if-bad). A line that does not fit the 8 columns (a stray comma in
    prompt or utterance) is repaired: conv_id, utterance_idx and context are the first three fields; the
    speaker_idx is the first all-digit field after the prompt; selfeval is the first later field shaped
    like '5|5|5_2|2|5' (or, if none, up to two trailing empty fields are selfeval/tags); whatever lies in
    between is re-joined with ',' into prompt and utterance.
    """
    f = line.split(",")
    if len(f) < 6:
        return None, False, f"expected 8 comma-separated fields ({', '.join(ED_COLUMNS)}), found {len(f)}"
    if len(f) <= 8 and f[4].strip().isdigit() and (len(f) < 7 or not f[6] or _SELFEVAL.fullmatch(f[6])):
        return f + [""] * (8 - len(f)), False, ""
    speaker = next((i for i in range(4, len(f)) if f[i].strip().isdigit()), None)
    if speaker is None:
        return None, False, "could not find the speaker_idx field (an all-digit field after the prompt)"
    prompt = ",".join(f[3:speaker])
    rest = f[speaker + 1:]
    j = next((k for k in range(1, len(rest)) if _SELFEVAL.fullmatch(rest[k])), None)
    if j is not None:
        utterance, selfeval, tags = ",".join(rest[:j]), rest[j], ",".join(rest[j + 1:])
    else:
        trailing = 0
        while trailing < 2 and len(rest) - trailing > 1 and rest[len(rest) - 1 - trailing] == "":
            trailing += 1
        utterance, selfeval, tags = ",".join(rest[:len(rest) - trailing]), "", ""
    return [f[0], f[1], f[2], prompt, f[speaker], utterance, selfeval, tags], True, ""


def _ed_text(value: str) -> str:
    return value.replace("_comma_", ",").strip()


def _read_ed(text: str, b: _Builder) -> None:
    r = b.r
    groups: dict[str, list[tuple[int, list[str]]]] = {}
    unreadable: dict[str, int] = {}  # first field of an unreadable line -> its line number
    lines = _lines(text)
    next(lines)  # header
    for number, raw in lines:
        line = raw.strip()
        if not line:
            continue
        fields, repaired, reason = _split_ed_line(line)
        if fields is None:
            r.bad(f"line {number}", reason)
            unreadable.setdefault(line.split(",", 1)[0], number)
            continue
        if repaired:
            r.repair("ed_extra_commas_rejoined")
        groups.setdefault(fields[0], []).append((number, fields))
    r.stats["conversations"] = len(groups)
    for index, (conv_id, rows) in enumerate(groups.items()):
        numbers = [n for n, _ in rows]
        where = f"conv_id {conv_id} (lines {min(numbers)}-{max(numbers)})"
        if conv_id in unreadable:  # a turn is missing: the conversation would be broken
            r.bad(where, f"conversation skipped: its line {unreadable[conv_id]} could not be read")
            continue
        try:
            rows.sort(key=lambda row: int(row[1][1]))
        except ValueError:
            r.bad(where, "utterance_idx is not a number on every row")
            continue
        first = rows[0][1]
        contexts = list(dict.fromkeys(row[2].strip() for _, row in rows))
        if len(contexts) > 1:
            r.bad(where, f"rows disagree on the emotion label ({', '.join(contexts)})")
            continue
        speakers = list(dict.fromkeys(row[4].strip() for _, row in rows))
        if len(speakers) > 2:
            r.bad(where, f"{len(speakers)} different speakers; expected two")
            continue
        utterances = [("seeker" if row[4].strip() == speakers[0] else "supporter", _ed_text(row[5]), None)
                      for _, row in rows]
        b.add(where, f"ed-{conv_id}", index, utterances, emotion_label=first[2],
              problem_label=None, situation_text=_ed_text(first[3]), key=conv_id)


# ---------------------------------------------------------------- ESConv


def _esconv_intensity(record: dict) -> int | None:
    try:
        value = int(str(record["survey_score"]["seeker"]["initial_emotion_intensity"]).strip())
    except (KeyError, TypeError, ValueError):
        return None
    return value * 2


def _role(name: Any) -> str | None:
    known = _ROLE_OF.get(name) if isinstance(name, str) else None
    if known is not None:  # the common case, one lookup per message of a large file
        return known
    key = str(name).strip().lower()
    if key in _SEEKER_ROLES:
        return "seeker"
    if key in _SUPPORTER_ROLES:
        return "supporter"
    if key in _SYSTEM_ROLES:
        return "system"
    return None


def _read_esconv(location: str, index: int, record: dict, b: _Builder) -> None:
    dialog = record.get("dialog")
    if not isinstance(dialog, list):
        b.r.bad(location, "no 'dialog' list")
        return
    utterances = []
    unknown = 0
    for i, utt in enumerate(dialog):
        role = _role(utt.get("speaker")) if isinstance(utt, dict) else None
        if role not in ("seeker", "supporter") or not isinstance(utt.get("content"), str):
            b.r.bad(location, f"dialog[{i}] needs speaker 'seeker' or 'supporter' and a text 'content'")
            return
        annotation = utt.get("annotation") if isinstance(utt.get("annotation"), dict) else {}
        strategy = None
        if role == "supporter":
            strategy, known = map_strategy(annotation.get("strategy"))
            unknown += not known
        utterances.append((role, utt["content"], strategy))
    b.add(location, f"esconv-{index}", index, utterances, emotion_label=record.get("emotion_type"),
          problem_label=record.get("problem_type"), situation_text=record.get("situation"),
          intensity=_esconv_intensity(record), unknown_strategies=unknown)


# ---------------------------------------------------------------- chat


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    return None


# The three shapes of a chat record: (list key, role key, text key).
_CHAT_SHAPES = (("conversations", "from", "value"), ("messages", "role", "content"), ("turns", "role", "text"))


@dataclass
class ChatUtterances:
    """What a chat record says, before it becomes a Dialogue: (role, text, strategy) per message."""

    utterances: list[tuple[str, str, str | None]]
    unknown_strategies: int = 0
    system_skipped: int = 0


def chat_utterances(record: dict) -> ChatUtterances | str:
    """The seeker/supporter utterances of a chat record, or why it has none that can be read."""
    shape = next((s for s in _CHAT_SHAPES if s[0] in record), None)
    if shape is None:
        return "no 'conversations', 'messages' or 'turns' list"
    list_key, role_key, text_key = shape
    messages = record[list_key]
    if not isinstance(messages, list):
        return f"'{list_key}' is not a list"
    out = ChatUtterances([])
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            return f"message {i} is not an object"
        role = _role(msg.get(role_key))
        text = _content_text(msg.get(text_key))
        if role is None:
            return f"message {i} has unknown {role_key} '{msg.get(role_key)}'"
        if text is None:
            return f"message {i} has no text '{text_key}'"
        if role == "system":
            out.system_skipped += 1
            continue
        strategy = None
        if role == "supporter" and msg.get("strategy") is not None:
            strategy, known = map_strategy(msg.get("strategy"))
            out.unknown_strategies += not known
        out.utterances.append((role, text, strategy))
    return out


def record_key(record: dict) -> str | int | None:
    """The id a record carries itself (what outputs keyed by the input's ids use), if it has a usable one."""
    rid = record.get("id")
    return rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid).strip() else None


def chat_dialogue_id(record: dict, index: int) -> str:
    key = record_key(record)
    return f"chat-{key}" if key is not None else f"chat-{index}"


def _read_chat(location: str, index: int, record: dict, b: _Builder) -> None:
    said = chat_utterances(record)
    if isinstance(said, str):
        b.r.bad(location, said)
        return
    if said.system_skipped:
        b.r.stats["system_messages_skipped"] += said.system_skipped
    b.add(location, chat_dialogue_id(record, index), index, said.utterances, emotion_label=record.get("emotion"),
          problem_label=record.get("problem_type"), situation_text=record.get("situation"),
          emotion_required=False, unknown_strategies=said.unknown_strategies, key=record_key(record))


# ---------------------------------------------------------------- situations, synth


def _read_situations(location: str, index: int, record: dict, b: _Builder) -> None:
    text = record.get("situation")
    if not isinstance(text, str) or not text.strip():
        b.r.bad(location, "no 'situation' text")
        return
    labels = record.get("emotions", record.get("emotion"))
    labels = labels if isinstance(labels, list) else [labels]
    if not labels or any(lab is None or not str(lab).strip() for lab in labels):
        b.r.bad(location, "no emotion label")
        return
    emotions = [map_emotion(lab) for lab in labels]
    unknown = [str(lab) for lab, e in zip(labels, emotions, strict=True) if e is None]
    if unknown:
        b.r.bad(location, f"unknown emotion label '{unknown[0]}'")
        return
    problem = map_problem_type(record.get("problem_type"))
    b.add_situation(" ".join(text.split()), list(dict.fromkeys(emotions)), problem, record.get("problem_type"))


def _read_synth(location: str, index: int, record: dict, b: _Builder) -> None:
    dialogue = as_dialogue(record)
    if isinstance(dialogue, str):
        b.r.bad(location, f"not a valid dialogue record: {dialogue}")
        return
    if dialogue.id in b.dialogue_ids:
        b.r.bad(location, f"duplicate dialogue id '{dialogue.id}'")
        return
    b.dialogue_ids.add(dialogue.id)
    b.r.origins[dialogue.id] = (index, dialogue.id)
    b.r.dialogues.append(dialogue)


# ---------------------------------------------------------------- writing


def _known_problem_types(scenarios_dir: Path) -> set[str]:
    known: set[str] = set()
    for path in sorted(p for p in scenarios_dir.rglob("*") if p.suffix in (".yaml", ".yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("problem_types"), list):
            known.update(p["id"] for p in data["problem_types"] if isinstance(p, dict) and "id" in p)
    return known


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_import(result: ImportResult | Sequence[ImportResult], out_dir: str | Path,
                 scenarios_dir: str | Path | None = None, pii: PiiMode = "report") -> dict:
    """Write scenarios/imported.yaml, reference_dialogues.jsonl and import_report.json; return the report.

    Problem type ids that the scenarios catalog (`scenarios_dir`, default the shipped one) does not
    define are written as `problem_types:` entries in imported.yaml, so that file loads next to the
    catalog through `load_catalog`. Several results may be written together; situations are merged by
    id and a dialogue id seen twice is reported as a bad row of the later file. Each file is a `sources:`
    entry with its licence, and its situations name it, so a run seeded from them can credit it.
    `pii` is the personal-data pass over dialogues and situations: report, mask, drop or off.
    """
    results = [result] if isinstance(result, ImportResult) else list(result)
    out = Path(out_dir)
    known = _known_problem_types(Path(scenarios_dir) if scenarios_dir else shipped_catalog_dir("scenarios"))
    situations: dict[str, Situation] = {}
    labels: dict[str, tuple[str, str]] = {}  # new problem type id -> (label, dataset)
    dialogues: dict[str, Dialogue] = {}
    extra_bad: dict[int, list[BadRow]] = {}
    entries = _sources(results)
    for i, res in enumerate(results):
        for s in res.situations:
            situations.setdefault(s.id, s.model_copy(update={"source": entries[i].id}))
            if s.problem_type not in known:
                labels.setdefault(s.problem_type, (res.problem_type_labels.get(s.problem_type, s.problem_type),
                                                   DATASET_NAMES.get(res.fmt, res.fmt)))
        for d in res.dialogues:
            if d.id in dialogues:
                extra_bad.setdefault(i, []).append(BadRow(f"dialogue {d.id}", "duplicate dialogue id across files"))
            else:
                dialogues[d.id] = d
    kept_dialogues, dialogue_pii = pii_pass(list(dialogues.values()), pii)
    dialogues = {d.id: d for d in kept_dialogues}
    texts, situation_pii = pii_pass_texts([s.text for s in situations.values()], pii, list(situations))
    situations = {sid: s.model_copy(update={"text": text}) for (sid, s), text in zip(situations.items(), texts,
                                                                                     strict=True) if text is not None}
    new_types = [
        {"id": pid, "label": _label(pid, label),
         "description": (f"Imported from {dataset}: source label '{label}', not in the shipped catalog."
                         if pid != UNSPECIFIED else
                         "Imported situations whose source dataset (e.g. EmpatheticDialogues) gives no problem type.")}
        for pid, (label, dataset) in sorted(labels.items())
    ]
    doc: dict[str, Any] = {}
    if new_types:
        doc["problem_types"] = new_types
    doc["sources"] = [src.model_dump(mode="json") for src in entries]
    doc["situations"] = [s.model_dump(mode="json", exclude_defaults=True) for s in situations.values()]
    sources = ", ".join(f"{Path(r.source).name} ({r.fmt})" for r in results)
    header = (f"# Scenario nodes imported by synth_empathy.corpus.importers from {sources} on {now()}.\n"
              "# Situation texts are the source's own words; problem types the catalog lacks are defined here.\n")
    _atomic_write(out / "scenarios" / "imported.yaml",
                  header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))
    _atomic_write(out / "reference_dialogues.jsonl", "".join(d.model_dump_json() + "\n" for d in dialogues.values()))

    by_format: dict[str, Counter[str]] = {}
    bad_rows, repair_kinds, stats = [], Counter(), Counter()
    for i, res in enumerate(results):
        rows = res.bad_rows + extra_bad.get(i, [])
        c = by_format.setdefault(res.fmt, Counter())
        c.update(files=1, dialogues=len(res.dialogues), situations=len(res.situations), bad_rows=len(rows),
                 repairs=res.repairs)
        bad_rows += [{"source": res.source, "location": b.location, "reason": b.reason} for b in rows]
        repair_kinds.update(res.repair_kinds)
        stats.update(res.stats)
    report = {
        "created": now(),
        "sources": [{"path": r.source, "format": r.fmt, "license": r.license, "language": r.language}
                    for r in results],
        "pii": {"dialogues": dialogue_pii.as_dict(), "situations": situation_pii.as_dict(), **pii_scope()},
        "counts": {"dialogues": len(dialogues), "situations": len(situations), "bad_rows": len(bad_rows),
                   "repairs": sum(r.repairs for r in results), "new_problem_types": len(new_types)},
        "counts_by_format": {fmt: dict(c) for fmt, c in by_format.items()},
        "repair_kinds": dict(repair_kinds),
        "stats": dict(stats),
        "new_problem_types": [t["id"] for t in new_types],
        "bad_rows": bad_rows,
        "files": {"scenarios": "scenarios/imported.yaml", "dialogues": "reference_dialogues.jsonl",
                  "report": "import_report.json"},
    }
    _atomic_write(out / "import_report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def _sources(results: Sequence[ImportResult]) -> list[Source]:
    """One Source per result, its id the file's name (numbered when two files share one)."""
    out: list[Source] = []
    for r in results:
        entry = source_entry(r.source, r.fmt, r.license)
        sid, n = entry.id, 1
        while any(src.id == sid for src in out):
            n += 1
            sid = f"{entry.id}_{n}"
        out.append(entry.model_copy(update={"id": sid}))
    return out


def source_entry(path: str | Path, fmt: str, license: str = "unknown") -> Source:
    """The Source a dataset file is recorded as: id from its name, the dataset its format is, its licence."""
    path = Path(path)
    return Source(id=slug(path.stem) or fmt, file=path.name, format=fmt, dataset=DATASET_NAMES.get(fmt, fmt),
                  license=license.strip() or "unknown", imported=now())


def _label(pid: str, label: str) -> str:
    text = label.strip() or pid.replace("_", " ")
    return text[0].upper() + text[1:]
