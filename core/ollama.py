"""An Ollama Modelfile for an exported GGUF: FROM, the chat template in Ollama's (Go) template syntax,
stop tokens, and the system prompt. Pure Python (no torch).

The training run's chat template is Jinja (Hugging Face); Ollama speaks Go's text/template. Rather
than translate Jinja code, the template is *measured*: it is rendered for conversations made of
marker strings, and the text around each marker gives, per role, what comes before and after a
message, the head of the prompt when there is no system message, and the generation prompt.

    render = lambda msgs, gen: tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    parts = measure_template(render, bos_token=tok.bos_token, strip_bos=True)   # TemplateParts or TemplateError
    text = modelfile("./my-bot-Q4_K_M.gguf", parts, stops=["<|im_end|>"], system="Be brief.")
    problem = check_parts(parts, render, system="Be brief.")    # None when Go and Jinja agree on 2-turn chats

`render_go(template, messages)` is a small renderer for the subset of Go templates written here (range
over .Messages, if / else if / eq / index, .Role, .Content); a test checks it against what Ollama
documents, so a mismatch between the two renderings is a real mismatch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("system", "user", "assistant")
_MARK = {"system": "\x02SYS\x03", "user": "\x02USR{}\x03", "assistant": "\x02AST{}\x03"}


class TemplateError(ValueError):
    """The chat template cannot be written as an Ollama template (the message says why)."""


@dataclass(frozen=True)
class TemplateParts:
    head: str                    # before the first message when the first one is not a system message
    prefix: dict                 # role -> text before that role's content (system's includes its head)
    suffix: dict                 # role -> text after that role's content
    generation: str              # appended to ask for the assistant's reply
    stripped_bos: str = ""       # a BOS text taken off the front (llama.cpp/Ollama add the BOS token themselves)


def _split(text: str, marks: list[str]) -> list[str]:
    """text = p0 + marks[0] + p1 + marks[1] + ... ; returns [p0, p1, ..., pn] or raises TemplateError."""
    out, rest = [], text
    for m in marks:
        i = rest.find(m)
        if i < 0 or rest.count(m) != 1:
            raise TemplateError("the chat template changes or repeats the message text (it is not a plain wrapper)")
        out.append(rest[:i])
        rest = rest[i + len(m):]
    out.append(rest)
    return out


def measure_template(render, *, bos_token: str | None = None, strip_bos: bool = False, specials=(),
                     with_system: bool = True) -> TemplateParts:
    """Per-role prefixes and suffixes of a chat template, from renderings of marker conversations.
    `render(messages, add_generation_prompt) -> str`; `specials`: the tokenizer's special token texts (a
    cut between two messages never falls inside one). `with_system=False` measures a template that has no
    system role (the Modelfile then has none either). Raises TemplateError when it is not role-wrapped."""
    u1, u2, a1, s = _MARK["user"].format(1), _MARK["user"].format(2), _MARK["assistant"].format(1), _MARK["system"]
    try:
        one = render([{"role": "user", "content": u1}], False)
        one_gen = render([{"role": "user", "content": u1}], True)
        three = render([{"role": "user", "content": u1}, {"role": "assistant", "content": a1},
                        {"role": "user", "content": u2}], False)
        sys_one = render([{"role": "system", "content": s}, {"role": "user", "content": u1}], False) if with_system else None
    except Exception as e:  # a template may refuse a shape (e.g. no system role): say so in words
        raise TemplateError(f"the chat template refused a plain conversation: {type(e).__name__}: {e}") from None
    if not one_gen.startswith(one):
        raise TemplateError("the generation prompt is not simply added at the end")
    head_user, suffix_user = _split(one, [u1])
    h3, between_ua, between_au, tail3 = _split(three, [u1, a1, u2])
    if tail3 != suffix_user or h3 != head_user or not between_ua.startswith(suffix_user):
        raise TemplateError("a message's ending depends on what follows it")
    prefix_assistant = between_ua[len(suffix_user):]
    # between the reply and the next user message: the assistant's ending + the user's beginning; the
    # user's beginning is also how the prompt's head ends (and what follows a system message)
    candidates = [head_user, between_au]
    if with_system:
        sys_prefix, sys_between, sys_tail = _split(sys_one, [s, u1])
        if sys_tail != suffix_user:
            raise TemplateError("a system message changes how the user message ends")
        candidates.append(sys_between)
    prefix_user = candidates[0]
    for c in candidates[1:]:
        prefix_user = _common_suffix(prefix_user, c)
    prefix_user = _snap(prefix_user, between_au, specials)
    if not prefix_user:
        raise TemplateError("no text marks the start of a user message")
    cut = lambda text: text[:len(text) - len(prefix_user)]  # noqa: E731
    prefix = dict(user=prefix_user, assistant=prefix_assistant)
    suffix = dict(user=suffix_user, assistant=cut(between_au))
    if with_system:
        prefix["system"], suffix["system"] = sys_prefix, cut(sys_between)
    head, stripped = cut(head_user), ""
    if strip_bos and bos_token and head.startswith(bos_token) and prefix.get("system", bos_token).startswith(bos_token):
        head, stripped = head[len(bos_token):], bos_token
        if with_system:
            prefix["system"] = prefix["system"][len(bos_token):]
    return TemplateParts(head=head, prefix=prefix, suffix=suffix, generation=one_gen[len(one):], stripped_bos=stripped)


def _snap(prefix: str, between: str, specials) -> str:
    """Shorten a measured prefix so that it does not start inside a special token of `between`
    ('|><|start_header_id|>' -> '<|start_header_id|>')."""
    start = len(between) - len(prefix)
    for sp in specials:
        i = between.find(sp)
        while i >= 0:
            if i < start < i + len(sp):
                return between[i + len(sp):]
            i = between.find(sp, i + 1)
    return prefix


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return a[len(a) - n:]


def _lit(text: str) -> str:
    """Literal text inside a Go template: '{{' would start an action, so it is written as an action."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(parts: TemplateParts) -> str:
    """The Ollama TEMPLATE: no whitespace-trimming markers, so every newline of the original survives."""
    roles = [r for r in ROLES if r in parts.prefix]
    branches = "".join(
        f'{{{{ {"if" if i == 0 else "else if"} eq .Role "{r}" }}}}{_lit(parts.prefix[r])}{{{{ .Content }}}}{_lit(parts.suffix[r])}'
        for i, r in enumerate(roles))
    return ('{{ if eq (index .Messages 0).Role "system" }}{{ else }}' + _lit(parts.head) + "{{ end }}"
            "{{ range .Messages }}" + branches + "{{ end }}{{ end }}" + _lit(parts.generation))


def modelfile(gguf_path: str, parts: TemplateParts, *, stops: list[str], system: str = "") -> str:
    template = go_template(parts)
    if '"""' in template or '"""' in system:
        raise TemplateError('the template or system prompt contains """, which a Modelfile cannot quote')
    lines = [f"FROM {gguf_path}", f'TEMPLATE """{template}"""']
    lines += [f'PARAMETER stop "{_quote(s)}"' for s in stops]
    if system:
        lines.append(f'SYSTEM """{system}"""')
    return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def read_modelfile(text: str) -> dict:
    """{from, template, stops, system} of a Modelfile written by modelfile() (for checks and tests)."""
    out = dict(stops=[], system="")
    out["from"] = re.search(r"^FROM (.+)$", text, re.M).group(1)
    out["template"] = re.search(r'^TEMPLATE """(.*?)"""$', text, re.M | re.S).group(1)
    out["stops"] = [_unquote(m) for m in re.findall(r'^PARAMETER stop "((?:[^"\\]|\\.)*)"$', text, re.M)]
    m = re.search(r'^SYSTEM """(.*?)"""$', text, re.M | re.S)
    out["system"] = m.group(1) if m else ""
    return out


def ollama_messages(messages: list[dict], system: str = "") -> list[dict]:
    """What Ollama hands the template: the Modelfile's SYSTEM becomes the first message when the chat has none."""
    if system and not (messages and messages[0]["role"] == "system"):
        return [{"role": "system", "content": system}, *messages]
    return list(messages)


def check_parts(parts: TemplateParts, render, *, system: str = "") -> str | None:
    """None when the Go template renders exactly what the chat template renders (minus a stripped BOS)
    for two-turn conversations with and without a system prompt; else the first difference, in words."""
    template = go_template(parts)
    convs = [[{"role": "user", "content": "Hello there!"}, {"role": "assistant", "content": "Hi! How can I help?"},
              {"role": "user", "content": "Tell me about {{ braces }} and\nnew lines."}]]
    if "system" in parts.prefix:
        convs.append([{"role": "system", "content": system or "You are a helpful assistant."}, *convs[0]])
    elif system:
        return "the chat template has no system role, so the system prompt cannot be passed on"
    for conv in convs:
        want = render(ollama_messages(conv, system), True)
        if parts.stripped_bos and want.startswith(parts.stripped_bos):
            want = want[len(parts.stripped_bos):]
        got = render_go(template, ollama_messages(conv, system))
        if got != want:
            i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
            return (f"the Ollama template renders {got[max(0, i - 20):i + 30]!r} where the chat template renders "
                    f"{want[max(0, i - 20):i + 30]!r} (character {i})")
    return None


# ---- a renderer for the Go template subset written above --------------------------------------
_TOKEN = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def render_go(template: str, messages: list[dict]) -> str:
    """Render `template` (Go text/template, the subset go_template() writes, plus string-literal actions and
    '{{-' / '-}}' trimming) for Ollama's `.Messages`."""
    items = _parse(_lex(template))
    out: list[str] = []
    _exec(items, {"Messages": messages}, {"Messages": messages}, out)
    return "".join(out)


def _lex(t: str) -> list:
    out, pos = [], 0
    for m in _TOKEN.finditer(t):
        text = t[pos:m.start()]
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        if out and out[-1][0] == "act" and out[-1][2]:  # previous action asked to trim what follows it
            text = text.lstrip(" \t\r\n")
        out.append(("text", text))
        out.append(("act", m.group(2), bool(m.group(3))))
        pos = m.end()
    text = t[pos:]
    if out and out[-1][0] == "act" and out[-1][2]:
        text = text.lstrip(" \t\r\n")
    out.append(("text", text))
    return out


def _parse(tokens: list) -> list:
    """-> nested list of ('text', s) | ('expr', e) | ('range', e, body) | ('if', [(cond, body), ...], else_body)."""
    items, _, closing = _parse_block(tokens, 0)
    if closing is not None:
        raise TemplateError(f"unexpected {{{{ {closing} }}}}")
    return items


def _parse_block(tokens, i):
    items = []
    while i < len(tokens):
        tok = tokens[i]
        if tok[0] == "text":
            if tok[1]:
                items.append(("text", tok[1]))
            i += 1
            continue
        act = tok[1]
        word = act.split(None, 1)[0] if act else ""
        if word in ("end", "else"):
            return items, i, act
        if word == "range":
            body, i, closing = _parse_block(tokens, i + 1)
            if closing != "end":
                raise TemplateError("range without end")
            items.append(("range", act[len("range"):].strip(), body))
            i += 1
        elif word == "if":
            branches, cond = [], act[2:].strip()
            else_body: list = []
            while True:
                body, i, closing = _parse_block(tokens, i + 1)
                branches.append((cond, body))
                if closing is None:
                    raise TemplateError("if without end")
                if closing.startswith("else if"):
                    cond = closing[len("else if"):].strip()
                    continue
                if closing == "else":
                    else_body, i, closing = _parse_block(tokens, i + 1)
                if closing != "end":
                    raise TemplateError("if without end")
                i += 1
                break
            items.append(("if", branches, else_body))
        else:
            items.append(("expr", act))
            i += 1
    return items, i, None


def _exec(items, dot, root, out):
    for it in items:
        if it[0] == "text":
            out.append(it[1])
        elif it[0] == "expr":
            out.append(str(_eval(it[1], dot, root)))
        elif it[0] == "range":  # `range .Messages` or `range $i, $m := .Messages` (the loop variables unused)
            for element in _eval(it[1].split(":=")[-1], dot, root) or []:
                _exec(it[2], element, root, out)
        elif it[0] == "if":
            for cond, body in it[1]:
                if _truthy(_eval(cond, dot, root)):
                    _exec(body, dot, root, out)
                    break
            else:
                _exec(it[2], dot, root, out)


def _truthy(v) -> bool:
    return bool(v)


_ARG = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\((?:[^()]|\([^()]*\))*\)(?:\.\w+)*|\$?[.\w]+)')


def _eval(expr: str, dot, root):
    expr = expr.strip()
    args = [a for a in _ARG.findall(expr)]
    if not args:
        raise TemplateError(f"cannot read {expr!r}")
    head, rest = args[0], [_value(a, dot, root) for a in args[1:]]
    if head == "eq":
        return rest[0] == rest[1]
    if head == "ne":
        return rest[0] != rest[1]
    if head == "not":
        return not _truthy(rest[0])
    if head == "and":
        return all(_truthy(r) for r in rest)
    if head == "index":
        return rest[0][rest[1]]
    if len(args) != 1:
        raise TemplateError(f"unknown function in {expr!r}")
    return _value(head, dot, root)


def _value(a: str, dot, root):
    if a.startswith('"'):
        return _unquote(a[1:-1])
    if a.startswith("("):  # (pipeline) or (pipeline).Field
        close = a.rindex(")")
        return _fields(_eval(a[1:close], dot, root), a[close + 1:])
    if a.isdigit():
        return int(a)
    if a == ".":
        return dot
    return _fields(root, a[1:]) if a.startswith("$") else _fields(dot, a)


def _fields(base, path: str):
    for part in [p for p in path.split(".") if p]:
        key = part[0].lower() + part[1:]  # Ollama's message fields: .Role / .Content
        base = base.get(part, base.get(key)) if isinstance(base, dict) else getattr(base, part)
    return base
