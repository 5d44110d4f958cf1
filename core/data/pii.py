"""Sensitive data in text: find it, and replace it with a placeholder ([EMAIL]).

    hits = scan_text("write to ann@example.com")        # [Hit(start=9, end=24, kind="email", text="ann@example.com")]
    redact_text(text, hits)                              # "write to [EMAIL]"
    scan_record(record, kinds, names)                    # [(field path, Hit), ...] over every text value of a row

Kinds (KINDS): email, phone, card, iban, ip, url_credentials, api_key, and name (the words the user
lists). Plain regular expressions narrow each kind to candidates and a check confirms them: the
Luhn checksum and the issuer's prefix for card numbers, the country's length and the mod-97
checksum for IBANs, Python's own `ipaddress` for IP addresses, the shape of a phone number (digit
count, grouping, not a date). Why no library: the ones that fit offline either cover one kind
(phonenumbers, python-stdnum) or need a language model download (presidio); this file is small,
has no dependency, and scans 100,000 rows in seconds. tests/data/pii_sample.jsonl is a labelled
sample; `python bench/pii_eval.py` measures precision and recall per kind on it.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

KINDS = ("email", "phone", "card", "iban", "ip", "url_credentials", "api_key")
ALL_KINDS = KINDS + ("name",)
PLACEHOLDER = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "iban": "[IBAN]", "ip": "[IP]",
               "url_credentials": "[CREDENTIALS]", "api_key": "[API_KEY]", "name": "[NAME]"}
# When two findings overlap, the more specific one wins (the password in a URL is not an e-mail address).
PRIORITY = {k: i for i, k in enumerate(("url_credentials", "api_key", "email", "iban", "card", "ip", "phone", "name"))}


@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    kind: str
    text: str


EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                   r"[A-Za-z]{2,24}(?![\w-])")
URL_CREDENTIALS = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://([^\s/:@\"'<>]*:[^\s/@\"'<>]+)@[^\s/?#\"'<>]+[^\s\"'<>]*")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::[0-9A-Fa-f]{1,4}){1,7}|[0-9A-Fa-f]{1,4})(?![\w:])"
                  r"|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}(?![\w:])")
CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d]|[.,-]\d)")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
PHONE = re.compile(r"(?<![\w+/.-])(?:\+|00)\d{1,3}(?:[ .-]?\(?\d{1,5}\)?)(?:[ .-]?\d{1,8}){1,6}(?![\w-]|[.]\d)"
                   r"|(?<![\w+/.-])(?:\(\d{1,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,8}){1,4}(?![\w-]|[.]\d)"
                   r"|(?<![\w+/.-])1[3-9]\d{9}(?!\w)")
API_KEYS = re.compile("|".join([
    r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",                # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",   # GitHub
    r"\bglpat-[A-Za-z0-9_-]{20,}", r"\bxox[abposr]-[A-Za-z0-9-]{10,}",             # GitLab, Slack
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b",        # Stripe
    r"\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
    r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])",                       # Google API key
    r"\bhf_[A-Za-z0-9]{30,}\b", r"\bnpm_[A-Za-z0-9]{36}\b",    # Hugging Face, npm
    r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![\w-])",    # SendGrid
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",   # a JSON web token
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|$)",
]))
# `api_key = "..."`, `token: ...`: a long value after a secret-sounding name (the value is the hit)
NAMED_SECRET = re.compile(r"(?i)\b(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|token|password|passwd)"
                          r"\b[\"']?\s*[:=]\s*[\"']?([^\s\"'<>,;]{12,})")

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28, "CH": 21,
    "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
# Issuer prefixes of payment cards: a Luhn check alone passes one random number in ten.
CARD_PREFIX = re.compile(r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
                         r"|3[47]\d{13}|3(?:0[0-5]|[68]\d)\d{11,16}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}"
                         r"|62\d{14,17}|(?:5[06-8]|6\d)\d{10,17})$")
NUMBERING = re.compile(r"(?i)\b(?:section|sections|version|v|ver|chapter|clause|item|release|rule|step|§)\.?\s*$")
DATE_LIKE = re.compile(r"^(?:\d{4}[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12]\d|3[01])|"
                       r"(?:0?[1-9]|[12]\d|3[01])[-./ ](?:0?[1-9]|1[0-2])[-./ ]\d{2,4}|"
                       r"(?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12]\d|3[01])[-./ ]\d{2,4})$")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """Country length and the ISO 13616 mod-97 checksum (the rearranged number mod 97 is 1)."""
    s = candidate.replace(" ", "")
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _card(m: re.Match) -> bool:
    digits = re.sub(r"[ -]", "", m.group())
    groups = re.split(r"[ -]", m.group())
    # written as one number or in groups of 4 (Amex 4-6-5, Diners 4-6-4): not a phone's 3-3-4
    if len(groups) > 1 and (groups[0] != groups[0][:4] or len(groups[0]) != 4):
        return False
    return bool(CARD_PREFIX.match(digits)) and luhn_ok(digits)


def _ipv4(m: re.Match) -> bool:
    try:
        ipaddress.IPv4Address(m.group())
    except ValueError:
        return False
    return not NUMBERING.search(m.string, 0, m.start())  # "section 4.2.1.3", "version 1.2.3.4"


def _ipv6(m: re.Match) -> bool:
    text = m.group()
    if text.count(":") < 2 or not re.search(r"[0-9A-Fa-f]", text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    # "12:30:45" is a time, "a::b" could be C++: ask for hex beyond plain digits or a full address
    return text.count(":") >= 7 or "::" in text and len(text) >= 6


def _phone(m: re.Match) -> bool:
    text = m.group()
    digits = re.sub(r"\D", "", text)
    international = text.startswith(("+", "00"))
    if not 7 <= len(digits) <= 15 or DATE_LIKE.match(text):
        return False
    before, after = m.string[max(0, m.start() - 2):m.start()], m.string[m.end():m.end() + 2]
    if re.search(r"\d[ .-]?$", before) or re.match(r"[ .-]?\d", after):
        return False  # a piece of a longer code ("AB12 3456 7890 1234 5")
    if international:
        return len(digits) >= 8
    if re.fullmatch(r"1[3-9]\d{9}", text):
        return True  # a mainland China mobile number written without spaces
    groups = re.split(r"[ .-]+", re.sub(r"[()]", " ", text).strip())
    if "." in text and not re.fullmatch(r"\(?\d{3}\)?\.\d{3}\.\d{4}", text):
        return False  # 1.2.3.4, 3.14.15: versions and numbers; 555.123.4567 is a phone
    if len(groups) == 2 and len(digits) < 10 and "(" not in text:
        return len(groups[0]) == 3 and len(groups[1]) == 4  # 555-0100, not 2024 2025
    # ten digits or more (a national number with its area code), or an area code in brackets
    return len(digits) >= 10 or "(" in text


def _named_secret(text: str) -> list[Hit]:
    out = []
    for m in NAMED_SECRET.finditer(text):
        value = m.group(1)
        # a secret mixes letters and digits; "password = correcthorsebatterystaple" is a phrase
        if re.search(r"\d", value) and re.search(r"[A-Za-z]", value):
            out.append(Hit(m.start(1), m.end(1), "api_key", value))
    return out


CHECKS = [("url_credentials", URL_CREDENTIALS, None), ("api_key", API_KEYS, None), ("email", EMAIL, None),
          ("iban", IBAN, lambda m: iban_ok(m.group())), ("card", CARD, _card), ("ip", IPV4, _ipv4), ("ip", IPV6, _ipv6),
          ("phone", PHONE, _phone)]
# cheap tests that rule a kind out for a text (most texts hold no digit, '@' or '://')
NEEDS = {"url_credentials": "://", "email": "@"}


NAME_MAX, NAMES_MAX = 200, 1000  # a name, and how many: 9 MB sent as one "name" took a scan of 30 rows 34 s


def names_pattern(names) -> re.Pattern | None:
    """One pattern for the user's list of names (whole words, any case), longest first."""
    words = sorted({n.strip() for n in names or () if n and n.strip()}, key=len, reverse=True)
    if not words:
        return None
    if len(words) > NAMES_MAX or len(words[0]) > NAME_MAX:
        from core.errors import InputError, Problem
        from core.messages import Msg
        said = Msg("pii.names_many", n=len(words)) if len(words) > NAMES_MAX else Msg("pii.name_long", n=len(words[0]))
        raise InputError(problems=[Problem("names", said, Msg("pii.names_limit.hint", max=NAME_MAX, most=NAMES_MAX))])
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)


def scan_text(text: str, kinds=KINDS, names=None) -> list[Hit]:
    """Every finding in `text`, in order, without overlaps."""
    if not text:
        return []
    found: list[Hit] = []
    has_digit = any(ch.isdigit() for ch in text) if len(text) < 64 else re.search(r"\d", text) is not None
    for kind, pattern, ok in CHECKS:
        if kind not in kinds or (kind in NEEDS and NEEDS[kind] not in text):
            continue
        if kind in ("iban", "card", "ip", "phone") and not has_digit:
            continue
        for m in pattern.finditer(text):
            if ok is None or ok(m):
                found.append(Hit(m.start(), m.end(), kind, m.group()))
    if "api_key" in kinds:
        found += _named_secret(text)
    pattern = names if isinstance(names, re.Pattern) else names_pattern(names)
    if pattern is not None:
        found += [Hit(m.start(), m.end(), "name", m.group()) for m in pattern.finditer(text)]
    return _no_overlaps(found)


def _no_overlaps(hits: list[Hit]) -> list[Hit]:
    if len(hits) < 2:
        return hits
    chosen: list[Hit] = []
    for h in sorted(hits, key=lambda h: (PRIORITY[h.kind], -(h.end - h.start), h.start)):
        if all(h.end <= c.start or h.start >= c.end for c in chosen):
            chosen.append(h)
    return sorted(chosen, key=lambda h: h.start)


def placeholder(hit: Hit) -> str:
    if hit.kind == "url_credentials":  # keep the address, hide who and the password
        m = URL_CREDENTIALS.match(hit.text)
        if m:
            return hit.text[:m.start(1)] + PLACEHOLDER["url_credentials"] + hit.text[m.end(1):]
    return PLACEHOLDER[hit.kind]


def redact_text(text: str, hits) -> str:
    """`text` with each hit (from scan_text on this same text) replaced by its placeholder."""
    out, pos = [], 0
    for h in sorted(hits, key=lambda h: h.start):
        if h.start < pos or text[h.start:h.end] != h.text:
            continue  # stale or overlapping: leave the text as it is rather than cut it wrongly
        out.append(text[pos:h.start])
        out.append(placeholder(h))
        pos = h.end
    out.append(text[pos:])
    return "".join(out)


def string_slots(value, path: str = ""):
    """(container, key, field path) for every text value of a record, nested lists and objects too."""
    if type(value) is dict:
        for k, v in value.items():
            p = f"{path}.{k}" if path else str(k)
            if type(v) is str:
                yield value, k, p
            elif type(v) in (dict, list):
                yield from string_slots(v, p)
    elif type(value) is list:
        for i, v in enumerate(value):
            p = f"{path}[{i}]"
            if type(v) is str:
                yield value, i, p
            elif type(v) in (dict, list):
                yield from string_slots(v, p)


def scan_record(record, kinds=KINDS, names=None) -> list[tuple[str, Hit]]:
    """(field path, hit) for every finding in every text value of one record."""
    pattern = names if isinstance(names, re.Pattern) else names_pattern(names)
    return [(p, h) for obj, key, p in string_slots(record) for h in scan_text(obj[key], kinds, pattern)]


def redact_record(record, kinds=KINDS, names=None, only: set | None = None) -> int:
    """Replace findings in place; `only`: a set of (field path, start, kind) to replace, else every
    finding of `kinds`. Returns how many were replaced."""
    pattern = names if isinstance(names, re.Pattern) else names_pattern(names)
    n = 0
    for obj, key, p in list(string_slots(record)):
        hits = scan_text(obj[key], kinds, pattern)
        if only is not None:
            hits = [h for h in hits if (p, h.start, h.kind) in only]
        if hits:
            obj[key] = redact_text(obj[key], hits)
            n += len(hits)
    return n


def hit_id(row: int, path: str, hit: Hit) -> str:
    """One finding's name, "ROW:FIELD:START:KIND": what the redact operation's `hits` takes."""
    return f"{row}:{path}:{hit.start}:{hit.kind}"


def hit_keys(hits) -> dict | None:
    """{row: {(field, start, kind)}} from "ROW:FIELD:START:KIND" items (a list, or one string split at ';')."""
    if hits in (None, "", []):
        return None
    items = hits.split(";") if isinstance(hits, str) else list(hits)
    out: dict = {}
    for item in items:
        parts = str(item).strip().split(":")
        if len(parts) < 4 or not parts[0].isdigit() or not parts[-2].isdigit():
            from core.errors import InputError, Problem
            from core.messages import Msg
            raise InputError(problems=[Problem("redact hits", Msg("pii.bad_hit", value=repr(item)), Msg("pii.bad_hit.hint"))])
        out.setdefault(int(parts[0]), set()).add((":".join(parts[1:-2]), int(parts[-2]), parts[-1]))
    return out
