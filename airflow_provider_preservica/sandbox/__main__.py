"""``python -m airflow_provider_preservica.sandbox`` runs the sandbox CLI."""

from .server import main

raise SystemExit(main())
