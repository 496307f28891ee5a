"""The Compare tab's layout and wiring (the behaviour is in `ui.compare`)."""

from __future__ import annotations

import gradio as gr

from ui import chat, compare
from ui.compare import Compare
from ui.compare_view import MAX_COLUMNS
from ui.render import LATEX

CLEAR_TOASTS_JS = "(...args) => { window.thinkcapClearToasts && window.thinkcapClearToasts(); return args; }"


def compare_layout() -> dict:
    gr.Markdown("One question, answered at several think budgets at once: see what the budget "
                "changes. By default the model thinks **once**, and the thought is cut at each "
                "budget with the answer forced there, so the columns differ only by the cut; "
                "*independent samples* asks once per budget instead. The budgets typed here "
                "replace the slider; everything under Advanced still applies. In cut mode the "
                "grace, wrap-up message and budget action shape the one shared thought (the "
                "largest budget's column); every smaller budget is an exact cut of it with the "
                "answer forced at once: no grace, no message, always an answer.")
    with gr.Row(equal_height=True, elem_id="tc-compare-top"):
        box = gr.MultimodalTextbox(
            file_count="multiple", file_types=["image", "video"], sources=["upload"],
            placeholder="A question to answer at every budget…", label="Question",
            show_label=False, submit_btn="Compare", stop_btn=False, elem_id="tc-compare-input",
            scale=4, min_width=240)
        budgets = gr.Textbox(compare.DEFAULT_BUDGETS, label="Budgets (2–4, or “unlimited”)",
                             elem_id="tc-compare-budgets", scale=1, min_width=180)
    mode = gr.Radio(compare.MODES, value=compare.CUT, label="How", elem_id="tc-compare-mode")
    question = gr.HTML("", elem_id="tc-compare-question")
    summary = gr.HTML("", elem_id="tc-compare-summary")
    slots = []
    with gr.Row(equal_height=False, elem_id="tc-compare-columns"):
        for i in range(MAX_COLUMNS):
            # A header of our own instead of the Chatbot's label, which covered the text; no
            # autoscroll, so each column shows its thought from the top.
            with gr.Column(visible=False, elem_classes="tc-compare-col", elem_id=f"tc-compare-{i}",
                           min_width=200) as column:
                head = gr.HTML("")
                panel = gr.Chatbot(show_label=False, height=520, layout="panel", autoscroll=False,
                                   buttons=["copy"], feedback_options=None,
                                   latex_delimiters=LATEX, elem_classes="tc-compare-chat")
            slots += [column, head, panel]
    return dict(box=box, budgets=budgets, mode=mode, question=question, summary=summary,
                slots=slots)


def wire_compare(handlers: Compare, stop, ui: dict, c: dict) -> None:
    box = ui["box"]
    box.change(chat.check_upload, [box], [box], show_progress="hidden",
               trigger_mode="always_last")
    run = box.submit(handlers.run, [box, ui["budgets"], ui["mode"], c["max_tokens"],
                                    c["temperature"], c["system"], c["grace"], c["message"],
                                    c["action"]],
                     [ui["question"], ui["summary"], box, *ui["slots"]],
                     show_progress="hidden", js=CLEAR_TOASTS_JS)
    run.then(handlers.end, None, [box], show_progress="hidden")
    box.stop(stop, None, None, concurrency_limit=None, show_progress="hidden")
