"""REST client for an mmzoo model in TF Serving (standard library only).

    python export/clients/rest_client.py --model shapes --image cat.png --text "a red circle"
    python export/clients/rest_client.py --model shapes --audio dog.wav --tabular 0.1,2,3
"""

import argparse
import base64
import json
import urllib.request


def predict(url: str, model: str, examples: list, signature: str = "serving_default") -> list:
    """POST row-format instances; binary inputs are sent as {"b64": ...}."""
    instances = []
    for ex in examples:
        row = {}
        for key, value in ex.items():
            row[key] = {"b64": base64.b64encode(value).decode("ascii")} if isinstance(value, bytes) else value
        instances.append(row)
    body = json.dumps({"signature_name": signature, "instances": instances}).encode("utf-8")
    request = urllib.request.Request(f"{url}/v1/models/{model}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["predictions"]
    except urllib.error.HTTPError as e:  # bad input: {"error": "Invalid input <image>: ..."}
        raise SystemExit(f"HTTP {e.code}: {e.read().decode('utf-8', 'replace')}") from None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://localhost:8501")
    p.add_argument("--model", default="shapes")
    p.add_argument("--image")
    p.add_argument("--audio")
    p.add_argument("--text")
    p.add_argument("--tabular", help="comma-separated floats")
    a = p.parse_args()
    ex = {}
    if a.image:
        ex["image"] = open(a.image, "rb").read()
    if a.audio:
        ex["audio"] = open(a.audio, "rb").read()
    if a.text is not None:
        ex["text"] = a.text
    if a.tabular:
        ex["tabular"] = [float(v) for v in a.tabular.split(",")]
    print(json.dumps(predict(a.url, a.model, [ex]), indent=1))


if __name__ == "__main__":
    main()
