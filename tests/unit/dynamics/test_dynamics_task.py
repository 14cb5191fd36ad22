"""The one settings type of a training job (ntkadv.dynamics.task.DynamicsSettings):
typed from the rule's params.settings, it builds the run's RunSpec (recorded as the
run file's ``spec`` attrs) with the regime's training attack."""

from __future__ import annotations

import pytest

from ntkadv.config import settings_from
from ntkadv.dynamics.steps import AttackSpec
from ntkadv.dynamics.task import DynamicsSettings, checkpoint_dir
from ntkadv.dynamics.training import RunSpec

#: params.settings of a training job as workflow/rules/helpers/dynamics.smk builds it
PARAMS = {
    "alpha": 0.1,
    "batch_size": 50,
    "epochs": 3,
    "eps": 0.3,
    "eval_batch": 250,
    "eval_pgd_steps": 10,
    "kernel_batch": 100,
    "kernel_inputs": "clean",
    "learning_rate": 0.1,
    "model": "cnn",
    "n_eval_test": 100,
    "n_eval_train": 100,
    "n_train": 1000,
    "ntk_block": 0,
    "ntk_implementation": "auto",
    "pgd_steps": 7,
    "seed": 1,
    "regime": "pgd",
    "lin_epoch": None,
    "snapshots": [1, 2],
}


@pytest.mark.parametrize(
    ("regime", "lin_epoch", "train_attack", "kernel_batch"),
    [
        ("standard", None, None, 100),
        ("fgsm", None, AttackSpec(eps=0.3, alpha=0.3, steps=1), 100),
        ("pgd", None, AttackSpec(eps=0.3, alpha=0.1, steps=7), 100),
        ("pgd", 2, AttackSpec(eps=0.3, alpha=0.1, steps=7), 0),
    ],
)
def test_run_spec_of_each_regime(regime, lin_epoch, train_attack, kernel_batch):
    params = PARAMS | {"regime": regime, "lin_epoch": lin_epoch}
    if regime != "pgd":
        params["pgd_steps"] = None
    s = settings_from(DynamicsSettings, params)
    assert s.snapshots == (1, 2)
    assert s.run_spec(num_classes=10) == RunSpec(
        model="cnn",
        num_classes=10,
        seed=1,
        learning_rate=0.1,
        batch_size=50,
        epochs=3,
        train_attack=train_attack,
        eval_attack=AttackSpec(eps=0.3, alpha=0.1, steps=10),
        kernel_batch=kernel_batch,
        kernel_inputs="clean",
        ntk_implementation="auto",
        ntk_block=0,
        eval_batch=250,
        lin_epoch=lin_epoch,
    )


def test_unknown_or_missing_settings_keys_are_named():
    with pytest.raises(TypeError, match=r"unknown keys \['ckpt'\]"):
        settings_from(DynamicsSettings, PARAMS | {"ckpt": "x"})
    with pytest.raises(TypeError, match=r"missing keys \['regime'\]"):
        settings_from(
            DynamicsSettings, {k: v for k, v in PARAMS.items() if k != "regime"}
        )


def test_checkpoint_sits_next_to_the_run_file():
    run = "results/dynamics/mnist/linearized/lin2/seed0/run.h5"
    assert checkpoint_dir(run) == "results/dynamics/mnist/linearized/lin2/seed0/ckpt"
