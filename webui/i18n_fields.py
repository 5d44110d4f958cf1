"""简体中文 labels and help for every TrainConfig field.

The English text is TrainConfig's own metadata (core/config.py is the single source); this file
holds only the Chinese side, keyed by the same field names. tests/webui/test_i18n.py fails when a
field is added to TrainConfig without a line here.
"""

FIELD_ZH: dict[str, tuple[str, str]] = {
    "base_model": (
        "基础模型",
        "要微调的模型：模型预设名（如 qwen2.5-0.5b-instruct）、Hugging Face 仓库 id（如 "
        "Qwen/Qwen2.5-0.5B-Instruct）或本地文件夹。'builtin:danlu-tiny' 是丹炉在本机生成的迷你演示模型，"
        "几秒就能训练完，但它什么都不懂。"),
    "quantization": (
        "量化",
        "训练时冻结的基础模型如何存储。4bit（QLoRA）只占 'none' 约四分之一的显存，质量损失很小；"
        "8bit 居中。只有小模型或显存充足时才选 'none'。"),
    "trust_remote_code": (
        "运行模型自带的代码",
        "有些模型附带 Python 代码，加载时会在你的电脑上运行。除非信任模型作者，否则请保持关闭："
        "这些代码能做你的账户能做的任何事。"),
    "chat_template": (
        "对话模板",
        "对话如何转成文本。'auto' 使用模型自带的模板；模型没有模板时（基础模型）使用 ChatML。"
        "训练、评估和对话都使用同一个模板。"),
    "precision": (
        "计算精度",
        "计算使用的数字格式。'auto' 在支持的 GPU 上选 bf16，在 CPU 上选 fp32。"),
    "dataset": (
        "数据集文件",
        "训练数据：JSONL、JSON、CSV、TSV、Parquet 或 Excel 格式的示例文件。"),
    "dataset_format": (
        "数据集格式",
        "示例的组织方式。'auto' 自动识别：messages（OpenAI 对话）、sharegpt（带 from/value 的对话）、"
        "alpaca（instruction/input/output）、prompt_completion 或 text（纯文本文档）。"),
    "column_map": (
        "列名对应",
        "仅当你的列名与预期不同时填写：把预期名称对应到你的列名，例如 prompt: question、completion: answer。"),
    "max_seq_length": (
        "最大长度（token）",
        "超过此长度的示例会被截断。更长可容纳更长的回答，但需要更多显存。大多数对话数据用 512-2048 即可。"),
    "packing": (
        "把短示例拼在一起",
        "把几个短示例拼成一个序列（每个示例仍只看到自己），不在填充上浪费算力。更快；只有数据集很小时才关闭。"),
    "val_fraction": (
        "验证集比例",
        "留出一部分数据，用模型从未训练过的示例衡量进展。0.05 即 5%。0 表示不做验证。"),
    "train_on_inputs": (
        "也学习提问",
        "关闭：模型只学习写助手的回答（通常如此）。开启：模型也学习复现用户的消息。"),
    "lora_rank": (
        "LoRA 秩",
        "可训练小插件的大小。8-16 适合风格和格式；64 以上有助于学习新知识，但需要更多显存和数据。"),
    "lora_alpha": (
        "LoRA alpha",
        "插件的强度。常见取值是秩的两倍。"),
    "lora_dropout": (
        "LoRA dropout",
        "训练时随机忽略插件的一部分，以缓解小数据上的过拟合。通常取 0-0.1；0 最快。"),
    "target_modules": (
        "要适配的层",
        "哪些层加 LoRA 插件。'all-linear'（推荐）适配所有线性层；也可以用逗号分隔列出名称，如 q_proj,v_proj。"),
    "learning_rate": (
        "学习率",
        "每次更新的幅度。QLoRA 适合 1e-4 到 3e-4。太高损失会跳动或变成 NaN；太低则几乎没有变化。"),
    "lr_scheduler": (
        "学习率调度",
        "学习率在训练中如何变化：cosine（平滑下降，推荐）、linear（线性下降）或 constant（不变）。"),
    "warmup_ratio": (
        "预热比例",
        "训练开始时学习率从零逐渐升高的阶段，可避免早期不稳定。0.03 即前 3% 的步数。"),
    "num_epochs": (
        "轮数",
        "模型看完整个数据集的次数。大数据集 1-3 轮；小数据集可以更多，但要留意验证损失不要上升。"),
    "max_steps": (
        "最多步数",
        "训练到这么多优化步就停止；0 表示按轮数训练。"),
    "micro_batch_size": (
        "每个设备的批大小",
        "每块 GPU 一次处理的示例数。越大越快，直到显存不够；若出现显存不足，先调低这一项。"),
    "gradient_accumulation_steps": (
        "梯度累积",
        "累加这么多批后再更新一次：不增加显存就得到更大的等效批。等效批 = 批大小 × 此值 × GPU 数。"),
    "gradient_checkpointing": (
        "节省显存（梯度检查点）",
        "重新计算模型的部分结果而不是保存它们：显存少很多，计算多约 25%。大模型请保持开启。显存方案为 lowest 时按此设置使用。"),
    "memory_plan": (
        "显存方案",
        "如何把 GPU 显存用在速度上。auto：开始训练时丹炉测量空闲显存，尽可能多地保留各层的中间结果（最快），"
        "其余的层重新计算；下方的显存估算会说明它的选择和原因。lowest：最省 GPU 显存，按“节省显存（梯度检查点）”和"
        "“把保存的激活放在 CPU 内存中”的设置进行。"),
    "sharding": (
        "把模型分到多块 GPU 上",
        "有多块 GPU 时使用。auto：放得下时每块 GPU 各持有完整模型（最快），否则把模型的 4bit 权重分到各块 GPU 上"
        "（FSDP）。off：从不拆分。fsdp：总是拆分。"),
    "optimizer": (
        "优化器",
        "adamw 是标准选择。paged_adamw_8bit 用 8 位保存优化器状态（仅 GPU）。"),
    "weight_decay": (
        "权重衰减",
        "把权重轻轻拉向零；0-0.1。"),
    "max_grad_norm": (
        "梯度裁剪",
        "限制每次更新的大小以保持训练稳定。0 表示不裁剪。"),
    "seed": (
        "随机种子",
        "相同的种子 + 相同的数据 + 相同的设置 = 相同的训练结果。"),
    "logging_steps": (
        "每 N 步记录一次",
        "多久记录并绘制一次损失。"),
    "eval_steps": (
        "每 N 步验证一次",
        "多久测量一次验证损失。0 表示只在结束时测量。"),
    "save_steps": (
        "每 N 步保存检查点",
        "多久保存一次进度，以便停止或崩溃的训练可以继续。0 表示只在结束时保存。"),
    "save_total_limit": (
        "保留的检查点数",
        "更早的检查点会被删除以节省磁盘空间。"),
    "nan_patience": (
        "连续 N 次异常后停止",
        "损失连续这么多次记录都不是数字（NaN/inf）时停止训练；保留最后一个正常的检查点。"),
    "stall_minutes": (
        "停滞判定（分钟）",
        "这么长时间内没有完成任何训练步就判定失败（GPU 或网络卡住）。"),
    "probe_prompts": (
        "探针问题",
        "模型在每个检查点和结束时都会回答这些问题，让你在训练过程中看到它的回答如何变化（每行一个；最多 10 个）。"
        "留空则跳过。"),
    "run_name": (
        "任务名称",
        "在任务列表中识别这次训练的名字（可选）。"),
    "attn_implementation": (
        "注意力内核",
        "sdpa 快且到处可用；eager 是较慢的参考实现。"),
    "fused_loss": (
        "融合损失（省显存）",
        "计算损失时不生成完整的词表大小输出（GPU，Liger 内核）。词表大的模型可省下好几 GiB。CPU 上忽略。"),
    "offload_activations": (
        "把保存的激活放在 CPU 内存中",
        "开启梯度检查点时，每层保存的输入会移到电脑内存，直到反向传播需要时再取回，GPU 同时继续计算：显存更少（8B 模型、"
        "批大小 4 × 2048 token 时约省 1.7 GiB），每步约慢 1%。仅 GPU。"),
    "compile": (
        "编译网络层",
        "在 GPU 上用 torch.compile 编译每个 Transformer 层：短暂预热后每步更快。CPU 上忽略。"),
}
