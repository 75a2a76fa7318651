"""Int8 vs fp32 exports of demo-supernet subnets: file size, top-1 accuracy on mnist5k validation images and
fp32/int8 top-1 agreement, in onnxruntime and LiteRT.

    python benchmarks/export_int8.py                 # 3 subnets (smallest, a random one, largest), 1000 images
    python benchmarks/export_int8.py --archs 5 --images 200
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from hwnas.data import load_dataset
from hwnas.export import create_runner, export_arch
from hwnas.export.arch import fit_calib
from hwnas.supernet import demo_checkpoint_path, load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="supernet checkpoint (default: the shipped demo one)")
    parser.add_argument("--archs", type=int, default=3, help="smallest, largest and random subnets in all")
    parser.add_argument("--images", type=int, default=1000, help="validation images to score")
    parser.add_argument("--calib", type=int, default=128, help="calibration images (from the training split)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    supernet = load_checkpoint(args.checkpoint or demo_checkpoint_path()).eval()
    space = supernet.space
    rng = np.random.default_rng(args.seed)
    train, val = load_dataset("mnist5k", split="train"), load_dataset("mnist5k", split="val")
    calib = train.x[np.sort(rng.permutation(len(train))[: args.calib])]
    index = np.sort(rng.permutation(len(val))[: args.images])
    images, labels = val.x[index], val.y[index]
    archs = [supernet.smallest(), supernet.largest()] + space.sample(rng, max(args.archs - 2, 0))
    print(f"{space!r}: {len(archs)} subnets, {len(images)} validation images, {len(calib)} calibration images")
    print(f"{'arch':<40} {'format':<7} {'fp32 MB':>8} {'int8 MB':>8} {'ratio':>6} {'fp32 acc':>9} "
          f"{'int8 acc':>9} {'agree':>7} {'export s':>9}")
    import torch

    with tempfile.TemporaryDirectory(prefix="hwnas-int8-") as tmp:
        for arch in archs[: args.archs]:
            arch = space.validate(arch)
            x = fit_calib(images, space.input_shape(arch))
            with torch.no_grad():
                fp32_top1 = supernet.extract(arch)(torch.from_numpy(x)).numpy().argmax(1)
            for fmt in ("onnx", "tflite"):
                started = time.perf_counter()
                fp32 = export_arch(space, arch, tmp, fmt, "fp32", supernet=supernet)
                int8 = export_arch(space, arch, tmp, fmt, "int8", supernet=supernet, calib=calib)
                seconds = time.perf_counter() - started
                int8_top1 = create_runner(int8.path, fmt).run(x)[0].argmax(1)
                print(f"{arch.key:<40} {fmt:<7} {fp32.bytes / 1e6:8.3f} {int8.bytes / 1e6:8.3f} "
                      f"{int8.bytes / fp32.bytes:6.2f} {np.mean(fp32_top1 == labels):9.1%} "
                      f"{np.mean(int8_top1 == labels):9.1%} {np.mean(int8_top1 == fp32_top1):7.1%} {seconds:9.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
