"""CSV/TSV, Parquet and XLSX records. Every CSV cell stays text ("NA" stays "NA", "007" stays
"007"); errors name the record and the line it starts on, because quoted cells may span lines.
Parquet is read by row group and XLSX with openpyxl in read-only mode, so memory stays bounded.
"""
from __future__ import annotations

import csv
import json

from core.data.issues import Collector, short
from core.data.readers import JSON_CELL_COLUMNS, ReadStats, decode_stop, open_text, make_decoder, plain_json_error

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
            col.report("header_spaces", f"column {i + 1} is named {short(raw)} with spaces around it; it is read as {short(name)}",
                       "nothing to do, unless the spaces matter", line=line)
        if not name:
            col.report("ignored_columns", f"column {i + 1} has no name in the header; its values are not used",
                       "give the column a name in the first row", line=line)
            names.append(None)
            continue
        if name in seen:
            col.report("header", f"the column name {short(name)} appears twice (columns {seen[name] + 1} and {i + 1})",
                       "rename one of them so each column has its own name", line=line)
            names.append(None)
            continue
        seen[name] = i
        names.append(name)
    st.columns = [n for n in names if n]
    return names


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
                col.report("line_too_long", "a cell is too long, or a quote (\") is never closed",
                           "check for a missing closing quote around this line", line=line)
            else:
                col.report("read_error", f"the CSV cannot be read here: {msg}", "check quotes and special characters on this line",
                           line=line)
            st.stopped = f"reading stopped at line {line}"
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
        width = len(names)
        if len(row) != width:
            if len(row) > width and not any(c.strip() for c in row[width:]):
                row = row[:width]  # trailing empty cells (a spreadsheet's extra commas) hold nothing
            else:
                newline_inside = any("\n" in c for c in row)
                col.report("ragged", f"the record has {len(row)} fields, the header has {width}",
                           "check for a missing closing quote (\") in this record" if newline_inside or len(row) < width
                           else f"put quotes around cells that contain the delimiter {sn.delimiter!r}",
                           line=start, record=record, value=sn.delimiter.join(row))
                continue
        rec = {}
        bad = False
        for name, cell in zip(names, row):
            if name is None:
                continue
            if (name in json_cols or name.lower() in json_cols) and cell.lstrip().startswith("["):
                try:
                    cell = dec.decode(cell)
                except json.JSONDecodeError as e:
                    col.report("bad_json", f"the cell is not valid JSON: {plain_json_error(e.msg)}",
                               "write the turns as a JSON list, or use one row per question and answer",
                               field=name, line=start, record=record, value=cell)
                    bad = True
                seen.clear()
            rec[name] = cell
        if not bad:
            yield start, record, rec, None


# --- Parquet, XLSX --------------------------------------------------------------------------------
def read_parquet(path, col, st):
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(path)
        st.columns = list(pf.schema_arrow.names)
    except Exception as e:  # pyarrow raises several types for damaged files
        col.report("read_error", f"the file is not a valid Parquet file (footer unreadable: {str(e)[:120]})",
                   "export it again, or save the data as CSV UTF-8 or JSONL")
        st.stopped = "the file could not be read"
        return
    try:
        for batch in pf.iter_batches(batch_size=2048):
            for row in batch.to_pylist():
                st.rows += 1
                yield None, st.rows, row, None
    except Exception as e:
        col.report("read_error", f"the Parquet data is damaged after record {st.rows}: {str(e)[:120]}", "export it again",
                   record=st.rows + 1)
        st.stopped = "the rest of the file could not be read"


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
        col.report("read_error", f"the Excel workbook cannot be opened ({type(e).__name__})", "save it again from Excel, or as CSV UTF-8")
        st.stopped = "the file could not be read"
        return
    try:
        sheets = wb.worksheets
        if len(sheets) > 1:
            col.report("ignored_columns", f"only the first sheet ({sheets[0].title!r}) is read; {len(sheets) - 1} other sheet(s) are ignored",
                       "put all examples on the first sheet")
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
                col.report("ignored_columns", f"column(s) {', '.join(map(str, stray))} hold values but have no name in the "
                           "header row; those values are not used", "give the column a name in the first row",
                           line=r, record=record)
            yield r, record, {n: c for n, c in zip(names, cells + [""] * (len(names) - len(cells))) if n}, None
    finally:
        wb.close()
        fh.close()
