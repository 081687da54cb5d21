"""The server402 client: a synchronous Python library (`Server402`) and the `server402` command line.

    from shared.client import ApiError, Server402, Wallet

It imports nothing from api/ or workers/ (the `admin` command loads api.admin only when it runs), so a client
machine needs the package, not a running server. The user's manual is docs/cli.md.
"""

from shared.client.errors import ApiError
from shared.client.http import Answer, Server402
from shared.client.wallet import Wallet

__all__ = ["Answer", "ApiError", "Server402", "Wallet"]
