"""The char_lm network: a small decoder-only transformer over characters.

Token and position embeddings, pre-LN blocks with causal self-attention and an MLP,
a final LayerNorm and an output head tied to the token embedding. The output folder
holds `model.safetensors` and `config.json` (the vocabulary and the shape).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from modelhub.errors import InvalidInput

UNKNOWN_ID = 0
UNKNOWN_CHAR = "\ufffd"


@dataclass(frozen=True)
class CharLMConfig:
    vocab: str
    context_length: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.0

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + 1

    def to_json(self) -> dict[str, Any]:
        return {"trainer": "char_lm", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CharLMConfig:
        return cls(
            vocab=str(data["vocab"]),
            context_length=int(data["context_length"]),
            d_model=int(data["d_model"]),
            n_layers=int(data["n_layers"]),
            n_heads=int(data["n_heads"]),
            dropout=float(data.get("dropout", 0.0)),
        )

    def encode(self, text: str) -> list[int]:
        index = {char: i + 1 for i, char in enumerate(self.vocab)}
        return [index.get(char, UNKNOWN_ID) for char in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i - 1] if i != UNKNOWN_ID else UNKNOWN_CHAR for i in ids)


class _Block(nn.Module):
    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.ln1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model),
            nn.GELU(),
            nn.Linear(4 * config.d_model, config.d_model),
            nn.Dropout(config.dropout),
        )
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=2)
        heads = (batch, length, self.n_heads, width // self.n_heads)
        q, k, v = (t.view(heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        attended = attended.transpose(1, 2).reshape(batch, length, width)
        x = x + self.resid_dropout(self.proj(attended))
        out: Tensor = x + self.mlp(self.ln2(x))
        return out


class CharTransformer(nn.Module):
    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.context_length, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(positions))
        for block in self.blocks:
            x = block(x)
        # The head is tied to the token embedding (kept as one tensor, so safetensors is happy).
        return self.ln_f(x) @ self.tok_emb.weight.T  # type: ignore[no-any-return]


class CharLM:
    """A trained model ready to predict: `generate` text, or read `logits`."""

    def __init__(self, model: CharTransformer, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = model.config
        self.device = device

    @torch.no_grad()
    def logits(self, text: str) -> Tensor:
        """Next-character logits after each of the last `context_length` characters of `text`."""
        ids = self.config.encode(text)[-self.config.context_length :] or [UNKNOWN_ID]
        out: Tensor = self.model(torch.tensor([ids], device=self.device))[0].cpu()
        return out

    @torch.no_grad()
    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 100,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> str:
        """The continuation of `prompt` (without the prompt); greedy when temperature is 0."""

        def next_logits(window: list[int]) -> Tensor:
            out: Tensor = self.model(torch.tensor([window], device=self.device))[0, -1]
            return out

        return continue_text(
            self.config,
            next_logits,
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            seed=seed,
        )


@torch.no_grad()
def continue_text(
    config: CharLMConfig,
    next_logits: Callable[[list[int]], Tensor],
    prompt: str,
    max_new_tokens: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> str:
    """The continuation of `prompt`, one token at a time from `next_logits(window)` (the
    next-token logits after the last `context_length` ids, on the CPU); greedy when
    temperature is 0. The torch network and its ONNX export share this loop, so a seed
    gives both the same text."""
    if temperature < 0:
        raise InvalidInput("temperature must be >= 0", {"field": "temperature"})
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    ids = config.encode(prompt) or [UNKNOWN_ID]
    new: list[int] = []
    for _ in range(max_new_tokens):
        last = next_logits((ids + new)[-config.context_length :]).cpu()
        if temperature == 0:
            chosen = int(last.argmax())
        else:
            last = last / temperature
            if top_k is not None:
                kth = torch.topk(last, min(top_k, last.numel())).values[-1]
                last = last.masked_fill(last < kth, -math.inf)
            probs = torch.softmax(last, dim=-1)
            chosen = int(torch.multinomial(probs, 1, generator=generator))
        new.append(chosen)
    return config.decode(new)


def load(folder: Path) -> CharLM:
    """Build a `CharLM` from a char_lm output folder (model.safetensors + config.json)."""
    config = CharLMConfig.from_json(json.loads((folder / "config.json").read_text()))
    model = CharTransformer(config)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return CharLM(model)


def write_output(folder: Path, model: CharTransformer, config: CharLMConfig) -> None:
    state = {
        name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()
    }
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config.to_json(), indent=2))
