# Taskwire: the web UI built with Node, served with the API by gunicorn on Python slim.
# Build: docker build -t taskwire .    Run: docker run -p 8000:8000 taskwire
# The steps are the README's own set-up (`npm ci && npm run build`, `pip install .`), which
# `make run` and `make test` prove on every change.

FROM node:20-slim AS ui
WORKDIR /ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TASKWIRE_UI_DIR=/app/ui/dist \
    PORT=8000
WORKDIR /app
COPY pyproject.toml README.md asgi.py gunicorn.conf.py ./
COPY service/ service/
COPY middleware/ middleware/
COPY streams/ streams/
COPY api/ api/
COPY taskwire/ taskwire/
RUN pip install '.[redis]' && useradd --system --no-create-home --uid 10001 taskwire
COPY --from=ui /ui/dist ui/dist
USER taskwire
EXPOSE 8000
# /healthz is not rate limited; the slim image has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('BIND', '').rpartition(':')[2] or os.environ.get('PORT', '8000'); urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2)"]
# One worker, by design: see gunicorn.conf.py. Behind a proxy, set FORWARDED_ALLOW_IPS to it.
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
