"""Stage 7 (paper Sec. 5, supp. App. E, E.1): empirical-NTK dynamics under training.

Modules: `models` (the supp. E CNNs), `steps` (loss, attacks, SGD step, eNTK),
`state` (run state and its serialisation), `training` (a resumable run), `checkpoint`
(per-epoch checkpoints), `records` (output layout), `measures` (the authors'
measurements.py), `claims` (findings 8-13), `task` (training rules), `summary` (CPU
rules).
"""
