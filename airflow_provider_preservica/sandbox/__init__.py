"""A local Preservica emulator speaking the real wire formats, with a ``/_sandbox`` control API.

Start one in tests with ``SandboxServer(port=0).start()`` or from a shell with ``preservica-sandbox``.
"""

from .app import create_app
from .server import SandboxServer
from .state import SandboxState
from .users import SandboxUser

__all__ = ["SandboxServer", "SandboxState", "SandboxUser", "create_app"]
