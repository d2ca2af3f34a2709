"""Numbers as Vietnamese offices write them.

Vietnamese documents write ``85,63`` for 85.63 and ``1.234,5`` for 1234.5;
Excel files mix numeric cells with text cells in either style. Parsing is
strict: anything that is not clearly one number is refused, never guessed.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["parse_number", "to_number_series", "format_number"]

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_PLAIN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
_DOT_THOUSANDS_COMMA_DECIMAL = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")
_COMMA_THOUSANDS_DOT_DECIMAL = re.compile(r"^[+-]?\d{1,3}(,\d{3})+\.\d+$")


def parse_number(value: Any) -> float:
    """Read one number written either way.

    Parameters
    ----------
    value
        A number, None, or text such as ``"85,63"``, ``"85.63"``,
        ``"1.234,5"``, ``" 9,5 "``.

    Returns
    -------
    float
        NaN for None and empty text.

    Raises
    ------
    ValueError
        For text that is not one number, or for NaN/inf given as text or number.

    Examples
    --------
    >>> parse_number("85,63")
    85.63
    >>> parse_number("1.234,5")
    1234.5
    >>> parse_number(" 9.5 ")
    9.5
    """
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
        if math.isnan(x):
            return math.nan
        if math.isinf(x):
            raise ValueError(f"{value!r} is not a finite number")
        return x
    if value is pd.NA or value is pd.NaT:
        return math.nan
    text = _SPACES.sub("", str(value))
    if text == "":
        return math.nan
    if _PLAIN.match(text):
        x = float(text)
    elif _COMMA_DECIMAL.match(text):
        x = float(text.replace(",", "."))
    elif _DOT_THOUSANDS_COMMA_DECIMAL.match(text):
        x = float(text.replace(".", "").replace(",", "."))
    elif _COMMA_THOUSANDS_DOT_DECIMAL.match(text):
        x = float(text.replace(",", ""))
    else:
        raise ValueError(f"{value!r} is not a number (write 85,63 or 85.63)")
    if math.isinf(x) or math.isnan(x):
        raise ValueError(f"{value!r} is not a finite number")
    return x


def to_number_series(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column of mixed numeric and text cells.

    Parameters
    ----------
    values
        Any Series.

    Returns
    -------
    numbers : pandas.Series
        float64, NaN for blanks and for cells that could not be read.
    bad : pandas.Series
        bool, True where a non-blank cell is not a number.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.astype("float64")
        bad = pd.Series(np.isinf(numbers.to_numpy()), index=values.index)
        return numbers.where(~bad), bad
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.tolist()):
        try:
            out[i] = parse_number(v)
        except ValueError:
            bad[i] = True
    return pd.Series(out, index=values.index), pd.Series(bad, index=values.index)


def format_number(value: float, lang: str = "vi", decimals: int = 2) -> str:
    """Show a number with a decimal comma in Vietnamese, a point in English.

    Examples
    --------
    >>> format_number(85.63)
    '85,63'
    >>> format_number(85.63, "en")
    '85.63'
    >>> format_number(float("nan"))
    '–'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:,.{decimals}f}"
    if lang == "vi":
        text = text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")
    return text
