# Development image: the whole mlops_nb package (training included) serving any run you mount, with
# `mlops-nb serve` on port 8000. To deploy one model, build the image `mlops-nb package RUN --out DIR` writes
# instead: one model, only what the server imports (pinned), multi-stage, read-only (see README, Deploying).
#
#   docker build -t mlops-nb-serve .
#   docker run --rm -p 127.0.0.1:8000:8000 --user "$(id -u):$(id -g)" \
#       -v "$PWD/runs/<run_id>:/srv/run" mlops-nb-serve
#   curl -s localhost:8000/health
#
# The run directory is mounted, not copied: the image holds the code, the run holds the model, and the
# server appends its prediction log to /srv/run/prediction_log/<model>.jsonl (hence a writable mount
# and --user with your ids). Another model of the run:
#   docker run ... mlops-nb-serve mlops-nb serve /srv/run --model nn --host 0.0.0.0
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/mlops_nb

# PyTorch first, CPU build from PyTorch's own index (the default index would pull the CUDA build)
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# then the package (its dependencies from PyPI; torch is already satisfied)
COPY pyproject.toml README.md ./
COPY mlops_nb ./mlops_nb
RUN pip install . && useradd --create-home --uid 10001 mlops

USER mlops
EXPOSE 8000
VOLUME ["/srv/run"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# --host 0.0.0.0: inside a container, loopback would be unreachable from the published port
CMD ["mlops-nb", "serve", "/srv/run", "--host", "0.0.0.0", "--port", "8000"]
