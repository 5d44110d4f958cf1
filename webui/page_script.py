"""The page's own style sheet and scripts (webui.app wires them): the language switch and what it
renames, the language chosen at load, and the log kept scrolled to its end."""
import json

from webui import i18n
from webui.i18n import CODES

# A cleaning button's label on one line (Japanese ones wrapped onto two, the row ragged); a plot
# drawn in what its label leaves of the box (Gradio drew it the box's height below the label, and
# the box cut off the x-axis title: "tokens", "step", in every language). Korean lines broken between
# words, as Korean is written, not inside one ("연\n단로에" on a template card). A picker's text as tall as
# its line: Gradio's 16 px box cut off the bottom of a line that holds Chinese, Japanese or Korean, whose
# font sits lower ("炼丹_zh.jsonl" read "炼丹 zh.jsonl": the underscore was gone).
CSS = """
.gradio-container {max-width: 1180px !important; margin: 0 auto !important;}
#header h1 {margin-bottom: 0;}
#header p {margin-top: 2px; color: var(--body-text-color-subdued);}
.muted {color: var(--body-text-color-subdued); font-size: 0.9em;}
.card {border-radius: 10px; justify-content: space-between;}
.card button {flex-grow: 0 !important;}
#language {flex-grow: 0;}
#language .wrap {flex-wrap: nowrap;}
#language label {white-space: nowrap;}
.card h3 {margin-top: 0;}
.group-title h4 {margin: 12px 0 4px 0;}
.failure {border-left: 4px solid #dc2626; padding: 6px 12px; background: #fef2f2; border-radius: 6px;}
.failure.calm {border-left-color: #a8a29e; background: #f5f5f4;}
#hp-saved-file .empty, #ds-download-file .empty {min-height: 0 !important; height: 44px !important;}
.log textarea {font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px;}
#ds-clean button, #ds-download {white-space: nowrap; min-width: fit-content !important;}
.block:has(> .vega-embed) {display: flex; flex-direction: column;}
.block > .vega-embed {flex: 1 1 0; min-height: 0;}
html:lang(ko) .gradio-container {word-break: keep-all; overflow-wrap: break-word;}
html:lang(zh-CN) .wrap-inner input, html:lang(ja) .wrap-inner input, html:lang(ko) .wrap-inner input {height: auto !important;}
"""

TAB_KEYS = ["tab.templates", "tab.dataset", "tab.review", "tab.hyperparams", "tab.train", "tab.evaluate", "tab.export",
            "tab.chat"]

# The language switch: gr.I18n translates on the page, so switching is a front-end locale change
# (svelte-i18n's changeLocale, taken from Gradio's own module) remembered in localStorage.
# The event's inputs arrive as arguments, language first; they are handed on to the Python handler.
#
# The tab bar is the exception: Gradio's frontend translates a tab's name only when the server
# updates that tab. A tab sent from the server stays on the page's list of components to refresh
# on every later event, and refreshing a tab copies the data of everything inside it: after one
# language switch, each timer tick of the Train tab made the page copy the whole app twice
# (Chrome profile, bench/gui_latency.py). So the page renames the tab bar's own buttons (the visible
# ones, the hidden copies Gradio measures widths with and the overflow menu's), and keeps them
# renamed if Gradio redraws them.
#
# So is Gradio's error box: it heads every box "Error" (whatever title the handler sent) and names its
# close button "Close", for screen readers too. The page puts its own words in their place as each box
# appears (a style sheet's ::before had shown the word, while a screen reader still read "Error").
#
# A number box takes a decimal point only: the browser drops a typed comma, so "0,0002" typed in the
# Spanish page became 2. Where the page's readers write a decimal comma (i18n.DECIMAL_COMMA), the comma
# is typed as a point and the box says so (the browser's own note beside it, in the page's words).
# Elsewhere the browser drops the comma from the box's value ("0,0002" is 2) and keeps what was typed
# where no script reads it: each number box keeps its own copy of the keys typed at its end
# (input.danluTyped; an edit elsewhere, a deletion or a paste drops it), for the settings' check to see
# a comma that cannot group thousands (webui.fields, core.config_io.decimal_comma).
SET_LANGUAGE_JS = """(...inputs) => {
  const lang = inputs[0];
  try { localStorage.setItem('danlu-lang', lang); } catch (e) {}
  const url = performance.getEntriesByType('resource').map(e => e.name)
      .find(n => /\\/assets\\/core-[^/]+\\.js$/.test(n));
  if (url) import(url).then(m => m.changeLocale(lang));
  document.documentElement.lang = lang;
  window.danluTabNames = %s;
  window.danluLang = lang;
  const rename = () => {
    const bar = document.querySelector('#tabs > .tab-wrapper');
    if (!bar) return;
    const want = Math.max(0, window.danluTabNames.languages.indexOf(window.danluLang));
    for (const button of bar.querySelectorAll('button')) {
      const text = [...button.childNodes].find(n => n.nodeType === Node.TEXT_NODE && n.nodeValue.trim());
      if (!text) continue;
      const names = window.danluTabNames.names.find(all => all.includes(text.nodeValue.trim()));
      if (names && text.nodeValue !== names[want]) text.nodeValue = names[want];
    }
  };
  rename();
  const bar = document.querySelector('#tabs > .tab-wrapper');
  if (bar && !window.danluTabWatch) {
    window.danluTabWatch = new MutationObserver(rename);
    window.danluTabWatch.observe(bar, {subtree: true, childList: true, characterData: true});
  }
  window.danluBoxWords = %s;
  const box = () => {
    const words = window.danluBoxWords[window.danluLang] || window.danluBoxWords.en;
    for (const title of document.querySelectorAll('.toast-title.error')) {
      const text = [...title.childNodes].find(n => n.nodeType === Node.TEXT_NODE && n.nodeValue.trim());
      if (text && text.nodeValue !== words.title + ' ') text.nodeValue = words.title + ' ';
    }
    for (const close of document.querySelectorAll('.toast-close')) {
      if (close.getAttribute('aria-label') !== words.close) close.setAttribute('aria-label', words.close);
    }
  };
  box();
  const toasts = document.querySelector('.toast-wrap');
  if (toasts && !window.danluBoxWatch) {
    window.danluBoxWatch = new MutationObserver(box);
    window.danluBoxWatch.observe(toasts, {subtree: true, childList: true, characterData: true});
  }
  if (!window.danluCommaWatch) {
    window.danluCommaWatch = true;
    document.addEventListener('keydown', (e) => {
      const words = window.danluBoxWords[window.danluLang] || {};
      const input = e.target;
      if (!(input instanceof HTMLInputElement) || input.type !== 'number') return;
      if (!words.comma) {
        const typed = input.danluTyped, value = input.value;
        const kept = typed != null && (value === '' || typed.replace(/,/g, '') === value) ? typed : value;
        if (e.key.length === 1 && !e.ctrlKey && !e.metaKey && !e.altKey) input.danluTyped = kept + e.key;
        else if (!['Tab', 'Shift', 'Enter', 'CapsLock'].includes(e.key)) input.danluTyped = null;
        return;
      }
      if (e.key !== ',') return;
      e.preventDefault();
      if (!/[.e]/i.test(input.value)) document.execCommand('insertText', false, '.');
      input.setCustomValidity(words.decimal);
      input.reportValidity();
      input.addEventListener('blur', () => input.setCustomValidity(''), {once: true});
    }, true);
  }
  return inputs.length === 1 ? lang : inputs;
}""" % (json.dumps({"languages": CODES, "names": [[i18n.tr(k, code) for code in CODES] for k in TAB_KEYS]},
                    ensure_ascii=False),
        json.dumps({code: {"title": i18n.tr("app.error_title", code), "close": i18n.tr("app.close", code),
                           "decimal": i18n.tr("app.decimal_point", code), "comma": code in i18n.DECIMAL_COMMA}
                    for code in CODES}, ensure_ascii=False))
SCROLL_LOG_JS = """() => { const t = document.querySelector('#train-log textarea');
  if (t) requestAnimationFrame(() => { t.scrollTop = t.scrollHeight; }); }"""
# the language remembered in this browser, else the browser's own when the page speaks it, else English
LOAD_LANGUAGE_JS = """() => {
  const codes = %s;
  let lang = null;
  try { lang = localStorage.getItem('danlu-lang'); } catch (e) {}
  if (!codes.includes(lang)) {
    const wanted = (navigator.language || 'en').toLowerCase().split('-')[0];
    lang = codes.find(c => c.toLowerCase().split('-')[0] === wanted) || 'en';
  }
  return (%s)(lang);
}""" % (json.dumps(CODES), SET_LANGUAGE_JS)
