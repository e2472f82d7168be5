"""Receiving MLflow's own registry webhooks: verify, store, then compare with the ledger.

`signature` checks MLflow's HMAC, `app` is the ASGI application (Starlette, served by uvicorn)
whose request handler only stores a verified delivery and answers, `worker` compares the stored
deliveries with the ledger through the governance facade, `refusals` audits refused deliveries
at a bounded rate, and `serve` wires them together for `python -m app.cli webhooks receive`.
"""
