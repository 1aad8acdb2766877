"""A training run for the fault-injection tests, small enough to be killed many times: the audio-to-landmark
stage with tiny networks on a prepared workspace.

    python -m tests.fault_train WORKSPACE EPOCHS [--resume]
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import torch

    from evpcli.config import Audio2LandmarkTrainConfig
    from evpcli.train.audio2lm import train_audio2lm
    from evpcli.workspace import Workspace
    from tests.test_audio2lm import TINY_A2L

    torch.set_num_threads(1)
    ws, epochs, resume = Workspace(argv[0]), int(argv[1]), "--resume" in argv[2:]
    train_audio2lm(ws, Audio2LandmarkTrainConfig(epochs=epochs, steps_per_epoch=15, batch_size=8), TINY_A2L,
                   device="cpu", resume=resume)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
