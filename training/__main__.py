"""`python -m training CONFIG.yaml` / `torchrun --nproc_per_node N -m training CONFIG.yaml`."""

from training.cli import main

raise SystemExit(main())
