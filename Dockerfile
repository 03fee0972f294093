# MailPass in a container: `mailpass serve` on port 8000, its data (the SQLite database, the
# instance secret) in the /data volume. compose.yaml runs it on PostgreSQL with a separate
# queue worker. The image holds no build tools and runs as an unprivileged user.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /data mailpass
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV MAILPASS_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
USER mailpass
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["mailpass"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
