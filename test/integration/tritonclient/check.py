"""Talks to a Tessera server with Triton's own Python HTTP client (tritonclient.http) and prints
what it read as one JSON object on stdout, for test/integration/tritonclient.int.spec.ts to check.

Usage: python3 check.py HOST:PORT MODEL

MODEL is the PP-OCR text-orientation classifier (x FP32 [N, 3, 48, 192] -> softmax_0.tmp_0
FP32 [N, 2]) served with a dynamic batcher that holds a batch until it has 4 samples. The traffic:
four concurrent single-image requests (async_infer: one batch of 4), one request of 4 images,
two concurrent requests of 2; one request past its deadline (parameters.timeout, a failure after
validation) and one of the wrong shape (refused by validation). Then the statistics, read until
they count every request that reached the model (a request is counted once its answer was sent).
"""

import json
import sys
import time

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

OUTPUT = "softmax_0.tmp_0"


def images(rng, n):
    return (rng.random((n, 3, 48, 192), dtype=np.float32) - 0.5).astype(np.float32)


def request(rng, n):
    x = httpclient.InferInput("x", [n, 3, 48, 192], "FP32")
    x.set_data_from_numpy(images(rng, n), binary_data=True)
    return {"inputs": [x], "outputs": [httpclient.InferRequestedOutput(OUTPUT, binary_data=True)], "model_version": "1"}


def answer(result):
    probs = result.as_numpy(OUTPUT)
    return {"shape": list(probs.shape), "rows_sum_to_one": bool(np.allclose(probs.sum(axis=1), 1.0, atol=1e-4))}


def refusal(call):
    try:
        call()
    except InferenceServerException as err:
        return {"status": err.status(), "message": err.message()}
    return {"status": "200", "message": ""}


def main():
    url, model = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(7)
    out = {}
    with httpclient.InferenceServerClient(url=url, concurrency=4) as client:
        out["live"] = client.is_server_live()
        out["ready"] = client.is_model_ready(model)
        out["server_metadata"] = client.get_server_metadata()
        out["model_metadata"] = client.get_model_metadata(model)
        out["model_config"] = client.get_model_config(model)
        out["model_config_v1"] = client.get_model_config(model, "1")
        out["stats_before"] = client.get_inference_statistics(model, "1")

        answers = []
        pending = [client.async_infer(model, **request(rng, 1)) for _ in range(4)]
        answers += [answer(p.get_result()) for p in pending]
        answers.append(answer(client.infer(model, **request(rng, 4))))
        pending = [client.async_infer(model, **request(rng, 2)) for _ in range(2)]
        answers += [answer(p.get_result()) for p in pending]
        out["answers"] = answers

        # tritonclient's `timeout` goes out as parameters.timeout (Tessera reads milliseconds)
        out["deadline"] = refusal(lambda: client.infer(model, **request(rng, 1), timeout=0.000001))
        wrong = httpclient.InferInput("x", [1, 3, 48], "FP32")
        wrong.set_data_from_numpy(np.zeros((1, 3, 48), dtype=np.float32))
        out["bad_shape"] = refusal(lambda: client.infer(model, [wrong], model_version="1"))
        out["unknown_model"] = refusal(lambda: client.get_inference_statistics("no-such-model"))

        expected = len(answers) + 1
        deadline = time.monotonic() + 10
        while True:
            stats = client.get_inference_statistics(model, "1")
            s = stats["model_stats"][0]["inference_stats"]
            if s["success"]["count"] + s["fail"]["count"] >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        out["stats"] = stats
        out["stats_model"] = client.get_inference_statistics(model)
        out["stats_all"] = client.get_inference_statistics()
        # Triton's classification extension, as its client asks for it (after the statistics: not counted there)
        classes = request(rng, 2)
        classes["outputs"] = [httpclient.InferRequestedOutput(OUTPUT, binary_data=True, class_count=2)]
        result = client.infer(model, **classes)
        out["classes"] = {"shape": list(result.as_numpy(OUTPUT).shape), "data": [v.decode() for v in result.as_numpy(OUTPUT).reshape(-1)]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
