# hubagent container: the hub with the default 4-bit model baked in.
#   docker build -t hubagent .            (docker-compose.yml does this for you)
#   docker build --build-arg HUBAGENT_LLM_MODEL=large -t hubagent .   (bakes the 1.5B model
#   in as well; select it with `llm.model: large` in the config)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid so bind-mounted state can be chowned on the host (10001:10001).
RUN groupadd --system --gid 10001 hubagent \
    && useradd --system --uid 10001 --gid hubagent --home-dir /home/hubagent --create-home hubagent

WORKDIR /src
COPY pyproject.toml README.md ./
COPY hubagent ./hubagent
COPY devices ./devices
COPY automations ./automations
ARG HUBAGENT_LLM_MODEL=small
RUN pip install ".[llm]" \
    && if [ "$HUBAGENT_LLM_MODEL" = large ]; then pip install ".[llm-large]"; fi \
    && rm -rf /src/build

COPY deploy/entrypoint.sh /usr/local/bin/hubagent-entrypoint
COPY deploy/healthcheck.py /usr/local/bin/hubagent-healthcheck.py
RUN chmod 0755 /usr/local/bin/hubagent-entrypoint \
    && mkdir -p /config /state \
    && chown hubagent:hubagent /state

USER hubagent
WORKDIR /home/hubagent
# Assemble and verify the model now, so the container starts offline. It lands in
# ~/.cache/hubagent/models, which docker-compose keeps in the `models` volume.
RUN hubagent model fetch --model "$HUBAGENT_LLM_MODEL" \
    && hubagent model verify --model "$HUBAGENT_LLM_MODEL" --quiet

EXPOSE 8124 10600
VOLUME ["/state"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/hubagent-healthcheck.py"]
ENTRYPOINT ["hubagent-entrypoint"]
