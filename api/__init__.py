"""The API process (`python -m api`, the Procfile's `web`): HTTP, the pages and MCP. It never calls Alibaba; it
decides each call and hands it to the workers through Redis. docs/architecture.md shows a call end to end.

    __main__.py      read the settings, configure logging, serve;  app.py  create_app: contexts, middlewares, routes
    callcore/        who calls, what pays, whose things are: decided once per call, free of aiohttp (its own map)
    call_adapter.py  headers and arguments -> the call core's typed input;  identity.py  the caller, once per request
    ownership.py     the job or batch a path names, when the caller may see it
    request_body.py  JSON bodies (JSON types only);  request_options.py  Prefer, ?wait=N, a call's webhook
    errors.py        the error tree: each error's HTTP status and code
    middlewares.py   request id, the log line, every error as JSON;  responses.py  msgspec JSON responses
    origin_guard.py  Origin and Host (DNS rebinding);  ratelimits.py  anonymous and per-key request limits
    read_timeouts.py header and body read deadlines;  json_depth.py  nesting measured before decoding
    validation.py    one jsonschema validator per tool;  waiter.py  blocking waits woken by finished jobs
    jobs_view.py     a job's public view and its HTTP answer;  apikeys.py  keys, stored hashed, with their rates
    search.py, search_terms.py   catalog search;  openapi*.py  the OpenAPI document, built once
    mcp_protocol.py  JSON-RPC and the two MCP eras;  mcp_tools.py  tools/list, tools/call
    mcp_results.py   the results of a call;  mcp_tasks.py  MCP tasks (a task is its job)
    routes/          one module per resource (tools, jobs, batches, payments, webhooks, catalog, mcp, pages, ...)
    web/             the HTML pages: templates, static files, the service page's view
    admin.py         `server402-admin`: the operator's keys and ledger;  appkeys.py  the typed app keys
"""
