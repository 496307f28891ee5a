"""vLLM decodes request videos with thinkcap's decord decoder (`thinkcap.video`).

Registered in vLLM's video-loader registry for `Glm4vVideoProcessor`, the processor GLM-4.1V's
frame rule belongs to, so vLLM's media path picks it for those models. The frame indices and the
metadata are vLLM's own GLM-4.1V rule (`DynamicVideoBackend`), so prompts and timestamps are what
vLLM's OpenCV loader gives; only the decoder differs. An operator who names another codec in
`--media-io-kwargs '{"video": {"backend": ...}}'` gets vLLM's loader with that codec.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vllm import envs
from vllm.multimodal.video import VIDEO_LOADER_REGISTRY, DynamicVideoBackend
from vllm.multimodal.video_decoders import VideoSourceMetadata, VideoTargetMetadata

from thinkcap.video import VideoInfo, read_video

BACKEND_NAME = "thinkcap_decord"
GLM4V_VIDEO_PROCESSOR = "Glm4vVideoProcessor"


@VIDEO_LOADER_REGISTRY.register(BACKEND_NAME, video_processor=GLM4V_VIDEO_PROCESSOR)
class DecordGlm4vVideoBackend(DynamicVideoBackend):
    @classmethod
    def load_bytes(cls, data: bytes, num_frames: int = -1, fps: int = 2, max_duration: int = 300,
                   frame_recovery: bool = False, *, backend: str = "opencv",
                   **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        if backend != "opencv" or frame_recovery:  # an explicit codec choice: vLLM's loader serves it
            return super().load_bytes(data, num_frames=num_frames, fps=fps, max_duration=max_duration,
                                      frame_recovery=frame_recovery, backend=backend, **kwargs)
        target = VideoTargetMetadata(num_frames=num_frames, fps=fps, max_duration=max_duration)

        def source_of(info: VideoInfo) -> VideoSourceMetadata:
            return cls._prepare_source(VideoSourceMetadata(info.total_frames, info.fps, info.duration))

        def rule(info: VideoInfo) -> list[int]:
            return cls.compute_frames_index_to_sample(source=source_of(info), target=target, **kwargs)

        max_pixels = envs.VLLM_MAX_IMAGE_PIXELS
        frames, info, indices = read_video(data, rule, max_pixels=max_pixels if max_pixels > 0 else None)
        return frames, cls.create_hf_metadata(source_of(info), indices, f"decord{cls._sampling_suffix}")
