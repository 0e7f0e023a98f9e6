# The services' image on the locally built Debian base, for machines whose containers cannot reach
# PyPI: the wheels were built on the host by build-images.sh (var/docker/wheels). Elsewhere
# deploy/Dockerfile (python:3.11-slim, pip from PyPI) builds the same image.
ARG BASE_IMAGE=citydata/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       python3 python3-venv softhsm2 fonts-dejavu-core >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY var/docker/wheels /tmp/wheels
COPY var/docker/requirements.txt /tmp/requirements.txt
RUN pip install -q --no-index --find-links /tmp/wheels -r /tmp/requirements.txt && rm -rf /tmp/wheels
COPY pyproject.toml ./
COPY kit ./kit
COPY services ./services
COPY tools ./tools
COPY proto ./proto
COPY deploy/gateway ./deploy/gateway
RUN mkdir -p gen \
    && python -m grpc_tools.protoc -I proto --python_out=gen --pyi_out=gen --grpc_python_out=gen proto/citydata/v1/*.proto
ENV PYTHONPATH=/app:/app/gen CITYDATA_VAR=/var/lib/citydata
# the service's own state (generated keys, the development keystore) lives here, writable by the service
RUN mkdir -p /var/lib/citydata && chown nobody /var/lib/citydata
USER nobody
