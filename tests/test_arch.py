"""lin_utils.arch: block discovery, widths, encoder detection and tiny configs of every family."""
import pytest
import torch
import transformers

from lin_utils.arch import (
    FAMILIES,
    decoder_blocks,
    from_config,
    hidden_size,
    is_encoder,
    n_blocks,
    tiny_config,
)
from lin_utils.errors import LinUtilsError


def test_from_config_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = from_config(tiny_config("llama"), seed=5)
    assert torch.equal(torch.rand(3), expected)
    b = from_config(tiny_config("llama"), seed=5, dtype=torch.float64)
    assert b.dtype == torch.float64
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va.double(), vb), k


@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_blocks_every_family(family):
    config = tiny_config(family)
    model = from_config(config, seed=0)
    d = hidden_size(model)
    assert d == 48
    assert is_encoder(model) == (family == "bert")
    assert isinstance(model, transformers.BertModel if family == "bert" else transformers.PreTrainedModel)
    blocks = decoder_blocks(model)
    assert isinstance(blocks, torch.nn.ModuleList) and len(blocks) == 3 == n_blocks(model)
    assert decoder_blocks(model.base_model) is blocks
    outs = []
    handles = [b.register_forward_hook(lambda m, i, o: outs.append(o[0] if isinstance(o, tuple) else o))
               for b in blocks]
    with torch.no_grad():
        model(input_ids=torch.randint(3, 500, (2, 7)))
    for h in handles:
        h.remove()
    assert [tuple(o.shape) for o in outs] == [(2, 7, d)] * 3
    assert all(torch.isfinite(o).all() for o in outs)
    assert n_blocks(from_config(tiny_config(family, num_hidden_layers=2))) == 2


def test_decoder_blocks_bert_heads_and_fallback():
    config = tiny_config("bert")
    mlm = transformers.BertForMaskedLM(config)
    assert len(decoder_blocks(mlm)) == 3 and decoder_blocks(mlm) is mlm.bert.encoder.layer

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = torch.nn.ModuleList([torch.nn.Linear(2, 2)])
            self.stack = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(4)])

    odd = Odd()
    assert decoder_blocks(odd) is odd.stack
    with pytest.raises(LinUtilsError, match="Linear"):
        decoder_blocks(torch.nn.Linear(2, 2))


def test_tiny_config_rejects_unknown_family():
    with pytest.raises(ValueError, match="unknown family"):
        tiny_config("t5")


def test_tiny_config_aliases_and_generic_overrides():
    assert tiny_config("pythia").model_type == tiny_config("gpt-neox").model_type == "gpt_neox"
    gpt2 = tiny_config("gpt2", hidden_size=32, num_hidden_layers=2)
    assert (gpt2.n_embd, gpt2.n_layer) == (32, 2)
    assert tiny_config("llama").vocab_size == 512
