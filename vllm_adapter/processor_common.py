"""What the V1 and V2 paths of the think-budget processor share (`processor`, `processor_v2`).

The owner registry (one owning instance per engine, whichever runner built it), the model's
profile, admission checks with one set of messages, and the one write of a step's plan onto the
logits. Neither path imports the other for these, so V1's entry class can build V2's directly.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, Protocol

import torch
from vllm.utils.torch_utils import async_tensor_h2d

from budget import BudgetError, BudgetParams, ProfileError, ThinkProfile, ThinkState, build_profile, params_from_args
from vllm_adapter.budget_rows import StepPlan

log = logging.getLogger("vllm_adapter.processor")  # the processor's own log name, as before

if TYPE_CHECKING:
    from vllm.config import VllmConfig
    from vllm.sampling_params import SamplingParams


class Owner(Protocol):
    vllm_config: VllmConfig
    profile: ThinkProfile | None

    def check_ids(self, params: BudgetParams) -> None: ...


# id(vllm_config) -> the instance (V1 or V2 path) that owns that engine's rows. The config is kept
# alive by its owner, so the id cannot be reused while the entry exists.
OWNERS: weakref.WeakValueDictionary[int, Owner] = weakref.WeakValueDictionary()


def model_profile(vllm_config: VllmConfig) -> ThinkProfile:
    """The engine model's think profile; ProfileError when it has no thinking tokens."""
    from vllm.tokenizers import cached_tokenizer_from_config

    model_config = vllm_config.model_config
    tokenizer = cached_tokenizer_from_config(model_config)
    if tokenizer is None:
        raise ProfileError("the engine runs with skip_tokenizer_init, so think tokens are unknown")
    return build_profile(tokenizer, model_type=getattr(model_config.hf_config, "model_type", None))


def claim(instance: Owner, vllm_config: VllmConfig) -> tuple[bool, ThinkProfile | None]:
    """(owns the engine, its think profile) for a new processor instance of either runner.

    The first instance built for an engine owns its rows; a second one (`logits_processors=` next
    to the entry point) stays idle. A model without think tokens leaves the owner inert (profile
    None): requests that ask for a budget get an error from `validate_params`."""
    if OWNERS.setdefault(id(vllm_config), instance) is not instance:
        log.info("think budget: a second processor instance for this engine stays idle")
        return False, None
    try:
        return True, model_profile(vllm_config)
    except ProfileError as e:
        log.info("think budget disabled for %s: %s", vllm_config.model_config.model, e)
        return True, None


def check_ids(profile: ThinkProfile, vocab_size: int, params: BudgetParams) -> None:
    """ValueError if the message/continuation ids cannot be forced on this model."""
    ThinkState(profile, params)  # rejects close-tag/EOS ids in the forced texts
    bad = [t for t in (*params.message_ids, *params.continuation_ids) if t >= vocab_size]
    if bad:
        raise BudgetError(f"token ids {bad} are outside this model's vocabulary (size {vocab_size})")


def validate_params(sampling_params: SamplingParams) -> None:
    """Raise BudgetError (a ValueError: HTTP 400 in vLLM's server) for bad budget arguments.

    Runs in vLLM's front-end process. When the engine runs in this process too, the model's
    profile is known and a budget for a model without think tokens is refused here as well;
    otherwise such a request is served unbudgeted and the engine logs a warning."""
    params = params_from_args(sampling_params.extra_args)
    if params is None:
        return
    owners = list(OWNERS.values())
    if not owners:
        return
    if all(p.profile is None for p in owners):
        raise BudgetError(
            f"think_budget was requested but model {owners[0].vllm_config.model_config.model!r} has "
            "no <think>/</think> tokens, so a thinking budget cannot be applied"
        )
    if len(owners) == 1:
        owners[0].check_ids(params)


def h2d(values: list[int], device: torch.device | Any) -> torch.Tensor:
    """Host ids to the logits' device: vLLM's pinned async copy on an accelerator, a plain
    tensor on CPU (a GPU wheel's pinned staging needs a driver even for a CPU tensor)."""
    if torch.device(device).type == "cpu":
        return torch.tensor(values, dtype=torch.long)
    return async_tensor_h2d(values, device=device, dtype=torch.long)


def write_plan(logits: torch.Tensor, plan: StepPlan, device: torch.device | Any) -> None:
    """Apply a step's plan: forced rows become one-hot (0 at the id, -inf elsewhere), masked
    (row, id) pairs become -inf. One indexed store each, whatever the number of rows. (The EOS
    redirect runs before this, so a forced or masked row ends as forced or masked.)"""
    if plan.forced:
        rows, ids = zip(*plan.forced)
        rows_t = h2d(list(rows), device)  # [F]
        ids_t = h2d(list(ids), device)  # [F]
        logits[rows_t] = float("-inf")  # [F, V]: only the forced id stays possible
        logits[rows_t, ids_t] = 0.0
    if plan.masked:
        rows, ids = zip(*plan.masked)
        index = (
            h2d(list(rows), device),  # [M]
            h2d(list(ids), device),  # [M]
        )
        logits.index_put_(index, torch.tensor(float("-inf"), device=logits.device))
