"""The languages a run can be written in: their names for the prompts and how the rules recognise them.

A language written with spaces between words is recognised by its function words (real prose is at least
a fifth of them); one written without spaces (Chinese, Japanese) or in its own alphabet (Korean) by the share
of its script among the letters, since a word list would need a segmenter. The catalogs stay English: only
what the seeker and the supporter say is in the run's language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from synth_empathy.errors import UserError
from synth_empathy.text import HAN, KANA

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, as in the data card's `language:` field
    name: str  # in English, as the (English) prompts name it
    native: str  # as its speakers write it: a small model follows "Spanish (español)" better than "Spanish"
    function_words: frozenset[str] = field(default_factory=frozenset)
    script: re.Pattern[str] | None = None  # the characters of its script, when it is recognised by script


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (
    Language("en", "English", "English", _words(
        "the a an and or but to of in on at for with is are was were be been i you he she it we they my your me "
        "that this not no so just do did have has had can will would what how why when")),
    Language("es", "Spanish", "español", _words(
        "el la los las un una y o pero a de del en con por para es son fue era estoy está estás estaba yo tú él "
        "ella me te se mi tu su que qué no sí muy lo le les más como cómo cuando porque hay ya ni al eso esto")),
    Language("fr", "French", "français", _words(
        "le la les un une et ou mais à de des du en dans avec pour par est sont était je tu il elle nous vous "
        "ils me te se mon ma mes ton ta que qui ne pas plus très ce cette ça au aux si comme quand")),
    Language("de", "German", "Deutsch", _words(
        "der die das den dem des ein eine einen und oder aber zu von in im mit für auf ist sind war bin bist "
        "ich du er sie es wir ihr mein meine dein nicht kein keine so nur auch wie was wenn dass sehr")),
    Language("pt", "Portuguese", "português", _words(
        "o a os as um uma e ou mas de do da dos das em no na com por para é são foi era estou está eu tu ele "
        "ela nós me te se meu minha seu sua que não sim muito mais como quando porque isso isto")),
    Language("it", "Italian", "italiano", _words(
        "il lo la i gli le un una e o ma di del della in nel con per è sono era sto sta io tu lui lei noi voi "
        "mi ti si mio mia tuo sua che non sì molto più come quando perché questo quello")),
    Language("zh", "Chinese", "中文", script=re.compile(f"[{HAN}]")),
    Language("ja", "Japanese", "日本語", script=re.compile(f"[{KANA}{HAN}]")),
    Language("ko", "Korean", "한국어", script=re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")),
)}


def get_language(code: str) -> Language:
    """The language of an ISO 639-1 code; an unknown code is bad input."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise UserError(f"language '{code}' is not supported (supported: {', '.join(LANGUAGES)})") from None


def language_mix(setting: str | Mapping[str, float]) -> list[tuple[str, float]]:
    """A run's language setting as (code, weight) pairs: "es" is one language, {en = 1, es = 2} a mixed run."""
    return [(setting, 1.0)] if isinstance(setting, str) else [(code, float(w)) for code, w in setting.items()]


def language_rota(setting: str | Mapping[str, float]) -> list[str]:
    """The languages the seeds of a plan take in turn: seed i speaks rota[i % len(rota)]. A weight is rounded
    to whole turns (at least one), so a mix's shares are exact over every len(rota) seeds."""
    return [code for code, weight in language_mix(setting) for _ in range(max(1, round(weight)))]


def language_share(text_words: list[str], text: str, lang: Language) -> float | None:
    """How much of a text looks like `lang`: the share of its function words among `text_words`, or of its
    script among the letters of `text`; None when there is too little to tell."""
    if lang.script is not None:
        letters = [c for c in text if c.isalpha()]
        return sum(bool(lang.script.match(c)) for c in letters) / len(letters) if len(letters) >= 10 else None
    if len(text_words) < 10:
        return None
    return sum(w in lang.function_words for w in text_words) / len(text_words)
