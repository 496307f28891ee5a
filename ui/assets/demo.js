/* thinkcap demo: the little the page needs beyond Gradio. Loaded in <head> by ui/app.py. */
(() => {
  const NOTE = '<div class="tc-';  // the stats line and notes the demo appends to an answer
  const BOX = /<span class="tc-box">([\s\S]*?)<\/span>/g;

  // Gradio's Copy button copies a message's source, our HTML included: copy the plain answer.
  function plainAnswer(text) {
    if (typeof text !== "string" || !text.includes('class="tc-')) return text;
    const answer = text.split(NOTE)[0].replace(BOX, "$1").trim();
    if (answer) return answer;
    const notes = document.createElement("div");  // only notes (an error, a stop): their words
    notes.innerHTML = text;
    return notes.innerText.trim();
  }
  // Copy on a turn with a thought copies "title + thought + answer": keep the answer only,
  // as the page shows it (the box highlight is plain text there), notes left out.
  let shownAnswer = null;
  function answerBeside(button) {
    const buttons = button.closest("[class*='message-buttons']");
    for (let row = buttons && buttons.previousElementSibling; row; row = row.previousElementSibling) {
      const answers = [...row.querySelectorAll(".message-content")]
        .filter((m) => !m.closest(".thought-group"));
      if (!answers.length) continue;
      const copy = answers[answers.length - 1].cloneNode(true);
      copy.querySelectorAll(".tc-stats").forEach((n) => n.remove());
      const notes = [...copy.querySelectorAll(".tc-note, .tc-error")];
      notes.forEach((n) => n.remove());
      // No answer text (it ended after thinking, or was stopped): the note that says so, never
      // the thought with its title.
      return copy.innerText.trim() || notes.map((n) => n.innerText.trim()).join("\n");
    }
    return null;
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[aria-label='Copy message']");
    shownAnswer = button ? answerBeside(button) : null;
  }, true);
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (text) => {
      const ours = typeof text === "string" && text.includes('class="tc-');
      return write(ours && shownAnswer !== null ? shownAnswer : plainAnswer(text));
    };
  }
  window.thinkcapPlainAnswer = plainAnswer;

  // The same file picked again after a send was ignored (the hidden file input still held it,
  // so no change event came): forget it once Gradio has taken the files.
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === "file" && input.closest("#tc-input, #tc-compare-input")) {
      setTimeout(() => { input.value = ""; }, 0);
    }
  }, true);

  // A new send starts from a clean slate: earlier warnings are about earlier sends.
  window.thinkcapClearToasts = () => {
    document.querySelectorAll(".toast-close").forEach((button) => button.click());
  };

  // Focus the chat's textbox, but never scroll to it: on a phone that hid the header.
  const WIDE = 700;
  window.thinkcapFocus = () => {
    const box = document.querySelector("#tc-input textarea");
    if (box && window.innerWidth > WIDE) box.focus({ preventScroll: true });
  };
  const ready = setInterval(() => {
    if (document.querySelector("#tc-input textarea")) {
      clearInterval(ready);
      window.thinkcapFocus();
    }
  }, 200);

  // Gradio gives the textarea no accessible name when its label is hidden: name it here (the
  // compare tab is rendered only once opened, hence the periodic check).
  const LABELS = { "#tc-input textarea": "Your message",
                   "#tc-compare-input textarea": "Question for every budget" };
  setInterval(() => {
    for (const [selector, text] of Object.entries(LABELS)) {
      const box = document.querySelector(selector);
      if (box && !box.getAttribute("aria-label")) box.setAttribute("aria-label", text);
    }
    // The thought's fold button has an empty aria-label in Gradio: say what it does now.
    document.querySelectorAll(".thought-group > .title").forEach((title) => {
      const button = title.querySelector("button");
      if (!button) return;
      const open = title.classList.contains("expanded");
      const label = open ? "Fold the thought" : "Unfold the thought";
      if (button.getAttribute("aria-label") !== label) {
        button.setAttribute("aria-label", label);
        button.setAttribute("aria-expanded", String(open));
      }
    });
  }, 300);
})();
