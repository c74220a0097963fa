"""Arrow record batches written as NDJSON by pyarrow's compute kernels, a column at a time: no
Python code runs per row.

Each value becomes its JSON text in a string array of the same length, from the leaves up:
numbers by pyarrow's cast to string (the shortest text that parses back to the same double, so
rewards arrive bit-exact), strings escaped and quoted, lists joined with commas, structs and maps
as objects. A null field is left out of its object (the service reads an absent optional field as
absent, and refuses an absent required one, naming it); a null inside a list is ``null``.

A float that is NaN or infinite is refused before anything is sent (``InvalidInputError``, with
the path of the value: ``lists[3].items[1].reward``): JSON cannot carry it.

Imported only when pyarrow is installed.
"""

from __future__ import annotations

import json
from typing import Any, List, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt

from ._errors import InvalidInputError

TEXT = pa.large_string()


def _join(*parts: Any, null_handling: str = "emit_null") -> pa.Array:
    """Element-wise concatenation of string arrays and literals (``str``)."""
    values = [pa.scalar(part, TEXT) if isinstance(part, str) else part for part in parts]
    return pc.binary_join_element_wise(
        *values, pa.scalar("", TEXT), null_handling=null_handling, null_replacement=""
    )


class _NonFinite(Exception):
    """A NaN or infinite float at ``index`` of the array being written; ``suffix`` is the path
    below that array (``.items[1].reward``), completed as the error rises through the levels."""

    def __init__(self, index: int, value: float, suffix: str) -> None:
        super().__init__(index, value, suffix)
        self.index = index
        self.value = value
        self.suffix = suffix


def ndjson(batch: pa.RecordBatch, first_row: int = 0) -> bytes:
    """The rows of ``batch`` as NDJSON lines, one object per row with a field per column.
    ``first_row`` is the index of its first row in the whole input, for error paths."""
    if batch.num_rows == 0:
        return b""
    rows = pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema))
    try:
        lines = _join(*_parts(rows), "\n")
    except _NonFinite as exc:
        row = first_row + exc.index
        raise InvalidInputError(
            f"row {row} has {exc.value} at {exc.suffix.lstrip('.')}: JSON carries finite numbers only",
            code="invalid_value",
            path=f"lists[{row}]{exc.suffix}",
        ) from None
    # The lines are back to back in the array's data buffer, between its first and last offset.
    _, offsets_buffer, data = lines.buffers()
    offsets = pa.Array.from_buffers(pa.int64(), len(lines) + 1, [None, offsets_buffer], offset=lines.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return bytes(data[start:end].to_pybytes())


# The JSON text of an array's values, as parts to concatenate element-wise: literals (``str``)
# and string arrays. A value is null when any of its array parts is. Keeping the parts apart until
# a list or the line needs them whole lets one kernel call write a whole object, instead of one
# copy of every value per level.
Parts = List[Any]


def _text(array: pa.Array) -> pa.Array:
    """The JSON text of every value of ``array`` (null where the value is null)."""
    return _join(*_parts(array))


def _parts(array: pa.Array) -> Parts:
    kind = array.type
    if pt.is_dictionary(kind):
        return _parts(array.dictionary_decode())
    if pt.is_null(kind):
        return [pa.nulls(len(array), TEXT)]
    if pt.is_boolean(kind) or pt.is_integer(kind):
        return [pc.cast(array, TEXT)]
    if pt.is_floating(kind) or pt.is_decimal(kind):
        return [_numbers(array)]
    if pt.is_string(kind) or pt.is_large_string(kind) or _is_string_view(kind):
        return _quoted(pc.cast(array, TEXT))
    if pt.is_list(kind) or pt.is_large_list(kind) or pt.is_fixed_size_list(kind) or _is_list_view(kind):
        return _list(array)
    if pt.is_struct(kind):
        return _struct(array)
    if pt.is_map(kind):
        return _map(array)
    raise TypeError(
        f"a column of type {kind} cannot be written as JSON: convert it to numbers, strings, lists or structs"
    )


def _is_string_view(kind: pa.DataType) -> bool:
    check = getattr(pt, "is_string_view", None)
    return bool(check is not None and check(kind))


def _is_list_view(kind: pa.DataType) -> bool:
    check = getattr(pt, "is_list_view", None)
    large = getattr(pt, "is_large_list_view", None)
    return bool((check is not None and check(kind)) or (large is not None and large(kind)))


def _numbers(array: pa.Array) -> pa.Array:
    # Doubles as given; narrower floats widened first, so a float32 reward is the double it
    # equals (as Python's float() of it would be), not the shortest float32 text.
    values = pc.cast(array, pa.float64())
    finite = pc.is_finite(values)
    if not pc.all(finite).as_py() and values.null_count < len(values):
        index = pc.index(finite, False).as_py()
        raise _NonFinite(index, values[index].as_py(), "")
    text = pc.cast(values, TEXT)
    if pc.any(pc.equal(values, 0.0)).as_py():
        # pyarrow writes negative zero as "-0", which JSON parsers may read as the integer 0.
        text = pc.if_else(pc.equal(text, pa.scalar("-0", TEXT)), pa.scalar("-0.0", TEXT), text)
    return text


_CONTROL = [chr(code) for code in range(0x20)]


def _quoted(text: pa.Array) -> Parts:
    text = pc.replace_substring(text, "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    if pc.any(pc.match_substring_regex(text, "[\\x00-\\x1f]")).as_py():
        for char in _CONTROL:
            text = pc.replace_substring(text, char, json.dumps(char)[1:-1])  # \n, \u0001, ...
    return ['"', text, '"']


def _children(array: Any) -> Tuple[pa.Array, pa.Array]:
    """The offsets of ``array``'s lists, from 0, and the values they index (the values of a
    sliced array sliced alike; values behind null lists kept, so the offsets stay valid)."""
    if pt.is_fixed_size_list(array.type):
        size = array.type.list_size
        offsets = pa.array(range(0, (len(array) + 1) * size, size), pa.int64())
        return offsets, array.values.slice(array.offset * size, len(array) * size)
    raw = pc.cast(array.offsets, pa.int64())
    start = raw[0].as_py()
    return pc.subtract(raw, start), array.values.slice(start, raw[-1].as_py() - start)


def _owner(offsets: pa.Array, index: int) -> Tuple[int, int]:
    """The list that value ``index`` belongs to, and its position there."""
    row = pc.sum(pc.less_equal(offsets.slice(1), index)).as_py() or 0
    return row, index - offsets[row].as_py()


def _list(array: Any) -> Parts:
    if _is_list_view(array.type):
        array = array.cast(pa.large_list(array.type.value_type))
    offsets, values = _children(array)
    try:
        texts = _text(values)
    except _NonFinite as exc:
        row, position = _owner(offsets, exc.index)
        raise _NonFinite(row, exc.value, f"[{position}]{exc.suffix}") from None
    if texts.null_count:
        texts = pc.fill_null(texts, pa.scalar("null", TEXT))
    lists = pa.LargeListArray.from_arrays(offsets, texts, mask=array.is_null() if array.null_count else None)
    return ["[", pc.binary_join(lists, pa.scalar(",", TEXT)), "]"]


def _struct(array: Any) -> Parts:
    children: List[pa.Array] = array.flatten()  # sliced like the struct, its nulls included
    if not children:
        return [pc.if_else(array.is_valid(), pa.scalar("{}", TEXT), pa.scalar(None, TEXT))]
    fields: List[Parts] = []
    for spec, child in zip(array.type, children):
        try:
            fields.append(_parts(child))
        except _NonFinite as exc:
            raise _NonFinite(exc.index, exc.value, f".{spec.name}{exc.suffix}") from None
    keys = [json.dumps(spec.name, ensure_ascii=False) for spec in array.type]
    if array.null_count == 0 and all(_never_null(parts) for parts in fields):
        # Every field of every row is present: the object is one concatenation.
        parts: Parts = ["{"]
        for index, (key, value) in enumerate(zip(keys, fields)):
            parts.append(f"{',' if index else ''}{key}:")
            parts.extend(value)
        parts.append("}")
        return parts
    # Some fields are null: they are left out of their objects. Each field is written with a
    # leading comma (null when the field is), the present ones joined, the first comma dropped.
    pieces = [_join(f",{key}:", *value) for key, value in zip(keys, fields)]
    body = pc.utf8_slice_codeunits(_join(*pieces, null_handling="replace"), 1)
    text = _join("{", body, "}")
    if array.null_count:
        text = pc.if_else(array.is_valid(), text, pa.scalar(None, TEXT))
    return [text]


def _never_null(parts: Parts) -> bool:
    return all(isinstance(part, str) or part.null_count == 0 for part in parts)


def _map(array: Any) -> Parts:
    if not (pt.is_string(array.type.key_type) or pt.is_large_string(array.type.key_type)):
        raise TypeError(f"a map with {array.type.key_type} keys cannot be a JSON object: its keys must be strings")
    offsets, entries = _children(array)
    keys, items = entries.flatten()
    try:
        values = _text(items)
    except _NonFinite as exc:
        row, _ = _owner(offsets, exc.index)
        raise _NonFinite(row, exc.value, f".{keys[exc.index].as_py()}{exc.suffix}") from None
    pairs = _join(*_quoted(pc.cast(keys, TEXT)), ":", pc.fill_null(values, pa.scalar("null", TEXT)))
    lists = pa.LargeListArray.from_arrays(offsets, pairs, mask=array.is_null() if array.null_count else None)
    return ["{", pc.binary_join(lists, pa.scalar(",", TEXT)), "}"]
