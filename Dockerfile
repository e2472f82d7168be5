# Countersign: the dashboard (and its CLI) on a pinned slim Python 3.11 image.
#   docker build -t countersign:0.1.0 .
#   docker run -p 8501:8501 -e MLFLOW_TRACKING_URI=http://mlflow:5000 \
#     -e COUNTERSIGN_DB_URL=postgresql+psycopg://countersign:...@db/countersign countersign:0.1.0
# Configuration comes only from the environment and mounted secrets (see README "Operations"):
# nothing secret is baked into the image, and .streamlit/secrets.toml is excluded from the build.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/countersign \
    COUNTERSIGN_DATA_DIR=/data \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# A fixed, unprivileged user (uid 10001, matched by the Kubernetes securityContext); /data holds
# everything the app writes (drift cache, the SQLite fallback): mount a volume there.
# /checkpoints is the signed-checkpoint folder: only the checkpoint job mounts a volume there.
RUN groupadd --system --gid 10001 countersign \
    && useradd --system --uid 10001 --gid countersign --create-home \
       --home-dir /home/countersign --shell /usr/sbin/nologin countersign \
    && mkdir -p /app /data /checkpoints \
    && chown countersign:countersign /data /checkpoints

WORKDIR /app
# Dependencies first: every package is pinned with == in requirements.txt, so the layer is
# reproducible and cached until the requirements change.
COPY requirements.txt .
RUN pip install --no-compile -r requirements.txt

# The code belongs to root and is read-only for the app user; only /data is writable.
COPY app ./app
COPY pages ./pages
COPY governance ./governance
COPY .streamlit/config.toml ./.streamlit/config.toml
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh

USER 10001:10001

EXPOSE 8501
VOLUME ["/data"]

# The slim image has no curl: ask Streamlit's health endpoint with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('STREAMLIT_SERVER_PORT', '8501'); r = urllib.request.urlopen(f'http://127.0.0.1:{port}/_stcore/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

# `serve` (the default) migrates the governance database, then serves; any other command runs
# as given, e.g. `python -m app.cli reconcile` for jobs and `mlflow server ...` for the stack.
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["serve"]
