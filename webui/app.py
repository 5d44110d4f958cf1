"""The browser app. Placeholder until the GUI lands: it proves `make run` serves a page."""
from __future__ import annotations

import gradio as gr


def build_ui(services) -> gr.Blocks:
    with gr.Blocks(title="Danlu") as demo:
        gr.Markdown("# Danlu 丹炉\nFine-tune a language model. The full interface is being built; "
                    "meanwhile use the command line: `python app.py --help`.")
    return demo


def launch(services, host="127.0.0.1", port=7860, share=False, auth=None, max_file_size="2gb", block=True):
    demo = build_ui(services)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, share=share, auth=auth, max_file_size=max_file_size,
                prevent_thread_lock=not block, footer_links=[])
    return demo
