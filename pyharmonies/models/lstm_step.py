"""The LSTM, one step at a time: the network a device streams, and the full-sequence model it must equal.

:class:`SequenceLSTM` classifies a window: it averages ``segment`` frames into
a step, runs its LSTM from a zero state over the window's ``L = W // segment``
steps and mean-pools (or takes the last of) their outputs. A stream has no
windows: :class:`LSTMStep` carries the LSTM's state from one step to the next
forever and is called once per new step, with the same weights.

What the streamed output is (the definition the device implements)
-------------------------------------------------------------------
Frames are numbered from 0 from the start of the stream (or its last reset);
step ``n`` (``n = 1, 2, ...``) is the mean of frames ``(n - 1) * segment ..
n * segment - 1``. The state holds the LSTM's ``h`` and ``c`` of every layer
and, for ``pooling="mean"``, a ring of the top layer's last ``K = L`` outputs
(zeros before the first step). After step ``n`` the output is
``head(mean(ring))``: the mean of outputs ``n - K + 1 .. n`` (``pooling="last"``:
``head(h_n)``). So the first ``K`` steps of a fresh stream are exactly the
window model on its first window (the window model drops the ``W - K *
segment`` frames after its last whole step), and later outputs pool the same
number of steps as a window, but from a state that remembers everything
before them.

The *full-sequence model* (:func:`full_sequence_logits`) is the same network
run over a whole clip as one sequence from a zero state, with that same
pooling after every step: the oracle of the streaming tests.

One call per hop (:class:`LSTMHop`)
-----------------------------------
A runtime call costs more than a step inside it (LiteRT about 4 us, ONNX
Runtime about 20 us of dispatch, against 1-2 us per step), so a device that
answers every ``k`` steps runs :class:`LSTMHop`: the same network over ``k``
steps per call, ``(frames (B, F, k * S), state) -> (logits after the k-th
step, state after it)``, with the same state layout. Run ``j`` times, it gives
exactly what :class:`LSTMStep` gives run ``j * k`` times. Inside, it is the
trained ``nn.LSTM`` started from the carried ``h`` and ``c`` (ONNX: one LSTM
op; TFLite: the steps unrolled into FULLY_CONNECTED and elementwise ops), and
the ring takes the ``k`` new outputs as one static concatenation and slice.

Why plain matmuls (:class:`LSTMStep`) and not ``nn.LSTM``: the cell as two
``Linear`` layers, sigmoid, tanh, products and sums exports to ordinary
MatMul/FULLY_CONNECTED, Sigmoid, Tanh, Mul and Add ops, which both runtimes'
int8 quantizers handle, and it takes and returns the state as an ordinary
tensor. The whole state is one flat float32 vector, ``(batch, state_size)``,
laid out as :meth:`LSTMStep.state_layout` says.

Shapes: ``B`` batch, ``F`` features per frame, ``S`` segment frames, ``H``
hidden size, ``K`` steps pooled.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from pyharmonies.errors import ParameterError
from pyharmonies.models.lstm import SequenceLSTM

__all__ = ["LSTMHop", "LSTMStep", "full_sequence_logits", "hop_steps", "window_steps"]


def window_steps(model: SequenceLSTM) -> int:
    """Steps of one window of the model, ``L = frames // segment``: the ring's length for mean pooling."""
    return model.input_shape[1] // model.config.segment


def hop_steps(hop_frames: int, segment: int) -> int:
    """Whole steps in a hop of ``hop_frames`` frames, ``hop_frames // segment`` (at least 1): the steps of a hop model."""
    if hop_frames < 1 or segment < 1:
        raise ParameterError(f"hop_frames and segment must be >= 1, got {hop_frames} and {segment}")
    return max(1, hop_frames // segment)


class _Cell(nn.Module):
    """One LSTM layer's step, PyTorch's gate order (input, forget, cell, output): ``(x, h, c) -> (h', c')``."""

    def __init__(self, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        hidden4, n_in = weight_ih.shape
        self.hidden = hidden4 // 4
        self.input_gates = nn.Linear(n_in, hidden4)  # x (B, in) -> (B, 4H), both biases folded in
        self.hidden_gates = nn.Linear(self.hidden, hidden4, bias=False)  # h (B, H) -> (B, 4H)
        with torch.no_grad():
            self.input_gates.weight.copy_(weight_ih)
            self.input_gates.bias.copy_(bias)
            self.hidden_gates.weight.copy_(weight_hh)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.input_gates(x) + self.hidden_gates(h)  # (B, 4H)
        H = self.hidden
        i = torch.sigmoid(gates[:, 0:H])
        f = torch.sigmoid(gates[:, H : 2 * H])
        g = torch.tanh(gates[:, 2 * H : 3 * H])
        o = torch.sigmoid(gates[:, 3 * H : 4 * H])
        c = f * c + i * g  # (B, H)
        return o * torch.tanh(c), c


class LSTMStep(nn.Module):
    """One step of a trained :class:`SequenceLSTM`: ``(frames (B, F, S), state (B, state_size)) -> (logits, state)``.

    Parameters
    ----------
    model : SequenceLSTM
        Trained, unidirectional; its weights are copied (the model is not changed).

    Attributes
    ----------
    segment : int
        Frames per step ``S``.
    steps_pooled : int
        ``K``: outputs the ring keeps (the window's steps) for mean pooling; 0 for ``pooling="last"``.
    state_size : int
        ``layers * H`` (h) + ``layers * H`` (c) + ``K * H`` (the ring).

    Raises
    ------
    ParameterError
        A bidirectional LSTM: its backward half reads each window from its
        end, so it has no state that a stream could carry.
    """

    def __init__(self, model: SequenceLSTM) -> None:
        super().__init__()
        config = model.config
        if config.bidirectional:
            raise ParameterError("a bidirectional LSTM reads every window from its end too: it has no state to stream")
        lstm = model.backbone.lstm
        self.segment = config.segment
        self.hidden = config.hidden
        self.layers = config.layers
        self.n_features = model.input_shape[0]
        self.n_classes = model.n_classes
        self.pooling = config.pooling
        self.steps_pooled = window_steps(model) if config.pooling == "mean" else 0
        self.projection = copy.deepcopy(model.backbone.projection)
        self.cells = nn.ModuleList(
            _Cell(getattr(lstm, f"weight_ih_l{k}").detach(), getattr(lstm, f"weight_hh_l{k}").detach(),
                  (getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")).detach())  # fmt: skip
            for k in range(config.layers)
        )
        self.head = copy.deepcopy(model.head)
        self.state_size = (2 * self.layers + self.steps_pooled) * self.hidden
        self.eval()

    def state_layout(self) -> list[dict]:
        """The flat state's parts in order: ``{"name", "offset", "shape"}`` for ``h``, ``c`` and (mean pooling) ``ring``.

        ``h`` and ``c`` are ``(layers, H)``, layer 0 first; ``ring`` is ``(K, H)``, the oldest output first.
        """
        LH = self.layers * self.hidden
        parts = [{"name": "h", "offset": 0, "shape": [self.layers, self.hidden]},
                 {"name": "c", "offset": LH, "shape": [self.layers, self.hidden]}]  # fmt: skip
        if self.steps_pooled:
            parts.append({"name": "ring", "offset": 2 * LH, "shape": [self.steps_pooled, self.hidden]})
        return parts

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeros shaped like the inputs: frames ``(batch, F, S)``, state ``(batch, state_size)``."""
        return torch.zeros(batch, self.n_features, self.segment), torch.zeros(batch, self.state_size)

    def forward(self, frames: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # frames: (B, F, S) normalised frame vectors of one step; state: (B, state_size)
        H, LH = self.hidden, self.layers * self.hidden
        x = self.projection(frames.mean(dim=2))  # (B, P) or (B, F)
        hs, cs = [], []
        for k, cell in enumerate(self.cells):
            h, c = cell(x, state[:, k * H : (k + 1) * H], state[:, LH + k * H : LH + (k + 1) * H])
            hs.append(h)
            cs.append(c)
            x = h  # (B, H): the next layer's input
        if self.steps_pooled:
            ring = torch.cat([state[:, 2 * LH + H :], x], dim=1)  # (B, K * H): the oldest output out, this one in
            pooled = ring.reshape(-1, self.steps_pooled, H).mean(dim=1)  # (B, H)
            return self.head(pooled), torch.cat([*hs, *cs, ring], dim=1)
        return self.head(x), torch.cat([*hs, *cs], dim=1)


class LSTMHop(nn.Module):
    """``steps`` steps of a trained :class:`SequenceLSTM` per call: ``(frames (B, F, steps * S), state) -> (logits, state)``.

    The state is :class:`LSTMStep`'s (same size and layout); the logits are
    those after the last of the ``steps`` steps. Equal to ``steps`` calls of
    :class:`LSTMStep` up to float rounding (the gates are summed in another
    order).

    Parameters
    ----------
    model : SequenceLSTM
        Trained, unidirectional; its weights are copied.
    steps : int
        Steps per call, >= 1 (a device runs one call per hop of ``steps`` whole steps).

    Attributes
    ----------
    steps, segment, steps_pooled, state_size : int
        As :class:`LSTMStep`'s, ``steps`` aside.

    Raises
    ------
    ParameterError
        A bidirectional LSTM, or ``steps < 1``.
    """

    def __init__(self, model: SequenceLSTM, steps: int) -> None:
        super().__init__()
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ParameterError(f"steps must be an integer >= 1, got {steps!r}")
        single = LSTMStep(model)  # the checks, and the state's definition
        self.steps = steps
        self.segment, self.hidden, self.layers = single.segment, single.hidden, single.layers
        self.n_features, self.n_classes, self.pooling = single.n_features, single.n_classes, single.pooling
        self.steps_pooled, self.state_size = single.steps_pooled, single.state_size
        self._layout = single.state_layout()
        self.projection = copy.deepcopy(model.backbone.projection)
        self.lstm = copy.deepcopy(model.backbone.lstm)  # eval mode: no dropout between layers
        self.head = copy.deepcopy(model.head)
        self.pooled_new = min(steps, self.steps_pooled)  # new outputs that enter the ring per call
        self.eval()

    def state_layout(self) -> list[dict]:
        """The flat state's parts, as :meth:`LSTMStep.state_layout`."""
        return copy.deepcopy(self._layout)

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeros shaped like the inputs: frames ``(batch, F, steps * S)``, state ``(batch, state_size)``."""
        return torch.zeros(batch, self.n_features, self.steps * self.segment), torch.zeros(batch, self.state_size)

    def forward(self, frames: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # frames: (B, F, k * S); state: (B, state_size). Every reshape has constant sizes (-1 for the batch),
        # so that the exported graphs hold no shape arithmetic.
        H, layers, k, LH = self.hidden, self.layers, self.steps, self.layers * self.hidden
        x = frames.reshape(-1, self.n_features, k, self.segment).mean(dim=3).transpose(1, 2)  # (B, k, F): the steps
        x = self.projection(x)  # (B, k, P)
        h0 = state[:, :LH].reshape(-1, layers, H).transpose(0, 1)  # (layers, B, H)
        c0 = state[:, LH : 2 * LH].reshape(-1, layers, H).transpose(0, 1)
        out, (h, c) = self.lstm(x, (h0, c0))  # out (B, k, H): the top layer's outputs
        h = h.transpose(0, 1).reshape(-1, LH)
        c = c.transpose(0, 1).reshape(-1, LH)
        if not self.steps_pooled:
            return self.head(out[:, -1]), torch.cat([h, c], dim=1)
        n, K = self.pooled_new, self.steps_pooled
        new = out[:, k - n :].reshape(-1, n * H)  # (B, n * H): the newest outputs, oldest first
        ring = torch.cat([state[:, 2 * LH + n * H :], new], dim=1) if n < K else new  # (B, K * H)
        pooled = ring.reshape(-1, K, H).mean(dim=1)  # (B, H)
        return self.head(pooled), torch.cat([h, c, ring], dim=1)


def full_sequence_logits(model: SequenceLSTM, frames: torch.Tensor) -> torch.Tensor:
    """The full-sequence model: the network over a whole clip as one sequence, pooled as a stream pools it.

    Parameters
    ----------
    model : SequenceLSTM
        Unidirectional, eval mode.
    frames : torch.Tensor, shape (F, T)
        The clip's normalised frame vectors; the ``T % segment`` frames after
        the last whole step are not used.

    Returns
    -------
    torch.Tensor, shape (T // segment, n_classes)
        Row ``n - 1``: the logits after step ``n`` (see the module docstring),
        what :class:`LSTMStep` gives when fed steps ``1 .. n`` from a zero state.
    """
    if model.config.bidirectional:
        raise ParameterError("a bidirectional LSTM has no full-sequence streaming model")
    backbone = model.backbone
    with torch.no_grad():
        x = backbone.projection(backbone.pool(frames[None]))  # (1, N, P)
        out, _ = backbone.lstm(x)  # (1, N, H)
        out = out[0]
        if model.config.pooling == "mean":
            K = window_steps(model)
            padded = torch.cat([out.new_zeros(K - 1, out.shape[1]), out])  # the ring's zeros before step 1
            out = padded.unfold(0, K, 1).mean(dim=2)  # (N, H): mean of outputs n - K + 1 .. n
        return model.head(out)  # (N, n_classes)
