# One image for the api, worker and listener processes (the command picks which).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md ./
# Dependencies first (cached layer); embedded servers and test tools stay out of the image.
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
RUN useradd --system --uid 10001 bookme
USER bookme
ENV PATH=/app/.venv/bin:$PATH BOOKME_ENVIRONMENT=production
CMD ["bookme", "--help"]
