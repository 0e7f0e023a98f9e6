"""`python -m tools.simulate`: the quarter simulator (see simulate.py)."""

from tools.simulate.simulate import main

raise SystemExit(main())
