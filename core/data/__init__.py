"""Datasets: import any common file, check it (every problem with its line), clean it, look inside.

Plain functions with plain inputs and outputs (paths, dicts, lists), for the Dataset tab and the
CLI alike. Nothing here imports torch or gradio; transformers only inside the functions that
need a tokenizer (insight with a model, filter-long/truncate-long).

Training (the recipe's contract)
    load_examples(path, fmt="auto", column_map=None) -> LoadedData(format, examples, rows)
        examples are {"messages": [{"role", "content"}, ...]} or {"text": "..."}, or for format "preference"
        {"prompt": [turns ending with a user turn], "chosen": [assistant turns], "rejected": [assistant turns]}
        (core/data/pairs.py; pairs.to_messages(ex) is prompt + chosen, what a supervised run learns); any problem raises
        core.errors.InputError listing them (file:line field: message — fix).

Checking a file (no workspace needed)
    check_file(path, fmt="auto", column_map=None, display_name=None) -> Report
        .ok, .format, .rows, .usable, .summary() -> Msg, .human() -> ["FILE:LINE field: message — fix", ...]
        .to_dict() -> {ok, file, format, rows, usable_rows, kind, encoding, delimiter, columns, column_map, duplicates,
                       problems: [{line, record, field, message, hint, message_msg, hint_msg, code, value}],
                       warnings: [same], problem_count, counts: {code: {count, title, warning}}, stopped, stopped_msg}
        (message/hint in English; *_msg their codes for the page, core.messages)
        Only the first 20 problems of each type are listed; `counts` has them all.
    insight(path, fmt="auto", column_map=None, model=None, max_seq_length=1024, train_on_inputs=False, ws=None,
            preview=0) -> dict
        {ok, format, rows, usable_rows, summary, tokenizer, exact, measured_rows, sampled,
         lengths: {min, max, mean, median, p95}, histogram: {edges: [...], counts: [...]}, max_seq_length,
         over_max (rows training would cut), no_target (rows with nothing left to learn), text_chunks,
         preview: {index, line, segments: [{text, trained, truncated}], tokens, trained_tokens, truncated},
         template_error: None or {line, record, message, hint, count} (rows the model's template refuses),
         download: path}
        With a model the tokenizer and chat template are the ones training uses (core.data.render);
        without, lengths are estimates (exact=False) and the preview is ChatML.
    peek_rows(path, start=1, count=50) -> [{row, line, record}]      a page of rows as they are in the file

Cleaning a file (no workspace needed)
    run_ops(src, [(op, params), ...], out, fmt="auto", column_map=None, val_out=None, model=None,
            max_seq_length=1024, ws=None) -> [{op, summary, removed, changed, touched}]
    operations: dedupe, drop-empty, drop-invalid, trim, merge-turns, filter-long, truncate-long, replace, edit,
                delete, redact, split; for pairs dedupe-prompt, drop-identical, swap
                                                           (parameters: see core/data/clean.py, OPS)

The dataset store (in the workspace, ws.datasets)
    import_file(ws, src_path, display_name) -> info        copies the bytes first; the same bytes again -> existing
                                                           (upload=True: a file dropped on the page, also by name)
    check_upload_name(name)                                what the page's upload takes by name (UPLOAD_SUFFIXES)
    list_datasets(ws) -> [info, ...]                       newest first
    get_dataset(ws, id) -> info
        info = {id, display_name, kind, size, created, format, column_map, original_path, original_sha256,
                current_path, current_sha256, version, versions: [{sha256, path, op, params, summary, created,
                validation?}], can_undo}
    set_format(ws, id, fmt="auto", column_map=None) -> info
    check_dataset(ws, id) -> report dict (as Report.to_dict(), cached per version and format settings)
    apply_op(ws, id, op, model=None, max_seq_length=1024, **params) -> {summary, summary_msg, changed, result, dataset: info}
        e.g. apply_op(ws, id, "dedupe") -> {"summary": "removed 12 duplicate rows (of 1,000)", ...}
    undo(ws, id) -> {summary, summary_msg, dataset: info}
    insight_dataset(ws, id, model=None, max_seq_length=1024, preview=0) -> insight dict of the current version
    dataset_rows(ws, id, start=1, count=50) -> [{row, line, record}]   a page of rows (row = what edit/delete take)
    current_version_path(ws, id) -> Path                   immutable file: the current version's rows
    training_path(ws, id) -> Path                          what TrainConfig.dataset points at: the current version
                                                           less the rows a review marked Drop
    training_settings(ws, id) -> {dataset, dataset_format, column_map}
    export_path(ws, id) -> Path                            the file to offer for download
Reviewing (the Review tab and `python app.py review`): core/data/review.py (find rows), review_actions.py
(marks, edits, sensitive-data scan and redaction), marks.py / marks_csv.py (marks as versions, CSV),
diff.py (what changed between two versions), pii.py (the scanner), conversation.py (a row as turns).

Errors are core.errors.InputError (bad input, with problems) or NotFound (unknown id).
"""
from core.data.check import Report, check_file, iter_examples, peek_rows, resolve_format  # noqa: F401
from core.data.clean import run_ops  # noqa: F401
from core.data.formats import FORMAT_NAMES, detect_format, to_example  # noqa: F401
from core.data.insight import insight  # noqa: F401
from core.data.loader import LoadedData, load_examples  # noqa: F401
from core.data.store import (apply_op, check_dataset, check_upload_name, current_version_path,  # noqa: F401
                             dataset_rows, export_path, get_dataset, import_file, insight_dataset, list_datasets, set_format, training_path,
                             training_settings, undo)
