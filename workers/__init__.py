"""The worker processes: the only code that calls Alibaba. docs/architecture.md shows where they sit in a call.

__main__.py   `python -m workers`: the invocation worker (arq) until SIGINT/SIGTERM
supervisor.py run_worker, supervise: keeps a worker running, and starts a new one after Redis is lost
settings.py   arq's WorkerSettings built from our Settings: functions, cron, clients
queue.py      ServerWorker: arq's Worker, woken instead of polling, claiming in one script, with leases
tasks.py      run_tool (one attempt: take, wait for a slot, call, retry or finish) and the payment-expiry cron
upstream.py   the only importer of the Alibaba SDKs: one client per product, failures classified
ratelimit.py  the upstream QPS limit shared by every worker (reserve-style GCRA on Redis time)
tenancy.py    one Alibaba account, many customers: face-database namespaces per tenant
webhooks.py   the webhook sender each invocation worker runs
health.py     `python -m workers.health`: probes every service's upstream without spending money
"""
