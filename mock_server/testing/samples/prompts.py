"""Seeded zh and en prompts for keyframe-to-video requests, shaped like the documented examples
("写实风格，一只黑色小猫好奇地仰望天空，镜头从平视逐渐上升……"): a style, a subject doing something in
a place, and a camera move. Faker supplies the places and the seeded choices."""

from __future__ import annotations

from functools import lru_cache

_PARTS = {
    "zh": {
        "style": ["写实风格", "电影质感", "水彩风格", "赛博朋克风格", "吉卜力动画风格", "黑白纪录片风格"],
        "subject": ["一只黑色小猫", "一位穿红裙的女孩", "一辆复古自行车", "一群白鸽", "一艘小帆船", "一棵开花的樱树"],
        "action": ["好奇地仰望天空", "缓缓转身", "穿过人群", "在风中摇曳", "慢慢靠近镜头", "从远处飞来"],
        "camera": ["镜头从平视逐渐上升", "镜头缓慢推进", "镜头平稳跟随", "镜头缓缓拉远", "固定机位拍摄"],
    },
    "en": {
        "style": ["photorealistic", "cinematic", "watercolour", "cyberpunk", "hand-drawn animation",
                  "black-and-white documentary"],
        "subject": ["a black kitten", "a girl in a red dress", "a vintage bicycle", "a flock of white doves",
                    "a small sailing boat", "a cherry tree in bloom"],
        "action": ["looks up at the sky", "slowly turns around", "moves through a crowd", "sways in the wind",
                   "comes closer to the camera", "arrives from far away"],
        "camera": ["the camera rises from eye level", "the camera slowly pushes in",
                   "the camera tracks smoothly", "the camera gently pulls back", "a locked-off shot"],
    },
}
_LOCALES = {"zh": "zh_CN", "en": "en_US"}


@lru_cache(maxsize=2)
def _faker(lang: str):
    from faker import Faker  # constructing one costs milliseconds: once per language
    return Faker(_LOCALES[lang])


def prompt(seed: int = 0, lang: str = "en") -> str:
    """One seeded prompt in ``lang`` ("zh" or "en"); the same seed gives the same prompt."""
    if lang not in _PARTS:
        raise ValueError("lang must be 'zh' or 'en'")
    fake = _faker(lang)
    fake.seed_instance(seed)
    parts = {name: fake.random_element(choices) for name, choices in _PARTS[lang].items()}
    if lang == "zh":
        return (f"{parts['style']}，{parts['subject']}在{fake.city_name()}的{fake.random_element(['街头', '河边', '屋顶', '公园'])}"
                f"{parts['action']}，{parts['camera']}。")
    return (f"{parts['style'].capitalize()}: {parts['subject']} {parts['action']} in {fake.city()}; "
            f"{parts['camera']}.")


def zh_prompt(seed: int = 0) -> str:
    return prompt(seed, "zh")


def en_prompt(seed: int = 0) -> str:
    return prompt(seed, "en")
