"""Two images in, a 5-second video out, with DashScope's keyframe-to-video model (kf2v).

The code is written for the real service: it reads the endpoint and key the way the SDK does
(``DASHSCOPE_HTTP_BASE_URL``, ``DASHSCOPE_API_KEY``), so tests can point it at kf2v-mock unchanged.
"""

from __future__ import annotations

from pathlib import Path

import requests
from dashscope import VideoSynthesis

DEFAULT_MODEL = "wan2.2-kf2v-flash"


class VideoError(RuntimeError):
    def __init__(self, code: str | None, message: str | None):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _image_url(image: str | Path) -> str:
    """Local files go through the SDK's temporary upload; URLs are passed as they are."""
    if isinstance(image, Path) or "://" not in str(image):
        return f"file://{Path(image).resolve()}"
    return str(image)


def submit(first_frame: str | Path, last_frame: str | Path, prompt: str = "", *,
           model: str = DEFAULT_MODEL, resolution: str = "480P") -> str:
    """Start a generation; returns the task id."""
    rsp = VideoSynthesis.async_call(model=model, prompt=prompt or None,
                                    first_frame_url=_image_url(first_frame),
                                    last_frame_url=_image_url(last_frame), resolution=resolution)
    if rsp.status_code != 200:
        raise VideoError(rsp.code, rsp.message)
    return rsp.output.task_id


def status(task_id: str) -> str:
    rsp = VideoSynthesis.fetch(task_id)
    if rsp.status_code != 200:
        raise VideoError(rsp.code, rsp.message)
    return rsp.output.task_status


def make_video(first_frame: str | Path, last_frame: str | Path, prompt: str = "", *, out: Path,
               model: str = DEFAULT_MODEL, resolution: str = "480P") -> Path:
    """Generate a video from two keyframes and save it as ``out`` (an MP4)."""
    # async_call + wait rather than call(): call() raises the SDK's InvalidTask when the submit is
    # refused, hiding the service's error code.
    rsp = VideoSynthesis.wait(submit(first_frame, last_frame, prompt, model=model,
                                     resolution=resolution))
    if rsp.status_code != 200:
        raise VideoError(rsp.code, rsp.message)
    if rsp.output.task_status != "SUCCEEDED":
        raise VideoError(rsp.output.code, rsp.output.message)
    video = requests.get(rsp.output.video_url, timeout=60)
    video.raise_for_status()
    out = Path(out)
    out.write_bytes(video.content)
    return out
