"""A local Preservica emulator speaking the real wire formats, with a ``/_sandbox`` control API.

Start one in tests with ``SandboxServer(port=0).start()`` or from a shell with ``preservica-sandbox``;
``SandboxServer(seed_assets=N)`` / ``--seed-assets N`` fills its repository (see ``README.md`` here).
"""

from .app import create_app
from .repository import Repository
from .server import SandboxServer
from .state import SandboxState
from .users import SandboxUser

__all__ = ["Repository", "SandboxServer", "SandboxState", "SandboxUser", "create_app"]
