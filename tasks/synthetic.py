"""A small synthetic multimodal RL dataset: count shapes, read a drawn number, say where a square moves.

    thinkcap train --make-data DIR [--n 300] [--seed 0]
    python -m tasks.synthetic DIR

Writes DIR/train.jsonl plus DIR/images/*.png and DIR/videos/*.mp4 (4 frames at 2 fps, 112x112, the
tiny model's native size). Every answer is verifiable: counting, numeric and exact domains.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 112
COLOURS = [(220, 40, 40), (40, 160, 40), (40, 80, 220), (230, 160, 20), (150, 50, 200)]
DIRECTIONS = ("left", "right", "up", "down")
BOX_HINT = "Think briefly, then put the final answer in <|begin_of_box|><|end_of_box|>."
TASKS = ("count_shapes", "read_number", "square_motion")


def _shapes_image(rng: random.Random, count: int) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(img)
    cells = rng.sample([(x, y) for x in range(3) for y in range(3)], count)  # one shape per cell: no overlap
    for cx, cy in cells:
        x0, y0 = cx * 37 + rng.randint(2, 8), cy * 37 + rng.randint(2, 8)
        s = rng.randint(16, 26)
        colour = rng.choice(COLOURS)
        kind = rng.choice(("circle", "square", "triangle"))
        if kind == "circle":
            draw.ellipse([x0, y0, x0 + s, y0 + s], fill=colour)
        elif kind == "square":
            draw.rectangle([x0, y0, x0 + s, y0 + s], fill=colour)
        else:
            draw.polygon([(x0 + s // 2, y0), (x0, y0 + s), (x0 + s, y0 + s)], fill=colour)
    return img


def _number_image(rng: random.Random, number: int) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), "white")
    font = ImageFont.load_default(size=rng.randint(56, 72))
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), str(number), font=font)
    x = rng.randint(0, max(0, SIZE - (right - left))) - left
    y = rng.randint(0, max(0, SIZE - (bottom - top))) - top
    draw.text((x, y), str(number), fill=rng.choice(COLOURS), font=font)
    return img


def _motion_frames(rng: random.Random, direction: str, frames: int = 4) -> np.ndarray:
    s, step = 24, 18
    dx, dy = {"left": (-step, 0), "right": (step, 0), "up": (0, -step), "down": (0, step)}[direction]
    # Start where the whole path stays inside the frame.
    x = rng.randint(max(0, -dx * (frames - 1)), SIZE - s - max(0, dx * (frames - 1)))
    y = rng.randint(max(0, -dy * (frames - 1)), SIZE - s - max(0, dy * (frames - 1)))
    colour = rng.choice(COLOURS)
    out = np.full((frames, SIZE, SIZE, 3), 255, dtype=np.uint8)  # [T, H, W, 3]
    for t in range(frames):
        out[t, y + t * dy: y + t * dy + s, x + t * dx: x + t * dx + s] = colour
    return out


def _write_video(path: Path, frames: np.ndarray, fps: float = 2.0) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (SIZE, SIZE))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def make_record(rng: random.Random, task: str, index: int, out: Path) -> dict[str, Any]:
    rid = f"{task}-{index:05d}"
    if task == "count_shapes":
        count = rng.randint(1, 5)
        _shapes_image(rng, count).save(out / "images" / f"{rid}.png")
        return {"id": rid, "task": task, "domain": "counting", "images": [f"images/{rid}.png"],
                "prompt": f"How many shapes are in the image? {BOX_HINT}", "answer": count}
    if task == "read_number":
        number = rng.randint(0, 9)  # one digit: 10 classes, like the other tasks' 4-5
        _number_image(rng, number).save(out / "images" / f"{rid}.png")
        return {"id": rid, "task": task, "domain": "numeric", "images": [f"images/{rid}.png"],
                "prompt": f"What number is written in the image? {BOX_HINT}", "answer": number}
    if task == "square_motion":
        direction = rng.choice(DIRECTIONS)
        _write_video(out / "videos" / f"{rid}.mp4", _motion_frames(rng, direction))
        return {"id": rid, "task": task, "domain": "exact", "videos": [f"videos/{rid}.mp4"],
                "prompt": f"Which way does the square move: left, right, up or down? {BOX_HINT}",
                "answer": direction}
    raise ValueError(f"unknown synthetic task {task!r}; known: {TASKS}")


def make_dataset(out_dir: str | Path, n: int = 300, seed: int = 0, tasks: tuple[str, ...] = TASKS) -> Path:
    """Write `n` records cycling through `tasks`; returns the JSONL path. Same seed, same files."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    records = [make_record(rng, tasks[i % len(tasks)], i, out) for i in range(n)]
    path = out / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkcap train --make-data", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="output folder")
    parser.add_argument("--n", type=int, default=300, help="number of records (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    args = parser.parse_args(argv)
    path = make_dataset(args.dir, n=args.n, seed=args.seed, tasks=tuple(args.tasks.split(",")))
    print(f"wrote {args.n} records to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
