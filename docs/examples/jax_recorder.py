"""Recording a JAX run: `np.asarray` on a JAX array keeps its dtype (float32 unless
`jax_enable_x64` is set), and the recorder copies it as it is."""

import jax
import jax.numpy as jnp
import numpy as np

import numeric
from numeric.data import synthetic_topic_data

data = synthetic_topic_data(0, n_nontopic=200, n_sentences=400, n_train=300, n_valid=20).train
spec = numeric.ModelSpec(d=10, d_key=10, trainable=("keys", "embeddings"), dtype="float32")
params = {n: jnp.asarray(p) for n, p in numeric.init_params(spec, data, seed=0).items()}
tokens, labels = jnp.asarray(data.tokens), jnp.asarray(data.labels)


def loss(params):
    mask = tokens >= 0
    ids = jnp.where(mask, tokens, 0)
    scores = jnp.where(mask, params["keys"][ids] @ params["query"], -jnp.inf)
    attention = jax.nn.softmax(scores, axis=1)
    logits = (attention[..., None] * params["embeddings"][ids]).sum(axis=1) @ \
        params["classifier"].T
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(labels)), labels])


step_fn = jax.jit(jax.value_and_grad(loss))
lr = 0.1
recorder = numeric.TrajectoryRecorder(data.tokens, data.labels, data.n_classes,
                                      topic_class=data.topic_class, trainable=spec.trained)
for step in range(501):
    if step % 50 == 0:
        recorder.record(lr * step, {n: np.asarray(p) for n, p in params.items()})
    value, grads = step_fn(params)
    params = {n: p - lr * grads[n] if n in spec.trained else p for n, p in params.items()}
print(f"wrote {recorder.save('jax_run.npz')}: {len(recorder)} snapshots")
