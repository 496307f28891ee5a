"""The config of `python -m training.sft`: a dataclass like GRPOConfig, filled from YAML + flags.

`python -m training.sft DATA OUT --steps 1000` (the positionals are `train_data` and `output_dir`),
or `python -m training.sft sft.yaml [--field value ...]`; `--help` lists every field. Paths follow
`training/config_load.py`: relative to the YAML's folder when written there, to the current directory
when given as a flag or positional.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from budget.hint import BudgetHint, HintError, parse_hint
from training.config_load import ConfigError, setting

PROG = "python -m training.sft"
PATH_FIELDS = ("model", "train_data", "output_dir")


@dataclass
class SFTConfig:
    # ---- model and data ------------------------------------------------------------------------
    model: str = setting("tiny", "HF model folder to start from; 'tiny' builds/uses the tiny random GLM-4.1V")
    train_data: str = setting("", "JSONL of training records (synthetic tasks, running sums); required (DATA)")
    output_dir: str = setting("runs/sft", "the warmed-up model folder (servable, a `model` for `thinkcap train`) (OUT)")
    seed: int = setting(0, "seeds the record draw, the demonstrations, the hinted budgets and weight init")

    # ---- schedule ------------------------------------------------------------------------------
    steps: int = setting(150, "optimizer steps")
    batch_size: int = setting(16, "demonstrations per step (records drawn without replacement within a step)")
    lr: float = setting(1e-2, "AdamW learning rate")
    lr_schedule: str = setting("constant", "constant (the short format warm-up) or cosine (5 %% linear warm-up, then "
                               "cosine down to 10 %%: a cold start that has to learn the task, like the running sum)")

    # ---- demonstrations ------------------------------------------------------------------------
    think_sentences_min: int = setting(2, "fewest filler sentences in a templated thought (tasks without a worked "
                                       "thought); long thoughts make a budget bite")
    think_sentences_max: int = setting(10, "most filler sentences in a templated thought")
    answer_noise: float = setting(0.0, "share of demonstrations with a random answer (the format is learnt, the task "
                                  "is left for RL); 0 <= x <= 1")
    short_thoughts: float = setting(0.0, "running-sum records: share of thoughts written as totals only (`a3 b8 c10`) "
                                    "instead of `a3=3 b5=8 c2=10`; 0 <= x <= 1")

    # ---- budget hint (budget/hint.py, the one hint function the server and rollouts use) -------
    budget_hint: str = setting("", "hint template with one {budget}, e.g. 'Think for at most {budget} tokens.'; the "
                               "output folder records it (thinkcap_policy.json) so `thinkcap serve` hints alike; "
                               "'' or 'off' = no hint")
    hint_budgets: str = setting("", "comma list of budgets, e.g. '0,4,8,12,16,20,32': each demonstration's prompt gets "
                                "budget_hint with one drawn uniformly (own seeded stream, independent of the thought "
                                "and its form: a cold start where the hint is present but not yet followed); "
                                "needs budget_hint; '' = prompts carry no hint")
    form_follows_hint: int = setting(0, "running-sum records, with hint_budgets: the thought is written short when the "
                                     "hinted budget is below this and long otherwise (a cold start that already "
                                     "follows its hint: the diagnostic that shows a model can read it); 0 = off, "
                                     "the form is drawn by short_thoughts independently of the hint")

    # ---- running it ----------------------------------------------------------------------------
    progress_bar: bool = setting(True, "a progress bar with the running loss on stderr (--no-progress turns it off)")

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "think_sentences_min"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.think_sentences_max < self.think_sentences_min:
            raise ConfigError(f"think_sentences_max ({self.think_sentences_max}) must be >= think_sentences_min "
                              f"({self.think_sentences_min})")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0; got {self.lr}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be 'constant' or 'cosine'; got {self.lr_schedule!r}")
        for name in ("answer_noise", "short_thoughts"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1]; got {getattr(self, name)}")
        try:
            hint = self.hint()
        except HintError as err:
            raise ConfigError(f"budget_hint: {err}") from None
        budgets = self.budgets()  # parsed here so a typo fails before the model loads
        if self.form_follows_hint and not budgets:
            raise ConfigError("form_follows_hint needs hint_budgets (and budget_hint): the form follows the hinted "
                              "budget, so prompts must carry one")
        if self.form_follows_hint < 0:
            raise ConfigError(f"form_follows_hint must be >= 0; got {self.form_follows_hint}")
        if budgets and hint is None:
            raise ConfigError(f"hint_budgets ({self.hint_budgets!r}) needs budget_hint: set budget_hint to a template "
                              "with one {budget}, or leave hint_budgets empty")
        if hint is not None and not budgets:
            # The folder would record a hint no prompt showed, and thinkcap serve would apply it.
            raise ConfigError(f"budget_hint ({self.budget_hint!r}) needs hint_budgets: the budgets the prompts show, "
                              "e.g. '0,4,8,12,16,20,32'; or leave budget_hint empty")

    def hint(self) -> BudgetHint | None:
        """The hint template (None = off)."""
        return parse_hint(self.budget_hint)

    def budgets(self) -> list[int]:
        """hint_budgets as ints ([] = no hinted prompts)."""
        if not self.hint_budgets.strip():
            return []
        out = []
        for part in self.hint_budgets.split(","):
            try:
                value = int(part)
            except ValueError:
                raise ConfigError(f"hint_budgets: expected a comma list of whole numbers like '0,8,16', got "
                                  f"{part.strip()!r}") from None
            if value < 0:
                raise ConfigError(f"hint_budgets: budgets must be >= 0; got {value}")
            out.append(value)
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
