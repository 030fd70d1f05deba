"""A local Preservica emulator speaking the real wire formats, with a ``/_sandbox`` control API.

Start one in tests with ``SandboxServer(port=0).start()`` or from a shell with ``preservica-sandbox``;
``SandboxServer(seed_assets=N)`` / ``--seed-assets N`` fills its repository (see ``sandbox/README.md``).
It is its own distribution, ``preservica-sandbox``: the Airflow provider never imports it.
"""

__version__ = "0.2.0"  # the one place the version is written (sandbox/pyproject.toml reads it)

from .app import create_app
from .repository import Repository
from .server import SandboxServer
from .state import SandboxState
from .users import SandboxUser

__all__ = ["Repository", "SandboxServer", "SandboxState", "SandboxUser", "__version__", "create_app"]
