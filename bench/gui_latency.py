"""How fast the GUI answers, measured in Debian's chromium (Playwright) against `python app.py`.

    python bench/gui_latency.py [--rounds 3] [--json results.json]

1. Start `python app.py --port P` on a fresh workspace (the demo model copied in): seconds until the
   page answers HTTP 200, and until the app is usable in the browser.
2. Pick the demo template (40 passes instead of 20, so the job outlasts step 3), press Start training
   (the real recipe on the demo model): milliseconds until the button's answer shows, and seconds
   until the first loss point is on the plot.
3. While that job trains: every tab switch and the buttons in BUTTONS, `--rounds` times, timed inside
   the page from the click until its answer is on screen (a requestAnimationFrame loop, so
   Playwright adds nothing). The answer is the text the press brings (a progress overlay does not
   count). A recipe is picked from its dropdown (from the option's click) and Load config is given a
   complete config (from the file input's change). The language switch counts until both the tab
   names and the page's own labels changed; the next press waits a second after it.
4. When that job has finished, start a second one and, while it trains, press the buttons that need
   a finished run or a running job once each (ONCE).
Prints a table; not a test (timings on a shared machine vary), but the numbers in the README come
from here.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
LOSS_POINTS = '#train-loss-plot [aria-roledescription="point"]'
EPOCHS = 40  # the demo template's 20, doubled: its job must outlast the measurements (~1.5 min)

# click `click`, then wait (one animation frame at a time) until every `target` (selectors joined by
# " && ") is visible and, if given, its text differs from what it was before the click / contains `text`
# `click` may also be "label:TEXT" (the language radio), "option:DROPDOWN|VALUE" (a dropdown's option,
# the list already open) or "file:BUTTON" (an upload button, given `payload` as the file's text)
MEASURE_JS = r"""async ([click, target, text, tabName, payload]) => {
  const visible = el => el && el.offsetParent !== null && el.getBoundingClientRect().height > 0;
  const targets = target.split(' && ');
  // what the element shows, without Gradio's progress overlay (its timer text changes at once) and
  // with a text box's value (innerText leaves it out)
  const shown = el => {
    if (!el) return null;
    let t = el.innerText;
    for (const s of el.querySelectorAll('[data-testid="status-tracker"]')) t = t.replace(s.innerText, '');
    for (const a of el.querySelectorAll('textarea, input[type=text]')) t += ' ' + a.value;
    return t.replace(/\s+/g, ' ').trim();
  };
  const before = targets.map(t => shown(document.querySelector(t)));
  const byText = (sel, txt) => [...document.querySelectorAll(sel)].find(b => b.innerText.trim() === txt);
  let btn = null, press = el => el.click();
  if (tabName) btn = byText('button[role=tab]', tabName);
  else if (click.startsWith('label:')) btn = byText('#language label', click.slice(6));
  else if (click.startsWith('option:')) {
    const [sel, value] = click.slice(7).split('|');
    btn = document.querySelector(`${sel} li[aria-label="${value}"]`);
    press = el => { for (const e of ['mousedown', 'mouseup', 'click']) el.dispatchEvent(new MouseEvent(e, {bubbles: true})); };
  } else if (click.startsWith('file:')) {
    btn = document.querySelector(click.slice(5))?.parentElement.querySelector('input[type=file]');
    press = el => {
      const dt = new DataTransfer();
      dt.items.add(new File([payload], 'settings.yaml', {type: 'application/x-yaml'}));
      el.files = dt.files;
      el.dispatchEvent(new Event('change', {bubbles: true}));
    };
  } else btn = document.querySelector(click);
  if (!btn) return -2;
  const done = (t, i) => {
    const el = document.querySelector(t);
    if (!visible(el)) return false;
    const now = shown(el);
    return (tabName || now !== before[i]) && (text === null || now.includes(text));
  };
  const t0 = performance.now();
  press(btn);
  while (performance.now() - t0 < 30000) {
    if (targets.every(done)) return performance.now() - t0;
    await new Promise(r => requestAnimationFrame(r));
  }
  return -1;
}"""

TABS = [("Templates", "#tpl-demo"), ("Dataset", "#ds-check"), ("Hyperparameters", "#hp-recipe"),
        ("Train", "#train-start"), ("Evaluate", "#ev-start"), ("Export", "#ex-start"), ("Chat", "#chat-send")]
# (name, tab to be on, element to click in round r, element whose answer to wait for, text that answer
# must contain in round r). Each press must change what is on screen, so the rounds alternate between
# two templates / languages; the expected text makes sure the answer itself is there, not a progress
# overlay or a half-drawn box.
TEMPLATES = ("support-bot", "demo")  # the journey chose "demo" already
RECIPES = ("quick", "balanced")
BUTTONS = [
    ("Use this template", "Templates", lambda r: f"#tpl-{TEMPLATES[r % 2]}", "#tpl-chosen", lambda r: TEMPLATES[r % 2]),
    ("Show command", "Hyperparameters", lambda r: "#hp-show-command", "#hp-command", lambda r: "python app.py train"),
    ("Save config", "Hyperparameters", lambda r: "#hp-save", "#hp-saved-file", lambda r: ".yaml"),
    ("Check dataset", "Dataset", lambda r: "#ds-check", "#ds-summary", lambda r: " · "),
    ("Remove duplicates", "Dataset", lambda r: "#ds-op-dedupe", "#ds-clean-message", lambda r: "duplicate"),
    ("Undo", "Dataset", lambda r: "#ds-undo", "#ds-clean-message", lambda r: None),
    ("Download cleaned", "Dataset", lambda r: "#ds-download", "#ds-download-file", lambda r: ".jsonl"),
    # the next round's template sets every setting again
    ("Recipe preset (dropdown)", "Hyperparameters", lambda r: f"option:#hp-recipe|{RECIPES[r % 2]}", "#hp-recipe-info",
     lambda r: None),
    ("Load config", "Hyperparameters", lambda r: "file:#hp-load", "#hp-loaded", lambda r: f"bench_round_{r}"),
    # the tab names and the labels the page translates itself (here the language picker's own)
    ("Language switch", None, lambda r: "label:简体中文" if r % 2 == 0 else "label:English",
     "#tabs button[role=tab] && #language", lambda r: None),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> tuple[subprocess.Popen, float, float]:
    """(process, seconds to the first HTTP 200 (the "starting" page), seconds until the app itself answers)."""
    env = dict(os.environ, DANLU_HOME=str(home), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port)], cwd=str(REPO), env=env,
                            stdin=subprocess.DEVNULL, stdout=open(home / "server.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    first = None
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                body = r.read()
                if r.status == 200:
                    first = first or time.perf_counter() - t0
                    if b"danlu-starting-page" not in body:
                        return proc, first, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                raise SystemExit(f"the server did not start:\n{(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.02)


def measure(page, click, target, text=None, tab_name=None, payload=None) -> float:
    return page.evaluate(MEASURE_JS, [click, target, text, tab_name, payload])


def element_of(click: str) -> str:
    """The element a BUTTONS press acts on ("option:#hp-recipe|quick" -> "#hp-recipe")."""
    return click.split(":", 1)[1].split("|")[0] if click.startswith(("option:", "file:")) else click


def press(page, click: str, target: str, text, r: int, config_text: str) -> float:
    """measure() for a button of BUTTONS in round r, opening a dropdown first, and giving Load config a
    complete config (the demo template's) with one unknown key, so each round's answer differs."""
    payload = None
    if click.startswith("option:"):
        sel, value = click[7:].split("|")
        page.locator(f"{sel} input").click()
        page.locator(f'{sel} li[aria-label="{value}"]').wait_for()
    if click.startswith("file:"):
        payload = config_text + f"\nbench_round_{r}: 1\n"
    return measure(page, click, target, text, None, payload)


def summary(values: list[float]) -> str:
    ok = [v for v in values if v >= 0]
    if not ok:
        return "failed"
    return f"{statistics.median(ok):7.0f} {max(ok):7.0f}"


def prepare_home() -> tuple[Path, str]:
    """A fresh workspace with the demo model in place, and the demo preset's config text (for Load config)."""
    from core import presets
    from core.demo_model import ensure_demo_model
    from core.workspace import Workspace
    home = Path(tempfile.mkdtemp(prefix="danlu-bench-"))
    presets.copy_preset("demo", home / "load-config.yaml")
    config_text = (home / "load-config.yaml").read_text()
    (home / "models").mkdir()
    shutil.copytree(ensure_demo_model(Workspace.open(home / "cache")), home / "models" / "danlu-tiny")
    return home, config_text


def repeated_presses(page, rounds: int, config_text: str) -> tuple[dict, dict]:
    """Each tab switch and button of TABS and BUTTONS, `rounds` times in English (the language switch,
    BUTTONS' last, alternates the page between English and back): their milliseconds."""
    tabs = {name: [] for name, _ in TABS}
    buttons = {b[0]: [] for b in BUTTONS}
    for r in range(2 * rounds):
        if r % 2 == 0:  # the page is in English: tabs are found by their English names
            for name, target in TABS:
                tabs[name].append(measure(page, None, target, None, name))
            for label, tab_name, click, target, expect in BUTTONS:
                if tab_name:
                    measure(page, None, element_of(click(r // 2)), None, tab_name)
                    buttons[label].append(press(page, click(r // 2), target, expect(r // 2), r // 2, config_text))
            time.sleep(1.1)  # the saved config's name has the time in seconds
        label, _, click, target, expect = BUTTONS[-1]
        buttons[label].append(measure(page, click(r), target, expect(r)))
        # the switch answers before its second half (the server re-renders what it composed)
        # is done: let that finish, as a person reading the new labels would, before the next press
        time.sleep(1.0)
    return tabs, buttons


def stop_leftovers(home: Path) -> None:
    """Cancel the jobs and stop the demos the measurements left running in the workspace."""
    from core import demos
    from core import jobs as J, launcher
    from core.services import Services
    services = Services.create(home)
    for job in services.store.list(states=[J.QUEUED, *J.ACTIVE]):
        launcher.cancel(services.workspace, job.id, grace=5)
        launcher.wait(services.workspace, job.id, timeout=60)
    for d in demos.list_demos(services.workspace):
        demos.stop_demo(services.workspace, d["id"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    home, config_text = prepare_home()
    port = free_port()
    proc, http_s, app_s = start_server(home, port)
    results: dict = {"http_200_s": round(http_s, 2), "app_http_200_s": round(app_s, 2)}
    from playwright.sync_api import sync_playwright
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.locator("#tpl-demo").wait_for(state="visible", timeout=60_000)
            results["page_usable_after_start_s"] = round(app_s + time.perf_counter() - t0, 2)
            results["page_usable_after_goto_s"] = round(time.perf_counter() - t0, 2)
            demo_settings(page)
            t_start = time.perf_counter()
            results["start_button_ms"] = round(measure(page, "#train-start", "#train-message", "Started job"), 1)
            page.locator(LOSS_POINTS).first.wait_for(state="attached", timeout=180_000)
            results["start_to_first_loss_point_s"] = round(time.perf_counter() - t_start, 2)
            tabs, buttons = repeated_presses(page, args.rounds, config_text)
            state = page.locator("#train-status").inner_text()
            results["job_state_during_measurements"] = state.split("·")[0].strip()
            results["once_ms"] = once_each(page)
            results["tab_switch_ms"] = {k: v for k, v in tabs.items()}
            results["button_ms"] = {k: v for k, v in buttons.items()}
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        stop_leftovers(home)
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(home, ignore_errors=True)
    return 0


# pressed once each, when the first job has finished and a second one trains: (name, tab, element to
# click, element whose answer to wait for, text it must contain); Stop and Resume on that job, then
# Share a demo (its process loads a model for seconds, while the job may end)
ONCE = [
    ("Start evaluation", "Evaluate", "#ev-start", "#ev-status", "▶"),
    ("Merge & export", "Export", "#ex-start", "#ex-status", "▶"),
    ("Send (the message shows)", "Chat", "#chat-send", "#chat-bot", "Which furnace"),
    ("Clear", "Chat", "#chat-clear", "#chat-bot", None),
    ("Stop", "Train", "#train-stop", "#train-message", "■"),
    ("Resume", "Train", "#train-resume", "#train-message", "Resuming"),
    ("Share a demo (it says it starts)", "Chat", "#demo-start", "#demo-message", "Starting the demo"),
]


def demo_settings(page) -> None:
    """The demo template with twice its passes (the job must outlast the measurements), then the Train tab."""
    page.get_by_role("tab", name="Templates", exact=True).click()
    page.locator("#tpl-demo").click()
    page.locator("#tpl-chosen").get_by_text("demo").first.wait_for()
    page.get_by_role("tab", name="Hyperparameters", exact=True).click()
    page.locator("#cfg-num_epochs input").fill(str(EPOCHS))
    page.get_by_role("tab", name="Train", exact=True).click()
    page.locator("#train-start").wait_for(state="visible")


def once_each(page) -> dict:
    """The buttons that need a finished run (or act on the job): after the first job succeeded, start a
    second one and, while it trains, press each once."""
    page.get_by_role("tab", name="Train", exact=True).click()
    page.locator("#train-status").get_by_text("Succeeded").wait_for(timeout=600_000)
    demo_settings(page)  # the rounds left another template chosen
    page.locator("#train-start").click()
    page.locator("#train-status").get_by_text("Running").wait_for(timeout=120_000)
    out = {}
    for name, tab_name, click, target, expect in ONCE:
        measure(page, None, click, None, tab_name)
        if click == "#chat-send":
            page.locator("#chat-input textarea").fill("Which furnace burns hottest?")
        if click in ("#ev-start", "#ex-start"):  # opening the tab lists the finished runs and picks one
            run = click.replace("-start", "-run")
            page.wait_for_function(f"() => document.querySelector('{run} input').value.length > 0", timeout=30_000)
        if click == "#demo-start":  # in a closed accordion
            page.locator("#chat-share").get_by_text("Share a demo").first.click()
            page.locator("#demo-start").wait_for(state="visible")
        if click in ("#train-stop", "#train-resume"):  # each is enabled once the job is in a state for it
            page.wait_for_function(f"() => !document.querySelector('{click} button, {click}').disabled", timeout=120_000)
        out[name] = measure(page, click, target, expect)
        if click == "#chat-send":  # let the reply finish (the model loads first) before Clear
            wait_for_reply(page)
        if click == "#demo-start":  # its own process loads the model: let it finish before the next press
            page.locator("#demo-message").get_by_text("The demo runs at").wait_for(timeout=300_000)
        time.sleep(1.0)
    return out


def wait_for_reply(page, timeout: float = 300, still: float = 3.0) -> str:
    """The chat's last answer once the model has loaded and the text has stopped changing for `still`
    seconds (whatever words a tiny model writes, or none)."""
    js = """() => { const b = [...document.querySelectorAll("#chat-bot [data-testid='bot']")].pop();
                    return b ? b.innerText : null; }"""
    end, last, since = time.time() + timeout, None, time.time()
    while time.time() < end:
        text = page.evaluate(js)
        if text != last:
            last, since = text, time.time()
        elif text is not None and "Loading the model" not in text and time.time() - since >= still:
            return text
        time.sleep(0.5)
    raise TimeoutError(f"the chat answer did not settle in {timeout:.0f} s; it shows {last!r}")


def print_table(r: dict) -> None:
    load = os.getloadavg()
    print(f"\nDanlu GUI latency ({os.cpu_count()} CPU cores, load average {load[0]:.1f} / {load[1]:.1f})")
    print(f"  first HTTP 200 after `python app.py`:        {r['http_200_s']:.2f} s  (the 'starting' page)")
    print(f"  the app itself answers HTTP 200 after:       {r['app_http_200_s']:.2f} s")
    print(f"  app usable in the browser after start:       {r['page_usable_after_start_s']:.2f} s")
    print(f"  Start training -> its answer on the page:    {r['start_button_ms']:.0f} ms")
    print(f"  Start training -> first loss point on plot:  {r['start_to_first_loss_point_s']:.2f} s")
    print(f"  (measured while the demo job was: {r['job_state_during_measurements']})")
    print(f"\n  {'while training':34s} {'median':>7s} {'max':>7s}  ms (from click to answer on screen)")
    for name, values in r["tab_switch_ms"].items():
        print(f"  tab {name:30s} {summary(values)}")
    for name, values in r["button_ms"].items():
        print(f"  button {name:27s} {summary(values)}")
    print("\n  pressed once, while a second job trains (the first one finished)")
    for name, value in r["once_ms"].items():
        print(f"  button {name:27s} {summary([value])}")


if __name__ == "__main__":
    sys.exit(main())
