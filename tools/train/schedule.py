"""The learning-rate schedule shared by train.py, finetune_quant.py and make_card.py."""
import math


def cosine_lr(peak, min_frac, progress):
    """Cosine from `peak` at progress 0 down to `min_frac * peak` at progress 1 (clamped)."""
    p = min(1.0, max(0.0, progress))
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * p)))
