"""Reading text tables (CSV, JSON lines; gzipped or not) row by row without ever losing a file
to one bad part of it.

* A file named ``.gz`` that is not gzip-compressed is read as plain text; binary data (gzipped
  or not) is one error naming the file.
* A stray byte that is not UTF-8 becomes U+FFFD: it spoils at most the row it is in.
* A truncated or corrupt compressed stream keeps every complete row before the cut, then one
  error row (``file truncated after line N (EOFError: ...)``).
* A JSON line that is not valid JSON, or valid JSON but not an object (``[1, 2]``, ``null``,
  ``"s"``), is an error row naming the line; a CSV record the ``csv`` module cannot read, or
  one with more values than the header, likewise.
* CSV fields may be as long as :data:`CSV_FIELD_LIMIT` characters (a CIF of many thousands of
  atoms; the ``csv`` module's default stops at 131,072).

Error rows are dicts with the key ``"__error__"`` (the reason); those about the whole file
(binary, truncated, corrupt) also have ``"__file__": True``. The bottom layer of the table
readers: it imports nothing from :mod:`crystalgnn.data`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: the longest CSV field read (characters): far above any crystal's CIF (a 3,000-atom CIF is about
#: 200,000), and bounded so that an unclosed quote cannot swallow a huge file into one field
CSV_FIELD_LIMIT = 1 << 26
#: bytes looked at to tell text from binary data
SNIFF_BYTES = 1 << 16
#: exceptions of a damaged file: truncated or corrupt gzip stream, failing disk
FILE_ERRORS = (EOFError, OSError, zlib.error, UnicodeDecodeError)


def allow_large_csv_fields() -> None:
    """Raise the ``csv`` module's field limit to :data:`CSV_FIELD_LIMIT` (never lower it)."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes (whatever its name)."""
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def open_text(path: Path, newline: str | None = None) -> io.TextIOBase:
    """The file as text: gunzipped when it is gzip data (not just named ``.gz``), UTF-8 with an
    optional byte-order mark (spreadsheet programs write one), undecodable bytes replaced.
    """
    if path.suffix == ".gz" and is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline=newline)
    return path.open("r", encoding="utf-8-sig", errors="replace", newline=newline)


def binary_problem(path: Path) -> str | None:
    """Why the file is not text (NUL bytes or mostly undecodable bytes at its start), or ``None``.

    A stream that breaks off within the bytes looked at is not judged here: reading it row by
    row keeps the rows before the cut.
    """
    gz = is_gzip(path)
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                head = f.read(SNIFF_BYTES)
        else:
            with path.open("rb") as f:
                head = f.read(SNIFF_BYTES)
    except FILE_ERRORS:
        return None
    text = head.decode("utf-8", errors="replace")
    if b"\x00" in head or text.count("\ufffd") > max(3, len(text) // 100):
        if path.suffix == ".gz" and not gz:
            return "unreadable file (named .gz but neither gzip-compressed nor text)"
        return (
            "unreadable file (binary data, not text)" if not gz else "unreadable file (gzip of binary data, not text)"
        )
    return None


def damage_reason(exc: BaseException, line: int) -> str:
    """The error row's reason for a file that breaks off or is corrupt after ``line`` lines."""
    what = "file truncated" if isinstance(exc, EOFError) else "unreadable file"
    return f"{what} after line {line} ({type(exc).__name__}: {exc})"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, (int, float)) else type(value).__name__


def numbered_rows(path: Path, positions: Iterable[int] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` of the rows at ``positions`` (all without) of a CSV or JSON-lines
    file, with error rows in place of the rows that cannot be read (see the module docstring).

    Rows are numbered from 0 (blank JSON lines do not count; an unreadable record does).
    JSON is decoded only for the rows kept. An error about the whole file comes with the row
    number -1 and is always yielded, whatever ``positions`` are.
    """
    problem = binary_problem(path)
    if problem:
        yield -1, {"__error__": problem, "__file__": True}
        return
    wanted = None if positions is None else set(positions)
    last = None if wanted is None else max(wanted, default=-1)
    is_csv = suffix_of(path).startswith(".csv")
    line = 0  # lines read completely
    try:
        with open_text(path, newline="" if is_csv else None) as f:
            if is_csv:
                allow_large_csv_fields()
                reader = csv.reader(f)
                header: list[str] | None = None
                k = -1
                while True:
                    try:
                        values = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        line = reader.line_num
                        if header is not None:
                            k += 1
                            if wanted is None or k in wanted:
                                yield k, {"__error__": f"unreadable CSV record (line {line}: {exc})"}
                        continue
                    line = reader.line_num
                    if header is None:
                        if values:
                            header = values
                        continue
                    if not values:
                        continue
                    k += 1
                    if wanted is not None and k not in wanted:
                        if k >= last:  # type: ignore[operator]
                            return
                        continue
                    if len(values) > len(header):
                        yield k, {"__error__": f"{len(values)} values, expected {len(header)} (line {line})"}
                    else:
                        row: dict[str, Any] = dict(zip(header, values, strict=False))
                        row.update({c: None for c in header[len(values) :]})  # short rows: missing values
                        yield k, row
                    if last is not None and k >= last:
                        return
            else:
                k = -1
                for lineno, text in enumerate(f, 1):
                    line = lineno
                    if not text.strip():
                        continue
                    k += 1
                    if wanted is not None and k not in wanted:
                        if k >= last:  # type: ignore[operator]
                            return
                        continue
                    yield k, _json_row(text, lineno)
                    if last is not None and k >= last:
                        return
    except FILE_ERRORS as exc:
        yield -1, {"__error__": damage_reason(exc, line), "__file__": True}


def _json_row(text: str, lineno: int) -> dict[str, Any]:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return {"__error__": f"invalid JSON (line {lineno}: {exc.msg})"}
    except (ValueError, RecursionError) as exc:
        return {"__error__": f"invalid JSON (line {lineno}: {type(exc).__name__})"}
    if not isinstance(row, dict):
        return {"__error__": f"not a JSON object (line {lineno}: {_json_kind(row)})"}
    return row


def count_rows(path: Path) -> int:
    """Rows of a CSV or JSON-lines file as :func:`numbered_rows` numbers them (non-blank JSON
    lines; CSV records), counted without decoding JSON; a damaged file counts the rows before
    the damage.
    """
    if binary_problem(path):
        return 0
    is_csv = suffix_of(path).startswith(".csv")
    n = 0
    try:
        with open_text(path, newline="" if is_csv else None) as f:
            if not is_csv:
                for text in f:
                    n += bool(text.strip())
                return n
            allow_large_csv_fields()
            reader = csv.reader(f)
            header = False
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return n
                except csv.Error:
                    n += header
                    continue
                if values:
                    n += header
                    header = True
    except FILE_ERRORS:
        return n


def suffix_of(path: Path) -> str:
    """The format suffix, lower case: ``.csv``, ``.jsonl.gz``, ..."""
    return "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
