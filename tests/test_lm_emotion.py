import numpy as np

from evpcli.face.shape3d import generic_mean_shape
from evpcli.config import LandmarkEmotionConfig
from evpcli.train.lm_emotion import (LandmarkEmotionTrainConfig, classifier_from_state, classifier_state,
                                     displacement, predict_emotion, train_landmark_emotion)


def synthetic_sequences(n_per_class, n_classes=4, seed=0):
    """Talking faces whose emotion is a small static expression offset (brows/mouth corners) plus a per-clip
    random mouth motion: a classifier must ignore the speech motion and find the expression."""
    rng = np.random.default_rng(seed)
    ref = generic_mean_shape()[:, :2] * 1.2 + 128
    offsets = rng.normal(0, 1.5, (n_classes, 68, 2))
    seqs, labels = [], []
    for c in range(n_classes):
        for _ in range(n_per_class):
            t = rng.integers(30, 70)
            motion = np.zeros((t, 68, 2))
            motion[:, 48:68, 1] = rng.normal(0, 3, (t, 1)).cumsum(0).clip(-6, 6)
            lm = ref + offsets[c] * rng.uniform(0.6, 1.2) + motion + rng.normal(0, 0.3, (t, 68, 2))
            seqs.append(displacement(lm, ref))
            labels.append(c)
    return seqs, labels


def test_classifier_learns_expression_and_round_trips():
    all_seqs, all_labels = synthetic_sequences(17)  # per class: 12 clips to train, 5 held out
    train = [i for i in range(len(all_seqs)) if i % 17 < 12]
    test = [i for i in range(len(all_seqs)) if i % 17 >= 12]
    net = train_landmark_emotion([all_seqs[i] for i in train], [all_labels[i] for i in train],
                                 LandmarkEmotionTrainConfig(epochs=25, batch_size=16, crop=24),
                                 LandmarkEmotionConfig(hidden=32, n_classes=4))
    pred = predict_emotion(net, [all_seqs[i] for i in test])
    acc = float(np.mean(pred == np.array([all_labels[i] for i in test])))
    assert acc >= 0.9, acc
    again = classifier_from_state(classifier_state(net))
    np.testing.assert_array_equal(predict_emotion(again, [all_seqs[i] for i in test]), pred)
