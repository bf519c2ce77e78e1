# creditgate: a slim two-stage image. The build stage installs the package and its runtime
# dependencies (no test tools) into a virtualenv; the final stage copies only that virtualenv
# and runs as an unprivileged user. The same steps run in a clean venv in tests/test_packaging.py.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/creditgate
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN /opt/creditgate/bin/pip install . \
    && /opt/creditgate/bin/creditgate --version

FROM python:3.11-slim
RUN groupadd --system --gid 10001 creditgate \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /var/lib/creditgate creditgate
COPY --from=build /opt/creditgate /opt/creditgate
ENV PATH=/opt/creditgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CREDITGATE_HOST=0.0.0.0 \
    CREDITGATE_DATA_DIR=/var/lib/creditgate \
    CREDITGATE_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/creditgate
VOLUME ["/var/lib/creditgate"]
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=2)"]
ENTRYPOINT ["creditgate"]
CMD ["serve"]
