"""English and 简体中文 for every label, help text and message the GUI itself writes (gr.I18n).

    L("train.start")          a translation marker for a label, help text, button or a one-line
                              Markdown: Gradio translates it in the page, so switching language
                              needs no server round trip. The page translates only the FIRST
                              marker of a string, so a string never holds two.
    tr("st.loss", lang)       plain text in one language: what handlers use to compose messages
                              ("loss 1.23 · about 20 s left"); the language switch re-renders them.
    preset_text(name, key, english, lang)   a preset's text in that language

TrainConfig's labels and help are English in core/config.py (the single source); their Chinese
side is webui/i18n_fields.py. Messages that come from core (dataset problems, job failures) are
shown as core wrote them. tests/webui/test_i18n.py checks that every key used in webui/ exists
here in both languages.
"""
from __future__ import annotations

import gradio as gr

from core.config import FIELDS
from core.jobs import STATE_WORDS
from webui.i18n_fields import FIELD_ZH

LANGUAGES = [("English", "en"), ("简体中文", "zh-CN")]

UI: dict[str, tuple[str, str]] = {
    # header and tabs
    "app.tagline": ("Fine-tune a language model on your own examples: pick a template, bring data, press Start.",
                    "用你自己的示例微调语言模型：选一个模板，准备数据，点开始。"),
    "app.language": ("Language", "语言"),
    "tab.templates": ("Templates", "模板"),
    "tab.dataset": ("Dataset", "数据集"),
    "tab.hyperparams": ("Hyperparameters", "超参数"),
    "tab.train": ("Train", "训练"),
    "tab.evaluate": ("Evaluate", "评估"),
    "tab.export": ("Export", "导出"),
    "tab.chat": ("Chat", "对话"),
    # templates
    "tpl.title": ("Start from a template", "从模板开始"),
    "tpl.intro": ("Each template picks a model, a recipe of settings and the dataset format, and brings a small "
                  "sample dataset. You can change everything afterwards.",
                  "每个模板都选好了模型、一套设置和数据集格式，并附带一个小样例数据集。之后一切都可以修改。"),
    "tpl.use": ("Use this template", "使用此模板"),
    "tpl.model": ("Model", "模型"),
    "tpl.format": ("Data format", "数据格式"),
    "tpl.time": ("Time", "耗时"),
    "tpl.memory": ("Memory", "内存"),
    "tpl.recipe": ("recipe", "配方"),
    "tpl.chosen": ("Template", "已选择模板"),
    "tpl.filled": ("all settings are filled in", "所有设置已填好"),
    "tpl.next": ("Next: upload your data in the Dataset tab, or press Start training in the Train tab to try the "
                 "sample data.", "下一步：在“数据集”页上传你的数据，或直接在“训练”页点“开始训练”试试样例数据。"),
    "tpl.model_title": ("Model", "模型"),
    "tpl.custom_model": ("Or a local folder or hub id", "或本地文件夹 / Hub 模型 id"),
    "tpl.custom_model_help": ("Type it and press Enter to use it as the base model.",
                              "输入后按回车，作为基础模型使用。"),
    "tpl.no_model": ("No model chosen yet.", "尚未选择模型。"),
    "tpl.license": ("Licence", "许可证"),
    "tpl.gpu_memory": ("GPU memory", "显存"),
    "tpl.local_folder": ("a model folder on this computer", "本机上的模型文件夹"),
    "tpl.hub_model": ("a Hugging Face hub model (downloaded when training starts)",
                      "Hugging Face Hub 模型（开始训练时下载）"),
    # dataset
    "ds.title": ("Your data", "你的数据"),
    "ds.intro": ("Drop a JSONL, JSON, CSV, TSV, Parquet or Excel file. Danlu keeps the original as it is, detects "
                 "the format, counts the rows and lists every problem with its line and a fix. Cleaning makes new "
                 "versions; Undo goes back one.",
                 "拖入 JSONL、JSON、CSV、TSV、Parquet 或 Excel 文件。丹炉原样保存原文件，识别格式、统计行数，并列出每个问题所在的行和修改方法。"
                 "清理会生成新版本；“撤销”回到上一个版本。"),
    "ds.upload": ("Data file (drop it here)", "数据文件（拖到这里）"),
    "ds.picker": ("Your datasets", "你的数据集"),
    "ds.check": ("Check dataset", "检查数据集"),
    "ds.none": ("Upload a file first, or choose a template with sample data.", "请先上传文件，或选择一个带样例数据的模板。"),
    "ds.format": ("format", "格式"),
    "ds.rows": ("rows", "行数"),
    "ds.usable": ("usable", "可用"),
    "ds.original": ("original", "原始"),
    "ds.cleaned": ("cleaned", "已清理"),
    "ds.problem_count": ("problems", "问题"),
    "ds.warning": ("warning", "提醒"),
    "ds.problems": ("Problems (line, field, message, fix)", "问题（行、字段、说明、修改方法）"),
    "ds.col.line": ("line", "行"),
    "ds.col.field": ("field", "字段"),
    "ds.col.message": ("message", "说明"),
    "ds.col.fix": ("fix", "修改方法"),
    "ds.col.row": ("row", "行号"),
    "ds.col.record": ("record (edit the JSON, then Save edits)", "记录（修改 JSON 后点“保存修改”）"),
    "ds.by_type": ("By type", "按类型"),
    "ds.first_20": ("the table lists the first 20 of each type", "表中每种类型只列出前 20 个"),
    "ds.clean_title": ("Clean", "清理"),
    "ds.op.dedupe": ("Remove duplicates", "去除重复"),
    "ds.op.drop_empty": ("Drop empty rows", "删除空行"),
    "ds.op.drop_invalid": ("Drop rows with problems", "删除有问题的行"),
    "ds.op.trim": ("Trim spaces", "去掉多余空白"),
    "ds.op.merge_turns": ("Merge repeated turns", "合并连续同角色发言"),
    "ds.op.filter_long": ("Drop rows over the maximum length", "删除超过最大长度的行"),
    "ds.op.truncate_long": ("Shorten rows over the maximum length", "截短超过最大长度的行"),
    "ds.undo": ("Undo", "撤销"),
    "ds.working": ("Working on it…", "正在处理……"),
    "ds.grid_title": ("Rows (editable)", "数据行（可编辑）"),
    "ds.grid_start": ("First row shown", "从第几行显示"),
    "ds.grid": ("Rows as they are in the file", "文件中的数据行"),
    "ds.save_edits": ("Save edits", "保存修改"),
    "ds.bad_json": ("not valid JSON", "不是有效的 JSON"),
    "ds.saved_rows": ("Saved rows", "已保存的行"),
    "ds.no_edits": ("No row was changed.", "没有修改任何行。"),
    "ds.lengths_title": ("Lengths and what the model learns", "长度与模型学习的内容"),
    "ds.histogram": ("Rows by length in tokens", "按 token 长度统计的行数"),
    "ds.measuring": ("Measuring the lengths with the model's tokenizer…", "正在用模型的分词器测量长度……"),
    "ds.tokens": ("tokens per row", "每行 token 数"),
    "ds.median": ("median", "中位数"),
    "ds.over_max": ("rows longer than the maximum length", "超过最大长度的行"),
    "ds.no_target": ("rows with nothing to learn", "没有可学习内容的行"),
    "ds.estimated": ("(estimated: the model's tokenizer is not available)", "（估算值：无法使用模型的分词器）"),
    "ds.example": ("Example row", "示例行"),
    "ds.rendered": ("The example as the model sees it (highlighted: what training teaches it to write)",
                    "模型看到的示例（高亮：训练让它学着写的部分）"),
    "ds.trained": ("learned", "学习"),
    "ds.truncated": ("cut off", "截断"),
    "ds.download": ("Download the cleaned file", "下载清理后的文件"),
    "ds.download_file": ("Cleaned file", "清理后的文件"),
    # hyperparameters
    "hp.recipe": ("Recipe preset", "配方预设"),
    "hp.recipe_help": ("A tested set of settings; choosing one changes only the settings it lists.",
                       "一组验证过的设置；选择后只修改它包含的设置。"),
    "hp.advanced": ("Advanced settings", "高级设置"),
    "hp.valid": ("All settings are valid.", "所有设置都有效。"),
    "hp.problems": ("Problems to fix before training", "训练前需要修改的问题"),
    "hp.load_notes": ("The loaded file", "载入的文件"),
    "hp.loaded": ("Loaded", "已载入"),
    "hp.save": ("Save config", "保存配置"),
    "hp.load": ("Load config", "加载配置"),
    "hp.saved_file": ("Config file", "配置文件"),
    "hp.show_command": ("Show command", "显示命令"),
    "hp.command": ("Command line (runs the same training from a terminal)", "命令行（在终端中运行同样的训练）"),
    "hp.fix_first": ("Fix these settings first:", "请先修改这些设置："),
    "grp.model": ("Model", "模型"),
    "grp.data": ("Data", "数据"),
    "grp.lora": ("LoRA adapter", "LoRA 插件"),
    "grp.training": ("Training", "训练"),
    "grp.logging": ("Progress, validation and checkpoints", "进度、验证与检查点"),
    "grp.speed": ("Speed", "速度"),
    "mem.title": ("Memory estimate", "内存估算"),
    "mem.unknown": ("No memory estimate: the model's size is unknown until it is downloaded.",
                    "无法估算内存：模型下载前无法知道它的大小。"),
    "mem.cannot": ("No memory estimate for these settings.", "这些设置无法估算内存。"),
    "mem.weights": ("weights", "权重"),
    "mem.lora": ("adapter", "插件"),
    "mem.activations": ("activations", "激活"),
    "mem.loss": ("loss", "损失"),
    "mem.context": ("runtime", "运行时"),
    # train
    "train.gpus": ("GPUs", "GPU"),
    "train.gpus_help": ("Tick the GPUs this run may use; one process runs on each.",
                        "勾选本次训练可使用的 GPU；每块 GPU 上运行一个进程。"),
    "train.cpu_only": ("CPU (no GPU found on this computer)", "CPU（这台电脑上没有 GPU）"),
    "train.free": ("free", "可用"),
    "train.nproc": ("Processes", "进程数"),
    "train.nproc_help": ("Training processes on the CPU; 1 is right for most computers.",
                         "在 CPU 上的训练进程数；大多数电脑用 1 即可。"),
    "train.start": ("Start training", "开始训练"),
    "train.stop": ("Stop", "停止"),
    "train.resume": ("Resume", "继续"),
    "train.started": ("Started job", "已开始任务"),
    "train.stopping": ("Stopping (a checkpoint is saved first):", "正在停止（先保存检查点）："),
    "train.resumed": ("Resuming as job", "已继续，新任务"),
    "train.no_job": ("Choose a job first.", "请先选择一个任务。"),
    "train.no_job_yet": ("No job yet: press Start training.", "还没有任务：点“开始训练”。"),
    "train.job": ("Job", "任务"),
    "train.job_help": ("The job shown below; click a row of the table to pick another.",
                       "下方显示的任务；点表格中的一行可切换。"),
    "train.jobs": ("All jobs (newest first)", "所有任务（最新在前）"),
    "train.log": ("Log", "日志"),
    "train.loss_plot": ("Loss (orange: training, blue: validation)", "损失（橙色：训练，蓝色：验证）"),
    "train.lr_plot": ("Learning rate", "学习率"),
    "train.what_to_do": ("What to do:", "怎么办："),
    "st.step": ("step", "步"),
    "st.loss": ("loss", "损失"),
    "st.eval_loss": ("validation loss", "验证损失"),
    "st.eta": ("time left: about", "预计剩余"),
    "st.took": ("took", "用时"),
    "st.loading": ("loading the model and data", "正在加载模型和数据"),
    "st.queued": ("waiting for its GPUs to be free", "等待 GPU 空闲"),
    "jobs.job": ("job", "任务"),
    "jobs.name": ("name", "名称"),
    "jobs.kind": ("kind", "类型"),
    "jobs.state": ("state", "状态"),
    "jobs.step": ("step", "步"),
    "jobs.created": ("created", "创建于"),
    # evaluate
    "ev.title": ("Evaluate", "评估"),
    "ev.intro": ("Ask the base model and your fine-tuned model the held-out questions of your data and compare: "
                 "validation loss, ROUGE-L, BLEU, exact matches, and every answer side by side.",
                 "用数据中留出的问题分别提问基础模型和微调后的模型并比较：验证损失、ROUGE-L、BLEU、完全匹配，以及每个回答的并排对照。"),
    "ev.run": ("Training run", "训练任务"),
    "ev.run_help": ("A finished training job.", "一个已完成的训练任务。"),
    "ev.max_samples": ("Prompts to compare", "比较的问题数"),
    "ev.max_samples_help": ("At most this many held-out examples.", "最多使用这么多留出的示例。"),
    "ev.max_new_tokens": ("Answer length (tokens)", "回答长度（token）"),
    "ev.max_new_tokens_help": ("Longest answer each model may write.", "每个模型最多写这么长的回答。"),
    "ev.start": ("Run evaluation", "运行评估"),
    "ev.cannot_start": ("The evaluation cannot start", "评估无法开始"),
    "ev.started": ("Evaluation started as job", "评估已开始，任务"),
    "ev.no_run": ("Choose a finished training run first.", "请先选择一个已完成的训练任务。"),
    "ev.none_yet": ("This run has not been evaluated yet: press Run evaluation.", "这个训练任务还没有评估：点“运行评估”。"),
    "ev.summary": ("Results", "结果"),
    "ev.prompts": ("held-out prompts", "个留出的问题"),
    "ev.loss": ("Validation loss", "验证损失"),
    "ev.perplexity": ("Perplexity", "困惑度"),
    "ev.exact": ("Exact match", "完全匹配"),
    "ev.table": ("Every prompt: base model and fine-tuned model side by side", "每个问题：基础模型与微调模型并排对照"),
    "ev.col.prompt": ("Prompt", "问题"),
    "ev.col.reference": ("Reference", "参考答案"),
    "ev.col.base": ("Base model", "基础模型"),
    "ev.col.tuned": ("Fine-tuned", "微调后"),
    "ev.col.base_rouge": ("ROUGE-L base", "ROUGE-L 基础"),
    "ev.col.tuned_rouge": ("ROUGE-L tuned", "ROUGE-L 微调"),
    "ev.col.base_bleu": ("BLEU base", "BLEU 基础"),
    "ev.col.tuned_bleu": ("BLEU tuned", "BLEU 微调"),
    "ev.col.base_exact": ("Exact base", "完全匹配 基础"),
    "ev.col.tuned_exact": ("Exact tuned", "完全匹配 微调"),
    "ev.col.step": ("Step", "步"),
    "ev.col.answer": ("Answer", "回答"),
    "ev.csv": ("Results as CSV", "结果 CSV"),
    "ev.probes": ("Probe prompts answered during training", "训练过程中对探针问题的回答"),
    "ev.probes_table": ("Answers at each checkpoint", "每个检查点的回答"),
    # export
    "ex.title": ("Export", "导出"),
    "ex.intro": ("Merge a run's adapter into its base model: one ordinary Hugging Face model folder that loads "
                 "anywhere, checked with a test answer.",
                 "把训练得到的插件合并进基础模型：得到一个普通的 Hugging Face 模型文件夹，可在任何地方加载，并用一次测试回答检验。"),
    "ex.run": ("Training run", "训练任务"),
    "ex.run_help": ("A finished training job.", "一个已完成的训练任务。"),
    "ex.name": ("Export name", "导出名称"),
    "ex.name_help": ("The folder name under exports/.", "exports/ 下的文件夹名。"),
    "ex.dtype": ("Number format", "数字格式"),
    "ex.dtype_help": ("bf16 for recent GPUs, fp16 for older ones.", "较新的 GPU 用 bf16，较旧的用 fp16。"),
    "ex.start": ("Merge & export", "合并并导出"),
    "ex.cannot_start": ("The export cannot start", "导出无法开始"),
    "ex.started": ("Export started as job", "导出已开始，任务"),
    "ex.no_run": ("Choose a finished training run first.", "请先选择一个已完成的训练任务。"),
    "ex.done": ("Exported to", "已导出到"),
    "ex.smoke": ("Test answer", "测试回答"),
    "ex.exports": ("Exported models", "已导出的模型"),
    "ex.col.name": ("name", "名称"),
    "ex.col.size": ("size", "大小"),
    "ex.col.created": ("created", "创建于"),
    "ex.col.base_model": ("base model", "基础模型"),
    "ex.col.smoke_test": ("test answer", "测试回答"),
    "ex.col.path": ("folder", "文件夹"),
    # chat
    "chat.adapter": ("Fine-tuned run (adapter)", "微调任务（插件）"),
    "chat.adapter_help": ("Choose a finished run, or none to talk to the base model alone.",
                          "选择一个已完成的训练任务；选“无”则只和基础模型对话。"),
    "chat.no_adapter": ("None: the base model alone", "无：只用基础模型"),
    "chat.model": ("Base model or export", "基础模型或导出"),
    "chat.model_help": ("Filled in from the run; or pick a merged export, a preset, or type a folder or hub id.",
                        "根据训练任务自动填写；也可选择已合并的导出、预设，或输入文件夹 / Hub id。"),
    "chat.compare": ("Compare with the base model", "与基础模型对比"),
    "chat.compare_help": ("Answers of both, side by side.", "两者的回答并排显示。"),
    "chat.compare_needs_adapter": ("Compare needs a fine-tuned run: choose one above.",
                                   "对比需要一个微调任务：请在上方选择。"),
    "chat.system": ("System prompt", "系统提示"),
    "chat.system_placeholder": ("Optional, e.g. You are a patient support assistant. Answer briefly.",
                                "可选，例如：你是一位耐心的客服助手，请简短回答。"),
    "chat.sampling": ("Answer settings", "回答设置"),
    "chat.temperature": ("Temperature", "温度"),
    "chat.temperature_help": ("Higher is more varied, lower more predictable; 0 always picks the likeliest word.",
                              "越高越多样，越低越可预测；0 总是选最可能的词。"),
    "chat.top_p": ("Top-p", "Top-p"),
    "chat.top_p_help": ("Only the likeliest words that together make up this share are considered.",
                        "只考虑累计概率达到这个比例的最可能的词。"),
    "chat.max_new_tokens": ("Longest answer (tokens)", "最长回答（token）"),
    "chat.max_new_tokens_help": ("The answer stops after this many tokens.", "回答最多这么多 token。"),
    "chat.repetition_penalty": ("Repetition penalty", "重复惩罚"),
    "chat.repetition_penalty_help": ("Above 1 discourages repeating the same words.", "大于 1 时减少重复用词。"),
    "chat.answers": ("Conversation", "对话"),
    "chat.base_answers": ("Base model, same questions", "基础模型，相同问题"),
    "chat.message": ("Your message", "你的消息"),
    "chat.message_placeholder": ("Type and press Enter to send", "输入后按回车发送"),
    "chat.send": ("Send", "发送"),
    "chat.clear": ("Clear", "清空"),
    "chat.unload": ("Unload models (free memory)", "卸载模型（释放内存）"),
    "chat.unloaded": ("Models unloaded", "已卸载的模型数"),
    "chat.loading": ("Loading the model… (the first answer takes a little longer)", "正在加载模型……（第一次回答会慢一些）"),
    "chat.share_title": ("Share a demo", "分享演示"),
    "chat.share_intro": ("Starts a separate chat-only page for this model: others can chat with it but cannot see or "
                         "change anything else. Reachable from other computers or through a public link only with a "
                         "login.", "为此模型启动一个独立的纯对话页面：别人可以对话，但看不到也改不了其他内容。"
                         "只有设置了登录，才能让其他电脑或公开链接访问。"),
    "chat.demo_host": ("Address", "地址"),
    "chat.demo_host_help": ("127.0.0.1: this computer only; 0.0.0.0: your network (needs a login).",
                            "127.0.0.1：仅本机；0.0.0.0：局域网（需要登录）。"),
    "chat.demo_port": ("Port", "端口"),
    "chat.demo_port_help": ("Empty: a free one.", "留空：自动选择空闲端口。"),
    "chat.demo_share": ("Public share link", "公开分享链接"),
    "chat.demo_share_help": ("A gradio.live link anyone with it can open (needs a login and internet).",
                             "任何拿到链接的人都能打开的 gradio.live 链接（需要登录和网络）。"),
    "chat.demo_user": ("Login name", "登录名"),
    "chat.demo_password": ("Password", "密码"),
    "chat.share": ("Share a demo", "分享演示"),
    "chat.cannot_start": ("The demo cannot start", "演示无法启动"),
    "chat.login_or_local": ("fill in Login name and Password, or keep the address 127.0.0.1",
                            "填写登录名和密码，或保留地址 127.0.0.1"),
    "chat.login_for_link": ("fill in Login name and Password", "填写登录名和密码"),
    # why a job ended (core.diagnose and core.recipes.common.classify write these codes)
    "reason.cuda_oom": ("out of GPU memory", "GPU 显存不足"),
    "reason.disk_full": ("the disk is full", "磁盘已满"),
    "reason.nccl_timeout": ("the GPUs lost contact", "GPU 之间失去联系"),
    "reason.killed": ("killed by the system", "被系统终止"),
    "reason.crashed": ("the training process crashed", "训练进程出错退出"),
    "reason.data_error": ("a problem in the dataset", "数据集有问题"),
    "reason.diverged": ("the loss went out of bounds", "损失发散"),
    "reason.chat_template": ("the chat template failed", "对话模板出错"),
    "reason.remote_code": ("the model needs its own code", "模型需要运行自带代码"),
    "reason.error": ("a setting or file problem", "设置或文件有问题"),
    "reason.peer_lost": ("another process stopped", "另一个进程已停止"),
    "reason.stalled": ("no progress for too long", "长时间没有进展"),
    "reason.start_failed": ("it could not start", "无法启动"),
    "reason.supervisor_error": ("the job's supervisor failed", "任务监督进程出错"),
    "reason.unkillable": ("a process would not stop", "有进程无法停止"),
    "reason.cancelled": ("stopped by you", "已由你停止"),
    "reason.interrupted": ("the computer or Danlu stopped", "电脑或 Danlu 中途停止"),
    "chat.demo_starting": ("Starting the demo (it loads its own copy of the model)…", "正在启动演示（它会加载自己的模型副本）……"),
    "chat.demo_running": ("The demo runs at", "演示地址"),
    "chat.no_share_link": ("No public link could be made; the demo still runs at the address above.",
                           "无法创建公开链接；演示仍在上面的地址运行。"),
    "chat.demos": ("Running demos", "正在运行的演示"),
    "chat.demo_pick": ("Demo", "演示"),
    "chat.demo_stop": ("Stop demo", "停止演示"),
    "chat.demo_stopped": ("Stopped demo", "已停止演示"),
    "chat.no_demo": ("Choose a demo first.", "请先选择一个演示。"),
    "chat.col.id": ("demo", "演示"),
    "chat.col.url": ("address", "地址"),
    "chat.col.model": ("model", "模型"),
    "chat.col.login": ("login", "登录"),
    "chat.yes": ("yes", "是"),
    "chat.no": ("no", "否"),
}

# ---- the Review tab (webui/tabs/review_*.py) ------------------------------------------------------
UI.update({
    "tab.review": ("Review", "审阅"),
    "rv.title": ("Review the rows", "逐行审阅"),
    "rv.intro": ("Read each row as the conversation the model will learn, find the rows that matter, and mark them "
                 "Keep, Drop or Needs fix. Every mark, edit and replacement is a new version of the dataset (Undo "
                 "takes it back), and training uses the reviewed version: rows marked Drop are left out.",
                 "把每一行当作模型将要学习的对话来阅读，找出重要的行，并标记为“保留”“删除”或“需修改”。每次标记、编辑和替换都会生成"
                 "数据集的新版本（可撤销），训练使用审阅后的版本：标记为“删除”的行不参与训练。"),
    "rv.keys": ("Keys: → or N next · ← or P previous · K keep · D drop · F needs fix · E edit",
                "快捷键：→ 或 N 下一行 · ← 或 P 上一行 · K 保留 · D 删除 · F 需修改 · E 编辑"),
    "rv.none": ("Choose or upload a dataset in the Dataset tab first.", "请先在“数据集”页选择或上传数据集。"),
    "rv.search": ("Search: words or \"a phrase\"", "搜索：词语或“短语”"),
    "rv.regex": ("Regular expression", "正则表达式"),
    "rv.sort": ("Order", "排序"),
    "rv.sort.position": ("by position", "按位置"),
    "rv.sort.longest": ("longest first", "最长优先"),
    "rv.sort.shortest": ("shortest first", "最短优先"),
    "rv.sort.duplicates": ("duplicates together", "重复项排在一起"),
    "rv.problem": ("Problem", "问题类型"),
    "rv.all": ("all", "全部"),
    "rv.problem.none": ("no problem", "无问题"),
    "rv.problem.any": ("any problem", "有问题"),
    "rv.mark_filter": ("Review mark", "审阅标记"),
    "rv.mark.unreviewed": ("not reviewed", "未审阅"),
    "rv.mark.reviewed": ("reviewed", "已审阅"),
    "rv.mark.keep": ("Keep", "保留"),
    "rv.mark.drop": ("Drop", "删除"),
    "rv.mark.fix": ("Needs fix", "需修改"),
    "rv.mark.clear": ("no mark", "无标记"),
    "rv.lang": ("Language", "语言"),
    "rv.dup": ("Duplicates", "重复"),
    "rv.dup.any": ("in a duplicate group", "属于重复组"),
    "rv.dup.group": ("group", "组"),
    "rv.min_tokens": ("Tokens from", "token 数最少"),
    "rv.max_tokens": ("Tokens up to (0: any)", "token 数最多（0 为不限）"),
    "rv.matched": ("**{m:,}** of {n:,} rows match", "{n:,} 行中有 **{m:,}** 行符合"),
    "rv.progress": ("reviewed **{share:.1%}** ({r:,} rows: {keep:,} Keep, {drop:,} Drop, {fix:,} Needs fix)",
                    "已审阅 **{share:.1%}**（{r:,} 行：保留 {keep:,}，删除 {drop:,}，需修改 {fix:,}）"),
    "rv.training": ("Training uses {t:,} rows: all but the {d:,} marked Drop.", "训练使用 {t:,} 行：除标记为“删除”的 {d:,} 行外的全部行。"),
    "rv.fix_trained": ("{f:,} rows marked Needs fix are still trained on until you edit or drop them.",
                       "标记为“需修改”的 {f:,} 行在修改或删除之前仍会参与训练。"),
    "rv.unreadable": ("{u:,} unreadable rows are not shown: remove them in the Dataset tab (Drop rows with problems).",
                      "{u:,} 行无法读取，未显示：请在“数据集”页删除（删除有问题的行）。"),
    "rv.no_match": ("No row matches these filters.", "没有符合这些筛选条件的行。"),
    "rv.position": ("Row **{row}** · line {line} · {k:,} of {m:,} · about {tokens} tokens · {lang}",
                    "第 **{row}** 行 · 文件第 {line} 行 · 第 {k:,}/{m:,} 个 · 约 {tokens} 个 token · {lang}"),
    "rv.dup_of": ("duplicate group {g}", "重复组 {g}"),
    "rv.problems_of": ("problems", "问题"),
    "rv.prev": ("◀ Previous", "◀ 上一行"),
    "rv.next": ("Next ▶", "下一行 ▶"),
    "rv.keep": ("✓ Keep", "✓ 保留"),
    "rv.drop": ("✗ Drop", "✗ 删除"),
    "rv.fix": ("✎ Needs fix", "✎ 需修改"),
    "rv.note": ("Note (saved with the mark)", "备注（随标记保存）"),
    "rv.role.system": ("System", "系统"),
    "rv.role.user": ("User", "用户"),
    "rv.role.assistant": ("Assistant", "助手"),
    "rv.role.text": ("Text", "文本"),
    "rv.chosen": ("Chosen answer", "选中的回答"),
    "rv.rejected": ("Rejected answer", "被拒绝的回答"),
    "rv.edit_title": ("Edit a turn in place", "直接编辑一段发言"),
    "rv.turn": ("Turn", "发言"),
    "rv.edit_text": ("Text of the turn", "发言内容"),
    "rv.save_edit": ("Save edit", "保存修改"),
    "rv.bulk_title": ("Mark every row that matches", "标记所有符合条件的行"),
    "rv.bulk_mark": ("Mark them as", "标记为"),
    "rv.bulk": ("Mark all matching rows", "标记全部符合条件的行"),
    "rv.undo": ("Undo the last change", "撤销上一步"),
    "rv.versions_title": ("Versions: what changed", "版本：改了什么"),
    "rv.version_a": ("Compare version", "比较版本"),
    "rv.version_b": ("with version", "与版本"),
    "rv.compare": ("Compare", "比较"),
    "rv.diff.added": ("added", "新增"),
    "rv.diff.removed": ("removed", "删除"),
    "rv.diff.changed": ("changed", "修改"),
    "rv.diff.before": ("before", "之前"),
    "rv.diff.after": ("after", "之后"),
    "rv.diff.summary": ("{a:,} rows added, {r:,} removed, {c:,} changed; {mk:,} marks changed",
                        "新增 {a:,} 行，删除 {r:,} 行，修改 {c:,} 行；标记变化 {mk:,} 处"),
    "rv.diff.first": ("the first {n} are shown", "只显示前 {n} 项"),
    "rv.diff.marks": ("Marks that changed", "变化的标记"),
    "rv.version": ("version", "版本"),
    "rv.pii_title": ("Sensitive data", "敏感信息"),
    "rv.kinds": ("Kinds to find", "查找的类型"),
    "rv.kind.email": ("e-mail addresses", "电子邮箱"),
    "rv.kind.phone": ("phone numbers", "电话号码"),
    "rv.kind.card": ("card numbers", "银行卡号"),
    "rv.kind.iban": ("bank accounts (IBAN)", "银行账号（IBAN）"),
    "rv.kind.ip": ("IP addresses", "IP 地址"),
    "rv.kind.url_credentials": ("passwords in links", "链接中的密码"),
    "rv.kind.api_key": ("API keys and tokens", "API 密钥和令牌"),
    "rv.kind.name": ("names you listed", "你列出的姓名"),
    "rv.names": ("Names or words to find too (comma-separated)", "另外要查找的姓名或词语（用逗号分隔）"),
    "rv.scan": ("Scan", "扫描"),
    "rv.hits": ("Findings (click one to show its row)", "发现的内容（点击一项查看所在行）"),
    "rv.col.row": ("row", "行号"),
    "rv.col.line": ("line", "文件行"),
    "rv.col.field": ("field", "字段"),
    "rv.col.kind": ("kind", "类型"),
    "rv.col.text": ("text", "内容"),
    "rv.redact_one": ("Replace this finding", "替换这一项"),
    "rv.redact_kinds": ("Replace the ticked kinds", "替换勾选的类型"),
    "rv.redact_all": ("Replace all findings", "全部替换"),
    "rv.scan_summary": ("{n:,} findings in {r:,} rows", "在 {r:,} 行中发现 {n:,} 处"),
    "rv.scan_first": ("Press Scan first, then click a finding in the list.", "请先点“扫描”，再点击列表中的一项。"),
    "rv.redacted": ("Replaced with placeholders such as [EMAIL]; rows changed: {c:,}.", "已替换为 [EMAIL] 等占位符；改动的行数：{c:,}。"),
    "rv.split_title": ("Share the work: marks as CSV", "分工审阅：标记导出为 CSV"),
    "rv.split_intro": ("Export your marks, let a colleague review other rows and export theirs, then import their file "
                       "here: rows marked differently by the two of you are listed, not overwritten.",
                       "导出你的标记，请同事审阅其他行并导出他们的标记，然后在这里导入：两人标记不同的行会被列出，而不会被覆盖。"),
    "rv.export": ("Export marks", "导出标记"),
    "rv.export_file": ("Marks file (CSV)", "标记文件（CSV）"),
    "rv.import": ("Import marks (CSV)", "导入标记（CSV）"),
    "rv.prefer_theirs": ("Where the marks differ, take the imported mark", "标记不同时，采用导入的标记"),
    "rv.imported": ("Imported {a:,} marks; {s:,} were already the same.", "导入 {a:,} 个标记；{s:,} 个原本就相同。"),
    "rv.conflicts": ("Conflicts ({n}): marked differently here and in the file", "冲突（{n}）：此处与文件中的标记不同"),
    "rv.kept_mine": ("kept as here", "保留此处的标记"),
    "rv.took_theirs": ("took the file's mark", "采用文件中的标记"),
    "rv.not_found": ("Rows not found ({n}): changed or removed since the export", "未找到的行（{n}）：导出后已被修改或删除"),
    "rv.here": ("here", "此处"),
    "rv.in_file": ("in the file", "文件中"),
    "rv.marked": ("Marked row {row}: {mark}", "已标记第 {row} 行：{mark}"),
    "rv.bulk_done": ("Marked {n:,} rows: {mark}", "已标记 {n:,} 行：{mark}"),
    "rv.unchanged": ("Nothing changed.", "没有变化。"),
    "rv.saved": ("Saved the edit of row {row}.", "已保存第 {row} 行的修改。"),
    "rv.undone": ("Undid the last change.", "已撤销上一步。"),
    "rv.reading": ("Reading the rows…", "正在读取数据行……"),
    "rv.no_text": ("no text", "无文字"),
    "rv.lang.en": ("English", "英语"), "rv.lang.zh": ("Chinese", "中文"), "rv.lang.ja": ("Japanese", "日语"),
    "rv.lang.ko": ("Korean", "韩语"), "rv.lang.de": ("German", "德语"), "rv.lang.fr": ("French", "法语"),
    "rv.lang.es": ("Spanish", "西班牙语"), "rv.lang.it": ("Italian", "意大利语"), "rv.lang.pt": ("Portuguese", "葡萄牙语"),
    "rv.lang.nl": ("Dutch", "荷兰语"), "rv.lang.ru": ("Cyrillic script", "西里尔字母"), "rv.lang.ar": ("Arabic", "阿拉伯语"),
    "rv.lang.el": ("Greek", "希腊语"), "rv.lang.he": ("Hebrew", "希伯来语"), "rv.lang.th": ("Thai", "泰语"),
    "rv.lang.hi": ("Devanagari script", "天城文"), "rv.lang.latin": ("other Latin script", "其他拉丁字母语言"),
})

# ---- Slurm: "Where to run" on the Train tab (webui/tabs/train_where.py) and Slurm's words for a job.
# Kept as one block so it moves as a whole into the per-language catalogs.
SLURM_UI: dict[str, tuple[str, str]] = {
    "where.label": ("Where to run", "在哪里运行"),
    "where.help": ("This computer, or the Slurm cluster this computer submits to (sbatch).",
                   "这台电脑，或这台电脑能提交作业的 Slurm 集群（sbatch）。"),
    "where.local": ("This computer", "这台电脑"),
    "where.slurm": ("Slurm cluster", "Slurm 集群"),
    "slurm.start": ("Start on the cluster", "在集群上开始训练"),
    "slurm.partition": ("Partition", "分区"),
    "slurm.partition_help": ("The cluster's partitions with their free GPUs, as sinfo reports them.",
                             "集群的分区及其空闲 GPU（来自 sinfo）。"),
    "slurm.refresh": ("Refresh", "刷新"),
    "slurm.nodes": ("Nodes", "节点数"),
    "slurm.gpus_per_node": ("GPUs per node", "每节点 GPU 数"),
    "slurm.gpus_per_node_help": ("One training process per GPU. 0 trains on the nodes' CPUs (the demo model), "
                                 "with Processes workers per node.",
                                 "每块 GPU 一个训练进程。0 表示用节点的 CPU 训练（演示模型），每节点的进程数取“进程数”。"),
    "slurm.time": ("Time limit (HH:MM:SS)", "时间限制（时:分:秒）"),
    "slurm.time_help": ("Slurm stops the job at this limit; shortly before, every process saves a checkpoint. "
                        "Empty: the partition's own limit.",
                        "到达此时限时 Slurm 会停止作业；在此之前每个进程都会先保存检查点。留空：使用分区自己的时限。"),
    "slurm.requeue": ("Requeue: after a time limit or preemption, continue from the checkpoint by itself",
                      "重新排队：遇到时间限制或被抢占后，自动从检查点继续"),
    "slurm.script_note": ("Danlu writes the batch script into the job's run folder (job.sbatch) for you or your "
                          "admin to read. The workspace must be on a filesystem every node shares.",
                          "丹炉会把批处理脚本写进任务的运行文件夹（job.sbatch），供你或管理员查看。工作区必须放在所有节点共享的文件系统上。"),
    "slurm.unreachable": ("The Slurm cluster does not answer:", "Slurm 集群没有响应："),
    "slurm.cluster_line": ("Cluster: {n} partition(s), {free} GPUs free", "集群：{n} 个分区，{free} 块 GPU 空闲"),
    "slurm.gpus_line": ("{free} of {total} GPUs free", "{total} 块 GPU 中 {free} 块空闲"),
    "slurm.cpus_line": ("no GPUs, {cpus} CPUs free", "无 GPU，{cpus} 个 CPU 空闲"),
    "slurm.default": (" (default)", "（默认）"),
    "slurm.nodes_line": ("{n} node(s)", "{n} 个节点"),
    "slurm.limit_line": ("up to {limit}", "最长 {limit}"),
    "slurm.this_computer": ("this computer", "这台电脑"),
    "slurm.waiting": ("waiting in Slurm's queue", "正在 Slurm 队列中等待"),
    "slurm.attempt": ("attempt", "第几次尝试"),
    "jobs.where": ("where", "运行位置"),
    "reason.time_limit": ("the time limit was reached", "到达时间限制"),
    "reason.preempted": ("preempted by the cluster", "被集群抢占"),
    "reason.node_fail": ("a node failed", "节点故障"),
    "reason.not_shared": ("the nodes cannot see the workspace", "节点看不到工作区"),
    "reason.submit_failed": ("Slurm refused the job", "Slurm 拒绝了作业"),
}
# Slurm's reasons for a pending job (squeue %r), in words; others are shown as Slurm writes them
SLURM_PENDING: dict[str, tuple[str, str]] = {
    "slurm.pending.Resources": ("waiting for resources: the nodes or GPUs it asks for are busy",
                                "等待资源：所需的节点或 GPU 正忙"),
    "slurm.pending.Priority": ("waiting for jobs with a higher priority to start first", "等待优先级更高的作业先开始"),
    "slurm.pending.BeginTime": ("waiting for its start time (a requeued job waits a moment before it starts again)",
                                "等待开始时间（重新排队的作业要稍等片刻才会再次开始）"),
    "slurm.pending.Dependency": ("waiting for another job it depends on", "等待它所依赖的另一个作业"),
    "slurm.pending.JobHeldUser": ("held by you: release it with `scontrol release ID`",
                                  "被你挂起：用 `scontrol release ID` 释放"),
    "slurm.pending.JobHeldAdmin": ("held by the cluster's admin", "被集群管理员挂起"),
    "slurm.pending.ReqNodeNotAvail": ("the nodes it needs are not available (down, drained or reserved)",
                                      "所需节点不可用（宕机、排空或被预留）"),
    "slurm.pending.PartitionTimeLimit": ("its time limit is longer than the partition allows: ask for less time",
                                         "时间限制超过分区允许的上限：请缩短时间"),
    "slurm.pending.PartitionConfig": ("it asks for more than the partition's nodes have (CPUs, memory, GPUs or nodes): "
                                      "ask for less", "所需资源超过该分区节点的配置（CPU、内存、GPU 或节点数）：请减少申请"),
    "slurm.pending.None": ("waiting to be scheduled", "等待调度"),
}

STATE_ZH = {"QUEUED": "排队中", "STARTING": "启动中", "RUNNING": "运行中", "CANCELLING": "正在停止",
            "SUCCEEDED": "已成功", "FAILED": "已失败", "CANCELLED": "已取消", "INTERRUPTED": "已中断"}

# Presets are data in English (presets/*.yaml); their Chinese text lives here, keyed by name.
PRESET_ZH: dict[tuple[str, str], str] = {
    ("demo", "use_case"): "了解丹炉如何工作",
    ("demo", "description"): "一分钟体验丹炉：用 124 个关于虚构炼丹炉的问题微调内置迷你模型。任何笔记本电脑的 CPU 都能运行；"
                             "训练后模型能正确回答“铜炉用什么火？”",
    ("demo", "time_needed"): "2 核 CPU 上约 30 秒",
    ("demo", "memory_needed"): "内存不到 1 GB；无需 GPU",
    ("support-bot", "use_case"): "客服",
    ("support-bot", "description"): "一个按你公司语气回答、遵守你的政策（退货、配送、退款）的客服助手。准备几百段真实的问答对话即可。",
    ("support-bot", "time_needed"): "1,000 段对话在一块 16 GB GPU 上约 10 分钟",
    ("support-bot", "memory_needed"): "约 4 GB 显存",
    ("summarizer", "use_case"): "摘要",
    ("summarizer", "description"): "教模型按你偏好的长度和风格总结你那类文档（报告、会议记录、文章）。准备原文和你会写的摘要配对即可。",
    ("summarizer", "time_needed"): "1,000 篇文档在一块 16 GB GPU 上约 20 分钟",
    ("summarizer", "memory_needed"): "约 6 GB 显存",
    ("persona", "use_case"): "风格与角色",
    ("persona", "description"): "让对话模型保持一致的角色或文风（品牌语气、历史人物、导师）。通常几百个示例就够了；秩 8-16 适合风格。",
    ("persona", "time_needed"): "500 段对话在一块 16 GB GPU 上约 5 分钟",
    ("persona", "memory_needed"): "约 5 GB 显存",
    ("domain-qa", "use_case"): "专业问答",
    ("domain-qa", "description"): "根据专家写的示例回答你所在领域（法律、医学、工程、产品手册）的问题。新知识需要更多数据和更大的插件，"
                                  "所以使用 thorough 配方。",
    ("domain-qa", "time_needed"): "5,000 个回答在一块 24 GB GPU 上约 1 小时",
    ("domain-qa", "memory_needed"): "约 12 GB 显存",
    ("quick", "description"): "快速初试：用小插件把数据过一遍。适合检查一切是否正常，并看到初步效果。",
    ("balanced", "description"): "常用选择：两轮、中等插件、2048 token 的示例。适合风格、格式和大多数几千条规模的对话数据集。",
    ("thorough", "description"): "用于学习新知识：大插件、三轮、更温和的学习率和更大的验证集比例。更慢，需要更多数据（几千个示例）。",
    ("tiny-demo", "description"): "内置迷你演示模型在 CPU 上的设置：较高的学习率和多轮训练，让损失在约 20 秒内明显下降。",
}


def _preset_strings() -> dict[str, tuple[str, str]]:
    """English from the preset files themselves, Chinese from PRESET_ZH."""
    from core.presets import all_presets
    out = {}
    for p in all_presets():
        for key in ("use_case", "description", "time_needed", "memory_needed"):
            zh = PRESET_ZH.get((p.name, key))
            if zh and p.data.get(key):
                out[f"preset.{p.name}.{key}"] = (str(p.data[key]), zh)
    return out


def _all_strings() -> dict[str, tuple[str, str]]:
    out = dict(UI)
    out.update(SLURM_UI)
    out.update(SLURM_PENDING)
    for name, f in FIELDS.items():
        zh_label, zh_help = FIELD_ZH.get(name, (f.metadata["label"], f.metadata["help"]))
        out[f"field.{name}"] = (f.metadata["label"], zh_label)
        out[f"help.{name}"] = (f.metadata["help"], zh_help)
    for state, word in STATE_WORDS.items():
        out[f"state.{state}"] = (word, STATE_ZH[state])
    out.update(_preset_strings())
    return out


STRINGS = _all_strings()
I18N = gr.I18n(en={k: v[0] for k, v in STRINGS.items()}, **{"zh-CN": {k: v[1] for k, v in STRINGS.items()}})


def L(key: str):
    """A translation marker for `key`; an unknown key is a bug, caught when the UI is built."""
    if key not in STRINGS:
        raise KeyError(f"no UI text {key!r} in webui/i18n.py")
    return I18N(key)


def tr(key: str, lang: str | None) -> str:
    """Plain text in one language (for places the page cannot translate, such as plot legends)."""
    en, zh = STRINGS[key]
    return zh if is_zh(lang) else en


def is_zh(lang: str | None) -> bool:
    return (lang or "").lower().startswith("zh")


def preset_text(name: str, key: str, english: str, lang: str | None) -> str:
    """A preset's text, translated when webui/i18n.py has it (presets added later show in English)."""
    k = f"preset.{name}.{key}"
    return tr(k, lang) if k in STRINGS else english
