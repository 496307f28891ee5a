"""`thinkcap train`: run GRPO from a YAML config, or make data / label difficulty.

    thinkcap train CONFIG.yaml [--field value ...]     train (any config field can be overridden)
    thinkcap train --make-data DIR [--n 300]           write the synthetic multimodal dataset
    thinkcap train --label-difficulty IN OUT --model M offline curriculum tiers from pass@k
    thinkcap train --mc-to-fill-in IN OUT              multiple choice → fill-in-the-blank records
    torchrun --nproc_per_node N -m training CONFIG.yaml [--distributed fsdp]   data parallel (DDP or FSDP2)

Flags use hyphens (--rollout-think-budget); the YAML key spelling (--rollout_think_budget) works too.
Relative paths in the YAML are relative to the YAML's folder, relative paths in flags to the current
directory. A config error prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from training.config import ConfigError, GRPOConfig, build_parser


def usage() -> str:
    parser = build_parser(GRPOConfig)
    parser.usage = argparse.SUPPRESS  # the module doc above is the usage
    fields = parser.format_help().strip().split("\n", 1)[-1]  # drop argparse's "options:" title
    return f"{__doc__.strip()}\n\nconfig fields (YAML keys, or --flags that override them):\n{fields}"


def fail(message: str) -> int:
    print(f"thinkcap train: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--make-data":
        from tasks.synthetic import main as make_data

        return make_data(argv[1:])
    if argv[0] == "--mc-to-fill-in":
        from tasks.fill_in import main as fill_in

        return fill_in(argv[1:])
    if argv[0] == "--label-difficulty":
        from training.label_difficulty import main as label

        return label(argv[1:])
    if argv[0].startswith("-"):
        return fail(f"the first argument must be a config YAML, got {argv[0]!r} (see `thinkcap train --help`)")
    from training import dist
    from training.train import train

    try:
        cfg = GRPOConfig.from_yaml(argv[0], argv[1:])
    except (ValueError, OSError) as err:  # the YAML, a flag or a field's value
        return fail(str(err))
    try:
        result = train(cfg)
    except ConfigError as err:  # found while setting up: the data, the ranks
        return fail(str(err))
    finally:
        dist.shutdown()
    if result["checkpoint"] is not None and result["reward_curve"] is not None:
        print(f"policy (servable with `thinkcap serve`): {result['checkpoint'] / 'policy'}")
        print(f"reward curve: {result['reward_curve']}")
    return 0
