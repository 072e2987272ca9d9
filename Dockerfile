# syntax=docker/dockerfile:1
# The Mirage operator image: `mirage run` as a non-root numeric user, on a read-only root
# filesystem (the chart mounts an emptyDir at /tmp, the only place anything is written).
#
# The base is pinned by tag. For a release, pin it by digest as well, so that a re-pushed tag
# cannot change the image underneath: look the digest up once with
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm
# and build with
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
# (or write that reference below). Both stages must use the same base: the virtualenv's
# interpreter is a link to the base image's python3.11.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the package build reads (.dockerignore keeps everything else out): not sandbox/,
# the emulators' own distribution (docs/adr/0120).
COPY pyproject.toml README.md ./
COPY crds/ crds/
COPY examples/ examples/
COPY operator/ operator/
# The runtime dependencies are pinned exactly in pyproject.toml. pip byte-compiles every
# module here, so nothing needs to be written at run time; pip itself is removed afterwards.
RUN python -m venv /opt/mirage \
 && /opt/mirage/bin/pip install . \
 && /opt/mirage/bin/pip uninstall --yes pip \
 && /opt/mirage/bin/mirage --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mirage-operator" \
      org.opencontainers.image.description="Kubernetes operator for the Mirage platform" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /opt/mirage /opt/mirage
# No bytecode writes (read-only root FS), unbuffered logs, and a writable HOME.
ENV PATH=/opt/mirage/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# A numeric non-root user, so that the kubelet can verify runAsNonRoot without /etc/passwd.
USER 65532:65532
# 8080: /metrics (MIRAGE_METRICS_PORT); 8081: kopf's liveness endpoint (--liveness).
EXPOSE 8080 8081
ENTRYPOINT ["mirage"]
CMD ["run"]
