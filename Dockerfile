# syntax=docker/dockerfile:1
# Inferno's image: one image for the four services (controller, collector, optimizer, actuator);
# the container's args pick the service:  docker run IMAGE optimizer
#
#   docker build -t ghcr.io/inferno-project/inferno:0.1.0 .
#   docker push ghcr.io/inferno-project/inferno:0.1.0
#
# Stage build: wheels of the project and of every dependency. numpy and scipy come as prebuilt
# manylinux wheels for CPython 3.11 (amd64 and arm64), so no compiler is installed; add
# `apt-get install build-essential` here only for a platform without such wheels.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY inferno ./inferno
RUN pip wheel . --wheel-dir /wheels

# Stage final: the wheels installed offline, nothing else: no compiler, no sources, no wheels left
# behind (they are bind-mounted from the build stage for the install only, so no layer holds them).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin inferno
# the manifests run it with runAsNonRoot, which needs a numeric user
USER 10001
# controller, collector, optimizer, actuator
EXPOSE 3300 3301 3302 3303
ENTRYPOINT ["inferno"]
CMD ["controller"]
