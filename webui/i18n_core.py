"""Core's own sentences in 简体中文: the settings check, the memory estimate and the dataset's problem
kinds.

core/ speaks English (the CLI, logs and error files stay in one language); the page translates what
core says here, at the last moment. A sentence is matched as a whole against the patterns below and
rebuilt from its parts; a setting's English label inside it becomes the setting's translated label.
A sentence no pattern knows is shown as core wrote it (new messages stay readable until they get
a pattern; tests/webui/test_i18n.py checks that the settings check's own sentences all have one).
"""
from __future__ import annotations

import re

# (English sentence as a regular expression with named parts, 中文 with the same parts)
MESSAGES = [
    (r"(?P<label>.+) must be at least (?P<n>\S+), got (?P<v>.+)", "{label}至少为 {n}，现在是 {v}"),
    (r"(?P<label>.+) must be at most (?P<n>\S+), got (?P<v>.+)", "{label}最多为 {n}，现在是 {v}"),
    (r"(?P<label>.+) must be a finite number, got (?P<v>.+)", "{label}必须是有限的数，现在是 {v}"),
    (r"(?P<label>.+) must be one of (?P<c>.+); got (?P<v>.+)", "{label}只能是 {c} 之一，现在是 {v}"),
    (r"(?P<label>.+) must be (?P<t>a whole number|a number|true or false|text|a mapping \(key: value\)|a list of text lines), "
     r"got (?P<v>.+)", "{label}必须是{t}，现在是 {v}"),
    (r"no base model chosen", "没有选择基础模型"),
    (r"contains a NUL character", "含有 NUL 字符"),
    (r"no dataset chosen", "没有选择数据集"),
    (r"(?P<v>.+) is a web address, not a file", "{v} 是网址，不是文件"),
    (r"file not found: (?P<v>.+)", "找不到文件：{v}"),
    (r"(?P<v>.+) is a folder, not a file", "{v} 是文件夹，不是文件"),
    (r"alpha (?P<a>\S+) is over 16x the rank (?P<r>\S+); updates will be huge", "alpha {a} 超过秩 {r} 的 16 倍，更新会过大"),
    (r"no layers chosen", "没有选择层"),
    (r"(?P<v>.+) is not a comma-separated list of layer names", "{v} 不是用逗号分隔的层名列表"),
    (r"(?P<n>\d+) probe prompts; at most 10", "{n} 个测试问题；最多 10 个"),
    (r"must be a non-empty question of at most 2000 characters", "必须是非空、最多 2000 个字符的问题"),
    (r"is not a field Danlu expects", "不是 Danlu 使用的字段"),
    (r"unknown setting", "未知设置"),
    (r"unknown setting; ignored", "未知设置；已忽略"),
    # hints
    (r"rank 8-16 suits most uses", "秩取 8-16 适合大多数用途"),
    (r"use (?P<n>\S+) or more", "使用 {n} 或更大的值"),
    (r"write it like: (?P<v>.+)", "写法如：{v}"),
    (r"did you mean '(?P<v>.+)'\?", "是不是想写 '{v}'？"),
    (r"see (?P<v>`.+`) for every setting", "所有设置见 {v}"),
    (r"pick a model preset, a hub id like (?P<v>\S+), or a local folder", "选择一个模型预设、Hub ID（如 {v}）或本地文件夹"),
    (r"type the name again", "请重新输入名称"),
    (r"upload a file in the Dataset tab or set dataset: (?P<v>\S+)", "在“数据集”页上传文件，或设置 dataset: {v}"),
    (r"download it first, then point to the downloaded file \(Danlu never fetches data URLs\)",
     "先下载，再指向下载好的文件（Danlu 从不抓取数据网址）"),
    (r"check the path; relative paths count from the config file's folder", "检查路径；相对路径从配置文件所在的文件夹算起"),
    (r"point to one data file", "指向一个数据文件"),
    (r"use about twice the rank", "使用约为秩两倍的值"),
    (r"use all-linear", "使用 all-linear"),
    (r"use all-linear, or e\.g\. (?P<v>\S+)", "使用 all-linear，或例如 {v}"),
    (r"keep a few questions that show what the model should learn", "保留几个能体现模型该学什么的问题"),
    (r"keys are the expected names \((?P<v>.+)\)", "键应为 Danlu 使用的名称（{v}）"),
    # the memory estimate (core.memory.fit_advice)
    (r"Fits: about (?P<n>\S+) GiB needed of (?P<f>\S+) GiB free\.", "放得下：大约需要 {n} GiB，可用 {f} GiB。"),
    (r"Will probably NOT fit: about (?P<n>\S+) GiB needed but only (?P<f>\S+) GiB free\. Try: (?P<steps>.+)\.",
     "很可能放不下：大约需要 {n} GiB，但只有 {f} GiB 可用。可以试试：{steps}。"),
]
# what a cleaning operation did (core.data.ops summaries); "; nothing changed, no new version" and
# "undid: " are added around them (core.data.store)
N = r"(?P<{}>[\d,]+)"
SUMMARIES = [
    (rf"removed {N.format('n')} duplicate rows? \(of {N.format('m')}\)", "删除了 {n} 行重复的行（共 {m} 行）"),
    (rf"removed {N.format('n')} near-duplicate rows? \(of {N.format('m')}\)", "删除了 {n} 行近似重复的行（共 {m} 行）"),
    (rf"dropped {N.format('n')} rows? with missing or empty text \(of {N.format('m')}\)",
     "删除了 {n} 行文本缺失或为空的行（共 {m} 行）"),
    (rf"dropped {N.format('n')} rows? with problems \((?P<parts>.+)\) \(of {N.format('m')}\)",
     "删除了 {n} 行有问题的行（{parts}；共 {m} 行）"),
    (rf"dropped {N.format('n')} rows? with problems \(of {N.format('m')}\)", "删除了 {n} 行有问题的行（共 {m} 行）"),
    (rf"trimmed spaces in {N.format('a')} texts? in {N.format('b')} rows? \(of {N.format('m')}\)",
     "去掉了 {b} 行中 {a} 段文本首尾的空格（共 {m} 行）"),
    (rf"merged {N.format('a')} same-role turns? in {N.format('b')} rows? \(of {N.format('m')}\)",
     "合并了 {b} 行中 {a} 处同一角色的相邻轮次（共 {m} 行）"),
    (r"nothing to merge: (?P<f>\S+) rows have no turns", "没有可合并的：{f} 格式的行没有对话轮次"),
    (rf"dropped {N.format('n')} rows? longer than {N.format('t')} tokens \(of {N.format('m')}\)(?P<note>.*)",
     "删除了 {n} 行超过 {t} 个 token 的行（共 {m} 行）{note}"),
    (rf"shortened the answer of {N.format('a')} rows? to fit {N.format('t')} tokens; dropped {N.format('b')} whose "
     rf"question alone is too long \(of {N.format('m')}\)(?P<note>.*)",
     "缩短了 {a} 行的回答以放进 {t} 个 token；删除了 {b} 行仅问题就太长的行（共 {m} 行）{note}"),
]
NOTE = (re.compile(rf"; {N.format('n')} row\(s\) with problems were kept unmeasured"), "；{n} 行有问题的行未测量，已保留")
NOTHING = "; nothing changed, no new version"
UNDID = "undid: "

STEPS = {  # the memory estimate's suggestions, joined by "; "
    "lower the batch size per device or the maximum length, or turn on gradient checkpointing":
        "调小每个设备的批大小或最大长度，或打开梯度检查点",
    "use 4bit quantization or a smaller model": "使用 4bit 量化或更小的模型",
}
# the dataset's kinds of problems (core.data.issues.TITLES), shown as "By type"
TITLES = {
    "empty": "没有数据", "refused": "不是数据文件", "encoding": "不是 UTF-8 文本", "too_big": "文件太大",
    "unknown_format": "无法识别格式", "header": "表头有误", "read_error": "无法读取",
    "bad_json": "JSON 格式错误", "nan": "NaN 或 Infinity", "duplicate_key": "重复的键",
    "not_object": "记录不是对象", "wrong_type": "类型错误", "missing_field": "缺少字段",
    "empty_text": "文本为空", "unknown_role": "未知角色", "turn_order": "角色没有交替",
    "bad_chars": "禁用字符", "line_too_long": "记录太长", "ragged": "列数不对",
    "duplicates": "重复的行", "special_tokens": "文本中有特殊标记", "control_chars": "控制字符",
    "blank_lines": "空行", "utf16": "UTF-16 文本", "ignored_columns": "未使用的列",
    "column_guess": "自动对应的列", "coerced": "按文本读取的值", "few_rows": "行数很少",
    "too_long": "超过最大长度", "no_target": "没有可学习的内容", "header_spaces": "表头有空格",
}
_COMPILED = [(re.compile(rf"^{pattern}$", re.DOTALL), zh) for pattern, zh in MESSAGES]
_SUMMARIES = [(re.compile(rf"^{pattern}$", re.DOTALL), zh) for pattern, zh in SUMMARIES]
_BY_TITLE = {}  # English kind title -> code, filled on first use (core.data.issues.TITLES)


def core_text(text: str, lang: str, labels: dict[str, str] | None = None) -> str:
    """`text` (one of core's sentences) in `lang`; `labels` maps English setting labels to the
    translated ones. Unknown sentences and English come back as they are."""
    if not text or not lang.startswith("zh"):
        return text
    for rx, zh in _COMPILED:
        m = rx.match(text.strip())
        if m:
            parts = m.groupdict()
            if "label" in parts and labels:
                parts["label"] = labels.get(parts["label"], parts["label"])
            if "steps" in parts:
                parts["steps"] = "；".join(STEPS.get(s, s) for s in parts["steps"].split("; "))
            return zh.format(**parts)
    return text


def knows(text: str) -> bool:
    """Does a pattern cover this English sentence?"""
    return any(rx.match(text.strip()) for rx, _ in _COMPILED)


def title(code: str, english: str, lang: str) -> str:
    """A dataset problem kind's title in `lang`."""
    return TITLES.get(code, english) if lang.startswith("zh") else english


def clean_summary(text: str, lang: str) -> str:
    """What a cleaning operation or Undo did (core's summary) in `lang`."""
    if not text or not lang.startswith("zh"):
        return text
    prefix = "已撤销：" if text.startswith(UNDID) else ""
    body = text[len(UNDID):] if prefix else text
    suffix = "；没有变化，未生成新版本" if body.endswith(NOTHING) else ""
    body = body[:-len(NOTHING)] if suffix else body
    for rx, zh in _SUMMARIES:
        m = rx.match(body)
        if m:
            parts = m.groupdict()
            if parts.get("note"):
                nm = NOTE[0].fullmatch(parts["note"])
                parts["note"] = NOTE[1].format(n=nm["n"]) if nm else parts["note"]
            if parts.get("parts"):
                parts["parts"] = "；".join(_kind_count(p, lang) for p in parts["parts"].split("; "))
            return prefix + zh.format(**{k: v or "" for k, v in parts.items()}) + suffix
    return text


def _kind_count(part: str, lang: str) -> str:
    """"3 malformed JSON" -> "3 JSON 格式错误"; "1 unreadable" -> "1 无法读取的行"."""
    if not _BY_TITLE:
        from core.data.issues import TITLES as EN
        _BY_TITLE.update({v: k for k, v in EN.items()})
    n, _, kind = part.partition(" ")
    if kind == "unreadable":
        return f"{n} 无法读取的行"
    code = _BY_TITLE.get(kind)
    return f"{n} {title(code, kind, lang)}" if code else part
