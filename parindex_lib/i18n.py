"""User-visible text in Vietnamese (the default) and English.

Every string a person reads in the apps comes from one catalogue per
language, ``parindex_lib/locale/vi.yaml`` and ``parindex_lib/locale/en.yaml``,
looked up by a dotted key (``"self.save"``). Numbers are shown with a decimal
comma in Vietnamese (``85,63``) and a point in English (``85.63``), and are
accepted either way (:func:`read_number`).

The library itself writes its refusals in English (the ``expected`` column
of failure tables, error messages): scripts and logs read them as they are,
and the apps show them in the person's language through
:func:`library_text` and ``parindex_lib/locale/library_vi.yaml``.

This module never imports ipywidgets: the library may use it for messages.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from .numbers import format_number, parse_number

__all__ = ["LANGS", "DEFAULT_LANG", "LOCALE_DIR", "t", "catalogue", "keys", "number", "read_number",
           "time_of_day", "normalise_lang", "library_text", "library_patterns"]

#: Languages with a catalogue, the default first.
LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_log = logging.getLogger(__name__)


def normalise_lang(lang: str | None) -> str:
    """``"en"`` for any English tag (``en``, ``en-GB``), else ``"vi"``.

    Examples
    --------
    >>> normalise_lang("en-GB"), normalise_lang(None), normalise_lang("fr")
    ('en', 'vi', 'vi')
    """
    if lang and str(lang).lower().split("-")[0].split("_")[0] == "en":
        return "en"
    return DEFAULT_LANG


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, full + "."))
        else:
            out[full] = "" if value is None else str(value)
    return out


@lru_cache(maxsize=None)
def catalogue(lang: str = DEFAULT_LANG) -> dict[str, str]:
    """The flat catalogue of one language: dotted key -> text.

    Parameters
    ----------
    lang
        ``"vi"`` or ``"en"``.

    Returns
    -------
    dict of str to str
    """
    lang = normalise_lang(lang)
    path = LOCALE_DIR / f"{lang}.yaml"
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return _flatten(data)


def keys(lang: str = DEFAULT_LANG) -> set[str]:
    """Every key of one language's catalogue."""
    return set(catalogue(lang))


def number(value: Any, lang: str = DEFAULT_LANG, decimals: int = 2, trim: bool = True) -> str:
    """A number as a person reads it in ``lang``.

    Parameters
    ----------
    value
        A number; None or NaN shows as an en dash.
    decimals
        Decimals shown at most.
    trim
        Drop trailing zeros (``9,50`` -> ``9,5``; ``10,00`` -> ``10``).

    Examples
    --------
    >>> number(85.63), number(85.63, "en"), number(9.5), number(1234.5), number(None)
    ('85,63', '85.63', '9,5', '1.234,5', '–')
    """
    if value is None:
        return format_number(None)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return format_number(math.nan)
    text = format_number(x, normalise_lang(lang), decimals)
    if trim and decimals > 0:
        sep = "," if normalise_lang(lang) == "vi" else "."
        if sep in text:
            text = text.rstrip("0").rstrip(sep)
    if text in ("-0", "−0"):
        text = "0"
    return text


def read_number(text: Any) -> float:
    """A number typed either way (``85,63`` or ``85.63``); NaN for blank.

    Raises
    ------
    ValueError
        When the text is not one number.

    Examples
    --------
    >>> read_number("85,63"), read_number("85.63")
    (85.63, 85.63)
    """
    return parse_number(text)


def time_of_day(moment: dt.datetime | None = None, lang: str = DEFAULT_LANG) -> str:
    """Local hour and minute, e.g. ``10:42`` (the same in both languages)."""
    moment = moment or dt.datetime.now()
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%H:%M")


def t(key: str, lang: str = DEFAULT_LANG, **fmt: Any) -> str:
    """The text of ``key`` in ``lang``, with ``{name}`` fields filled in.

    Float arguments are shown with :func:`number` in the same language
    (decimal comma in Vietnamese). A key missing in English falls back to
    Vietnamese; a key missing everywhere shows as itself (and is logged), so
    a gap in the catalogue never breaks an app.

    Parameters
    ----------
    key
        Dotted key, e.g. ``"self.save"``.
    lang
        ``"vi"`` (default) or ``"en"``.
    **fmt
        Values for the ``{name}`` fields of the text.

    Examples
    --------
    >>> t("common.saved_at", time="10:42")
    'Đã lưu lúc 10:42'
    >>> t("common.saved_at", "en", time="10:42")
    'Saved at 10:42'
    >>> t("results.rank_up", n=3)
    'tăng 3 bậc'
    """
    lang = normalise_lang(lang)
    text = catalogue(lang).get(key)
    if text is None and lang != DEFAULT_LANG:
        text = catalogue(DEFAULT_LANG).get(key)
    if text is None:
        _log.warning("i18n: no text for key %r", key)
        return key
    if not fmt:
        return text
    values = {k: (number(v, lang) if isinstance(v, float) else v) for k, v in fmt.items()}
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        _log.warning("i18n: text for %r does not take %s", key, sorted(fmt))
        return text


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@lru_cache(maxsize=None)
def library_patterns(lang: str = DEFAULT_LANG) -> tuple[tuple[str, "re.Pattern[str]", str], ...]:
    """The patterns of the library's English texts and their translations (``locale/library_<lang>.yaml``).

    Returns
    -------
    tuple
        ``(english, compiled pattern, translation)`` per entry, in the file's order; empty for
        English or a language without such a file.

    Raises
    ------
    ValueError
        An entry whose translation names a ``{field}`` its English pattern does not have (the file
        and the entry named).
    """
    lang = normalise_lang(lang)
    path = LOCALE_DIR / f"library_{lang}.yaml"
    if lang == "en" or not path.exists():
        return ()
    with path.open(encoding="utf-8") as fh:
        entries = yaml.safe_load(fh) or []
    out = []
    for i, entry in enumerate(entries, start=1):
        english, translated = str(entry["en"]), str(entry[lang])
        fields = _PLACEHOLDER.findall(english)
        extra = set(_PLACEHOLDER.findall(translated)) - set(fields)
        if extra:
            raise ValueError(f"{path.name}, entry {i} ({english!r}): the translation names {sorted(extra)}, "
                             f"expected only fields of the English pattern {fields}")
        parts = _PLACEHOLDER.split(english)
        rx = "".join(re.escape(part) if j % 2 == 0 else f"(?P<{part}>.+?)" for j, part in enumerate(parts))
        out.append((english, re.compile(rx, re.DOTALL), translated))
    return tuple(out)


def library_text(text: Any, lang: str = DEFAULT_LANG) -> Any:
    """One of the library's English texts in ``lang`` (as it is when no pattern matches).

    The fields of the pattern (codes, numbers, file names) are copied as
    they are, except a field whose text is itself one of the patterns
    (``node 1.2`` inside a longer text), which is translated too.

    Parameters
    ----------
    text
        A message or an ``expected`` text of a failure table; anything
        that is not a non-empty string is returned unchanged.
    lang
        ``"vi"`` (default) or ``"en"`` (unchanged).

    Examples
    --------
    >>> library_text("at most 2 points (max_points of node 2.2)")
    'tối đa 2 điểm (điểm tối đa của tiêu chí 2.2)'
    >>> library_text("at most 2 points (max_points of node 2.2)", "en")
    'at most 2 points (max_points of node 2.2)'
    >>> library_text("something new")
    'something new'
    """
    if not isinstance(text, str) or not text:
        return text
    return _library_text(text, normalise_lang(lang))


@lru_cache(maxsize=4096)
def _library_text(text: str, lang: str) -> str:
    # a failure table repeats the same few texts on many rows: each is matched once
    return _translate(text, library_patterns(lang), 0)


def _translate(text: str, patterns: tuple, depth: int) -> str:
    for _english, rx, translated in patterns:
        m = rx.fullmatch(text)
        if m is not None:
            values = {k: (_translate(v, patterns, depth + 1) if depth < 2 else v) for k, v in m.groupdict().items()}
            return _PLACEHOLDER.sub(lambda f: values[f.group(1)], translated)
    return text
