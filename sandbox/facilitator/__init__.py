"""A local x402 facilitator over an in-memory USDC ledger: verify and settle real x402 payments, no blockchain.

The SDK's own facilitator logic (x402FacilitatorSync + the exact EVM scheme) judges every payment, with real EIP-712
signature recovery; only the chain is replaced, by a ledger that behaves like FiatTokenV2 USDC. `make run` and the
tests point x402.http.HTTPFacilitatorClient at it. Run it with `python -m sandbox.facilitator`. Module map:

    config.py     FacilitatorConfig (the only reader of the environment), the demo wallet and payTo constants
    ledger.py     Ledger (balances, used nonces, transfers) and LedgerSigner (x402's FacilitatorEvmSigner over it)
    app.py        create_facilitator_app(config): /supported, /verify, /settle and the /_facilitator/ admin API
    faults.py     fault specs for /verify and /settle (latency, delayed/dropped/5xx answers after a real settle,
                  5xx, connection resets) and how each looks on the wire
    settlements.py SettlementCache: a repeated /settle of one payment answers its original result
    counts.py     Counts: requests received per endpoint and the outcome of each
    testing.py    run_facilitator(config): an in-process facilitator on a free port, for tests
"""
