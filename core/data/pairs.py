"""Preference pairs: a prompt with a better (`chosen`) and a worse (`rejected`) answer, as DPO and
ORPO learn from. Three spellings people already have are read into one normalised example:

    {"prompt": "Q" or [turns], "chosen": "A" or [turns], "rejected": "B" or [turns]}        (TRL)
    {"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "A"},
     "rejected": {"from": "gpt", "value": "B"}}                                             (ShareGPT)
    {"chosen": [user Q, assistant A], "rejected": [user Q, assistant B]}                    (shared history)

    -> {"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "A"}],
        "rejected": [{"role": "assistant", "content": "B"}]}

The prompt ends with a user turn; each answer is the assistant turns after it. When an answer is a
whole conversation (shared history, or TRL's "prompt" beside full conversations), the turns up to
its last user turn are its prompt, and both answers must carry the same one. An optional `system`
field is put in front. `to_messages(example, "chosen")` is the conversation supervised training
learns from a pair (prompt + chosen).
"""
from __future__ import annotations

from core.messages import Msg

SIDES = ("chosen", "rejected")
PROMPT_KEYS = ("prompt", "conversations", "messages")   # where the shared question may be


def to_messages(example: dict, side: str = "chosen") -> list[dict]:
    """The pair's prompt followed by one answer: one conversation."""
    return list(example["prompt"]) + list(example[side])


def prompt_key(example: dict) -> tuple:
    """A key equal for pairs with the same prompt (case and surrounding spaces ignored)."""
    return tuple((m["role"], m["content"].strip().casefold()) for m in example["prompt"])


def same_answers(example: dict) -> bool:
    """Both answers say the same thing (spaces around the text ignored): nothing to learn from."""
    return [m["content"].strip() for m in example["chosen"]] == [m["content"].strip() for m in example["rejected"]]


def _turns(schema, value, key: str, default_role: str, issues: list) -> list | None:
    """One side as turns: a string (one turn of `default_role`), one turn object, or a list of turns."""
    if type(value) is str or value is None:
        return [{"role": default_role, "content": value}] if schema._text(value, key, issues) else None
    if type(value) is dict:  # a single ShareGPT/OpenAI turn (problems name it as turn 0)
        msgs, _roles, ok = schema.turn_list([value], key, True, True, issues)
        return msgs if ok else None
    if type(value) is not list:
        from core.data.formats import kind_of
        issues.append(("wrong_type", key, Msg("pref.not_turns", kind=kind_of(value)), Msg("pref.not_turns.hint"), value))
        return None
    if not value:
        issues.append(("empty_text", key, Msg("data.no_turns"), Msg("pref.write_answer.hint"), value))
        return None
    msgs, _roles, ok = schema.turn_list(value, key, True, True, issues)
    return msgs if ok else None


def _split(msgs: list[dict]) -> tuple[list[dict] | None, list[dict]]:
    """(prompt part or None, answer part): a whole conversation splits after its last user turn."""
    last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=-1)
    if last_user < 0:
        return None, msgs
    return msgs[:last_user + 1], msgs[last_user + 1:]


def _first_difference(a: list[dict], b: list[dict]) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def _answer_ok(side: str, key: str, answer: list[dict], offset: int, issues: list) -> bool:
    if not answer:
        issues.append(("empty_text", key, Msg("pref.no_answer", side=side), Msg("pref.no_answer.hint", side=side), None))
        return False
    for i, m in enumerate(answer):
        if m["role"] != "assistant":
            issues.append(("turn_order", f"{key}[{offset + i}]", Msg("pref.answer_role", side=side, role=m["role"]),
                           Msg("pref.answer_role.hint"), None))
            return False
    return True


def _prompt_order(prompt: list[dict], key: str, issues: list) -> bool:
    """After an optional system turn, user and assistant alternate and the user speaks last."""
    roles = [m["role"] for m in prompt]
    start = 1 if roles and roles[0] == "system" else 0
    for i in range(start, len(roles)):
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if roles[i] != expected:
            issues.append(("turn_order", f"{key}[{i}]", Msg("data.expected_role", expected=expected, role=roles[i]),
                           Msg("data.expected_role.hint"), None))
            return False
    if len(roles) == start or roles[-1] != "user":
        last = roles[-1] if roles else "nothing"
        issues.append(("turn_order", key, Msg("pref.prompt_end", role=last), Msg("pref.prompt_end.hint"), None))
        return False
    return True


def _given_prompt(schema, rec: dict, issues: list) -> tuple[str | None, list | None, bool]:
    """(its key, turns, ok) of the explicit prompt: "prompt", or a ShareGPT/messages history."""
    for name in PROMPT_KEYS:
        key = schema.key.get(name, name)
        if key in rec:
            turns = _turns(schema, rec[key], key, "user", issues)
            return key, turns, turns is not None
    return None, None, True


def _agrees(given: list[dict], derived: list[dict]) -> bool:
    """An explicit prompt next to whole conversations must say the same: the same turns, or (TRL's
    UltraFeedback spelling) the text of the conversation's last user turn."""
    if given == derived or given == [m for m in derived if m["role"] != "system"]:
        return True
    return len(given) == 1 and given[0]["role"] == "user" and given[0]["content"].strip() == derived[-1]["content"].strip()


def check_pair(schema, rec: dict, build: bool = True):
    """(example | True | None, issues) for one record; every problem of the record at once."""
    issues: list = []
    schema.last_prompt = None
    sides, ok = {}, True
    for side in SIDES:
        key = schema.key[side]
        if key not in rec:
            issues.append(("missing_field", key, Msg("pref.no_side", side=side, key=key),
                           Msg("pref.no_side.hint", side=side, key=key), None))
            ok = False
            continue
        sides[side] = _turns(schema, rec[key], key, "assistant", issues)
        ok = ok and sides[side] is not None
    pkey, given, given_ok = _given_prompt(schema, rec, issues)
    system = rec.get(schema.key["system"])
    ok = schema._text(system, schema.key["system"], issues, required=False) and ok and given_ok
    if not ok:
        return None, issues
    split = {side: _split(sides[side]) for side in SIDES}
    derived = {side: split[side][0] for side in SIDES if split[side][0] is not None}
    for side in SIDES:
        offset = len(split[side][0] or [])
        ok = _answer_ok(side, schema.key[side], split[side][1], offset, issues) and ok
    prompt = _resolve_prompt(schema, derived, given, pkey, issues)
    if prompt is None or not ok:
        return None, issues
    if type(system) is str and system.strip() and prompt[0]["role"] != "system":
        prompt = [{"role": "system", "content": system}] + prompt
    if not _prompt_order(prompt, pkey or schema.key["chosen"], issues):
        return None, issues
    ex = {"prompt": prompt, "chosen": split["chosen"][1], "rejected": split["rejected"][1]}
    if same_answers(ex):
        issues.append(("same_answers", schema.key["rejected"], Msg("pref.same_answers"), Msg("pref.same_answers.hint"),
                       ex["rejected"][0]["content"]))
        return None, issues
    schema.last_prompt = prompt_key(ex)
    return (ex if build else True), issues


def _resolve_prompt(schema, derived: dict, given, pkey, issues: list) -> list | None:
    kc, kr = schema.key["chosen"], schema.key["rejected"]
    if not derived:
        if given is None:
            issues.append(("missing_field", schema.key["prompt"], Msg("pref.no_prompt"), Msg("pref.no_prompt.hint"), None))
        return given
    if len(derived) == 2 and derived["chosen"] != derived["rejected"]:
        at = _first_difference(derived["chosen"], derived["rejected"])
        issues.append(("prompt_mismatch", f"{kr}[{at}]", Msg("pref.histories_differ", turn=at + 1, chosen=kc, rejected=kr),
                       Msg("pref.histories_differ.hint"), None))
        return None
    prompt = derived.get("chosen") or derived["rejected"]
    if given is not None and not _agrees(given, prompt):
        issues.append(("prompt_mismatch", pkey, Msg("pref.prompt_differs", key=pkey, side=kc if "chosen" in derived else kr),
                       Msg("pref.prompt_differs.hint", key=pkey), None))
        return None
    return prompt
