"""The small model zoo the tests share: one of each architecture nnreport must handle.

Each entry of ZOO builds (model, example_inputs) deterministically. The ResNet-18-, Inception- and
DenseNet-121-like builders also take sizes, so the benchmarks can use the full-depth variants.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

XSS = "<script>alert(1)</script>"


def _seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)


class MLP(nn.Module):
    def __init__(self, inputs: int = 4, hidden: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyCNN(nn.Module):
    def __init__(self, channels: int = 1, classes: int = 10, size: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(16 * (size // 4) ** 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetLike(nn.Module):
    """ResNet with BasicBlocks; blocks=(2, 2, 2, 2), width=64 is ResNet-18's layout."""

    def __init__(self, blocks: tuple[int, ...] = (1, 1), width: int = 8, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        layers = []
        cin = width
        for i, n in enumerate(blocks):
            cout = width * 2**i
            layers.append(nn.Sequential(*[BasicBlock(cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1) for j in range(n)]))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(2 * growth)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, cin: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(cin + i * growth, growth) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNetLike(nn.Module):
    """DenseNet; blocks=(6, 12, 24, 16), growth=32 is DenseNet-121's layout."""

    def __init__(self, blocks: tuple[int, ...] = (2, 2), growth: int = 4, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        width = 2 * growth
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            stages.append(DenseBlock(n, width, growth))
            width += n * growth
            if i < len(blocks) - 1:
                stages.append(nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width // 2, 1, bias=False), nn.AvgPool2d(2)))
                width //= 2
        self.features = nn.Sequential(*stages)
        self.norm = nn.BatchNorm2d(width)
        self.classifier = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm(self.features(self.stem(x))))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InceptionBlock(nn.Module):
    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.branch1 = nn.Conv2d(cin, width, 1)
        self.branch3 = nn.Sequential(nn.Conv2d(cin, width, 1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))
        self.branch5 = nn.Sequential(nn.Conv2d(cin, width, 1), nn.ReLU(), nn.Conv2d(width, width, 5, padding=2))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.pool(x)], 1))


class InceptionLike(nn.Module):
    def __init__(self, blocks: int = 2, width: int = 4, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 4 * width, 3, padding=1), nn.ReLU())
        self.blocks = nn.Sequential(*[InceptionBlock(4 * width, width) for _ in range(blocks)])
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


class RecurrentNet(nn.Module):
    """An LSTM over (batch, time, features), classifying from the last step."""

    def __init__(self, features: int = 6, hidden: int = 12, classes: int = 3, cell: str = "lstm") -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class AttentionNet(nn.Module):
    """Token embeddings plus a transformer encoder layer and an explicit MultiheadAttention."""

    def __init__(self, features: int = 6, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(features, dim)
        self.encoder = nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=32, batch_first=True, dropout=0.0)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x))
        h, _ = self.attn(h, h, h)
        return self.head(h.mean(1))


class FunctionalNet(nn.Module):
    """Parameters used through functional ops only, plus view/reshape plumbing."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 1, 3, 3) * 0.3)
        self.w2 = nn.Parameter(torch.randn(10, 8 * 4 * 4) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.conv2d(x, self.w1, padding=1))
        x = F.max_pool2d(x, 4)
        x = x.view(x.size(0), -1)
        return F.linear(x, self.w2)


class ReusedModule(nn.Module):
    """One block called twice (weights shared), as a recurrent-style unrolling."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.inp = nn.Linear(4, dim)
        self.shared = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.out = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        h = self.shared(h)
        h = self.shared(h) + h
        return self.out(h)


class MultiInputOutput(nn.Module):
    """Two inputs (image, vector) and a tuple of two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.vec = nn.Linear(5, 4)
        self.cls = nn.Linear(8, 3)
        self.reg = nn.Linear(8, 1)

    def forward(self, image: torch.Tensor, vector: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.relu(self.conv(image)).mean(dim=(2, 3))
        h = torch.cat([a, F.relu(self.vec(vector))], 1)
        return self.cls(h), self.reg(h)


class DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.logits = nn.Linear(8, 3)
        self.embedding = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(x)
        return {"logits": self.logits(h), "embedding": self.embedding(h)}


class ControlFlow(nn.Module):
    """Data-dependent control flow: torch.export cannot capture it, the eager fallback must."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x) if x.sum() > 0 else self.b(x)
        return self.head(F.relu(h))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c, c // 2)
        self.fc2 = nn.Linear(c // 2, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * w[:, :, None, None]  # multiplicative gating of one tensor by another


class MobileSE(nn.Module):
    """Depthwise-separable convolutions, squeeze-excite gating, hardswish/relu6, BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.bn = nn.BatchNorm2d(32)
        self.se = SqueezeExcite(32)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.stem(x))
        x = self.se(F.relu6(self.bn(self.pw(self.dw(x)))))
        return self.head(x.mean((2, 3)))


class UNetLike(nn.Module):
    """Encoder-decoder with a transposed convolution and a skip concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.down1 = nn.Conv2d(3, 8, 3, padding=1)
        self.down2 = nn.Conv2d(8, 16, 3, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.out = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.down1(x))
        b = F.relu(self.down2(F.max_pool2d(a, 2)))
        return self.out(torch.cat([a, self.up(b)], 1)).mean((2, 3))


class TextClassifier(nn.Module):
    """Token ids -> embedding -> transformer encoder -> bidirectional GRU -> LayerNorm; dict output."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.gru = nn.GRU(16, 16, batch_first=True, bidirectional=True)
        self.norm = nn.LayerNorm(32)
        self.cls = nn.Linear(32, 3)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        h, _ = self.gru(self.enc(self.emb(tokens)))
        return {"logits": self.cls(self.norm(h[:, -1])), "hidden": h}


def nasty_names_model() -> nn.Module:
    """Module and class names that would run script if a page did not escape them."""
    cls = type(XSS, (nn.Module,), {"forward": lambda self, x: getattr(self, XSS)(x)})
    model = cls()
    model.add_module(XSS, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    return model


def _image(c: int = 3, s: int = 16, n: int = 2) -> tuple[torch.Tensor, ...]:
    return (torch.randn(n, c, s, s),)


def _build(factory: Callable[[], nn.Module], inputs: Callable[[], tuple[torch.Tensor, ...]]) -> Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        _seeded()
        model = factory().eval()
        return model, inputs()

    return build


ZOO: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]] = {
    "mlp": _build(MLP, lambda: (torch.randn(4, 4),)),
    "tiny_cnn": _build(TinyCNN, lambda: _image(1, 16, 4)),
    "resnet": _build(ResNetLike, lambda: _image(3, 16)),
    "densenet": _build(DenseNetLike, lambda: _image(3, 16)),
    "inception": _build(InceptionLike, lambda: _image(3, 16)),
    "lstm": _build(RecurrentNet, lambda: (torch.randn(2, 7, 6),)),
    "gru": _build(lambda: RecurrentNet(cell="gru"), lambda: (torch.randn(2, 7, 6),)),
    "attention": _build(AttentionNet, lambda: (torch.randn(2, 5, 6),)),
    "functional": _build(FunctionalNet, lambda: _image(1, 16)),
    "reused": _build(ReusedModule, lambda: (torch.randn(3, 4),)),
    "multi_io": _build(MultiInputOutput, lambda: (torch.randn(2, 1, 8, 8), torch.randn(2, 5))),
    "dict_output": _build(DictOutput, lambda: (torch.randn(3, 4),)),
    "control_flow": _build(ControlFlow, lambda: (torch.randn(3, 4),)),
    "nasty_names": _build(nasty_names_model, lambda: (torch.randn(3, 4),)),
    "mobile_se": _build(MobileSE, lambda: _image(3, 16)),
    "unet": _build(UNetLike, lambda: _image(3, 16)),
    "text": _build(TextClassifier, lambda: (torch.randint(0, 50, (2, 9)),)),
}


def resnet18_like(size: int = 32) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    _seeded()
    return ResNetLike((2, 2, 2, 2), 64).eval(), (torch.randn(1, 3, size, size),)


def densenet121_like(size: int = 32) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    _seeded()
    return DenseNetLike((6, 12, 24, 16), 32).eval(), (torch.randn(1, 3, size, size),)


def inception_like(size: int = 32) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    _seeded()
    return InceptionLike(blocks=9, width=16).eval(), (torch.randn(1, 3, size, size),)


class CausalSelfAttention(nn.Module):
    """nanoGPT-style causal self-attention: one qkv projection, scaled dot-product attention, a projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.resid_dropout = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.resid_dropout(self.c_proj(a.transpose(1, 2).reshape(b, t, d)))


class GPTMLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class GPTBlock(nn.Module):
    """A pre-norm transformer decoder block (causal self-attention and an MLP, both residual)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = GPTMLP(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPTStack(nn.Module):
    """A GPT-style language model: token and position embeddings, `blocks` decoder blocks, a head."""

    def __init__(self, blocks: int = 4, dim: int = 16, heads: int = 2, vocab: int = 50, context: int = 8) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(GPTBlock(dim, heads) for _ in range(blocks))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.wte(tokens) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def gpt_stack(blocks: int = 720, dim: int = 16) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The GPT-style stack of the graph-scale benchmark: 720 blocks give about 10k ops."""
    _seeded()
    return GPTStack(blocks, dim).eval(), (torch.randint(0, 50, (1, 8)),)


class TinyViT(nn.Module):
    """A small ViT: patch convolution, class token, positional embedding, pre-norm nn.TransformerEncoderLayer
    blocks (nn.MultiheadAttention, LayerNorm, GELU) and a linear head on the class token.
    `bias=False` (with zero class token and positional embedding) makes every layer bias-free."""

    def __init__(self, channels: int = 3, size: int = 16, patch: int = 4, dim: int = 16, depth: int = 2,
                 heads: int = 2, classes: int = 4, bias: bool = True) -> None:
        super().__init__()
        self.patch = nn.Conv2d(channels, dim, patch, patch, bias=bias)
        tokens = (size // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.1 if bias else torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.1 if bias else torch.zeros(1, tokens, dim))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True, bias=bias) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, bias=bias)
        self.head = nn.Linear(dim, classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls_token.expand(len(h), -1, -1), h], 1) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, 0]))


class TokenTransformer(nn.Module):
    """Token ids -> embedding + positional embedding -> nn.TransformerEncoderLayer blocks -> mean -> head."""

    def __init__(self, vocab: int = 20, length: int = 8, dim: int = 16, depth: int = 2, heads: int = 2,
                 classes: int = 2, bias: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, length, dim) * 0.1 if bias else torch.zeros(1, length, dim))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                       bias=bias) for _ in range(depth))
        self.head = nn.Linear(dim, classes, bias=bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos[:, :tokens.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean(1))


ZOO["vit"] = _build(TinyViT, lambda: _image(3, 16))
ZOO["token_transformer"] = _build(TokenTransformer, lambda: (torch.randint(0, 20, (2, 8)),))


# --- the common image-classifier families, small, written out as torchvision/timm/HF lay them out ---------

class VGGLike(nn.Module):
    """VGG: conv/ReLU/max-pool features, adaptive average pool, a three-layer MLP with dropout."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Linear(64, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class SqueezeLike(nn.Module):
    """SqueezeNet: no Linear layer; the classifier is a 1x1 convolution, ReLU and pooling, then a flatten."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(16, 16, 1), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Conv2d(16, classes, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


class SqueezeFunctional(SqueezeLike):
    """A conv head pooled by a functional mean: no module's output is the class scores."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__(classes)
        self.classifier = nn.Sequential(nn.Dropout(), nn.Conv2d(16, classes, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).mean((2, 3))


class InvertedResidual(nn.Module):
    """MobileNetV2: expand (1x1), depthwise 3x3, project (1x1), ReLU6, identity shortcut."""

    def __init__(self, c: int, expand: int = 4) -> None:
        super().__init__()
        h = c * expand
        self.conv = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(inplace=True),
                                  nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h),
                                  nn.ReLU6(inplace=True), nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class MobileNetV2Like(nn.Module):
    """MobileNetV2: features, then a functional global average pool and a dropout + Linear classifier."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(inplace=True)),
            InvertedResidual(8), InvertedResidual(8),
            nn.Sequential(nn.Conv2d(8, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(inplace=True)))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class SqueezeExcitation(nn.Module):
    """EfficientNet's SE: pool, 1x1 conv down, SiLU, 1x1 conv up, sigmoid gate."""

    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class MBConv(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        h = 4 * c
        self.block = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.SiLU(),
                                   nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h), nn.SiLU(),
                                   SqueezeExcitation(h, c // 2), nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class EfficientNetLike(nn.Module):
    """EfficientNet: MBConv blocks with squeeze-excitation and SiLU, pool, dropout + Linear."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.SiLU()),
            MBConv(8), MBConv(8), nn.Sequential(nn.Conv2d(8, 32, 1, bias=False), nn.BatchNorm2d(32), nn.SiLU()))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class Permute(nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) tensor (ConvNeXt's, a LayerNorm subclass)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """ConvNeXt: depthwise 7x7, then LayerNorm and a Linear-GELU-Linear MLP channels-last, layer scale."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(c, c, 7, padding=3, groups=c), Permute(0, 2, 3, 1),
                                   nn.LayerNorm(c, eps=1e-6), nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c),
                                   Permute(0, 3, 1, 2))
        self.layer_scale = nn.Parameter(torch.full((c, 1, 1), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * self.block(x)


class ConvNeXtLike(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Sequential(nn.Conv2d(3, 16, 4, 4), LayerNorm2d(16, eps=1e-6)),
                                      CNBlock(16), CNBlock(16),
                                      nn.Sequential(LayerNorm2d(16, eps=1e-6), nn.Conv2d(16, 32, 2, 2)), CNBlock(32))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(32, eps=1e-6), nn.Flatten(1), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


class WindowAttention(nn.Module):
    """Swin's attention within non-overlapping windows, written out: the batch is folded with the windows."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias = nn.Parameter(torch.zeros(heads, window * window, window * window))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        b, h, w, c = x.shape
        s = self.window
        x = x.view(b, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)
        q, k, v = self.qkv(x).reshape(x.shape[0], s * s, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5 + self.relative_position_bias).softmax(-1)
        x = self.proj((a @ v).transpose(1, 2).reshape(-1, s * s, c))
        return x.view(b, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, shift: int) -> None:
        super().__init__()
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        y = self.attn(y)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinLike(nn.Module):
    """Swin: channels-last (N, H, W, C) stages of shifted-window attention, patch merging, norm, pool, head."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 16, 4, 4), Permute(0, 2, 3, 1), nn.LayerNorm(16)),
            SwinBlock(16, 2, 4, 0), SwinBlock(16, 2, 4, 2), PatchMerging(16), SwinBlock(32, 4, 4, 0))
        self.norm = nn.LayerNorm(32)
        self.permute = Permute(0, 3, 1, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.avgpool(self.permute(self.norm(self.features(x))))))


class TupleOutput(nn.Module):
    """(logits, embedding), as models that return their features too."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.flatten(self.pool(self.body(x)), 1)
        return self.fc(f), f


class HFStyleOutput(TupleOutput):
    """A dict like a Hugging Face ModelOutput, whose last module call (a projection) is not the logits."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__(classes)
        self.projection = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        logits, f = super().forward(x)
        return {"logits": logits, "projection": self.projection(f)}


# Image classifiers (3x32x32 inputs, 4 classes) of every common family: every analysis must run on each.
FAMILIES: dict[str, Callable[[], nn.Module]] = {
    "resnet": lambda: ResNetLike(classes=4), "densenet": lambda: DenseNetLike(classes=4), "vgg": VGGLike,
    "squeezenet": SqueezeLike, "squeezenet_functional": SqueezeFunctional, "mobilenet_v2": MobileNetV2Like,
    "efficientnet": EfficientNetLike, "convnext": ConvNeXtLike, "swin": SwinLike,
    "vit": lambda: TinyViT(classes=4), "tuple_output": TupleOutput, "dict_output": HFStyleOutput,
}
