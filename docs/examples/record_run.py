"""A training loop written with NumPy alone, recording its run for `attnflow laws`.

The model is the paper's Attn-FC (keys and embeddings trained, the linear classifier and
the query fixed) on a small synthetic topic data set, trained by full-batch gradient
descent; every 50 steps the recorder keeps a snapshot of the parameters as they are.
"""

import numeric
from numeric.data import synthetic_topic_data

data = synthetic_topic_data(0, n_nontopic=200, n_sentences=400, n_train=300, n_valid=20).train
spec = numeric.ModelSpec(d=10, d_key=10, trainable=("keys", "embeddings"))
params = numeric.init_params(spec, data, seed=0)
lr, steps, every = 0.1, 500, 50

recorder = numeric.TrajectoryRecorder(data.tokens, data.labels, data.n_classes,
                                      topic_class=data.topic_class, trainable=spec.trained)
for step in range(steps + 1):
    loss, grads = numeric.value_and_gradient(params, data, spec, wrt=spec.trained)
    recorder.record_loss(lr * step, loss)      # flow time τ = learning rate × steps
    if step % every == 0:
        recorder.record(lr * step, params)
    if step < steps:
        params = {name: p - lr * grads[name] if name in grads else p
                  for name, p in params.items()}

path = recorder.save("run.npz")
print(f"wrote {path}: {len(recorder)} snapshots, loss {loss:.4f} at step {steps}")
