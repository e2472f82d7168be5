#!/bin/sh
# Container entrypoint. `serve` brings the governance schema up to date (idempotent; the app
# refuses an out-of-date schema) and then serves Streamlit as PID 1 so that signals reach it.
# Anything else is executed as given (jobs: `python -m app.cli reconcile`, `audit checkpoint`,
# `webhooks deliver`, `metrics serve`, or `mlflow server ...`).
set -eu

if [ "${1:-serve}" = "serve" ]; then
    python -m app.cli db upgrade
    exec python -m streamlit run app/main.py \
        --server.address="${STREAMLIT_SERVER_ADDRESS:-0.0.0.0}" \
        --server.port="${STREAMLIT_SERVER_PORT:-8501}" \
        --server.headless=true
fi

exec "$@"
