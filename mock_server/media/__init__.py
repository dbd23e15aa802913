"""Clip synthesis: output sizing and offline rendering of a real H.264 MP4 from two frames (camera
move, cross-fade, effect templates, watermark), through the bundled ffmpeg; ``worker`` runs it in
reused worker processes at a lower CPU priority.

May import: nothing of the emulator's (the bottom floor): it takes bytes and numbers, not tasks."""
