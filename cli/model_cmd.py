"""`eval`, `merge`, `chat`, `demo`, `demos`: use a trained model (XTuner's test / convert merge / chat).

    python app.py eval JOB_OR_RUN [--json] [--max-samples N] [--max-new-tokens N]
    python app.py merge JOB_OR_RUN NAME [--format q4_k_m,q8_0,f16,lora,ollama] [--system TEXT]
                        [--dtype bf16|fp16] [--max-shard-size 5GB]   (-> exports/NAME/)
    python app.py merge JOB_OR_RUN --plan [--format ...]   (expected sizes and times, free disk; starts nothing)
    python app.py merge --list
    python app.py chat MODEL [--adapter DIR] [--prompt TEXT] [--system TEXT] [--temperature T] ...
    python app.py demo MODEL [--adapter DIR] [--host H] [--port P] [--auth USER:PASS] [--share]
    python app.py demos [--stop ID]

eval and merge run as jobs (the same ones the GUI starts), in the foreground: the log streams here
and Ctrl-C cancels. MODEL for chat/demo is a training job id (base + its adapter), a merged
export's name, a model preset, a hub id or a model folder.
"""
from __future__ import annotations

import json
import os
import sys

from cli.main import number
from core import knobs, trust
from core.errors import InputError, Problem
from core.messages import Msg, size_msg
from core.rundir import RunDir


def register(sub):
    e = sub.add_parser("eval", help="evaluate a trained run: loss, perplexity, base vs fine-tuned answers "
                                      "(preference runs: accuracy and margin on the held-out pairs)")
    e.add_argument("run", metavar="RUN_OR_JOB", help="training job id or run folder")
    e.add_argument("--json", action="store_true", help="print the full result as JSON (the log goes to stderr)")
    e.add_argument("--max-samples", type=number(int), default=200, help="answer at most this many held-out prompts")
    e.add_argument("--max-new-tokens", type=number(int), default=128, help="longest answer, in tokens")
    e.add_argument("--dataset", help="evaluate on all of this file instead of the run's validation split")
    e.set_defaults(func=eval_cmd)

    m = sub.add_parser("merge", help="export: merge the adapter into the base model (a Hugging Face folder)")
    m.add_argument("run", metavar="RUN_OR_JOB", nargs="?", help="training job id or run folder")
    m.add_argument("name", metavar="OUT", nargs="?", help="export name: the folder exports/OUT/ in the workspace")
    m.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    m.add_argument("--max-shard-size", default="5GB", help="largest weight file, e.g. 2GB")
    m.add_argument("--format", default="safetensors",
                   help="comma list (lower case) of: safetensors (the merged folder; the default), f16, bf16, q8_0, "
                        "q6_k, q5_k_m, q4_k_m, q3_k_m (GGUF for llama.cpp / LM Studio / Ollama), lora (the adapter "
                        "alone), ollama (a Modelfile next to a GGUF)")
    m.add_argument("--system", default="", help="system prompt written into the Ollama Modelfile and the model card")
    m.add_argument("--plan", action="store_true", help="show each format's expected size and time and the free disk space")
    m.add_argument("--list", action="store_true", help="list the exports instead")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=merge_cmd)

    c = sub.add_parser("chat", help="chat with a model (add --prompt for one answer)")
    _model_args(c)
    c.add_argument("--prompt", help="print one reply to this message and exit")
    c.add_argument("--system", default="", help="system prompt")
    c.add_argument("--temperature", type=number(float),
                   help="default: the model's recommended one (its generation_config.json), else 0.7")
    c.add_argument("--top-p", type=number(float), help="default: the model's recommended one, else 0.9")
    c.add_argument("--max-new-tokens", type=number(int), default=256)
    c.add_argument("--repetition-penalty", type=number(float), default=1.1)
    c.add_argument("--device", default="auto", help="auto, cpu or cuda:N")
    c.add_argument("--template", default="auto", choices=("auto", "chatml"),
                   help="chat template: the model's own (auto), or ChatML for base models without one")
    c.set_defaults(func=chat_cmd)

    d = sub.add_parser("demo", help="serve a chat-only web demo (its own process; login needed beyond this computer)")
    _model_args(d)
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default: this computer only)")
    d.add_argument("--port", type=number(int), help="port (default: the first free one from 7860)")
    d.add_argument("--auth", help="require this login: USER:PASS (or set $DANLU_DEMO_AUTH)")
    d.add_argument("--auth-file", help="file with one USER:PASS line")
    d.add_argument("--share", action="store_true", help="also ask for a public gradio.live link (needs --auth)")
    d.add_argument("--title", default="", help="heading shown above the chat")
    d.add_argument("--system", default="", help="system prompt for every conversation")
    d.add_argument("--device", default="auto", help="auto, cpu or cuda:N")
    d.add_argument("--lang", default="en", help="the page's language: en, zh-CN, ja, ko or es")
    d.set_defaults(func=demo_cmd)

    ds = sub.add_parser("demos", help="list running chat demos, or stop one")
    ds.add_argument("--stop", metavar="ID", help="stop this demo")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(func=demos_cmd)


def _model_args(p):
    p.add_argument("model", metavar="MODEL", help="training job id, export name, model preset, hub id or folder")
    p.add_argument("--adapter", help="LoRA adapter: a job id, a run folder or an adapter folder")


# ---- eval ---------------------------------------------------------------------------------------
def eval_cmd(args, services) -> int:
    from cli.train_cmd import follow
    from core import evaluation
    job = evaluation.submit_eval(services.workspace, args.run, origin=trust.SHELL, max_samples=args.max_samples,
                                 max_new_tokens=args.max_new_tokens, dataset=args.dataset)
    log = sys.stderr if args.json else sys.stdout
    print(f"[danlu] evaluation job {job.id}", file=log, flush=True)
    rc = follow(services, job.id, cancel_on_interrupt=True, out=log)
    if rc != 0:
        return rc
    from core.runs import resolve_trained_run
    run = resolve_trained_run(services.workspace, args.run)
    report = evaluation.read_eval(run.run_dir)
    if report is None:
        print(f"error: the evaluation finished but {RunDir(run.run_dir).eval_json} is missing", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print_table(report)
    return 0


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= n else text[:n - 1] + "…"


def print_table(report: dict, out=sys.stdout) -> None:
    from core.evaluation import is_preference, summary_line
    print(file=out)
    if is_preference(report):
        print_pairs(report, out)
    else:
        print(f"{'#':>3}  {'prompt':<30}  {'reference':<30}  {'base answer':<24}  {'fine-tuned answer':<30}  "
              f"{'ROUGE-L b->t':<13}  {'BLEU b->t':<11}", file=out)
        for i, s in enumerate(report.get("samples", []), 1):
            print(f"{i:>3}  {_clip(s['prompt'], 30):<30}  {_clip(s['reference'], 30):<30}  {_clip(s['base'], 24):<24}  "
                  f"{_clip(s['tuned'], 30):<30}  {s['base_rouge_l']:.2f}->{s['tuned_rouge_l']:.2f}    "
                  f"{s['base_bleu']:.2f}->{s['tuned_bleu']:.2f}", file=out)
    print(file=out)
    print(summary_line(report), file=out)
    for note in report.get("notes", []):
        print(f"note: {note}", file=out)
    print(f"full table: {RunDir(report['run_dir']).eval_csv}", file=out)


def print_pairs(report: dict, out=sys.stdout) -> None:
    """A preference run: prompt, the chosen and rejected answers, the tuned answer, margin before -> after."""
    def m(x):
        return "-" if x is None else f"{x:+.2f}"
    print(f"{'#':>3}  {'prompt':<28}  {'chosen':<24}  {'rejected':<24}  {'fine-tuned answer':<28}  margin b->t", file=out)
    for i, s in enumerate(report.get("samples", []), 1):
        print(f"{i:>3}  {_clip(s['prompt'], 28):<28}  {_clip(s['chosen'], 24):<24}  {_clip(s['rejected'], 24):<24}  "
              f"{_clip(s['tuned'], 28):<28}  {m(s.get('base_margin'))}->{m(s.get('tuned_margin'))}", file=out)


# ---- merge --------------------------------------------------------------------------------------
def merge_cmd(args, services) -> int:
    from core import export
    ws = services.workspace
    if args.list:
        rows = export.list_exports(ws)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        elif not rows:
            print("no exports yet; make one with: python app.py merge JOB_ID NAME")
        for r in rows:
            print(f"{r['name']:<30}  {str(size_msg(r['size_bytes'])):>10}  {r.get('dtype') or '':<5}  "
                  f"smoke test {r.get('smoke_test') or '-':<7}  {','.join(r.get('formats') or [])}  {r['path']}")
        return 0
    if args.plan and args.run:
        return print_plan(export.export_plan(ws, args.run, args.format), args.json)
    if not args.run or not args.name:
        raise InputError(problems=[Problem("merge", Msg("cli.merge_args"), Msg("cli.merge_args.hint"))])
    from cli.train_cmd import follow
    plan = export.export_plan(ws, args.run, args.format)
    if plan.get("enough_disk") is False:
        raise InputError(problems=[Problem("format", Msg("export.disk", need=size_msg(plan["need_bytes"]),
                                                         free=size_msg(plan["free_bytes"])), Msg("export.disk.hint"))])
    if plan["tools_note"]:
        print(f"[danlu] {plan['tools_note']}", file=sys.stderr if args.json else sys.stdout, flush=True)
    job = export.submit_merge(ws, args.run, args.name, origin=trust.SHELL, dtype=args.dtype, max_shard_size=args.max_shard_size,
                              formats=args.format, system=args.system)
    log = sys.stderr if args.json else sys.stdout
    print(f"[danlu] export job {job.id}", file=log, flush=True)
    rc = follow(services, job.id, cancel_on_interrupt=True, out=log)
    result = export.read_merge_result(services.store.get(job.id))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif result.get("export_dir"):
        smoke = result.get("smoke_test", {})
        print(f"export: {result['export_dir']} ({size_msg(result['total_bytes'])}, {result['dtype']})")
        if smoke.get("status") == "passed":
            print(f"smoke test passed: it loaded with transformers and replied {smoke.get('reply', '')!r}")
        else:
            print(f"smoke test {smoke.get('status')}: {smoke.get('error', '')}")
        for fmt, check in result.get("formats", {}).items():
            files = ", ".join(check.get("files", [])[:3]) + (" ..." if len(check.get("files", [])) > 3 else "")
            detail = check.get("summary") if check.get("status") == "passed" else check.get("error")
            print(f"{fmt:<12} {check.get('status', '?'):<7} {files}: {detail or ''}")
    return rc


def print_plan(plan: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(plan, indent=2))
        return 0
    params = plan.get("params")
    print(f"base model {plan['base_model']}: " + (f"{params / 1e9:.3f} billion parameters" if params else "size unknown"))
    for r in plan["rows"]:
        print(f"  {r['format']:<12} about {str(size_msg(r['bytes'])):>10}, about {r['seconds']:>7.0f} s   {r['label']}")
    if plan.get("need_bytes"):
        print(f"disk: needs about {size_msg(plan['need_bytes'])} at the peak; {size_msg(plan['free_bytes'])} free")
    if plan["tools_note"]:
        print(plan["tools_note"])
    return 0


# ---- chat ---------------------------------------------------------------------------------------
def chat_cmd(args, services) -> int:
    from core.chat import ChatEngine, sampling
    # what was typed is checked before the model loads (minutes for a big one), not after
    if args.prompt is not None and not args.prompt.strip():
        raise InputError(problems=[Problem("--prompt", Msg("cli.empty_prompt"), Msg("cli.empty_prompt.hint"))])
    temperature, top_p, said = _sampling_defaults(services, args)
    if said is not None:  # stderr: scripts read the reply on stdout
        print(f"[danlu] {said}", file=sys.stderr)
    settings = dict(system=args.system, **sampling(temperature=temperature, top_p=top_p,
                                                   max_new_tokens=args.max_new_tokens,
                                                   repetition_penalty=args.repetition_penalty))
    engine = ChatEngine(services.workspace)
    try:
        sid = engine.load(args.model, args.adapter, origin=trust.SHELL, device=args.device, template=args.template)
        info = engine.info(sid)
        for note in info.get("notes", []):
            print(f"[danlu] {note}", file=sys.stderr)
        if args.prompt is not None:
            _say(engine, sid, [{"role": "user", "content": args.prompt}], settings)
            return 0
        return interactive(engine, sid, info, settings)
    finally:
        engine.close()


def _sampling_defaults(services, args) -> tuple:
    """--temperature and --top-p as typed, each one left out the model's recommended value (its
    generation_config.json, core.model_sampling), else Danlu's; and, when one was left out, a line saying
    which values were used and where from (the reply changed with the model and nothing said why)."""
    if args.temperature is not None and args.top_p is not None:
        return args.temperature, args.top_p, None
    from core.model_sampling import default_sampling
    values, from_model = default_sampling(services.workspace, args.model, args.adapter, origin=trust.SHELL)
    flags = [f"{flag} {values[key]:g}" for flag, key in (("--temperature", "temperature"), ("--top-p", "top_p"))
             if getattr(args, key) is None]
    said = Msg("cli.sampling.model" if from_model else "cli.sampling.danlu", flags=flags)
    return (values["temperature"] if args.temperature is None else args.temperature,
            values["top_p"] if args.top_p is None else args.top_p, said)


def _say(engine, sid, messages, settings) -> str:
    stream = engine.stream(sid, messages, **settings)
    for delta in stream:
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    return stream.text


def interactive(engine, sid, info, settings) -> int:
    print(f"chatting with {info['label']}" + (f" + adapter {info['adapter']}" if info.get("adapter") else "") +
          f" on {info['device']} ({info['quantization']}, template: {info['template']}).\n"
          "Type a message; /reset starts over, /exit (or Ctrl-D) quits.", file=sys.stderr)
    history: list[dict] = []
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/reset":
            history = []
            print("(conversation cleared)", file=sys.stderr)
            continue
        history.append({"role": "user", "content": text})
        sys.stdout.write("bot> ")
        try:
            answer = _say(engine, sid, history, settings)
        except KeyboardInterrupt:
            print("\n(stopped)", file=sys.stderr)
            history.pop()
            continue
        history.append({"role": "assistant", "content": answer})


# ---- demo ---------------------------------------------------------------------------------------
def demo_cmd(args, services) -> int:
    from core import demos
    from core.exposure import parse_auth
    auth_text = args.auth if args.auth is not None else (None if args.auth_file else knobs.get(knobs.DEMO_AUTH))
    auth = parse_auth(auth_text, args.auth_file)
    demos.check_exposure(args.host, args.share, auth)  # before loading anything: refuse at once
    if args.port is not None and not (1 <= args.port <= 65535):
        raise InputError(problems=[Problem("--port", Msg("cli.port", port=args.port))])
    from webui.i18n import CODES
    if args.lang not in CODES:
        raise InputError(problems=[Problem("--lang", Msg("cli.lang", lang=args.lang, choices=", ".join(CODES)))])
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from core.chat import ChatEngine
    engine = ChatEngine(services.workspace)
    try:
        sid = engine.load(args.model, args.adapter, origin=trust.SHELL, device=args.device)
        info = engine.info(sid)
        for note in info.get("notes", []):
            print(f"[demo] {note}", flush=True)
        from core.model_sampling import default_sampling
        from webui.demo_app import serve
        recommended, _ = default_sampling(services.workspace, args.model, args.adapter, origin=trust.SHELL)
        return serve(services.workspace, engine, sid, label=info["label"], adapter=info.get("adapter"), host=args.host,
                     port=args.port, auth=auth, share=args.share, title=args.title, system=args.system, lang=args.lang,
                     sampling=recommended)
    finally:
        engine.close()


def demos_cmd(args, services) -> int:
    from core import demos
    ws = services.workspace
    if args.stop:
        rec = demos.stop_demo(ws, args.stop)
        print(f"stopped demo {rec['id']} ({rec['url']})")
        return 0
    rows = demos.list_demos(ws)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no chat demo is running; start one with: python app.py demo MODEL")
    for r in rows:
        share = f"  public: {r['share_url']}" if r.get("share_url") else ""
        print(f"{r['id']}  {r['url']}{share}  {r['model']}  {'login' if r.get('login') else 'no login'}  pid {r['pid']}")
    return 0
