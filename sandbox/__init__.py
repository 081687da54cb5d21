"""The sandbox upstream: an aiohttp server that speaks Alibaba Cloud's wire protocol on loopback.

It answers the 43 facebody 2019-12-30 actions and Cloudauth-intl 2022-08-09 FaceLivenessV2 exactly as the real
SDKs expect (ACS3-HMAC-SHA256 or v2 HMAC-SHA1 signatures, RPC form parameters, JSON answers), so the gateway's
workers and every test call it with the real, unmodified SDK:

    Config(access_key_id=..., access_key_secret=..., endpoint="127.0.0.1:8403", protocol="http")

Run it with `python -m sandbox` (settings: `sandbox/config.py`). Module map:

    config.py     SandboxConfig, the only reader of the environment
    app.py        create_app(config): cleanup contexts, routes, the middleware (JSON errors, stats, log lines)
    appkeys.py    every typed app/request key
    rpc.py        the Alibaba endpoint: signature -> action -> QPS limit -> faults -> parameters -> answer
    signature.py  ACS3-HMAC-SHA256 and v2 HMAC-SHA1 signing and verification, nonce memory
    catalog.py    per-action specs (schema, image limits) loaded once from shared/data/tools.json
    params.py     form/query parameters -> typed values, Missing<Param> / InvalidParameter
    limits.py     per-(access key, action) QPS limiter; stats.py per-action counters
    faults.py     fault rules (latency, 5xx, throttling, hangs, non-JSON, failNext)
    admin.py      the admin API under /_sandbox/ (documented there)
    images.py     loopback-only image fetching and decoding; samples.py the images the sandbox draws
    state.py      per-access-key face databases, templates and verification tokens
    responses/    one module per action family, deterministic plausible answers
    errors.py     the error tree and Alibaba's error body; wire.py the JSON encoder
    testing.py    run_sandbox(config): an in-process sandbox on a free port, for tests and benchmarks
"""
