"""Code both the API and the workers import: the catalog, jobs, payments, batches, webhooks, settings and Redis's
keys and scripts. Nothing here serves HTTP or calls Alibaba.

    config.py       Settings, the only reader of the environment;  logging.py, metrics.py  for every process
    catalog.py      the services (tools.json + operator terms);  models.py  their msgspec Structs
    operator.py     the operator's terms file;  payment_docs.py  the payment instructions every service carries
    keys.py         Redis key builders, the Lua scripts' names;  lua/  the scripts, a file each, and their loader
    arq_seam.py     all we rely on of arq beyond its documented API (tests/test_arq_seam.py checks it)
    jobs.py         a job's record, its states and the store;  batches.py  batches;  payments.py  payments, tokens
    quality.py      live quality figures;  liveness.py  worker heartbeats;  webhooks.py  signed deliveries
    urls.py, netpolicy.py   callers' URLs, parsed strictly, and where they may point
    clock.py        every timestamp written (to the second, the millisecond, the microsecond)
    failures.py     the kinds of a failed call (throttled, unavailable, server, operator, input, ...) and what
                    each means for the answer: decided once, read by the worker, the API and the client
"""
