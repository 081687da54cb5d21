"""The server402 client: a synchronous Python library (`Server402`) and the `server402` command line.

    from client import ApiError, Server402, Wallet

It imports nothing of the server (api/, workers/, shared/), so a client machine needs the package, not a running
server. The operator's commands are the server's own: `server402-admin` (`python -m api.admin`). Module map:

    http.py       Server402: calls, jobs, payments and batches over HTTP (httpx), with retries and waits
    errors.py     ApiError: a refused or failed answer, with the status the server gave it
    wallet.py     Wallet: pays x402 offers with the official x402 SDK
    cli.py        the `server402` command line;  options.py  its shared options and output
    batch_submit.py, batch_commands.py   `server402 batch ...`: resumable chunked submissions
    files.py      writing a file whole or not at all (also used by the operator's ledger export)

The user's manual is docs/cli.md.
"""

from client.errors import ApiError
from client.http import Answer, Server402
from client.wallet import Wallet

__all__ = ["Answer", "ApiError", "Server402", "Wallet"]
