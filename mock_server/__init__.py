"""kf2v-mock: an offline emulator of DashScope's keyframe-to-video (kf2v) API."""

__version__ = "0.1.0"
EMULATOR_HEADER = "X-Kf2v-Mock"  # every response names the emulator and its version
