"""``python -m esc_orch.csp_sim``: the same as the ``esc-csp-sim`` console script."""

from esc_orch.csp_sim.cli import main

raise SystemExit(main())
