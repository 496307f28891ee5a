"""The scorer's one vision-tower call equals HF's separate image and video calls (FSDP2 needs one
call per forward on every rank, whatever media a micro-batch holds)."""

from __future__ import annotations

import torch

from training.learner.policy import SequenceLogprobs


def test_one_vision_call_equals_hfs_image_and_video_calls(tiny_model_dir):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    inner, vc = model.model, model.config.vision_config
    width = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2
    image_grid = torch.tensor([[1, 4, 4], [1, 2, 6]])  # [n_images, 3]
    video_grid = torch.tensor([[3, 2, 4]])  # 3 temporal patches of 2 x 4
    gen = torch.Generator().manual_seed(0)
    media = {"pixel_values": torch.randn(int(image_grid.prod(-1).sum()), width, generator=gen),
             "image_grid_thw": image_grid,
             "pixel_values_videos": torch.randn(int(video_grid.prod(-1).sum()), width, generator=gen),
             "video_grid_thw": video_grid}
    with torch.no_grad():
        image, video = SequenceLogprobs._vision_features(inner, media, torch.float32)
        ref_image = torch.cat(inner.get_image_features(media["pixel_values"], image_grid).pooler_output)
        ref_video = torch.cat(inner.get_video_features(media["pixel_values_videos"], video_grid).pooler_output)
        only_video, _ = SequenceLogprobs._vision_features(inner, {k: v for k, v in media.items() if "video" in k},
                                                          torch.float32)[::-1]
    assert image.shape == ref_image.shape and video.shape == ref_video.shape
    torch.testing.assert_close(image, ref_image, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(video, ref_video, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(only_video, ref_video, atol=1e-5, rtol=1e-4)
