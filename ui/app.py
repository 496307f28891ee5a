"""The page: a Chat tab (chat left, think-budget controls right) and a Compare tab.

`build_demo` only lays out and wires; the behaviour lives in `ui.chat`, `ui.compare` and
`ui.controls`. `launch_demo` adds what Gradio 6 takes at launch time (theme, CSS, the small
script in assets/demo.js, which folders may be served).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ui import chat, controls
from ui.chat import Chat
from ui.compare import Compare
from ui.compare_page import CLEAR_TOASTS_JS, compare_layout, wire_compare
from ui.client import ChatClient
from ui.render import LATEX
from ui.examples import ExampleMedia
from ui.session import Sessions

ASSETS = Path(__file__).parent / "assets"
STATUS_SECONDS = 10  # how often the status line asks the server again

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
FOCUS_JS = "() => window.thinkcapFocus && window.thinkcapFocus()"


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


def budget_controls(default_budget: int) -> dict:
    with gr.Group():
        effort = gr.Radio(list(controls.EFFORT_BUDGETS),
                          value=controls.matching_effort(default_budget, False),
                          label="Reasoning effort", elem_id="tc-effort",
                          info=controls.effort_info())
        budget = controls.bounded(gr.Slider(
            0, controls.MAX_BUDGET, value=default_budget, step=1, label="Think budget",
            elem_id="tc-budget", info="Most tokens the model may think before it must answer."))
        unlimited = gr.Checkbox(False, label="Unlimited thinking", elem_id="tc-unlimited",
                                info="Thinking may then use Max tokens, less a short reserve "
                                     "for the answer.")
    with gr.Accordion("Advanced", open=False, elem_id="tc-advanced"):
        max_tokens = controls.bounded(gr.Slider(
            16, controls.MAX_TOKENS, value=2048, step=controls.STEP, label="Max tokens",
            info="Thinking and answer together.", elem_id="tc-max-tokens"))
        temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature",
                                elem_id="tc-temperature")
        system = gr.Textbox("", label="System prompt", lines=2, elem_id="tc-system",
                            placeholder="Optional instructions sent before the conversation")
        # The server's budget controls (docs/api.md); unset ones are not sent, so the
        # server's own defaults (its --think-budget-* flags) apply.
        grace = gr.Number(None, label="Grace tokens", precision=0, elem_id="tc-grace",
                          info="After the budget, thinking may go on this many tokens to finish "
                               "its sentence (empty: the server's default, usually 0).")
        message = gr.Textbox("", label="Wrap-up message", max_length=2000, elem_id="tc-message",
                             placeholder="e.g. \" Time to answer.\"",
                             info="Written into the thought just before it closes; it counts "
                                  "as thinking, inside the budget.")
        action = gr.Radio(controls.ACTIONS, value=controls.DEFAULT_ACTION, elem_id="tc-action",
                          label="When the budget runs out")
        gr.Markdown(controls.CUT_NOTE, elem_classes="tc-advanced-note")
    return dict(effort=effort, budget=budget, unlimited=unlimited, max_tokens=max_tokens,
                temperature=temperature, system=system, grace=grace, message=message,
                action=action)


def wire_controls(c: dict, client: ChatClient) -> None:
    """The controls' handlers; the server's context length is read from the client, which
    learns it from /v1/models with every status check."""
    limit = lambda: client.max_model_len  # noqa: E731

    def pick(effort, max_tokens):
        return controls.pick_effort(effort, max_tokens, limit())

    def sync(budget, unlimited):
        return gr.Radio(value=controls.matching_effort(budget, unlimited, limit()))

    def typed_budget(value):
        return controls.out_of_range(value, 0, controls.budget_limit(limit()), "Think budget")

    def typed_max_tokens(value):
        return controls.out_of_range(value, 16, controls.token_limit(limit()), "Max tokens")

    def typed_grace(value):
        return controls.out_of_range(value, 0, controls.token_limit(limit()), "Grace tokens",
                                     gr.Number)

    c["effort"].input(pick, [c["effort"], c["max_tokens"]],
                      [c["budget"], c["unlimited"], c["max_tokens"]], show_progress="hidden")
    # The radio follows the slider and the switch, whoever moved them.
    for source in (c["budget"], c["unlimited"]):
        source.change(sync, [c["budget"], c["unlimited"]], [c["effort"]], show_progress="hidden")
    c["unlimited"].change(controls.toggle_unlimited, [c["unlimited"]], [c["budget"]],
                          show_progress="hidden")
    # The raw typed number (preprocess=False): out of range, say so and show the bound.
    for slider, check in ((c["budget"], typed_budget), (c["max_tokens"], typed_max_tokens)):
        slider.change(check, [slider], [slider], preprocess=False, show_progress="hidden")
    c["grace"].change(typed_grace, [c["grace"]], [c["grace"]], show_progress="hidden")


def fit_controls(client: ChatClient):
    """On page load: slider ranges and presets inside the served model's context length."""
    def fit(budget: float, max_tokens: float) -> tuple:
        limit = client.max_model_len
        top, most = controls.budget_limit(limit), controls.token_limit(limit)
        # The value only where it must come down: these are the values at page load, and a number
        # the user typed since (while the server was asked its limits) must not be put back.
        return (gr.Slider(maximum=top, **({"value": top} if budget > top else {})),
                gr.Slider(maximum=most, info=f"Thinking and answer together (this server: at most {most}).",
                          **({"value": most} if max_tokens > most else {})),
                gr.Radio(info=controls.effort_info(limit)))
    return fit


def chat_layout(media: ExampleMedia) -> dict:
    # No label: the tab already says "Chat", and on a phone the label covered the placeholder.
    chatbot = gr.Chatbot(label="Chat", show_label=False, height=600, elem_id="tc-chat",
                         buttons=["copy"], feedback_options=None, placeholder=PLACEHOLDER,
                         examples=example_cards(media), latex_delimiters=LATEX)
    box = gr.MultimodalTextbox(
        file_count="multiple", file_types=["image", "video"], sources=["upload"],
        placeholder="Ask about an image or a video…", label="Your message", show_label=False,
        submit_btn=True, stop_btn=False, elem_id="tc-input")
    return dict(chatbot=chatbot, box=box, go=gr.State(False))


def wire_chat(handlers: Chat, ui: dict, c: dict, status: gr.HTML, new: gr.Button) -> None:
    chatbot, box, go = ui["chatbot"], ui["box"], ui["go"]
    box.change(chat.check_upload, [box], [box], show_progress="hidden",
               trigger_mode="always_last")
    # Instant and sometimes refused: no progress overlay to hide the toast behind.
    starts = [
        box.submit(handlers.add_user_message, [box, chatbot], [chatbot, box, go],
                   show_progress="hidden", js=CLEAR_TOASTS_JS),
        chatbot.example_select(handlers.use_example, [chatbot],
                               [chatbot, box, go], show_progress="hidden"),
        chatbot.retry(handlers.retry_turn, [chatbot], [chatbot, box, go],
                      show_progress="hidden"),
    ]
    inputs = [chatbot, go, c["budget"], c["unlimited"], c["max_tokens"], c["temperature"],
              c["system"], c["grace"], c["message"], c["action"]]
    for start in starts:
        (start.then(handlers.respond, inputs, [chatbot],
                    show_progress="hidden")
         .then(handlers.end_turn, None, [box], show_progress="hidden")
         .then(None, js=FOCUS_JS)
         .then(handlers.server_status, None, [status], show_progress="hidden"))
    box.stop(handlers.stop_turn, None, None, concurrency_limit=None,
             show_progress="hidden")
    for clear in (chatbot.clear, new.click):
        clear(handlers.new_chat, None, [chatbot, box], show_progress="hidden")


def build_demo(client: ChatClient, media: ExampleMedia, default_budget: int = 256) -> gr.Blocks:
    sessions = Sessions()
    with gr.Blocks(title="thinkcap · think-budget demo", analytics_enabled=False) as demo:
        gr.HTML(HEADER)
        status = gr.HTML(chat.server_status_html(None), elem_classes="tc-status",
                         elem_id="tc-status")
        with gr.Row(equal_height=False, elem_id="tc-main"):
            with gr.Column(scale=3, elem_id="tc-left"):
                with gr.Tabs():
                    with gr.Tab("Chat", id="chat", elem_id="tc-chat-tab"):
                        chat_ui = chat_layout(media)
                    with gr.Tab("Compare budgets", id="compare", elem_id="tc-compare-tab"):
                        compare_ui = compare_layout()
            with gr.Column(scale=1, min_width=280, elem_id="tc-controls"):
                c = budget_controls(default_budget)
                new = gr.Button("New chat", variant="secondary", elem_id="tc-new-chat")
        wire_controls(c, client)
        handlers = Chat(client, sessions)
        wire_chat(handlers, chat_ui, c, status, new)
        wire_compare(Compare(client, sessions), handlers.stop_turn, compare_ui, c)
        check = handlers.server_status
        demo.load(check, None, [status]).then(
            fit_controls(client), [c["budget"], c["max_tokens"]],
            [c["budget"], c["max_tokens"], c["effort"]], show_progress="hidden")
        gr.Timer(STATUS_SECONDS).tick(check, None, [status], show_progress="hidden")
    return demo


def launch_demo(demo: gr.Blocks, media: ExampleMedia, *, host: str, port: int | None,
                share: bool = False, block: bool = True) -> None:
    script = (ASSETS / "demo.js").read_text()
    demo.queue(default_concurrency_limit=8).launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
        allowed_paths=[str(media.shapes.parent)], theme=gr.themes.Soft(primary_hue="indigo"),
        css_paths=[ASSETS / "demo.css"], head=f"<script>{script}</script>", show_error=False)
