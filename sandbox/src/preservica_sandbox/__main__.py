"""``python -m preservica_sandbox`` runs the sandbox CLI."""

from .server import main

raise SystemExit(main())
