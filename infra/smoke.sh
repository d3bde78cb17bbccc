#!/usr/bin/env bash
# The BSS on a real AWS account: deploy `make package`'s output as a stack, then smoke it through
# API Gateway (what the moto deployment test cannot reach: docs/operations.md, "Deploying").
# Run from anywhere; it works in the repository it belongs to. `infra/smoke.sh --help` for usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGE_DIR="$ROOT/build/package"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

usage() {
  cat <<'EOF'
usage: infra/smoke.sh STACK --region REGION --bucket BUCKET [--token TOKEN] [--no-deploy]
       infra/smoke.sh STACK --region REGION --delete
       infra/smoke.sh --help

Deploys the BSS as the CloudFormation stack STACK and smoke-tests it, printing each step:

  1. aws cloudformation package: uploads build/package's zip(s) (run `make package` first) to
     s3://BUCKET/bss/STACK/ and writes build/package/packaged.json;
  2. aws cloudformation deploy (CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND: the SAM transform);
     when BSS_PUBLIC_URL is not set, a second deploy sets the PublicUrl parameter to the
     stack's EndpointURL once it is known;
  3. reads the stack's EndpointURL output (API Gateway's stage URL);
  4. GET /health (200), a path the API lacks (404 `not_found`: API Gateway's gateway
     responses), GET /tenants without a token (401) and with one (200);
  5. the failure queues are empty: GET /failures lists nothing, and every on-failure and
     dead-letter queue of infra/alarms.py holds no message (aws sqs).

Options:
  --region REGION   the stack's region (default: $AWS_REGION, else $AWS_DEFAULT_REGION)
  --bucket BUCKET   an S3 bucket of that region for the code and the template (deploy only)
  --token TOKEN     a platform_admin bearer token; without it one is minted, valid 15 minutes,
                    with BSS_JWT_SECRET and the repository's functions.core.auth.issue_token
  --no-deploy       smoke the stack as it is (steps 3 to 5)
  --delete          delete the stack and wait for it to go; the documents bucket is retained
                    (DeletionPolicy Retain) and the uploaded code stays in BUCKET: both printed
  -h, --help        this text (needs nothing installed)

Environment (deploy):
  BSS_JWT_SECRET    the JwtSecret parameter (>= 32 characters; also mints the token)
  BSS_MAIL_FROM     the MailFrom parameter: an address SES has verified (or of a verified domain)
  BSS_ALARM_EMAIL   the AlarmEmail parameter (confirm the subscription from AWS's mail)
  BSS_PUBLIC_URL    the PublicUrl parameter (default: the stack's EndpointURL, step 2)
  PYTHON            the Python with the repository's requirements (default: .venv/bin/python)

Needs: the aws CLI with credentials for the account, curl, and `make package` done.
Exit status: 0 all well, 1 a check failed, 2 bad usage.
EOF
}

STACK=""
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
BUCKET=""
TOKEN=""
DEPLOY=1
DELETE=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --region) REGION="${2:?--region needs a value}"; shift 2 ;;
    --bucket) BUCKET="${2:?--bucket needs a value}"; shift 2 ;;
    --token) TOKEN="${2:?--token needs a value}"; shift 2 ;;
    --no-deploy) DEPLOY=0; shift ;;
    --delete) DELETE=1; shift ;;
    -*) echo "smoke.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -n "$STACK" ]]; then echo "smoke.sh: one stack only" >&2; exit 2; fi
      STACK="$1"; shift ;;
  esac
done

bad_usage() { echo "smoke.sh: $*" >&2; echo "(infra/smoke.sh --help)" >&2; exit 2; }
[[ -n "$STACK" ]] || bad_usage "no stack name"
[[ -n "$REGION" ]] || bad_usage "no region: --region, or AWS_REGION"
if [[ $DELETE == 0 && $DEPLOY == 1 ]]; then
  [[ -n "$BUCKET" ]] || bad_usage "no bucket: --bucket (or --no-deploy)"
  for name in BSS_JWT_SECRET BSS_MAIL_FROM BSS_ALARM_EMAIL; do
    [[ -n "${!name:-}" ]] || bad_usage "$name is not set (see --help)"
  done
fi

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
# Runs a command after printing it (what is deployed and where must be visible in the log).
run() { printf '+ %s\n' "$*"; "$@"; }
need() { command -v "$1" >/dev/null || fail "$1 is not installed"; }

need aws
AWS=(aws --region "$REGION")

output() { # a stack output's value
  "${AWS[@]}" cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

if [[ $DELETE == 1 ]]; then
  step "deleting the stack $STACK ($REGION)"
  documents="$(output DocumentsBucketName 2>/dev/null || true)"
  run "${AWS[@]}" cloudformation delete-stack --stack-name "$STACK"
  run "${AWS[@]}" cloudformation wait stack-delete-complete --stack-name "$STACK"
  echo "deleted. Retained: the documents bucket ${documents:-(none)}; the code under s3://<bucket>/bss/$STACK/"
  exit 0
fi

need curl
[[ -x "$PY" ]] || fail "no Python at $PY: run make (or set PYTHON)"

deploy() { # $1: the PublicUrl parameter
  # the secret is not printed: the command is shown with it masked, then run
  printf '+ %s cloudformation deploy --stack-name %s ... JwtSecret=*** MailFrom=%s AlarmEmail=%s PublicUrl=%s\n' \
    "${AWS[*]}" "$STACK" "$BSS_MAIL_FROM" "$BSS_ALARM_EMAIL" "$1"
  "${AWS[@]}" cloudformation deploy \
    --template-file "$PACKAGE_DIR/packaged.json" \
    --stack-name "$STACK" \
    --s3-bucket "$BUCKET" --s3-prefix "bss/$STACK" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --no-fail-on-empty-changeset \
    --parameter-overrides \
    "JwtSecret=$BSS_JWT_SECRET" "MailFrom=$BSS_MAIL_FROM" \
    "AlarmEmail=$BSS_ALARM_EMAIL" "PublicUrl=$1"
}

if [[ $DEPLOY == 1 ]]; then
  [[ -f "$PACKAGE_DIR/sam.json" ]] || fail "no $PACKAGE_DIR/sam.json: run make package"

  step "1. packaging: the zip(s) of build/package to s3://$BUCKET/bss/$STACK/"
  run "${AWS[@]}" cloudformation package \
    --template-file "$PACKAGE_DIR/sam.json" \
    --s3-bucket "$BUCKET" --s3-prefix "bss/$STACK" \
    --use-json --output-template-file "$PACKAGE_DIR/packaged.json"

  step "2. deploying the stack $STACK ($REGION)"
  deploy "${BSS_PUBLIC_URL:-https://example.invalid}"
  if [[ -z "${BSS_PUBLIC_URL:-}" ]]; then
    endpoint="$(output EndpointURL)"
    step "2b. PublicUrl := the stack's EndpointURL ${endpoint%/}"
    deploy "${endpoint%/}"
  fi
fi

step "3. the API's URL"
URL="$(output EndpointURL)"
[[ "$URL" == https://* ]] || fail "the stack $STACK has no EndpointURL output (got '$URL')"
URL="${URL%/}"
echo "EndpointURL: $URL"

BODY="$(mktemp)"
trap 'rm -f "$BODY"' EXIT

# expect METHOD PATH none|token STATUS: the request (with the bearer token when "token") must
# be answered STATUS; the body is left in $BODY.
expect() {
  local method="$1" path="$2" auth="$3" want="$4" got
  local -a headers=(-H "Accept: application/json")
  if [[ "$auth" == token ]]; then headers+=(-H "Authorization: Bearer $TOKEN"); fi
  got="$(curl -sS -X "$method" -o "$BODY" -w '%{http_code}' "${headers[@]}" "$URL$path")"
  printf '  %-6s %-14s %-5s -> %s\n' "$method" "$path" "$auth" "$got"
  [[ "$got" == "$want" ]] || fail "$method $path answered $got, not $want: $(head -c 500 "$BODY")"
}

# Reads $BODY as JSON and exits non-zero unless the Python expression $1 (of `body`) is true.
body_is() {
  "$PY" -c 'import json, sys; body = json.load(open(sys.argv[2])); sys.exit(not eval(sys.argv[1]))' \
    "$1" "$BODY" || fail "unexpected answer ($1): $(head -c 500 "$BODY")"
}

step "4. the API through API Gateway"
expect GET /health none 200
body_is 'body["status"] == "ok"'
# what API Gateway answers itself (R29): a path the API lacks is the app's 404, and a method a
# path lacks reaches the app (405), where API Gateway alone would answer 403
expect GET /no-such-path none 404
body_is 'body["error"]["code"] == "not_found"'
expect DELETE /health none 405
expect GET /tenants none 401
if [[ -z "$TOKEN" ]]; then
  [[ -n "${BSS_JWT_SECRET:-}" ]] || fail "no token: --token, or BSS_JWT_SECRET to mint one"
  echo "  (a platform_admin token minted with BSS_JWT_SECRET, valid 15 minutes)"
  TOKEN="$(cd "$ROOT" && "$PY" -c 'import os
from functions.core.auth import issue_token
print(issue_token(os.environ["BSS_JWT_SECRET"], sub="smoke", role="platform_admin", ttl_seconds=900))')"
fi
expect GET /tenants token 200
body_is 'isinstance(body["items"], list)'
# with an Authorization header, API Gateway takes a missing path for a bad signature: also 404
expect GET /no-such-path token 404

step "5. the failure queues are empty"
expect GET /failures token 200
body_is 'body["items"] == []'
queues="$(cd "$ROOT" && "$PY" -c 'from infra.alarms import failure_queues; print(*failure_queues())')"
read -r -a queues <<<"$queues"
for base in "${queues[@]}"; do
  url="$("${AWS[@]}" sqs get-queue-url --queue-name "$STACK-$base" --query QueueUrl --output text)"
  held="$("${AWS[@]}" sqs get-queue-attributes --queue-url "$url" \
    --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible \
    --query 'Attributes.[ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible]' \
    --output text)"
  read -r visible in_flight <<<"$held"
  printf '  %-32s %s visible, %s in flight\n' "$STACK-$base" "$visible" "$in_flight"
  [[ "$visible" == 0 && "$in_flight" == 0 ]] \
    || fail "$STACK-$base holds messages: bss failures (or GET /failures) lists them"
done

step "smoke passed: $STACK at $URL"
