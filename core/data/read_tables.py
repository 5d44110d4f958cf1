"""CSV/TSV, Parquet and XLSX records. Every CSV cell stays text ("NA" stays "NA", "007" stays
"007"); errors name the record and the line it starts on, because quoted cells may span lines.
Parquet is read by row group and XLSX with openpyxl in read-only mode, so memory stays bounded.
"""
from __future__ import annotations

import csv
import json

from core.data.issues import Collector, short
from core.data.readers import (JSON_CELL_COLUMNS, ReadStats, decode_stop, open_text, make_decoder, plain_json_error,
                                report_seen)
from core.messages import Msg

def read_csv(path, sn, col, st, cap, column_map):
    csv.field_size_limit(max(cap, 131072))
    f = open_text(path, sn.encoding, newline="")
    try:
        yield from _csv_rows(f, sn, col, st, column_map)
    except UnicodeDecodeError:
        decode_stop(col, st, path, sn)
    finally:
        f.close()


def _header(row: list[str], line: int, col: Collector, st: ReadStats) -> list[str | None]:
    names: list[str | None] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(row):
        name = raw.strip().lstrip("\ufeff")
        if name != raw:
            col.report("header_spaces", Msg("read.header_spaces", n=i + 1, raw=short(raw), name=short(name)),
                       Msg("read.header_spaces.hint"), line=line)
        if not name:
            col.report("ignored_columns", Msg("read.no_name", n=i + 1), Msg("read.name_column.hint"), line=line)
            names.append(None)
            continue
        if name in seen:
            col.report("header", Msg("read.name_twice", name=short(name), a=seen[name] + 1, b=i + 1),
                       Msg("read.name_twice.hint"), line=line)
            names.append(None)
            continue
        seen[name] = i
        names.append(name)
    st.columns = [n for n in names if n]
    return names


def _fit_width(row: list, width: int, delimiter: str, col, start: int, record: int):
    """The row with the header's number of cells, or None (reported) when it has another number."""
    if len(row) == width:
        return row
    if len(row) > width and not any(c.strip() for c in row[width:]):
        return row[:width]  # trailing empty cells (a spreadsheet's extra commas) hold nothing
    newline_inside = any("\n" in c for c in row)
    col.report("ragged", Msg("read.ragged", n=len(row), width=width),
               Msg("read.ragged_quote.hint") if newline_inside or len(row) < width
               else Msg("read.ragged_delimiter.hint", delimiter=repr(delimiter)),
               line=start, record=record, value=delimiter.join(row))
    return None


def _csv_rows(f, sn, col, st, column_map):
    reader = csv.reader(f, delimiter=sn.delimiter)
    from core.data.formats import SYNONYMS
    cmap = column_map or {}
    # Cells of conversation columns hold JSON lists; no other cell is ever parsed (an answer may
    # itself be JSON text and must stay text).
    json_cols = {cmap.get(c, c) for c in JSON_CELL_COLUMNS} | {s for c in JSON_CELL_COLUMNS for s in SYNONYMS[c]}
    seen: list = []
    dec = make_decoder(seen)
    names = None
    prev = 0
    record = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            line = reader.line_num
            msg = str(e)
            if "field larger than field limit" in msg:
                col.report("line_too_long", Msg("read.cell_too_long"), Msg("read.cell_too_long.hint"), line=line)
            else:
                col.report("read_error", Msg("read.csv_error", error=msg), Msg("read.csv_error.hint"), line=line)
            st.stopped = Msg("read.stopped_at", line=line)
            return
        start, prev = prev + 1, reader.line_num
        if not row or not any(c.strip() for c in row):
            if names is not None:
                st.blank += 1
            continue
        if names is None:
            names = _header(row, start, col, st)
            continue
        record += 1
        st.rows += 1
        row = _fit_width(row, len(names), sn.delimiter, col, start, record)
        if row is None:
            continue
        rec = {}
        bad = flag = False
        for name, cell in zip(names, row):
            if name is None:
                continue
            if (name in json_cols or name.lower() in json_cols) and cell.lstrip().startswith("["):
                try:
                    cell = dec.decode(cell)
                except json.JSONDecodeError as e:
                    seen.clear()
                    col.report("bad_json", Msg("read.cell_json", error=plain_json_error(e.msg)), Msg("read.cell_json.hint"),
                               field=name, line=start, record=record, value=cell)
                    bad = True
                if seen:  # as in a JSONL row: NaN or a number too long to read leave the row out, a key twice flags it
                    unusable = report_seen(col, seen, start, record)
                    bad, flag = bad or unusable, flag or not unusable
            rec[name] = cell
        if not bad:
            st.flag = flag
            yield start, record, rec, None


# --- Parquet, XLSX --------------------------------------------------------------------------------
def read_parquet(path, col, st):
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(path)
        st.columns = list(pf.schema_arrow.names)
    except Exception as e:  # pyarrow raises several types for damaged files
        col.report("read_error", Msg("read.bad_parquet", error=str(e)[:120]), Msg("read.bad_parquet.hint"))
        st.stopped = Msg("read.file_unreadable")
        return
    try:
        for batch in pf.iter_batches(batch_size=2048):
            bad = _non_finite(batch)
            for i, row in enumerate(batch.to_pylist()):
                st.rows += 1
                for name, what in bad.get(i, ()):  # as NaN in a JSONL row: the row is not used
                    col.report("nan", Msg("read.nan", what=what), Msg("read.nan_column.hint"), field=name, record=st.rows)
                if i not in bad:
                    yield None, st.rows, row, None
    except Exception as e:
        col.report("read_error", Msg("read.parquet_damaged", n=st.rows, error=str(e)[:120]), Msg("read.export_again.hint"),
                   record=st.rows + 1)
        st.stopped = Msg("read.rest_unreadable")


def _non_finite(batch) -> dict[int, list[tuple[str, str]]]:
    """The rows of a Parquet batch holding NaN or ±Infinity (pandas writes a missing number as NaN), each with
    its columns and what they hold: JSON has no such value, so no version Danlu writes (JSONL) could keep it."""
    import numpy as np
    import pyarrow as pa
    out: dict[int, list[tuple[str, str]]] = {}
    for name, column in zip(batch.schema.names, batch.columns):
        if pa.types.is_floating(column.type):  # the usual case, without a Python loop
            values = column.fill_null(0).to_numpy(zero_copy_only=False)
            rows = [(int(i), float(values[i])) for i in np.flatnonzero(~np.isfinite(values))]
        elif _holds_floats(column.type):  # a list or struct of numbers: looked at value by value
            rows = [(i, x) for i, v in enumerate(column.to_pylist()) for x in [_first_non_finite(v)] if x is not None]
        else:
            continue
        for i, x in rows:
            out.setdefault(i, []).append((name, "NaN" if x != x else "Infinity" if x > 0 else "-Infinity"))
    return out


def _holds_floats(t) -> bool:
    import pyarrow as pa
    if pa.types.is_floating(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _holds_floats(t.value_type)
    return pa.types.is_struct(t) and any(_holds_floats(t.field(k).type) for k in range(t.num_fields))


def _first_non_finite(v):
    if isinstance(v, float):
        return v if v != v or v in (float("inf"), float("-inf")) else None
    items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
    return next((x for x in map(_first_non_finite, items) if x is not None), None)


def _cell(v, st: ReadStats) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    st.coerced += 1
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def read_xlsx(path, col, st):
    import openpyxl
    fh = open(path, "rb")  # a file object: openpyxl refuses paths whose extension is not .xlsx
    try:
        wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for damaged workbooks
        fh.close()
        col.report("read_error", Msg("read.bad_excel", error=type(e).__name__), Msg("read.bad_excel.hint"))
        st.stopped = Msg("read.file_unreadable")
        return
    try:
        sheets = wb.worksheets
        if len(sheets) > 1:
            col.report("ignored_columns", Msg("read.first_sheet", name=repr(sheets[0].title), n=len(sheets) - 1),
                       Msg("read.first_sheet.hint"))
        names = None
        record = 0
        for r, values in enumerate(sheets[0].iter_rows(values_only=True), 1):
            cells = [_cell(v, st) for v in values]
            if not any(c.strip() for c in cells):
                if names is not None:
                    st.blank += 1
                continue
            if names is None:
                names = _header(cells, r, col, st)
                st.coerced = 0
                continue
            record += 1
            st.rows += 1
            stray = [i + 1 for i in range(len(names), len(cells)) if cells[i].strip()]
            if stray:
                col.report("ignored_columns", Msg("read.stray_cells", columns=", ".join(map(str, stray))),
                           Msg("read.name_column.hint"), line=r, record=record)
            yield r, record, {n: c for n, c in zip(names, cells + [""] * (len(names) - len(cells))) if n}, None
    finally:
        wb.close()
        fh.close()
