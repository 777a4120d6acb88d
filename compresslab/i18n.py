"""The one message catalogue of every panel, chart, app and exercise string, in English and Simplified Chinese.

Owns: ``MESSAGES`` (key -> {"en": ..., "zh": ...}), the language in use (:func:`set_language`,
:func:`get_language`; the default comes from the ``COMPRESSLAB_LANGUAGE`` environment variable,
else English) and :func:`t`, which formats a message in that language. A panel reads the language
when it is BUILT: a panel built after ``cl.set_language("zh")`` is Chinese; so does a chart
(``compresslab.plots``, keys ``plot.*``) when its figure or traces are made.

A missing key is an error naming it, never a silent fallback to English, and both languages have
the same keys and the same ``{fields}`` (tests/test_i18n.py checks).

Example:
    >>> set_language("zh")
    >>> t("quant.bits")
    '位宽'
"""

from __future__ import annotations

import os

LANGUAGES = ("en", "zh")
LANGUAGE_VARIABLE = "COMPRESSLAB_LANGUAGE"

# key -> (English, Chinese). English texts are the ones the panels always showed (tests match some).
_PAIRS: dict[str, tuple[str, str]] = {
    # -- every panel (_base) --
    "panel.error": ("Error:", "错误："),
    "panel.warning": ("Warning:", "警告："),
    "panel.already_measured": ("{name} is already measured: {accuracy:.2f}% ({backend}); change a setting to "
                               "measure another variant",
                               "{name} 已经测量过：{accuracy:.2f}%（{backend}）；改变某个设置才能测量另一个变体"),
    "chart.waiting": ("drawing chart…", "正在绘制图表…"),
    "chart.failed": ("chart not drawn:", "图表未能绘制："),
    # -- quantization lab --
    "quant.title": ("Quantization lab", "量化实验室"),
    "quant.bits": ("bits", "位宽"),
    "quant.scheme": ("scheme", "方案"),
    "quant.scales": ("scales", "缩放粒度"),
    "quant.fraction": ("fraction p", "小数位 p"),
    "quant.all_layers": ("all layers", "全部层"),
    "quant.layer": ("quantize", "量化范围"),
    "quant.sweep": ("fill curve (1-16 bits)", "补全曲线（1-16 位）"),
    "quant.ptq_dynamic": ("PTQ dynamic", "PTQ 动态范围"),
    "quant.ptq_dynamic_tip": ("int8 weights, float activations", "int8 权重，浮点激活"),
    "quant.ptq_float16": ("PTQ float16", "PTQ float16"),
    "quant.ptq_float16_tip": ("float16 weights", "float16 权重"),
    "quant.ptq_int8": ("PTQ int8", "PTQ int8"),
    "quant.ptq_int8_tip": ("full integer, int8 input and output", "全整数，int8 输入和输出"),
    "quant.qat_epochs": ("QAT epochs", "QAT 轮数"),
    "quant.qat": ("QAT int8", "QAT int8"),
    "quant.qat_tip": ("quantization-aware training, then int8 TFLite", "量化感知训练，然后转换为 int8 TFLite"),
    "quant.lowbit_mode": ("low-bit", "低位宽"),
    "quant.lowbit": ("write low-bit file", "写出低位宽文件"),
    "quant.lowbit_tip": ("a real TFLite file with 4- or 8-bit weights (ai-edge-quantizer)",
                         "真实的 4 位或 8 位权重 TFLite 文件（ai-edge-quantizer）"),
    "quant.lowbit_int4_channel": ("int4 weights (per channel)", "int4 权重（逐通道）"),
    "quant.lowbit_int4_blocks": ("int4 weights (blocks of 32)", "int4 权重（每 32 个一块）"),
    "quant.lowbit_int8": ("int8 weights", "int8 权重"),
    "quant.errors_of": ("error of", "误差对象"),
    "quant.slider_simulation": ("simulation at the slider", "滑块处的模拟"),
    "quant.layer_errors": ("per-layer error", "逐层误差"),
    "quant.layer_errors_tip": ("weight and output error of every layer (validation images)",
                               "每一层的权重误差和输出误差（验证集图像）"),
    "quant.file": ("file", "文件"),
    "quant.path": ("path", "路径"),
    "quant.export": ("export .tflite", "导出 .tflite"),
    "quant.header": ("float32 test accuracy: <b>{accuracy:.2f}%</b> on {count:,} {dataset} test images",
                     "float32 测试集准确率：<b>{accuracy:.2f}%</b>（{dataset} 测试集 {count:,} 张图像）"),
    "quant.deploy": ("Deployable TFLite files (accuracy measured in LiteRT)",
                     "可部署的 TFLite 文件（准确率在 LiteRT 中测量）"),
    "quant.layers_empty": ("Which layer broke? Press 'per-layer error'", "哪一层坏了？请按「逐层误差」"),
    "quant.layers_title": ("Which layer broke? {label} ({images} {split} images)",
                           "哪一层坏了？{label}（{images} 张 {split} 图像）"),
    "quant.levels": ("levels", "量化级别"),
    "quant.levels_channel": ("levels of channel {group} (widest range)", "通道 {group} 的量化级别（范围最宽）"),
    "quant.row_weights": ("weights", "权重"),
    "quant.row_bits": ("{series}, {bits} bits", "{series}，{bits} 位"),
    "quant.row_accuracy": ("test accuracy (simulated, Keras)", "测试集准确率（模拟，Keras）"),
    "quant.row_drop": ("drop against float32", "相对 float32 的下降"),
    "quant.points": ("{points:+.2f} points", "{points:+.2f} 个百分点"),
    "quant.row_codes": ("distinct codes in {layer}", "{layer} 中不同编码的个数"),
    "quant.codes": ("{codes:,} (at most {most:,})", "{codes:,}（最多 {most:,}）"),
    "quant.row_packed": ("ideal packed weights", "理想紧凑存储的权重"),
    "quant.packed": ("{kb:,.1f} KB ({ratio:.2f} x float32)", "{kb:,.1f} KB（float32 的 {ratio:.2f} 倍）"),
    "quant.row_update": ("update time", "更新耗时"),
    "quant.sweep_label": ("bits 1-16", "1-16 位"),
    "quant.bits_measured": ("{bits} bits measured", "已测量 {bits} 位"),
    "quant.curve_filled": ("curve filled for {series}", "已补全 {series} 的曲线"),
    "quant.converting": ("{name}: converting", "{name}：转换中"),
    "quant.measuring": ("{name}: measuring in LiteRT", "{name}：在 LiteRT 中测量"),
    "quant.ptq_done": ("PTQ {mode}: {accuracy:.2f}% (LiteRT), {kb:,.1f} KB, {ms:.3f} ms/image ({threads} thread)",
                       "PTQ {mode}：{accuracy:.2f}%（LiteRT），{kb:,.1f} KB，每张图像 {ms:.3f} ms（{threads} 个线程）"),
    "quant.qat_training": ("QAT: training", "QAT：训练中"),
    "quant.qat_epoch": ("QAT epoch {epoch}/{epochs}: loss {loss:.4f}", "QAT 第 {epoch}/{epochs} 轮：损失 {loss:.4f}"),
    "quant.qat_done": ("QAT int8: {accuracy:.2f}% (LiteRT), {kb:,.1f} KB", "QAT int8：{accuracy:.2f}%（LiteRT），{kb:,.1f} KB"),
    "quant.lowbit_writing": ("{label}: writing the file (ai-edge-quantizer)", "{label}：正在写出文件（ai-edge-quantizer）"),
    "quant.lowbit_done": ("{label} file: {accuracy:.2f}% (LiteRT), {kb:,.1f} KB = {ratio:.2f} x the float32 TFLite file",
                          "{label} 文件：{accuracy:.2f}%（LiteRT），{kb:,.1f} KB = float32 TFLite 文件的 {ratio:.2f} 倍"),
    "quant.simulation_label": ("simulation, {spec}", "模拟，{spec}"),
    "quant.layer_errors_of": ("per-layer error of {label}", "{label} 的逐层误差"),
    "quant.worst_layer": ("per-layer error of {label}: lowest output SNR at {layer} ({snr:.1f} dB)",
                          "{label} 的逐层误差：输出信噪比最低的是 {layer}（{snr:.1f} dB）"),
    "quant.wrote": ("wrote {path} ({size:,} bytes)", "已写出 {path}（{size:,} 字节）"),
    # -- pruning lab --
    "prune.title": ("Pruning lab", "剪枝实验室"),
    "prune.threshold": ("threshold", "阈值"),
    "prune.sparsity": ("sparsity", "稀疏度"),
    "prune.scope": ("scope", "范围"),
    "prune.per_layer": ("per layer", "逐层"),
    "prune.global": ("global", "全局"),
    "prune.histogram": ("histogram", "直方图"),
    "prune.all_layers": ("all layers", "全部层"),
    "prune.schedule": ("schedule", "调度"),
    "prune.epochs": ("epochs", "轮数"),
    "prune.finetune": ("Fine-tune at this sparsity", "在此稀疏度下微调"),
    "prune.tflite": ("Measure TFLite sizes", "测量 TFLite 大小"),
    "prune.tflite_note": ("<i>TFLite file sizes are measured only on the button (a conversion takes seconds).</i>",
                          "<i>TFLite 文件大小只在按下按钮时测量（一次转换需要几秒钟）。</i>"),
    "prune.finetune_heading": ("<b>Fine-tuning with a tfmot schedule</b>", "<b>按 tfmot 调度进行微调</b>"),
    "prune.rule_threshold": ("zero |w| &lt; {threshold:.4f}", "将 |w| &lt; {threshold:.4f} 的权重置零"),
    "prune.rule_layer": ("zero the smallest {sparsity:.0%} of weights (each layer)",
                         "将最小的 {sparsity:.0%} 权重置零（每层各自）"),
    "prune.rule_global": ("zero the smallest {sparsity:.0%} of weights (ranked globally)",
                          "将最小的 {sparsity:.0%} 权重置零（全局排序）"),
    "prune.summary": ("<b>{rule}</b>: kernel sparsity {sparsity:.1%}, test accuracy <b>{accuracy:.2%}</b> "
                      "(unpruned {unpruned:.2%}). Quick sizes: gzip -6 of float32 weights {gzip:,.0f} kB, "
                      "bitmask+values {bitmask:,.0f} kB, dense {dense:,.0f} kB.",
                      "<b>{rule}</b>：卷积核稀疏度 {sparsity:.1%}，测试集准确率 <b>{accuracy:.2%}</b>"
                      "（未剪枝 {unpruned:.2%}）。快速估算大小：float32 权重的 gzip -6 {gzip:,.0f} kB，"
                      "位掩码+数值 {bitmask:,.0f} kB，稠密存储 {dense:,.0f} kB。"),
    "prune.finetune_label": ("fine-tuning", "微调中"),
    "prune.finetuning": ("fine-tuning to {sparsity:.0%} ({scope}, {schedule}) for {epochs} epoch(s)...",
                         "正在微调到 {sparsity:.0%}（{scope}，{schedule}），共 {epochs} 轮……"),
    "prune.epoch": ("epoch {epoch}/{epochs}: train accuracy {accuracy:.2%}",
                    "第 {epoch}/{epochs} 轮：训练集准确率 {accuracy:.2%}"),
    "prune.finetuned": ("fine-tuned ({schedule}, {epochs} epoch(s)): sparsity {reached:.1%}, test accuracy "
                        "{accuracy:.2%} (one-shot at this sparsity {one_shot:.2%}, unpruned {unpruned:.2%}) "
                        "in {seconds:.0f} s",
                        "微调完成（{schedule}，{epochs} 轮）：稀疏度 {reached:.1%}，测试集准确率 {accuracy:.2%}"
                        "（同一稀疏度下一次性剪枝 {one_shot:.2%}，未剪枝 {unpruned:.2%}），用时 {seconds:.0f} 秒"),
    "prune.converting": ("converting", "转换中"),
    "prune.tflite_table": ("<table><tr><th>variant</th><th>TFLite file bytes</th><th>gzip -9 of the file</th>"
                           "<th>bitmask encoding</th><th>CSR encoding</th></tr>{cells}</table>"
                           "<small>Same TFLite size: zeros are still stored as 4-byte floats. Only compression "
                           "(gzip) or a sparse encoding makes the pruned file smaller.</small>",
                           "<table><tr><th>变体</th><th>TFLite 文件字节数</th><th>文件的 gzip -9</th>"
                           "<th>位掩码编码</th><th>CSR 编码</th></tr>{cells}</table>"
                           "<small>TFLite 大小不变：零仍以 4 字节浮点数存储。只有压缩（gzip）或稀疏编码"
                           "才能让剪枝后的文件变小。</small>"),
    "prune.accuracy_title": ("Test accuracy against sparsity (points you visited)",
                             "测试集准确率与稀疏度（你访问过的点）"),
    "prune.histogram_title": ("Weights of {layer}: kept and pruned", "{layer} 的权重：保留的与剪掉的"),
    "prune.weights_of": ("Weights of {layer}", "{layer} 的权重"),
    "prune.schedule_title": ("Schedule preview: {final:.0%} over {epochs} epoch(s)",
                             "调度预览：{epochs} 轮内达到 {final:.0%}"),
    # -- distillation lab --
    "distill.title": ("Distillation lab", "知识蒸馏实验室"),
    "distill.temperature": ("temperature T", "温度 T"),
    "distill.alpha": ("alpha (hard)", "alpha（硬标签）"),
    "distill.width": ("student width", "学生网络宽度"),
    "distill.width_option": ("{width:g}x ({params:,} parameters)", "{width:g}x（{params:,} 个参数）"),
    "distill.epochs": ("epochs", "轮数"),
    "distill.image": ("test image", "测试图像"),
    "distill.run": ("Train both students", "训练两个学生网络"),
    "distill.press": ("<i>Press the button to train and measure both students.</i>",
                      "<i>按下按钮，训练并测量两个学生网络。</i>"),
    "distill.teacher_line": ("<b>Teacher</b> {name}: {params:,} parameters, {accuracy:.1%} on {count:,} test images",
                             "<b>教师网络</b> {name}：{params:,} 个参数，在 {count:,} 张测试图像上为 {accuracy:.1%}"),
    "distill.soft_title": ("Teacher on test image {index}: softmax(logits / T) at T = 1 and T = {t:g} "
                           "(entropy {entropy:.2f} bits)",
                           "教师网络在测试图像 {index} 上：T = 1 与 T = {t:g} 时的 softmax(logits / T)"
                           "（熵 {entropy:.2f} 比特）"),
    "distill.true": ("{name} (true)", "{name}（真实）"),
    "distill.image_title": ("test image {index}: {label}", "测试图像 {index}：{label}"),
    "distill.training": ("training", "训练中"),
    "distill.epoch": ("{run} student: epoch {epoch}/{epochs}{shown}", "{run} 学生网络：第 {epoch}/{epochs} 轮{shown}"),
    "distill.epoch_accuracy": (", test accuracy {accuracy:.1%}", "，测试集准确率 {accuracy:.1%}"),
    "distill.from_scratch": ("training the {width:g}x student from scratch ({epochs} epochs)...",
                             "正在从零训练 {width:g}x 学生网络（{epochs} 轮）……"),
    "distill.measuring_teacher": ("measuring the teacher...", "正在测量教师网络……"),
    "distill.measuring_student": ("measuring the {role} student...", "正在测量 {role} 学生网络……"),
    "distill.done": ("done in {seconds:.0f} s: scratch {scratch:.1%}, distilled {distilled:.1%}, teacher "
                     "{teacher:.1%} on {count:,} test images (T = {t:g}, alpha = {alpha:g})",
                     "完成，用时 {seconds:.0f} 秒：从零训练 {scratch:.1%}，知识蒸馏 {distilled:.1%}，教师网络 "
                     "{teacher:.1%}（{count:,} 张测试图像；T = {t:g}，alpha = {alpha:g}）"),
    "distill.col_model": ("model", "模型"),
    "distill.col_accuracy": ("test accuracy (%)", "测试集准确率（%）"),
    "distill.col_errors": ("test errors", "测试集错误数"),
    "distill.col_params": ("parameters", "参数"),
    "distill.col_tflite": ("TFLite bytes", "TFLite 字节数"),
    "distill.col_gzip": ("gzip bytes", "gzip 字节数"),
    "distill.col_latency": ("latency (ms)", "延迟（ms）"),
    # -- tradeoff board --
    "board.title": ("Tradeoff board", "权衡看板"),
    "board.techniques": ("techniques", "技术"),
    "board.sort": ("sort by", "排序依据"),
    "board.descending": ("descending", "降序"),
    "board.size": ("size", "大小"),
    "board.compare": ("compare", "对比"),
    "board.reload_study": ("reload study", "重新读取研究"),
    "board.reload_log": ("reload log", "重新读取日志"),
    "board.reading": ("reading", "读取中"),
    "board.sort.accuracy": ("accuracy", "准确率"),
    "board.sort.size": ("size", "大小"),
    "board.sort.ratio": ("x smaller", "缩小倍数"),
    "board.sort.name": ("name", "名称"),
    "board.sort.technique": ("technique", "技术"),
    "board.sort.latency": ("latency", "延迟"),
    "board.sort.time": ("time measured", "测量时间"),
    "board.col.name": ("name", "名称"),
    "board.col.technique": ("technique", "技术"),
    "board.col.dataset": ("data set", "数据集"),
    "board.col.accuracy_pct": ("accuracy %", "准确率 %"),
    "board.col.accuracy_backend": ("measured by", "测量方式"),
    "board.col.size_bytes": ("size B", "大小 B"),
    "board.col.plotted_size": ("plotted size B", "图中大小 B"),
    "board.col.ratio": ("x smaller", "缩小倍数"),
    "board.col.ratio_long": ("x smaller than its reference", "相对参照缩小倍数"),
    "board.col.params": ("params", "参数"),
    "board.col.nonzero_params": ("non-zero", "非零"),
    "board.col.nonzero_params_long": ("non-zero params", "非零参数"),
    "board.col.dense_float32_bytes": ("dense float32 B", "稠密 float32 B"),
    "board.col.tflite_bytes": ("TFLite B", "TFLite 文件 B"),
    "board.col.gzip_bytes": ("gzip B", "gzip 压缩 B"),
    "board.col.compressed_bytes": ("compressed file B", "压缩文件 B"),
    "board.col.latency_ms": ("latency ms", "延迟 ms"),
    "board.col.spec_json": ("spec", "规格"),
    "board.select_hint": ("<p><i>Select variants in 'compare' to see them side by side.</i></p>",
                          "<p><i>在「对比」中选择变体，即可并排查看。</i></p>"),
    "board.shown": ("{visible} of {total} variant(s) shown, {selected} selected",
                    "显示 {total} 个变体中的 {visible} 个，已选 {selected} 个"),
    # -- study monitor, class submit box, export box --
    "study.refresh": ("refresh", "刷新"),
    "study.heading": ("Study {name!r}", "研究 {name!r}"),
    "study.trials_title": ("{name}: {count} finished trial(s)", "{name}：已完成 {count} 次试验"),
    "submit.title": ("Submit to the class board", "提交到班级看板"),
    "submit.class": ("class", "班级"),
    "submit.class_placeholder": ("class board, e.g. lab-3", "班级看板，例如 lab-3"),
    "submit.student": ("student", "学生"),
    "submit.student_placeholder": ("your name (empty: anonymous)", "你的名字（留空：匿名）"),
    "submit.storage": ("storage", "存储"),
    "submit.storage_placeholder": ("database URL (empty: this machine)", "数据库 URL（留空：本机）"),
    "submit.button": ("Submit to class board", "提交到班级看板"),
    "submit.submitting": ("submitting", "提交中"),
    "submit.done": ("{added} new record(s) on the board {name!r} ({already} already there)",
                    "看板 {name!r} 新增 {added} 条记录（{already} 条已存在）"),
    "export.name": ("your name", "你的名字"),
    "export.button": ("Export my results", "导出我的结果"),
    "export.tip": ("write every variant you measured to a file for your lecturer",
                   "把你测量过的每个变体写入一个文件，交给老师"),
    "export.exporting": ("exporting", "导出中"),
    "export.done": ("Exported {count} variant(s) to {path}: hand this file to your lecturer (or leave it there if "
                    "they collect the folder)",
                    "已将 {count} 个变体导出到 {path}：把这个文件交给老师（如果老师收取整个文件夹，留在原处即可）"),
    # -- classroom app --
    "app.language": ("language", "语言"),
    "app.tab.Quantize": ("Quantize", "量化"),
    "app.tab.Prune": ("Prune", "剪枝"),
    "app.tab.Distill": ("Distill", "知识蒸馏"),
    "app.tab.Compare": ("Compare", "对比"),
    "app.dataset": ("data set", "数据集"),
    "app.digits": ("digits (offline, 1,347 train / 450 test images)", "digits（离线，1,347 张训练 / 450 张测试图像）"),
    "app.mnist": ("MNIST (from {folder})", "MNIST（来自 {folder}）"),
    "app.mnist_note": ("MNIST is offered when the app is started with {variable} naming a folder that holds its "
                       "IDX files, e.g. <code>{variable}=../shared/data/mnist make app</code>.",
                       "启动应用时若用 {variable} 指定一个存放 MNIST IDX 文件的文件夹，就可以选择 MNIST，例如 "
                       "<code>{variable}=../shared/data/mnist make app</code>。"),
    "app.model": ("model", "模型"),
    "app.load": ("Load", "加载"),
    "app.add_pruned": ("Add this pruned model to Compare", "把这个剪枝模型加入对比"),
    "app.gather": ("Gather from the other tabs", "从其他标签页收集"),
    "app.press_load": ("<i>Press <b>Load</b> to start.</i>", "<i>按<b>加载</b>开始。</i>"),
    "app.building": ("<i>Building the panel...</i>", "<i>正在构建面板……</i>"),
    "app.loading_label": ("loading", "加载中"),
    "app.loading": ("Loading {name} and the {arch} baseline (the first time, it trains: about a minute)",
                    "正在加载 {name} 和 {arch} 基线模型（第一次需要训练：约一分钟）"),
    "app.loaded": ("{arch} on {name}: {params:,} parameters, {train:,} training / {test:,} test images",
                   "{arch}（{name}）：{params:,} 个参数，{train:,} 张训练 / {test:,} 张测试图像"),
    "app.building_tab": ("building {tab}", "正在构建{tab}"),
    "app.compare_intro": ("<p>Every variant measured in the other tabs (the PTQ / QAT buttons, <i>Add this pruned "
                          "model</i>, a distillation run) joins this chart when this tab is opened or on "
                          "<i>Gather</i>.</p>",
                          "<p>在其他标签页测量的每个变体（PTQ / QAT 按钮、<i>把这个剪枝模型加入对比</i>、"
                          "一次知识蒸馏运行）会在打开此标签页或按<i>从其他标签页收集</i>时加入此图。</p>"),
    "app.measuring": ("measuring", "测量中"),
    "app.added": ("Added {name}: {accuracy:.2%}, gzip {gzip:,} B", "已加入 {name}：{accuracy:.2%}，gzip {gzip:,} B"),
    "app.kept": (" · the {count} result(s) measured before stay in Compare",
                 " · 之前测得的 {count} 个结果仍保留在对比中"),
    "app.reload_note": ("Language changed: press <b>Load</b> to rebuild the tabs in {language}.",
                        "语言已切换：按<b>加载</b>，用{language}重建各标签页。"),
    "app.language_name": ("English", "中文"),
    # -- exercises --
    "exercise.correct": ("correct!", "正确！"),
    "exercise.not_answered": ("fill in your answer first (replace the None)", "请先填写你的答案（替换 None）"),
    "exercise.not_yet": ("not yet. Hint: {hint}", "还不对。提示：{hint}"),
    "exercise.raised": ("not yet: checking your answer raised {error}. Hint: {hint}",
                        "还不对：检查你的答案时出现了 {error}。提示：{hint}"),
    "exercise.function_raised": ("not yet: your function raised {error} on test case {number}. Hint: {hint}",
                                 "还不对：你的函数在测试用例 {number} 上抛出了 {error}。提示：{hint}"),
    "exercise.returned_none": ("not yet: your function returned None on test case {number} (did it `return`?). "
                               "Hint: {hint}",
                               "还不对：你的函数在测试用例 {number} 上返回了 None（忘了 `return` 吗？）。提示：{hint}"),
    "exercise.different": ("not yet: test case {number} gives a different result. Hint: {hint}",
                           "还不对：测试用例 {number} 的结果不同。提示：{hint}"),
    # -- charts (compresslab/plots): titles, axis titles, legend names, hover texts --
    "plot.count": ("count", "计数"),
    "plot.weight_value": ("weight value", "权重值"),
    "plot.weights": ("weights", "权重"),
    "plot.weights_title": ("Weights", "权重"),
    "plot.test_accuracy": ("test accuracy (%)", "测试集准确率（%）"),
    "plot.validation_accuracy": ("validation accuracy (%)", "验证集准确率（%）"),
    "plot.mixed_accuracy": ("accuracy (%): validation and test points (see each point)",
                            "准确率（%）：验证集与测试集的点都有（见各点）"),
    "plot.hover_validation": ("measured on the validation split (used for choosing)", "在验证集上测得（用于选择）"),
    "plot.accuracy": ("accuracy", "准确率"),
    "plot.accuracy_pct": ("accuracy (%)", "准确率（%）"),
    "plot.layer": ("layer", "层"),
    "plot.sparsity": ("sparsity", "稀疏度"),
    "plot.sparsity_pct": ("sparsity (%)", "稀疏度（%）"),
    "plot.technique.baseline": ("baseline", "基线"),
    "plot.technique.quantize": ("quantize", "量化"),
    "plot.technique.cluster": ("cluster", "聚类"),
    "plot.technique.prune": ("prune", "剪枝"),
    "plot.technique.distill": ("distill", "知识蒸馏"),
    "plot.technique.pipeline": ("pipeline", "流水线"),
    # data labels the panels plot (series, variants, schedules): shown translated, kept English in the data
    "plot.label.magnitude_layer": ("magnitude, layer scope", "幅值，逐层范围"),
    "plot.label.symmetric_per_channel": ("symmetric per-channel", "对称，逐通道"),
    "plot.label.symmetric_per_tensor": ("symmetric per-tensor", "对称，逐张量"),
    "plot.label.asymmetric_per_channel": ("asymmetric per-channel", "非对称，逐通道"),
    "plot.label.asymmetric_per_tensor": ("asymmetric per-tensor", "非对称，逐张量"),
    "plot.label.fixed_point": ("fixed-point p={p}", "定点 p={p}"),
    "plot.label.layer_only": ("{series} ({layer} only)", "{series}（仅 {layer}）"),
    "quant.spec": ("{bits}-bit {series}", "{bits} 位，{series}"),
    "quant.spec_fixed_point": ("{bits}-bit fixed-point Q{integer}.{fraction}", "{bits} 位定点 Q{integer}.{fraction}"),
    "quant.scheme_symmetric": ("symmetric", "对称"),
    "quant.scheme_asymmetric": ("asymmetric", "非对称"),
    "quant.scheme_fixed_point": ("fixed_point", "定点"),
    "quant.granularity_per_tensor": ("per_tensor", "逐张量"),
    "quant.granularity_per_channel": ("per_channel", "逐通道"),
    "plot.label.magnitude_global": ("magnitude, global scope", "幅值，全局范围"),
    "plot.label.threshold": ("threshold |w| < t", "阈值 |w| < t"),
    "plot.label.finetuned": ("fine-tuned ({schedule})", "微调（{schedule}）"),
    "plot.label.polynomial": ("polynomial", "多项式"),
    "plot.label.constant": ("constant", "恒定"),
    "plot.label.chosen": ("{schedule} (chosen)", "{schedule}（已选）"),
    "plot.label.pruned_now": ("pruned now", "当前剪枝结果"),
    "plot.label.teacher": ("teacher ({name})", "教师网络（{name}）"),
    "plot.label.scratch": ("scratch student {width}x", "从零训练的学生网络 {width}x"),
    "plot.label.distilled": ("distilled student {width}x", "蒸馏的学生网络 {width}x"),
    # tradeoff chart
    "plot.tradeoff_title": ("Size against accuracy", "大小与准确率"),
    "plot.pareto_front": ("Pareto front", "帕累托前沿"),
    "plot.selected": ("selected", "已选"),
    "plot.size_axis": ("size in bytes, log scale ({measure})", "大小（字节，对数坐标；{measure}）"),
    "plot.size_measure.smallest": ("smallest stored file", "最小的存储文件"),
    "plot.size_measure.extra.compressed_bytes": ("compressed file (compresslab codec)", "压缩文件（compresslab 编解码器）"),
    "plot.size_measure.gzip_bytes": ("gzip -9 of the TFLite file", "TFLite 文件的 gzip -9"),
    "plot.size_measure.tflite_bytes": ("TFLite file", "TFLite 文件"),
    "plot.size_measure.dense_float32_bytes": ("dense float32 (4 x params)", "稠密 float32（4 × 参数个数）"),
    "plot.hover_accuracy": ("accuracy {accuracy:.2f}% ({backend})", "准确率 {accuracy:.2f}%（{backend}）"),
    "plot.hover_no_accuracy": ("accuracy: not measured", "准确率：未测量"),
    "plot.hover_size": ("size {size:,.0f} bytes ({measure})", "大小 {size:,.0f} 字节（{measure}）"),
    "plot.hover_no_size": ("size: not measured", "大小：未测量"),
    "plot.hover_smaller": ("{ratio:.1f}x smaller than {reference}", "缩小为{reference} 的 1/{ratio:.1f}"),
    "plot.hover_dense": ("dense float32", "稠密 float32"),
    "plot.hover_dense_of": ("{name} (dense float32)", "{name}（稠密 float32）"),
    "plot.hover_spec": ("spec: {spec}", "配置：{spec}"),
    # pruning charts
    "plot.kept": ("kept ({count:,})", "保留（{count:,}）"),
    "plot.pruned": ("pruned ({count:,})", "剪掉（{count:,}）"),
    "plot.threshold_line": ("±threshold {threshold:.4g}", "±阈值 {threshold:.4g}"),
    "plot.no_threshold": ("no single threshold (per-layer cuts)", "没有统一阈值（每层各自截断）"),
    "plot.threshold_title": ("Weights and the pruning threshold", "权重与剪枝阈值"),
    "plot.weight_before": ("weight value (before pruning)", "权重值（剪枝前）"),
    "plot.target": ("target", "目标"),
    "plot.target_pct": ("target {percent:.0f}%", "目标 {percent:.0f}%"),
    "plot.layer_sparsity_title": ("Sparsity per layer", "逐层稀疏度"),
    "plot.zero_weights": ("zero weights (%)", "零权重（%）"),
    "plot.unpruned": ("unpruned", "未剪枝"),
    "plot.now": ("now", "当前"),
    "plot.accuracy_sparsity_title": ("Accuracy against sparsity", "准确率与稀疏度"),
    "plot.sensitivity_title": ("Sensitivity: each layer pruned alone", "敏感度：每次只剪枝一层"),
    "plot.layer_sparsity_pct": ("sparsity of that layer (%)", "该层的稀疏度（%）"),
    "plot.schedule_title": ("Sparsity schedule during fine-tuning", "微调期间的稀疏度调度"),
    "plot.training_step": ("training step", "训练步"),
    "plot.schedule": ("schedule", "调度"),
    "plot.epoch_end": ("epoch end", "一轮结束"),
    "plot.size_label.dense_float32_bytes": ("dense float32 (4 B x params)", "稠密 float32（4 B × 参数个数）"),
    "plot.size_label.tflite_bytes": ("TFLite file", "TFLite 文件"),
    "plot.size_label.gzip_bytes": ("TFLite file, gzip -9", "TFLite 文件，gzip -9"),
    "plot.size_label.weights_gzip_bytes": ("float32 weights, gzip -6 (quick proxy)", "float32 权重，gzip -6（快速估算）"),
    "plot.size_label.bitmask_bytes": ("bitmask + non-zero values", "位掩码 + 非零值"),
    "plot.size_label.csr_bytes": ("CSR (row pointers + column indices + values)", "CSR（行指针 + 列索引 + 数值）"),
    "plot.model": ("model", "模型"),
    "plot.sizes_title": ("Honest sizes", "真实大小"),
    "plot.variant": ("variant", "变体"),
    "plot.kilobytes": ("kB (1 kB = 1000 bytes)", "kB（1 kB = 1000 字节）"),
    "plot.log_alpha_title": ("Which weights does the model need?", "模型需要哪些权重？"),
    "plot.log_alpha_panel": ("log alpha (light: above {threshold:g}, removed)", "log alpha（浅色：高于 {threshold:g}，被移除）"),
    "plot.magnitude_kept": ("kept by magnitude pruning (dark)", "幅值剪枝保留的权重（深色）"),
    # quantization charts
    "plot.levels": ("quantization levels", "量化级别"),
    "plot.levels_count": ("{label} ({count})", "{label}（{count}）"),
    "plot.levels_dense": ("{count:,} {label} (too dense to draw)", "{count:,} 个{label}（太密，无法画出）"),
    "plot.float_weights": ("float weights", "浮点权重"),
    "plot.quantized_weights": ("quantized weights", "量化后的权重"),
    "plot.bits_title": ("Accuracy against bits per weight", "准确率与每个权重的位宽"),
    "plot.bits_axis": ("bits per weight", "每个权重的位数"),
    "plot.simulated": ("simulated", "模拟"),
    "plot.current_bits": ("current: {bits} bits", "当前：{bits} 位"),
    "plot.file_size_title": ("File size against accuracy", "文件大小与准确率"),
    "plot.kb.tflite_bytes": ("TFLite file (KB)", "TFLite 文件（KB）"),
    "plot.kb.gzip_bytes": ("gzip'd TFLite file (KB)", "gzip 压缩后的 TFLite 文件（KB）"),
    "plot.kb.dense_float32_bytes": ("dense float32 weights (KB)", "稠密 float32 权重（KB）"),
    "plot.no_files": ("no files yet", "还没有文件"),
    "plot.no_files_note": ("No deployable file measured yet: press a PTQ or QAT button",
                           "还没有测量任何可部署文件：请按 PTQ 或 QAT 按钮"),
    "plot.drop_title": ("Accuracy drop when one layer is quantized", "只量化一层时的准确率下降"),
    "plot.bits": ("{bits} bits", "{bits} 位"),
    "plot.layer_alone": ("layer (quantized alone)", "层（单独量化）"),
    "plot.accuracy_drop": ("accuracy drop (points)", "准确率下降（百分点）"),
    "plot.layer_errors_title": ("Which layer broke? Signal-to-noise ratio per layer", "哪一层坏了？逐层信噪比"),
    "plot.layer_output": ("layer output", "层输出"),
    "plot.layer_storage": ("layer (how its weights are stored)", "层（权重的存储方式）"),
    "plot.snr": ("SNR (dB, higher is better)", "信噪比（dB，越高越好）"),
    # distillation charts
    "plot.temperature": ("T = {t:g} (H = {entropy:.2f} bits)", "T = {t:g}（H = {entropy:.2f} 比特）"),
    "plot.class_hover": ("class %{{x}}: p = %{{y:.4f}}", "类别 %{{x}}：p = %{{y:.4f}}"),
    "plot.soft_title": ("Teacher's softened distribution, softmax(logits / T)", "教师网络软化后的分布，softmax(logits / T)"),
    "plot.class": ("class", "类别"),
    "plot.probability": ("probability", "概率"),
    "plot.digit_title": ("Test image", "测试图像"),
    "plot.pixel_hover": ("row %{{y}}, col %{{x}}: %{{z:.2f}}", "第 %{{y}} 行，第 %{{x}} 列：%{{z:.2f}}"),
    "plot.comparison_title": ("Teacher, scratch student and distilled student",
                              "教师网络、从零训练的学生网络与蒸馏的学生网络"),
    "plot.parameters": ("parameters", "参数个数"),
    "plot.tflite_kb": ("TFLite float32 size (KB)", "TFLite float32 大小（KB）"),
    "plot.float32_kb": ("float32 weights (KB)", "float32 权重（KB）"),
    "plot.latency": ("latency (ms, 1 image)", "延迟（ms，1 张图像）"),
    "plot.not_available": ("n/a", "无"),
    "plot.accuracy_from": ("test accuracy (%, axis from {low:.0f})", "测试集准确率（%，坐标轴从 {low:.0f} 起）"),
    "plot.curves_title": ("Test accuracy after each epoch (display only)", "每轮之后的测试集准确率（仅供展示）"),
    "plot.scratch_student": ("scratch student", "从零训练的学生网络"),
    "plot.distilled_student": ("distilled student", "蒸馏的学生网络"),
    "plot.epoch": ("epoch", "轮次"),
    "plot.seed": ("seed {seed}", "种子 {seed}"),
    "plot.errors_title": ("Test errors out of {count:,}", "测试集错误数（共 {count:,} 张）"),
    "plot.run": ("run", "运行"),
    "plot.test_errors": ("test errors", "测试集错误数"),
    "plot.teacher_errors": ("teacher: {errors:g}", "教师网络：{errors:g}"),
}

MESSAGES: dict[str, dict[str, str]] = {key: dict(zip(LANGUAGES, pair)) for key, pair in _PAIRS.items()}


def _checked(code) -> str:
    if code not in LANGUAGES:
        raise ValueError(f"language is {code!r}; choose one of {', '.join(map(repr, LANGUAGES))}")
    return code


def _default() -> str:
    value = os.environ.get(LANGUAGE_VARIABLE, "")
    if not value:
        return "en"
    try:
        return _checked(value)
    except ValueError as error:
        raise ValueError(f"{LANGUAGE_VARIABLE}: {error}") from None


_language = _default()


def set_language(code: str) -> None:
    """Choose the language of every panel built from now on, and of the exercises' messages.

    Args:
        code: ``"en"`` (English) or ``"zh"`` (Simplified Chinese).

    Raises:
        ValueError: ``code`` is not one of :data:`LANGUAGES` (the message names it and the allowed codes).
    """
    global _language
    _language = _checked(code)


def get_language() -> str:
    """The language in use: ``"en"`` or ``"zh"``."""
    return _language


def t(key: str, **fields) -> str:
    """The message ``key`` in the language in use, formatted with ``fields`` (``str.format``).

    Args:
        key: a key of :data:`MESSAGES`.
        **fields: the message's ``{fields}``.

    Returns:
        The formatted message.

    Raises:
        KeyError: ``key`` is not in the catalogue (named in the message).
    """
    if key not in MESSAGES:
        raise KeyError(f"no message {key!r} in the compresslab catalogue (compresslab/i18n.py)")
    return MESSAGES[key][_language].format(**fields)


__all__ = ["MESSAGES", "LANGUAGES", "LANGUAGE_VARIABLE", "set_language", "get_language", "t"]
