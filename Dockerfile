# One image for every BookMe process (docker-compose.yml picks each one's command): the worker
# (python worker.py), listener (python -m listener), API (python -m api), and the one-shot
# `bookme migrate` / `bookme deploy` jobs. Embedded servers and test tools stay out of it.
FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md ./
# Dependencies first (cached layer); --no-dev leaves out the dev and embedded groups.
RUN uv sync --frozen --no-dev --no-install-project
COPY bookme ./bookme
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY listener ./listener
COPY chain ./chain
COPY db ./db
COPY worker.py ./
RUN uv sync --frozen --no-dev
# The worker's sandbox re-imports each workflow's module for every booking it runs; with
# PYTHONDONTWRITEBYTECODE nothing would cache our modules' bytecode and each run would compile
# them again (uv compiles the dependencies' only).
RUN /app/.venv/bin/python -m compileall -q bookme workflows activities api listener chain db worker.py
# /deploy is where the deploy job writes the deployment file for the others: a new named volume
# mounted there takes this directory's owner, so the unprivileged user can write it.
RUN useradd --system --uid 10001 bookme && mkdir /deploy && chown bookme:bookme /deploy
USER bookme
ENV PATH=/app/.venv/bin:$PATH BOOKME_ENVIRONMENT=production BOOKME_DEPLOYMENT_FILE=/deploy/deployment.json
CMD ["bookme", "--help"]
