# Epiplex service on its embedded default: API + local workers, SQLite and blobs under /data.
# It binds 0.0.0.0 inside the container, which `epiplex serve` refuses without an API key, so
# create one in the data volume first (the key is the last line printed; keep it secret):
#   docker build -t epiplex .
#   docker run --rm -v epiplex-data:/data epiplex epiplex keys create admin --admin
#   docker run -p 8000:8000 -v epiplex-data:/data epiplex
# Clients send it as `Authorization: Bearer KEY` (the CLI and the Python client read EPIPLEX_API_KEY).
# torch is pinned to 2.13.0; to keep the image small on a machine without a GPU, point pip
# at a CPU-only wheel index with --build-arg PIP_EXTRA_ARGS="--index-url ... --extra-index-url ...".
FROM python:3.11-slim

ARG PIP_EXTRA_ARGS=""
# Optional extras, e.g. "[ray,s3,postgres]" for docker/compose.scale.yml.
ARG EPIPLEX_EXTRAS=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    EPIPLEX_HOST=0.0.0.0 \
    EPIPLEX_PORT=8000 \
    EPIPLEX_DATA_DIR=/data

RUN useradd --create-home --uid 1000 epiplex
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY estimators ./estimators
# This installs the project itself (with extras); its pins live in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ${PIP_EXTRA_ARGS} ".${EPIPLEX_EXTRAS}" \
    && mkdir -p /data && chown epiplex:epiplex /data

USER 1000
# The count family's kernels, compiled once here (about 80 s) into a cache the service's user
# can write: each container's first job then loads them in seconds instead of compiling them.
# On a CPU unlike the build machine's, numba compiles afresh and keeps those beside them.
ENV NUMBA_CACHE_DIR=/home/epiplex/numba-cache
RUN python -c "from estimators.count_family import compile_kernels; compile_kernels()"
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
CMD ["epiplex", "serve"]
