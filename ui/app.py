"""The page: chat with example cards on the left, think-budget controls on the right.

`build_demo` only lays out and wires; the behaviour lives in `ui.chat`. `launch_demo` adds what
Gradio 6 takes at launch time (theme, CSS, which folders may be served).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import gradio as gr

from ui.chat import (EFFORT_BUDGETS, add_user_message, pick_effort, respond, server_status,
                     server_status_html, stop_turn, toggle_unlimited, unlock_textbox,
                     use_example)
from ui.client import ChatClient
from ui.examples import ExampleMedia

ASSETS = Path(__file__).parent / "assets"
MAX_BUDGET = 8192

HEADER = """
<div class="tc-header">
  <h1>thinkcap <span>· a thinking budget for GLM-4.1V-Thinking</span></h1>
  <p>Ask about an image, several images or a video. The model first <i>thinks</i>, then answers.
  The <b>think budget</b> caps the thinking: once the model has spent that many tokens, the
  server closes the thought with <code>&lt;/think&gt;&lt;answer&gt;</code> and the model must
  answer at once. Try a budget of 8 and compare it with <i>unlimited</i>.</p>
</div>
"""

PLACEHOLDER = "### Try an example\nor type a question below and attach images or a video."


def example_cards(media: ExampleMedia) -> list[dict]:
    """Cards shown in the empty chat; a click sends the example at once."""
    return [
        {"display_text": "Count the red circles", "icon": str(media.shapes),
         "text": "How many red circles are in the picture? Box the final number.",
         "files": [str(media.shapes)]},
        {"display_text": "Compare two pictures", "icon": str(media.shapes_more),
         "text": "Which of the two pictures has more red circles, and how many more?",
         "files": [str(media.shapes), str(media.shapes_more)]},
        {"display_text": "Which way does the ball roll? (video)",
         "text": "In which direction does the ball roll?", "files": [str(media.video)]},
        {"display_text": "A word problem, no picture",
         "text": "A train covers 60 km in one hour. How far does it go in 2.5 hours?"},
    ]


def budget_controls(default_budget: int) -> tuple:
    with gr.Group():
        effort = gr.Radio(list(EFFORT_BUDGETS), value=None, label="Reasoning effort",
                          elem_id="tc-effort",
                          info=" · ".join(f"{k} = {v}" for k, v in EFFORT_BUDGETS.items()))
        budget = gr.Slider(0, MAX_BUDGET, value=default_budget, step=1, label="Think budget",
                           info="Most tokens the model may think before it must answer.",
                           elem_id="tc-budget")
        unlimited = gr.Checkbox(False, label="Unlimited thinking", elem_id="tc-unlimited")
    with gr.Accordion("Advanced", open=False, elem_id="tc-advanced"):
        max_tokens = gr.Slider(16, 16384, value=2048, step=16, label="Max tokens",
                               info="Thinking and answer together.", elem_id="tc-max-tokens")
        temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature",
                                elem_id="tc-temperature")
    return effort, budget, unlimited, max_tokens, temperature


def build_demo(client: ChatClient, media: ExampleMedia, default_budget: int = 256) -> gr.Blocks:
    with gr.Blocks(title="thinkcap · think-budget demo", analytics_enabled=False) as demo:
        gr.HTML(HEADER)
        status = gr.HTML(server_status_html(None), elem_classes="tc-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=600, elem_id="tc-chat",
                                     buttons=["copy"], feedback_options=None,
                                     placeholder=PLACEHOLDER, examples=example_cards(media))
                box = gr.MultimodalTextbox(
                    file_count="multiple", file_types=["image", "video"], sources=["upload"],
                    placeholder="Ask about an image or a video…",
                    show_label=False, stop_btn=True, autofocus=True, elem_id="tc-input")
            with gr.Column(scale=1, min_width=280):
                effort, budget, unlimited, max_tokens, temperature = budget_controls(default_budget)
                new_chat = gr.Button("New chat", variant="secondary")

        # Instant and often refused (a bad file): no progress overlay to hide the toast behind.
        sent = box.submit(add_user_message, [box, chatbot], [chatbot, box], show_progress="hidden")
        picked = chatbot.example_select(use_example, [chatbot], [chatbot, box],
                                        show_progress="hidden")
        answers = [event.success(partial(respond, client),
                                 [chatbot, budget, unlimited, max_tokens, temperature], [chatbot])
                   for event in (sent, picked)]
        for answer in answers:
            answer.then(unlock_textbox, None, [box])
        box.stop(stop_turn, [chatbot], [chatbot, box], cancels=answers)
        chatbot.clear(unlock_textbox, None, [box], cancels=answers)
        effort.input(pick_effort, [effort], [budget, unlimited])
        unlimited.change(toggle_unlimited, [unlimited], [budget])
        budget.release(lambda: None, None, [effort])  # a hand-set budget is no preset any more
        new_chat.click(lambda: ([], gr.MultimodalTextbox(value=None, interactive=True)),
                       None, [chatbot, box], cancels=answers)
        demo.load(partial(server_status, client), None, [status])
    return demo


def launch_demo(demo: gr.Blocks, media: ExampleMedia, *, host: str, port: int | None,
                share: bool = False, block: bool = True) -> None:
    demo.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
        allowed_paths=[str(media.shapes.parent)], theme=gr.themes.Soft(primary_hue="indigo"),
        css_paths=[ASSETS / "demo.css"], show_error=False)
