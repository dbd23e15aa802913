"""A keyframe-to-video client written for production, knowing nothing of kf2v-mock: the SDK's
default URL (``https://dashscope.aliyuncs.com/api/v1``; Singapore's with ``--intl``), the key from
``DASHSCOPE_API_KEY``, local frames uploaded by the SDK, the result downloaded from the link the
service hands out.

    python examples/production_client.py first.png last.png out.mp4            # the real service
    kf2v-mock run --intercept -- python examples/production_client.py first.png last.png out.mp4
"""

import argparse
import sys
from pathlib import Path

import dashscope
import requests
from dashscope import VideoSynthesis

parser = argparse.ArgumentParser()
parser.add_argument("first")
parser.add_argument("last")
parser.add_argument("out")
parser.add_argument("--intl", action="store_true", help="the Singapore (international) region")
args = parser.parse_args()

if args.intl:
    dashscope.base_http_api_url = "https://dashscope-intl.aliyuncs.com/api/v1"
model, resolution = ("wan2.1-kf2v-plus", "720P") if args.intl else ("wan2.2-kf2v-flash", "480P")

rsp = VideoSynthesis.call(model=model, prompt="a cat turns into a dog", resolution=resolution,
                          first_frame_url=Path(args.first).resolve().as_uri(),
                          last_frame_url=Path(args.last).resolve().as_uri())
if rsp.status_code != 200 or rsp.output.task_status != "SUCCEEDED":
    sys.exit(f"the task did not succeed: {rsp}")
video = requests.get(rsp.output.video_url, timeout=60)
video.raise_for_status()
Path(args.out).write_bytes(video.content)
print(rsp.output.video_url)
