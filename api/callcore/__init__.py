"""The call core: who calls, what pays, whose things are, decided once per call, free of aiohttp.

    parties.py       Caller, canonical identities, who owns jobs and tenants (the table in its docstring)
    x402_payment.py  decoding an x402 payload and verifying it locally (EIP-712 signature, terms, window)
    x402_gate.py     the x402 requirements we offer, the 402 header, settling through the facilitator
    gate.py          PaymentGate: access rules, 402s, tokens, claiming and settling x402 payments, purchases
    calls.py         CallCore.start_call: idempotency, payment, the job created with its payment consumed
    refusals.py      the one mapping of a refused payment to its answer (calls and batches)

HTTP routes (api/routes/) and MCP (api/mcp_tools.py) are adapters: they parse headers or arguments into the
typed values here (api/call_adapter.py, api/identity.py) and turn the answers back into HTTP or JSON-RPC.
"""
