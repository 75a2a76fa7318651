"""Time to score one subnet of a supernet: extract + BN recalibration + top-1 on 1,000 validation images.

    python benchmarks/supernet_eval.py                 # the shipped demo supernet, mnist5k, 10 random subnets
    python benchmarks/supernet_eval.py --n 20 --threads 2 --calib-images 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hwnas.data import load_dataset
from hwnas.supernet import demo_checkpoint_path, load_checkpoint, recalibrate_bn
from hwnas.supernet.evaluate import batches_for


def _channels_last(x: np.ndarray) -> torch.Tensor:
    """Inputs as the evaluation uses them: channels-last tensors (faster depthwise convolutions on CPU)."""
    return torch.from_numpy(x).contiguous(memory_format=torch.channels_last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(demo_checkpoint_path()))
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--n", type=int, default=10, help="random subnets to time")
    parser.add_argument("--images", type=int, default=1000, help="validation images per subnet")
    parser.add_argument("--calib-images", type=int, default=1000, help="training images for BN recalibration")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    supernet = load_checkpoint(args.checkpoint)
    train, val = load_dataset(args.data, split="train"), load_dataset(args.data, split="val")
    space = supernet.space
    channels = space.in_channels
    archs = space.sample(np.random.default_rng(args.seed), args.n)
    evaluate_warmup = supernet.extract(archs[0])  # first-call allocations are not what we time
    evaluate_warmup(torch.zeros(1, channels, archs[0].r, archs[0].r))
    times = {"data": [], "extract": [], "recalibrate": [], "evaluate": [], "total": []}
    accuracy = []
    for arch in archs:
        t0 = time.perf_counter()
        calib = batches_for(train, arch.r, channels, args.batch_size, limit=args.calib_images, shuffle=True)
        batches = batches_for(val, arch.r, channels, args.batch_size, limit=args.images)
        calib = [_channels_last(x) for x, _ in calib]
        batches = [(_channels_last(x), y) for x, y in batches]
        t1 = time.perf_counter()
        model = supernet.extract(arch).to(memory_format=torch.channels_last)
        t2 = time.perf_counter()
        recalibrate_bn(model, calib)
        t3 = time.perf_counter()
        correct = 0
        with torch.no_grad():
            for images, labels in batches:
                correct += int((model(images).argmax(1).numpy() == labels).sum())
        t4 = time.perf_counter()
        accuracy.append(100.0 * correct / min(len(val), args.images))
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
            times[key].append(value)
    print(f"{args.n} random subnets of {space!r}, {min(len(val), args.images)} validation images, "
          f"{args.calib_images} calibration images, {args.threads} torch threads")
    for key, values in times.items():
        print(f"  {key:>11}: mean {np.mean(values):.3f} s, median {np.median(values):.3f} s, "
              f"max {np.max(values):.3f} s")
    print(f"  top-1 of the timed subnets: {min(accuracy):.1f}% .. {max(accuracy):.1f}%")


if __name__ == "__main__":
    main()
