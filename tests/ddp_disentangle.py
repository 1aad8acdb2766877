"""Run by ``torchrun`` from tests/test_scale.py: a few steps of disentanglement training with the tiny network sizes
(``TINY_DIS``), so the data-parallel test spends its time on what it tests. Rank 0 prints the result as JSON.

    torchrun --standalone --nproc-per-node 2 tests/ddp_disentangle.py WS EPOCHS [--resume]
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from evpcli.config import DisentangleTrainConfig
    from evpcli.train.disentangle import train_disentangle
    from evpcli.train.distributed import from_env
    from evpcli.workspace import Workspace
    from tests.test_audio2lm import TINY_DIS

    ws, epochs, resume = argv[0], int(argv[1]), "--resume" in argv[2:]
    cfg = DisentangleTrainConfig(epochs=epochs, steps_per_epoch=2, pretrain_steps=2, batch_size=8, holdout_sentences=1,
                                 augment_copies=0, eval_tuples=4)
    r = train_disentangle(Workspace(ws), cfg, TINY_DIS, device="cpu", resume=resume)
    if from_env().main:
        print(json.dumps(r.to_dict(), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
