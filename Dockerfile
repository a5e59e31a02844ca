# lateral-chain-detector container image.
#
# Two stages: the builder turns the project into a wheel, the runtime stage installs the
# locked dependencies (requirements/runtime.lock, hash-checked) and that wheel into a
# virtualenv and nothing else (no compiler, no pip cache, no sources).
# The runtime runs as an unprivileged user and writes only to /var/lib/detector (outbox)
# and /tmp, so it works with readOnlyRootFilesystem: true when both are volumes.
#
# Built-in rules ship twice: inside the Python package (what `detector run` loads by
# default) and as plain files under /usr/share/lateral-chain/ so that
#   - an initContainer can copy the Falco rules into Falco's rules.d, and
#   - users can read them, or mount their own files over them and point
#     `engine.rules` at the mount (with `engine.builtin_rules: false` to replace them).
#
# Build (needs a Docker engine; the development machine has none):
#   docker build -t lateral-chain-detector:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY requirements/runtime.lock requirements/
RUN python -m pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY correlation/ correlation/
COPY detector/ detector/
COPY falco_rules/ falco_rules/
RUN python -m pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="lateral-chain-detector" \
      org.opencontainers.image.description="Confirmed Kubernetes lateral-movement chains from Falco and audit events" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DETECTOR_HTTP__LISTEN=0.0.0.0:8765
COPY --from=builder /wheels /wheels
COPY requirements/runtime.lock /tmp/runtime.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/runtime.lock \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps /wheels/*.whl \
    && rm -rf /wheels /tmp/runtime.lock \
    && groupadd --system --gid 10001 detector \
    && useradd --system --uid 10001 --gid detector --home-dir /var/lib/detector \
       --shell /usr/sbin/nologin detector \
    && install -d -o detector -g detector -m 0750 /var/lib/detector
COPY falco_rules/*.yaml /usr/share/lateral-chain/falco-rules/
COPY correlation/rules/*.yaml /usr/share/lateral-chain/chain-rules/
USER 10001:10001
WORKDIR /var/lib/detector
VOLUME ["/var/lib/detector"]
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=2)"]
ENTRYPOINT ["detector"]
CMD ["run"]
