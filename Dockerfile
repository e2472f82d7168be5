# Countersign: the dashboard on a slim Python 3.11 image, configured through the environment.
#   docker build -t countersign .
#   docker run -p 8501:8501 -e MLFLOW_TRACKING_URI=http://mlflow:5000 countersign
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8501 \
    COUNTERSIGN_DATA_DIR=/data \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# A fixed, unprivileged user; /data holds everything the app writes (mount a volume there).
RUN groupadd --system --gid 10001 countersign \
    && useradd --system --uid 10001 --gid countersign --home-dir /app --shell /usr/sbin/nologin countersign \
    && mkdir -p /app /data \
    && chown countersign:countersign /data

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-compile -r requirements.txt

COPY --chown=countersign:countersign . .
USER countersign

EXPOSE 8501
VOLUME ["/data"]

# The slim image has no curl: ask Streamlit's health endpoint with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD python -c "import os, urllib.request, sys; r = urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '8501'), timeout=4); sys.exit(0 if r.status == 200 else 1)"

# Shell form so that $PORT from the environment is honoured.
CMD exec python -m streamlit run app/main.py --server.address=0.0.0.0 --server.port="${PORT}" --server.headless=true
