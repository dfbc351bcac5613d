"""The paper's Attn-FC in PyTorch, trained by SGD, recorded for `attnflow laws`.

The recorder receives the parameters as the run holds them: `.detach().cpu().numpy()`
keeps their dtype (float32 here, PyTorch's default), so attnflow judges the run against
float32 rounding. Casting to float64 first would claim a precision the run never had.
"""

import torch

import numeric
from numeric.data import synthetic_topic_data

data = synthetic_topic_data(0, n_nontopic=200, n_sentences=400, n_train=300, n_valid=20).train
W, C, d = data.n_words, data.n_classes, 10


class AttnFC(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Embedding(W, d)             # embeddings v_w
        self.keys = torch.nn.Embedding(W, d)            # keys κ_w, starting at 0
        self.query = torch.nn.Parameter(0.3 * torch.randn(d, generator=g), requires_grad=False)
        self.fc = torch.nn.Linear(d, C, bias=False)     # classifier U, (C, d), kept fixed
        with torch.no_grad():
            self.emb.weight.normal_(0, 1e-6, generator=g)
            self.keys.weight.zero_()
            self.fc.weight.normal_(generator=g).fill_diagonal_(1.0)
        self.fc.weight.requires_grad_(False)

    def forward(self, tokens):
        mask = tokens >= 0                              # padding id -1
        ids = tokens.clamp(min=0)
        scores = (self.keys(ids) @ self.query).masked_fill(~mask, float("-inf"))
        attention = torch.softmax(scores, dim=1)
        return self.fc((attention[..., None] * self.emb(ids)).sum(dim=1))


model = AttnFC()
tokens, labels = torch.as_tensor(data.tokens), torch.as_tensor(data.labels)
lr = 0.1
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
recorder = numeric.TrajectoryRecorder(data.tokens, data.labels, C, topic_class=data.topic_class,
                                      trainable=("embeddings", "keys"))
names = {"embeddings": model.emb.weight, "keys": model.keys.weight, "query": model.query,
         "classifier": model.fc.weight}
for step in range(501):
    if step % 50 == 0:
        recorder.record(lr * step, {n: p.detach().cpu().numpy() for n, p in names.items()})
    loss = torch.nn.functional.cross_entropy(model(tokens), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"wrote {recorder.save('torch_run.npz')}: {len(recorder)} snapshots")
