"""Recurrent layers against the analytic count: per token (step × batch), per direction, per layer,
LSTM 4·(H·I + H·H), GRU 3·(H·I + H·H), RNN 1·(H·I + H·H), where a layer above the first reads I = H × directions."""

import pytest
import torch
import torch.nn as nn

from vizcli.shapes.count import OperatorCounter
from vizcli.shapes.trace import trace_shapes

GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


def analytic_macs(gates, inputs, hidden, layers, bidirectional, steps, batch):
    directions = 2 if bidirectional else 1
    per_token = 0
    for layer in range(layers):
        width = inputs if layer == 0 else hidden * directions
        per_token += directions * gates * (hidden * width + hidden * hidden)
    return per_token * steps * batch


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("layers,bidirectional,batch_first", [(1, False, False), (2, True, False), (3, True, True)])
def test_recurrent_macs_equal_the_analytic_count(kind, layers, bidirectional, batch_first):
    torch.manual_seed(0)
    model = kind(7, 11, layers, bidirectional=bidirectional, batch_first=batch_first)
    steps, batch = 5, 3
    sequence = torch.randn(batch, steps, 7) if batch_first else torch.randn(steps, batch, 7)
    trace = trace_shapes(model, sequence)
    expected = analytic_macs(GATES[kind], 7, 11, layers, bidirectional, steps, batch)
    assert trace.error is None
    assert sum(record.macs for record in trace.records) == expected
    assert sum(trace.operator_macs.values()) == expected
    assert sum(record.params for record in trace.records) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_whole_sequence_operators_are_counted_under_inference_mode(kind):
    # under inference_mode the dispatcher hands over aten.lstm/gru/rnn_tanh whole, not their kernels
    model = kind(6, 4, 2, bidirectional=True)
    with torch.inference_mode(), OperatorCounter() as counter:
        model(torch.randn(9, 2, 6))
    assert sum(counter.macs.values()) == analytic_macs(GATES[kind], 6, 4, 2, True, 9, 2)


class TaggerWithLSTM(nn.Module):
    """torchinfo's LSTMNet shape: embedding, 2-layer LSTM, linear decoder."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 300)
        self.encoder = nn.LSTM(300, 512, num_layers=2)
        self.decoder = nn.Linear(512, 20)

    def forward(self, ids):
        out, _ = self.encoder(self.embedding(ids))
        return self.decoder(out)


def test_an_lstm_inside_a_model_is_one_row_with_its_macs():
    trace = trace_shapes(TaggerWithLSTM(), torch.randint(0, 20, (1, 100)))
    rows = {record.name: record for record in trace.records}
    lstm = 100 * (4 * 512 * (300 + 512) + 4 * 512 * (512 + 512))
    assert rows["encoder"].macs == lstm and rows["encoder"].kind == "LSTM"
    assert rows["decoder"].macs == 100 * 512 * 20
    assert sum(record.macs for record in trace.records) == lstm + 100 * 512 * 20 == 377_036_800


class CellLoop(nn.Module):
    """torchinfo's SimpleRNN: an LSTMCell called in a Python loop (fx cannot trace it: hooks do)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(3, 2)
        self.activation = nn.Tanh()

    def forward(self, tokens):
        hx = torch.zeros(tokens.shape[0], 2)
        cx = torch.zeros(tokens.shape[0], 2)
        for _ in range(4):
            hx, cx = self.lstm(tokens, (hx, cx))
            hx = self.activation(hx)
        return hx


def test_an_lstm_cell_in_a_loop_keeps_its_rows_and_the_totals_agree():
    trace = trace_shapes(CellLoop(), torch.randn(2, 3))
    assert trace.method == "hooks"
    cell_rows = [record for record in trace.records if record.name == "lstm"]
    per_call = 2 * 4 * (2 * 3 + 2 * 2)  # batch 2: 4 gates of H·I + H·H
    assert [record.macs for record in cell_rows] == [per_call] * 4
    assert [record.call for record in cell_rows] == [0, 1, 2, 3]
    assert all(record.macs == 0 for record in trace.records if record.name == "activation")
    assert sum(record.macs for record in trace.records) == sum(trace.operator_macs.values()) == 4 * per_call


def test_a_packed_sequence_counts_its_real_tokens():
    from torch.nn.utils.rnn import pack_padded_sequence

    lstm = nn.LSTM(5, 4)
    lengths = torch.tensor([6, 4, 1])
    packed = pack_padded_sequence(torch.randn(6, 3, 5), lengths)
    trace = trace_shapes(lstm, [packed])
    assert sum(record.macs for record in trace.records) == int(lengths.sum()) * 4 * 4 * (5 + 4)
