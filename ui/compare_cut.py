"""Compare by cutting one thought (`ui.cut_points`): the columns' turns, phase by phase.

1. The shared thought streams at the largest budget; each column shows the part of it that its
   own budget keeps, with the live meter, while it grows.
2. The thought is done: a column whose budget holds all of it shows it with its answer; every
   other column gets the thought's first `budget` tokens and its own forced answer, streamed in
   parallel.
The generator mutates the columns and yields whenever the page should be updated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from ui.client import ChatClient, ServerError, Settings
from ui.compare_view import Column
from budget.cuts import Cut, plan_cuts, thought_budget
from ui.cut_points import CutClient
from ui.media import MediaError
from ui.session import StopSignal
from ui.stream import Throttle, Turn, thinking_prefix


def preview(shared: Turn, budget: int | None) -> Turn:
    """What a column shows while the shared thought streams: its first `budget` tokens, with
    the meter against its own budget."""
    if budget is None or shared.answering:
        return shared
    tokens = min(shared.thinking_so_far, budget)
    view = Turn(thinking=thinking_prefix(shared, tokens), meter_budget=budget,
                started_at=shared.started_at, timed_thought=False)
    view.thinking_chunks = tokens
    return view


def cut_turn(cut: Cut, text: str) -> Turn:
    return Turn(thinking=text, meter_budget=cut.budget, num_thinking_tokens=cut.tokens,
                timed_thought=False)


def answer_cut(column: Column, cutter: CutClient, messages: list[dict], settings: Settings,
               signal: StopSignal, cut: Cut, budget_hint: str | None = None) -> None:
    """Stream the forced answer at one cut into `column.turn`, on its own thread."""
    turn = column.turn
    try:
        thought = turn.thinking
        for chunk in cutter.answer_at_cut(messages, thought, settings, signal, budget_hint):
            turn.feed(chunk)
            # The request thought 0 tokens itself (budget 0): the column's thought is the cut.
            turn.thinking, turn.num_thinking_tokens, turn.answer_forced = thought, cut.tokens, True
            if turn.finished:
                turn.think_budget = turn.effective_think_budget = cut.budget
    except (ServerError, MediaError) as exc:
        column.error = str(exc)
    if signal.stopped and not turn.finished:
        turn.stopped = True
    elif column.error is None and not turn.finished:
        column.error = "The server ended the stream early."


def own_thought(cut: Cut, budget: int | None, tokens: int, forced: bool) -> Cut:
    """The budget the thought was generated at keeps it whole, its own answer included: with
    grace the thought may run past that budget, and an exact cut there would throw away the
    thought (and the grace, message, truncate) the column asked for."""
    return Cut(cut.budget, tokens, forced, False) if cut.budget == budget else cut


def _think(client: ChatClient, signal: StopSignal, messages: list[dict], columns: list[Column],
           settings: Settings, shared: Turn) -> Iterator[None]:
    throttle = Throttle()
    try:
        for chunk in client.stream(messages, settings, signal):
            shared.feed(chunk)
            if throttle.ready():
                for column in columns:
                    column.turn = preview(shared, column.budget)
                yield
    except (ServerError, MediaError) as exc:
        for column in columns:
            column.error = str(exc)
    if not shared.finished:
        shared.stopped = signal.stopped
        for column in columns:
            column.turn = shared if column.turn is shared else preview(shared, column.budget)
            column.turn.stopped = shared.stopped
            if not (column.error or shared.stopped):
                column.error = "The server ended the stream early."


def stream_cut(client: ChatClient, cutter: CutClient, signal: StopSignal, messages: list[dict],
               columns: list[Column], settings: Callable[[int | None], Settings]
               ) -> Iterator[None]:
    budget = thought_budget([c.budget for c in columns])
    shared = Turn(meter_budget=budget)
    yield from _think(client, signal, messages, columns, settings(budget), shared)
    if not shared.finished:
        yield
        return
    tokens = shared.num_thinking_tokens
    tokens = shared.thinking_so_far if tokens is None else tokens
    plan = [own_thought(cut, budget, tokens, shared.answer_forced)
            for cut in plan_cuts([c.budget for c in columns], tokens, shared.answer_forced)]
    try:
        ids = cutter.thought_ids(shared.thinking, shared.thinking_ids)
        texts = {c.budget: cutter.detokenize(ids[:c.tokens]) for c in plan if c.cut}
    except ServerError as exc:
        for column, cut in zip(columns, plan):
            column.turn, column.error = shared, (str(exc) if cut.cut else None)
        yield
        return
    for column, cut in zip(columns, plan):
        column.cut = cut.cut
        column.turn = cut_turn(cut, texts[cut.budget]) if cut.cut else shared
        if cut.cut:
            column.thread = threading.Thread(target=answer_cut, daemon=True, args=(
                column, cutter, messages, settings(cut.budget), signal, cut, shared.budget_hint))
            column.thread.start()
    yield from wait_columns([c for c in columns if c.thread is not None])


def wait_columns(columns: list[Column]) -> Iterator[None]:
    """Yield (throttled) while any column's thread streams, then once more when all have ended."""
    throttle = Throttle()
    while any(c.thread.is_alive() for c in columns):
        time.sleep(0.02)
        if throttle.ready():
            yield
    yield  # exact, after every stream has ended
