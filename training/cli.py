"""`thinkcap train`: run GRPO from a YAML config, or make data / label difficulty.

    thinkcap train CONFIG.yaml [--field value ...]     train (any config field can be overridden)
    thinkcap train --make-data DIR [--n 300]           write the synthetic multimodal dataset
    thinkcap train --label-difficulty IN OUT --model M offline curriculum tiers from pass@k
    torchrun --nproc_per_node N -m training CONFIG.yaml  data parallel (HF-generate rollouts)
"""

from __future__ import annotations

import sys

from training.config import GRPOConfig, build_parser


def usage() -> str:
    fields = build_parser(GRPOConfig).format_help().split("\n", 2)[-1]  # drop argparse's usage line
    return f"{__doc__.strip()}\n\nconfig fields (YAML keys, or --flags that override them):\n{fields}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--make-data":
        from training.synthetic import main as make_data

        return make_data(argv[1:])
    if argv[0] == "--label-difficulty":
        from training.label_difficulty import main as label

        return label(argv[1:])
    if argv[0].startswith("-"):
        print(f"thinkcap train: the first argument must be a config YAML, got {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from training import dist
    from training.train import train

    cfg = GRPOConfig.from_yaml(argv[0], argv[1:])
    try:
        result = train(cfg)
    finally:
        dist.shutdown()
    if result["checkpoint"] is not None and result["reward_curve"] is not None:
        print(f"policy (servable with `thinkcap serve`): {result['checkpoint'] / 'policy'}")
        print(f"reward curve: {result['reward_curve']}")
    return 0
