#!/usr/bin/env bash
# REST request to TF Serving with the example body from the model card.
#   export/clients/predict.sh export/models/shapes/1 [http://localhost:8501]
set -euo pipefail
VERSION_DIR=${1:?usage: predict.sh VERSION_DIR [URL]}
URL=${2:-http://localhost:8501}
NAME=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" "$VERSION_DIR/assets.extra/mmzoo.json")
# Row format ("instances") ...
python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['rest']['row']))" \
  "$VERSION_DIR/assets.extra/mmzoo.json" |
  curl -sS -X POST -H 'Content-Type: application/json' --data @- "$URL/v1/models/$NAME:predict"
echo
# ... and columnar format ("inputs").
python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['rest']['columnar']))" \
  "$VERSION_DIR/assets.extra/mmzoo.json" |
  curl -sS -X POST -H 'Content-Type: application/json' --data @- "$URL/v1/models/$NAME:predict"
echo
# By hand: curl -d '{"instances": [{"image": {"b64": "'$(base64 -w0 cat.png)'"}, "text": "a red circle"}]}' \
#   $URL/v1/models/shapes:predict
