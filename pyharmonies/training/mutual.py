"""Deep mutual learning: the members of an ensemble trained together, each taught by the others.

With ``--members N --mutual W`` the N networks of a CNN ensemble train in one
loop on the same batches. Each member's loss is its own cross-entropy on the
labels plus ``W`` times the KL divergence from the other members' mean answer
(held fixed) to its own, so a member learns the labels and also how its peers
spread their doubt between classes (Zhang et al., "Deep Mutual Learning",
CVPR 2018). Without the KL term this is N independent networks that only
share their batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def mutual_loss(member_logits: torch.Tensor, label_loss: Callable[[torch.Tensor], torch.Tensor], weight: float) -> torch.Tensor:
    """The members' losses summed: each one's ``label_loss`` plus ``weight`` x KL(peers' mean || member).

    Summed rather than averaged, so that each member's gradient is what it
    would get training alone, plus its peers' pull.

    Parameters
    ----------
    member_logits : Tensor, (members, B, classes)
    label_loss : callable
        One member's ``(B, classes)`` logits -> its scalar loss on the labels
        (with mixup and label smoothing already in it).
    weight : float
        Weight of the KL term; 0 leaves the members independent.

    Returns
    -------
    Tensor
        A scalar.
    """
    n = member_logits.shape[0]
    log_probs = F.log_softmax(member_logits, dim=-1)
    probs = log_probs.exp().detach()
    total = probs.sum(dim=0)
    loss = member_logits.new_zeros(())
    for i in range(n):
        loss = loss + label_loss(member_logits[i])
        if weight > 0 and n > 1:
            peers = (total - probs[i]) / (n - 1)  # (B, classes): the others' mean answer, a fixed target
            loss = loss + weight * F.kl_div(log_probs[i], peers, reduction="batchmean")
    return loss
