"""The page: chat on the left, think-budget controls on the right, examples below.

`build_demo` only lays out and wires; the behaviour lives in `ui.chat`. `launch_demo` adds what
Gradio 6 takes at launch time (theme, CSS, which folders may be served).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import gradio as gr

from ui.chat import (EFFORT_BUDGETS, add_user_message, pick_effort, respond, server_status,
                     toggle_unlimited, unlock_textbox)
from ui.client import ChatClient
from ui.examples import ExampleMedia

ASSETS = Path(__file__).parent / "assets"
MAX_BUDGET = 8192

HEADER = """
<div class="tc-header">
  <h1>🧠 thinkcap <span>· a thinking budget for GLM-4.1V-Thinking</span></h1>
  <p>Ask about an image, several images or a video. The model first <i>thinks</i>, then answers.
  The <b>think budget</b> caps the thinking: once the model has spent that many tokens, the
  server closes the thought with <code>&lt;/think&gt;&lt;answer&gt;</code> and the model must
  answer at once. Try a budget of 8 and compare it with <i>unlimited</i>.</p>
</div>
"""


def example_rows(media: ExampleMedia) -> list[dict]:
    return [
        {"text": "How many red circles are in the picture? Box the final number.",
         "files": [str(media.shapes)]},
        {"text": "Which of the two pictures has more red circles, and how many more?",
         "files": [str(media.shapes), str(media.shapes_more)]},
        {"text": "In which direction does the ball roll?", "files": [str(media.video)]},
        {"text": "A train covers 60 km in one hour. How far does it go in 2.5 hours?", "files": []},
    ]


def budget_controls(default_budget: int) -> tuple:
    with gr.Group():
        effort = gr.Radio(list(EFFORT_BUDGETS), value=None, label="Reasoning effort",
                          info=" · ".join(f"{k} = {v}" for k, v in EFFORT_BUDGETS.items()))
        budget = gr.Slider(0, MAX_BUDGET, value=default_budget, step=1, label="Think budget",
                           info="Most tokens the model may think before it must answer.")
        unlimited = gr.Checkbox(False, label="Unlimited thinking")
    with gr.Accordion("Advanced", open=False):
        max_tokens = gr.Slider(16, 16384, value=2048, step=16, label="Max tokens",
                               info="Thinking and answer together.")
        temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature")
    return effort, budget, unlimited, max_tokens, temperature


def build_demo(client: ChatClient, media: ExampleMedia, default_budget: int = 256) -> gr.Blocks:
    with gr.Blocks(title="thinkcap · think-budget demo", analytics_enabled=False) as demo:
        gr.HTML(HEADER)
        status = gr.Markdown("⏳ Connecting to the model server…", elem_classes="tc-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=560, elem_id="tc-chat",
                                     buttons=["copy"], feedback_options=None,
                                     placeholder="**Ask anything**, or pick an example below.")
                box = gr.MultimodalTextbox(
                    file_count="multiple", file_types=["image", "video"], sources=["upload"],
                    placeholder="Ask about an image or a video… (attach with 📎)",
                    show_label=False, stop_btn=True, autofocus=True, elem_id="tc-input")
                gr.Examples(example_rows(media), inputs=[box], label="Examples")
            with gr.Column(scale=1, min_width=280):
                effort, budget, unlimited, max_tokens, temperature = budget_controls(default_budget)
                new_chat = gr.Button("🗑️ New chat", variant="secondary")

        sent = box.submit(add_user_message, [box, chatbot], [chatbot, box], queue=False)
        answer = sent.success(partial(respond, client),
                              [chatbot, budget, unlimited, max_tokens, temperature], [chatbot])
        answer.then(unlock_textbox, None, [box])
        box.stop(unlock_textbox, None, [box], cancels=[answer])
        effort.input(pick_effort, [effort], [budget, unlimited])
        unlimited.change(toggle_unlimited, [unlimited], [budget])
        budget.release(lambda: None, None, [effort])  # a hand-set budget is no preset any more
        new_chat.click(lambda: ([], gr.MultimodalTextbox(value=None, interactive=True)),
                       None, [chatbot, box], cancels=[answer])
        demo.load(partial(server_status, client), None, [status])
    return demo


def launch_demo(demo: gr.Blocks, media: ExampleMedia, *, host: str, port: int | None,
                share: bool = False, block: bool = True) -> None:
    demo.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
        allowed_paths=[str(media.shapes.parent)], theme=gr.themes.Soft(primary_hue="indigo"),
        css_paths=[ASSETS / "demo.css"], show_error=False)
