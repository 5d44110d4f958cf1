"""The Ollama Modelfile: chat templates measured into Ollama's Go template syntax, and the small Go
template renderer the check uses (compared here with templates written the way Ollama's own are)."""
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core import ollama
from core.demo_model import CHATML_TEMPLATE

LLAMA3 = ("{{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
QWEN = ("{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
        "{%- else %}{{- '<|im_start|>system\nYou are Qwen, a helpful assistant.<|im_end|>\n' }}{%- endif %}"
        "{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) "
        "or (message.role == 'assistant') %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}"
        "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}")
MISTRAL = ("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
           "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}{% if message['role'] == 'user' %}"
           "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
           "{{ message['content'] + eos_token }}{% endif %}{% endfor %}")
SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>",
            "<s>", "</s>"]


def renderer(template: str, bos: str = ""):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise ValueError(message)
    env.globals["raise_exception"] = raise_exception
    tpl = env.from_string(template)
    return lambda msgs, gen: tpl.render(messages=msgs, add_generation_prompt=gen, bos_token=bos, eos_token="</s>")


@pytest.mark.parametrize("template,bos,system", [(CHATML_TEMPLATE, "", "Be brief."), (LLAMA3, "<|begin_of_text|>", ""),
                                                 (QWEN, "", "Answer in French.")])
def test_measured_templates_render_what_the_chat_template_renders(template, bos, system):
    render = renderer(template, bos)
    parts = ollama.measure_template(render, bos_token=bos, strip_bos=bool(bos), specials=SPECIALS)
    assert ollama.check_parts(parts, render, system=system) is None
    text = ollama.modelfile("./m-Q4_K_M.gguf", parts, stops=["<|im_end|>", 'a "quoted" stop'], system=system)
    back = ollama.read_modelfile(text)
    assert back["from"] == "./m-Q4_K_M.gguf" and back["template"] == ollama.go_template(parts)
    assert back["stops"] == ["<|im_end|>", 'a "quoted" stop'] and back["system"] == system
    # the whole two-turn prompt, as Ollama would build it from the Modelfile, equals the Jinja one
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Why?"}]
    want = render(ollama.ollama_messages(conv, system), True).removeprefix(bos)
    assert ollama.render_go(back["template"], ollama.ollama_messages(conv, back["system"])) == want


def test_llama3_bos_is_left_to_the_tokenizer_and_cuts_fall_between_special_tokens():
    parts = ollama.measure_template(renderer(LLAMA3, "<|begin_of_text|>"), bos_token="<|begin_of_text|>", strip_bos=True,
                                    specials=SPECIALS)
    assert parts.stripped_bos == "<|begin_of_text|>" and parts.head == ""
    assert parts.prefix["user"] == "<|start_header_id|>user<|end_header_id|>\n\n"
    assert parts.suffix["assistant"] == "<|eot_id|>"


def test_a_template_without_a_system_role_gets_a_modelfile_without_one():
    render = renderer(MISTRAL, "<s>")
    with pytest.raises(ollama.TemplateError, match="refused"):
        ollama.measure_template(render, bos_token="<s>", strip_bos=True, specials=SPECIALS)
    parts = ollama.measure_template(render, bos_token="<s>", strip_bos=True, specials=SPECIALS, with_system=False)
    assert "system" not in parts.prefix and parts.prefix["user"] == "[INST] "
    assert ollama.check_parts(parts, render) is None
    assert "no system role" in ollama.check_parts(parts, render, system="Be brief.")


def test_a_wrong_template_is_caught_by_the_check():
    render = renderer(CHATML_TEMPLATE)
    parts = ollama.measure_template(render)
    broken = ollama.TemplateParts(head=parts.head, prefix=dict(parts.prefix, user="<|im_start|>user "),
                                  suffix=parts.suffix, generation=parts.generation)
    problem = ollama.check_parts(broken, render)
    assert problem and "user " in problem


def test_a_template_that_rewrites_the_message_text_is_refused():
    with pytest.raises(ollama.TemplateError):
        ollama.measure_template(renderer("{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"))


def test_the_go_renderer_follows_ollamas_template_rules():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    # written the way Ollama's library templates are: whitespace trimming, $ for the root, if / else if
    tpl = ('{{- range $i, $_ := .Messages }}\n  {{- if eq .Role "system" }}[S:{{ .Content }}]\n  {{- else if eq .Role "user" }}'
           '[U:{{ .Content }}]\n  {{- else }}[A:{{ .Content }}]\n  {{- end }}\n{{- end }}{{ if eq (index $.Messages 0).Role "system" }}!{{ end }}')
    assert ollama.render_go(tpl, msgs) == "[S:S][U:U][A:A]!"
    assert ollama.render_go('{{ "{{" }} literal', msgs) == "{{ literal"
    with pytest.raises(ollama.TemplateError):
        ollama.render_go("{{ if eq .Role \"x\" }}", msgs)
