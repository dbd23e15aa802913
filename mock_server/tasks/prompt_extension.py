"""A deterministic stand-in for the service's prompt rewriting (``prompt_extend``).

The real service appends descriptive detail to the user's prompt (the documented example adds
fur, eyes, framing and light to a cat prompt). We do the same with faker, seeded by the task's seed
and the prompt, in the prompt's language: the same request always gets the same ``actual_prompt``.
"""

from __future__ import annotations

import hashlib
import re

from faker import Faker

# Built once: constructing a Faker costs milliseconds. Only used from the event loop thread.
_FAKERS = {"zh": Faker("zh_CN"), "en": Faker("en_US")}
_CJK = re.compile(r"[\u3400-\u9fff]")

_ZH_DETAIL = {
    "subject": ["主体轮廓清晰", "细节纹理丰富", "色彩层次分明", "质感真实细腻", "神态生动自然"],
    "camera": ["镜头缓慢推进", "镜头平稳跟随", "镜头缓缓拉远", "镜头轻微上移", "固定机位拍摄"],
    "light": ["自然光线柔和", "暖色调光影", "清晨柔光", "逆光勾勒轮廓", "阴天散射光"],
    "shot": ["近景特写", "中景构图", "远景全貌", "浅景深虚化背景", "对称构图"],
}
_EN_DETAIL = {
    "subject": ["crisp subject outlines", "rich surface texture", "layered colours",
                "lifelike materials", "natural expressions"],
    "camera": ["the camera slowly pushes in", "the camera tracks smoothly",
               "the camera gently pulls back", "the camera rises slightly", "a locked-off shot"],
    "light": ["soft natural light", "warm light and shadow", "gentle morning light",
              "rim light from behind", "diffuse overcast light"],
    "shot": ["close-up", "medium shot", "wide establishing shot", "shallow depth of field",
             "symmetrical composition"],
}


def extend_prompt(prompt: str, seed: int) -> str:
    """``prompt`` followed by a few seeded sentences of visual detail, in the same language."""
    zh = bool(_CJK.search(prompt))
    fake = _FAKERS["zh" if zh else "en"]
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    fake.seed_instance(int.from_bytes(digest[:8], "big"))
    table = _ZH_DETAIL if zh else _EN_DETAIL
    picks = [fake.random_element(table[k]) for k in ("subject", "camera", "light", "shot")]
    colour = fake.color_name() if not zh else fake.random_element(["金色", "蓝色", "暖橙色", "青绿色", "银白色"])
    if zh:
        base = prompt.rstrip("。.！!")
        return f"{base}。画面{picks[0]}，点缀{colour}元素，{picks[1]}。{picks[2]}，{picks[3]}。"
    base = prompt.rstrip(". ")
    return (f"{base}. The scene shows {picks[0]} with touches of {colour.lower()}; "
            f"{picks[1]}. {picks[2].capitalize()}, {picks[3]}.")
