"""ntkadv.attacks.checks.check_attack_accuracy: a broken attack fails the job."""

from __future__ import annotations

import numpy as np
import pytest

from ntkadv.attacks.checks import AttackCheckError, check_attack_accuracy


def _fgsm_accuracy(sign: float, n: int = 400, seed: int = 0):
    """Clean and FGSM accuracy of a linear softmax classifier (independent numpy).

    sign = +1 is FGSM (ascent on the cross-entropy), -1 the broken attack with the
    gradient sign flipped.
    """
    rng = np.random.default_rng(seed)
    d, k = 20, 3
    w = rng.normal(size=(d, k))
    x = rng.uniform(size=(n, d))
    labels = rng.integers(0, k, size=n)
    # labels agree with the model on ~half the points
    keep = rng.uniform(size=n) < 0.5
    labels = np.where(keep, np.argmax(x @ w, axis=1), labels)

    def grad(z):
        logits = z @ w
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(n), labels] -= 1.0
        return p @ w.T  # d CE / d x per point

    x_adv = np.clip(x + sign * 0.1 * np.sign(grad(x)), 0.0, 1.0)
    acc = [float(np.mean(np.argmax(z @ w, axis=1) == labels)) for z in (x, x_adv)]
    return acc[0], acc[1], n


def test_correct_fgsm_passes():
    clean, attacked, n = _fgsm_accuracy(+1.0)
    assert attacked < clean
    check_attack_accuracy(clean, attacked, n, "FGSM", "unit model")


def test_sign_flipped_fgsm_raises_naming_the_run():
    clean, attacked, n = _fgsm_accuracy(-1.0)
    with pytest.raises(AttackCheckError, match="dataset toy, seed 3, epoch 7"):
        check_attack_accuracy(
            clean, attacked, n, "FGSM", "dataset toy, seed 3, epoch 7"
        )


def test_tolerance_is_one_point():
    check_attack_accuracy(0.5, 0.5 + 1 / 200, 200, "PGD", "x")
    with pytest.raises(AttackCheckError):
        check_attack_accuracy(0.5, 0.5 + 2 / 200, 200, "PGD", "x")
    with pytest.raises(ValueError, match="n = 0"):
        check_attack_accuracy(0.5, 0.5, 0, "PGD", "x")
