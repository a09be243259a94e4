"""Personal data in dialogue text: found offline by pattern recognizers, then reported, masked or dropped.

The recognizers are presidio-analyzer's (emails, phone numbers through Google's libphonenumber, URLs, card
numbers with their Luhn check, IP addresses, IBANs), used one by one without its NLP engine, which would load a
spaCy model from the hub; handles and street addresses, which presidio has no pattern for, are presidio
PatternRecognizers defined here. Names are not found: that needs NER, and no maintained PyPI package ships an
NER model (spaCy's models are not on PyPI). Everything runs offline: presidio's email check asks `tldextract`
for the public suffix list, which it would fetch from the web, so it is given the list tldextract ships.

Example:
    >>> find_pii("Write to ana@example.org or call +34 612 345 678.")  # doctest: +SKIP
    [PiiSpan(entity='EMAIL_ADDRESS', start=9, end=24), PiiSpan(entity='PHONE_NUMBER', start=33, end=48)]
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from synth_empathy.schema import Dialogue

PiiMode = Literal["off", "report", "mask", "drop"]
PII_MODES = ("off", "report", "mask", "drop")
# What a masked span becomes: a bracketed type the rules' placeholder check does not take for a template gap.
MASKS = {"EMAIL_ADDRESS": "[EMAIL]", "PHONE_NUMBER": "[PHONE]", "URL": "[URL]", "CREDIT_CARD": "[CARD_NUMBER]",
         "IP_ADDRESS": "[IP_ADDRESS]", "IBAN_CODE": "[IBAN]", "HANDLE": "[HANDLE]", "STREET_ADDRESS": "[ADDRESS]"}
PII_ENTITIES = tuple(MASKS)
# Regions whose national formats the phone recognizer reads (international +NN numbers are read from any).
PHONE_REGIONS = ("US", "GB", "CA", "AU", "IN", "ES", "MX", "AR", "CO", "FR", "DE", "IT", "BR", "PT", "CN")
NOT_FOUND = ("names (no maintained PyPI package ships an NER model)",)

_STREET_TYPES = ("Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
                 "Crescent|Close|Square|Sq")
_CAPITALISED = r"[A-ZÁÉÍÓÚÑ][\wáéíóúñ'-]+"


# The fewest digits a match of each entity holds (a phone number has 7 or more, an IPv4 address 4, a card 12; an
# IPv6 address may have none), and the entities that always hold an @.
_DIGITS_NEEDED = {"PHONE_NUMBER": 7, "CREDIT_CARD": 12, "IBAN_CODE": 2, "STREET_ADDRESS": 1}
_AT_NEEDED = {"EMAIL_ADDRESS", "HANDLE"}


@dataclass(frozen=True)
class PiiSpan:
    entity: str
    start: int
    end: int


@contextlib.contextmanager
def _without(*modules: str) -> Iterator[None]:
    """Make `import m` fail for these modules while the block runs, unless one is loaded already."""
    hidden = [m for m in modules if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # the import system's "not importable" marker
    try:
        yield
    finally:
        for m in hidden:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]


def _recognizers() -> list[Any]:
    # Importing presidio imports its NLP engines, and with them spaCy's thinc, which import torch and
    # transformers when they are installed (the train extra): ~800 MB and seconds for pattern recognizers
    # that never use them. They import without them.
    os.environ.setdefault("PRESIDIO_DEVICE", "cpu")
    with _without("torch", "transformers"):
        import presidio_analyzer  # noqa: F401
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(_offline_domains()(pattern_text).fqdn)

    handle = PatternRecognizer("HANDLE", name="HandleRecognizer", patterns=[
        Pattern("handle", r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{1,28}[A-Za-z0-9_])\b", 0.6)])
    # Case matters here: "12 Elm Street" is an address, "2 more days" is not.
    address = PatternRecognizer("STREET_ADDRESS", name="StreetAddressRecognizer", global_regex_flags=re.MULTILINE,
                                patterns=[
        Pattern("house number first", rf"\b\d{{1,5}}[A-Za-z]?\s+(?:{_CAPITALISED}\s+){{1,3}}(?:{_STREET_TYPES})\b\.?",
                0.6),
        Pattern("street first", rf"\b(?:Calle|C/|Avenida|Avda\.?|Plaza|Paseo|Carrer|Rue|Via|Rua)\s+(?:de\s+|del\s+|"
                rf"la\s+)?(?:{_CAPITALISED}\s*){{1,3}},?\s+(?:n\.?º\s*)?\d{{1,4}}\b", 0.6),
    ])
    return [OfflineEmailRecognizer(), PhoneRecognizer(supported_regions=PHONE_REGIONS), UrlRecognizer(),
            CreditCardRecognizer(), IpRecognizer(), IbanRecognizer(), handle, address]


@functools.cache
def _offline_domains() -> Any:
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


@functools.cache
def _loaded_recognizers() -> tuple[Any, ...]:
    return tuple(_recognizers())


def find_pii(text: str) -> list[PiiSpan]:
    """Every span of personal data in `text`, left to right, none overlapping: of two that overlap the longer
    wins (an email's domain is not also a URL), then the likelier."""
    found = []
    digits = sum(c.isdigit() for c in text)
    for recognizer in _loaded_recognizers():
        # Most turns have no digit and no @: skipping the recognizers that cannot match them (the phone matcher
        # is most of the cost) makes the pass several times faster and finds the same spans.
        if digits < _DIGITS_NEEDED.get(recognizer.supported_entities[0], 0) or (
                recognizer.supported_entities[0] in _AT_NEEDED and "@" not in text):
            continue
        found += recognizer.analyze(text, recognizer.supported_entities, None)
    spans: list[PiiSpan] = []
    for r in sorted(found, key=lambda r: (-(r.end - r.start), -r.score, r.start)):
        end = r.end
        while end > r.start + 1 and text[end - 1] in ".,;:!?":
            end -= 1  # a URL's pattern takes the full stop after it: the sentence keeps it
        if all(end <= s.start or r.start >= s.end for s in spans):
            spans.append(PiiSpan(r.entity_type, r.start, end))
    return sorted(spans, key=lambda s: s.start)


def mask_pii(text: str, spans: Sequence[PiiSpan]) -> str:
    """`text` with each span replaced by its type in brackets ("[EMAIL]")."""
    out, last = [], 0
    for s in sorted(spans, key=lambda s: s.start):
        out += [text[last:s.start], MASKS[s.entity]]
        last = s.end
    return "".join(out) + text[last:]


@dataclass
class PiiReport:
    """What a pass found: spans by entity type, how many records carried any, which were dropped."""

    mode: PiiMode
    records: int = 0
    records_with_pii: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    dropped: list[str] = field(default_factory=list)

    def add(self, spans: Sequence[PiiSpan]) -> None:
        self.records += 1
        self.records_with_pii += bool(spans)
        self.counts.update(s.entity for s in spans)

    def absorb(self, other: PiiReport) -> None:
        """Add another pass's findings to this one (the same corpus's other records)."""
        self.records += other.records
        self.records_with_pii += other.records_with_pii
        self.counts.update(other.counts)
        self.dropped += other.dropped

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "records": self.records, "records_with_pii": self.records_with_pii,
                "counts": dict(sorted(self.counts.items())), "dropped": len(self.dropped)}

    def summary(self) -> str:
        found = ", ".join(f"{n} {e}" for e, n in sorted(self.counts.items())) or "none"
        line = f"personal data ({self.mode}): {self.records_with_pii} of {self.records} records carry some ({found})"
        return line + (f"; {len(self.dropped)} dropped" if self.dropped else "")


def pii_scope() -> dict[str, list[str]]:
    """What a pass looks for and what it cannot find, for reports and cards."""
    return {"checked": list(PII_ENTITIES), "not_checked": list(NOT_FOUND)}


def corpus_pii(dialogues: Iterable[Dialogue]) -> dict[str, Any]:
    """The report-mode pass over a corpus (streamed: nothing is held), as the manifest and the data card record it."""
    report = PiiReport("report")
    for d in dialogues:
        report.add([s for spans in _dialogue_spans(d) for s in spans])
    return {**report.as_dict(), **pii_scope()}


def check_mode(mode: str, flag: str = "--pii") -> PiiMode:
    if mode not in PII_MODES:
        from synth_empathy.errors import UserError

        raise UserError(f"{flag} must be one of {', '.join(PII_MODES)}, not '{mode}'")
    return mode  # type: ignore[return-value]


def pii_pass_texts(texts: Sequence[str], mode: PiiMode, ids: Sequence[str] | None = None
                   ) -> tuple[list[str | None], PiiReport]:
    """One pass over plain texts (imported situations): each text as it was, masked, or None when dropped."""
    report = PiiReport(mode)
    if mode == "off":
        return list(texts), report
    out: list[str | None] = []
    for i, text in enumerate(texts):
        spans = find_pii(text)
        report.add(spans)
        if spans and mode == "drop":
            report.dropped.append(ids[i] if ids else str(i))
            out.append(None)
        else:
            out.append(mask_pii(text, spans) if spans and mode == "mask" else text)
    return out, report


def _dialogue_spans(d: Dialogue) -> list:
    """The personal data in each text of a dialogue: turns, drafts, and its seed's situation (an imported one
    is the source's own words). Each text once: an imported seed's situation is often its opening message."""
    texts = dict.fromkeys([d.seed.situation.text, *d.seed.situation.hidden_details, *(t.text for t in d.turns),
                           *(draft.text for t in d.turns for draft in t.drafts)])
    return [find_pii(text) for text in texts]


def pii_pass(dialogues: Sequence[Dialogue], mode: PiiMode) -> tuple[list[Dialogue], PiiReport]:
    """The pass over dialogues' turns (drafts included) and their seed's situation (an imported one is the
    source's own words): all kept and counted (report), masked, or those with any personal data dropped."""
    report = PiiReport(mode)
    if mode == "off":
        return list(dialogues), report
    kept = []
    for d in dialogues:
        found = _dialogue_spans(d)
        report.add([s for spans in found for s in spans])
        if not any(found) or mode == "report":
            kept.append(d)
        elif mode == "drop":
            report.dropped.append(d.id)
        else:
            kept.append(_masked(d))
    return kept, report


def _masked(d: Dialogue) -> Dialogue:
    def mask(text: str) -> str:
        return mask_pii(text, find_pii(text))

    turns = [t.model_copy(update={"text": mask(t.text), "drafts": [
        draft.model_copy(update={"text": mask(draft.text)}) for draft in t.drafts]}) for t in d.turns]
    situation = d.seed.situation
    situation = situation.model_copy(update={"text": mask(situation.text),
                                             "hidden_details": [mask(h) for h in situation.hidden_details]})
    return d.model_copy(update={"turns": turns, "seed": d.seed.model_copy(update={"situation": situation})})
