"""Core's own sentences in 简体中文: the settings check, the memory estimate, the dataset's problem
kinds and their fixes, and what cleaning did.

core/ speaks English (the CLI, logs and error files stay in one language); the page translates what
core says here, at the last moment. A sentence is matched as a whole against the patterns below and
rebuilt from its parts; a setting's English label inside it becomes the setting's translated label.
A sentence no pattern knows is shown as core wrote it (new messages stay readable until they get
a pattern; tests/webui/test_i18n.py checks that the settings check's own sentences all have one).
"""
from __future__ import annotations

import re

from core.data.issues import TITLES as EN_TITLES

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
    # a path refused at the page's trust boundary (core.paths, core.trust)
    (r"(?P<v>.+) is outside the workspace \((?P<ws>.+)\) and the allowed folders", "{v} 不在工作区（{ws}）和允许的文件夹之内"),
    (r"(?P<v>.+) is a link that points outside the workspace \((?P<t>.+)\)", "{v} 是指向工作区之外（{t}）的链接"),
    (r"(?P<v>.+) contains '\.\.'", "{v} 含有 '..'"),
    (r"(?P<v>.+) is a network share path", "{v} 是网络共享路径"),
    (r"(?P<v>.+) is a Windows path", "{v} 是 Windows 路径"),
    (r"(?P<v>.+) contains a backslash", "{v} 含有反斜杠"),
    (r"(?P<v>.+) is a web address, not a file on this computer", "{v} 是网址，不是这台电脑上的文件"),
    (r"not found: (?P<v>.+)", "找不到：{v}"),
    (r"(?P<v>.+) is not a file", "{v} 不是文件"),
    (r"(?P<v>.+) is not a folder", "{v} 不是文件夹"),
    (r"no path given", "没有给出路径"),
    (r"expected a path, got (?P<t>.+)", "应为路径，现在是 {t}"),
    (r"the page may use files in these folders only: (?P<roots>.+)\. Upload the file in the Dataset tab, or add its "
     r"folder to allowed_roots in (?P<f>\S+)",
     "网页只能使用这些文件夹中的文件：{roots}。请在“数据集”页上传文件，或把它所在的文件夹加入 {f} 的 allowed_roots"),
    (r"(?P<sub>.+); the page may use files in these folders only: (?P<roots>.+)\. Upload the file in the Dataset tab, "
     r"or add its folder to allowed_roots in (?P<f>\S+)",
     "{sub}；网页只能使用这些文件夹中的文件：{roots}。请在“数据集”页上传文件，或把它所在的文件夹加入 {f} 的 allowed_roots"),
    (r"download it first, then upload the file \(Danlu never fetches URLs typed into a path field\)",
     "先下载，再上传文件（Danlu 从不抓取路径栏里填写的网址）"),
    (r"copy the file into the workspace and use that", "把文件复制到工作区再使用"),
    (r"copy the file into the workspace instead of linking to it", "把文件复制到工作区，不要用链接"),
    (r"use a path on this machine, e\.g\. (?P<v>\S+)", "使用这台机器上的路径，例如 {v}"),
    (r"separate folders with /", "用 / 分隔文件夹"),
    (r"give the path from the workspace folder without '\.\.', or upload the file", "从工作区文件夹写起、不要用 '..'，或上传文件"),
    (r"type the path again", "请重新输入路径"),
    (r"check the spelling; relative paths count from the workspace folder", "检查拼写；相对路径从工作区文件夹算起"),
    (r"point to one file", "指向一个文件"),
    (r"point to a folder", "指向一个文件夹"),
    # a cleaning operation refused (core.data.clean)
    (r"(?P<f>.+) has (?P<n>[\d,]+) unreadable row\(s\); fix them, or run drop-invalid first to remove them",
     "{f} 有 {n} 行无法读取；请修改，或先运行“删除有问题的行”把它们移除"),
    (r"(?P<f>.+) cannot be read", "{f} 无法读取"),
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
    # the memory plan and the sharding choice (core.memory_plan), on the page and in the training log
    (r"Memory plan: as set, every layer keeps its activations \(about (?P<n>\S+) GiB\)\.",
     "显存方案：按设置，每一层都保留激活（约 {n} GiB）。"),
    (r"Memory plan: lowest memory, as set: every layer is recomputed in the backward pass (?P<where>.+) "
     r"\(about (?P<n>\S+) GiB\)\.", "显存方案：按设置使用最低显存：每一层在反向传播时重新计算，{where}（约 {n} GiB）。"),
    (r"Memory plan: every layer keeps its activations, nothing is recomputed \(the fastest plan\): about (?P<n>\S+) GiB "
     r"of (?P<f>\S+) GiB free\.", "显存方案：每一层都保留激活，不重新计算（最快的方案）：约需 {n} GiB，可用 {f} GiB。"),
    (r"Memory plan: the last (?P<k>\d+) of (?P<L>\d+) layers keep their activations and the other (?P<r>\d+) are "
     r"recomputed in the backward pass, as much as (?P<f>\S+) GiB free allows \(about (?P<n>\S+) GiB\)\.",
     "显存方案：最后 {k} 层（共 {L} 层）保留激活，其余 {r} 层在反向传播时重新计算，这是 {f} GiB 可用显存所能容纳的最多层数（约 {n} GiB）。"),
    (r"Memory plan: every layer is recomputed and its saved input waits in the computer's memory \(the lowest GPU "
     r"memory\): about (?P<n>\S+) GiB of (?P<f>\S+) GiB free\.",
     "显存方案：每一层都重新计算，保存的输入放在电脑内存中（GPU 显存最低）：约需 {n} GiB，可用 {f} GiB。"),
    (r"Memory plan: every layer is recomputed in the backward pass \(only its input is kept\); keeping activations does "
     r"not fit in (?P<f>\S+) GiB free \(about (?P<n>\S+) GiB\)\.",
     "显存方案：每一层都在反向传播时重新计算（只保留输入）；保留激活放不进 {f} GiB 可用显存（约 {n} GiB）。"),
    (r"Sharding: one (?P<unit>GPU|CPU process), so the model is not split \(FSDP needs two or more\)\.",
     "模型拆分：只有一个{unit}，模型不拆分（FSDP 需要两个或更多）。"),
    (r"Sharding: the model's weights are split over (?P<g>\d+) (?P<unit>GPU|CPU process)s \(FSDP\), as set: about "
     r"(?P<x>\S+) GiB per (?P<unit2>GPU|CPU process)\.", "模型拆分：按设置，模型权重分到 {g} 个{unit}上（FSDP）：每个{unit}约 {x} GiB。"),
    (r"Sharding: even split over (?P<g>\d+) (?P<unit>GPU|CPU process)s the model needs about (?P<x>\S+) GiB per "
     r"(?P<unit2>GPU|CPU process), more than fits safely in (?P<f>\S+) GiB free\.",
     "模型拆分：即使分到 {g} 个{unit}上，每个{unit}仍需约 {x} GiB，超过可用的 {f} GiB 所能安全容纳的量。"),
    (r"Sharding: the model does not fit one (?P<unit>GPU|CPU process) \(about (?P<w>\S+) GiB of (?P<f>\S+) GiB free\), "
     r"so its weights are split over (?P<g>\d+) (?P<unit2>GPU|CPU process)s \(FSDP\): about (?P<x>\S+) GiB per "
     r"(?P<unit3>GPU|CPU process)\.",
     "模型拆分：模型放不进一个{unit}（约需 {w} GiB，可用 {f} GiB），因此把权重分到 {g} 个{unit}上（FSDP）：每个{unit}约 {x} GiB。"),
]
# fixed phrases inside the sentences above, translated wherever they appear as a part
PHRASES = {"GPU": "GPU", "CPU process": "CPU 进程", "and its saved input waits in the computer's memory": "保存的输入放在电脑内存中",
           "and only its input is kept": "只保留它的输入"}
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
# core's fixed sentences, whole: the dataset checker's fixes (the problems table's last column;
# core.data), then why a job ended
SENTENCES = {
    "the file was not saved or uploaded completely; export it again": "文件没有完整保存或上传；请重新导出",
    "fix the file near this line": "修改这一行附近的内容",
    "a JSON file must hold one object or array; for one record per line, save it as JSON Lines (.jsonl)":
        "JSON 文件只能包含一个对象或数组；若每行一条记录，请另存为 JSON Lines（.jsonl）",
    "fix the file; a JSON file must be one complete array [...] or object {...}":
        "请修改文件；JSON 文件必须是一个完整的数组 [...] 或对象 {...}",
    "put the records in a JSON array [...], or save one record per line as JSONL":
        "把记录放进 JSON 数组 [...]，或每行一条记录另存为 JSONL",
    "a JSON file must hold one array": "JSON 文件只能包含一个数组",
    "remove the comma after the last record": "删除最后一条记录后面的逗号",
    "split it, or check for a missing closing bracket": "把它拆开，或检查是否缺少右括号",
    "fix the record": "修改这条记录",
    "nothing to do": "无需处理",
    "check they look right in the preview (e.g. 1.5 not 1.4999999)": "在预览中确认它们看起来正确（例如 1.5 而不是 1.4999999）",
    "add examples below the header": "在表头下面添加示例",
    "add examples to the file": "在文件中添加示例",
    "see the warnings above": "见上方的提醒",
    "nothing to do if they are notes or ids; otherwise map them (column_map)":
        "如果它们只是备注或编号则无需处理；否则请设置列对应（column_map）",
    "each record must be an object with named fields": "每条记录必须是带字段名的对象",
    "if that is wrong, set the column mapping (column_map)": "如果不对，请设置列对应（column_map）",
    "add more examples": "添加更多示例",
    "remove duplicates (cleaning: remove duplicates) so the model does not over-learn them":
        "删除重复行（清洗：删除重复行），以免模型过度学习它们",
    "nothing to do; UTF-8 files are smaller and work everywhere": "无需处理；UTF-8 文件更小，到处都能用",
    "use another model": "换一个模型",
    "check the model name, or download the model first": "检查模型名称，或先下载模型",
    "nothing to do, unless the spaces matter": "无需处理，除非这些空格有意义",
    "give the column a name in the first row": "在第一行给这一列起个名字",
    "rename one of them so each column has its own name": "重命名其中一个，让每一列都有自己的名字",
    "export it again, or save the data as CSV UTF-8 or JSONL": "重新导出，或把数据另存为 CSV UTF-8 或 JSONL",
    "export it again": "重新导出",
    "save it again from Excel, or as CSV UTF-8": "用 Excel 重新保存，或另存为 CSV UTF-8",
    "put all examples on the first sheet": "把所有示例放在第一个工作表",
    'check for a missing closing quote (") in this record': "检查这条记录是否缺少右引号（\"）",
    "check for a missing closing quote around this line": "检查这一行附近是否缺少右引号",
    "check quotes and special characters on this line": "检查这一行的引号和特殊字符",
    "write the turns as a JSON list, or use one row per question and answer": "把对话轮次写成 JSON 列表，或每行一问一答",
    'open it in your editor or Excel and save it as UTF-8 (in Excel: "CSV UTF-8")':
        "用编辑器或 Excel 打开并另存为 UTF-8（在 Excel 中选“CSV UTF-8”）",
    "the file was not saved or uploaded completely; export it again (or remove this last line)":
        "文件没有完整保存或上传；请重新导出（或删除最后这一行）",
    "fix this line (every line must be one complete {...} object) or remove it":
        "修改这一行（每行必须是一个完整的 {...} 对象）或删除它",
    "write a number, or the value as text in quotes": "写成数字，或把值写成带引号的文本",
    "remove or rename one of them": "删除或重命名其中一个",
    "a record this long cannot be trained; split it into smaller examples or remove it":
        "这么长的记录无法训练；把它拆成更小的示例或删除",
    "split it or remove it": "拆开或删除",
    "choose the format or map the columns": "选择格式或设置列对应",
    "each record must be a {...} object": "每条记录必须是一个 {...} 对象",
    "upload it again": "重新上传",
    "upload the file again": "重新上传文件",
    "this is the uploaded file as it was": "这已是上传时的原始文件",
    "split it into smaller files": "拆成更小的文件",
    "split it into smaller files or remove rows": "拆成更小的文件或删除一些行",
    "name the columns messages, conversations, instruction/output, prompt/completion or text, or map your column "
    "names (column_map, e.g. prompt: question, completion: answer)":
        "把列命名为 messages、conversations、instruction/output、prompt/completion 或 text，或设置列对应"
        "（column_map，例如 prompt: question, completion: answer）",
    "write the name of your column": "写上你的列名",
    "use true or false": "使用 true 或 false",
    "write the row as a JSON object": "把这一行写成 JSON 对象",
    "write the row as a JSON object {...}": "把这一行写成 JSON 对象 {...}",
    "fix them, or run drop-invalid first to remove them": "修改它们，或先运行“删除有问题的行”来移除",
}
# why a job ended: the fixed sentences of core.launcher, core.diagnose and core.recipes.common
SENTENCES.update({
    "Cancelled by the user.": "已由你停止。",
    "Cancelled before it started.": "开始之前已停止。",
    "The GPU ran out of memory.": "GPU 显存不足。",
    "The disk is full.": "磁盘已满。",
    "Free some disk space, then press Resume.": "腾出一些磁盘空间，然后按“继续”。",
    "Free some disk space (old runs in the Train tab, exports), then press Resume.":
        "腾出一些磁盘空间（训练页中的旧运行、导出），然后按“继续”。",
    "The log below shows what happened.": "下方日志显示了发生的情况。",
    "See the first process that failed.": "请看第一个出错的进程。",
    "Something outside Danlu stopped it; press Resume to continue from the last checkpoint.":
        "Danlu 之外的原因停止了它；按“继续”可从最近的检查点接着训练。",
    "One process hung or died; press Resume, and if it repeats try fewer GPUs.":
        "有一个进程卡住或退出了；按“继续”，如果再次发生，请用更少的 GPU。",
    "Fix the listed rows in the Dataset tab or with `python app.py check-data`.":
        "在“数据集”页或用 `python app.py check-data` 修改列出的行。",
    "The log below shows where. If it mentions your data or settings, fix them and press Retry.":
        "下方日志显示了出错位置。如果提到你的数据或设置，请修改后按“重试”。",
})
# ---- the review desk (core.data.review*, marks*, diff, the redact operation) ---------------------
MARK_ZH = {"Keep": "保留", "Drop": "删除", "Needs fix": "需修改"}
SENTENCES.update({
    "a marks file has one short line per row": "标记文件每行一条简短记录",
    "a marks file has the columns row, mark (and line, note, fingerprint)": "标记文件的列为 row、mark（以及 line、note、fingerprint）",
    "choose a row, or filters that match some rows": "请选择一行，或使用能筛选出数据行的条件",
    "choose a turn to edit": "请选择要编辑的发言",
    "choose one of them": "请选择其中之一",
    "fix it, or untick “regular expression” to search for the words": "请修改，或取消勾选“正则表达式”按词语搜索",
    "give a whole number": "请填写整数",
    "look again and mark again": "请重新查看后再标记",
    "reload the review desk": "请重新打开审阅页",
    "import the file again": "请重新导入该文件",
    "review it again here": "请在这里重新审阅",
    "save it as CSV UTF-8": "请另存为 CSV UTF-8",
    "take the finding from the scan's list": "请从扫描结果列表中选择",
    "use keep, drop or fix (Needs fix)": "请使用 keep（保留）、drop（删除）或 fix（需修改）",
    "use mine or theirs": "请使用 mine 或 theirs",
    "e.g. rows=3,17": "例如 rows=3,17",
    "fix it, or use regex=false": "请修改，或使用 regex=false",
    "give the model (--model, e.g. builtin:danlu-tiny)": "请指定模型（--model，例如 builtin:danlu-tiny）",
    "give the text to find, e.g. find=colour": "请给出要查找的文本，例如 find=colour",
    "move split to the end": "把 split 放到最后",
    "use all, system, user or assistant": "请使用 all、system、user 或 assistant",
})
MESSAGES += [
    (r"row (?P<n>\d+) is not in the current version", "第 {n} 行不在当前版本中"),
    (r"not a valid regular expression: (?P<v>.+)", "不是有效的正则表达式：{v}"),
    (r"changed while you were marking", "在你标记时数据已被修改"),
    (r"unknown mark (?P<v>.+)", "未知的标记 {v}"),
    (r"this row is not in the current version \(changed or removed since the marks were exported\)",
     "此行不在当前版本中（导出标记后已被修改或删除）"),
    (r"is not a text of this row", "不是这一行中的文本"),
    (r"no rows to mark", "没有要标记的行"),
]
SUMMARIES += [(rf"marked row {N.format('r')} {en}", f"已把第 {{r}} 行标记为“{zh}”") for en, zh in MARK_ZH.items()]
SUMMARIES += [(rf"marked {N.format('n')} rows {en}", f"已把 {{n}} 行标记为“{zh}”") for en, zh in MARK_ZH.items()]
SUMMARIES += [
    (r"cleared the mark of (?P<w>.+)", "已清除标记：{w}"),
    (rf"replaced {N.format('n')} findings?(?P<kinds> \(.+\))? in {N.format('r')} rows? \(of {N.format('m')}\)",
     "替换了 {r} 行中的 {n} 处敏感信息{kinds}（共 {m} 行）"),
    (rf"imported {N.format('n')} mark\(s\) from (?P<f>.+)", "从 {f} 导入了 {n} 个标记"),
    (r"row (?P<r>\d+) changed", "第 {r} 行已修改"),
    (r"uploaded (?P<f>.+)", "上传了 {f}"),
]
_COMPILED = [(re.compile(rf"^{pattern}$", re.DOTALL), zh) for pattern, zh in MESSAGES]
_SUMMARIES = [(re.compile(rf"^{pattern}$", re.DOTALL), zh) for pattern, zh in SUMMARIES]
_BY_TITLE = {english: code for code, english in EN_TITLES.items()}


def core_text(text: str, lang: str, labels: dict[str, str] | None = None) -> str:
    """`text` (one of core's sentences) in `lang`; `labels` maps English setting labels to the
    translated ones. Unknown sentences and English come back as they are."""
    if not text or not lang.startswith("zh"):
        return text
    if text.strip() in SENTENCES:
        return SENTENCES[text.strip()]
    for rx, zh in _COMPILED:
        m = rx.match(text.strip())
        if m:
            parts = {k: PHRASES.get(v, v) for k, v in m.groupdict().items()}
            if "label" in parts and labels:
                parts["label"] = labels.get(parts["label"], parts["label"])
            if "sub" in parts:  # a sentence of its own inside this one
                parts["sub"] = core_text(parts["sub"], lang, labels)
            if "steps" in parts:
                parts["steps"] = "；".join(STEPS.get(s, s) for s in parts["steps"].split("; "))
            return zh.format(**parts)
    return text


def knows(text: str) -> bool:
    """Does a pattern or the table of fixed sentences cover this English sentence?"""
    return text.strip() in SENTENCES or any(rx.match(text.strip()) for rx, _ in _COMPILED)


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
    n, _, kind = part.partition(" ")
    if kind == "unreadable":
        return f"{n} 无法读取的行"
    code = _BY_TITLE.get(kind)
    return f"{n} {title(code, kind, lang)}" if code else part
